//! Configuration: one typed struct, read once in `main` from flags and `INVITE_*` variables
//! (a flag wins over its variable), then passed down explicitly.
//!
//! | flag | variable | default | meaning |
//! |---|---|---|---|
//! | `--database-url` | `INVITE_DATABASE_URL` | `sqlite://invites.db` | `sqlite://path` or `postgres://...` |
//! | `--database-read-url` | `INVITE_DATABASE_READ_URL` | unset | a PostgreSQL standby (or a multi-host URL with `target_session_attrs=prefer-standby`) that previews missing the cache and lists may read; PostgreSQL only |
//! | `--database-read-max-lag` | `INVITE_DATABASE_READ_MAX_LAG` | `5s` | the staleness bound: the standby serves those reads only while it is known to be within this of the primary |
//! | `--bind` | `INVITE_BIND` | `127.0.0.1:8080` | address to listen on |
//! | `--jwt-secret` | `INVITE_JWT_SECRET` | none | HS256 secret, at least 32 bytes |
//! | `--jwt-public-key-file` | `INVITE_JWT_PUBLIC_KEY_FILE` | none | RS256/ES256/EdDSA public key (PEM) instead |
//! | `--public-url` | `INVITE_PUBLIC_URL` | `http://<bind>` | base of invite links |
//! | `--session-cookie` | `INVITE_SESSION_COOKIE` | `session` | the cookie carrying the platform's bearer token to the invite page |
//! | `--login-url` | `INVITE_LOGIN_URL` | none | where the invite page sends people to sign in (`next=` added) |
//! | `--app-url` | `INVITE_APP_URL` | none | the "Open" link after a join, with `{server_id}` and `{code}` |
//! | `--db-pool-size` | `INVITE_DB_POOL_SIZE` | 10 | most database connections |
//! | `--db-timeout` | `INVITE_DB_TIMEOUT` | `2s` | longest wait for a connection before answering 503 |
//! | `--db-statement-timeout` | `INVITE_DB_STATEMENT_TIMEOUT` | `5s` | longest PostgreSQL statement |
//! | `--log-format` | `INVITE_LOG_FORMAT` | `pretty` | `pretty` or `json` |
//! | `--log` | `INVITE_LOG` | `info` | log filter (`tracing` directives) |
//! | `--workers` | `INVITE_WORKERS` | cores | HTTP worker threads |
//! | `--shutdown-timeout` | `INVITE_SHUTDOWN_TIMEOUT` | `30s` | how long in-flight requests may finish after SIGTERM |
//! | `--preview-cache-ttl` | `INVITE_PREVIEW_CACHE_TTL` | `30s` | longest a cached preview is served; `0s` disables the cache |
//! | `--preview-cache-size` | `INVITE_PREVIEW_CACHE_SIZE` | 100000 | most cached previews |
//! | `--db-queue-timeout` | `INVITE_DB_QUEUE_TIMEOUT` | unset | longest expected wait for a database thread before new work is refused (503 `OVERLOADED`); unset, work is refused only when it could not be served within what remains of `INVITE_DB_TIMEOUT` |
//! | `--db-accept-groups` | `INVITE_DB_ACCEPT_GROUPS` | 1 | on PostgreSQL, how many groups accepts are committed in: a group's batches (each one statement) commit one after another, different groups' side by side |
//! | `--db-create-groups` | `INVITE_DB_CREATE_GROUPS` | 2 | on PostgreSQL, how many groups creates are committed in (a batch's creates are written one after another) |
//! | `--body-timeout` | `INVITE_BODY_TIMEOUT` | `10s` | longest a request body may take to arrive (408) |
//! | `--max-connections-per-address` | `INVITE_MAX_CONNECTIONS_PER_ADDRESS` | 1000 | connections one client address holds open at once (then 429) |
//! | `--rate-limits` | `INVITE_RATE_LIMITS` | `on` | `on` or `off` |
//! | `--rate-limit-accept` | `INVITE_RATE_LIMIT_ACCEPT` | `10/10s` | accepts per user |
//! | `--rate-limit-create` | `INVITE_RATE_LIMIT_CREATE` | `20/60s` | invite creations per user and server |
//! | `--rate-limit-preview` | `INVITE_RATE_LIMIT_PREVIEW` | `100/10s` | previews per client address |
//! | `--rate-limit-unknown-code` | `INVITE_RATE_LIMIT_UNKNOWN_CODE` | `20/60s` | lookups of unknown codes per client address |
//! | `--trusted-proxies` | `INVITE_TRUSTED_PROXIES` | none | CIDRs whose forwarding header is believed |
//! | `--client-address-header` | `INVITE_CLIENT_ADDRESS_HEADER` | `x-forwarded-for` | the header trusted proxies write the client into: `x-forwarded-for` or `forwarded` (RFC 7239); the other is ignored |
//! | `--maintenance` | `INVITE_MAINTENANCE` | unset | `on` or `off` at start (unset: as the database says) |
//! | `--maintenance-message` | `INVITE_MAINTENANCE_MESSAGE` | none | what to tell people during maintenance |
//! | `--maintenance-until` | `INVITE_MAINTENANCE_UNTIL` | none | RFC 3339 end of the window |
//! | `--admin-token` | `INVITE_ADMIN_TOKEN` | none | bearer token of `/admin/*` (at least 32 bytes); without it they answer 404 |
//! | `--webhook-allow-private` | `INVITE_WEBHOOK_ALLOW_PRIVATE` | `off` | whether webhooks may target private, loopback and link-local addresses |
//! | `--events-retention` | `INVITE_EVENTS_RETENTION` | `7d` | how long events stay in the outbox |
//! | `--gateway-heartbeat` | `INVITE_GATEWAY_HEARTBEAT` | `30s` | the gateway's heartbeat interval; a client silent for 1.5 of them is closed |
//! | `--gateway-max-per-user` | `INVITE_GATEWAY_MAX_PER_USER` | 10 | gateway sessions one user may hold, on all instances together |
//! | `--gateway-queue` | `INVITE_GATEWAY_QUEUE` | 1024 | frames a session may have waiting before it is closed as a slow consumer |
//! | `--temporary-grace` | `INVITE_TEMPORARY_GRACE` | `60s` | how long a temporary member's last gateway session may be gone before they are removed |
//! | `--analytics` | `INVITE_ANALYTICS` | `on` | whether this instance keeps per-invite analytics: counts previews and refused accepts, and folds joins in from the outbox (`off`: neither; another instance, or this one turned on again, folds the joins within the outbox's retention) |
//! | `--analytics-flush-interval` | `INVITE_ANALYTICS_FLUSH_INTERVAL` | `60s` | how often each instance writes the previews and refusals it counted, and joins are folded in: what the analytics counted by other instances than the one read lag by, and what a crash loses of previews and refusals (a flush writes a row per invite previewed since the last, so its cost falls with the interval, not with the previews) |

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::builder::TypedValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};
use invite_runtime::rate_limit::Rate;
use invite_store::{DatabaseUrl, PoolConfig};
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

use crate::guard::auth::{AuthConfigError, Authenticator};
use crate::guard::client_addr::ClientAddressHeader;
use crate::server::telemetry::LogFormat;

/// The `invite-server` command line.
#[derive(Debug, Parser)]
#[command(
    name = "invite-server",
    version,
    about = "Invite links for chat servers: create, preview, accept."
)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Settings shared by every command.
    #[command(flatten)]
    pub(crate) config: Config,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum Command {
    /// Run the HTTP service (applies pending migrations first).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Print a token for a user, signed with the configured secret.
    Token {
        /// The user's id.
        #[arg(long)]
        user: uuid::Uuid,
        /// The `username` claim.
        #[arg(long)]
        username: Option<String>,
        /// How long the token is valid (`30m`, `1h`, `7d`).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Serve with a demo server and print tokens, an invite link and curl commands to try.
    Demo,
    /// Check the configuration, the database and the migrations, and exit.
    Check,
}

/// Every setting, each parsed and checked by clap as the command line is read (a `Setting`
/// parser names the variable of a malformed one), so that it stops the process before anything
/// is touched; the methods below only assemble them.
#[derive(Debug, Clone, Args)]
pub(crate) struct Config {
    /// Database: `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "INVITE_DATABASE_URL", default_value = "sqlite://invites.db", value_parser = Setting(database_url), global = true)]
    pub database_url: DatabaseUrl,
    /// A PostgreSQL standby (`postgres://...`, may be multi-host with
    /// `target_session_attrs=prefer-standby`) that previews missing the cache and lists may
    /// read, on a read-only pool; accepts and every other decision read the primary.
    #[arg(long, env = "INVITE_DATABASE_READ_URL", value_parser = Setting(read_url), global = true)]
    pub database_read_url: Option<DatabaseUrl>,
    /// The staleness bound: the standby serves reads only while it is known to hold every
    /// commit older than this.
    #[arg(long, env = "INVITE_DATABASE_READ_MAX_LAG", default_value = "5s", value_parser = Setting(duration), global = true)]
    pub database_read_max_lag: Duration,
    /// Address to listen on.
    #[arg(long, env = "INVITE_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: String,
    /// HS256 secret tokens are signed with (at least 32 bytes).
    #[arg(long, env = "INVITE_JWT_SECRET", hide_env_values = true, value_parser = Setting(|value| Ok(SecretString::from(value))), global = true)]
    pub jwt_secret: Option<SecretString>,
    /// PEM public key (RSA, EC P-256 or Ed25519) to verify tokens with instead of a secret.
    #[arg(long, env = "INVITE_JWT_PUBLIC_KEY_FILE", global = true)]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Public base URL of invite links (default `http://<bind>`).
    #[arg(long, env = "INVITE_PUBLIC_URL", value_parser = Setting(public_url), global = true)]
    pub public_url: Option<String>,
    /// Most database connections (default 10 on PostgreSQL, 4 on SQLite).
    #[arg(long, env = "INVITE_DB_POOL_SIZE", value_parser = Setting(number::<u32>), global = true)]
    pub db_pool_size: Option<u32>,
    /// Longest wait for a database connection before answering 503.
    #[arg(long, env = "INVITE_DB_TIMEOUT", default_value = "2s", value_parser = Setting(duration), global = true)]
    pub db_timeout: Duration,
    /// Longest a PostgreSQL statement may run.
    #[arg(long, env = "INVITE_DB_STATEMENT_TIMEOUT", default_value = "5s", value_parser = Setting(duration), global = true)]
    pub db_statement_timeout: Duration,
    /// Log format.
    #[arg(long, env = "INVITE_LOG_FORMAT", value_enum, default_value = "pretty", global = true)]
    pub log_format: LogFormat,
    /// Log filter, as `tracing` directives.
    #[arg(long, env = "INVITE_LOG", default_value = "info", global = true)]
    pub log: String,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "INVITE_WORKERS", value_parser = Setting(number::<usize>), global = true)]
    pub workers: Option<usize>,
    /// Longest a cached preview is served; what another instance changed shows after this at most.
    /// `0s` turns the cache off.
    #[arg(long, env = "INVITE_PREVIEW_CACHE_TTL", default_value = "30s", value_parser = Setting(duration), global = true)]
    pub preview_cache_ttl: Duration,
    /// Most cached previews.
    #[arg(long, env = "INVITE_PREVIEW_CACHE_SIZE", default_value_t = 100_000, value_parser = Setting(number::<usize>), global = true)]
    pub preview_cache_size: usize,
    /// How long in-flight requests may finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "INVITE_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = Setting(duration), global = true)]
    pub shutdown_timeout: Duration,
    /// Longest expected wait for a database thread before new database work is refused at once
    /// with 503 `OVERLOADED`. Unset, work is refused only when it could not be served within
    /// what remains of its `INVITE_DB_TIMEOUT`.
    #[arg(long, env = "INVITE_DB_QUEUE_TIMEOUT", value_parser = Setting(duration), global = true)]
    pub db_queue_timeout: Option<Duration>,
    /// On PostgreSQL, how many groups accepts are committed in: a group's batches (a batch's
    /// accepts are one statement) commit one after another, different groups' side by side.
    /// Fewer groups, larger batches, less database time per join.
    #[arg(long, env = "INVITE_DB_ACCEPT_GROUPS", default_value_t = 1, value_parser = Setting(number::<u64>), global = true)]
    pub db_accept_groups: u64,
    /// On PostgreSQL, how many groups creates are committed in: a batch's creates are written
    /// one after another, so each group is a queue, and more groups serve more at once.
    #[arg(long, env = "INVITE_DB_CREATE_GROUPS", default_value_t = 2, value_parser = Setting(number::<u64>), global = true)]
    pub db_create_groups: u64,
    /// Longest a request body may take to arrive before 408.
    #[arg(long, env = "INVITE_BODY_TIMEOUT", default_value = "10s", value_parser = Setting(duration), global = true)]
    pub body_timeout: Duration,
    /// Most connections one client address (other than a trusted proxy) holds open at once.
    #[arg(long, env = "INVITE_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1000, value_parser = Setting(number::<usize>), global = true)]
    pub max_connections_per_address: usize,
    /// Rate limits: `on` or `off`.
    #[arg(long, env = "INVITE_RATE_LIMITS", default_value = "on", value_parser = Setting(switch), action = ArgAction::Set, global = true)]
    pub rate_limits: bool,
    /// Accepts per user, as `<count>/<period>`.
    #[arg(long, env = "INVITE_RATE_LIMIT_ACCEPT", default_value = "10/10s", value_parser = Setting(rate), global = true)]
    pub rate_limit_accept: Rate,
    /// Invite creations per user and server.
    #[arg(long, env = "INVITE_RATE_LIMIT_CREATE", default_value = "20/60s", value_parser = Setting(rate), global = true)]
    pub rate_limit_create: Rate,
    /// Previews (JSON and page) per client address.
    #[arg(long, env = "INVITE_RATE_LIMIT_PREVIEW", default_value = "100/10s", value_parser = Setting(rate), global = true)]
    pub rate_limit_preview: Rate,
    /// Lookups of codes that do not exist, per client address.
    #[arg(long, env = "INVITE_RATE_LIMIT_UNKNOWN_CODE", default_value = "20/60s", value_parser = Setting(rate), global = true)]
    pub rate_limit_unknown_code: Rate,
    /// Proxies (comma-separated CIDRs) whose forwarding header (see `--client-address-header`)
    /// names the client; anyone else's is ignored.
    // `::std::vec::Vec`: the whole list is one value (clap would read a plain `Vec` as a flag
    // given many times).
    #[arg(long, env = "INVITE_TRUSTED_PROXIES", default_value = "", value_parser = Setting(cidrs), global = true)]
    pub trusted_proxies: ::std::vec::Vec<IpNet>,
    /// The header trusted proxies write the client's address into: `x-forwarded-for` or
    /// `forwarded` (RFC 7239). The other header is ignored, whoever sent it.
    #[arg(
        long,
        env = "INVITE_CLIENT_ADDRESS_HEADER",
        default_value = "x-forwarded-for",
        value_parser = Setting(client_address_header),
        global = true
    )]
    pub client_address_header: ClientAddressHeader,
    /// Maintenance mode at start: `on` or `off`; unset keeps what the database holds.
    #[arg(long, env = "INVITE_MAINTENANCE", value_parser = Setting(switch), action = ArgAction::Set, global = true)]
    pub maintenance: Option<bool>,
    /// What writes refused during maintenance tell people.
    #[arg(long, env = "INVITE_MAINTENANCE_MESSAGE", value_parser = Setting(maintenance_message), global = true)]
    pub maintenance_message: Option<String>,
    /// When the maintenance window ends (RFC 3339); past it, writes are accepted again.
    #[arg(long, env = "INVITE_MAINTENANCE_UNTIL", value_parser = Setting(rfc3339), global = true)]
    pub maintenance_until: Option<DateTime<Utc>>,
    /// Bearer token of the operator endpoints (`/admin/*`), at least 32 bytes.
    #[arg(long, env = "INVITE_ADMIN_TOKEN", hide_env_values = true, value_parser = Setting(admin_token), global = true)]
    pub admin_token: Option<SecretString>,
    /// Whether webhooks may target private, loopback and link-local addresses: `on` or `off`.
    #[arg(long, env = "INVITE_WEBHOOK_ALLOW_PRIVATE", default_value = "off", value_parser = Setting(switch), action = ArgAction::Set, global = true)]
    pub webhook_allow_private: bool,
    /// How long events are kept in the outbox (for the events endpoint and resuming).
    #[arg(long, env = "INVITE_EVENTS_RETENTION", default_value = "7d", value_parser = Setting(duration), global = true)]
    pub events_retention: Duration,
    /// The gateway's heartbeat interval (HELLO); a client silent for 1.5 of them is closed.
    #[arg(long, env = "INVITE_GATEWAY_HEARTBEAT", default_value = "30s", value_parser = Setting(interval), global = true)]
    pub gateway_heartbeat: Duration,
    /// Gateway sessions one user may hold, on all instances together.
    #[arg(long, env = "INVITE_GATEWAY_MAX_PER_USER", default_value_t = 10, value_parser = Setting(at_least_one::<u32>), global = true)]
    pub gateway_max_per_user: u32,
    /// Frames a gateway session may have waiting before it is closed as a slow consumer.
    #[arg(long, env = "INVITE_GATEWAY_QUEUE", default_value_t = 1024, value_parser = Setting(at_least_one::<usize>), global = true)]
    pub gateway_queue: usize,
    /// How long a temporary member's last gateway session may be gone before they are removed.
    #[arg(long, env = "INVITE_TEMPORARY_GRACE", default_value = "60s", value_parser = Setting(interval), global = true)]
    pub temporary_grace: Duration,
    /// Whether this instance keeps per-invite analytics (`on` or `off`): counts previews and
    /// refused accepts, and folds joins and departures in from the outbox. Joins left unfolded
    /// are folded once an instance with analytics on runs, within the outbox's retention.
    #[arg(long, env = "INVITE_ANALYTICS", default_value = "on", value_parser = Setting(switch), action = ArgAction::Set, global = true)]
    pub analytics: bool,
    /// How often each instance writes the previews and refusals it counted (one batch) and
    /// folds new joins in (a read catches up first on its own instance): what other
    /// instances' counts lag by, and what a crash loses of them.
    #[arg(long, env = "INVITE_ANALYTICS_FLUSH_INTERVAL", default_value = "60s", value_parser = Setting(interval), global = true)]
    pub analytics_flush_interval: Duration,
    /// The cookie that carries the platform's bearer token to the invite page.
    #[arg(long, env = "INVITE_SESSION_COOKIE", default_value = "session", value_parser = Setting(cookie_name), global = true)]
    pub session_cookie: String,
    /// Where the invite page sends people to sign in (`next=` is added), an http(s) URL.
    #[arg(long, env = "INVITE_LOGIN_URL", value_parser = Setting(login_url), global = true)]
    pub login_url: Option<String>,
    /// The link into the app after joining from the page: `{server_id}` and `{code}` are
    /// filled in (e.g. `https://chat.example/channels/{server_id}` or a deep link).
    #[arg(long, env = "INVITE_APP_URL", value_parser = Setting(app_url), global = true)]
    pub app_url: Option<String>,
}

/// The settings of contract section 6.
#[derive(Debug, Clone)]
pub(crate) struct Reliability {
    /// The rate of each bucket, or `None` when rate limits are off.
    pub rates: Option<invite_runtime::rate_limit::Rates>,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The header those proxies name the client in.
    pub client_address_header: ClientAddressHeader,
    /// Maintenance to switch at start, if `INVITE_MAINTENANCE` is set.
    pub maintenance: Option<MaintenanceSetting>,
    /// The operator token, if any.
    pub admin_token: Option<SecretString>,
    /// Longest expected wait for a database thread before shedding, if the operator set one.
    pub db_queue_timeout: Option<Duration>,
    /// Longest a body may take to arrive.
    pub body_timeout: Duration,
    /// Most connections one address holds open at once.
    pub connections_per_address: usize,
    /// Whether webhooks may target private addresses.
    pub webhook_allow_private: bool,
    /// How long events are kept.
    pub events_retention: Duration,
}

/// `INVITE_MAINTENANCE` and its message and end, as set at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MaintenanceSetting {
    /// On or off.
    pub enabled: bool,
    /// What to tell people.
    pub message: Option<String>,
    /// When it ends.
    pub until: Option<DateTime<Utc>>,
}

/// The shortest admin token accepted.
pub(crate) const MIN_ADMIN_TOKEN_LEN: usize = 32;

/// A configuration the service cannot run with; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// See [`AuthConfigError`].
    #[error(transparent)]
    Auth(#[from] AuthConfigError),
    /// The public key file cannot be read.
    #[error("cannot read INVITE_JWT_PUBLIC_KEY_FILE {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A read URL with a SQLite database, which has no standby.
    #[error(
        "INVITE_DATABASE_READ_URL needs PostgreSQL: INVITE_DATABASE_URL is a SQLite file, which has no standby to read from; unset INVITE_DATABASE_READ_URL"
    )]
    ReadUrlOnSqlite,
    /// Both a secret and a public key.
    #[error("set either INVITE_JWT_SECRET or INVITE_JWT_PUBLIC_KEY_FILE, not both")]
    BothKeys,
}

/// The value parser of a setting, around a function that reads the text or says what it must
/// be (and what it was, as far as it may be shown). Its error names the setting's variable:
/// clap's own names only the flag, and shows the value whole, which a secret's must not be.
#[derive(Clone, Copy)]
struct Setting<T>(fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Setting<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let variable = arg.and_then(clap::Arg::get_env).map_or_else(
            || arg.map(|arg| format!("--{}", arg.get_id())).unwrap_or_default(),
            |variable| variable.to_string_lossy().into_owned(),
        );
        let refused = |why: String| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{variable} {why}\n"))
                .with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| refused("must be UTF-8".to_owned()))?;
        (self.0)(text).map_err(refused)
    }
}

/// "`<expected>`, got `<value>`".
fn must(expected: &str, value: &str) -> String {
    format!("{expected}, got {value:?}")
}

fn database_url(value: &str) -> Result<DatabaseUrl, String> {
    DatabaseUrl::parse(value).map_err(|error| format!("is not usable: {error}"))
}

/// The standby's URL: PostgreSQL only.
fn read_url(value: &str) -> Result<DatabaseUrl, String> {
    match database_url(value)? {
        url @ DatabaseUrl::Postgres(_) => Ok(url),
        DatabaseUrl::Sqlite(_) => {
            Err("must be a postgres:// URL (a standby of the primary), got a SQLite file"
                .to_owned())
        }
    }
}

fn admin_token(value: &str) -> Result<SecretString, String> {
    // The length, not the token: the message goes to logs.
    if value.len() < MIN_ADMIN_TOKEN_LEN {
        return Err(must("must be at least 32 bytes", &format!("{} bytes", value.len())));
    }
    Ok(SecretString::from(value))
}

fn number<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value.trim().parse().map_err(|_| must("must be a whole number", value))
}

fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .ok()
        .filter(|number| *number >= T::from(1))
        .ok_or_else(|| must("must be at least 1", value))
}

fn duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim())
        .map_err(|_| must("must be a duration, such as 100ms, 30s or 7d", value))
}

/// A duration of at least 100 ms: the gateway's timers.
fn interval(value: &str) -> Result<Duration, String> {
    let interval = duration(value)?;
    if interval < Duration::from_millis(100) {
        return Err(must("must be at least 100ms", value));
    }
    Ok(interval)
}

/// An `on`/`off` switch.
fn switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(must("must be on or off", value)),
    }
}

fn rate(value: &str) -> Result<Rate, String> {
    Rate::parse(value)
        .ok_or_else(|| must("must be <count>/<period>, such as 10/10s (count at least 1)", value))
}

/// Comma-separated CIDRs; a bare address is a network of one.
fn cidrs(value: &str) -> Result<Vec<IpNet>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|cidr| !cidr.is_empty())
        .map(|cidr| {
            cidr.parse::<IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    must("must be comma-separated CIDRs, such as 10.0.0.0/8,::1/128", cidr)
                })
        })
        .collect()
}

fn client_address_header(value: &str) -> Result<ClientAddressHeader, String> {
    ClientAddressHeader::parse(value)
        .ok_or_else(|| must("must be x-forwarded-for or forwarded", value))
}

fn rfc3339(value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| must("must be an RFC 3339 time, such as 2026-12-24T18:00:00Z", value))
}

fn maintenance_message(value: &str) -> Result<String, String> {
    if value.chars().count() > crate::guard::maintenance::MAX_MESSAGE_LEN {
        return Err(must("must be at most 500 characters", value));
    }
    Ok(value.to_owned())
}

/// A cookie name: RFC 6265's token characters.
fn cookie_name(value: &str) -> Result<String, String> {
    if value.is_empty()
        || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(must("must be a cookie name (letters, digits, -_.)", value));
    }
    Ok(value.to_owned())
}

/// A URL template: a URL once `{server_id}` and `{code}` are filled in.
fn template(value: &str) -> Option<url::Url> {
    url::Url::parse(&value.replace("{server_id}", "s").replace("{code}", "c")).ok()
}

fn login_url(value: &str) -> Result<String, String> {
    match template(value) {
        Some(url) if matches!(url.scheme(), "http" | "https") => Ok(value.to_owned()),
        _ => Err(must("must be an http:// or https:// URL", value)),
    }
}

/// A deep link into a native app has a scheme of its own: any URL will do.
fn app_url(value: &str) -> Result<String, String> {
    match template(value) {
        Some(_) => Ok(value.to_owned()),
        None => Err(must("must be a URL (with {server_id} or {code})", value)),
    }
}

/// The base of invite links, without a trailing slash.
fn public_url(value: &str) -> Result<String, String> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err(must("must be an http:// or https:// URL", value))
    }
}

impl Config {
    /// The token verifier; a missing key is an error, not a panic.
    pub(crate) fn authenticator(&self) -> Result<Authenticator, ConfigError> {
        match (&self.jwt_secret, &self.jwt_public_key_file) {
            (Some(_), Some(_)) => Err(ConfigError::BothKeys),
            (Some(secret), None) => {
                Ok(Authenticator::from_secret(secret.expose_secret().as_bytes())?)
            }
            (None, Some(path)) => {
                let pem = std::fs::read(path)
                    .map_err(|source| ConfigError::KeyFile { path: path.clone(), source })?;
                Ok(Authenticator::from_public_key_pem(&pem)?)
            }
            (None, None) => Err(AuthConfigError::Missing.into()),
        }
    }

    /// The pool settings.
    pub(crate) fn pool(&self) -> PoolConfig {
        let mut pool = PoolConfig::new(self.database_url.clone());
        if let Some(size) = self.db_pool_size {
            pool.max_size = size.max(1);
        }
        pool.checkout_timeout = self.db_timeout;
        pool.statement_timeout = self.db_statement_timeout;
        pool
    }

    /// The settings of the standby's read-only pool, if `INVITE_DATABASE_READ_URL` is set: as
    /// the primary's (size, timeouts), read-only. Refused over a `primary` on SQLite.
    pub(crate) fn read_pool(
        &self,
        primary: invite_store::Backend,
    ) -> Result<Option<PoolConfig>, ConfigError> {
        let Some(url) = &self.database_read_url else { return Ok(None) };
        if primary == invite_store::Backend::Sqlite {
            return Err(ConfigError::ReadUrlOnSqlite);
        }
        let mut pool = self.pool();
        pool.url = url.clone();
        pool.read_only = true;
        Ok(Some(pool))
    }

    /// Rate limits, proxies, maintenance and the admin token.
    pub(crate) fn reliability(&self) -> Reliability {
        let rates = self.rate_limits.then_some(invite_runtime::rate_limit::Rates {
            accept: self.rate_limit_accept,
            create: self.rate_limit_create,
            preview: self.rate_limit_preview,
            unknown_code: self.rate_limit_unknown_code,
        });
        let maintenance = self.maintenance.map(|enabled| MaintenanceSetting {
            enabled,
            message: self.maintenance_message.clone(),
            until: self.maintenance_until,
        });
        Reliability {
            rates,
            trusted_proxies: self.trusted_proxies.clone(),
            client_address_header: self.client_address_header,
            maintenance,
            admin_token: self.admin_token.clone(),
            db_queue_timeout: self.db_queue_timeout.map(|longest| longest.min(self.db_timeout)),
            body_timeout: self.body_timeout,
            connections_per_address: self.max_connections_per_address.max(1),
            webhook_allow_private: self.webhook_allow_private,
            events_retention: self.events_retention,
        }
    }

    /// The gateway's settings.
    pub(crate) fn gateway(&self) -> invite_runtime::gateway::GatewaySettings {
        invite_runtime::gateway::GatewaySettings {
            heartbeat: self.gateway_heartbeat,
            max_per_user: self.gateway_max_per_user,
            queue: self.gateway_queue,
            temporary_grace: self.temporary_grace,
        }
    }

    /// The invite page's settings.
    pub(crate) fn page(&self) -> crate::page::PageSettings {
        crate::page::PageSettings::new(
            self.session_cookie.clone(),
            self.login_url.clone(),
            self.app_url.clone(),
        )
    }

    /// The base of invite links, without a trailing slash: `INVITE_PUBLIC_URL`, or the address
    /// the server is bound to.
    pub(crate) fn public_url(&self, bound: std::net::SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{bound}"))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("invite-server").chain(args.iter().copied()))
    }

    fn parse(args: &[&str]) -> Cli {
        try_parse(args).unwrap()
    }

    /// The message clap prints for `args`, which it refuses.
    fn refusal(args: &[&str]) -> String {
        try_parse(args).unwrap_err().to_string()
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_flags_after_the_subcommand() {
        let cli = parse(&[]);
        assert!(cli.command.is_none());
        assert_eq!(cli.config.bind, "127.0.0.1:8080");
        assert_eq!(cli.config.db_timeout, Duration::from_secs(2));
        let cli = parse(&[
            "token",
            "--user",
            "0191d8f6-7a2b-7c3d-8e4f-5a6b7c8d9e0f",
            "--ttl",
            "30m",
            "--database-url",
            "sqlite://x.db",
        ]);
        assert!(
            matches!(cli.command, Some(Command::Token { ttl, .. }) if ttl == Duration::from_mins(30))
        );
        assert_eq!(cli.config.database_url, DatabaseUrl::Sqlite("x.db".to_owned()));
    }

    #[test]
    fn a_missing_or_short_secret_is_a_clear_error() {
        let cli = parse(&[]);
        let error = cli.config.authenticator().unwrap_err();
        assert_eq!(
            error.to_string(),
            "set INVITE_JWT_SECRET (at least 32 bytes) or INVITE_JWT_PUBLIC_KEY_FILE"
        );
        let cli = parse(&["--jwt-secret", "short"]);
        assert_eq!(
            cli.config.authenticator().unwrap_err().to_string(),
            "INVITE_JWT_SECRET must be at least 32 bytes (got 5)"
        );
    }

    #[test]
    fn the_client_address_header_is_one_of_two() {
        use crate::guard::client_addr::ClientAddressHeader;
        let header = |args: &[&str]| parse(args).config.reliability().client_address_header;
        assert_eq!(header(&[]), ClientAddressHeader::XForwardedFor);
        assert_eq!(
            header(&["--client-address-header", "forwarded"]),
            ClientAddressHeader::Forwarded
        );
        let message = refusal(&["--client-address-header", "x-real-ip"]);
        assert!(
            message.contains(
                "INVITE_CLIENT_ADDRESS_HEADER must be x-forwarded-for or forwarded, got \"x-real-ip\""
            ),
            "{message}"
        );
    }

    #[test]
    fn public_urls_lose_their_trailing_slash() {
        let bound = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(parse(&[]).config.public_url(bound), "http://127.0.0.1:9000");
        let cli = parse(&["--public-url", "https://chat.example/"]);
        assert_eq!(cli.config.public_url(bound), "https://chat.example");
        assert!(try_parse(&["--public-url", "chat.example"]).is_err());
    }

    #[test]
    fn every_setting_is_read_once_into_its_type() {
        let cli = parse(&[
            "--rate-limits",
            "off",
            "--rate-limit-accept",
            "5/s",
            "--trusted-proxies",
            "10.0.0.0/8, ::1,",
            "--maintenance",
            "on",
            "--maintenance-until",
            "2026-12-24T18:00:00+01:00",
            "--webhook-allow-private",
            "yes",
            "--gateway-heartbeat",
            "100ms",
        ]);
        let config = &cli.config;
        assert!(!config.rate_limits && config.reliability().rates.is_none());
        assert_eq!(config.rate_limit_accept.period, Duration::from_secs(1));
        assert_eq!(
            config.trusted_proxies,
            ["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
        );
        let maintenance = config.reliability().maintenance.unwrap();
        assert!(maintenance.enabled);
        assert_eq!(maintenance.until.unwrap().to_rfc3339(), "2026-12-24T17:00:00+00:00");
        assert!(config.webhook_allow_private);
        assert_eq!(config.gateway().heartbeat, Duration::from_millis(100));
        let defaults = parse(&[]).config;
        assert!(defaults.rate_limits && defaults.trusted_proxies.is_empty());
        assert_eq!(defaults.maintenance, None);
        assert_eq!(defaults.rate_limit_preview, Rate::parse("100/10s").unwrap());
    }

    #[test]
    fn a_malformed_setting_is_refused_naming_its_variable() {
        let cases = [
            (&["--db-timeout", "soon"][..], "INVITE_DB_TIMEOUT must be a duration"),
            (&["--workers", "many"], "INVITE_WORKERS must be a whole number, got \"many\""),
            (&["--gateway-queue", "0"], "INVITE_GATEWAY_QUEUE must be at least 1, got \"0\""),
            (&["--gateway-heartbeat", "50ms"], "INVITE_GATEWAY_HEARTBEAT must be at least 100ms"),
            (
                &["--webhook-allow-private", "maybe"],
                "INVITE_WEBHOOK_ALLOW_PRIVATE must be on or off",
            ),
            (&["--database-url", "mysql://x"], "INVITE_DATABASE_URL is not usable: unsupported"),
            (&["--maintenance-message", &"x".repeat(501)], "must be at most 500 characters"),
        ];
        for (args, expected) in cases {
            let message = refusal(args);
            assert!(message.contains(expected), "{args:?}: {message}");
        }
    }

    #[test]
    fn a_read_url_needs_postgresql() {
        let read_pool = |cli: &Cli| cli.config.read_pool(cli.config.database_url.backend());
        assert!(read_pool(&parse(&[])).unwrap().is_none());
        let on_sqlite = parse(&["--database-read-url", "postgres://postgres@standby/invites"]);
        assert_eq!(
            read_pool(&on_sqlite).unwrap_err().to_string(),
            "INVITE_DATABASE_READ_URL needs PostgreSQL: INVITE_DATABASE_URL is a SQLite file, \
             which has no standby to read from; unset INVITE_DATABASE_READ_URL"
        );
        let cli = parse(&[
            "--database-url",
            "postgres://postgres@primary/invites",
            "--database-read-url",
            "postgres://postgres@primary,standby/invites?target_session_attrs=prefer-standby",
            "--database-read-max-lag",
            "2s",
        ]);
        let read = read_pool(&cli).unwrap().unwrap();
        assert!(read.read_only && !cli.config.pool().read_only);
        assert_eq!(read.url.backend(), invite_store::Backend::Postgres);
        assert_eq!(cli.config.database_read_max_lag, Duration::from_secs(2));
        let message = refusal(&["--database-read-url", "sqlite://copy.db"]);
        assert!(
            message.contains("INVITE_DATABASE_READ_URL must be a postgres:// URL"),
            "{message}"
        );
    }

    #[test]
    fn no_secret_is_in_a_debug_output() {
        const JWT: &str = "jwt-secret-jwt-secret-jwt-secret-0123";
        const ADMIN: &str = "admin-token-admin-token-admin-token-0123";
        let cli = parse(&[
            "--jwt-secret",
            JWT,
            "--admin-token",
            ADMIN,
            "--database-url",
            "postgres://invites:hunter2@db.example/invites",
        ]);
        let printed = [
            format!("{cli:?}"),
            format!("{:?}", cli.config.reliability()),
            format!("{:?}", cli.config.pool()),
            format!("{:?}", cli.config.authenticator().unwrap()),
        ];
        for printed in printed {
            for secret in [JWT, ADMIN, "hunter2"] {
                assert!(!printed.contains(secret), "{secret} in {printed}");
            }
        }
        // Still there to be used.
        assert_eq!(cli.config.admin_token.unwrap().expose_secret(), ADMIN);
        // A short admin token's message says its length, never what it is.
        let message = refusal(&["--admin-token", "too-short"]);
        assert!(message.contains("INVITE_ADMIN_TOKEN must be at least 32 bytes, got \"9 bytes\""));
        assert!(!message.contains("too-short"), "{message}");
    }
}
