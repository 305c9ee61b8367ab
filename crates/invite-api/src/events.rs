//! The events the service publishes (contract sections 9 and 10), as the events endpoint pages
//! them. The event types, and what each carries, are the rules' (`invite_core::event`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use invite_core::event::EventType;

/// An event of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Its place: page with the last one seen as `after`.
    pub seq: i64,
    /// `INVITE_CREATE`, `MEMBER_JOIN`, ...
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "MEMBER_JOIN"))]
    pub kind: EventType,
    /// The server.
    pub server_id: Uuid,
    /// The details.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}
