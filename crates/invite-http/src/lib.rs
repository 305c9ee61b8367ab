//! The invite service's HTTP API: actix-web handlers that call `invite-ops` for every change (the
//! rules of `invite-core`, written through `invite-store`), run through the parts of
//! `invite-runtime`, and the `invite-server` binary's commands.
//!
//! - [`startup::run`] serves the API on a listener it is handed.
//! - [`config`]: every setting, as flags and `INVITE_*` variables.
//! - [`cli`]: `serve`, `migrate`, `token`, `demo`, `check`.
//! - [`error::ApiError`]: the one error type, rendered as `{"error", "code"}`.
//! - `invite_runtime::door::Door` is the one way into the database; a handler extracts the
//!   parts it uses (the door, the rate limits, the preview cache...), never the whole service
//!   ([`startup::Service`] is only the host's).
//! - Contract section 6: [`rate_limit`], [`maintenance`], [`idempotency`], [`refusals`],
//!   [`body`] (body deadlines) and `GET /status`.

pub mod auth;
pub mod body;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod connections;
pub mod docs;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod idempotency;
pub mod limiter;
pub mod maintenance;
pub mod openapi;
pub mod page;
pub mod random;
pub mod rate_limit;
pub mod refusals;
pub mod request_log;
pub mod routes;
pub mod startup;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod upgrade;
pub mod wire;
