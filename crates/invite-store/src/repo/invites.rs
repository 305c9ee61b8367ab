//! Invites: creation with code reservation, lists, edits, revocation and previews. Joins are in
//! `redeem.rs`.

use chrono::{DateTime, Utc};
use diesel::dsl::exists;
use diesel::prelude::*;
use invite_core::audit::AuditAction;
use invite_core::code::{CodeRef, RandomSource, Reservation, ReserveError, reserve_code};
use invite_core::invite::{
    InviteKind, InviteSettings, UpdateInviteRequest, check_active_invites, check_version,
};
use invite_core::redeem::InvitesPause;
use invite_core::server::PageLimit;
use invite_core::{ErrorCode, Problem};
use uuid::Uuid;

use super::audit::{self, NewAuditEntry};
use super::servers::lock_server;
use super::{
    CreatedInvite, InviteRepository, InviteScope, NewInvite, Redemption, UserRepository,
    unknown_cursor,
};
use crate::connection::{DbConnection, on_each_backend, write_transaction};
use crate::error::{Entity, StoreError, StoreResult};
use crate::models::{Invite, InviteRow, Preview};
use crate::schema::{channels, invites, servers, users};
use crate::sql_types::{Id, Ts};

/// Not revoked, not expired at `now`, not used up: the core's `InviteStatus::is_active`, in SQL.
#[diesel::dsl::auto_type]
pub(crate) fn active_at(now: Ts) -> _ {
    invites::revoked_at
        .is_null()
        .and(invites::expires_at.is_null().or(invites::expires_at.gt(now)))
        .and(invites::max_uses.is_null().or(invites::uses.nullable().lt(invites::max_uses)))
}

pub(crate) fn load_invite(conn: &mut DbConnection, invite_id: Uuid) -> StoreResult<Option<Invite>> {
    invites::table
        .filter(invites::id.eq(Id(invite_id)))
        .select(InviteRow::as_select())
        .first(conn)
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

/// An invite that can still be edited or revoked through the invite endpoints.
fn manageable(invite: Invite) -> StoreResult<Invite> {
    if invite.revoked_at.is_some() {
        Err(StoreError::NotFound(Entity::Invite))
    } else if invite.kind == InviteKind::Vanity {
        Err(Problem::of(ErrorCode::VanityInvite).into())
    } else {
        Ok(invite)
    }
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

/// An active invite of the creator with exactly these settings, for `unique: false`.
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
    query.first(conn).optional()?.map(Invite::try_from).transpose()
}

fn count_active(conn: &mut DbConnection, server_id: Uuid, now: DateTime<Utc>) -> StoreResult<i64> {
    Ok(invites::table
        .filter(invites::server_id.eq(Id(server_id)))
        .filter(invites::kind.eq(InviteKind::Random.as_str()))
        .filter(active_at(Ts(now)))
        .count()
        .get_result(conn)?)
}

impl InviteRepository for DbConnection {
    fn create_invite(
        &mut self,
        new: &NewInvite<'_>,
        random: &mut dyn RandomSource,
    ) -> StoreResult<CreatedInvite> {
        let settings = new.settings;
        write_transaction(self, |conn| {
            // Serialises creates per server, so two creates at 999 active invites can't both pass.
            lock_server(conn, new.server_id)?;
            if let Some(channel_id) = settings.channel_id {
                let in_server = diesel::select(exists(
                    channels::table
                        .filter(channels::id.eq(Id(channel_id)))
                        .filter(channels::server_id.eq(Id(new.server_id))),
                ))
                .get_result::<bool>(conn)?;
                if !in_server {
                    return Err(Problem::of(ErrorCode::UnknownChannel).into());
                }
            }
            if !settings.unique
                && let Some(existing) = find_equal_active(conn, new, settings)?
            {
                return Ok(CreatedInvite::Reused(existing));
            }
            check_active_invites(count_active(conn, new.server_id, new.now)?)?;
            let invite = reserve_code(random, |code| {
                insert_unless_code_taken(
                    conn,
                    &InviteRow {
                        id: Id(Uuid::now_v7()),
                        server_id: Id(new.server_id),
                        channel_id: settings.channel_id.map(Id),
                        code: Some(code.as_str().to_owned()),
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
                    },
                )
            })
            .map_err(|error| match error {
                ReserveError::Exhausted => Problem::of(ErrorCode::CodeSpaceExhausted).into(),
                ReserveError::Store(error) => error,
            })?;
            conn.remember_user(new.creator, new.now)?;
            audit::record(
                conn,
                NewAuditEntry {
                    server_id: new.server_id,
                    actor_id: new.creator.user_id,
                    action: AuditAction::InviteCreate,
                    target_id: Some(invite.id),
                    details: serde_json::json!({
                        "code": invite.code,
                        "max_uses": invite.max_uses,
                    }),
                    now: new.now,
                },
            )?;
            Ok(CreatedInvite::Created(invite))
        })
    }

    fn list_invites(
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

    fn find_invite(&mut self, invite_id: Uuid) -> StoreResult<Option<Invite>> {
        load_invite(self, invite_id)
    }

    fn find_invite_by_code(&mut self, code: &CodeRef) -> StoreResult<Option<Invite>> {
        invites::table
            .filter(invites::code.eq(code.as_str()))
            .select(InviteRow::as_select())
            .first(self)
            .optional()?
            .map(Invite::try_from)
            .transpose()
    }

    fn count_active_invites(&mut self, server_id: Uuid, now: DateTime<Utc>) -> StoreResult<i64> {
        count_active(self, server_id, now)
    }

    fn update_invite(
        &mut self,
        invite_id: Uuid,
        request: &UpdateInviteRequest,
        expected_version: Option<i64>,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Invite> {
        write_transaction(self, |conn| {
            let invite = manageable(lock_invite(conn, invite_id)?)?;
            check_version(expected_version, invite.version)?;
            let changes = request.validate(&invite.status(), now)?;
            if changes.is_empty() {
                return Ok(invite);
            }
            let max_uses = changes.max_uses.apply(invite.max_uses);
            let (max_age, expires_at) =
                changes.lifetime.unwrap_or((invite.max_age, invite.expires_at));
            diesel::update(invites::table.filter(invites::id.eq(Id(invite_id))))
                .set((
                    invites::max_uses.eq(max_uses),
                    invites::max_age.eq(max_age),
                    invites::expires_at.eq(expires_at.map(Ts)),
                    invites::version.eq(invites::version + 1),
                    invites::updated_at.eq(Ts(now)),
                ))
                .execute(conn)?;
            audit::record(
                conn,
                NewAuditEntry {
                    server_id: invite.server_id,
                    actor_id: actor,
                    action: AuditAction::InviteUpdate,
                    target_id: Some(invite_id),
                    details: serde_json::json!({
                        "code": invite.code,
                        "max_uses": max_uses,
                        "max_age": max_age,
                        "expires_at": expires_at,
                    }),
                    now,
                },
            )?;
            load_invite(conn, invite_id)?.ok_or(StoreError::NotFound(Entity::Invite))
        })
    }

    fn revoke_invite(
        &mut self,
        invite_id: Uuid,
        expected_version: Option<i64>,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Invite> {
        write_transaction(self, |conn| {
            let invite = manageable(lock_invite(conn, invite_id)?)?;
            check_version(expected_version, invite.version)?;
            diesel::update(invites::table.filter(invites::id.eq(Id(invite_id))))
                .set((
                    invites::revoked_at.eq(Ts(now)),
                    invites::version.eq(invites::version + 1),
                    invites::updated_at.eq(Ts(now)),
                ))
                .execute(conn)?;
            audit::record(
                conn,
                NewAuditEntry {
                    server_id: invite.server_id,
                    actor_id: actor,
                    action: AuditAction::InviteRevoke,
                    target_id: Some(invite_id),
                    details: serde_json::json!({ "code": invite.code }),
                    now,
                },
            )?;
            load_invite(conn, invite_id)?.ok_or(StoreError::NotFound(Entity::Invite))
        })
    }

    fn preview(&mut self, code: &CodeRef) -> StoreResult<Option<Preview>> {
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
        );
        let row = invites::table
            .inner_join(servers::table)
            .left_join(channels::table)
            .left_join(users::table.on(invites::created_by.eq(users::id.nullable())))
            .filter(invites::code.eq(code.as_str()))
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
            ))
            .first::<PreviewRow>(self)
            .optional()?;
        let Some((
            invite,
            name,
            icon_url,
            member_count,
            paused_until,
            indefinitely,
            ch_id,
            ch_name,
            inviter_name,
        )) = row
        else {
            return Ok(None);
        };
        Ok(Some(Preview {
            invite: Invite::try_from(invite)?,
            server_name: name,
            server_icon_url: icon_url,
            member_count,
            invites_paused: InvitesPause::from_columns(paused_until.map(Into::into), indefinitely),
            channel: ch_id.zip(ch_name),
            inviter_name,
        }))
    }

    fn redeem(
        &mut self,
        code: &CodeRef,
        user: &super::Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Redemption> {
        super::redeem::redeem(self, code, user, now, None)
    }

    fn redeem_recorded(
        &mut self,
        code: &CodeRef,
        user: &super::Actor,
        now: DateTime<Utc>,
        claim: &super::IdempotencyClaim,
        response: &super::JoinResponseTemplate<'_>,
    ) -> StoreResult<Redemption> {
        super::redeem::redeem(self, code, user, now, Some((claim, response)))
    }
}
