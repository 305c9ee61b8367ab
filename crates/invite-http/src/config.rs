//! Configuration: one typed struct, read once in `main` from flags and `INVITE_*` variables
//! (a flag wins over its variable), then passed down explicitly.
//!
//! | flag | variable | default | meaning |
//! |---|---|---|---|
//! | `--database-url` | `INVITE_DATABASE_URL` | `sqlite://invites.db` | `sqlite://path` or `postgres://...` |
//! | `--bind` | `INVITE_BIND` | `127.0.0.1:8080` | address to listen on |
//! | `--jwt-secret` | `INVITE_JWT_SECRET` | none | HS256 secret, at least 32 bytes |
//! | `--jwt-public-key-file` | `INVITE_JWT_PUBLIC_KEY_FILE` | none | RS256/ES256/EdDSA public key (PEM) instead |
//! | `--public-url` | `INVITE_PUBLIC_URL` | `http://<bind>` | base of invite links |
//! | `--db-pool-size` | `INVITE_DB_POOL_SIZE` | 10 | most database connections |
//! | `--db-timeout` | `INVITE_DB_TIMEOUT` | `2s` | longest wait for a connection before answering 503 |
//! | `--db-statement-timeout` | `INVITE_DB_STATEMENT_TIMEOUT` | `5s` | longest PostgreSQL statement |
//! | `--log-format` | `INVITE_LOG_FORMAT` | `pretty` | `pretty` or `json` |
//! | `--log` | `INVITE_LOG` | `info` | log filter (`tracing` directives) |
//! | `--workers` | `INVITE_WORKERS` | cores | HTTP worker threads |
//! | `--shutdown-timeout` | `INVITE_SHUTDOWN_TIMEOUT` | `30s` | how long in-flight requests may finish after SIGTERM |
//! | `--preview-cache-ttl` | `INVITE_PREVIEW_CACHE_TTL` | `30s` | longest a cached preview is served; `0s` disables the cache |
//! | `--preview-cache-size` | `INVITE_PREVIEW_CACHE_SIZE` | 100000 | most cached previews |

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use invite_store::{DatabaseUrl, PoolConfig};

use crate::auth::{AuthConfigError, Authenticator};
use crate::telemetry::LogFormat;

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
    pub command: Option<Command>,
    /// Settings shared by every command.
    #[command(flatten)]
    pub config: Config,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
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

/// Every setting.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database: `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "INVITE_DATABASE_URL", default_value = "sqlite://invites.db", global = true)]
    pub database_url: String,
    /// Address to listen on.
    #[arg(long, env = "INVITE_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: String,
    /// HS256 secret tokens are signed with (at least 32 bytes).
    #[arg(long, env = "INVITE_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
    /// PEM public key (RSA, EC P-256 or Ed25519) to verify tokens with instead of a secret.
    #[arg(long, env = "INVITE_JWT_PUBLIC_KEY_FILE", global = true)]
    pub jwt_public_key_file: Option<PathBuf>,
    /// Public base URL of invite links (default `http://<bind>`).
    #[arg(long, env = "INVITE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Most database connections (default 10 on PostgreSQL, 4 on SQLite).
    #[arg(long, env = "INVITE_DB_POOL_SIZE", global = true)]
    pub db_pool_size: Option<u32>,
    /// Longest wait for a database connection before answering 503.
    #[arg(long, env = "INVITE_DB_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub db_timeout: Duration,
    /// Longest a PostgreSQL statement may run.
    #[arg(long, env = "INVITE_DB_STATEMENT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub db_statement_timeout: Duration,
    /// Log format.
    #[arg(long, env = "INVITE_LOG_FORMAT", value_enum, default_value = "pretty", global = true)]
    pub log_format: LogFormat,
    /// Log filter, as `tracing` directives.
    #[arg(long, env = "INVITE_LOG", default_value = "info", global = true)]
    pub log: String,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "INVITE_WORKERS", global = true)]
    pub workers: Option<usize>,
    /// Longest a cached preview is served; what another instance changed shows after this at most.
    /// `0s` turns the cache off.
    #[arg(long, env = "INVITE_PREVIEW_CACHE_TTL", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub preview_cache_ttl: Duration,
    /// Most cached previews.
    #[arg(long, env = "INVITE_PREVIEW_CACHE_SIZE", default_value_t = 100_000, global = true)]
    pub preview_cache_size: usize,
    /// How long in-flight requests may finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "INVITE_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_timeout: Duration,
}

/// A configuration the service cannot run with; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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
    /// Both a secret and a public key.
    #[error("set either INVITE_JWT_SECRET or INVITE_JWT_PUBLIC_KEY_FILE, not both")]
    BothKeys,
    /// See [`invite_store::pool::InvalidDatabaseUrl`].
    #[error("INVITE_DATABASE_URL: {0}")]
    DatabaseUrl(#[from] invite_store::pool::InvalidDatabaseUrl),
    /// The public URL is not an http(s) URL.
    #[error("INVITE_PUBLIC_URL must be an http:// or https:// URL, got {0:?}")]
    PublicUrl(String),
}

impl Config {
    /// The token verifier; a missing key is an error, not a panic.
    pub fn authenticator(&self) -> Result<Authenticator, ConfigError> {
        match (&self.jwt_secret, &self.jwt_public_key_file) {
            (Some(_), Some(_)) => Err(ConfigError::BothKeys),
            (Some(secret), None) => Ok(Authenticator::from_secret(secret.as_bytes())?),
            (None, Some(path)) => {
                let pem = std::fs::read(path)
                    .map_err(|source| ConfigError::KeyFile { path: path.clone(), source })?;
                Ok(Authenticator::from_public_key_pem(&pem)?)
            }
            (None, None) => Err(AuthConfigError::Missing.into()),
        }
    }

    /// The pool settings.
    pub fn pool(&self) -> Result<PoolConfig, ConfigError> {
        let mut pool = PoolConfig::new(DatabaseUrl::parse(&self.database_url)?);
        if let Some(size) = self.db_pool_size {
            pool.max_size = size.max(1);
        }
        pool.checkout_timeout = self.db_timeout;
        pool.statement_timeout = self.db_statement_timeout;
        Ok(pool)
    }

    /// The base of invite links, without a trailing slash.
    pub fn public_url(&self, bound: std::net::SocketAddr) -> Result<String, ConfigError> {
        match &self.public_url {
            None => Ok(format!("http://{bound}")),
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Ok(url.trim_end_matches('/').to_owned())
            }
            Some(url) => Err(ConfigError::PublicUrl(url.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("invite-server").chain(args.iter().copied())).unwrap()
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
        assert_eq!(cli.config.database_url, "sqlite://x.db");
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
    fn public_urls_lose_their_trailing_slash() {
        let bound = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(parse(&[]).config.public_url(bound).unwrap(), "http://127.0.0.1:9000");
        let cli = parse(&["--public-url", "https://chat.example/"]);
        assert_eq!(cli.config.public_url(bound).unwrap(), "https://chat.example");
        assert!(parse(&["--public-url", "chat.example"]).config.public_url(bound).is_err());
    }
}
