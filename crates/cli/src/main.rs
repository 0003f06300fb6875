//! `qilu`: the all-in-one development server and the operator's command line.
//!
//! - `qilu dev` runs all three services in one process on SQLite under `./data` and prints a
//!   development admin token;
//! - `qilu token` mints a development token from the configured HS256 secret;
//! - `qilu migrate` applies a service's migrations once (containers run it as a one-shot job);
//! - `qilu enterprises | achievements | programs | audit …` are client commands against a running
//!   suite (`--addr`, `--token` / `QILU_TOKEN`, `--output table|json`).
//!
//! The client commands need only the contracts, the auth and config parts of `qilu-common` and
//! GB 32100 (`qilu-uscc`); `dev` and `migrate` embed the suite (`qilu-suite`) and exist only with
//! the `server` feature (on by default), so `--no-default-features` builds a client that
//! compiles no service.

mod changes;
mod client;
#[cfg(feature = "server")]
mod demo;
mod enterprises;
mod history_import;
mod import;
mod import_operation;
mod output;
mod resources;
#[cfg(feature = "server")]
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use client::Conn;
use output::Format;
use qilu_common::auth::{Role, TokenRequest, mint_hs256};
use qilu_common::config::{Config, Sources};
use resources::Service;

#[derive(Debug, Parser)]
#[command(
    name = "qilu",
    version = qilu_common::version::LONG,
    about = "Qilu: green, low-carbon innovation programme services"
)]
struct Cli {
    /// Directory with `default.toml` and `$QILU_ENV.toml`.
    #[arg(long, global = true, default_value = "config")]
    config_dir: PathBuf,
    /// The suite's address: where client commands call, and where `qilu dev` listens.
    #[arg(long, global = true, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Bearer token for client commands (mint one with `qilu token`).
    #[arg(long, global = true, env = "QILU_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How client commands print results.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in one process on SQLite (development).
    #[cfg(feature = "server")]
    Dev {
        /// Directory for the SQLite databases.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// After starting, load a realistic programme year through the public RPCs (safe to
        /// repeat on the same data directory).
        #[arg(long)]
        demo: bool,
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
    #[cfg(feature = "server")]
    Migrate {
        /// Which service's database.
        #[arg(value_enum, default_value = "all")]
        service: ServiceArg,
    },
    /// Print the effective configuration with secrets redacted.
    PrintConfig,
    /// Registry enterprises: get, list, validate a USCC, import a CSV.
    Enterprises {
        #[command(subcommand)]
        command: EnterprisesCommand,
    },
    /// Registry history imports: high-tech certificates with their annual reports, annual
    /// figures (CSV; see the README for the columns).
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Review service achievements: get, submit, screen.
    Achievements {
        #[command(subcommand)]
        command: AchievementsCommand,
    },
    /// Awards service programs: get, allocate.
    Programs {
        #[command(subcommand)]
        command: ProgramsCommand,
    },
    /// A service's change feed: its head cursor, or follow it as NDJSON (one `Change` per line
    /// on stdout, the cursor to resume from on stderr).
    Changes {
        #[command(subcommand)]
        command: ChangesCommand,
    },
    /// A service's tamper-evident audit log: list events, verify the hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum EnterprisesCommand {
    /// Show one enterprise.
    Get {
        /// Its USCC or resource name (`enterprises/USCC`).
        uscc_or_name: String,
    },
    /// List enterprises.
    List {
        /// AIP-160 filter, e.g. `city = "Jinan" AND green_category = GREEN_CATEGORY_CLEAN_ENERGY`.
        #[arg(long, default_value = "")]
        filter: String,
        /// `uscc` (default) or `display_name`, optionally followed by ` desc`.
        #[arg(long, default_value = "")]
        order_by: String,
        /// Enterprises per page (1-1000; default 50).
        #[arg(long)]
        page_size: Option<i32>,
        /// Start from this page token (printed by a previous list).
        #[arg(long, default_value = "")]
        page_token: String,
        /// Follow every page.
        #[arg(long)]
        all: bool,
    },
    /// Check a Unified Social Credit Code and explain its parts (exit 1 when not accepted).
    Validate {
        /// The code.
        uscc: String,
    },
    /// Import enterprises from a CSV file (header row; see the README for the columns).
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Where to write rejected rows with their reasons (default: FILE.rejected.csv).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Check every row and report, but write nothing.
        #[arg(long)]
        validate_only: bool,
        /// Rows per stream message (1-1000).
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Import as an import resource and its long-running operation (CreateImport,
        /// AppendImportRows, StartImport, the rejected rows from ListImportRowResults) instead
        /// of one client stream: progress as the server processes rows, nothing lost if the
        /// connection drops.
        #[arg(long)]
        operation: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Import high-tech certificates with their annual-report history from a CSV file.
    Certificates {
        /// The CSV file.
        file: PathBuf,
        /// Where to write rejected rows with their reasons (default: FILE.rejected.csv).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Check every row and report, but write nothing.
        #[arg(long)]
        validate_only: bool,
        /// Import as an import resource and its long-running operation (CreateImport,
        /// AppendImportRows, StartImport, the rejected rows from ListImportRowResults) instead
        /// of one client stream: progress as the server processes rows, nothing lost if the
        /// connection drops.
        #[arg(long)]
        operation: bool,
    },
    /// Import annual figures (one enterprise-year per row) from a CSV file.
    Figures {
        /// The CSV file.
        file: PathBuf,
        /// Where to write rejected rows with their reasons (default: FILE.rejected.csv).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Check every row and report, but write nothing.
        #[arg(long)]
        validate_only: bool,
        /// Import as an import resource and its long-running operation (CreateImport,
        /// AppendImportRows, StartImport, the rejected rows from ListImportRowResults) instead
        /// of one client stream: progress as the server processes rows, nothing lost if the
        /// connection drops.
        #[arg(long)]
        operation: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AchievementsCommand {
    /// Show one achievement with its screening and decision.
    Get {
        /// `achievements/ID` or ID.
        name: String,
    },
    /// Submit a draft (rule screening runs; a veto makes it VETOED).
    Submit {
        /// `achievements/ID` or ID.
        name: String,
    },
    /// Screen an achievement's green data without storing anything (dry run).
    Screen {
        /// `achievements/ID` or ID.
        name: String,
        /// Veto rule set to use (`vetoRuleSets/ID` or ID); default: the active one.
        #[arg(long)]
        rule_set: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ProgramsCommand {
    /// Show one program.
    Get {
        /// `programs/ID` or ID.
        name: String,
    },
    /// Allocate a closed program (all or nothing), or preview with --dry-run.
    Allocate {
        /// `programs/ID` or ID.
        name: String,
        /// Preview only (validate_only): nothing is stored.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// List a service's audit events in sequence order.
    List {
        /// Which service's log.
        #[arg(long, value_enum)]
        service: Service,
        /// AIP-160 filter on `resource` and `actor`, e.g. `resource = "enterprises/…"`.
        #[arg(long, default_value = "")]
        filter: String,
        /// Events per page (1-1000; default 50).
        #[arg(long)]
        page_size: Option<i32>,
        /// Follow every page.
        #[arg(long)]
        all: bool,
    },
    /// Verify a service's audit hash chain (exit 1 when broken).
    Verify {
        /// Which service's log.
        #[arg(long, value_enum)]
        service: Service,
        /// A head recorded earlier by a witness: its sequence…
        #[arg(long, requires = "witnessed_hash", default_value_t = 0)]
        witnessed_sequence: i64,
        /// …and its hash.
        #[arg(long, default_value = "")]
        witnessed_hash: String,
    },
}

#[derive(Debug, Subcommand)]
enum ChangesCommand {
    /// Print the feed's head cursor: follow from it to see only changes made from now on.
    Head {
        /// Which service's feed.
        #[arg(long, value_enum, default_value = "registry")]
        service: Service,
    },
    /// Print every change after a cursor, then (unless --once) new changes as they commit.
    Follow {
        /// Which service's feed.
        #[arg(long, value_enum, default_value = "registry")]
        service: Service,
        /// Start after this cursor (default: from the first change).
        #[arg(long, conflicts_with = "from_head")]
        after: Option<String>,
        /// Start at the head: only changes committed from now on.
        #[arg(long)]
        from_head: bool,
        /// AIP-160 filter, e.g. `resource_type = "registry.qilu.gov.cn/HighTechCertificate"`.
        #[arg(long, default_value = "")]
        filter: String,
        /// Page until caught up, then exit (instead of watching).
        #[arg(long)]
        once: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Officer,
    Expert,
    Enterprise,
    Auditor,
    Service,
    /// A public portal: published results only.
    Public,
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
            RoleArg::Public => Role::Public,
        }
    }
}

#[cfg(feature = "server")]
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
        Ok(code) => code,
        Err(message) => {
            eprintln!("qilu: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let format = cli.output;
    let conn = || Conn::connect(&cli.addr, cli.token.clone());
    match cli.command {
        Command::Enterprises { command } => {
            let conn = conn().await?;
            return match command {
                EnterprisesCommand::Get { uscc_or_name } => {
                    enterprises::get(&conn, format, &uscc_or_name).await
                }
                EnterprisesCommand::List {
                    filter,
                    order_by,
                    page_size,
                    page_token,
                    all,
                } => {
                    let options = enterprises::ListOptions {
                        filter,
                        order_by,
                        page_size,
                        page_token,
                        all,
                    };
                    enterprises::list(&conn, format, options).await
                }
                EnterprisesCommand::Validate { uscc } => {
                    enterprises::validate(&conn, format, &uscc).await
                }
                EnterprisesCommand::Import {
                    file,
                    report,
                    validate_only,
                    batch,
                    operation,
                } => {
                    let options = import::ImportOptions {
                        file,
                        report,
                        validate_only,
                        batch,
                        operation,
                    };
                    import::import(&conn, format, options).await
                }
            };
        }
        Command::Import { command } => {
            let conn = conn().await?;
            let (kind, file, report, validate_only, operation) = match command {
                ImportCommand::Certificates {
                    file,
                    report,
                    validate_only,
                    operation,
                } => (
                    history_import::Kind::Certificates,
                    file,
                    report,
                    validate_only,
                    operation,
                ),
                ImportCommand::Figures {
                    file,
                    report,
                    validate_only,
                    operation,
                } => (
                    history_import::Kind::Figures,
                    file,
                    report,
                    validate_only,
                    operation,
                ),
            };
            let options = history_import::Options {
                file,
                report,
                validate_only,
                operation,
            };
            return history_import::import(&conn, format, kind, options).await;
        }
        Command::Achievements { command } => {
            let conn = conn().await?;
            return match command {
                AchievementsCommand::Get { name } => {
                    resources::achievement_get(&conn, format, &name).await
                }
                AchievementsCommand::Submit { name } => {
                    resources::achievement_submit(&conn, format, &name).await
                }
                AchievementsCommand::Screen { name, rule_set } => {
                    resources::achievement_screen(&conn, format, &name, rule_set.as_deref()).await
                }
            };
        }
        Command::Programs { command } => {
            let conn = conn().await?;
            return match command {
                ProgramsCommand::Get { name } => resources::program_get(&conn, format, &name).await,
                ProgramsCommand::Allocate { name, dry_run } => {
                    resources::program_allocate(&conn, format, &name, dry_run).await
                }
            };
        }
        Command::Changes { command } => {
            let conn = conn().await?;
            return match command {
                ChangesCommand::Head { service } => changes::head(&conn, service).await,
                ChangesCommand::Follow {
                    service,
                    after,
                    from_head,
                    filter,
                    once,
                } => {
                    let start = match (after, from_head) {
                        (_, true) => changes::Start::Head,
                        (after, false) => changes::Start::After(after.unwrap_or_default()),
                    };
                    changes::follow(&conn, service, start, filter, once).await
                }
            };
        }
        Command::Audit { command } => {
            let conn = conn().await?;
            return match command {
                AuditCommand::List {
                    service,
                    filter,
                    page_size,
                    all,
                } => resources::audit_list(&conn, format, service, filter, page_size, all).await,
                AuditCommand::Verify {
                    service,
                    witnessed_sequence,
                    witnessed_hash,
                } => {
                    let request = qilu_proto::common::VerifyAuditChainRequest {
                        witnessed_sequence,
                        witnessed_hash,
                    };
                    resources::audit_verify(&conn, format, service, request).await
                }
            };
        }
        _ => {}
    }
    operate(cli).await.map(|()| ExitCode::SUCCESS)
}

/// The commands that read the configuration, and (with the `server` feature) run the suite.
async fn operate(cli: Cli) -> Result<(), String> {
    let config = Config::load(&Sources {
        dir: Some(cli.config_dir),
        ..Sources::default()
    })
    .map_err(|e| e.to_string())?;
    match cli.command {
        #[cfg(feature = "server")]
        Command::Dev { data_dir, demo } => {
            let listen = cli.addr.trim();
            let listen = listen.split_once("://").map_or(listen, |(_, rest)| rest);
            let addr = listen
                .trim_end_matches('/')
                .parse()
                .map_err(|e| format!("--addr {:?} is not HOST:PORT to listen on: {e}", cli.addr))?;
            server::dev(config, addr, data_dir, demo).await
        }
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
        #[cfg(feature = "server")]
        Command::Migrate { service } => {
            let services: &[qilu_suite::Service] = match service {
                ServiceArg::All => &qilu_suite::Service::ALL,
                ServiceArg::Registry => &[qilu_suite::Service::Registry],
                ServiceArg::Review => &[qilu_suite::Service::Review],
                ServiceArg::Awards => &[qilu_suite::Service::Awards],
            };
            server::migrate(&config, services).await
        }
        Command::PrintConfig => {
            println!("{}", config.redacted());
            Ok(())
        }
        Command::Enterprises { .. }
        | Command::Import { .. }
        | Command::Achievements { .. }
        | Command::Programs { .. }
        | Command::Changes { .. }
        | Command::Audit { .. } => Err("not an operating command".into()),
    }
}
