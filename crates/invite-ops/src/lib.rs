#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod accept;
pub mod channels;
pub mod events;
pub mod invites;
pub mod members;
pub mod servers;
pub mod webhooks;

use chrono::{DateTime, Utc};
use invite_core::ErrorCode;
use invite_core::permissions::Standing;
use invite_store::repo::{Actor, Event, EventRepository, NewEvent, ServerRepository};
use invite_store::{DbConnection, StoreResult};
use uuid::Uuid;

pub use invite_store::write_transaction;

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

/// What a change produced, and the events it wrote to the outbox (committed with it).
#[derive(Debug, Clone, PartialEq)]
pub struct Done<T> {
    /// The outcome.
    pub value: T,
    /// The events, as stored (with their `seq`).
    pub events: Vec<Event>,
}

impl<T> Done<T> {
    /// An outcome that changed nothing worth an event.
    pub fn quiet(value: T) -> Self {
        Self { value, events: Vec::new() }
    }

    /// The outcome with other events.
    pub fn map<U>(self, change: impl FnOnce(T) -> U) -> Done<U> {
        Done { value: change(self.value), events: self.events }
    }
}

/// Appends `events` (inside the caller's transaction) and returns them with the outcome.
pub(crate) fn with_events<T>(
    conn: &mut DbConnection,
    ctx: &Ctx,
    value: T,
    events: &[NewEvent],
) -> StoreResult<Done<T>> {
    let events = if events.is_empty() { Vec::new() } else { conn.append_events(events, ctx.now)? };
    Ok(Done { value, events })
}

/// The caller's standing in a server they belong to; 404 `SERVER_NOT_FOUND` otherwise, so a
/// stranger cannot tell a private server from a missing one.
pub fn member_standing(
    conn: &mut DbConnection,
    server_id: Uuid,
    user_id: Uuid,
) -> StoreResult<Standing> {
    conn.standing(server_id, user_id)?
        .ok_or_else(|| invite_core::Problem::of(ErrorCode::ServerNotFound).into())
}
