#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod approval;
pub mod audit;
pub mod clock;
pub mod code;
pub mod event;
pub mod grant;
pub mod invite;
pub mod maintenance;
pub mod permissions;
pub mod problem;
pub mod raid;
pub mod redeem;
pub mod server;
pub mod stats;
#[cfg(test)]
mod testing;
pub mod undo;
pub mod vanity;
pub mod webhook;
mod wire;

pub mod patch;

pub use patch::Patch;
pub use problem::{ErrorCode, Problem};
