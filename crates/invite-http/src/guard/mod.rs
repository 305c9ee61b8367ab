//! The defences a request meets before a handler decides anything: bearer tokens, the client's
//! address, rate limits, body deadlines and maintenance mode (contract section 6).

pub mod auth;
pub(crate) mod body;
pub(crate) mod client_addr;
pub(crate) mod limiter;
pub(crate) mod maintenance;
pub(crate) mod rate_limit;
