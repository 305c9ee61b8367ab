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
