//! Test support (feature `testing`): the suite over fresh test databases — each service its own
//! SQLite file or PostgreSQL database, as [`qilu_common::testing::TestDb`] makes them — on one
//! ephemeral port ([`TestSuite`]) or on one port each as [`TestServer`]s ([`start_apart`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use qilu_common::config::Config;
use qilu_common::testing::{Backend, TestDb, TestServer, test_config};
use tonic::transport::{Channel, Endpoint};

use crate::{Clocks, Options, PerService, Running, Service};

/// Fresh databases for the three services on `backend`; `None` when PostgreSQL is unreachable
/// outside CI.
async fn databases(backend: Backend) -> Option<PerService<TestDb>> {
    Some(PerService {
        registry: TestDb::new(backend).await?,
        review: TestDb::new(backend).await?,
        awards: TestDb::new(backend).await?,
    })
}

fn options(dbs: &PerService<TestDb>, clocks: Clocks) -> Options {
    Options {
        database_urls: PerService {
            registry: Some(dbs.registry.url.clone()),
            review: Some(dbs.review.url.clone()),
            awards: Some(dbs.awards.url.clone()),
        },
        clocks,
    }
}

/// The three services on one ephemeral port, each over its own fresh database.
#[derive(Debug)]
pub struct TestSuite {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The configuration it serves with (its auth settings mint tokens it accepts).
    pub config: Config,
    /// A channel to it.
    pub channel: Channel,
    running: Option<Running>,
    _dbs: PerService<TestDb>,
}

impl TestSuite {
    /// Starts the suite on `backend` with configuration `overrides` (`QILU__…` entries);
    /// `None` when the backend is unavailable outside CI.
    pub async fn start(backend: Backend, overrides: &[(&str, String)]) -> Option<TestSuite> {
        let dbs = databases(backend).await?;
        let config = test_config(overrides);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = crate::start(&config, listener, &options(&dbs, Clocks::default()))
            .await
            .expect("start the suite");
        let addr = running.addr();
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to the suite");
        Some(TestSuite {
            addr,
            config: running.config().clone(),
            channel,
            running: Some(running),
            _dbs: dbs,
        })
    }

    /// Stops the server, waits for its drain, and fails the test if it failed.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running
                .stop()
                .await
                .expect("the suite served and stopped cleanly");
        }
    }
}

/// The three services each on its own ephemeral port over its own fresh database, peers wired
/// to each other, as [`TestServer`]s (each can be stopped alone); `overrides` apply to all
/// three. `None` when the backend is unavailable outside CI.
pub async fn start_apart(
    backend: Backend,
    overrides: &[(&str, String)],
    clocks: Clocks,
) -> Option<PerService<TestServer>> {
    let dbs = databases(backend).await?;
    let config = test_config(overrides);
    let bind = || async {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
    };
    let listeners = PerService {
        registry: bind().await,
        review: bind().await,
        awards: bind().await,
    };
    let running = crate::start_apart(&config, listeners, &options(&dbs, clocks))
        .await
        .expect("start the suite");
    let mut dbs = dbs.map(|_, db| Some(db));
    let mut servers = Vec::with_capacity(Service::ALL.len());
    for (service, running) in [
        (Service::Registry, running.registry),
        (Service::Review, running.review),
        (Service::Awards, running.awards),
    ] {
        let db = match service {
            Service::Registry => dbs.registry.take(),
            Service::Review => dbs.review.take(),
            Service::Awards => dbs.awards.take(),
        }
        .expect("one database per service");
        let addr = running.addr();
        let config = running.config().clone();
        let sweepers = running.sweepers();
        let stop = async move {
            running
                .stop()
                .await
                .expect("the service served and stopped cleanly");
        };
        servers.push(TestServer::attach(addr, config, service.name(), db, sweepers, stop).await);
    }
    let mut servers = servers.into_iter();
    Some(PerService {
        registry: servers.next()?,
        review: servers.next()?,
        awards: servers.next()?,
    })
}
