//! Invites: creation with code reservation, lists, edits, revocation and previews. Joins are in
//! `redeem.rs`.

use crate::Fact;
use chrono::{DateTime, Utc};
use diesel::dsl::exists;
use diesel::prelude::*;
use invite_core::audit::AuditAction;
use invite_core::code::{CodeRef, RandomSource, Reservation, ReserveError, reserve_code};
use invite_core::event::Event;
use invite_core::invite::{
    InviteChanges, InviteKind, InviteSettings, MAX_ACTIVE_INVITES, has_room_for_invite,
};
use invite_core::redeem::InvitesPause;
use invite_core::server::PageLimit;
use uuid::Uuid;

use super::actor::Actor;
use super::audit::{self, NewAuditEntry};
use super::cursor::unknown_cursor;
use super::events::StoredEvent;
use super::idempotency::IdempotencyClaim;
use super::idempotency::JoinResponseTemplate;
use super::redeem::Redemption;
use super::servers::lock_server;
use crate::Backend;
use crate::connection::{DbConnection, on_each_backend, write_transaction};
use crate::error::{Entity, StoreError, StoreResult};
use crate::models::{Invite, InviteRow, Preview, allowed_users_json};
use crate::prepared::bind_then;
use crate::schema::{channels, gateway_sessions, invites, members, servers, users};
use crate::sql_types::{DbJson, DbTimestamp, DbUuid, Id, Ts};

/// An invite to create.
#[derive(Debug)]
pub struct NewInvite<'a> {
    /// The server.
    pub server_id: Uuid,
    /// The creator.
    pub creator: &'a Actor,
    /// The validated request.
    pub settings: &'a InviteSettings,
    /// The creation time, from which the expiry was computed.
    pub now: DateTime<Utc>,
    /// Whether this transaction holds the server's row lock already (its caller read the
    /// standing with [`DbConnection::standing_locked`]);
    /// otherwise the create takes it.
    pub server_locked: bool,
}

/// The result of a create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatedInvite {
    /// A new invite.
    Created(Invite),
    /// `unique: false` found an active invite with the same settings and returned it.
    Reused(Invite),
}

/// Which invites a list covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteScope {
    /// Every invite of the server.
    Server(Uuid),
    /// The invites pointing at the channel.
    Channel(Uuid),
}

/// Not revoked, not expired at `now`, not used up: the core's `InviteStatus::is_active`, in SQL.
#[diesel::dsl::auto_type]
pub(crate) fn active_at(now: Ts) -> _ {
    invites::revoked_at
        .is_null()
        .and(invites::expires_at.is_null().or(invites::expires_at.gt(now)))
        .and(invites::max_uses.is_null().or(invites::uses.nullable().lt(invites::max_uses)))
}

/// Ends the invite at `now`, as a new version; the row stays, for the audit log and for a
/// vanity code's reservation.
pub(crate) fn mark_revoked(
    conn: &mut DbConnection,
    invite_id: Uuid,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    diesel::update(invites::table.filter(invites::id.eq(Id(invite_id))))
        .set((
            invites::revoked_at.eq(Ts(now)),
            invites::version.eq(invites::version + 1),
            invites::updated_at.eq(Ts(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records `action` on `invite` by `actor` in its server's audit log, and reads the invite back
/// as the change left it.
fn audited(
    conn: &mut DbConnection,
    invite: &Invite,
    actor: Uuid,
    action: AuditAction,
    details: serde_json::Value,
    now: DateTime<Utc>,
) -> StoreResult<Invite> {
    audit::record(
        conn,
        NewAuditEntry {
            server_id: invite.server_id,
            actor_id: Some(actor),
            action,
            target_id: Some(invite.id),
            details,
            now,
        },
    )?;
    load_invite(conn, invite.id)?.ok_or(StoreError::NotFound(Entity::Invite))
}

pub(crate) fn load_invite(conn: &mut DbConnection, invite_id: Uuid) -> StoreResult<Option<Invite>> {
    invites::table
        .filter(invites::id.eq(Id(invite_id)))
        .select(InviteRow::as_select())
        .get_result(conn)
        .optional()?
        .map(Invite::try_from)
        .transpose()
}

/// Takes the invite row's write lock for the rest of the transaction, so an edit or a revoke
/// reads the version it then checks and bumps. `NotFound` when there is no such invite.
fn lock_invite(conn: &mut DbConnection, invite_id: Uuid) -> StoreResult<Invite> {
    let locked = diesel::update(invites::table.filter(invites::id.eq(Id(invite_id))))
        .set(invites::version.eq(invites::version))
        .execute(conn)?;
    if locked == 0 {
        return Err(StoreError::NotFound(Entity::Invite));
    }
    load_invite(conn, invite_id)?.ok_or(StoreError::NotFound(Entity::Invite))
}

/// Inserts the row unless its code is taken: `INSERT ... ON CONFLICT (code) DO NOTHING
/// RETURNING`, so a collision neither raises an error nor aborts the transaction.
pub(crate) fn insert_unless_code_taken(
    conn: &mut DbConnection,
    row: &InviteRow,
) -> StoreResult<Reservation<Invite>> {
    let inserted = on_each_backend!(conn, |inner| diesel::insert_into(invites::table)
        .values(row)
        .on_conflict(invites::code)
        .do_nothing()
        .returning(InviteRow::as_returning())
        .get_result(inner)
        .optional())?;
    match inserted {
        Some(row) => Ok(Reservation::Reserved(Invite::try_from(row)?)),
        None => Ok(Reservation::Taken),
    }
}

/// Whether a create may return an equal active invite: `unique: false`, and not for named
/// users, whose list would have to match as a set; such an invite is always created anew.
fn reuses(settings: &InviteSettings) -> bool {
    !settings.unique && settings.allowed_user_ids.is_none()
}

/// An active invite of the creator with exactly these settings (what it grants included), for
/// `unique: false`.
fn find_equal_active(
    conn: &mut DbConnection,
    new: &NewInvite<'_>,
    settings: &InviteSettings,
) -> StoreResult<Option<Invite>> {
    let mut query = invites::table
        .filter(invites::server_id.eq(Id(new.server_id)))
        .filter(invites::kind.eq(InviteKind::Random.as_str()))
        .filter(invites::created_by.eq(Id(new.creator.user_id)))
        .filter(invites::max_age.eq(settings.max_age))
        .filter(invites::temporary.eq(settings.temporary))
        .filter(invites::grant_permissions.eq(settings.grant_permissions.bits()))
        .filter(invites::requires_approval.eq(settings.requires_approval))
        // An invite for named users is never reused (see `DbConnection::create_invite`).
        .filter(invites::allowed_user_ids.is_null())
        .filter(active_at(Ts(new.now)))
        .order((invites::created_at.desc(), invites::id.desc()))
        .select(InviteRow::as_select())
        .into_boxed();
    // `column = NULL` is never true in SQL: absent settings must be matched with IS NULL.
    query = match settings.channel_id {
        Some(channel_id) => query.filter(invites::channel_id.eq(Id(channel_id))),
        None => query.filter(invites::channel_id.is_null()),
    };
    query = match settings.max_uses {
        Some(max_uses) => query.filter(invites::max_uses.eq(max_uses)),
        None => query.filter(invites::max_uses.is_null()),
    };
    // Several invites may match: the newest is reused.
    query.limit(1).get_result(conn).optional()?.map(Invite::try_from).transpose()
}

/// The server's active invites at `now`, from its counter (see the migration
/// `active_invite_count`): the counter less the invites that expired since its mark, found
/// through `invites_server_expiry_idx`. With `lapse`, under the server's row lock, those are
/// taken off the counter and the mark moved to `now`, so no create scans them again.
fn active_count(
    conn: &mut DbConnection,
    server_id: Uuid,
    now: DateTime<Utc>,
    lapse: bool,
) -> StoreResult<i64> {
    let (counted, mark) = servers::table
        .filter(servers::id.eq(Id(server_id)))
        .select((servers::active_invites, servers::invites_lapsed_through))
        .get_result::<(i64, Option<DateTime<Utc>>)>(conn)
        .optional()?
        .ok_or(StoreError::NotFound(Entity::Server))?;
    let expired = || {
        let mut query = invites::table
            .filter(invites::server_id.eq(Id(server_id)))
            .filter(invites::kind.eq(InviteKind::Random.as_str()))
            .filter(invites::revoked_at.is_null())
            .filter(invites::expires_at.le(Ts(now)))
            .into_boxed();
        if let Some(mark) = mark {
            query = query.filter(invites::expires_at.gt(Ts(mark)));
        }
        query
    };
    let lapsed: i64 = expired()
        .filter(invites::max_uses.is_null().or(invites::uses.nullable().lt(invites::max_uses)))
        .count()
        .get_result(conn)?;
    // Only when an invite expired since the mark (see `CREATE_SQL`): used-up ones count too, or
    // they would be read again by every create. A mark ahead of `now` (another instance's
    // clock) leaves the range empty, and stays.
    if lapse && expired().count().get_result::<i64>(conn)? > 0 {
        diesel::update(servers::table.filter(servers::id.eq(Id(server_id))))
            .set((
                servers::active_invites.eq(servers::active_invites - lapsed),
                servers::invites_lapsed_through.eq(Some(Ts(now))),
            ))
            .execute(conn)?;
    }
    Ok(counted - lapsed)
}

/// Refuses a channel that is not the server's.
fn check_channel(conn: &mut DbConnection, new: &NewInvite<'_>) -> StoreResult<()> {
    let Some(channel_id) = new.settings.channel_id else { return Ok(()) };
    let in_server = diesel::select(exists(
        channels::table
            .filter(channels::id.eq(Id(channel_id)))
            .filter(channels::server_id.eq(Id(new.server_id))),
    ))
    .get_result::<bool>(conn)?;
    if in_server { Ok(()) } else { Err(Fact::ChannelNotInServer.into()) }
}

/// Why no code could be reserved: every draw collided, or the store failed.
fn reserve_failure(error: ReserveError<StoreError>) -> StoreError {
    match error {
        ReserveError::Exhausted => Fact::CodesExhausted.into(),
        ReserveError::Store(error) => error,
    }
}

/// The audit entry of a new invite: its code and limit, and what it grants and whom it is for
/// when it does either (what a moderator reading the log needs to know of such an invite).
fn create_audit_details(invite: &Invite) -> serde_json::Value {
    let mut details = serde_json::json!({ "code": invite.code, "max_uses": invite.max_uses });
    if !invite.grant_permissions.is_empty() {
        details["grant_permissions"] = invite.grant_permissions.bits().into();
    }
    if let Some(users) = &invite.allowed_user_ids {
        details["allowed_user_ids"] = serde_json::json!(users);
    }
    if invite.requires_approval {
        details["requires_approval"] = true.into();
    }
    details
}

/// A new invite's row, before its code is known to be free.
fn new_invite_row(new: &NewInvite<'_>, code: &str) -> InviteRow {
    let settings = new.settings;
    InviteRow {
        id: Id(Uuid::now_v7()),
        server_id: Id(new.server_id),
        channel_id: settings.channel_id.map(Id),
        code: Some(code.to_owned()),
        kind: InviteKind::Random.as_str().to_owned(),
        created_by: Some(Id(new.creator.user_id)),
        max_uses: settings.max_uses,
        uses: 0,
        max_age: settings.max_age,
        expires_at: settings.expires_at.map(Ts),
        temporary: settings.temporary,
        created_at: Ts(new.now),
        updated_at: Ts(new.now),
        version: 1,
        revoked_at: None,
        grant_permissions: settings.grant_permissions.bits(),
        // The creator sets what it grants; a grant of nothing needs nobody to hold it.
        granted_by: (!settings.grant_permissions.is_empty()).then_some(Id(new.creator.user_id)),
        allowed_user_ids: allowed_users_json(settings.allowed_user_ids.as_deref()),
        requires_approval: settings.requires_approval,
    }
}

/// The PostgreSQL create (see [`CreateStatement`]), after the server's row lock: everything in
/// it reads a snapshot taken once the lock was held, so the count sees every invite that
/// committed before, and two creates at 999 active invites cannot both pass.
const CREATE_SQL: &str = "
),
-- The creator's name, as `RememberUser` records it, in the same round trip.
remembered AS (
    INSERT INTO users AS x (id, username, created_at, updated_at)
    SELECT p.created_by, p.username, p.now, p.now FROM params AS p WHERE p.username IS NOT NULL
    ON CONFLICT (id) DO UPDATE SET username = excluded.username, updated_at = excluded.updated_at
    WHERE x.username IS DISTINCT FROM excluded.username
),
mark AS (
    SELECT s.active_invites, s.invites_lapsed_through
    FROM servers AS s, params AS p WHERE s.id = p.server_id
),
-- The active invites are the server's counter less those expired since its mark (see the
-- migration `active_invite_count`), which stop counting now: no scan of the server's invites.
lapsing AS (
    -- Scalar subqueries, so that all three are bounds of one index range scan: a join with
    -- `params` left the planner free to scan the whole index and filter.
    SELECT count(*) FILTER (WHERE i.max_uses IS NULL OR i.uses < i.max_uses) AS lapsed,
           count(*) AS expired
    FROM invites AS i
    WHERE i.server_id = (SELECT server_id FROM params) AND i.kind = 'random'
      AND i.revoked_at IS NULL
      AND i.expires_at <= (SELECT now FROM params)
      AND i.expires_at > COALESCE((SELECT invites_lapsed_through FROM mark), '-infinity')
),
lapsed AS (
    -- Only when an invite expired since the mark, so at most once per expiry: the server's row
    -- is otherwise written only for the new invite's count. A mark ahead of `now` (another
    -- instance's clock) leaves the range empty, and stays.
    UPDATE servers AS s
    SET active_invites = s.active_invites - l.lapsed, invites_lapsed_through = p.now
    FROM params AS p, lapsing AS l
    WHERE s.id = p.server_id AND l.expired > 0
),
open AS (
    SELECT m.active_invites - l.lapsed AS active FROM mark AS m, lapsing AS l
),
created AS (
    INSERT INTO invites (id, server_id, channel_id, code, kind, created_by, max_uses, uses,
                         max_age, expires_at, temporary, created_at, updated_at, version,
                         grant_permissions, granted_by, allowed_user_ids, requires_approval)
    SELECT p.id, p.server_id, p.channel_id, p.code, 'random', p.created_by, p.max_uses, 0,
           p.max_age, p.expires_at, p.temporary, p.now, p.now, 1,
           p.grant_permissions, p.granted_by, p.allowed_user_ids, p.requires_approval
    FROM params AS p, open AS o
    WHERE o.active < p.max_active
    ON CONFLICT (code) DO NOTHING
    RETURNING id
),
audited AS (
    INSERT INTO audit_entries (id, server_id, actor_id, action, target_type, target_id, details,
                               created_at)
    SELECT p.audit_id, p.server_id, p.created_by, p.audit_action, p.audit_target, c.id,
           p.audit_details, p.now
    FROM created AS c, params AS p
),
evented AS (
    -- Under the server's row lock, which orders its events' `seq`s (see the `events` module).
    INSERT INTO events (server_id, type, payload, audience, created_at)
    SELECT p.server_id, p.event_type, p.payload, p.audience, p.now
    FROM created AS c, params AS p
    RETURNING seq
)
SELECT (SELECT active FROM open) AS active, (SELECT seq FROM evented) AS event_seq
";

/// The PostgreSQL create statement, with `params` (a `SELECT` of the columns the create
/// binds: `id`, `server_id`, `channel_id`, `code`, `created_by`, `username`, `max_uses`,
/// `max_age`, `expires_at`, `temporary`, `grant_permissions`, `granted_by`, `allowed_user_ids`,
/// `requires_approval`, `now`, `max_active`, `audit_id`, `audit_action`,
/// `audit_target`, `audit_details`, `event_type`, `audience`, `payload`) in place of the bound
/// values: what a benchmark of the database alone runs after the server's lock.
pub fn create_statement_sql(params: &str) -> String {
    format!("WITH params AS ({params}{CREATE_SQL}")
}

/// [`CREATE_SQL`] with its values: the invite's row as [`new_invite_row`] made it, its audit
/// entry and its event. A query type of its own, so that diesel prepares it once per
/// connection (as the accept's `AcceptStatement`).
struct CreateStatement<'a> {
    row: &'a InviteRow,
    username: Option<&'a str>,
    max_active: i64,
    audit_id: Uuid,
    audit_action: &'static str,
    audit_target: &'static str,
    audit_details: &'a serde_json::Value,
    event_type: &'static str,
    audience: &'static str,
    payload: &'a serde_json::Value,
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for CreateStatement<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Bool, Nullable, Text};
        let row = self.row;
        out.push_sql("WITH params AS (SELECT ");
        bind_then::<DbUuid, _>(&mut out, &row.id, "::uuid AS id, ")?;
        bind_then::<DbUuid, _>(&mut out, &row.server_id, "::uuid AS server_id, ")?;
        bind_then::<Nullable<DbUuid>, _>(&mut out, &row.channel_id, "::uuid AS channel_id, ")?;
        bind_then::<Nullable<Text>, _>(&mut out, &row.code, "::text AS code, ")?;
        bind_then::<Nullable<DbUuid>, _>(&mut out, &row.created_by, "::uuid AS created_by, ")?;
        bind_then::<Nullable<Text>, _>(&mut out, &self.username, "::text AS username, ")?;
        bind_then::<Nullable<BigInt>, _>(&mut out, &row.max_uses, "::bigint AS max_uses, ")?;
        bind_then::<BigInt, _>(&mut out, &row.max_age, "::bigint AS max_age, ")?;
        bind_then::<Nullable<DbTimestamp>, _>(
            &mut out,
            &row.expires_at,
            "::timestamptz AS expires_at, ",
        )?;
        bind_then::<Bool, _>(&mut out, &row.temporary, "::boolean AS temporary, ")?;
        bind_then::<BigInt, _>(
            &mut out,
            &row.grant_permissions,
            "::bigint AS grant_permissions, ",
        )?;
        bind_then::<Nullable<DbUuid>, _>(&mut out, &row.granted_by, "::uuid AS granted_by, ")?;
        bind_then::<Nullable<DbJson>, _>(
            &mut out,
            &row.allowed_user_ids,
            "::jsonb AS allowed_user_ids, ",
        )?;
        bind_then::<Bool, _>(&mut out, &row.requires_approval, "::boolean AS requires_approval, ")?;
        bind_then::<DbTimestamp, _>(&mut out, &row.created_at, "::timestamptz AS now, ")?;
        bind_then::<BigInt, _>(&mut out, &self.max_active, "::bigint AS max_active, ")?;
        bind_then::<DbUuid, _>(&mut out, &self.audit_id, "::uuid AS audit_id, ")?;
        bind_then::<Text, _>(&mut out, &self.audit_action, "::text AS audit_action, ")?;
        bind_then::<Text, _>(&mut out, &self.audit_target, "::text AS audit_target, ")?;
        bind_then::<DbJson, _>(&mut out, self.audit_details, "::jsonb AS audit_details, ")?;
        bind_then::<Text, _>(&mut out, &self.event_type, "::text AS event_type, ")?;
        bind_then::<Text, _>(&mut out, &self.audience, "::text AS audience, ")?;
        bind_then::<DbJson, _>(&mut out, self.payload, "::jsonb AS payload")?;
        out.push_sql(CREATE_SQL);
        Ok(())
    }
}

/// The cache key of [`CreateStatement`] (its own type has a lifetime, a key must not).
struct CreateStatementId;

impl diesel::query_builder::QueryId for CreateStatement<'_> {
    type QueryId = CreateStatementId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for CreateStatement<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl RunQueryDsl<diesel::PgConnection> for CreateStatement<'_> {}

/// What [`CREATE_SQL`] returns.
#[derive(QueryableByName)]
struct CreateRow {
    /// The server's active invites before this one.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    active: i64,
    /// The event's `seq`; `None` when nothing was written (the limit, or the code was taken).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    event_seq: Option<i64>,
}

/// `SELECT ... FOR UPDATE` of the server's row: the same lock as [`lock_server`] without
/// writing a new version of the row, and a prepared statement.
struct LockServerStatement {
    server_id: Uuid,
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for LockServerStatement {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql("SELECT 1 FROM servers WHERE id = ");
        out.push_bind_param::<DbUuid, _>(&self.server_id)?;
        out.push_sql(" FOR UPDATE");
        Ok(())
    }
}

impl diesel::query_builder::QueryId for LockServerStatement {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl RunQueryDsl<diesel::PgConnection> for LockServerStatement {}

/// The PostgreSQL create: the server's lock (unless the caller's standing read took it), then
/// one statement for the creator's name, the count, the invite, its audit entry and its event.
/// Two statements with the standing read, where the generic path takes eight (and writes the
/// server's row twice).
fn create_postgres(
    conn: &mut DbConnection,
    new: &NewInvite<'_>,
    random: &mut dyn RandomSource,
    announce: fn(&Invite) -> Event,
) -> StoreResult<(CreatedInvite, Vec<StoredEvent>)> {
    write_transaction(conn, |conn| {
        let DbConnection::Postgres(pg) = &mut *conn else {
            unreachable!("create_postgres is called on PostgreSQL only")
        };
        if !new.server_locked
            && (LockServerStatement { server_id: new.server_id }).execute(pg)? == 0
        {
            return Err(StoreError::NotFound(Entity::Server));
        }
        check_channel(conn, new)?;
        if reuses(new.settings)
            && let Some(existing) = find_equal_active(conn, new, new.settings)?
        {
            return Ok((CreatedInvite::Reused(existing), Vec::new()));
        }
        let DbConnection::Postgres(pg) = &mut *conn else {
            unreachable!("create_postgres is called on PostgreSQL only")
        };
        let (invite, event) = reserve_code(random, |code| -> StoreResult<_> {
            let row = new_invite_row(new, code.as_str());
            let invite = Invite::try_from(row.clone())?;
            let announced = announce(&invite);
            let (details, payload) = (create_audit_details(&invite), announced.payload());
            let written = CreateStatement {
                row: &row,
                username: new.creator.username.as_deref(),
                max_active: MAX_ACTIVE_INVITES,
                audit_id: Uuid::now_v7(),
                audit_action: AuditAction::InviteCreate.as_str(),
                audit_target: AuditAction::InviteCreate.target_type().as_str(),
                audit_details: &details,
                event_type: announced.kind().as_str(),
                audience: announced.audience().as_str(),
                payload: &payload,
            }
            .get_result::<CreateRow>(pg)?;
            let Some(seq) = written.event_seq else {
                // At the limit; otherwise the code was taken, and the next one is tried.
                if !has_room_for_invite(written.active) {
                    return Err(Fact::ActiveInvitesFull.into());
                }
                return Ok(Reservation::Taken);
            };
            let event = StoredEvent { seq, event: announced, created_at: new.now };
            Ok(Reservation::Reserved((invite, event)))
        })
        .map_err(reserve_failure)?;
        Ok((CreatedInvite::Created(invite), vec![event]))
    })
}

/// The columns of a preview, for one code or several: the invite, its server's public face,
/// its channel, its creator's name, and the server's members with a live session at `now`.
/// The presence count is a subquery of the same statement: as a statement of its own it would
/// double the round trips of every preview the cache misses. A user with two sessions counts
/// once.
macro_rules! preview_query {
    ($now:expr, $filter:expr) => {{
        let presence = gateway_sessions::table
            .inner_join(members::table.on(members::user_id.eq(gateway_sessions::user_id)))
            .filter(members::server_id.eq(invites::server_id))
            .filter(gateway_sessions::expires_at.gt(Ts($now)))
            .select(diesel::dsl::count(gateway_sessions::user_id).aggregate_distinct())
            .single_value();
        invites::table
            .inner_join(servers::table)
            .left_join(channels::table)
            .left_join(users::table.on(invites::created_by.eq(users::id.nullable())))
            .filter($filter)
            .select((
                InviteRow::as_select(),
                servers::name,
                servers::icon_url,
                servers::member_count,
                servers::invites_paused_until,
                servers::invites_paused_indefinitely,
                channels::id.nullable(),
                channels::name.nullable(),
                users::username.nullable(),
                presence,
            ))
    }};
}

/// A row of [`preview_query`].
type PreviewRow = (
    InviteRow,
    String,
    Option<String>,
    i64,
    Option<Ts>,
    bool,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn preview_of(row: PreviewRow) -> StoreResult<Preview> {
    let (
        invite,
        name,
        icon_url,
        member_count,
        paused_until,
        indefinitely,
        ch_id,
        ch_name,
        inviter_name,
        presence_count,
    ) = row;
    Ok(Preview {
        invite: Invite::try_from(invite)?,
        server_name: name,
        server_icon_url: icon_url,
        member_count,
        invites_paused: InvitesPause::from_columns(paused_until.map(Into::into), indefinitely),
        channel: ch_id.zip(ch_name),
        inviter_name,
        presence_count: presence_count.unwrap_or(0),
    })
}

/// Invites: creation with code reservation, listing, editing, revoking, previews and joins.
impl DbConnection {
    /// [`Self::create_invite`], with a new invite's event (made by `announce`) written in the
    /// same transaction; returns the event. On PostgreSQL the count of active invites, the
    /// invite, its audit entry and its event are one statement after the server's lock.
    pub fn create_invite_announced(
        &mut self,
        new: &NewInvite<'_>,
        random: &mut dyn RandomSource,
        announce: fn(&Invite) -> Event,
    ) -> StoreResult<(CreatedInvite, Vec<StoredEvent>)> {
        if self.backend() == Backend::Postgres {
            return create_postgres(self, new, random, announce);
        }
        write_transaction(self, |conn| {
            let created = conn.create_invite(new, random)?;
            let events = match &created {
                CreatedInvite::Created(invite) => {
                    conn.append_events(&[announce(invite)], new.now)?
                }
                CreatedInvite::Reused(_) => Vec::new(),
            };
            Ok((created, events))
        })
    }

    /// Creates an invite (or, with `unique: false`, reuses an equal active one), with its audit
    /// entry. Refuses an unknown channel and a server at its active-invite limit; draws codes
    /// from `random` with the core's collision retry.
    pub fn create_invite(
        &mut self,
        new: &NewInvite<'_>,
        random: &mut dyn RandomSource,
    ) -> StoreResult<CreatedInvite> {
        let settings = new.settings;
        write_transaction(self, |conn| {
            // Serialises creates per server, so two creates at 999 active invites can't both pass.
            lock_server(conn, new.server_id)?;
            check_channel(conn, new)?;
            if reuses(settings)
                && let Some(existing) = find_equal_active(conn, new, settings)?
            {
                return Ok(CreatedInvite::Reused(existing));
            }
            if !has_room_for_invite(active_count(conn, new.server_id, new.now, true)?) {
                return Err(Fact::ActiveInvitesFull.into());
            }
            let invite = reserve_code(random, |code| {
                insert_unless_code_taken(conn, &new_invite_row(new, code.as_str()))
            })
            .map_err(reserve_failure)?;
            conn.remember_user(new.creator, new.now)?;
            audit::record(
                conn,
                NewAuditEntry {
                    server_id: new.server_id,
                    actor_id: Some(new.creator.user_id),
                    action: AuditAction::InviteCreate,
                    target_id: Some(invite.id),
                    details: create_audit_details(&invite),
                    now: new.now,
                },
            )?;
            Ok(CreatedInvite::Created(invite))
        })
    }

    /// Random invites that are not revoked, newest first, older than `before`.
    pub fn list_invites(
        &mut self,
        scope: InviteScope,
        before: Option<Uuid>,
        limit: PageLimit,
    ) -> StoreResult<Vec<Invite>> {
        let mut query = invites::table
            .filter(invites::kind.eq(InviteKind::Random.as_str()))
            .filter(invites::revoked_at.is_null())
            .order((invites::created_at.desc(), invites::id.desc()))
            .limit(limit.get())
            .select(InviteRow::as_select())
            .into_boxed();
        query = match scope {
            InviteScope::Server(server_id) => query.filter(invites::server_id.eq(Id(server_id))),
            InviteScope::Channel(channel_id) => {
                query.filter(invites::channel_id.eq(Id(channel_id)))
            }
        };
        if let Some(before) = before {
            let cursor = load_invite(self, before)?
                .filter(|invite| match scope {
                    InviteScope::Server(server_id) => invite.server_id == server_id,
                    InviteScope::Channel(channel_id) => invite.channel_id == Some(channel_id),
                })
                .ok_or_else(|| unknown_cursor("an invite"))?;
            let (created_at, id) = (Ts(cursor.created_at), Id(cursor.id));
            query = query.filter(
                invites::created_at
                    .lt(created_at)
                    .or(invites::created_at.eq(created_at).and(invites::id.lt(id))),
            );
        }
        query.load(self)?.into_iter().map(Invite::try_from).collect()
    }

    /// The invite, whatever its state, or `None`.
    pub fn find_invite(&mut self, invite_id: Uuid) -> StoreResult<Option<Invite>> {
        load_invite(self, invite_id)
    }

    /// The invite holding the code, whatever its state, or `None`.
    pub fn find_invite_by_code(&mut self, code: &CodeRef) -> StoreResult<Option<Invite>> {
        invites::table
            .filter(invites::code.eq(code.as_str()))
            .select(InviteRow::as_select())
            .get_result(self)
            .optional()?
            .map(Invite::try_from)
            .transpose()
    }

    /// Counts the server's active random invites (not revoked, not expired, not used up).
    pub fn count_active_invites(
        &mut self,
        server_id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        active_count(self, server_id, now, false)
    }

    /// Takes the invite row's write lock for the rest of the transaction and reads it as it is
    /// then, whatever its state: what an edit or a revoke is checked against, so that a
    /// concurrent join cannot slip under a lowered limit, and a version checked is the version
    /// bumped. `NotFound` when there is no such invite.
    pub fn lock_invite(&mut self, invite_id: Uuid) -> StoreResult<Invite> {
        lock_invite(self, invite_id)
    }

    /// Applies `changes` to an invite locked by [`DbConnection::lock_invite`] in this
    /// transaction, with its audit entry; the invite as it is after.
    pub fn update_invite(
        &mut self,
        invite: &Invite,
        changes: &InviteChanges,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Invite> {
        if changes.is_empty() {
            return Ok(invite.clone());
        }
        let invite_id = invite.id;
        let max_uses = changes.max_uses.apply(invite.max_uses);
        let (max_age, expires_at) = changes.lifetime.unwrap_or((invite.max_age, invite.expires_at));
        // A grant named by the edit is the editor's from now on: the join checks what they hold.
        let (grant, granted_by) = match changes.grant_permissions {
            Some(grant) => (grant, (!grant.is_empty()).then_some(actor)),
            None => (invite.grant_permissions, invite.granted_by),
        };
        let allowed = changes.allowed_user_ids.clone().apply(invite.allowed_user_ids.clone());
        let requires_approval = changes.requires_approval.unwrap_or(invite.requires_approval);
        diesel::update(invites::table.filter(invites::id.eq(Id(invite_id))))
            .set((
                invites::max_uses.eq(max_uses),
                invites::max_age.eq(max_age),
                invites::expires_at.eq(expires_at.map(Ts)),
                invites::grant_permissions.eq(grant.bits()),
                invites::granted_by.eq(granted_by.map(Id)),
                invites::allowed_user_ids.eq(allowed_users_json(allowed.as_deref())),
                invites::requires_approval.eq(requires_approval),
                invites::version.eq(invites::version + 1),
                invites::updated_at.eq(Ts(now)),
            ))
            .execute(self)?;
        let details = serde_json::json!({
            "code": invite.code,
            "max_uses": max_uses,
            "max_age": max_age,
            "expires_at": expires_at,
            "grant_permissions": grant.bits(),
            "allowed_user_ids": allowed,
            "requires_approval": requires_approval,
        });
        audited(self, invite, actor, AuditAction::InviteUpdate, details, now)
    }

    /// Revokes (soft-deletes) an invite locked by [`DbConnection::lock_invite`] in this
    /// transaction, with its audit entry; the invite as it is after.
    pub fn revoke_invite(
        &mut self,
        invite: &Invite,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Invite> {
        mark_revoked(self, invite.id, now)?;
        let details = serde_json::json!({ "code": invite.code });
        audited(self, invite, actor, AuditAction::InviteRevoke, details, now)
    }

    /// The invite, its server's public face and the server's members with a live gateway
    /// session on any instance at `now`, in one read; `None` for an unknown code. Without live
    /// sessions its cost does not depend on the server's size; with them, the presence count's
    /// plan may read a big server's members (see BENCHMARKS.md, "Preview cache misses").
    pub fn preview(&mut self, code: &CodeRef, now: DateTime<Utc>) -> StoreResult<Option<Preview>> {
        preview_query!(now, invites::code.eq(code.as_str()))
            .get_result::<PreviewRow>(self)
            .optional()?
            .map(preview_of)
            .transpose()
    }

    /// [`DbConnection::preview`] for several codes in one read: the previews of those that
    /// name an invite, in no particular order. On PostgreSQL one statement serves every batch
    /// size (the codes are one array); SQLite prepares it per size.
    pub fn previews(&mut self, codes: &[CodeRef], now: DateTime<Utc>) -> StoreResult<Vec<Preview>> {
        let codes: Vec<&str> = codes.iter().map(CodeRef::as_str).collect();
        preview_query!(now, invites::code.eq_any(codes))
            .load::<PreviewRow>(self)?
            .into_iter()
            .map(preview_of)
            .collect()
    }

    /// Accepts the invite for `user`, atomically: the member row, the use, the version bump,
    /// the member count and the `MemberJoin` audit entry commit together or not at all, and a
    /// refused attempt consumes nothing.
    pub fn redeem(
        &mut self,
        code: &CodeRef,
        user: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Redemption> {
        super::redeem::redeem(self, code, user, now, None)
    }

    /// [`DbConnection::redeem`] for a request with an `Idempotency-Key`: a join also records
    /// its response (`response`, with the server's id) under the claim, in the same transaction
    /// (on PostgreSQL, in the same statement). A refusal records nothing. A conflict on
    /// [`Constraint::IdempotencyKey`](crate::Constraint) means a twin joined first.
    pub fn redeem_recorded(
        &mut self,
        code: &CodeRef,
        user: &Actor,
        now: DateTime<Utc>,
        claim: &IdempotencyClaim,
        response: &JoinResponseTemplate<'_>,
    ) -> StoreResult<Redemption> {
        super::redeem::redeem(self, code, user, now, Some((claim, response)))
    }
}
