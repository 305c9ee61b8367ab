#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod accept;
pub mod channels;
mod error;
pub mod events;
pub mod invites;
pub mod join_requests;
pub mod maintenance;
pub mod members;
mod outcome;
pub mod servers;
pub mod stats;
pub mod webhooks;

use chrono::{DateTime, Utc};
use invite_core::ErrorCode;
use invite_core::event::Event;
use invite_core::permissions::Standing;
use invite_store::DbConnection;
use invite_store::repo::Actor;
use uuid::Uuid;

pub use error::{OpError, OpResult};
pub use invite_store::write_transaction;
pub use outcome::{EventSink, OutboxOnly, Outcome};

/// Who acts, and when.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The caller.
    pub actor: Actor,
    /// The time of the request, from the service's clock.
    pub now: DateTime<Utc>,
}

impl Ctx {
    /// The caller's id.
    pub fn user_id(&self) -> Uuid {
        self.actor.user_id
    }
}

/// Appends `events` (inside the caller's transaction) and returns them with the outcome.
pub(crate) fn with_events<T>(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    value: T,
    events: &[Event],
) -> OpResult<Outcome<T>> {
    let events = if events.is_empty() { Vec::new() } else { conn.append_events(events, now)? };
    Ok(Outcome::new(value, events))
}

/// The caller's standing in a server they belong to; 404 `SERVER_NOT_FOUND` otherwise, so a
/// stranger cannot tell a private server from a missing one.
pub fn member_standing(
    conn: &mut DbConnection,
    server_id: Uuid,
    user_id: Uuid,
) -> OpResult<Standing> {
    conn.standing(server_id, user_id)?.ok_or_else(|| OpError::refused(ErrorCode::ServerNotFound))
}
