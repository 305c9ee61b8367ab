//! The invite service's HTTP API: actix-web handlers over `invite-store`, with the rules of
//! `invite-core`, and the `invite-server` binary's commands.
//!
//! - [`startup::run`] serves the API on a listener it is handed.
//! - [`config`]: every setting, as flags and `INVITE_*` variables.
//! - [`cli`]: `serve`, `migrate`, `token`, `demo`, `check`.
//! - [`error::ApiError`]: the one error type, rendered as `{"error", "code"}`.
//! - [`db::Db`]: the one bridge from async handlers to the synchronous store.

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod dto;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod preview_cache;
pub mod request_id;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
