//! Layered configuration: built-in defaults < `config/default.toml` < `config/$QILU_ENV.toml`
//! < environment `QILU__SECTION__KEY`. A bad value or unknown key fails start-up with a message
//! that names the key; nothing silently falls back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole suite's configuration. One struct for every binary, so the same files and
/// environment serve the all-in-one dev server and the per-service containers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gRPC listener.
    pub server: ServerConfig,
    /// The service's own database.
    pub database: DatabaseConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// Logs.
    pub telemetry: TelemetryConfig,
    /// Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// Programme-wide settings.
    pub programme: ProgrammeConfig,
    /// Where the other services are, for service-to-service calls.
    pub peers: PeersConfig,
    /// Registry-specific settings.
    pub registry: RegistryConfig,
    /// The sweep that writes the changes time makes (see `qilu_common::sweep`).
    pub sweep: SweepConfig,
}

/// When each service writes the changes that the passing of time makes (a certificate expiring,
/// an objection window closing) into its audit log and change feed.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Off only for tools that must not write on their own.
    pub enabled: bool,
    /// Local time of day (`HH:MM`, programme time zone) of the daily sweep; a sweep also runs at
    /// start. A time-driven change reaches the feed at most one day (plus the sweep's run time)
    /// after the date it takes effect.
    pub daily_at: String,
    /// A sweep that fails (the database is unreachable) is tried again after this many seconds.
    pub retry_seconds: u64,
}

impl SweepConfig {
    /// `daily_at` as a time of day (checked when the configuration loads).
    pub fn daily_at(&self) -> chrono::NaiveTime {
        chrono::NaiveTime::parse_from_str(&self.daily_at, "%H:%M").unwrap_or_default()
    }
}

/// The gRPC listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind, e.g. `0.0.0.0:50051`.
    pub addr: SocketAddr,
    /// Largest request or response message accepted, in bytes (tonic's default is 4 MiB; set
    /// deliberately so a bulk import page fits and a hostile message does not).
    pub max_message_bytes: usize,
    /// Largest request header list a call may carry, in bytes as HTTP/2 counts them (name +
    /// value + 32 per header). A call over it is refused alone with RESOURCE_EXHAUSTED; the
    /// connection and the caller's other calls go on. Header blocks over 16 times this are
    /// refused by HTTP/2 itself (the stream is reset, or the connection if the block cannot
    /// even be skipped).
    pub max_header_bytes: u32,
    /// How long in-flight calls may run after SIGTERM before the server exits anyway.
    pub drain_seconds: u64,
    /// Optional TLS (rustls): paths to a PEM certificate chain and private key.
    pub tls_cert_path: Option<PathBuf>,
    /// PEM private key for `tls_cert_path`.
    pub tls_key_path: Option<PathBuf>,
    /// Serve HTTP/JSON on the same address (each RPC at its `google.api.http` binding, told
    /// apart from gRPC by content type).
    pub http_json: bool,
    /// Serve grpc-web (browsers) on the same address.
    pub grpc_web: bool,
    /// Origins whose pages may call this server from a browser (CORS), e.g.
    /// `["https://portal.example.gov.cn"]`; none by default, so only same-origin pages can.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
}

/// The service's own database.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path.db` or `postgres://user@host/db`. `{service}` is replaced by the service
    /// name (`registry`, `review`, `awards`), so one setting gives each service its own database.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// SQLite: how long a writer waits for the lock before giving up.
    pub busy_timeout_ms: u64,
    /// How long a call waits for a pooled connection (including opening a new one) before it
    /// fails with `UNAVAILABLE`: the fail-fast bound while the database is gone.
    pub acquire_timeout_ms: u64,
    /// How long start-up keeps trying to open the first connection (e.g. while PostgreSQL is
    /// still starting) before the service gives up and exits.
    pub connect_timeout_ms: u64,
    /// How often the health probe checks that the database answers.
    pub health_interval_ms: u64,
    /// How long one health probe may take before the database counts as unreachable.
    pub health_timeout_ms: u64,
    /// Run pending migrations at start (with a lock on PostgreSQL). Turn off when a one-shot
    /// `migrate` job runs them.
    pub migrate_on_start: bool,
}

/// Token verification. Development uses an HS256 shared secret; production uses public keys.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 secret (development). Redacted by `--print-config`.
    pub hs256_secret: Option<String>,
    /// PEM files of RS256 or EdDSA public keys (production); any one may verify a token.
    pub public_key_paths: Vec<PathBuf>,
    /// Required `iss` claim.
    pub issuer: String,
    /// Required `aud` claim.
    pub audience: String,
    /// Allowed clock skew, seconds.
    pub leeway_seconds: u64,
}

/// Log output.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `pretty` for people, `json` for containers.
    pub format: LogFormat,
    /// `tracing` filter, e.g. `info,qilu=debug`.
    pub filter: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, coloured when a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Prometheus metrics.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the `/metrics` HTTP endpoint; none disables it.
    pub addr: Option<SocketAddr>,
}

/// Programme-wide settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeConfig {
    /// IANA time zone in which deadlines and windows ("end of May", "10 days") are computed.
    pub time_zone: String,
}

/// Addresses of the other services and how to call them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeersConfig {
    /// Registry endpoint, e.g. `http://registry:50051`.
    pub registry: String,
    /// Review endpoint.
    pub review: String,
    /// Awards endpoint.
    pub awards: String,
    /// Deadline of each peer call.
    pub timeout_ms: u64,
    /// Retries after UNAVAILABLE (never after any other status).
    pub retries: u32,
    /// Bearer token this service presents to its peers (role `service`). When unset and an
    /// HS256 secret is configured, one is minted at start.
    pub service_token: Option<String>,
}

/// Registry-specific settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Real early pilot USCCs that fail the GB 32100 check (reported as `KNOWN_EXCEPTION`).
    pub known_exception_usccs: Vec<String>,
}

/// Built-in defaults: a development setup on SQLite under `./data`.
pub const DEFAULTS: &str = r#"
[server]
addr = "127.0.0.1:50051"
max_message_bytes = 8388608
max_header_bytes = 16384
drain_seconds = 20
http_json = true
grpc_web = true

[database]
url = "sqlite://data/{service}.db"
max_connections = 8
busy_timeout_ms = 5000
acquire_timeout_ms = 1000
connect_timeout_ms = 5000
health_interval_ms = 1000
health_timeout_ms = 1000
migrate_on_start = true

[auth]
hs256_secret = "qilu-development-secret-change-me"
public_key_paths = []
issuer = "qilu"
audience = "qilu"
leeway_seconds = 30

[telemetry]
format = "pretty"
filter = "info"

[metrics]

[programme]
time_zone = "Asia/Shanghai"

[peers]
registry = "http://127.0.0.1:50051"
review = "http://127.0.0.1:50051"
awards = "http://127.0.0.1:50051"
timeout_ms = 5000
retries = 2

[registry]
known_exception_usccs = ["91350100M0001TGQXM"]

[sweep]
enabled = true
daily_at = "00:05"
retry_seconds = 60
"#;

/// Where configuration comes from. Tests pass an explicit environment map instead of touching
/// the process environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Directory holding `default.toml` and `$QILU_ENV.toml` (default `./config`).
    pub dir: Option<PathBuf>,
    /// The `QILU_ENV` value (default: the process's `QILU_ENV`, if any).
    pub env_name: Option<String>,
    /// Environment variables to use instead of the process environment.
    pub environment: Option<HashMap<String, String>>,
}

/// Configuration could not be loaded; the message names the file or key at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads the layered configuration and checks it.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let dir = sources
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("config"));
        let env_name = sources
            .env_name
            .clone()
            .or_else(|| std::env::var("QILU_ENV").ok())
            .filter(|s| !s.is_empty());
        let mut builder = ::config::Config::builder().add_source(::config::File::from_str(
            DEFAULTS,
            ::config::FileFormat::Toml,
        ));
        builder = builder.add_source(file_source(&dir.join("default.toml")));
        if let Some(name) = env_name {
            let path = dir.join(format!("{name}.toml"));
            if !path.exists() {
                return Err(ConfigError(format!(
                    "QILU_ENV={name} but {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(file_source(&path));
        }
        let environment = ::config::Environment::with_prefix("QILU")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .with_list_parse_key("auth.public_key_paths")
            .with_list_parse_key("registry.known_exception_usccs")
            .with_list_parse_key("server.cors_allowed_origins")
            .try_parsing(true)
            .source(sources.environment.clone());
        builder = builder.add_source(environment);
        let merged = builder.build().map_err(|e| ConfigError(e.to_string()))?;
        let config: Config = merged
            .try_deserialize()
            .map_err(|e| ConfigError(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// Checks what serde cannot: values that parse but make no sense.
    fn check(&self) -> Result<(), ConfigError> {
        if chrono::NaiveTime::parse_from_str(&self.sweep.daily_at, "%H:%M").is_err() {
            return Err(ConfigError(format!(
                "sweep.daily_at must be a time of day as HH:MM, not {:?}",
                self.sweep.daily_at
            )));
        }
        if self.sweep.retry_seconds == 0 {
            return Err(ConfigError("sweep.retry_seconds must be at least 1".into()));
        }
        if self.server.max_message_bytes < 64 * 1024 {
            return Err(ConfigError(
                "server.max_message_bytes must be at least 65536".into(),
            ));
        }
        if !(1024..=1 << 20).contains(&self.server.max_header_bytes) {
            return Err(ConfigError(format!(
                "server.max_header_bytes must be between 1024 and 1048576, got {}",
                self.server.max_header_bytes
            )));
        }
        if !(self.database.url.starts_with("sqlite:") || self.database.url.starts_with("postgres"))
        {
            return Err(ConfigError(format!(
                "database.url must start with sqlite: or postgres://, got {:?}",
                redact_url(&self.database.url)
            )));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError("database.max_connections must be > 0".into()));
        }
        for (key, value, min, max) in [
            (
                "acquire_timeout_ms",
                self.database.acquire_timeout_ms,
                10,
                60_000,
            ),
            (
                "connect_timeout_ms",
                self.database.connect_timeout_ms,
                10,
                600_000,
            ),
            (
                "health_interval_ms",
                self.database.health_interval_ms,
                100,
                60_000,
            ),
            (
                "health_timeout_ms",
                self.database.health_timeout_ms,
                10,
                60_000,
            ),
        ] {
            if !(min..=max).contains(&value) {
                return Err(ConfigError(format!(
                    "database.{key} must be between {min} and {max}, got {value}"
                )));
            }
        }
        if self.programme.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError(format!(
                "programme.time_zone {:?} is not an IANA time zone",
                self.programme.time_zone
            )));
        }
        if self.auth.hs256_secret.as_deref().is_none_or(str::is_empty)
            && self.auth.public_key_paths.is_empty()
        {
            return Err(ConfigError(
                "auth: set auth.hs256_secret or auth.public_key_paths; without either no token can be verified".into(),
            ));
        }
        if self.server.tls_cert_path.is_some() != self.server.tls_key_path.is_some() {
            return Err(ConfigError(
                "server.tls_cert_path and server.tls_key_path must be set together".into(),
            ));
        }
        Ok(())
    }

    /// The database URL for one service (`{service}` substituted).
    pub fn database_url(&self, service: &str) -> String {
        self.database.url.replace("{service}", service)
    }

    /// The programme time zone (checked at load).
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.programme
            .time_zone
            .parse()
            .unwrap_or(chrono_tz::Asia::Shanghai)
    }

    /// The effective configuration as pretty JSON with every secret replaced by `"<redacted>"`.
    pub fn redacted(&self) -> String {
        let mut copy = self.clone();
        if copy.auth.hs256_secret.is_some() {
            copy.auth.hs256_secret = Some("<redacted>".into());
        }
        if copy.peers.service_token.is_some() {
            copy.peers.service_token = Some("<redacted>".into());
        }
        copy.database.url = redact_url(&copy.database.url);
        render(&copy)
    }
}

fn file_source(path: &Path) -> ::config::File<::config::FileSourceFile, ::config::FileFormat> {
    ::config::File::from(path.to_path_buf())
        .format(::config::FileFormat::Toml)
        .required(false)
}

/// Hides a password in a database URL (`postgres://user:secret@host` → `postgres://user:***@host`).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.split_once('@')
        && let Some((user, _password)) = creds.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

fn render(config: &Config) -> String {
    // serde_json → a stable, readable rendering without adding a TOML serializer dependency.
    serde_json::to_string_pretty(config).unwrap_or_else(|e| format!("<unprintable: {e}>"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn load_with(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        Config::load(&Sources {
            dir: Some(dir.path().to_path_buf()),
            env_name: None,
            environment: Some(
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        })
    }

    #[test]
    fn defaults_load_and_point_at_sqlite_under_data() {
        let c = load_with(&[]).unwrap();
        assert_eq!(c.database_url("registry"), "sqlite://data/registry.db");
        assert_eq!(c.server.addr.port(), 50051);
    }

    #[test]
    fn environment_overrides_defaults() {
        let c = load_with(&[
            ("QILU__SERVER__ADDR", "0.0.0.0:6000"),
            ("QILU__DATABASE__URL", "postgres://u:pw@db/qilu_{service}"),
        ])
        .unwrap();
        assert_eq!(c.server.addr.port(), 6000);
        assert_eq!(c.database_url("awards"), "postgres://u:pw@db/qilu_awards");
        assert!(c.redacted().contains("u:***@db"));
        assert!(!c.redacted().contains("qilu-development-secret"));
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = load_with(&[("QILU__SERVER__ADDR", "not-an-address")]).unwrap_err();
        assert!(err.to_string().contains("addr"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let err = load_with(&[("QILU__SERVER__ADRESS", "0.0.0.0:1")]).unwrap_err();
        assert!(err.to_string().contains("adress"), "{err}");
    }

    #[test]
    fn database_timeouts_default_short_and_are_checked() {
        let c = load_with(&[]).unwrap();
        assert_eq!(c.database.acquire_timeout_ms, 1000);
        assert!(c.database.health_interval_ms <= 1000);
        let err = load_with(&[("QILU__DATABASE__ACQUIRE_TIMEOUT_MS", "0")]).unwrap_err();
        assert!(
            err.to_string().contains("database.acquire_timeout_ms"),
            "{err}"
        );
        let err = load_with(&[("QILU__DATABASE__HEALTH_INTERVAL_MS", "5")]).unwrap_err();
        assert!(
            err.to_string().contains("database.health_interval_ms"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_time_zone_is_refused() {
        let err = load_with(&[("QILU__PROGRAMME__TIME_ZONE", "Mars/Olympus")]).unwrap_err();
        assert!(err.to_string().contains("programme.time_zone"), "{err}");
    }
}
