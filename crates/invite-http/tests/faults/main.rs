//! Fault tests on the real `invite-server` binary (contract section 6): the database cut away
//! under load, its connections killed, reset or silenced under load, SIGKILL under an accept
//! load, SIGTERM under load; and the gateway's sessions when their instance stops (contract
//! section 10).
#![expect(
    clippy::unwrap_used,
    reason = "tests panic to fail; allow-unwrap-in-tests misses helpers and macro-declared tests"
)]

mod connection_loss;
mod database_cut;
mod gateway;
mod sigkill;
mod sigterm;
mod support;
