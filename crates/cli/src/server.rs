//! The commands that run the suite in this process (feature `server`): `qilu dev` and
//! `qilu migrate`. The wiring itself is `qilu-suite`'s; this module only adds what a developer
//! at a terminal needs around it (the data directory, the banner with a token, the demo).

use std::net::SocketAddr;
use std::path::PathBuf;

use qilu_common::auth::{Role, TokenRequest, mint_hs256};
use qilu_common::config::Config;
use qilu_common::server::shutdown_signal;
use qilu_suite::{Options, Service};

use crate::demo;

/// Applies the migrations of `services` to the configured databases (the one-shot job).
pub async fn migrate(config: &Config, services: &[Service]) -> Result<(), String> {
    qilu_common::telemetry::init(&config.telemetry);
    for &service in services {
        qilu_suite::migrate(config, service).await?;
        println!("{}: migrations applied", service.name());
    }
    Ok(())
}

/// All three services in one process, one port, SQLite files under `data_dir`; with `demo`,
/// a programme year is loaded through the public RPCs once the server answers.
pub async fn dev(
    mut config: Config,
    addr: SocketAddr,
    data_dir: PathBuf,
    demo: bool,
) -> Result<(), String> {
    config.server.addr = addr;
    if config.database.url.starts_with("sqlite:") {
        config.database.url = format!("sqlite://{}/{{service}}.db", data_dir.display());
    }
    qilu_common::telemetry::init(&config.telemetry);

    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        format!("cannot bind {addr}: {e} (is another qilu dev running? try --addr)")
    })?;
    let running = qilu_suite::start(&config, listener, &Options::default()).await?;
    let addr = running.addr();
    let here = format!("http://{addr}");
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
         Try:\n  qilu enterprises list\n  grpcurl -plaintext {addr} list\n  \
         grpcurl -plaintext -H \"authorization: Bearer $QILU_TOKEN\" -d '{{\"uscc\":\"91350100M000100Y43\"}}' \\\n      \
         {addr} qilu.registry.v1.EnterpriseRegistryService/ValidateUscc\n\n\
         Other roles: qilu token --role officer | --role enterprise --enterprise USCC | --role expert --expert ID\n\
         Stop with Ctrl-C.\n",
        dir = data_dir.display()
    );
    if demo {
        println!("Loading the demo programme year…");
        match demo::load(running.config(), &here).await {
            Ok(lines) => {
                println!("Demo programme year loaded:");
                for line in lines {
                    println!("  {line}");
                }
                println!();
            }
            Err(e) => {
                // The demo's failure is the error to report; the server's stop is secondary.
                let _ = running.stop().await;
                return Err(e);
            }
        }
    }
    running.until(shutdown_signal()).await
}
