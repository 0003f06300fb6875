//! What a service binary does, written once: parse the command line, load and check the
//! configuration, start telemetry, connect to the database, migrate, build the service, bind,
//! serve until SIGTERM/SIGINT. A service implements [`ServiceApp`]; its `main.rs` is one line.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use sea_orm::{DatabaseConnection, DbErr};

use crate::config::{Config, Sources};
use crate::server::{ServiceDef, serve, shutdown_signal};

/// A Qilu service, as the binaries and `qilu dev` start it.
pub trait ServiceApp {
    /// Short name: `registry`, `review` or `awards` (database name, logs, lock keys).
    const NAME: &'static str;
    /// Fully qualified gRPC service name (for health checks).
    const GRPC_NAME: &'static str;

    /// Applies the service's migrations (common tables first).
    fn migrate(db: &DatabaseConnection) -> impl Future<Output = Result<(), DbErr>> + Send;

    /// Builds the mountable service from configuration and a migrated database.
    fn build(
        config: &Config,
        db: DatabaseConnection,
    ) -> impl Future<Output = Result<ServiceDef, String>> + Send;
}

/// Command line shared by the service binaries.
#[derive(Debug, Parser)]
#[command(version = crate::version::LONG)]
struct Cli {
    /// Directory with `default.toml` and `$QILU_ENV.toml`.
    #[arg(long, default_value = "config")]
    config_dir: PathBuf,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    print_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Apply migrations and exit (a one-shot job before replicas start).
    Migrate,
    /// Ask a running server for its gRPC health; exit 0 when SERVING (container health checks).
    Healthcheck {
        /// Address to ask; defaults to the configured server address.
        #[arg(long)]
        addr: Option<String>,
    },
}

/// Loads configuration from the usual places.
pub fn load_config(dir: PathBuf) -> Result<Config, String> {
    Config::load(&Sources {
        dir: Some(dir),
        ..Sources::default()
    })
    .map_err(|e| e.to_string())
}

/// Connects to the service's database and, if configured, migrates it.
pub async fn open_database<A: ServiceApp>(
    config: &Config,
    migrate: bool,
) -> Result<DatabaseConnection, String> {
    let url = config.database_url(A::NAME);
    let db = crate::db::connect(&url, &config.database)
        .await
        .map_err(|e| {
            format!(
                "{}: cannot open database {}: {e}",
                A::NAME,
                crate::config::redact_url(&url)
            )
        })?;
    crate::observe::observe_pool(&db, A::NAME, config);
    if migrate {
        A::migrate(&db)
            .await
            .map_err(|e| format!("{}: migration failed: {e}", A::NAME))?;
    }
    Ok(db)
}

/// The whole of a service binary's `main`.
pub async fn main<A: ServiceApp>() -> ExitCode {
    // The binary's own name in --help and --version (the derive would say `qilu-common`).
    let matches = Cli::command()
        .name(format!("qilu-{}", A::NAME))
        .about(format!("Qilu's {} service ({})", A::NAME, A::GRPC_NAME))
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run::<A>(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("qilu-{}: {message}", A::NAME);
            ExitCode::FAILURE
        }
    }
}

async fn run<A: ServiceApp>(cli: Cli) -> Result<(), String> {
    let config = load_config(cli.config_dir)?;
    if cli.print_config {
        println!("{}", config.redacted());
        return Ok(());
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck { addr } => {
            let addr = addr.unwrap_or_else(|| {
                let a = config.server.addr;
                if a.ip().is_unspecified() {
                    format!("http://127.0.0.1:{}", a.port())
                } else {
                    format!("http://{a}")
                }
            });
            healthcheck(&addr, A::GRPC_NAME).await
        }
        Command::Migrate => {
            crate::telemetry::init(&config.telemetry);
            open_database::<A>(&config, true).await?;
            tracing::info!(service = A::NAME, "migrations applied");
            Ok(())
        }
        Command::Serve => {
            crate::telemetry::init(&config.telemetry);
            let db = open_database::<A>(&config, config.database.migrate_on_start).await?;
            let service = A::build(&config, db.clone()).await?;
            let listener = tokio::net::TcpListener::bind(config.server.addr)
                .await
                .map_err(|e| format!("cannot bind {}: {e}", config.server.addr))?;
            serve(listener, vec![service], &config, shutdown_signal())
                .await
                .map_err(|e| e.to_string())?;
            db.close()
                .await
                .map_err(|e| format!("closing the database pool: {e}"))?;
            tracing::info!(service = A::NAME, "stopped cleanly");
            Ok(())
        }
    }
}

/// gRPC health check of `service` at `addr`; Ok when SERVING.
pub async fn healthcheck(addr: &str, service: &str) -> Result<(), String> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let endpoint = tonic::transport::Endpoint::from_shared(addr.to_string())
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(3));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("cannot reach {addr}: {e}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .map_err(|s| format!("health check failed: {}", s.message()))?
        .into_inner();
    if response.status == ServingStatus::Serving as i32 {
        println!("{service}: SERVING");
        Ok(())
    } else {
        Err(format!(
            "{service}: not serving (status {})",
            response.status
        ))
    }
}
