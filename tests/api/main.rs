//! Black-box tests of the whole service: the real server on port 0, over a database of its own
//! (a SQLite file or a PostgreSQL database), spoken to over HTTP. Every test runs on both
//! backends. Assertions are about what a user sees (status, body, headers) and what the
//! database holds afterwards.
#![expect(
    clippy::unwrap_used,
    reason = "tests panic to fail; allow-unwrap-in-tests misses helpers and macro-declared tests"
)]
#![expect(
    clippy::needless_pass_by_value,
    reason = "request helpers take bodies by value so tests can write json!(...) inline"
)]

mod accept;
mod approval;
mod audit;
mod auth;
mod bans;
mod channels;
mod coherence;
mod database_away;
mod docs;
mod errors;
mod events;
mod examples;
mod gateway;
mod grants;
mod health;
mod helpers;
mod http_layer;
mod idempotency;
mod invite_management;
mod invites;
mod maintenance;
mod members;
mod named;
mod page;
mod pause;
mod raid;
mod rate_limits;
mod read_replica;
mod servers;
mod stats;
mod status;
mod undo;
mod vanity;
mod webhooks;
