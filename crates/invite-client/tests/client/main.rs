//! The client against the real service (every endpoint, on SQLite and PostgreSQL, and its typed
//! refusals) and against a scripted HTTP server (retries, idempotency keys, waits, give-ups).

mod endpoints;
mod refusals;
mod retries;
mod support;
mod wire;
