//! Join approval (contract section 11): an invite that `requires_approval` files a join request
//! instead of joining, and a moderator approves or denies it.
//!
//! The rules here are pure: what a request looks like, which states it moves between, when a
//! new request may be filed (one pending request per user and server, at most
//! [`MAX_PENDING_PER_SERVER`] pending per server), and who may decide. The store reads the
//! facts (the pending request, the pending count) under the server's lock and asks these
//! functions; the accept's own refusals (section 4) come first and are
//! [`crate::redeem::decide_redemption`]'s.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::problem::{ErrorCode, Problem};

/// The most pending requests a server may hold: one more is 429 `TOO_MANY_JOIN_REQUESTS`. A
/// bound, so that a flood of accounts cannot grow a moderator's queue (and the table) without
/// end.
pub const MAX_PENDING_PER_SERVER: i64 = 1000;

/// Where a join request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum JoinRequestStatus {
    /// Waiting for a moderator.
    Pending,
    /// Approved: the user joined through the invite.
    Approved,
    /// Denied by a moderator, or by a ban of the user.
    Denied,
    /// Withdrawn by the user.
    Withdrawn,
}

impl JoinRequestStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Approved, Self::Denied, Self::Withdrawn];

    /// The stored and wire name (`"pending"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == name)
    }

    /// The `?status=` filter of a server's list: `pending` when absent, else one of the four
    /// names; anything else is a `VALIDATION_ERROR` (the contract's 400 for a wrong value of a
    /// new parameter).
    pub fn parse_filter(value: Option<&str>) -> Result<Self, Problem> {
        match value {
            None => Ok(Self::Pending),
            Some(name) => Self::parse(name).ok_or_else(|| {
                Problem::validation("status must be one of pending, approved, denied, withdrawn")
            }),
        }
    }
}

/// A join request, as the API shows it and its events carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinRequest {
    /// Its id.
    pub id: Uuid,
    /// The server the user asks to join.
    pub server_id: Uuid,
    /// The invite the user accepted: an approval joins through it.
    pub invite_id: Uuid,
    /// Who asks.
    pub user_id: Uuid,
    /// Where it stands.
    pub status: JoinRequestStatus,
    /// When it was filed.
    pub created_at: DateTime<Utc>,
    /// When it was approved, denied or withdrawn.
    pub decided_at: Option<DateTime<Utc>>,
    /// Who approved or denied it (`null` while pending, and when the user withdrew it).
    pub decided_by: Option<Uuid>,
}

/// What an accept of an approval invite does, once the accept's refusals have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filing {
    /// The user's pending request for this server stands: the accept answers with it, and
    /// nothing is written.
    Existing,
    /// A new request is filed.
    New,
}

/// Decides a filing from what the store read under the server's lock: whether the user has a
/// pending request for the server, and how many the server holds. A pending request is
/// answered again even when the server is full (it is already counted).
pub fn decide_filing(has_pending: bool, pending_in_server: i64) -> Result<Filing, Problem> {
    if has_pending {
        Ok(Filing::Existing)
    } else if pending_in_server >= MAX_PENDING_PER_SERVER {
        Err(Problem::of(ErrorCode::TooManyJoinRequests))
    } else {
        Ok(Filing::New)
    }
}

/// How a request leaves `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A moderator lets the user in.
    Approve,
    /// A moderator refuses.
    Deny,
    /// The user takes it back.
    Withdraw,
}

impl Decision {
    /// The status the request ends in.
    pub const fn status(self) -> JoinRequestStatus {
        match self {
            Self::Approve => JoinRequestStatus::Approved,
            Self::Deny => JoinRequestStatus::Denied,
            Self::Withdraw => JoinRequestStatus::Withdrawn,
        }
    }
}

/// Whether a request standing at `status` may be decided: only a pending one, else 409
/// `JOIN_REQUEST_NOT_PENDING` (a second moderator's click, or a withdrawn request).
pub fn check_pending(status: JoinRequestStatus) -> Result<(), Problem> {
    if status == JoinRequestStatus::Pending {
        Ok(())
    } else {
        Err(Problem::of(ErrorCode::JoinRequestNotPending))
    }
}

/// `requires_approval` as a create or edit request sends it: a JSON boolean, else a
/// `VALIDATION_ERROR` (held as the value sent, so a wrong type is the field's error, not the
/// whole body's).
pub fn parse_requires_approval(value: &serde_json::Value) -> Result<bool, Problem> {
    value.as_bool().ok_or_else(|| Problem::validation("requires_approval must be true or false"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_the_filter_defaults_to_pending() {
        for status in JoinRequestStatus::ALL {
            assert_eq!(JoinRequestStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(JoinRequestStatus::parse_filter(Some(status.as_str())), Ok(status));
        }
        assert_eq!(JoinRequestStatus::parse_filter(None), Ok(JoinRequestStatus::Pending));
        for wrong in ["", "Pending", "all", "approve"] {
            let problem = JoinRequestStatus::parse_filter(Some(wrong)).unwrap_err();
            assert_eq!(problem.code, ErrorCode::ValidationError, "{wrong}");
        }
    }

    #[test]
    fn a_pending_request_is_answered_again_and_the_server_holds_at_most_a_thousand() {
        assert_eq!(decide_filing(false, 0), Ok(Filing::New));
        assert_eq!(decide_filing(false, MAX_PENDING_PER_SERVER - 1), Ok(Filing::New));
        assert_eq!(
            decide_filing(false, MAX_PENDING_PER_SERVER).unwrap_err().code,
            ErrorCode::TooManyJoinRequests
        );
        assert_eq!(decide_filing(true, MAX_PENDING_PER_SERVER), Ok(Filing::Existing));
        assert_eq!(decide_filing(true, 1), Ok(Filing::Existing));
    }

    #[test]
    fn only_a_pending_request_is_decided() {
        assert_eq!(check_pending(JoinRequestStatus::Pending), Ok(()));
        for status in
            [JoinRequestStatus::Approved, JoinRequestStatus::Denied, JoinRequestStatus::Withdrawn]
        {
            assert_eq!(check_pending(status).unwrap_err().code, ErrorCode::JoinRequestNotPending);
        }
        assert_eq!(Decision::Approve.status(), JoinRequestStatus::Approved);
        assert_eq!(Decision::Deny.status(), JoinRequestStatus::Denied);
        assert_eq!(Decision::Withdraw.status(), JoinRequestStatus::Withdrawn);
    }

    #[test]
    fn requires_approval_is_a_boolean() {
        assert_eq!(parse_requires_approval(&serde_json::json!(true)), Ok(true));
        assert_eq!(parse_requires_approval(&serde_json::json!(false)), Ok(false));
        for wrong in [serde_json::json!("yes"), serde_json::json!(1), serde_json::json!([])] {
            assert_eq!(
                parse_requires_approval(&wrong).unwrap_err().code,
                ErrorCode::ValidationError
            );
        }
    }

    #[test]
    fn a_request_serializes_with_the_contract_s_fields() {
        let at = DateTime::parse_from_rfc3339("2026-12-08T10:00:00Z").unwrap().to_utc();
        let request = JoinRequest {
            id: Uuid::from_u128(1),
            server_id: Uuid::from_u128(2),
            invite_id: Uuid::from_u128(3),
            user_id: Uuid::from_u128(4),
            status: JoinRequestStatus::Pending,
            created_at: at,
            decided_at: None,
            decided_by: None,
        };
        let json = serde_json::to_value(&request).unwrap();
        let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "created_at",
                "decided_at",
                "decided_by",
                "id",
                "invite_id",
                "server_id",
                "status",
                "user_id"
            ]
        );
        assert_eq!(json["status"], "pending");
        assert_eq!(json["created_at"], "2026-12-08T10:00:00Z");
        assert_eq!(serde_json::from_value::<JoinRequest>(json).unwrap(), request);
    }
}
