//! Webhooks and their delivery log (contract section 9).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::EventType;
pub use invite_core::webhook::Delivery;

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    /// Its id.
    pub id: Uuid,
    /// Its server.
    pub server_id: Uuid,
    /// Where events are posted.
    pub url: String,
    /// Which events.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub events: Vec<EventType>,
    /// The signing secret: shown once, when the webhook is created; `null` afterwards.
    pub secret: Option<String>,
    /// Whether deliveries go on.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// When it was disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// The last event delivered (or skipped as not subscribed).
    pub delivered_up_to: i64,
    /// Failed attempts at the next event, and when it is tried again.
    pub failed_attempts: i32,
    /// When the next event is tried again, after a failure.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A webhook and its latest deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Deliveries {
    /// The webhook.
    pub webhook: Webhook,
    /// Its latest 50 deliveries, newest first.
    pub deliveries: Vec<Delivery>,
}
