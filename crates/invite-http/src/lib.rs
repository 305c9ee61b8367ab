//! The invite service's HTTP API: actix-web handlers over `invite-store`, with the rules of
//! `invite-core`, and the `invite-server` binary's commands.
//!
//! - [`startup::run`] serves the API on a listener it is handed.
//! - [`config`]: every setting, as flags and `INVITE_*` variables.
//! - [`cli`]: `serve`, `migrate`, `token`, `demo`, `check`.
//! - [`error::ApiError`]: the one error type, rendered as `{"error", "code"}`.
//! - [`db::Db`]: the one bridge from async handlers to the synchronous store, with the
//!   deadline, the load shedder and the circuit breaker in front of the database.
//! - Contract section 6: [`rate_limit`], [`maintenance`], [`idempotency`], [`refusals`],
//!   [`body`] (body deadlines) and `GET /status`.

pub mod auth;
pub mod background;
pub mod body;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod connections;
pub mod db;
pub mod docs;
pub mod error;
pub mod events;
pub mod extract;
pub mod gateway;
pub mod idempotency;
pub mod maintenance;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod preview_cache;
pub mod rate_limit;
pub mod refusals;
pub mod request_log;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod upgrade;
pub mod webhooks;
pub mod wire;
