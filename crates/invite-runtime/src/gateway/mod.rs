//! The gateway's bookkeeping (contract section 10), without its sockets: this instance's
//! sessions and the fan-out of events to them ([`hub`]), their rows' upkeep ([`sessions`]), and
//! the frames and close codes they speak ([`protocol`]). The host serves the sockets.

pub mod hub;
pub mod protocol;
pub mod sessions;

mod instance;
pub use instance::{Gateway, GatewaySettings};
