//! Members and bans: listing, permissions, leaving and kicking, banning and unbanning.

use invite_core::ErrorCode;
use invite_core::event::{BanAdded, BanRemoved, Event, MemberRemoved, RemovalReason};
use invite_core::permissions::{Departure, Requirement};
use invite_core::server::{BanRequest, PageLimit, UpdateMemberRequest};
use invite_store::models::{Ban, Member};
use invite_store::repo::Removal;
use invite_store::{DbConnection, write_transaction};
use uuid::Uuid;

use crate::events::member_data;
use crate::{Ctx, OpError, OpResult, Outcome, member_standing, with_events};

/// Most members one page returns.
pub const MAX_PAGE: i64 = 1000;
/// Members in a page by default.
pub const DEFAULT_PAGE: i64 = 100;

/// The server's owner.
fn owner_of(conn: &mut DbConnection, server_id: Uuid) -> OpResult<Uuid> {
    Ok(conn
        .find_server(server_id)?
        .ok_or_else(|| OpError::refused(ErrorCode::ServerNotFound))?
        .owner_id)
}

/// Members ordered by user id, with how each joined (any member).
pub fn list(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    (limit, after): (Option<i64>, Option<Uuid>),
) -> OpResult<Vec<Member>> {
    member_standing(conn, server_id, ctx.user_id())?;
    let limit = PageLimit::parse(limit, DEFAULT_PAGE, MAX_PAGE)?;
    Ok(conn.list_members(server_id, after, limit)?)
}

/// Replaces a member's extra permissions (`ADMINISTRATOR`); being given permissions ends a
/// temporary membership.
pub fn update(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, user_id): (Uuid, Uuid),
    request: &UpdateMemberRequest,
) -> OpResult<Outcome<Member>> {
    write_transaction(conn, |conn| {
        member_standing(conn, server_id, ctx.user_id())?.require(Requirement::Administrator)?;
        let member =
            conn.set_member_permissions(server_id, user_id, request.permissions, ctx.now)?;
        let event = Event::MemberUpdate(member_data(&member));
        with_events(conn, ctx.now, member, &[event])
    })
}

/// Leaves (oneself) or kicks (`KICK_MEMBERS`); never the owner.
pub fn remove(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, user_id): (Uuid, Uuid),
) -> OpResult<Outcome<Departure>> {
    write_transaction(conn, |conn| {
        let standing = member_standing(conn, server_id, ctx.user_id())?;
        let owner = owner_of(conn, server_id)?;
        let departure = standing.may_remove(user_id, owner)?;
        let removal = match departure {
            Departure::Leave => Removal::Leave,
            Departure::Kick => Removal::Kick { by: ctx.user_id() },
        };
        let invite_id = conn.remove_member(server_id, user_id, removal, ctx.now)?;
        let reason = match departure {
            Departure::Leave => RemovalReason::Leave,
            Departure::Kick => RemovalReason::Kick,
        };
        let event = Event::MemberRemove(MemberRemoved { server_id, user_id, reason, invite_id });
        with_events(conn, ctx.now, departure, &[event])
    })
}

/// Removes a temporary member whose last gateway session, on any instance, has been gone for
/// `grace` (contract section 10), audited and evented (`MEMBER_REMOVE`, reason `temporary`);
/// `false`, changing nothing, when they are no longer one (they came back, were given
/// permissions, or left) by the time the transaction looks.
pub fn remove_temporary(
    conn: &mut DbConnection,
    (server_id, user_id): (Uuid, Uuid),
    now: chrono::DateTime<chrono::Utc>,
    grace: chrono::TimeDelta,
) -> OpResult<Outcome<bool>> {
    write_transaction(conn, |conn| {
        // Checked again here: the sweep's list may be outdated. A reconnection committed in
        // the instant between this check and the commit is not seen; that session then
        // receives the removal, as it would a kick.
        if !conn.is_lapsed_temporary_member(server_id, user_id, now, grace)? {
            return Ok(Outcome::quiet(false));
        }
        let invite_id = conn.remove_member(server_id, user_id, Removal::Temporary, now)?;
        let reason = RemovalReason::Temporary;
        let event = Event::MemberRemove(MemberRemoved { server_id, user_id, reason, invite_id });
        with_events(conn, now, true, &[event])
    })
}

/// Bans a user (`BAN_MEMBERS`) and removes their membership; banning again updates the reason.
/// Never the owner.
pub fn ban(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, user_id): (Uuid, Uuid),
    request: &BanRequest,
) -> OpResult<Outcome<Ban>> {
    write_transaction(conn, |conn| {
        let standing = member_standing(conn, server_id, ctx.user_id())?;
        standing.require(Requirement::BanMembers)?;
        let reason = request.reason()?;
        standing.may_ban(user_id, owner_of(conn, server_id)?)?;
        let member = conn.find_member(server_id, user_id)?;
        let ban = conn.ban(server_id, user_id, reason.clone(), ctx.user_id(), ctx.now)?;
        // In the ban's transaction, under the server's lock the ban took: a banned user's
        // pending join requests are denied, so no moderator approves them by mistake.
        let denied = conn.deny_pending_join_requests(server_id, user_id, ctx.user_id(), ctx.now)?;
        let mut events = vec![Event::BanAdd(BanAdded { server_id, user_id, reason })];
        if let Some(member) = member {
            let (reason, invite_id) = (RemovalReason::Ban, member.joined_via_invite_id);
            events.push(Event::MemberRemove(MemberRemoved {
                server_id,
                user_id,
                reason,
                invite_id,
            }));
        }
        events.extend(denied.into_iter().map(Event::JoinRequestUpdate));
        with_events(conn, ctx.now, ban, &events)
    })
}

/// Lifts a ban (`BAN_MEMBERS`).
pub fn unban(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, user_id): (Uuid, Uuid),
) -> OpResult<Outcome<()>> {
    write_transaction(conn, |conn| {
        member_standing(conn, server_id, ctx.user_id())?.require(Requirement::BanMembers)?;
        conn.unban(server_id, user_id, ctx.user_id(), ctx.now)?;
        let event = Event::BanRemove(BanRemoved { server_id, user_id });
        with_events(conn, ctx.now, (), &[event])
    })
}

/// Where a visitor of an invite page stands with the invite's server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitorStanding {
    /// A member already.
    Member,
    /// Banned from it.
    Banned,
    /// Neither: the invite is theirs to accept.
    Stranger,
}

/// Where `user_id` stands with the server, for the invite page: what it tells the visitor
/// alone (a ban is never shown to anyone else). Read-only; the join itself decides anew.
///
pub fn visitor_standing(
    conn: &mut DbConnection,
    server_id: Uuid,
    user_id: Uuid,
) -> OpResult<VisitorStanding> {
    if conn.find_member(server_id, user_id)?.is_some() {
        Ok(VisitorStanding::Member)
    } else if conn.is_banned(server_id, user_id)? {
        Ok(VisitorStanding::Banned)
    } else {
        Ok(VisitorStanding::Stranger)
    }
}

/// The server's bans, newest first (`BAN_MEMBERS`).
pub fn bans(conn: &mut DbConnection, ctx: &Ctx, server_id: Uuid) -> OpResult<Vec<Ban>> {
    member_standing(conn, server_id, ctx.user_id())?.require(Requirement::BanMembers)?;
    Ok(conn.list_bans(server_id)?)
}
