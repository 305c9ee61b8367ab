//! The maintenance switch (contract section 6): what an operator may say and until when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

/// Most characters a maintenance message may have.
pub const MAX_MESSAGE_LEN: usize = 500;

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

/// A maintenance window that passed the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// What refused writes say, trimmed; `None` when empty.
    pub message: Option<String>,
    /// When it ends by itself.
    pub until: Option<DateTime<Utc>>,
}

impl MaintenanceRequest {
    /// Checks the message (at most [`MAX_MESSAGE_LEN`] characters, no control characters) and
    /// the end (in the future).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<MaintenanceWindow, Problem> {
        let message = self.message.as_deref().map(str::trim);
        if message.is_some_and(|message| !is_valid_message(message)) {
            return Err(Problem::validation(
                "message must be at most 500 characters, without control characters",
            ));
        }
        if self.until.is_some_and(|until| until <= now) {
            return Err(Problem::validation("until must be in the future"));
        }
        Ok(MaintenanceWindow {
            message: message.filter(|message| !message.is_empty()).map(str::to_owned),
            until: self.until,
        })
    }
}

/// Whether `message` may be shown as a maintenance message: at most [`MAX_MESSAGE_LEN`]
/// characters, none of them a control character (it is shown in JSON bodies and on pages).
pub fn is_valid_message(message: &str) -> bool {
    message.chars().count() <= MAX_MESSAGE_LEN && !message.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_window_has_a_short_printable_message_and_ends_later() {
        let request = |message: Option<&str>, until| MaintenanceRequest {
            message: message.map(str::to_owned),
            until,
        };
        let later = now() + chrono::Duration::hours(1);
        assert_eq!(
            request(Some("  back soon "), Some(later)).validate(now()).unwrap(),
            MaintenanceWindow { message: Some("back soon".into()), until: Some(later) }
        );
        assert_eq!(request(Some("   "), None).validate(now()).unwrap().message, None);
        assert!(request(Some(&"x".repeat(501)), None).validate(now()).is_err());
        assert!(request(Some(&"x".repeat(500)), None).validate(now()).is_ok());
        assert!(request(Some("line\nbreak"), None).validate(now()).is_err());
        let refused = request(None, Some(now())).validate(now()).unwrap_err();
        assert_eq!(refused.message, "until must be in the future");
    }
}
