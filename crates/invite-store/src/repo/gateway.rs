//! Gateway sessions (contract section 10): who is connected, on any instance, for presence and
//! for the removal of temporary members.
//!
//! A live session's `expires_at` is in the future; its instance pushes it forward for all of its
//! sessions in one statement ([`DbConnection::renew_sessions`]), so the sessions of an
//! instance that crashed lapse by themselves. A session that ends keeps its row, with
//! `expires_at` set to the moment it ended: how long a user has been gone is read from there.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use invite_core::permissions::{Permissions, Standing};
use uuid::Uuid;

use crate::connection::DbConnection;
use crate::error::StoreResult;
use crate::models::corrupt;
use crate::schema::{gateway_sessions, members, servers};
use crate::sql_types::{Id, Ts};

/// A session to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSession {
    /// The session's id.
    pub id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// The instance holding the connection.
    pub instance_id: Uuid,
    /// Until when it counts as live unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// A server a user belongs to, as the gateway's `READY` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberServer {
    /// The server's id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its icon.
    pub icon_url: Option<String>,
    /// How many members it has.
    pub member_count: i64,
    /// Where the user stands in it: what they may hear of.
    pub standing: Standing,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = gateway_sessions)]
struct SessionInsert {
    id: Id,
    user_id: Id,
    instance_id: Id,
    connected_at: Ts,
    expires_at: Ts,
}

fn permissions(bits: i64) -> StoreResult<Permissions> {
    Permissions::from_bits(bits).ok_or_else(|| corrupt("permissions", &bits.to_string()))
}

/// Gateway sessions (contract section 10): presence, and the removal of temporary members.
impl DbConnection {
    /// Records a session unless the user already has `per_user` live ones; whether it was
    /// recorded.
    pub fn open_session(
        &mut self,
        session: NewSession,
        now: DateTime<Utc>,
        per_user: i64,
    ) -> StoreResult<bool> {
        crate::write_transaction(self, |conn| {
            let live: i64 = gateway_sessions::table
                .filter(gateway_sessions::user_id.eq(Id(session.user_id)))
                .filter(gateway_sessions::expires_at.gt(Ts(now)))
                .count()
                .get_result(conn)?;
            if live >= per_user {
                return Ok(false);
            }
            diesel::insert_into(gateway_sessions::table)
                .values(SessionInsert {
                    id: Id(session.id),
                    user_id: Id(session.user_id),
                    instance_id: Id(session.instance_id),
                    connected_at: Ts(now),
                    expires_at: Ts(session.expires_at),
                })
                .execute(conn)?;
            Ok(true)
        })
    }

    /// Ends a session now (its row stays, saying when it ended).
    pub fn close_session(&mut self, session_id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        diesel::update(
            gateway_sessions::table
                .filter(gateway_sessions::id.eq(Id(session_id)))
                .filter(gateway_sessions::expires_at.gt(Ts(now))),
        )
        .set(gateway_sessions::expires_at.eq(Ts(now)))
        .execute(self)?;
        Ok(())
    }

    /// Keeps an instance's live sessions live until `until`; returns how many.
    pub fn renew_sessions(
        &mut self,
        instance_id: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<usize> {
        // Only live ones: a session that ended, or lapsed while this instance could not reach
        // the database, stays ended.
        Ok(diesel::update(
            gateway_sessions::table
                .filter(gateway_sessions::instance_id.eq(Id(instance_id)))
                .filter(gateway_sessions::expires_at.gt(Ts(now))),
        )
        .set(gateway_sessions::expires_at.eq(Ts(until)))
        .execute(self)?)
    }

    /// Ends every live session of an instance now (it is stopping).
    pub fn end_instance_sessions(
        &mut self,
        instance_id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        // Ending is renewing until now: a session that expires now has ended.
        self.renew_sessions(instance_id, now, now)
    }

    /// Temporary members (server, user) who joined more than `grace` ago and have had no
    /// session for at least `grace`, oldest first.
    pub fn lapsed_temporary_members(
        &mut self,
        now: DateTime<Utc>,
        grace: TimeDelta,
        limit: i64,
    ) -> StoreResult<Vec<(Uuid, Uuid)>> {
        let since = now - grace;
        // Seen within the grace period: a live session, or one that ended less than the
        // grace period ago.
        let seen = gateway_sessions::table
            .filter(gateway_sessions::user_id.eq(members::user_id))
            .filter(gateway_sessions::expires_at.gt(Ts(since)));
        Ok(members::table
            .filter(members::temporary)
            .filter(members::joined_at.lt(Ts(since)))
            .filter(diesel::dsl::not(diesel::dsl::exists(seen)))
            .order(members::joined_at)
            .limit(limit)
            .select((members::server_id, members::user_id))
            .load::<(Uuid, Uuid)>(self)?)
    }

    /// Whether the user is still a temporary member of the server, gone for at least `grace`
    /// (checked again inside the removal's transaction).
    pub fn is_lapsed_temporary_member(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
        grace: TimeDelta,
    ) -> StoreResult<bool> {
        let since = now - grace;
        let seen = gateway_sessions::table
            .filter(gateway_sessions::user_id.eq(Id(user_id)))
            .filter(gateway_sessions::expires_at.gt(Ts(since)));
        Ok(diesel::select(diesel::dsl::exists(
            members::table
                .filter(members::server_id.eq(Id(server_id)))
                .filter(members::user_id.eq(Id(user_id)))
                .filter(members::temporary)
                .filter(members::joined_at.lt(Ts(since))),
        ))
        .get_result::<bool>(self)?
            && !diesel::select(diesel::dsl::exists(seen)).get_result::<bool>(self)?)
    }

    /// Deletes the rows of sessions that ended before `before`.
    pub fn purge_sessions(&mut self, before: DateTime<Utc>) -> StoreResult<usize> {
        Ok(diesel::delete(
            gateway_sessions::table.filter(gateway_sessions::expires_at.lt(Ts(before))),
        )
        .execute(self)?)
    }

    /// The servers each of `users` belongs to, with where they stand in each, as (user,
    /// server) by user and server id: one query for a burst of new sessions.
    pub fn member_servers(&mut self, users: &[Uuid]) -> StoreResult<Vec<(Uuid, MemberServer)>> {
        let rows = members::table
            .inner_join(servers::table)
            .filter(members::user_id.eq_any(users.iter().copied().map(Id)))
            .order((members::user_id, servers::id))
            .select((
                members::user_id,
                servers::id,
                servers::name,
                servers::icon_url,
                servers::member_count,
                servers::owner_id,
                servers::default_permissions,
                members::permissions,
            ))
            .load::<(Uuid, Uuid, String, Option<String>, i64, Uuid, i64, i64)>(self)?;
        rows.into_iter()
            .map(
                |(
                    user_id,
                    id,
                    name,
                    icon_url,
                    member_count,
                    owner_id,
                    default_bits,
                    member_bits,
                )| {
                    let standing = Standing {
                        user_id,
                        is_owner: owner_id == user_id,
                        default_permissions: permissions(default_bits)?,
                        member_permissions: permissions(member_bits)?,
                    };
                    Ok((user_id, MemberServer { id, name, icon_url, member_count, standing }))
                },
            )
            .collect()
    }
}
