//! The invite service's HTTP API: actix-web handlers that call `invite-ops` for every change (the
//! rules of `invite-core`, written through `invite-store`), run through the parts of
//! `invite-runtime`, and the `invite-server` binary's commands.
//!
//! The crate's rooms, one folder each:
//!
//! - `server`: start-up and the transport around the app: settings, connection limits,
//!   protocol upgrades, refusals of malformed HTTP, logging and the request log.
//! - `guard`: what a request meets before a handler decides anything: bearer tokens, the
//!   client's address, rate limits, body deadlines, maintenance mode (contract section 6).
//! - `api`: the JSON API: routes, extractors, the one error type (`{"error", "code"}`), the
//!   wire bodies, `Idempotency-Key`, the OpenAPI document and its Swagger UI.
//! - `page`: the invite page, rendered on the server.
//! - `gateway`: the gateway's WebSocket sessions.
//! - [`cli`]: `serve`, `migrate`, `token`, `demo`, `check`.
//!
//! `invite_runtime::door::Door` is the one way into the database; a handler extracts the parts
//! it uses (the door, the rate limits, the preview cache...), never the whole service.
//!
//! Only what other crates use is public: the binary's commands and settings ([`cli`],
//! [`server::config::Cli`]), the token verifier ([`guard::auth::Authenticator`]), the code
//! randomness tests choose ([`server::random`]), the route table the documentation test reads
//! ([`api::routes::table`]) and, with the `testing` feature, the test server.

pub mod api;
pub mod cli;
pub(crate) mod gateway;
pub mod guard;
pub(crate) mod page;
pub mod server;
#[cfg(feature = "testing")]
pub mod testing;

/// The token verifier at the path the load tool imports it from (`invite_http::auth`); it
/// lives with the other defences in [`guard`].
pub use guard::auth;
