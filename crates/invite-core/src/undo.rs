//! Undoing a leaked link (contract section 11): the request, and who of those who joined through
//! the invite is removed, who is kept, and who is left alone.
//!
//! The rule is [`undo_verdict`]: the owner and anyone whose permissions were set after they
//! joined are kept (someone vouched for them), everyone else who joined through the invite at or
//! after `since` is removed, and whoever joined before `since` is neither. The store reads who
//! joined through the invite; the operation applies [`plan_undo`]'s answer.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::invite::InviteKind;
use crate::problem::{ErrorCode, Problem};

/// The body of `POST /servers/{id}/invites/{invite_id}/undo`; may be absent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UndoInviteRequest {
    /// Only those who joined at or after this time (RFC 3339) are removed; absent or `null`,
    /// everyone who joined through the invite. Held as the JSON value sent, so that a wrong
    /// type or an unreadable time reaches [`UndoInviteRequest::validate`] (and its
    /// `VALIDATION_ERROR`) instead of failing the parse of the whole body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub since: Option<serde_json::Value>,
}

impl UndoInviteRequest {
    /// A request removing those who joined at or after `since` (`None`: everyone).
    pub fn since(since: Option<DateTime<Utc>>) -> Self {
        let rfc3339 = |time: DateTime<Utc>| time.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        Self { since: since.map(|time| serde_json::Value::String(rfc3339(time))) }
    }

    /// The time from which joins are undone (`None`: all of them); a `since` that is not an
    /// RFC 3339 time is refused here, with the rule's `VALIDATION_ERROR`, rather than as
    /// malformed JSON (contract section 11: every new field's wrong type is a validation error).
    pub fn validate(&self) -> Result<Option<DateTime<Utc>>, Problem> {
        // `parse_from_rfc3339`, not chrono's lenient `FromStr`, which also takes a time without
        // seconds or offset: the published format is RFC 3339's (which allows a space for `T`).
        match &self.since {
            None => Ok(None),
            Some(serde_json::Value::String(since)) => DateTime::parse_from_rfc3339(since)
                .map(|since| Some(since.with_timezone(&Utc)))
                .map_err(|_| invalid_since()),
            Some(_) => Err(invalid_since()),
        }
    }
}

fn invalid_since() -> Problem {
    Problem::validation("since must be an RFC 3339 time, such as 2026-12-07T12:00:00Z")
}

/// Whether an invite can be undone: the vanity invite cannot (400 `VANITY_INVITE`), since it
/// is the server's standing link, managed through the vanity URL. A revoked invite can: undoing
/// it again removes whoever is still left.
pub fn check_undoable(kind: InviteKind) -> Result<(), Problem> {
    match kind {
        InviteKind::Random => Ok(()),
        InviteKind::Vanity => Err(Problem::with_message(
            ErrorCode::VanityInvite,
            "The vanity invite cannot be undone; change or release the vanity URL instead",
        )),
    }
}

/// A member who joined through the invite being undone, as the rule sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joiner {
    /// The member.
    pub user_id: Uuid,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// When their permissions were last set (a PATCH of this membership), if ever. The record
    /// belongs to the membership, which starts with the join, so any time here was set after
    /// they joined; it is not compared with `joined_at`, which another instance's clock may
    /// have stamped a little later.
    pub permissions_set_at: Option<DateTime<Utc>>,
}

/// What undoing an invite does to one who joined through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoVerdict {
    /// Removed, audited as a kick.
    Remove,
    /// Stays, counted in `kept`: the owner, or a member whose permissions were set since.
    Keep,
    /// Joined before `since`: stays, in neither count.
    Untouched,
}

/// What undoing the invite does to `joiner`, in a server owned by `owner_id`, undoing the joins
/// from `since` (all of them when `None`; a join at exactly `since` is undone).
pub fn undo_verdict(joiner: &Joiner, owner_id: Uuid, since: Option<DateTime<Utc>>) -> UndoVerdict {
    if since.is_some_and(|since| joiner.joined_at < since) {
        UndoVerdict::Untouched
    } else if joiner.user_id == owner_id || joiner.permissions_set_at.is_some() {
        UndoVerdict::Keep
    } else {
        UndoVerdict::Remove
    }
}

/// The verdicts for everyone who joined through an invite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndoPlan {
    /// Who is removed, in the order they were given.
    pub remove: Vec<Uuid>,
    /// How many are kept.
    pub kept: u64,
}

/// [`undo_verdict`] for each of `joiners`.
pub fn plan_undo(joiners: &[Joiner], owner_id: Uuid, since: Option<DateTime<Utc>>) -> UndoPlan {
    let mut plan = UndoPlan::default();
    for joiner in joiners {
        match undo_verdict(joiner, owner_id, since) {
            UndoVerdict::Remove => plan.remove.push(joiner.user_id),
            UndoVerdict::Keep => plan.kept += 1,
            UndoVerdict::Untouched => {}
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn joiner(id: u128, joined: i64, set: Option<i64>) -> Joiner {
        Joiner {
            user_id: Uuid::from_u128(id),
            joined_at: t(joined),
            permissions_set_at: set.map(t),
        }
    }

    const OWNER: Uuid = Uuid::from_u128(99);

    fn parse(json: &str) -> Result<UndoInviteRequest, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn everyone_who_joined_is_removed_without_since() {
        let joiners = [joiner(1, 0, None), joiner(2, 5, None)];
        let plan = plan_undo(&joiners, OWNER, None);
        assert_eq!(
            plan,
            UndoPlan { remove: vec![Uuid::from_u128(1), Uuid::from_u128(2)], kept: 0 }
        );
    }

    #[test]
    fn the_owner_and_members_given_permissions_are_kept() {
        let owner = Joiner { user_id: OWNER, ..joiner(0, 1, None) };
        assert_eq!(undo_verdict(&owner, OWNER, None), UndoVerdict::Keep);
        // Any PATCH of the membership counts, even one that set no bits, and even one whose
        // time reads earlier than the join's (two instances' clocks).
        assert_eq!(undo_verdict(&joiner(1, 1, Some(2)), OWNER, None), UndoVerdict::Keep);
        assert_eq!(undo_verdict(&joiner(1, 3, Some(2)), OWNER, None), UndoVerdict::Keep);
        assert_eq!(undo_verdict(&joiner(1, 1, None), OWNER, None), UndoVerdict::Remove);
    }

    #[test]
    fn joins_before_since_are_in_neither_count() {
        let since = Some(t(10));
        assert_eq!(undo_verdict(&joiner(1, 9, None), OWNER, since), UndoVerdict::Untouched);
        assert_eq!(undo_verdict(&joiner(1, 9, Some(11)), OWNER, since), UndoVerdict::Untouched);
        let owner = Joiner { user_id: OWNER, ..joiner(0, 9, None) };
        assert_eq!(undo_verdict(&owner, OWNER, since), UndoVerdict::Untouched);
        // A join at exactly `since` is undone.
        assert_eq!(undo_verdict(&joiner(1, 10, None), OWNER, since), UndoVerdict::Remove);
        assert_eq!(undo_verdict(&joiner(1, 10, Some(12)), OWNER, since), UndoVerdict::Keep);
        let joiners = [joiner(1, 9, None), joiner(2, 10, None), joiner(3, 11, Some(12))];
        assert_eq!(
            plan_undo(&joiners, OWNER, since),
            UndoPlan { remove: vec![Uuid::from_u128(2)], kept: 1 }
        );
    }

    #[test]
    fn only_the_random_invites_can_be_undone() {
        assert_eq!(check_undoable(InviteKind::Random), Ok(()));
        assert_eq!(check_undoable(InviteKind::Vanity).unwrap_err().code, ErrorCode::VanityInvite);
    }

    #[test]
    fn since_is_an_rfc_3339_time_or_absent() {
        assert_eq!(parse("{}").unwrap().validate(), Ok(None));
        assert_eq!(parse(r#"{"since": null}"#).unwrap().validate(), Ok(None));
        assert_eq!(
            parse(r#"{"since": "2026-12-07T12:10:00Z"}"#).unwrap().validate(),
            Ok(Some(t(10)))
        );
        // Any offset, held in UTC; RFC 3339 allows a space for the `T`.
        assert_eq!(
            parse(r#"{"since": "2026-12-07 12:10:00Z"}"#).unwrap().validate(),
            Ok(Some(t(10)))
        );
        assert_eq!(
            parse(r#"{"since": "2026-12-07T13:10:00+01:00"}"#).unwrap().validate(),
            Ok(Some(t(10)))
        );
    }

    #[test]
    fn a_since_of_the_wrong_type_or_shape_is_a_validation_error() {
        for bad in [
            r#"{"since": "yesterday"}"#,
            r#"{"since": ""}"#,
            r#"{"since": "2026-12-07T12:10Z"}"#,
            r#"{"since": "2026-12-07"}"#,
            r#"{"since": 1765108800}"#,
            r#"{"since": 1.5}"#,
            r#"{"since": true}"#,
            r#"{"since": []}"#,
            r#"{"since": ["2026-12-07T12:10:00Z"]}"#,
            r#"{"since": {"at": "2026-12-07T12:10:00Z"}}"#,
        ] {
            let problem = parse(bad).unwrap().validate().unwrap_err();
            assert_eq!(problem.code, ErrorCode::ValidationError, "{bad}");
            assert_eq!(
                problem.message,
                "since must be an RFC 3339 time, such as 2026-12-07T12:00:00Z"
            );
        }
        // Other fields are the body's business: unknown ones are refused as JSON.
        assert!(parse(r#"{"until": "2026-12-07T12:10:00Z"}"#).is_err());
    }

    #[test]
    fn a_request_round_trips() {
        let request = UndoInviteRequest::since(Some(t(10)));
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(json, r#"{"since":"2026-12-07T12:10:00Z"}"#);
        assert_eq!(parse(&json).unwrap(), request);
        assert_eq!(serde_json::to_string(&UndoInviteRequest::since(None)).unwrap(), "{}");
    }

    proptest! {
        /// Every joiner is in exactly one of the three outcomes, and the plan counts them.
        #[test]
        fn the_plan_partitions_the_joiners(
            joins in proptest::collection::vec((0i64..100, proptest::option::of(0i64..100), any::<bool>()), 0..40),
            since in proptest::option::of(0i64..100),
        ) {
            let joiners: Vec<Joiner> = joins
                .iter()
                .enumerate()
                .map(|(i, &(joined, set, is_owner))| {
                    let id = if is_owner { OWNER } else { Uuid::from_u128(u128::try_from(i).unwrap() + 1) };
                    Joiner { user_id: id, ..joiner(0, joined, set) }
                })
                .collect();
            let since = since.map(t);
            let plan = plan_undo(&joiners, OWNER, since);
            let untouched = joiners.iter().filter(|j| since.is_some_and(|s| j.joined_at < s)).count();
            prop_assert_eq!(plan.remove.len() + usize::try_from(plan.kept).unwrap() + untouched, joiners.len());
            for joiner in &joiners {
                let removed = plan.remove.contains(&joiner.user_id);
                prop_assert_eq!(
                    removed && joiner.user_id != OWNER,
                    undo_verdict(joiner, OWNER, since) == UndoVerdict::Remove,
                );
                prop_assert!(!(joiner.user_id == OWNER && removed), "the owner is never removed");
            }
        }
    }
}
