#![doc = include_str!("../README.md")]

pub mod accept;
pub mod analytics;
pub mod background;
pub mod db;
pub mod door;
pub mod events;
#[cfg(test)]
mod fixtures;
pub mod gateway;
pub mod idempotency;
pub mod maintenance;
pub mod metrics;
pub mod preview_cache;
pub mod rate_limit;
pub mod replica;
pub mod webhooks;
