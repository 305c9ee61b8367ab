//! Accepting an invite: the one write that must never over-admit.
//!
//! Both paths apply the use with a conditional `UPDATE ... WHERE uses < max_uses` (never a
//! read-modify-write of the counter) in the same transaction as the member insert, the member
//! count, the version bump and the `MemberJoin` audit entry. The core decides every refusal.
//!
//! - PostgreSQL sends one statement: data-modifying CTEs read the facts, take the use (the
//!   invite's row lock), count the member (the server's row lock, where a ban committed since
//!   the snapshot is caught), insert it, audit it and write its event. The use is re-checked
//!   under the invite's row lock, so concurrent accepts queue on that row and the last free use
//!   goes to exactly one of them. If the statement admits nobody, the facts it read go to the
//!   core for the reason; if the core would have admitted on those facts, a concurrent join
//!   took the use between the snapshot and the lock, and the statement runs again on fresh
//!   data.
//! - SQLite runs `BEGIN IMMEDIATE`, reads the facts, asks the core, and applies the writes:
//!   writers are serialised, so what was read is what is written against.
//!
//! Every path counts the join into its server's raid window (`invite_core::raid`) where it counts
//! the member, on the server's row, under its lock; the join that trips the protection writes
//! the pause, its audit entry and its `INVITES_PAUSE` event in the same statement or
//! transaction.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::dsl::exists;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use invite_core::audit::AuditAction;
use invite_core::code::CodeRef;
use invite_core::event::{Event, InvitesPaused, MemberJoined};
use invite_core::grant::{granted_on_join, joins_temporary, may_accept};
use invite_core::invite::InviteKind;
use invite_core::permissions::Permissions;
use invite_core::raid::{RaidCount, RaidProtection, RaidWindow, count_join};
use invite_core::redeem::{
    InviteStatus, InvitesPause, RedemptionFacts, RedemptionRefused, decide_redemption,
};
use uuid::Uuid;

use super::actor::Actor;
use super::audit::{self, NewAuditEntry};
use super::events::StoredEvent;
use super::filing::{Filed, file_locked};
use super::idempotency::{IdempotencyClaim, JoinResponseTemplate, RecordedResponse};
use super::servers::{add_to_member_count, lock_server};
use crate::connection::{DbConnection, check_deadline, on_each_backend, write_transaction};
use crate::error::{Constraint, StoreError, StoreResult};
use crate::models::{Invite, InviteRow, JoinSource, Member, MemberRow, corrupt};
use crate::prepared::{bind_then, prepared_statement};
use crate::schema::{bans, invites, members, servers};
use crate::sql_types::{DbTimestamp, DbUuid, Id, Ts};

/// A successful join.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The new membership.
    pub member: Member,
    /// The invite's uses after this join.
    pub uses: i64,
    /// The invite's version after this join.
    pub version: i64,
    /// The server's member count after this join (this one included).
    pub member_count: i64,
    /// The `MEMBER_JOIN` event the join wrote to the outbox.
    pub event: StoredEvent,
    /// The `INVITES_PAUSE` event, when this join brought the server's raid window to its
    /// threshold and paused its invites (see `invite_core::raid`).
    pub raid_pause: Option<StoredEvent>,
}

/// The outcome of an accept.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    /// The user joined (boxed: a join carries its member and event, a refusal one byte).
    Joined(Box<Joined>),
    /// The invite requires approval: the user's join request was filed, or was pending
    /// already (see `invite_core::approval`). No use was taken.
    Filed(Box<Filed>),
    /// The user may not join, for the reason given; nothing changed.
    Refused(RedemptionRefused),
}

/// Times a PostgreSQL accept runs again after losing a race. Each retry sees everything committed
/// before it, so a second attempt already gets a definite answer; the bound only guards against
/// a pathological storm.
const MAX_ATTEMPTS: usize = 5;

/// Times a PostgreSQL accept runs again because bans were written on its server while it ran.
/// Any ban on the server sends it round again (the statement cannot tell whose ban it was),
/// and a burst of bans on one server can do that many times in a row; each round is short and
/// sees every ban committed before it, so the burst runs out long before this does.
const MAX_BAN_ROUNDS: usize = 100;

/// The invite named by the code and where the user stands with its server.
#[expect(clippy::struct_excessive_bools, reason = "the facts the decision reads, as read")]
pub(super) struct Target {
    pub(super) invite_id: Uuid,
    pub(super) server_id: Uuid,
    pub(super) code: Option<String>,
    kind: InviteKind,
    created_by: Option<Uuid>,
    temporary: bool,
    status: InviteStatus,
    pause: Option<InvitesPause>,
    is_member: bool,
    is_banned: bool,
    /// The server's raid protection and window, as SQLite's accept reads them (PostgreSQL's
    /// statement counts the join in SQL, and leaves these at none).
    raid: Option<RaidProtection>,
    window: RaidWindow,
    /// Whether the invite is open to the user (`allowed_user_ids`).
    is_allowed: bool,
    /// What the join grants: `invite_core::grant::granted_on_join` of the invite's grant and
    /// its granter's standing when the facts were read.
    granted: Permissions,
    /// Whether accepting files a join request instead of joining (see
    /// `invite_core::approval`): no accept statement takes a use of such an invite.
    pub(super) requires_approval: bool,
}

impl Target {
    pub(super) fn facts(&self) -> RedemptionFacts {
        RedemptionFacts {
            invite: Some(self.status),
            pause: self.pause,
            is_member: self.is_member,
            is_banned: self.is_banned,
            is_allowed: self.is_allowed,
        }
    }

    /// The membership an accept of this invite creates.
    fn member(&self, user: &Actor, now: DateTime<Utc>) -> Member {
        let vanity = self.kind == InviteKind::Vanity;
        Member {
            server_id: self.server_id,
            user_id: user.user_id,
            username: user.username.clone(),
            permissions: self.granted,
            joined_at: now,
            temporary: joins_temporary(self.temporary, self.granted),
            source: if vanity { JoinSource::Vanity } else { JoinSource::Invite },
            joined_via_invite_id: Some(self.invite_id),
            joined_via_code: self.code.clone(),
            // A vanity link is the server's, not the person's who happened to set it.
            inviter_id: if vanity { None } else { self.created_by },
        }
    }
}

/// A join to record with its response, for an accept that carries an `Idempotency-Key`.
pub(super) type JoinRecord<'a> = (&'a IdempotencyClaim, &'a JoinResponseTemplate<'a>);

pub(super) fn redeem(
    conn: &mut DbConnection,
    code: &CodeRef,
    user: &Actor,
    now: DateTime<Utc>,
    record: Option<JoinRecord<'_>>,
) -> StoreResult<Redemption> {
    match conn {
        DbConnection::Postgres(pg) => match redeem_postgres(pg, code, user, now, record)? {
            Some(redemption) => Ok(redemption),
            // The invite requires approval and the rules admit the user: the statement took
            // nothing, and the request is filed under the server's lock (the only accepts that
            // pay this second round trip are those of approval invites).
            None => file_join_request(conn, code, user, now),
        },
        // Read, decide, write, with writers serialised by SQLite's immediate transaction.
        DbConnection::Sqlite(_) => write_transaction(conn, |conn| {
            let target = load_target(conn, code, user.user_id)?;
            admit(conn, target, user, now, record)
        }),
    }
}

/// Files a join request for `user` through the invite `code` names, or finds their pending
/// one: the accept of an invite that requires approval, once the accept's refusals have
/// passed. Takes the server's lock and reads the facts again under it (on PostgreSQL they were
/// read by a statement that held no lock), so that the one-pending rule and the cap hold under
/// racing accepts, and a ban that committed meanwhile is seen.
fn file_join_request(
    conn: &mut DbConnection,
    code: &CodeRef,
    user: &Actor,
    now: DateTime<Utc>,
) -> StoreResult<super::redeem::Redemption> {
    write_transaction(conn, |conn| {
        let Some(target) = load_target(conn, code, user.user_id)? else {
            return Ok(Redemption::Refused(RedemptionRefused::NotFound));
        };
        lock_server(conn, target.server_id)?;
        // Decided again on the facts under the lock: should an edit have turned approval off
        // since they were first read, this is a plain join.
        let target = load_target(conn, code, user.user_id)?;
        admit(conn, target, user, now, None)
    })
}

/// Reads the facts with the DSL (both backends; used inside SQLite's immediate transaction, and
/// under the server's lock by the filing and the approval of a join request).
pub(super) fn load_target(
    conn: &mut DbConnection,
    code: &CodeRef,
    user_id: Uuid,
) -> StoreResult<Option<Target>> {
    // On the connection inside, so the query is not rendered again for `MultiBackend` at every
    // join (each arm infers its own backend); `get_result`, not `first`: the code is unique, and
    // a bound `LIMIT` would make SQLite prepare the statement again at every join (see the
    // `prepared` module).
    let row = on_each_backend!(conn, |conn| invites::table
        .inner_join(servers::table)
        .filter(invites::code.eq(code.as_str()))
        .select((
            InviteRow::as_select(),
            servers::invites_paused_until,
            servers::invites_paused_indefinitely,
            exists(
                members::table
                    .filter(members::server_id.eq(invites::server_id))
                    .filter(members::user_id.eq(Id(user_id))),
            ),
            exists(
                bans::table
                    .filter(bans::server_id.eq(invites::server_id))
                    .filter(bans::user_id.eq(Id(user_id))),
            ),
            (
                servers::raid_joins,
                servers::raid_window_seconds,
                servers::raid_pause_seconds,
                servers::raid_window_started_at,
                servers::raid_window_joins,
            ),
        ))
        .get_result::<(InviteRow, Option<Ts>, bool, bool, bool, RaidColumns)>(conn)
        .optional())?;
    let Some((invite, paused_until, paused_indefinitely, is_member, is_banned, raid)) = row else {
        return Ok(None);
    };
    let (joins, window_seconds, pause_seconds, window_started_at, window_joins) = raid;
    let invite = Invite::try_from(invite)?;
    let granted = if invite.grant_permissions.is_empty() {
        Permissions::empty()
    } else {
        let granter = match invite.granted_by {
            Some(granter) => conn.standing(invite.server_id, granter)?,
            None => None,
        };
        granted_on_join(invite.grant_permissions, granter.as_ref())
    };
    Ok(Some(Target {
        is_allowed: may_accept(invite.allowed_user_ids.as_deref(), user_id),
        granted,
        invite_id: invite.id,
        server_id: invite.server_id,
        kind: invite.kind,
        created_by: invite.created_by,
        temporary: invite.temporary,
        status: invite.status(),
        code: invite.code,
        pause: InvitesPause::from_columns(paused_until.map(Into::into), paused_indefinitely),
        is_member,
        is_banned,
        raid: RaidProtection::from_columns(joins, window_seconds, pause_seconds),
        window: RaidWindow { started_at: window_started_at.map(Into::into), joins: window_joins },
        requires_approval: invite.requires_approval,
    }))
}

/// A server's raid columns: the protection's three settings, and its window's start and count.
type RaidColumns = (Option<i64>, Option<i64>, Option<i64>, Option<Ts>, i64);

/// Decides the accept of `target` (`None`: no invite has the code) by the core's rules and
/// writes what they admit: the join, or the join request of an invite that requires approval.
/// The facts were read with the writers serialised, so what was read is what is written against.
fn admit(
    conn: &mut DbConnection,
    target: Option<Target>,
    user: &Actor,
    now: DateTime<Utc>,
    record: Option<JoinRecord<'_>>,
) -> StoreResult<Redemption> {
    let Some(target) = target else {
        return Ok(Redemption::Refused(RedemptionRefused::NotFound));
    };
    if let Err(reason) = decide_redemption(&target.facts(), now) {
        return Ok(Redemption::Refused(reason));
    }
    if target.requires_approval {
        let filed = file_locked(conn, target.server_id, target.invite_id, user, now)?;
        return Ok(Redemption::Filed(Box::new(filed)));
    }
    join_target(conn, &target, user, now, record)
}

/// Takes a use of the target's invite and makes `user` a member through it, with everything
/// a join writes (the member count and raid window, the username, the `MEMBER_JOIN` event and
/// `MemberJoin` audit entry, the raid's pause if the join trips it, the recorded response), the
/// rules having admitted the join and the writers being serialised by the caller (SQLite's
/// transaction, or the invite's and server's row locks of an approval).
pub(super) fn join_target(
    conn: &mut DbConnection,
    target: &Target,
    user: &Actor,
    now: DateTime<Utc>,
    record: Option<JoinRecord<'_>>,
) -> StoreResult<Redemption> {
    let statement = UseInvite { invite_id: target.invite_id, now };
    let used = on_each_backend!(conn, |conn| statement.get_result::<(i64, i64)>(conn).optional())?;
    let Some((uses, version)) = used else {
        // Unreachable while writers are serialised; kept so the counter can never overshoot.
        return Ok(Redemption::Refused(RedemptionRefused::MaxedOut));
    };
    let member = target.member(user, now);
    let row = MemberRow {
        server_id: Id(member.server_id),
        user_id: Id(member.user_id),
        permissions: member.permissions.bits(),
        joined_at: Ts(now),
        temporary: member.temporary,
        source: member.source.as_str().to_owned(),
        joined_via_invite_id: member.joined_via_invite_id.map(Id),
        joined_via_code: member.joined_via_code.clone(),
        inviter_id: member.inviter_id.map(Id),
    };
    on_each_backend!(conn, |conn| diesel::insert_into(members::table).values(&row).execute(conn))?;
    // The join counts into the server's raid window on the server's row, with its member count.
    let raid = count_join(target.raid, target.window, now);
    let member_count = match CountRaidJoin::counting(target.server_id, raid) {
        None => add_to_member_count(conn, target.server_id, 1)?,
        Some(statement) => on_each_backend!(conn, |conn| statement.get_result(conn))?,
    };
    conn.remember_user(user, now)?;
    let mut events = vec![member_joined(&member, member_count)];
    if let RaidCount::Tripped { paused_until } = raid {
        events.push(Event::InvitesPause(InvitesPaused {
            server_id: target.server_id,
            until: Some(paused_until),
        }));
    }
    let mut stored = conn.append_events(&events, now)?.into_iter();
    let event = stored.next().ok_or_else(|| corrupt("event", "none appended"))?;
    let raid_pause = stored.next();
    audit::record(
        conn,
        NewAuditEntry {
            server_id: target.server_id,
            actor_id: Some(user.user_id),
            action: AuditAction::MemberJoin,
            target_id: Some(user.user_id),
            details: serde_json::json!({ "code": target.code, "invite_id": target.invite_id }),
            now,
        },
    )?;
    // After the join's entry, which it follows.
    if let (RaidCount::Tripped { .. }, Some(protection)) = (raid, target.raid) {
        audit::record(conn, raid_pause_audit(target.server_id, protection, now))?;
    }
    if let Some((claim, template)) = record {
        let response = RecordedResponse {
            status: template.status,
            body: template.render(target.server_id),
            etag: None,
        };
        conn.record_response(claim, &response, now)?;
    }
    Ok(Redemption::Joined(Box::new(Joined {
        member,
        uses,
        version,
        member_count,
        event,
        raid_pause,
    })))
}

/// The audit entry of a raid's pause: nobody's doing (`actor_id` null), with why.
fn raid_pause_audit(
    server_id: Uuid,
    protection: RaidProtection,
    now: DateTime<Utc>,
) -> NewAuditEntry {
    NewAuditEntry {
        server_id,
        actor_id: None,
        action: AuditAction::InvitesPause,
        target_id: Some(server_id),
        details: serde_json::json!({
            "reason": "raid",
            "joins": protection.joins(),
            "window_seconds": protection.window_seconds(),
        }),
        now,
    }
}

/// The `INVITES_PAUSE` event a raid's pause wrote, as the accept statements return it.
fn raid_pause_event(
    seq: i64,
    server_id: Uuid,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoredEvent {
    StoredEvent {
        seq,
        event: Event::InvitesPause(InvitesPaused { server_id, until: Some(until) }),
        created_at: now,
    }
}

prepared_statement! {
    /// Counts a join on a protected server (SQLite's accept): the member count, and the raid
    /// window as `invite_core::raid`'s `count_join` left it, with the pause when it tripped.
    struct CountRaidJoin -> BigInt {
        server_id: Uuid,
        started_at: Option<DateTime<Utc>>,
        joins: i64,
        paused_until: Option<DateTime<Utc>>,
    }
    sql = ["UPDATE servers SET member_count = member_count + 1, raid_window_started_at = "
           (started_at: Nullable<DbTimestamp>) ", raid_window_joins = " (joins: BigInt)
           ", invites_paused_until = coalesce(" (paused_until: Nullable<DbTimestamp>)
           ", invites_paused_until) WHERE id = " (server_id: DbUuid) " RETURNING member_count"];
}

impl CountRaidJoin {
    /// The statement that counts a join on `server_id` as `count_join` counted it: the window
    /// counted on, or closed with the pause by the join that tripped it. `None` for a server
    /// without protection, whose member count alone changes.
    fn counting(server_id: Uuid, raid: RaidCount) -> Option<Self> {
        let (started_at, joins, paused_until) = match raid {
            RaidCount::Unprotected => return None,
            RaidCount::Counted(window) => (window.started_at, window.joins, None),
            RaidCount::Tripped { paused_until } => (None, 0, Some(paused_until)),
        };
        Some(Self { server_id, started_at, joins, paused_until })
    }
}

prepared_statement! {
    /// Takes one use of an invite that has one left, returning its new `uses` and `version`
    /// (never a read-modify-write of the counter); kept prepared, as it runs on every join.
    struct UseInvite -> (BigInt, BigInt) {
        invite_id: Uuid,
        now: DateTime<Utc>,
    }
    sql = ["UPDATE invites SET uses = uses + 1, version = version + 1, updated_at = "
           (now: DbTimestamp) " WHERE id = " (invite_id: DbUuid)
           " AND (max_uses IS NULL OR uses < max_uses) RETURNING uses, version"];
}

/// The `MEMBER_JOIN` event of a join. The PostgreSQL accept statement builds its payload in SQL
/// (see [`ACCEPT_SQL`]'s `evented`), so that the whole join stays one statement; the conformance
/// test of the join compares the stored payload with this event's, field for field.
pub(crate) fn member_joined(member: &Member, member_count: i64) -> Event {
    Event::MemberJoin(MemberJoined {
        server_id: member.server_id,
        user_id: member.user_id,
        invite_id: member.joined_via_invite_id,
        code: member.joined_via_code.clone(),
        source: member.source,
        inviter_id: member.inviter_id,
        temporary: member.temporary,
        member_count,
    })
}

/// The single-statement accept, after its `params` CTE (see [`AcceptStatement`], which binds
/// the code, the user, the time and the audit entries' ids, once each) and before its optional
/// parts ([`REMEMBERED_SQL`], [`RECORDED_SQL`]) and its result ([`ACCEPT_RESULT_SQL`]).
/// Public through [`accept_statement_sql`] so benchmarks measure the database running exactly it.
/// The member insert has no `ON CONFLICT`: a concurrent join of the same user makes the whole
/// statement fail (and roll back the use with it), and the retry then reports the membership.
/// A ban that commits while the statement runs is caught by the server row's `bans_version`,
/// re-checked under its lock (see the migration `lock_ordered_accept`): the statement fails
/// (`Constraint::MemberBanned`), and the retry reads the ban.
pub(crate) static ACCEPT_SQL: LazyLock<String> =
    LazyLock::new(|| with_raid_count(ACCEPT_SQL_TEXT, "s", "p.now"));

/// [`ACCEPT_SQL`] as written, its raid-count expressions named (see [`with_raid_count`]).
const ACCEPT_SQL_TEXT: &str = "
),
target AS (
    SELECT i.id, i.server_id, i.code, i.kind, i.created_by, i.max_uses, i.uses, i.expires_at,
           i.temporary, i.revoked_at, i.requires_approval, s.invites_paused_until,
           s.invites_paused_indefinitely, s.bans_version,
           EXISTS (SELECT 1 FROM members m WHERE m.server_id = i.server_id AND m.user_id = p.user_id)
               AS is_member,
           EXISTS (SELECT 1 FROM bans b WHERE b.server_id = i.server_id AND b.user_id = p.user_id)
               AS is_banned,
           (i.allowed_user_ids IS NULL
               OR i.allowed_user_ids @> jsonb_build_array(p.user_id::text)) AS is_allowed,
           -- invite_core::grant::granted_on_join: the invite's bits that whoever set them may
           -- still grant, the owner all, a member their effective bits but ADMINISTRATOR
           -- (8192), someone no longer a member none.
           CASE WHEN i.grant_permissions = 0 THEN 0::bigint
                WHEN i.granted_by = s.owner_id THEN i.grant_permissions
                ELSE i.grant_permissions & COALESCE((
                    SELECT CASE WHEN (s.default_permissions | g.permissions) & 8192 <> 0
                                THEN ~8192::bigint
                                ELSE s.default_permissions | g.permissions END
                    FROM members g
                    WHERE g.server_id = i.server_id AND g.user_id = i.granted_by), 0)
           END AS granted
    FROM params p
    JOIN invites i ON i.code = p.code
    JOIN servers s ON s.id = i.server_id
),
-- The invite's row lock first: the use is re-checked on the row's latest version.
used AS (
    UPDATE invites AS i
    SET uses = i.uses + 1, version = i.version + 1, updated_at = p.now
    FROM target AS t, params AS p
    WHERE i.id = t.id
      -- An invite that requires approval files a join request instead (see the store's
      -- `redeem`): no use is taken here.
      AND NOT t.requires_approval
      AND NOT t.is_member
      AND NOT t.is_banned
      AND t.is_allowed
      AND NOT t.invites_paused_indefinitely
      AND (t.invites_paused_until IS NULL OR t.invites_paused_until <= p.now)
      AND i.revoked_at IS NULL
      AND (i.expires_at IS NULL OR i.expires_at > p.now)
      AND (i.max_uses IS NULL OR i.uses < i.max_uses)
    RETURNING i.id, i.server_id, i.code, i.kind, i.created_by, i.temporary, i.uses, i.version
),
-- Then the server's, re-checked on its latest version: a ban that committed since the snapshot
-- read the bans has bumped `bans_version` (see the migration `lock_ordered_accept`). The join
-- is counted into the server's raid window here, on the locked row (invite_core::raid's
-- `count_join`, spelled out by `with_raid_count`). A protected server's pause is re-checked
-- on the locked row too: a join that read its snapshot before a raid's pause committed must not
-- slip in after it (it fails here, and runs again on a snapshot that holds the pause).
counted AS (
    UPDATE servers AS s SET member_count = s.member_count + 1,
        raid_window_started_at = CASE WHEN s.raid_joins IS NULL THEN s.raid_window_started_at
                                      WHEN RAID_TRIPS THEN NULL
                                      WHEN RAID_OPEN THEN s.raid_window_started_at
                                      ELSE p.now END,
        raid_window_joins = CASE WHEN s.raid_joins IS NULL THEN s.raid_window_joins
                                 WHEN RAID_TRIPS THEN 0 ELSE RAID_COUNT END,
        invites_paused_until = CASE WHEN RAID_TRIPS
                                    THEN p.now + make_interval(secs => s.raid_pause_seconds)
                                    ELSE s.invites_paused_until END
    FROM used AS u, target AS t, params AS p
    WHERE s.id = u.server_id AND s.bans_version = t.bans_version
      AND (s.raid_joins IS NULL
           OR NOT (s.invites_paused_indefinitely OR coalesce(s.invites_paused_until > p.now, false)))
    -- A protected server's window is closed only by the join that tripped it.
    RETURNING s.id, s.id AS server_id, s.member_count,
              s.raid_joins IS NOT NULL AND s.raid_window_started_at IS NULL AS tripped,
              s.invites_paused_until, s.raid_joins, s.raid_window_seconds
),
-- Only then the member, on the server row `counted` returned. When it returned none (a ban
-- crossed the join), `server_id` is NULL: the insert fails, the whole statement with it (the
-- use included), and the store runs it again on a snapshot that holds the ban.
joined AS (
    INSERT INTO members (server_id, user_id, permissions, joined_at, temporary, source,
                         joined_via_invite_id, joined_via_code, inviter_id)
    -- A member granted permissions is never temporary (invite_core::grant::joins_temporary).
    SELECT c.id, p.user_id, t.granted, p.now, u.temporary AND t.granted = 0,
           CASE u.kind WHEN 'vanity' THEN 'vanity' ELSE 'invite' END,
           u.id, u.code, CASE u.kind WHEN 'vanity' THEN NULL ELSE u.created_by END
    FROM used AS u LEFT JOIN counted AS c ON c.id = u.server_id, params AS p, target AS t
),
audited AS (
    INSERT INTO audit_entries (id, server_id, actor_id, action, target_type, target_id, details,
                               created_at)
    SELECT p.audit_id, u.server_id, p.user_id, 'MemberJoin', 'user', p.user_id,
           jsonb_build_object('code', u.code, 'invite_id', u.id), p.now
    FROM used AS u, params AS p
    -- The raid's pause, in the same insert (each data-modifying CTE costs every join its
    -- set-up, even when it writes nothing).
    UNION ALL
    SELECT p.pause_audit_id, c.id, NULL, 'InvitesPause', 'server', c.id,
           jsonb_build_object('reason', 'raid', 'joins', c.raid_joins,
                              'window_seconds', c.raid_window_seconds), p.now
    FROM counted AS c, params AS p WHERE c.tripped
),
evented AS (
    -- Drawn from `counted`, under the server's row lock (see the `events` module); a raid's
    -- `INVITES_PAUSE` after the join that tripped it.
    INSERT INTO events (server_id, type, payload, audience, created_at)
    SELECT e.server_id, e.type, e.payload, 'members', e.created_at FROM (
        SELECT 1 AS n, c.id AS server_id, 'MEMBER_JOIN' AS type,
               jsonb_build_object(
                   'server_id', c.id, 'user_id', p.user_id, 'invite_id', u.id, 'code', u.code,
                   'source', CASE u.kind WHEN 'vanity' THEN 'vanity' ELSE 'invite' END,
                   'inviter_id', CASE u.kind WHEN 'vanity' THEN NULL ELSE u.created_by END,
                   'temporary', u.temporary AND t.granted = 0, 'member_count', c.member_count)
                   AS payload,
               p.now AS created_at
        FROM counted AS c, used AS u, params AS p, target AS t
        UNION ALL
        SELECT 2, c.id, 'INVITES_PAUSE', PAUSE_PAYLOAD, p.now
        FROM counted AS c, params AS p WHERE c.tripped
    ) AS e ORDER BY e.n
    RETURNING seq, type
)";

/// Spells out the raid count of `invite_core::raid` in the accept statements' SQL, where
/// `server` names the server's (locked) row and `now` the time the join is counted at:
/// `RAID_OPEN` is whether the server's window is still open, `RAID_COUNT` what it counts with
/// this one join, `RAID_TRIPS` whether that reaches the server's threshold (each NULL, so
/// false, for a server without protection), and `PAUSE_PAYLOAD` the `INVITES_PAUSE` event's
/// payload for the row `c` of `counted`, its time written as the service writes times (UTC,
/// RFC 3339, `Z`). The time's colons are quoted literals (`":"`), not bare: `pgbench` reads a
/// bare `:MI` as a variable, and the ceiling benchmarks run this very statement through it.
fn with_raid_count(sql: &str, server: &str, now: &str) -> String {
    let open = format!(
        "({server}.raid_window_started_at IS NOT NULL AND {now} < \
         {server}.raid_window_started_at + make_interval(secs => {server}.raid_window_seconds))"
    );
    let count = format!("(CASE WHEN RAID_OPEN THEN {server}.raid_window_joins ELSE 0 END + 1)");
    let trips = format!("(RAID_COUNT >= {server}.raid_joins)");
    sql.replace("RAID_TRIPS", &trips)
        .replace("RAID_COUNT", &count)
        .replace("RAID_OPEN", &open)
        .replace(
            "PAUSE_PAYLOAD",
            "jsonb_build_object('server_id', c.server_id, 'until', \
             to_char(c.invites_paused_until AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24\":\"MI\":\"SS.US\"Z\"'))",
        )
}

/// The username's upsert, for a token that names the user (`params` then has `username`).
///
/// The optional parts are left out of the statement when they have nothing to write, rather
/// than sent with a `WHERE` that is false: every data-modifying CTE costs PostgreSQL its
/// executor set-up (opening and locking the table and its indexes) on every run, even when it
/// writes no row, and for these two that set-up is a noticeable share of an accept's database
/// time.
const REMEMBERED_SQL: &str = ",
remembered AS (
    -- A returning user whose name has not changed costs a look-up, not a row write.
    INSERT INTO users AS x (id, username, created_at, updated_at)
    SELECT p.user_id, p.username, p.now, p.now FROM used AS u, params AS p
    ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, updated_at = EXCLUDED.updated_at
    WHERE x.username IS DISTINCT FROM EXCLUDED.username
)";

/// The record of the response, committed with the join, for a request with an
/// `Idempotency-Key` (`params` then has `idempotency_key`, `fingerprint`, `status`,
/// `body_before` and `body_after`).
const RECORDED_SQL: &str = ",
recorded AS (
    INSERT INTO idempotency_records (user_id, idempotency_key, fingerprint, status, body, etag,
                                     created_at)
    SELECT p.user_id, p.idempotency_key, p.fingerprint, p.status,
           p.body_before || u.server_id::text || p.body_after, NULL, p.now
    FROM used AS u, params AS p
)";

/// What the accept statement returns: the facts it read, and what it wrote.
const ACCEPT_RESULT_SQL: &str = "
SELECT t.id, t.server_id, t.code, t.kind, t.created_by, t.max_uses, t.uses, t.expires_at,
       t.temporary, t.revoked_at, t.invites_paused_until, t.invites_paused_indefinitely,
       t.is_member, t.is_banned, t.is_allowed, t.granted, t.requires_approval, u.uses AS new_uses,
       u.version AS new_version, (SELECT member_count FROM counted) AS member_count,
       (SELECT seq FROM evented WHERE type = 'MEMBER_JOIN') AS event_seq,
       (SELECT seq FROM evented WHERE type = 'INVITES_PAUSE') AS pause_seq,
       (SELECT invites_paused_until FROM counted WHERE tripped) AS raid_paused_until
FROM target AS t
LEFT JOIN used AS u ON u.id = t.id
";

/// The PostgreSQL accept statement as the store sends it for a join without a username or an
/// `Idempotency-Key` (the benchmarks' joins), with `params` (a `SELECT` of `code`, `user_id`,
/// `now`, `audit_id` and `pause_audit_id` columns) in place of the bound values: what a benchmark of the database
/// alone runs to find the ceiling the service is measured against.
pub fn accept_statement_sql(params: &str) -> String {
    format!("WITH params AS ({params}{}{ACCEPT_RESULT_SQL}", ACCEPT_SQL.as_str())
}

/// The values of an accept statement.
struct AcceptValues<'a> {
    code: &'a str,
    user_id: Uuid,
    now: DateTime<Utc>,
    audit_id: Uuid,
    /// The id of the audit entry of the pause, should this join trip the server's raid
    /// protection.
    pause_audit_id: Uuid,
    /// The token's username, for [`REMEMBERED_SQL`].
    username: Option<&'a str>,
    /// The request's `Idempotency-Key` and the response to record, for [`RECORDED_SQL`].
    record: Option<RecordValues<'a>>,
}

/// The values of [`RECORDED_SQL`]: the claimed key and the response a join gets.
struct RecordValues<'a> {
    key: &'a str,
    fingerprint: &'a str,
    status: i32,
    body_before: &'a str,
    body_after: &'a str,
}

impl<'a> RecordValues<'a> {
    fn new((claim, template): JoinRecord<'a>) -> Self {
        Self {
            key: &claim.key,
            fingerprint: &claim.fingerprint,
            status: i32::from(template.status),
            body_before: template.before,
            body_after: template.after,
        }
    }
}

/// [`ACCEPT_SQL`] with its values, as a query of its own type: diesel caches prepared
/// statements by query type, so the statement is parsed and planned once per connection instead
/// of once per accept (`sql_query` is never cached, its SQL being arbitrary). Each combination
/// of the optional parts is a type of its own, hence a prepared statement of its own:
/// `REMEMBERS` sends [`REMEMBERED_SQL`] (`values.username` must be `Some`), `RECORDS`
/// [`RECORDED_SQL`] (`values.record` must be `Some`).
struct AcceptStatement<'a, const REMEMBERS: bool, const RECORDS: bool> {
    values: &'a AcceptValues<'a>,
}

impl<const REMEMBERS: bool, const RECORDS: bool>
    diesel::query_builder::QueryFragment<diesel::pg::Pg>
    for AcceptStatement<'_, REMEMBERS, RECORDS>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        let values = self.values;
        out.push_sql("WITH params AS (SELECT ");
        bind_then::<Text, _>(&mut out, &values.code, "::text AS code, ")?;
        bind_then::<DbUuid, _>(&mut out, &values.user_id, "::uuid AS user_id, ")?;
        bind_then::<DbTimestamp, _>(&mut out, &values.now, "::timestamptz AS now, ")?;
        bind_then::<DbUuid, _>(&mut out, &values.audit_id, "::uuid AS audit_id, ")?;
        bind_then::<DbUuid, _>(&mut out, &values.pause_audit_id, "::uuid AS pause_audit_id")?;
        if REMEMBERS {
            out.push_sql(", ");
            bind_then::<Nullable<Text>, _>(&mut out, &values.username, "::text AS username")?;
        }
        if RECORDS {
            let Some(record) = &values.record else {
                return Err(diesel::result::Error::QueryBuilderError(
                    "an accept that records its response needs the record".into(),
                ));
            };
            out.push_sql(", ");
            bind_then::<Text, _>(&mut out, &record.key, "::text AS idempotency_key, ")?;
            bind_then::<Text, _>(&mut out, &record.fingerprint, "::text AS fingerprint, ")?;
            bind_then::<Integer, _>(&mut out, &record.status, "::integer AS status, ")?;
            bind_then::<Text, _>(&mut out, &record.body_before, "::text AS body_before, ")?;
            bind_then::<Text, _>(&mut out, &record.body_after, "::text AS body_after")?;
        }
        out.push_sql(&ACCEPT_SQL);
        if REMEMBERS {
            out.push_sql(REMEMBERED_SQL);
        }
        if RECORDS {
            out.push_sql(RECORDED_SQL);
        }
        out.push_sql(ACCEPT_RESULT_SQL);
        Ok(())
    }
}

/// The cache key of an [`AcceptStatement`] (its own type has a lifetime, a key must not).
struct AcceptStatementId<const REMEMBERS: bool, const RECORDS: bool>;

impl<const REMEMBERS: bool, const RECORDS: bool> diesel::query_builder::QueryId
    for AcceptStatement<'_, REMEMBERS, RECORDS>
{
    type QueryId = AcceptStatementId<REMEMBERS, RECORDS>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const REMEMBERS: bool, const RECORDS: bool> diesel::query_builder::Query
    for AcceptStatement<'_, REMEMBERS, RECORDS>
{
    type SqlType = diesel::sql_types::Untyped;
}

impl<const REMEMBERS: bool, const RECORDS: bool> RunQueryDsl<diesel::PgConnection>
    for AcceptStatement<'_, REMEMBERS, RECORDS>
{
}

impl AcceptValues<'_> {
    /// Runs the accept statement with the parts these values need.
    fn run(&self, conn: &mut diesel::PgConnection) -> QueryResult<Option<AcceptRow>> {
        match (self.username.is_some(), self.record.is_some()) {
            (false, false) => AcceptStatement::<false, false> { values: self }.get_result(conn),
            (true, false) => AcceptStatement::<true, false> { values: self }.get_result(conn),
            (false, true) => AcceptStatement::<false, true> { values: self }.get_result(conn),
            (true, true) => AcceptStatement::<true, true> { values: self }.get_result(conn),
        }
        .optional()
    }
}

#[derive(QueryableByName)]
#[expect(clippy::struct_excessive_bools, reason = "mirrors the columns the statement returns")]
struct AcceptRow {
    #[diesel(sql_type = DbUuid)]
    id: Uuid,
    #[diesel(sql_type = DbUuid)]
    server_id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    code: Option<String>,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<DbUuid>)]
    created_by: Option<Uuid>,
    #[diesel(sql_type = Nullable<BigInt>)]
    max_uses: Option<i64>,
    #[diesel(sql_type = BigInt)]
    uses: i64,
    #[diesel(sql_type = Nullable<DbTimestamp>)]
    expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    temporary: bool,
    #[diesel(sql_type = Nullable<DbTimestamp>)]
    revoked_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<DbTimestamp>)]
    invites_paused_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    invites_paused_indefinitely: bool,
    #[diesel(sql_type = Bool)]
    is_member: bool,
    #[diesel(sql_type = Bool)]
    is_banned: bool,
    #[diesel(sql_type = Bool)]
    is_allowed: bool,
    /// What the join grants (or would have granted), computed in SQL as
    /// `invite_core::grant::granted_on_join` computes it.
    #[diesel(sql_type = BigInt)]
    granted: i64,
    /// Whether the invite requires approval: the statement took no use, and the caller files a
    /// join request if the rules admit the user.
    #[diesel(sql_type = Bool)]
    requires_approval: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    new_uses: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    new_version: Option<i64>,
    /// The server's member count after the join; `None` when nobody joined.
    #[diesel(sql_type = Nullable<BigInt>)]
    member_count: Option<i64>,
    /// The `MEMBER_JOIN` event's `seq`; `None` when nobody joined. Its payload is built again
    /// here rather than sent back and parsed ([`member_join_payload`], the same fields).
    #[diesel(sql_type = Nullable<BigInt>)]
    event_seq: Option<i64>,
    /// The `INVITES_PAUSE` event's `seq`, when the join tripped the server's raid protection.
    #[diesel(sql_type = Nullable<BigInt>)]
    pause_seq: Option<i64>,
    /// Until when that pause holds.
    #[diesel(sql_type = Nullable<DbTimestamp>)]
    raid_paused_until: Option<DateTime<Utc>>,
}

/// What an accept statement did with one accept.
enum Written {
    /// The user joined.
    Joined(Box<Joined>),
    /// Nobody joined: the facts the statement read, for the reason.
    Nothing(Target),
}

impl AcceptRow {
    /// The `INVITES_PAUSE` event of a join that tripped its server's raid protection.
    fn raid_pause(&self, now: DateTime<Utc>) -> Option<StoredEvent> {
        let (seq, until) = (self.pause_seq?, self.raid_paused_until?);
        Some(raid_pause_event(seq, self.server_id, until, now))
    }

    /// What the statement did with `user`'s accept at `now`: the join it wrote (its member
    /// and event built again here from the facts, as the statement built them), or nothing.
    fn written(self, user: &Actor, now: DateTime<Utc>) -> StoreResult<Written> {
        let raid_pause = self.raid_pause(now);
        let wrote = (self.member_count, self.new_uses, self.new_version, self.event_seq);
        let target = self.into_target()?;
        let (Some(member_count), Some(uses), Some(version), Some(seq)) = wrote else {
            return Ok(Written::Nothing(target));
        };
        let member = target.member(user, now);
        let event =
            StoredEvent { seq, event: member_joined(&member, member_count), created_at: now };
        Ok(Written::Joined(Box::new(Joined {
            member,
            uses,
            version,
            member_count,
            event,
            raid_pause,
        })))
    }

    fn into_target(self) -> StoreResult<Target> {
        let kind =
            InviteKind::parse(&self.kind).ok_or_else(|| corrupt("invite kind", &self.kind))?;
        Ok(Target {
            invite_id: self.id,
            server_id: self.server_id,
            code: self.code,
            kind,
            created_by: self.created_by,
            temporary: self.temporary,
            status: InviteStatus {
                revoked: self.revoked_at.is_some(),
                expires_at: self.expires_at,
                max_uses: self.max_uses,
                uses: self.uses,
            },
            pause: InvitesPause::from_columns(
                self.invites_paused_until,
                self.invites_paused_indefinitely,
            ),
            is_member: self.is_member,
            is_banned: self.is_banned,
            raid: None,
            window: RaidWindow::default(),
            is_allowed: self.is_allowed,
            granted: Permissions::from_bits(self.granted)
                .ok_or_else(|| corrupt("permissions", &self.granted.to_string()))?,
            requires_approval: self.requires_approval,
        })
    }
}

/// The single-statement accept; `None` when the invite requires approval and the rules admit
/// the user, for the caller to file the join request.
fn redeem_postgres(
    conn: &mut diesel::PgConnection,
    code: &CodeRef,
    user: &Actor,
    now: DateTime<Utc>,
    record: Option<JoinRecord<'_>>,
) -> StoreResult<Option<Redemption>> {
    let (mut attempts, mut ban_rounds) = (0, 0);
    while attempts < MAX_ATTEMPTS && ban_rounds < MAX_BAN_ROUNDS {
        // The statement commits as it runs: past the request's deadline its caller has been
        // answered 503 already, and must not be contradicted by a join.
        check_deadline()?;
        let values = AcceptValues {
            code: code.as_str(),
            user_id: user.user_id,
            now,
            audit_id: Uuid::now_v7(),
            pause_audit_id: Uuid::now_v7(),
            username: user.username.as_deref(),
            record: record.map(RecordValues::new),
        };
        let result = values.run(conn).map_err(StoreError::from);
        let row = match result {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(Some(Redemption::Refused(RedemptionRefused::NotFound))),
            // The same user joined concurrently: the retry sees the membership.
            Err(StoreError::Conflict(Constraint::MemberKey)) => {
                attempts += 1;
                continue;
            }
            // A ban on the server committed while the statement ran, perhaps this user's, or a
            // pause of a server protected from raids: run again on a snapshot that holds it.
            Err(StoreError::Conflict(Constraint::MemberBanned)) => {
                ban_rounds += 1;
                continue;
            }
            Err(error) => return Err(error),
        };
        let target = match row.written(user, now)? {
            Written::Joined(joined) => return Ok(Some(Redemption::Joined(joined))),
            Written::Nothing(target) => target,
        };
        if let Err(reason) = decide_redemption(&target.facts(), now) {
            return Ok(Some(Redemption::Refused(reason)));
        }
        if target.requires_approval {
            return Ok(None);
        }
        // Admissible on the snapshot, refused under the invite's row lock: a concurrent join
        // took the last use, or an edit or revoke landed. Run again on fresh data. (A pause
        // that commits while the statement runs does not stop it, unless the server is
        // protected from raids: the join is ordered before the pause. A ban does, through
        // `bans_version` above; so does a raid's pause, through `counted`'s re-check, which
        // fails the statement as a ban does.)
        attempts += 1;
    }
    Err(StoreError::Unavailable("too much contention on this invite, please retry".to_owned()))
}

/// One accept of a set-based batch (see [`redeem_set`]): a plain join, without an
/// Idempotency-Key (a keyed join looks its key up first, and runs alone).
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRequest {
    /// The code the user accepts.
    pub code: CodeRef,
    /// Who joins.
    pub actor: Actor,
    /// When the request was made.
    pub now: DateTime<Utc>,
}

/// The set-based accept: the joins of a whole batch decided and written by one statement, so
/// that PostgreSQL plans, locks and writes once per batch rather than once per join.
///
/// The statement locks the batch's invites and then their servers, each in id order, so two
/// batches cannot deadlock, and a single accept (invite, then server) cannot deadlock with a
/// batch. Everything the use depends on is read from the locked rows' latest versions, so the
/// uses of one invite are handed out in the batch's order (`rank`) and never past `max_uses`.
/// Membership and bans are read from the statement's snapshot, as the single statement reads
/// them: a join of the same user committed since makes the member insert fail, and a ban
/// committed since has bumped `bans_version` (compared under the lock), which fails the insert
/// too. A failure rolls the whole statement back; the caller then runs each join alone.
///
/// A join of a user whom an earlier join of the batch may already have admitted to the same
/// server (`nth > 1`) is left undecided, as is an accept of an invite that requires approval
/// (it files a join request, alone) and anything the rules would admit but the statement
/// did not: the caller runs those alone, after the batch commits (as if they had come later,
/// which concurrent requests may always have).
///
/// The statement starts with `p`, the batch's values, one row per join in the batch's order
/// (`ord`); [`AcceptSetStatement`] writes that part, with the arrays bound.
static ACCEPT_SET_SQL: LazyLock<String> =
    LazyLock::new(|| with_raid_count(ACCEPT_SET_SQL_TEXT, "s", "b.now"));

/// [`ACCEPT_SET_SQL`] as written, its raid-count expressions named (see [`with_raid_count`]).
const ACCEPT_SET_SQL_TEXT: &str = "
    ) WITH ORDINALITY AS x(code, user_id, audit_id, pause_audit_id, username, now, ord)
),
inv AS MATERIALIZED (
    SELECT i.id, i.server_id, i.code, i.kind, i.created_by, i.max_uses, i.uses, i.version,
           i.expires_at, i.temporary, i.revoked_at, i.grant_permissions, i.granted_by,
           i.allowed_user_ids, i.requires_approval
    FROM invites AS i WHERE i.code IN (SELECT code FROM p) ORDER BY i.id FOR UPDATE
),
-- The servers' raid windows are read on the locked rows, as of the batch's latest request
-- time: a batch's joins to one server are counted together, at that time (`raid_open`: the
-- window is still open then; NULL for a server without protection).
srv AS MATERIALIZED (
    SELECT s.id, s.member_count, s.bans_version, s.invites_paused_until,
           s.invites_paused_indefinitely, s.owner_id, s.default_permissions, s.raid_joins,
           s.raid_window_joins, RAID_OPEN AS raid_open, b.now AS batch_now
    FROM servers AS s, (SELECT max(now) AS now FROM p) AS b
    WHERE s.id IN (SELECT server_id FROM inv) ORDER BY s.id FOR UPDATE OF s
),
t AS MATERIALIZED (
    SELECT p.ord, p.user_id, p.audit_id, p.pause_audit_id, p.username, p.now,
           inv.id, inv.server_id, inv.code, inv.kind, inv.created_by, inv.max_uses, inv.uses,
           inv.version, inv.expires_at, inv.temporary, inv.revoked_at, inv.requires_approval,
           srv.member_count, srv.invites_paused_until, srv.invites_paused_indefinitely,
           srv.raid_joins, srv.raid_window_joins, srv.raid_open, srv.batch_now,
           -- The locked row's version against the snapshot's: a ban committed in between.
           srv.bans_version <> (SELECT s.bans_version FROM servers AS s WHERE s.id = srv.id)
               AS banned_since,
           EXISTS (SELECT 1 FROM members AS m
                   WHERE m.server_id = inv.server_id AND m.user_id = p.user_id) AS is_member,
           EXISTS (SELECT 1 FROM bans AS b
                   WHERE b.server_id = inv.server_id AND b.user_id = p.user_id) AS is_banned,
           (inv.allowed_user_ids IS NULL
               OR inv.allowed_user_ids @> jsonb_build_array(p.user_id::text)) AS is_allowed,
           -- What the join grants, as the single statement computes it (see ACCEPT_SQL).
           CASE WHEN inv.grant_permissions = 0 THEN 0::bigint
                WHEN inv.granted_by = srv.owner_id THEN inv.grant_permissions
                ELSE inv.grant_permissions & COALESCE((
                    SELECT CASE WHEN (srv.default_permissions | g.permissions) & 8192 <> 0
                                THEN ~8192::bigint
                                ELSE srv.default_permissions | g.permissions END
                    FROM members AS g
                    WHERE g.server_id = inv.server_id AND g.user_id = inv.granted_by), 0)
           END AS granted
    FROM p JOIN inv ON inv.code = p.code JOIN srv ON srv.id = inv.server_id
),
-- The joins the rules admit on these facts, but for the uses; `nth` counts a user's joins to
-- one server among them, and only the first goes on (a later one is decided alone, after).
candidate AS MATERIALIZED (
    SELECT t.*, row_number() OVER (PARTITION BY t.server_id, t.user_id ORDER BY t.ord) AS nth
    FROM t
    WHERE NOT t.is_member AND NOT t.is_banned AND t.is_allowed
      -- An accept of an invite that requires approval is left undecided (a join request is
      -- filed when it runs alone).
      AND NOT t.requires_approval
      AND NOT t.invites_paused_indefinitely
      AND (t.invites_paused_until IS NULL OR t.invites_paused_until <= t.now)
      AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > t.now)
),
-- The uses are handed out in the batch's order (`rank`).
eligible AS MATERIALIZED (
    SELECT c.*, row_number() OVER (PARTITION BY c.id ORDER BY c.ord) AS rank
    FROM candidate AS c WHERE c.nth = 1
),
usable AS MATERIALIZED (
    SELECT e.*, row_number() OVER (PARTITION BY e.server_id ORDER BY e.ord) AS server_rank
    FROM eligible AS e WHERE e.max_uses IS NULL OR e.uses + e.rank <= e.max_uses
),
-- A protected server admits what its window has room for (invite_core::raid's
-- `admissible_joins`), in the batch's order; the rest find the invites paused by the last one
-- admitted. Both are prefixes in `ord`, so each invite's admitted joins are still the first of
-- its `rank`s.
admitted AS MATERIALIZED (
    SELECT u.* FROM usable AS u
    WHERE u.raid_joins IS NULL
       OR u.server_rank <= u.raid_joins - CASE WHEN u.raid_open THEN u.raid_window_joins ELSE 0 END
),
-- Each server's joins, counted into its window (invite_core::raid's `count_joins`).
tally AS MATERIALIZED (
    SELECT x.*,
           x.raid_joins IS NOT NULL
               AND CASE WHEN x.raid_open THEN x.raid_window_joins ELSE 0 END + x.k >= x.raid_joins
               AS trips
    FROM (SELECT a.server_id, count(*) AS k, max(a.ord) AS last_ord, max(a.batch_now) AS now,
                 max(a.raid_joins) AS raid_joins, max(a.raid_window_joins) AS raid_window_joins,
                 bool_or(a.raid_open) AS raid_open
          FROM admitted AS a GROUP BY a.server_id) AS x
),
used AS (
    UPDATE invites AS i SET uses = i.uses + a.k, version = i.version + a.k, updated_at = a.now
    FROM (SELECT id, count(*) AS k, max(now) AS now FROM admitted GROUP BY id) AS a
    WHERE i.id = a.id
),
counted AS (
    UPDATE servers AS s SET member_count = s.member_count + a.k,
        raid_window_started_at = CASE WHEN a.raid_joins IS NULL THEN s.raid_window_started_at
                                      WHEN a.trips THEN NULL
                                      WHEN a.raid_open THEN s.raid_window_started_at
                                      ELSE a.now END,
        raid_window_joins = CASE WHEN a.raid_joins IS NULL THEN s.raid_window_joins
                                 WHEN a.trips THEN 0
                                 WHEN a.raid_open THEN s.raid_window_joins + a.k
                                 ELSE a.k END,
        invites_paused_until = CASE WHEN a.trips
                                    THEN a.now + make_interval(secs => s.raid_pause_seconds)
                                    ELSE s.invites_paused_until END
    FROM tally AS a
    WHERE s.id = a.server_id
    RETURNING s.id AS server_id, a.trips, a.last_ord, s.invites_paused_until, s.raid_joins,
              s.raid_window_seconds
),
joined AS (
    -- No server for a join that a ban crossed: the insert fails, and the statement with it.
    INSERT INTO members (server_id, user_id, permissions, joined_at, temporary, source,
                         joined_via_invite_id, joined_via_code, inviter_id)
    SELECT CASE WHEN a.banned_since THEN NULL ELSE a.server_id END, a.user_id, a.granted,
           a.now, a.temporary AND a.granted = 0, CASE a.kind WHEN 'vanity' THEN 'vanity' ELSE 'invite' END,
           a.id, a.code, CASE a.kind WHEN 'vanity' THEN NULL ELSE a.created_by END
    FROM admitted AS a
),
remembered AS (
    -- In id order, so two batches naming the same users cannot deadlock on them.
    INSERT INTO users AS x (id, username, created_at, updated_at)
    SELECT DISTINCT ON (a.user_id) a.user_id, a.username, a.now, a.now
    FROM admitted AS a WHERE a.username IS NOT NULL ORDER BY a.user_id, a.ord
    ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, updated_at = EXCLUDED.updated_at
    WHERE x.username IS DISTINCT FROM EXCLUDED.username
),
audited AS (
    INSERT INTO audit_entries (id, server_id, actor_id, action, target_type, target_id, details,
                               created_at)
    SELECT a.audit_id, a.server_id, a.user_id, 'MemberJoin', 'user', a.user_id,
           jsonb_build_object('code', a.code, 'invite_id', a.id), a.now
    FROM admitted AS a
    -- A raid's pause, under the id of the join that tripped it.
    UNION ALL
    SELECT a.pause_audit_id, c.server_id, NULL, 'InvitesPause', 'server', c.server_id,
           jsonb_build_object('reason', 'raid', 'joins', c.raid_joins,
                              'window_seconds', c.raid_window_seconds), a.now
    FROM counted AS c JOIN admitted AS a ON a.ord = c.last_ord WHERE c.trips
),
evented AS (
    -- Drawn under the servers' row locks, in the batch's order (see the `events` module); a
    -- raid's `INVITES_PAUSE` right after the join that tripped it.
    INSERT INTO events (server_id, type, payload, audience, created_at)
    SELECT e.server_id, e.type, e.payload, 'members', e.created_at FROM (
        SELECT a.ord, 1 AS n, a.server_id, 'MEMBER_JOIN' AS type,
               jsonb_build_object(
                   'server_id', a.server_id, 'user_id', a.user_id, 'invite_id', a.id,
                   'code', a.code,
                   'source', CASE a.kind WHEN 'vanity' THEN 'vanity' ELSE 'invite' END,
                   'inviter_id', CASE a.kind WHEN 'vanity' THEN NULL ELSE a.created_by END,
                   'temporary', a.temporary AND a.granted = 0,
                   'member_count', a.member_count + a.server_rank)
                   AS payload,
               a.now AS created_at
        FROM admitted AS a
        UNION ALL
        SELECT c.last_ord, 2, c.server_id, 'INVITES_PAUSE', PAUSE_PAYLOAD, a.now
        FROM counted AS c JOIN admitted AS a ON a.ord = c.last_ord WHERE c.trips
    ) AS e ORDER BY e.ord, e.n
    RETURNING seq, server_id, type, (payload->>'user_id')::uuid AS user_id
)
SELECT t.ord, t.id, t.server_id, t.code, t.kind, t.created_by, t.max_uses, t.uses,
       t.expires_at, t.temporary, t.revoked_at, t.invites_paused_until,
       t.invites_paused_indefinitely, t.is_member, t.is_banned, t.is_allowed, t.granted,
       t.requires_approval, e.ord IS NOT NULL AS eligible, us.ord IS NOT NULL AND a.ord IS NULL AS raid_refused,
       a.uses + a.rank AS new_uses, a.version + a.rank AS new_version,
       a.member_count + a.server_rank AS member_count, v.seq AS event_seq,
       pv.seq AS pause_seq, c.invites_paused_until AS raid_paused_until
FROM t
LEFT JOIN eligible AS e ON e.ord = t.ord
LEFT JOIN usable AS us ON us.ord = t.ord
LEFT JOIN admitted AS a ON a.ord = t.ord
LEFT JOIN evented AS v
    ON v.type = 'MEMBER_JOIN' AND v.server_id = a.server_id AND v.user_id = a.user_id
LEFT JOIN counted AS c ON c.trips AND c.last_ord = a.ord
LEFT JOIN evented AS pv ON pv.type = 'INVITES_PAUSE' AND pv.server_id = c.server_id
";

/// [`ACCEPT_SET_SQL`] with its values: a query type of its own, so diesel keeps it prepared
/// per connection (its values are arrays, so one plan serves every batch size).
struct AcceptSetStatement {
    codes: Vec<String>,
    user_ids: Vec<Uuid>,
    audit_ids: Vec<Uuid>,
    pause_audit_ids: Vec<Uuid>,
    usernames: Vec<Option<String>>,
    nows: Vec<DateTime<Utc>>,
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for AcceptSetStatement {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, Timestamptz, Uuid as SqlUuid};
        out.push_sql(
            "WITH p AS MATERIALIZED (
    SELECT x.ord, x.code, x.user_id, x.audit_id, x.pause_audit_id, x.username, x.now
    FROM unnest(",
        );
        bind_then::<Array<Text>, _>(&mut out, &self.codes, "::text[], ")?;
        bind_then::<Array<SqlUuid>, _>(&mut out, &self.user_ids, "::uuid[], ")?;
        bind_then::<Array<SqlUuid>, _>(&mut out, &self.audit_ids, "::uuid[], ")?;
        bind_then::<Array<SqlUuid>, _>(&mut out, &self.pause_audit_ids, "::uuid[], ")?;
        bind_then::<Array<Nullable<Text>>, _>(&mut out, &self.usernames, "::text[], ")?;
        bind_then::<Array<Timestamptz>, _>(&mut out, &self.nows, "::timestamptz[]")?;
        out.push_sql(&ACCEPT_SET_SQL);
        Ok(())
    }
}

impl diesel::query_builder::QueryId for AcceptSetStatement {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for AcceptSetStatement {
    type SqlType = diesel::sql_types::Untyped;
}

impl RunQueryDsl<diesel::PgConnection> for AcceptSetStatement {}

#[derive(QueryableByName)]
struct AcceptSetRow {
    #[diesel(sql_type = BigInt)]
    ord: i64,
    /// The facts read for the join, and what it wrote: the single statement's columns.
    #[diesel(embed)]
    facts: AcceptRow,
    /// Whether the rules admitted the join on the locked rows (it joined, or the uses ran out
    /// within the batch).
    #[diesel(sql_type = Bool)]
    eligible: bool,
    /// Whether the rules and the uses admitted the join, but its server's raid window had no
    /// room left: an earlier join of the batch paused the invites.
    #[diesel(sql_type = Bool)]
    raid_refused: bool,
}

/// Decides and writes the joins of `joins` in one statement (see `ACCEPT_SET_SQL`): for each,
/// in order, its redemption, or `None` when it must run alone after this batch commits. Runs
/// inside the caller's transaction; an error means nothing of the batch may commit.
pub fn redeem_set(
    conn: &mut diesel::PgConnection,
    joins: &[&JoinRequest],
) -> StoreResult<Vec<Option<Redemption>>> {
    let statement = AcceptSetStatement {
        codes: joins.iter().map(|join| join.code.as_str().to_owned()).collect(),
        user_ids: joins.iter().map(|join| join.actor.user_id).collect(),
        audit_ids: joins.iter().map(|_| Uuid::now_v7()).collect(),
        pause_audit_ids: joins.iter().map(|_| Uuid::now_v7()).collect(),
        usernames: joins.iter().map(|join| join.actor.username.clone()).collect(),
        nows: joins.iter().map(|join| join.now).collect(),
    };
    let rows = statement.load::<AcceptSetRow>(conn)?;
    // A code that names no invite has no row.
    let mut decided: Vec<Option<Redemption>> =
        joins.iter().map(|_| Some(Redemption::Refused(RedemptionRefused::NotFound))).collect();
    for row in rows {
        let index = usize::try_from(row.ord - 1)
            .ok()
            .filter(|index| *index < joins.len())
            .ok_or_else(|| corrupt("accept ordinal", &row.ord.to_string()))?;
        let join = joins[index];
        decided[index] = match row.facts.written(&join.actor, join.now)? {
            Written::Joined(joined) => Some(Redemption::Joined(joined)),
            // Admitted but for the raid window, which an earlier join of the batch filled.
            Written::Nothing(_) if row.raid_refused => {
                Some(Redemption::Refused(RedemptionRefused::Paused))
            }
            // Admitted by the rules on the locked invite, but its uses ran out within the batch.
            Written::Nothing(_) if row.eligible => {
                Some(Redemption::Refused(RedemptionRefused::MaxedOut))
            }
            Written::Nothing(target) => match decide_redemption(&target.facts(), join.now) {
                Err(reason) => Some(Redemption::Refused(reason)),
                // A second join of one user to one server in the batch: decided alone, after.
                Ok(()) => None,
            },
        };
    }
    Ok(decided)
}
