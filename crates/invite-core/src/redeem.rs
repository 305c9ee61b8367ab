//! The redemption decision: may this user join with this invite, now?
//!
//! A pure function of the facts the store reads, so every branch is unit- and property-tested
//! here and the layers above only translate. The store's atomic accept applies the same
//! conditions in SQL so that concurrent requests cannot over-admit; when it refuses, this module
//! says why.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::problem::{ErrorCode, Problem};

/// Whether a server's invites are paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitesPause {
    /// Paused until this time (exclusive): from then on invites work again.
    Until(DateTime<Utc>),
    /// Paused until someone resumes them.
    Indefinitely,
}

impl InvitesPause {
    /// Builds the pause state from its two stored columns.
    pub fn from_columns(until: Option<DateTime<Utc>>, indefinitely: bool) -> Option<Self> {
        if indefinitely { Some(Self::Indefinitely) } else { until.map(Self::Until) }
    }

    /// Whether accepting is refused at `now`.
    pub fn is_active(self, now: DateTime<Utc>) -> bool {
        match self {
            Self::Until(until) => now < until,
            Self::Indefinitely => true,
        }
    }

    /// When the pause ends by itself; `None` when someone must resume invites.
    pub fn until(self) -> Option<DateTime<Utc>> {
        match self {
            Self::Until(until) => Some(until),
            Self::Indefinitely => None,
        }
    }
}

impl Serialize for InvitesPause {
    /// A pause serializes as its end time, or the string `"indefinitely"`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Until(until) => until.serialize(serializer),
            Self::Indefinitely => serializer.serialize_str("indefinitely"),
        }
    }
}

impl<'de> Deserialize<'de> for InvitesPause {
    /// What [`Serialize`] writes: an RFC 3339 time, or `"indefinitely"`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == "indefinitely" {
            return Ok(Self::Indefinitely);
        }
        DateTime::parse_from_rfc3339(&text)
            .map(|until| Self::Until(until.with_timezone(&Utc)))
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "expected an RFC 3339 time or \"indefinitely\", found {text:?}"
                ))
            })
    }
}

/// The parts of an invite the decision looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteStatus {
    /// Whether the invite was revoked (soft-deleted).
    pub revoked: bool,
    /// When it stops working (`now >= expires_at` is expired); `None` never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// How many joins it allows; `None` is unlimited.
    pub max_uses: Option<i64>,
    /// How many joins it has admitted.
    pub uses: i64,
}

impl InviteStatus {
    /// Whether the invite has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expires_at| now >= expires_at)
    }

    /// Whether every allowed use is taken.
    pub fn is_used_up(&self) -> bool {
        self.max_uses.is_some_and(|max_uses| self.uses >= max_uses)
    }

    /// Not revoked, not expired, not used up: counts towards a server's active invites and can
    /// be previewed.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.revoked && !self.is_expired(now) && !self.is_used_up()
    }
}

/// Everything the decision depends on, as read from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedemptionFacts {
    /// The invite the code names, if any.
    pub invite: Option<InviteStatus>,
    /// The server's pause, if any.
    pub pause: Option<InvitesPause>,
    /// Whether the user already belongs to the server.
    pub is_member: bool,
    /// Whether the user is banned from the server.
    pub is_banned: bool,
    /// Whether the invite is open to the user: it names no users, or names them
    /// ([`crate::grant::may_accept`]).
    pub is_allowed: bool,
}

/// Why a user may not join. The order of the variants is the order they are checked in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Error, strum::VariantArray, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
pub enum RedemptionRefused {
    /// No invite has this code.
    #[error("invite not found")]
    NotFound,
    /// The invite was revoked.
    #[error("invite revoked")]
    Revoked,
    /// The user already belongs to the server.
    #[error("already a member")]
    AlreadyMember,
    /// The user is banned from the server.
    #[error("banned")]
    Banned,
    /// The invite is for other users (`allowed_user_ids`).
    #[error("invite for someone else")]
    NotForYou,
    /// The server has paused its invites.
    #[error("invites paused")]
    Paused,
    /// The invite has expired.
    #[error("invite expired")]
    Expired,
    /// The invite has no use left.
    #[error("invite used up")]
    MaxedOut,
}

impl RedemptionRefused {
    /// Every reason, in decision order (derived from the enum: none can be left out).
    pub const ALL: &'static [Self] = <Self as strum::VariantArray>::VARIANTS;

    /// The machine code the refusal is answered with.
    pub const fn code(self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::InviteNotFound,
            Self::Revoked => ErrorCode::InviteRevoked,
            Self::AlreadyMember => ErrorCode::AlreadyMember,
            Self::Banned => ErrorCode::Banned,
            Self::NotForYou => ErrorCode::InviteNotForYou,
            Self::Paused => ErrorCode::InvitesPaused,
            Self::Expired => ErrorCode::InviteExpired,
            Self::MaxedOut => ErrorCode::InviteMaxedOut,
        }
    }

    /// A short label for metrics (`accept_outcomes{reason="expired"}`): the variant's name in
    /// `snake_case`.
    pub fn label(self) -> &'static str {
        self.into()
    }
}

impl From<RedemptionRefused> for Problem {
    fn from(refused: RedemptionRefused) -> Self {
        Problem::of(refused.code())
    }
}

/// Decides whether the user may join, checking in the contract's order: unknown code, revoked,
/// already a member, banned, not for this user, paused, expired, used up.
pub fn decide_redemption(
    facts: &RedemptionFacts,
    now: DateTime<Utc>,
) -> Result<(), RedemptionRefused> {
    let Some(invite) = facts.invite else {
        return Err(RedemptionRefused::NotFound);
    };
    if invite.revoked {
        Err(RedemptionRefused::Revoked)
    } else if facts.is_member {
        Err(RedemptionRefused::AlreadyMember)
    } else if facts.is_banned {
        Err(RedemptionRefused::Banned)
    } else if !facts.is_allowed {
        Err(RedemptionRefused::NotForYou)
    } else if facts.pause.is_some_and(|pause| pause.is_active(now)) {
        Err(RedemptionRefused::Paused)
    } else if invite.is_expired(now) {
        Err(RedemptionRefused::Expired)
    } else if invite.is_used_up() {
        Err(RedemptionRefused::MaxedOut)
    } else {
        Ok(())
    }
}

/// Why an invite cannot be previewed: every case is a 404 with the same message, told apart by
/// its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum PreviewRefused {
    /// No invite has this code.
    #[error("invite not found")]
    NotFound,
    /// The invite was revoked.
    #[error("invite revoked")]
    Revoked,
    /// The invite has expired.
    #[error("invite expired")]
    Expired,
    /// The invite has no use left.
    #[error("invite used up")]
    MaxedOut,
}

/// The message of every preview refusal.
pub const PREVIEW_REFUSED_MESSAGE: &str = "Invite not found or has expired";

impl PreviewRefused {
    /// The machine code: the reason, though every preview refusal reads the same to a person
    /// ([`PREVIEW_REFUSED_MESSAGE`]) and is a "not found" to a client.
    pub const fn code(self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::InviteNotFound,
            Self::Revoked => ErrorCode::InviteRevoked,
            Self::Expired => ErrorCode::InviteExpired,
            Self::MaxedOut => ErrorCode::InviteMaxedOut,
        }
    }
}

/// Decides whether an invite can be previewed: only one that could still be accepted by someone.
/// A pause does not hide the preview (it shows `invites_paused` instead).
pub fn check_preview(
    invite: Option<&InviteStatus>,
    now: DateTime<Utc>,
) -> Result<(), PreviewRefused> {
    match invite {
        None => Err(PreviewRefused::NotFound),
        Some(invite) if invite.revoked => Err(PreviewRefused::Revoked),
        Some(invite) if invite.is_expired(now) => Err(PreviewRefused::Expired),
        Some(invite) if invite.is_used_up() => Err(PreviewRefused::MaxedOut),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn usable() -> InviteStatus {
        InviteStatus { revoked: false, expires_at: None, max_uses: None, uses: 0 }
    }

    fn facts(invite: InviteStatus) -> RedemptionFacts {
        RedemptionFacts {
            invite: Some(invite),
            pause: None,
            is_member: false,
            is_banned: false,
            is_allowed: true,
        }
    }

    fn refusal(facts: &RedemptionFacts) -> Problem {
        Problem::from(decide_redemption(facts, now()).unwrap_err())
    }

    #[test]
    fn a_usable_invite_admits() {
        assert_eq!(decide_redemption(&facts(usable()), now()), Ok(()));
        let limited = InviteStatus {
            max_uses: Some(2),
            uses: 1,
            expires_at: Some(now() + Duration::microseconds(1)),
            ..usable()
        };
        assert_eq!(decide_redemption(&facts(limited), now()), Ok(()));
    }

    #[test]
    fn a_pause_is_a_time_or_indefinitely_on_the_wire() {
        let until = Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap();
        for (json, pause) in [
            (r#""indefinitely""#, InvitesPause::Indefinitely),
            (r#""2030-01-02T03:04:05Z""#, InvitesPause::Until(until)),
        ] {
            assert_eq!(serde_json::from_str::<InvitesPause>(json).unwrap(), pause);
            assert_eq!(serde_json::to_string(&pause).unwrap(), json);
        }
        assert!(serde_json::from_str::<InvitesPause>(r#""tomorrow""#).is_err());
    }

    #[test]
    fn metric_labels_are_the_dashboards_names() {
        let labels: Vec<_> = RedemptionRefused::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(
            labels,
            [
                "not_found",
                "revoked",
                "already_member",
                "banned",
                "not_for_you",
                "paused",
                "expired",
                "maxed_out"
            ]
        );
    }

    #[test]
    fn each_refusal_has_the_contract_code_and_message() {
        let cases = [
            (
                RedemptionFacts { invite: None, ..facts(usable()) },
                "INVITE_NOT_FOUND",
                "Invite not found",
            ),
            (
                facts(InviteStatus { revoked: true, ..usable() }),
                "INVITE_REVOKED",
                "Invite not found",
            ),
            (
                RedemptionFacts { is_member: true, ..facts(usable()) },
                "ALREADY_MEMBER",
                "Already a member of this server",
            ),
            (
                RedemptionFacts { is_banned: true, ..facts(usable()) },
                "BANNED",
                "You are banned from this server",
            ),
            (
                RedemptionFacts { is_allowed: false, ..facts(usable()) },
                "INVITE_NOT_FOR_YOU",
                "This invite is for someone else",
            ),
            (
                RedemptionFacts { pause: Some(InvitesPause::Indefinitely), ..facts(usable()) },
                "INVITES_PAUSED",
                "Invites to this server are paused",
            ),
            (
                facts(InviteStatus { expires_at: Some(now()), ..usable() }),
                "INVITE_EXPIRED",
                "This invite has expired",
            ),
            (
                facts(InviteStatus { max_uses: Some(3), uses: 3, ..usable() }),
                "INVITE_MAXED_OUT",
                "This invite has reached its maximum uses",
            ),
        ];
        for (facts, code, message) in cases {
            let problem = refusal(&facts);
            assert_eq!((problem.code.as_str(), problem.message.as_ref()), (code, message));
        }
    }

    #[test]
    fn expiry_is_inclusive_of_the_expiry_instant() {
        let at = |expires_at| facts(InviteStatus { expires_at: Some(expires_at), ..usable() });
        assert_eq!(decide_redemption(&at(now()), now()), Err(RedemptionRefused::Expired));
        assert_eq!(
            decide_redemption(&at(now() - Duration::seconds(1)), now()),
            Err(RedemptionRefused::Expired)
        );
        assert_eq!(decide_redemption(&at(now() + Duration::microseconds(1)), now()), Ok(()));
    }

    #[test]
    fn a_timed_pause_ends_at_its_end_time() {
        let paused_until =
            |until| RedemptionFacts { pause: Some(InvitesPause::Until(until)), ..facts(usable()) };
        assert_eq!(
            decide_redemption(&paused_until(now() + Duration::seconds(1)), now()),
            Err(RedemptionRefused::Paused)
        );
        assert_eq!(decide_redemption(&paused_until(now()), now()), Ok(()));
    }

    #[test]
    fn refusals_follow_the_contract_order() {
        // Everything wrong at once: each step of removing the first reason reveals the next.
        let mut facts = RedemptionFacts {
            invite: Some(InviteStatus {
                revoked: true,
                expires_at: Some(now() - Duration::hours(1)),
                max_uses: Some(1),
                uses: 1,
            }),
            pause: Some(InvitesPause::Indefinitely),
            is_member: true,
            is_banned: true,
            is_allowed: false,
        };
        let mut seen = vec![decide_redemption(&RedemptionFacts { invite: None, ..facts }, now())];
        let fix: [fn(&mut RedemptionFacts); 7] = [
            |f| f.invite.as_mut().unwrap().revoked = false,
            |f| f.is_member = false,
            |f| f.is_banned = false,
            |f| f.is_allowed = true,
            |f| f.pause = None,
            |f| f.invite.as_mut().unwrap().expires_at = None,
            |f| f.invite.as_mut().unwrap().max_uses = None,
        ];
        for step in &fix {
            seen.push(decide_redemption(&facts, now()));
            step(&mut facts);
        }
        seen.push(decide_redemption(&facts, now()));
        let expected: Vec<_> =
            RedemptionRefused::ALL.iter().map(|r| Err(*r)).chain([Ok(())]).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn preview_refusals_are_404_with_one_message() {
        let cases = [
            (None, "INVITE_NOT_FOUND"),
            (Some(InviteStatus { revoked: true, ..usable() }), "INVITE_REVOKED"),
            (Some(InviteStatus { expires_at: Some(now()), ..usable() }), "INVITE_EXPIRED"),
            (Some(InviteStatus { max_uses: Some(1), uses: 1, ..usable() }), "INVITE_MAXED_OUT"),
        ];
        for (invite, code) in cases {
            assert_eq!(check_preview(invite.as_ref(), now()).unwrap_err().code().as_str(), code);
        }
        assert_eq!(check_preview(Some(&usable()), now()), Ok(()));
    }

    #[test]
    fn pause_columns_and_wire_form() {
        let until = now();
        assert_eq!(InvitesPause::from_columns(None, false), None);
        assert_eq!(
            InvitesPause::from_columns(Some(until), false),
            Some(InvitesPause::Until(until))
        );
        assert_eq!(InvitesPause::from_columns(Some(until), true), Some(InvitesPause::Indefinitely));
        assert_eq!(serde_json::to_value(InvitesPause::Indefinitely).unwrap(), "indefinitely");
        assert_eq!(
            serde_json::to_value(InvitesPause::Until(until)).unwrap(),
            "2026-11-22T12:00:00Z"
        );
    }

    fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
        (-100_000_i64..100_000).prop_map(|s| now() + Duration::seconds(s))
    }

    fn any_facts() -> impl Strategy<Value = RedemptionFacts> {
        let invite = (
            any::<bool>(),
            proptest::option::of(any_time()),
            proptest::option::of(1_i64..20),
            0_i64..25,
        )
            .prop_map(|(revoked, expires_at, max_uses, uses)| InviteStatus {
                revoked,
                expires_at,
                max_uses,
                uses: max_uses.map_or(uses, |max| uses.min(max)),
            });
        let pause = proptest::option::of(prop_oneof![
            Just(InvitesPause::Indefinitely),
            any_time().prop_map(InvitesPause::Until)
        ]);
        (proptest::option::of(invite), pause, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(invite, pause, is_member, is_banned, is_allowed)| RedemptionFacts {
                invite,
                pause,
                is_member,
                is_banned,
                is_allowed,
            },
        )
    }

    proptest! {
        #[test]
        fn admits_exactly_the_cases_with_nothing_wrong(facts in any_facts(), now in any_time()) {
            let invite = facts.invite;
            let something_wrong = invite.is_none_or(|i| {
                i.revoked
                    || i.expires_at.is_some_and(|e| now >= e)
                    || i.max_uses.is_some_and(|m| i.uses >= m)
            }) || facts.is_member
                || facts.is_banned
                || !facts.is_allowed
                || facts.pause.is_some_and(|p| matches!(p, InvitesPause::Indefinitely)
                    || matches!(p, InvitesPause::Until(u) if now < u));
            prop_assert_eq!(decide_redemption(&facts, now).is_ok(), !something_wrong);
        }

        #[test]
        fn the_reason_given_is_the_first_that_applies(facts in any_facts(), now in any_time()) {
            if let Err(reason) = decide_redemption(&facts, now) {
                let applies = |r: RedemptionRefused| match (r, facts.invite) {
                    (RedemptionRefused::NotFound, invite) => invite.is_none(),
                    (_, None) => false,
                    (RedemptionRefused::Revoked, Some(i)) => i.revoked,
                    (RedemptionRefused::AlreadyMember, _) => facts.is_member,
                    (RedemptionRefused::Banned, _) => facts.is_banned,
                    (RedemptionRefused::NotForYou, _) => !facts.is_allowed,
                    (RedemptionRefused::Paused, _) => facts.pause.is_some_and(|p| p.is_active(now)),
                    (RedemptionRefused::Expired, Some(i)) => i.is_expired(now),
                    (RedemptionRefused::MaxedOut, Some(i)) => i.is_used_up(),
                };
                let first = RedemptionRefused::ALL.iter().copied().find(|r| applies(*r));
                prop_assert_eq!(Some(reason), first);
            }
        }

        #[test]
        fn a_previewable_invite_is_an_active_one(facts in any_facts(), now in any_time()) {
            let previewable = check_preview(facts.invite.as_ref(), now).is_ok();
            prop_assert_eq!(previewable, facts.invite.is_some_and(|i| i.is_active(now)));
        }
    }
}
