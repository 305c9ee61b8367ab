//! Start-up and the transport around the app: settings, connection limits, protocol upgrades,
//! refusals of malformed HTTP, logging and the request log.

pub mod config;
pub(crate) mod connections;
pub mod random;
pub(crate) mod refusals;
pub(crate) mod request_log;
pub(crate) mod startup;
pub(crate) mod telemetry;
pub(crate) mod upgrade;
