//! The composition root: the one place that knows the suite is three services. Given a
//! configuration it opens each service's database, migrates it, builds the three
//! [`ServiceDef`]s and serves them with [`qilu_common::server::serve`] — on one listener, as
//! `qilu dev`, the end-to-end and fuzz tests run them, or on one listener each, as a deployment
//! runs them (each service its own server, its peers the others' addresses).
//!
//! Every caller that runs more than one service starts it here: `qilu dev` and `qilu migrate`,
//! `tests/` (e2e, fuzz), the bench's cross-service workload and the awards tests. What differs
//! between them is data, not wiring: where each database is ([`Options::database_urls`]) and
//! what "now" is ([`Clocks`]).
//!
//! What it must never do: hold a service's logic (that stays in `services/*`), or be depended
//! on by a service — this is the only crate that depends on all three, so "services never
//! depend on each other's crates" stays true.

#![forbid(unsafe_code)]

#[cfg(feature = "testing")]
pub mod testing;

use std::future::Future;
use std::net::SocketAddr;

use qilu_awards::Awards;
use qilu_common::Clock;
use qilu_common::app::{ServiceApp, open_database};
use qilu_common::config::Config;
use qilu_common::server::{ServiceDef, serve};
use qilu_common::sweep::{SweepReport, Sweeper};
use qilu_registry::Registry;
use qilu_review::Review;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One of the suite's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// The enterprise registry.
    Registry,
    /// The achievement review service.
    Review,
    /// The award allocation service.
    Awards,
}

impl Service {
    /// Every service, in the order they are opened and mounted (the registry first: the others
    /// call it).
    pub const ALL: [Service; 3] = [Service::Registry, Service::Review, Service::Awards];

    /// Its short name (`registry`, `review`, `awards`): the `{service}` in `database.url`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Registry => Registry::NAME,
            Service::Review => Review::NAME,
            Service::Awards => Awards::NAME,
        }
    }
}

/// One value for each service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerService<T> {
    /// The registry's.
    pub registry: T,
    /// The review service's.
    pub review: T,
    /// The awards service's.
    pub awards: T,
}

impl<T> PerService<T> {
    /// The value of `service`.
    pub fn get(&self, service: Service) -> &T {
        match service {
            Service::Registry => &self.registry,
            Service::Review => &self.review,
            Service::Awards => &self.awards,
        }
    }

    /// Applies `f` to each value.
    pub fn map<U>(self, mut f: impl FnMut(Service, T) -> U) -> PerService<U> {
        PerService {
            registry: f(Service::Registry, self.registry),
            review: f(Service::Review, self.review),
            awards: f(Service::Awards, self.awards),
        }
    }
}

/// "Now" for each service (certificate states and "today", appeal windows, application and
/// objection windows). The system clock where `None`; tests pass a clock they can move instead
/// of sleeping.
#[derive(Debug, Clone, Default)]
pub struct Clocks {
    /// The registry's ("today": certificate states, due dates).
    pub registry: Option<Clock>,
    /// The review service's (the appeal window).
    pub review: Option<Clock>,
    /// The awards service's (application and objection windows).
    pub awards: Option<Clock>,
}

impl Clocks {
    /// The clock given for `service`, if any.
    pub fn get(&self, service: Service) -> Option<&Clock> {
        match service {
            Service::Registry => self.registry.as_ref(),
            Service::Review => self.review.as_ref(),
            Service::Awards => self.awards.as_ref(),
        }
    }
}

/// What may differ from a plain configuration when the suite is built.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A service's database URL when it is not `config.database_url(name)`: tests give each
    /// service a fresh database of its own.
    pub database_urls: PerService<Option<String>>,
    /// Clocks for the services that have one.
    pub clocks: Clocks,
}

/// Applies `service`'s migrations to its configured database and closes it: the one-shot
/// `migrate` job (safe to repeat).
pub async fn migrate(config: &Config, service: Service) -> Result<(), String> {
    let db = match service {
        Service::Registry => open_database::<Registry>(config, true).await?,
        Service::Review => open_database::<Review>(config, true).await?,
        Service::Awards => open_database::<Awards>(config, true).await?,
    };
    db.close()
        .await
        .map_err(|e| format!("{}: closing the database: {e}", service.name()))
}

/// The three services built over their migrated databases, to be served together.
#[derive(Debug)]
pub struct Suite {
    config: Config,
    services: Vec<ServiceDef>,
    databases: Vec<DatabaseConnection>,
}

impl Suite {
    /// Opens and migrates the three databases and builds the services to be served at `addr`:
    /// every peer is that same server, so cross-service calls stay in the process's listener.
    pub async fn build(
        config: &Config,
        addr: SocketAddr,
        options: &Options,
    ) -> Result<Suite, String> {
        let mut config = with_peers(
            config,
            &PerService {
                registry: addr,
                review: addr,
                awards: addr,
            },
        );
        config.server.addr = addr;
        let mut services = Vec::with_capacity(Service::ALL.len());
        let mut databases = Vec::with_capacity(Service::ALL.len());
        for service in Service::ALL {
            let (def, db) =
                build(service, &service_config(&config, service, options), options).await?;
            services.push(def);
            databases.push(db);
        }
        Ok(Suite {
            config,
            services,
            databases,
        })
    }

    /// The configuration the server runs with (peers pointing at itself).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Serves the suite on `listener` until `shutdown` completes and the drain ends, then
    /// closes the databases.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let served = serve(listener, self.services, &self.config, shutdown)
            .await
            .map_err(|e| e.to_string());
        let closed = close(self.databases).await;
        served.and(closed)
    }
}

/// Builds the suite and serves it on `listener` in a task. The listener is bound already, so a
/// call made as soon as this returns waits in its backlog and is answered.
pub async fn start(
    config: &Config,
    listener: TcpListener,
    options: &Options,
) -> Result<Running, String> {
    let addr = local_addr(&listener)?;
    let suite = Suite::build(config, addr, options).await?;
    let config = suite.config.clone();
    let sweepers = suite
        .services
        .iter()
        .filter_map(ServiceDef::sweeper)
        .collect();
    Ok(Running::spawn(addr, config, sweepers, move |shutdown| {
        suite.serve(listener, shutdown)
    }))
}

/// Builds each service and serves it on its own listener, the way a deployment runs them: each
/// service's peers are the other listeners. A caller can stop one service (to see how the
/// others answer without it) and keep the rest running.
pub async fn start_apart(
    config: &Config,
    listeners: PerService<TcpListener>,
    options: &Options,
) -> Result<PerService<Running>, String> {
    let addrs = PerService {
        registry: local_addr(&listeners.registry)?,
        review: local_addr(&listeners.review)?,
        awards: local_addr(&listeners.awards)?,
    };
    let config = with_peers(config, &addrs);
    // In order, so a failure leaves nothing running: the `Running`s built so far are dropped,
    // which stops them.
    let registry = start_one(Service::Registry, &config, listeners.registry, options).await?;
    let review = start_one(Service::Review, &config, listeners.review, options).await?;
    let awards = start_one(Service::Awards, &config, listeners.awards, options).await?;
    Ok(PerService {
        registry,
        review,
        awards,
    })
}

/// `service` alone on `listener`, over its own database.
async fn start_one(
    service: Service,
    config: &Config,
    listener: TcpListener,
    options: &Options,
) -> Result<Running, String> {
    let addr = local_addr(&listener)?;
    let mut config = service_config(config, service, options);
    config.server.addr = addr;
    let (def, db) = build(service, &config, options).await?;
    let server_config = config.clone();
    let sweepers = def.sweeper().into_iter().collect();
    Ok(Running::spawn(
        addr,
        config,
        sweepers,
        move |shutdown| async move {
            let served = serve(listener, vec![def], &server_config, shutdown)
                .await
                .map_err(|e| e.to_string());
            let closed = close(vec![db]).await;
            served.and(closed)
        },
    ))
}

/// A server running in a task: where it listens, how it is configured, how to stop it. Dropping
/// it stops the server too (without waiting for the drain).
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), String>>,
    sweepers: Vec<Sweeper>,
}

impl Running {
    fn spawn<F, Fut>(addr: SocketAddr, config: Config, sweepers: Vec<Sweeper>, run: F) -> Running
    where
        F: FnOnce(Stopped) -> Fut,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(Stopped(stopped)));
        Running {
            addr,
            config,
            stop: Some(stop),
            task,
            sweepers,
        }
    }

    /// The sweepers of the services it serves, to sweep on demand (tests that move "today").
    pub fn sweepers(&self) -> Vec<Sweeper> {
        self.sweepers.clone()
    }

    /// Runs every served service's sweep now and says what each did.
    pub async fn sweep(&self) -> Result<Vec<SweepReport>, String> {
        let mut reports = Vec::with_capacity(self.sweepers.len());
        for sweeper in &self.sweepers {
            reports.push(sweeper.run().await.map_err(|e| e.to_string())?);
        }
        Ok(reports)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration it serves with (peers and database URL as built).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stops accepting, drains (within `server.drain_seconds`), closes the databases; the
    /// server's own error, if it failed.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        join(self.task).await
    }

    /// Runs until `shutdown` completes, then stops as [`Running::stop`]; returns early if the
    /// server ends by itself (a transport error).
    pub async fn until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), String> {
        tokio::select! {
            () = shutdown => self.stop().await,
            joined = &mut self.task => {
                self.stop.take();
                flatten(joined)
            }
        }
    }
}

/// Completes when the [`Running`] that owns the other end stops or is dropped.
struct Stopped(oneshot::Receiver<()>);

impl Future for Stopped {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

async fn join(task: JoinHandle<Result<(), String>>) -> Result<(), String> {
    flatten(task.await)
}

fn flatten(joined: Result<Result<(), String>, tokio::task::JoinError>) -> Result<(), String> {
    joined.map_err(|e| format!("server task: {e}"))?
}

/// Opens and migrates `service`'s database and builds the service, with its clock if given.
async fn build(
    service: Service,
    config: &Config,
    options: &Options,
) -> Result<(ServiceDef, DatabaseConnection), String> {
    let clock = options
        .clocks
        .get(service)
        .cloned()
        .unwrap_or_else(Clock::system);
    match service {
        Service::Registry => {
            let db = open_database::<Registry>(config, true).await?;
            Ok((
                qilu_registry::service_with_clock(config, db.clone(), clock),
                db,
            ))
        }
        Service::Review => {
            let db = open_database::<Review>(config, true).await?;
            Ok((
                qilu_review::service_with_clock(config, db.clone(), clock)?,
                db,
            ))
        }
        Service::Awards => {
            let db = open_database::<Awards>(config, true).await?;
            Ok((
                qilu_awards::service_with_clock(config, db.clone(), clock)?,
                db,
            ))
        }
    }
}

/// `config` with every peer pointing at the given addresses.
fn with_peers(config: &Config, addrs: &PerService<SocketAddr>) -> Config {
    let mut config = config.clone();
    config.peers.registry = format!("http://{}", addrs.registry);
    config.peers.review = format!("http://{}", addrs.review);
    config.peers.awards = format!("http://{}", addrs.awards);
    config
}

/// `config` as `service` sees it: its own database URL when the options give one.
fn service_config(config: &Config, service: Service, options: &Options) -> Config {
    let mut config = config.clone();
    if let Some(url) = options.database_urls.get(service) {
        config.database.url = url.clone();
    }
    config
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, String> {
    listener
        .local_addr()
        .map_err(|e| format!("the listener has no local address: {e}"))
}

async fn close(databases: Vec<DatabaseConnection>) -> Result<(), String> {
    for db in databases {
        db.close()
            .await
            .map_err(|e| format!("closing a database pool: {e}"))?;
    }
    Ok(())
}
