//! Users, servers and channels.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use invite_core::audit::AuditAction;
use invite_core::permissions::{Permissions, Standing};
use invite_core::raid::{RaidProtection, RaidWindow};
use invite_core::redeem::InvitesPause;
use invite_core::server::{ChannelName, NewServerSettings, ServerChanges};
use uuid::Uuid;

use super::actor::Actor;
use super::audit::{self, NewAuditEntry};
use crate::connection::{DbConnection, on_each_backend, write_transaction};
use crate::error::{Entity, StoreError, StoreResult};
use crate::models::{Channel, ChannelRow, MemberRow, Server, ServerRow, corrupt, features_json};
use crate::prepared::prepared_statement;
use crate::schema::{channels, invites, members, servers};
use crate::sql_types::{DbTimestamp, DbUuid, Id, Json, Ts};

/// Users, remembered by the name their tokens carry.
impl DbConnection {
    /// Stores the actor's `username` claim, if any (a missing claim keeps the known name).
    pub fn remember_user(&mut self, actor: &Actor, now: DateTime<Utc>) -> StoreResult<()> {
        let Some(username) = actor.username.clone() else {
            return Ok(());
        };
        let statement = RememberUser { user_id: actor.user_id, username, now };
        on_each_backend!(self, |conn| statement.execute(conn))?;
        Ok(())
    }
}

prepared_statement! {
    /// Records a user's name; a returning user whose name has not changed costs a look-up, not
    /// a row write (as in the PostgreSQL accept statement's `remembered`).
    struct RememberUser {
        user_id: Uuid,
        username: String,
        now: DateTime<Utc>,
    }
    sql = ["INSERT INTO users AS x (id, username, created_at, updated_at) VALUES ("
           (user_id: DbUuid) ", " (username: Text) ", " (now: DbTimestamp) ", " (now: DbTimestamp)
           ") ON CONFLICT (id) DO UPDATE SET username = excluded.username, \
            updated_at = excluded.updated_at WHERE x.username IS DISTINCT FROM excluded.username"];
}

/// The code of the server's active vanity invite, as a correlated sub-select, so a server and
/// its vanity code come back in one query instead of being stored twice.
#[diesel::dsl::auto_type]
fn vanity_code_of_server() -> _ {
    invites::table
        .filter(invites::server_id.eq(servers::id))
        .filter(invites::kind.eq("vanity"))
        .filter(invites::revoked_at.is_null())
        .select(invites::code)
        .single_value()
}

/// Loads a server with its vanity code.
pub(crate) fn load_server(conn: &mut DbConnection, server_id: Uuid) -> StoreResult<Option<Server>> {
    servers::table
        .filter(servers::id.eq(Id(server_id)))
        .select((ServerRow::as_select(), vanity_code_of_server()))
        .get_result::<(ServerRow, Option<String>)>(conn)
        .optional()?
        .map(|(row, vanity_code)| row.into_server(vanity_code))
        .transpose()
}

/// Changes the member count by `delta` as part of a join or a removal, so the count read by
/// previews always equals the number of member rows; returns the new count.
pub(crate) fn add_to_member_count(
    conn: &mut DbConnection,
    server_id: Uuid,
    delta: i64,
) -> StoreResult<i64> {
    let statement = AddToMemberCount { server_id, delta };
    Ok(on_each_backend!(conn, |conn| statement.get_result(conn))?)
}

prepared_statement! {
    /// [`add_to_member_count`]'s statement, kept prepared: it runs on every join.
    struct AddToMemberCount -> BigInt {
        server_id: Uuid,
        delta: i64,
    }
    sql = ["UPDATE servers SET member_count = member_count + " (delta: BigInt) " WHERE id = "
           (server_id: DbUuid) " RETURNING member_count"];
}

/// The member's standing from the columns it is read from (the server's owner and default
/// permissions, the member's permissions); `None` when `user_id` is not a member.
fn standing_of(user_id: Uuid, found: Option<(Uuid, i64, i64)>) -> StoreResult<Option<Standing>> {
    let Some((owner_id, default_bits, member_bits)) = found else {
        return Ok(None);
    };
    let parse = |bits: i64| {
        Permissions::from_bits(bits).ok_or_else(|| corrupt("permissions", &bits.to_string()))
    };
    Ok(Some(Standing {
        user_id,
        is_owner: owner_id == user_id,
        default_permissions: parse(default_bits)?,
        member_permissions: parse(member_bits)?,
    }))
}

prepared_statement! {
    /// The member's standing, `FOR UPDATE OF` the server's row only: the lock the create's
    /// `LockServerStatement` takes, with the member's row left unlocked. PostgreSQL only.
    struct LockedStanding -> (DbUuid, BigInt, BigInt) {
        server_id: Uuid,
        user_id: Uuid,
    }
    sql = ["SELECT s.owner_id, s.default_permissions, m.permissions \
            FROM members AS m JOIN servers AS s ON s.id = m.server_id WHERE m.server_id = "
           (server_id: DbUuid) " AND m.user_id = " (user_id: DbUuid) " FOR UPDATE OF s"];
}

/// Takes the server row's write lock for the rest of the transaction, so that checks of
/// server-wide limits (active invites, one vanity code) cannot race with each other. `NotFound`
/// when the server does not exist.
pub(crate) fn lock_server(conn: &mut DbConnection, server_id: Uuid) -> StoreResult<()> {
    let locked = diesel::update(servers::table.filter(servers::id.eq(Id(server_id))))
        .set(servers::updated_at.eq(servers::updated_at))
        .execute(conn)?;
    if locked == 0 { Err(StoreError::NotFound(Entity::Server)) } else { Ok(()) }
}

/// Takes the server row's write lock as [`lock_server`] does, and marks that a ban is being
/// written: the PostgreSQL accept compares the version it read with the one it locks, which is
/// how a ban that commits while an accept runs is never missed. `NotFound` when the server does
/// not exist.
pub(crate) fn bump_bans_version(conn: &mut DbConnection, server_id: Uuid) -> StoreResult<()> {
    let locked = diesel::update(servers::table.filter(servers::id.eq(Id(server_id))))
        .set(servers::bans_version.eq(servers::bans_version + 1))
        .execute(conn)?;
    if locked == 0 { Err(StoreError::NotFound(Entity::Server)) } else { Ok(()) }
}

#[derive(AsChangeset)]
#[diesel(table_name = servers)]
#[expect(
    clippy::option_option,
    reason = "diesel's changeset form: None leaves the column alone, Some(None) sets NULL"
)]
struct ServerChangeset {
    name: Option<String>,
    icon_url: Option<Option<String>>,
    default_permissions: Option<i64>,
    features: Option<Json>,
    updated_at: Ts,
}

#[derive(Insertable)]
#[diesel(table_name = servers)]
struct NewServerRow<'a> {
    id: Id,
    name: &'a str,
    icon_url: Option<&'a str>,
    owner_id: Id,
    default_permissions: i64,
    features: Json,
    member_count: i64,
    created_at: Ts,
    updated_at: Ts,
}

/// Servers and their settings.
impl DbConnection {
    /// Creates a server owned by `owner`, who becomes its first member.
    pub fn create_server(
        &mut self,
        owner: &Actor,
        settings: &NewServerSettings,
        now: DateTime<Utc>,
    ) -> StoreResult<Server> {
        let server_id = Uuid::now_v7();
        write_transaction(self, |conn| {
            diesel::insert_into(servers::table)
                .values(NewServerRow {
                    id: Id(server_id),
                    name: settings.name.as_str(),
                    icon_url: settings.icon_url.as_ref().map(invite_core::server::IconUrl::as_str),
                    owner_id: Id(owner.user_id),
                    default_permissions: settings.default_permissions.bits(),
                    features: features_json(&[]),
                    member_count: 1,
                    created_at: Ts(now),
                    updated_at: Ts(now),
                })
                .execute(conn)?;
            diesel::insert_into(members::table)
                .values(MemberRow {
                    server_id: Id(server_id),
                    user_id: Id(owner.user_id),
                    permissions: 0,
                    joined_at: Ts(now),
                    temporary: false,
                    source: "owner".to_owned(),
                    joined_via_invite_id: None,
                    joined_via_code: None,
                    inviter_id: None,
                })
                .execute(conn)?;
            conn.remember_user(owner, now)?;
            load_server(conn, server_id)?.ok_or(StoreError::NotFound(Entity::Server))
        })
    }

    /// The server, or `None`.
    pub fn find_server(&mut self, server_id: Uuid) -> StoreResult<Option<Server>> {
        load_server(self, server_id)
    }

    /// The caller's standing in the server: `None` when the server does not exist or the caller
    /// is not a member (the API answers both with the same 404).
    pub fn standing(&mut self, server_id: Uuid, user_id: Uuid) -> StoreResult<Option<Standing>> {
        let found = members::table
            .inner_join(servers::table)
            .filter(members::server_id.eq(Id(server_id)))
            .filter(members::user_id.eq(Id(user_id)))
            .select((servers::owner_id, servers::default_permissions, members::permissions))
            .get_result::<(Uuid, i64, i64)>(self)
            .optional()?;
        standing_of(user_id, found)
    }

    /// [`DbConnection::standing`], read with the server's row lock taken for the rest of
    /// the transaction (as [`DbConnection::lock_server`] takes it): one round trip where a
    /// change that counts against a server-wide limit would otherwise need two. On SQLite the
    /// write transaction already holds the database's one write lock.
    pub fn standing_locked(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<Option<Standing>> {
        let DbConnection::Postgres(pg) = self else {
            return self.standing(server_id, user_id);
        };
        let found =
            LockedStanding { server_id, user_id }.get_result::<(Uuid, i64, i64)>(pg).optional()?;
        standing_of(user_id, found)
    }

    /// Applies the changes; `NotFound` when the server does not exist.
    pub fn update_server(
        &mut self,
        server_id: Uuid,
        changes: &ServerChanges,
        now: DateTime<Utc>,
    ) -> StoreResult<Server> {
        let changeset = ServerChangeset {
            name: changes.name.as_ref().map(|name| name.as_str().to_owned()),
            icon_url: match &changes.icon_url {
                invite_core::Patch::Unchanged => None,
                invite_core::Patch::Clear => Some(None),
                invite_core::Patch::Set(url) => Some(Some(url.as_str().to_owned())),
            },
            default_permissions: changes.default_permissions.map(|permissions| permissions.bits()),
            features: changes.features.as_deref().map(features_json),
            updated_at: Ts(now),
        };
        write_transaction(self, |conn| {
            let updated = diesel::update(servers::table.filter(servers::id.eq(Id(server_id))))
                .set(&changeset)
                .execute(conn)?;
            if updated == 0 {
                return Err(StoreError::NotFound(Entity::Server));
            }
            load_server(conn, server_id)?.ok_or(StoreError::NotFound(Entity::Server))
        })
    }

    /// Takes the server's row lock for the rest of the transaction: writes that must not
    /// interleave for one server (counting against a limit, numbering its events) take turns.
    /// `NotFound` when there is no such server.
    pub fn lock_server(&mut self, server_id: Uuid) -> StoreResult<()> {
        lock_server(self, server_id)
    }

    /// Pauses (`Some`) or resumes (`None`) the server's invites, with its audit entry. Either
    /// way the raid window closes: the count starts afresh once invites work again.
    pub fn set_invites_pause(
        &mut self,
        server_id: Uuid,
        pause: Option<InvitesPause>,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Server> {
        let (until, indefinitely) = match pause {
            None => (None, false),
            Some(InvitesPause::Until(until)) => (Some(until), false),
            Some(InvitesPause::Indefinitely) => (None, true),
        };
        write_transaction(self, |conn| {
            let updated = diesel::update(servers::table.filter(servers::id.eq(Id(server_id))))
                .set((
                    servers::invites_paused_until.eq(until.map(Ts)),
                    servers::invites_paused_indefinitely.eq(indefinitely),
                    servers::raid_window_started_at.eq(None::<Ts>),
                    servers::raid_window_joins.eq(0),
                    servers::updated_at.eq(Ts(now)),
                ))
                .execute(conn)?;
            if updated == 0 {
                return Err(StoreError::NotFound(Entity::Server));
            }
            let (action, details) = match pause {
                Some(pause) => (AuditAction::InvitesPause, serde_json::json!({ "until": pause })),
                None => (AuditAction::InvitesResume, serde_json::json!({})),
            };
            audit::record(
                conn,
                NewAuditEntry {
                    server_id,
                    actor_id: Some(actor),
                    action,
                    target_id: Some(server_id),
                    details,
                    now,
                },
            )?;
            load_server(conn, server_id)?.ok_or(StoreError::NotFound(Entity::Server))
        })
    }

    /// The server's raid protection (`None`: off) and its current window; `NotFound` when
    /// there is no such server.
    pub fn raid_protection(
        &mut self,
        server_id: Uuid,
    ) -> StoreResult<(Option<RaidProtection>, RaidWindow)> {
        let (joins, window_seconds, pause_seconds, started_at, window_joins) = servers::table
            .filter(servers::id.eq(Id(server_id)))
            .select((
                servers::raid_joins,
                servers::raid_window_seconds,
                servers::raid_pause_seconds,
                servers::raid_window_started_at,
                servers::raid_window_joins,
            ))
            .get_result::<(Option<i64>, Option<i64>, Option<i64>, Option<Ts>, i64)>(self)
            .optional()?
            .ok_or(StoreError::NotFound(Entity::Server))?;
        Ok((
            RaidProtection::from_columns(joins, window_seconds, pause_seconds),
            RaidWindow { started_at: started_at.map(Into::into), joins: window_joins },
        ))
    }

    /// Sets (`Some`) or turns off (`None`) the server's raid protection. The window closes
    /// either way, so a new setting counts from the next join. `NotFound` when there is no such
    /// server.
    pub fn set_raid_protection(
        &mut self,
        server_id: Uuid,
        protection: Option<RaidProtection>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let updated = diesel::update(servers::table.filter(servers::id.eq(Id(server_id))))
            .set((
                servers::raid_joins.eq(protection.map(RaidProtection::joins)),
                servers::raid_window_seconds.eq(protection.map(RaidProtection::window_seconds)),
                servers::raid_pause_seconds.eq(protection.map(RaidProtection::pause_seconds)),
                servers::raid_window_started_at.eq(None::<Ts>),
                servers::raid_window_joins.eq(0),
                servers::updated_at.eq(Ts(now)),
            ))
            .execute(self)?;
        if updated == 0 { Err(StoreError::NotFound(Entity::Server)) } else { Ok(()) }
    }
}

/// Channels.
impl DbConnection {
    /// Creates a channel in the server.
    pub fn create_channel(
        &mut self,
        server_id: Uuid,
        name: &ChannelName,
        now: DateTime<Utc>,
    ) -> StoreResult<Channel> {
        let channel = ChannelRow {
            id: Id(Uuid::now_v7()),
            server_id: Id(server_id),
            name: name.as_str().to_owned(),
            created_at: Ts(now),
        };
        diesel::insert_into(channels::table).values(&channel).execute(self)?;
        Ok(channel.into())
    }

    /// The server's channels, oldest first.
    pub fn list_channels(&mut self, server_id: Uuid) -> StoreResult<Vec<Channel>> {
        Ok(channels::table
            .filter(channels::server_id.eq(Id(server_id)))
            .order((channels::created_at.asc(), channels::id.asc()))
            .select(ChannelRow::as_select())
            .load(self)?
            .into_iter()
            .map(Channel::from)
            .collect())
    }

    /// The channel, or `None`.
    pub fn find_channel(&mut self, channel_id: Uuid) -> StoreResult<Option<Channel>> {
        Ok(channels::table
            .filter(channels::id.eq(Id(channel_id)))
            .select(ChannelRow::as_select())
            .get_result(self)
            .optional()?
            .map(Channel::from))
    }
}
