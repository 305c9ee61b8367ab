//! Per-invite analytics (contract section 11): how often an invite was previewed, accepted and
//! refused, the joins through it per day, and how many who joined through it are still members.
//!
//! Nothing here costs an accept a write. Joins and departures are already in the outbox (every
//! `MEMBER_JOIN` names its invite and time, every `MEMBER_REMOVE` the invite the member had
//! joined through), so the store folds them into daily roll-ups and per-invite counters behind a
//! cursor, in batches ([`Tally`] is the rule of that fold). Previews and refusals are counted in
//! each instance's memory and written in batches. Reads then cost a handful of rows per invite,
//! however many people joined.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::event::Event;

/// How many days `joins_per_day` covers, today (UTC) included.
pub const JOINS_PER_DAY_DAYS: i64 = 30;

/// How many invites the server's stats list, by accepts.
pub const TOP_INVITES: i64 = 100;

/// The UTC day of `at`, as days since 1970-01-01: the key of a daily roll-up, the same on both
/// backends (neither's date type is needed).
pub fn day_number(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(86_400)
}

/// The date of a [`day_number`].
pub fn day_date(day: i64) -> NaiveDate {
    DateTime::<Utc>::UNIX_EPOCH.date_naive() + chrono::Days::new(day.max(0).unsigned_abs())
}

/// The first day `joins_per_day` shows at `now`: the last [`JOINS_PER_DAY_DAYS`] days, today
/// included.
pub fn first_shown_day(now: DateTime<Utc>) -> i64 {
    day_number(now) - (JOINS_PER_DAY_DAYS - 1)
}

/// Who joined through an invite and is still a member: its accepts less the departures of
/// members who had joined through it. Never below zero: a departure folded before the join it
/// undoes (they are folded in `seq` order, so only across a cursor reset) shows as nobody.
pub fn retained(accepts: i64, departures: i64) -> i64 {
    accepts.saturating_sub(departures).max(0)
}

/// What one invite gained in a fold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteTally {
    /// Its server.
    pub server_id: Uuid,
    /// Joins through it.
    pub accepts: i64,
    /// Members who had joined through it and are gone.
    pub departures: i64,
    /// Its joins by [`day_number`].
    pub joins_by_day: BTreeMap<i64, i64>,
}

/// The fold of a run of outbox events into per-invite counters and daily roll-ups: a join
/// through an invite counts one accept on its day, a departure of a member who joined through
/// one counts one departure. Every other event, and joins without an invite (a server's
/// owner), change nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// By invite.
    pub invites: BTreeMap<Uuid, InviteTally>,
}

impl Tally {
    /// Adds one event, written at `at`.
    pub fn add(&mut self, event: &Event, at: DateTime<Utc>) {
        match event {
            Event::MemberJoin(joined) => {
                if let Some(invite_id) = joined.invite_id {
                    let tally = self.entry(invite_id, joined.server_id);
                    tally.accepts += 1;
                    *tally.joins_by_day.entry(day_number(at)).or_default() += 1;
                }
            }
            Event::MemberRemove(removed) => {
                if let Some(invite_id) = removed.invite_id {
                    self.entry(invite_id, removed.server_id).departures += 1;
                }
            }
            _ => {}
        }
    }

    fn entry(&mut self, invite_id: Uuid, server_id: Uuid) -> &mut InviteTally {
        self.invites
            .entry(invite_id)
            .or_insert_with(|| InviteTally { server_id, ..InviteTally::default() })
    }

    /// Whether the fold found nothing to count.
    pub fn is_empty(&self) -> bool {
        self.invites.is_empty()
    }
}

/// An invite's analytics, or a server's totals, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteStats {
    /// Times its preview was shown (the API's or the invite page's), as flushed.
    pub previews: i64,
    /// Joins through it.
    pub accepts: i64,
    /// Accepts refused, by the contract's error code (`INVITE_MAXED_OUT`, ...).
    pub refusals: BTreeMap<String, i64>,
    /// Joins per UTC day over the last [`JOINS_PER_DAY_DAYS`], oldest first, days without
    /// joins left out.
    pub joins_per_day: Vec<(NaiveDate, i64)>,
    /// Who joined through it and is still a member.
    pub retained: i64,
}

/// One invite among a server's top ones, by accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteSummary {
    /// The invite.
    pub invite_id: Uuid,
    /// Its code (`None` for a vanity invite whose code was released).
    pub code: Option<String>,
    /// Times its preview was shown.
    pub previews: i64,
    /// Joins through it.
    pub accepts: i64,
    /// Who joined through it and is still a member.
    pub retained: i64,
}

/// A server's analytics: its totals and its top [`TOP_INVITES`] invites by accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// The totals over all its invites.
    pub totals: InviteStats,
    /// Its invites with the most accepts, most first (ties by invite id).
    pub invites: Vec<InviteSummary>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::event::{MemberJoined, MemberRemoved, RemovalReason};
    use crate::server::JoinSource;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn join(invite: Option<u128>, user: u128) -> Event {
        Event::MemberJoin(MemberJoined {
            server_id: id(1),
            user_id: id(user),
            invite_id: invite.map(id),
            code: None,
            source: JoinSource::Invite,
            inviter_id: None,
            temporary: false,
            member_count: 2,
        })
    }

    fn leave(invite: Option<u128>, user: u128) -> Event {
        Event::MemberRemove(MemberRemoved {
            server_id: id(1),
            user_id: id(user),
            reason: RemovalReason::Leave,
            invite_id: invite.map(id),
        })
    }

    #[test]
    fn days_are_utc_days_since_the_epoch() {
        let at = Utc.with_ymd_and_hms(2026, 12, 8, 23, 59, 59).unwrap();
        assert_eq!(day_date(day_number(at)), NaiveDate::from_ymd_opt(2026, 12, 8).unwrap());
        let next = Utc.with_ymd_and_hms(2026, 12, 9, 0, 0, 0).unwrap();
        assert_eq!(day_number(next), day_number(at) + 1);
        assert_eq!(day_number(DateTime::<Utc>::UNIX_EPOCH), 0);
        assert_eq!(first_shown_day(next), day_number(next) - 29);
    }

    #[test]
    fn joins_count_on_their_day_and_departures_against_the_invite_joined_through() {
        let monday = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
        let tuesday = Utc.with_ymd_and_hms(2026, 12, 8, 10, 0, 0).unwrap();
        let mut tally = Tally::default();
        tally.add(&join(Some(7), 10), monday);
        tally.add(&join(Some(7), 11), tuesday);
        tally.add(&join(Some(7), 12), tuesday);
        tally.add(&join(Some(8), 13), tuesday);
        tally.add(&leave(Some(7), 10), tuesday);
        // The owner joined through nothing; a departure of theirs is nobody's.
        tally.add(&join(None, 14), tuesday);
        tally.add(&leave(None, 14), tuesday);
        let seven = &tally.invites[&id(7)];
        assert_eq!((seven.server_id, seven.accepts, seven.departures), (id(1), 3, 1));
        assert_eq!(
            seven.joins_by_day.iter().map(|(d, n)| (*d, *n)).collect::<Vec<_>>(),
            vec![(day_number(monday), 1), (day_number(tuesday), 2)]
        );
        assert_eq!((tally.invites[&id(8)].accepts, tally.invites.len()), (1, 2));
        assert_eq!(retained(seven.accepts, seven.departures), 2);
    }

    #[test]
    fn retained_is_never_negative() {
        assert_eq!(retained(1, 3), 0);
        assert_eq!(retained(5, 0), 5);
    }
}
