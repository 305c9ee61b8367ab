//! Members and bans.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use invite_core::audit::AuditAction;
use invite_core::permissions::Permissions;
use invite_core::server::PageLimit;
use invite_core::undo::Joiner;
use uuid::Uuid;

use super::audit::{self, NewAuditEntry};
use super::cursor::unknown_cursor;
use super::servers::{add_to_member_count, bump_bans_version};
use crate::connection::{DbConnection, on_each_backend, write_transaction};
use crate::error::{Entity, StoreError, StoreResult};
use crate::models::{Ban, BanRow, Invite, Member, MemberRow};
use crate::schema::{bans, members, users};
use crate::sql_types::{Id, Ts};

/// Why a member leaves a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// They left on their own.
    Leave,
    /// A moderator removed them (audited as `MemberKick`).
    Kick {
        /// The moderator.
        by: Uuid,
    },
    /// A temporary member whose last gateway session has been gone for the grace period
    /// (audited as `MemberRemoveTemporary`, with themselves as the actor).
    Temporary,
}

/// Members with the name their tokens carried, if any.
#[diesel::dsl::auto_type]
fn members_with_names() -> _ {
    members::table.left_join(users::table)
}

type MemberWithName = (MemberRow, Option<String>);

fn into_members(rows: Vec<MemberWithName>) -> StoreResult<Vec<Member>> {
    rows.into_iter().map(|(row, username)| row.into_member(username)).collect()
}

/// A membership deleted: the invite the member had joined through (none for the owner), which
/// the departure's event names for per-invite analytics.
struct Departed {
    joined_via: Option<Uuid>,
}

/// Deletes the membership and keeps the member count; `None` when there was none.
fn delete_membership(
    conn: &mut DbConnection,
    server_id: Uuid,
    user_id: Uuid,
) -> StoreResult<Option<Departed>> {
    let deleted: Option<Option<Id>> = on_each_backend!(&mut *conn, |inner| diesel::delete(
        members::table
            .filter(members::server_id.eq(Id(server_id)))
            .filter(members::user_id.eq(Id(user_id))),
    )
    .returning(members::joined_via_invite_id)
    .get_result(inner)
    .optional())?;
    if deleted.is_some() {
        add_to_member_count(conn, server_id, -1)?;
    }
    Ok(deleted.map(|invite| Departed { joined_via: invite.map(|id| id.0) }))
}

/// Members and how they joined.
impl DbConnection {
    /// Members ordered by user id, after the given one.
    pub fn list_members(
        &mut self,
        server_id: Uuid,
        after: Option<Uuid>,
        limit: PageLimit,
    ) -> StoreResult<Vec<Member>> {
        let mut query = members_with_names()
            .filter(members::server_id.eq(Id(server_id)))
            .order(members::user_id.asc())
            .limit(limit.get())
            .select((MemberRow::as_select(), users::username.nullable()))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(members::user_id.gt(Id(after)));
        }
        into_members(query.load(self)?)
    }

    /// The membership, or `None`.
    pub fn find_member(&mut self, server_id: Uuid, user_id: Uuid) -> StoreResult<Option<Member>> {
        members_with_names()
            .filter(members::server_id.eq(Id(server_id)))
            .filter(members::user_id.eq(Id(user_id)))
            .select((MemberRow::as_select(), users::username.nullable()))
            .get_result::<MemberWithName>(self)
            .optional()?
            .map(|(row, username)| row.into_member(username))
            .transpose()
    }

    /// Replaces the member's extra permissions, and records when (`permissions_set_at`, which
    /// keeps them through an undo of the invite they joined with); being given permissions ends
    /// a temporary membership. `NotFound` when not a member.
    pub fn set_member_permissions(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
        permissions: Permissions,
        now: DateTime<Utc>,
    ) -> StoreResult<Member> {
        write_transaction(self, |conn| {
            let updated = diesel::update(
                members::table
                    .filter(members::server_id.eq(Id(server_id)))
                    .filter(members::user_id.eq(Id(user_id))),
            )
            // Someone given permissions has been vouched for: they stay when they disconnect,
            // and through an undo of the invite they joined with.
            .set((
                members::permissions.eq(permissions.bits()),
                members::temporary.eq(false),
                members::permissions_set_at.eq(Some(Ts(now))),
            ))
            .execute(conn)?;
            if updated == 0 {
                return Err(StoreError::NotFound(Entity::Member));
            }
            conn.find_member(server_id, user_id)?.ok_or(StoreError::NotFound(Entity::Member))
        })
    }

    /// Removes the member and keeps the member count; returns the invite they had joined
    /// through, if any. `NotFound` when not a member.
    pub fn remove_member(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
        removal: Removal,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Uuid>> {
        write_transaction(self, |conn| {
            let Some(Departed { joined_via }) = delete_membership(conn, server_id, user_id)? else {
                return Err(StoreError::NotFound(Entity::Member));
            };
            let (actor_id, action, details) = match removal {
                Removal::Leave => return Ok(joined_via),
                Removal::Kick { by } => (by, AuditAction::MemberKick, serde_json::json!({})),
                Removal::Temporary => (
                    user_id,
                    AuditAction::MemberRemoveTemporary,
                    serde_json::json!({"reason": "temporary"}),
                ),
            };
            audit::record(
                conn,
                NewAuditEntry {
                    server_id,
                    actor_id: Some(actor_id),
                    action,
                    target_id: Some(user_id),
                    details,
                    now,
                },
            )?;
            Ok(joined_via)
        })
    }

    /// Members who joined with the invite, in join order, after the given user.
    pub fn members_joined_with(
        &mut self,
        invite_id: Uuid,
        after: Option<Uuid>,
        limit: PageLimit,
    ) -> StoreResult<Vec<Member>> {
        let mut query = members_with_names()
            .filter(members::joined_via_invite_id.eq(Id(invite_id)))
            .order((members::joined_at.asc(), members::user_id.asc()))
            .limit(limit.get())
            .select((MemberRow::as_select(), users::username.nullable()))
            .into_boxed();
        if let Some(after) = after {
            let joined_at = members::table
                .filter(members::joined_via_invite_id.eq(Id(invite_id)))
                .filter(members::user_id.eq(Id(after)))
                .select(members::joined_at)
                .get_result::<Ts>(self)
                .optional()?
                .ok_or_else(|| unknown_cursor("a member who joined with this invite"))?;
            query = query.filter(
                members::joined_at
                    .gt(joined_at)
                    .or(members::joined_at.eq(joined_at).and(members::user_id.gt(Id(after)))),
            );
        }
        into_members(query.load(self)?)
    }

    /// Everyone still a member through the invite, with what the undo rule
    /// ([`invite_core::undo::undo_verdict`]) reads, in user id order. On PostgreSQL their rows
    /// stay locked for the rest of the transaction: a permission set meanwhile waits for the
    /// undo, and then finds the member gone, rather than being set on someone the undo judged
    /// without it. Call it after locking the invite ([`DbConnection::lock_invite`]), so
    /// that no join through it is still to commit, and before anything that locks the server's
    /// row, the order the other member changes take.
    pub fn lock_joiners(&mut self, invite_id: Uuid) -> StoreResult<Vec<Joiner>> {
        let query = members::table
            .filter(members::joined_via_invite_id.eq(Id(invite_id)))
            .order(members::user_id.asc())
            .select((members::user_id, members::joined_at, members::permissions_set_at));
        // SQLite has no row locks (nor `FOR UPDATE`): its writers run one at a time.
        let rows: Vec<(Id, Ts, Option<Ts>)> = match self {
            DbConnection::Postgres(pg) => query.for_update().load(pg)?,
            DbConnection::Sqlite(sqlite) => query.load(sqlite)?,
        };
        Ok(rows
            .into_iter()
            .map(|(user_id, joined_at, permissions_set_at)| Joiner {
                user_id: user_id.0,
                joined_at: joined_at.0,
                permissions_set_at: permissions_set_at.map(|at| at.0),
            })
            .collect())
    }

    /// Removes these members, who joined through `invite`, for an undo of it: keeps the member
    /// count, and audits each removal as `MemberKick` by `actor` with details
    /// `{"reason": "invite_undo", "code"}`. Returns who was removed, in the order given; anyone
    /// no longer a member through the invite is skipped.
    pub fn remove_joiners(
        &mut self,
        invite: &Invite,
        user_ids: &[Uuid],
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>> {
        /// Members deleted by one statement: SQLite binds each id as a parameter of its own.
        const CHUNK: usize = 500;
        write_transaction(self, |conn| {
            let mut gone = std::collections::HashSet::with_capacity(user_ids.len());
            for chunk in user_ids.chunks(CHUNK) {
                let ids: Vec<Id> = chunk.iter().copied().map(Id).collect();
                let deleted: Vec<Id> = on_each_backend!(&mut *conn, |inner| diesel::delete(
                    members::table
                        .filter(members::server_id.eq(Id(invite.server_id)))
                        .filter(members::joined_via_invite_id.eq(Id(invite.id)))
                        .filter(members::user_id.eq_any(&ids))
                )
                .returning(members::user_id)
                .get_results(inner))?;
                gone.extend(deleted.into_iter().map(|id| id.0));
            }
            let removed: Vec<Uuid> =
                user_ids.iter().copied().filter(|user_id| gone.contains(user_id)).collect();
            if removed.is_empty() {
                return Ok(removed);
            }
            let count = i64::try_from(removed.len()).unwrap_or(i64::MAX);
            add_to_member_count(conn, invite.server_id, -count)?;
            for &user_id in &removed {
                audit::record(
                    conn,
                    NewAuditEntry {
                        server_id: invite.server_id,
                        actor_id: Some(actor),
                        action: AuditAction::MemberKick,
                        target_id: Some(user_id),
                        details: serde_json::json!({"reason": "invite_undo", "code": invite.code}),
                        now,
                    },
                )?;
            }
            Ok(removed)
        })
    }
}

/// Bans.
impl DbConnection {
    /// Bans the user (again, updating the reason) and removes their membership, if any.
    pub fn ban(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
        reason: Option<String>,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Ban> {
        let ban = BanRow {
            server_id: Id(server_id),
            user_id: Id(user_id),
            reason,
            banned_by: Id(actor),
            created_at: Ts(now),
        };
        write_transaction(self, |conn| {
            // First the server row's lock, with a new `bans_version`, which a concurrent
            // PostgreSQL accept locks and checks (see `repo::redeem`): either that accept
            // commits first and the delete below sees its member, or it sees the new version
            // and runs again, finding this ban.
            bump_bans_version(conn, server_id)?;
            // Banning again updates the reason and who banned; the first ban time stays.
            on_each_backend!(&mut *conn, |inner| diesel::insert_into(bans::table)
                .values(&ban)
                .on_conflict((bans::server_id, bans::user_id))
                .do_update()
                .set((bans::reason.eq(&ban.reason), bans::banned_by.eq(Id(actor))))
                .execute(inner))?;
            let was_member = delete_membership(conn, server_id, user_id)?.is_some();
            audit::record(
                conn,
                NewAuditEntry {
                    server_id,
                    actor_id: Some(actor),
                    action: AuditAction::MemberBan,
                    target_id: Some(user_id),
                    details: serde_json::json!({ "reason": ban.reason, "was_member": was_member }),
                    now,
                },
            )?;
            Ok(bans::table
                .filter(bans::server_id.eq(Id(server_id)))
                .filter(bans::user_id.eq(Id(user_id)))
                .select(BanRow::as_select())
                .get_result(conn)?
                .into())
        })
    }

    /// Lifts the ban; `NotFound` when there is none.
    pub fn unban(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        write_transaction(self, |conn| {
            let deleted = diesel::delete(
                bans::table
                    .filter(bans::server_id.eq(Id(server_id)))
                    .filter(bans::user_id.eq(Id(user_id))),
            )
            .execute(conn)?;
            if deleted == 0 {
                return Err(StoreError::NotFound(Entity::Ban));
            }
            audit::record(
                conn,
                NewAuditEntry {
                    server_id,
                    actor_id: Some(actor),
                    action: AuditAction::MemberUnban,
                    target_id: Some(user_id),
                    details: serde_json::json!({}),
                    now,
                },
            )?;
            Ok(())
        })
    }

    /// The server's bans, newest first.
    pub fn list_bans(&mut self, server_id: Uuid) -> StoreResult<Vec<Ban>> {
        Ok(bans::table
            .filter(bans::server_id.eq(Id(server_id)))
            .order((bans::created_at.desc(), bans::user_id.asc()))
            .select(BanRow::as_select())
            .load(self)?
            .into_iter()
            .map(Ban::from)
            .collect())
    }

    /// Whether the user is banned from the server.
    pub fn is_banned(&mut self, server_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        Ok(diesel::select(diesel::dsl::exists(
            bans::table
                .filter(bans::server_id.eq(Id(server_id)))
                .filter(bans::user_id.eq(Id(user_id))),
        ))
        .get_result(self)?)
    }
}
