//! The client against the real service (every endpoint, on SQLite and PostgreSQL, and its typed
//! refusals) and against a scripted HTTP server (retries, idempotency keys, waits, give-ups).
#![expect(
    clippy::unwrap_used,
    reason = "tests panic to fail; allow-unwrap-in-tests misses helpers and macro-declared tests"
)]

mod endpoints;
mod refusals;
mod retries;
mod support;
mod wire;
