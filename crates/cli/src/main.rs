//! `qilu`: the all-in-one development server and the operator's command line.
//!
//! - `qilu dev` runs all three services in one process on SQLite under `./data` and prints a
//!   development admin token;
//! - `qilu token` mints a development token from the configured HS256 secret;
//! - `qilu migrate` applies a service's migrations once (containers run it as a one-shot job).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use qilu_awards::Awards;
use qilu_common::app::{ServiceApp, load_config, open_database};
use qilu_common::auth::{Role, TokenRequest, mint_hs256};
use qilu_common::config::Config;
use qilu_common::server::{serve, shutdown_signal};
use qilu_registry::Registry;
use qilu_review::Review;

#[derive(Debug, Parser)]
#[command(
    name = "qilu",
    version,
    about = "Qilu: green, low-carbon innovation programme services"
)]
struct Cli {
    /// Directory with `default.toml` and `$QILU_ENV.toml`.
    #[arg(long, global = true, default_value = "config")]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in one process on SQLite (development).
    Dev {
        /// Address to serve all three services on.
        #[arg(long, default_value = "127.0.0.1:50051")]
        addr: SocketAddr,
        /// Directory for the SQLite databases.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
    /// Mint a development token (HS256, from auth.hs256_secret).
    Token {
        /// Role(s) to grant; repeat for several.
        #[arg(long = "role", value_enum, required = true)]
        roles: Vec<RoleArg>,
        /// USCC for an enterprise token.
        #[arg(long)]
        enterprise: Option<String>,
        /// Expert id for an expert token.
        #[arg(long)]
        expert: Option<String>,
        /// Subject (`sub` claim).
        #[arg(long, default_value = "dev-user")]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
    },
    /// Apply migrations of one service (or all) to the configured database and exit.
    Migrate {
        /// Which service's database.
        #[arg(value_enum, default_value = "all")]
        service: ServiceArg,
    },
    /// Print the effective configuration with secrets redacted.
    PrintConfig,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Officer,
    Expert,
    Enterprise,
    Auditor,
    Service,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Officer => Role::Officer,
            RoleArg::Expert => Role::Expert,
            RoleArg::Enterprise => Role::Enterprise,
            RoleArg::Auditor => Role::Auditor,
            RoleArg::Service => Role::Service,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServiceArg {
    All,
    Registry,
    Review,
    Awards,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("qilu: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let config = load_config(cli.config_dir)?;
    match cli.command {
        Command::Dev { addr, data_dir } => dev(config, addr, data_dir).await,
        Command::Token {
            roles,
            enterprise,
            expert,
            subject,
            ttl,
        } => {
            let roles: Vec<Role> = roles.into_iter().map(Role::from).collect();
            if roles.contains(&Role::Enterprise) && enterprise.is_none() {
                return Err("an enterprise token needs --enterprise USCC".into());
            }
            if roles.contains(&Role::Expert) && expert.is_none() {
                return Err("an expert token needs --expert ID".into());
            }
            let token = mint_hs256(
                &config.auth,
                &TokenRequest {
                    subject,
                    roles,
                    enterprise,
                    expert,
                    ttl_seconds: ttl,
                },
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Migrate { service } => {
            qilu_common::telemetry::init(&config.telemetry);
            if matches!(service, ServiceArg::All | ServiceArg::Registry) {
                migrate::<Registry>(&config).await?;
            }
            if matches!(service, ServiceArg::All | ServiceArg::Review) {
                migrate::<Review>(&config).await?;
            }
            if matches!(service, ServiceArg::All | ServiceArg::Awards) {
                migrate::<Awards>(&config).await?;
            }
            Ok(())
        }
        Command::PrintConfig => {
            println!("{}", config.redacted());
            Ok(())
        }
    }
}

async fn migrate<A: ServiceApp>(config: &Config) -> Result<(), String> {
    let db = open_database::<A>(config, true).await?;
    db.close().await.map_err(|e| e.to_string())?;
    println!("{}: migrations applied", A::NAME);
    Ok(())
}

/// All three services in one process, one port, SQLite files under `data_dir`.
async fn dev(mut config: Config, addr: SocketAddr, data_dir: PathBuf) -> Result<(), String> {
    config.server.addr = addr;
    if config.database.url.starts_with("sqlite:") {
        config.database.url = format!("sqlite://{}/{{service}}.db", data_dir.display());
    }
    // Every peer is this same process.
    let here = format!("http://{addr}");
    config.peers.registry = here.clone();
    config.peers.review = here.clone();
    config.peers.awards = here;
    qilu_common::telemetry::init(&config.telemetry);

    let registry_db = open_database::<Registry>(&config, true).await?;
    let review_db = open_database::<Review>(&config, true).await?;
    let awards_db = open_database::<Awards>(&config, true).await?;
    let services = vec![
        Registry::build(&config, registry_db.clone()).await?,
        Review::build(&config, review_db.clone()).await?,
        Awards::build(&config, awards_db.clone()).await?,
    ];
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        format!("cannot bind {addr}: {e} (is another qilu dev running? try --addr)")
    })?;
    let token = mint_hs256(
        &config.auth,
        &TokenRequest {
            subject: "dev-admin".into(),
            roles: vec![Role::Admin],
            enterprise: None,
            expert: None,
            ttl_seconds: 86_400,
        },
    )?;
    println!(
        "\nQilu development server on {addr} (registry, review, awards; SQLite under {dir}/)\n\n\
         Development admin token (24 h):\n\n  export QILU_TOKEN={token}\n\n\
         Try:\n  grpcurl -plaintext {addr} list\n  \
         grpcurl -plaintext -H \"authorization: Bearer $QILU_TOKEN\" -d '{{\"uscc\":\"91350100M000100Y43\"}}' \\\n      \
         {addr} qilu.registry.v1.EnterpriseRegistryService/ValidateUscc\n\n\
         Other roles: qilu token --role officer | --role enterprise --enterprise USCC | --role expert --expert ID\n\
         Stop with Ctrl-C.\n",
        dir = data_dir.display()
    );
    serve(listener, services, &config, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    for db in [registry_db, review_db, awards_db] {
        db.close().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
