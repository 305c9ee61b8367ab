//! What operators and status pages read: the status document and the maintenance switch.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A status, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Everything works.
    Operational,
    /// Everything works, with refusals or failures lately.
    Degraded,
    /// Reads work; writes are refused for maintenance.
    Maintenance,
    /// Whatever needs the database fails.
    Outage,
}

/// One part of the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Component {
    /// `database` or `writes`.
    pub name: String,
    /// Its status.
    pub status: Level,
    /// Since when.
    pub since: DateTime<Utc>,
    /// What it means, in plain words.
    pub description: String,
}

/// The maintenance window, while one is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Window {
    /// The operator's message.
    pub message: Option<String>,
    /// When it is planned to end.
    pub until: Option<DateTime<Utc>>,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// The status document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Status {
    /// The worst of the components.
    pub status: Level,
    /// Since when.
    pub since: DateTime<Utc>,
    /// Each part.
    pub components: Vec<Component>,
    /// The maintenance window, or `null`.
    pub maintenance: Option<Window>,
}

/// `PUT /admin/maintenance`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// What refused writes tell people (at most 500 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub message: Option<String>,
    /// When the window ends (RFC 3339, in the future); writes are accepted again from then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// The maintenance switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Maintenance {
    /// Whether writes are refused now.
    pub active: bool,
    /// Whether the switch is on (it may be on with its window over).
    pub enabled: bool,
    /// What refused writes say.
    pub message: Option<String>,
    /// When the window ends.
    pub until: Option<DateTime<Utc>>,
    /// When the switch last changed.
    pub since: Option<DateTime<Utc>>,
}
