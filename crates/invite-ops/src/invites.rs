//! Invites: create, list, edit, revoke, preview, and who joined with one.

use chrono::{DateTime, Utc};
use invite_core::code::{CodeRef, RandomSource};
use invite_core::event::{Event, InviteDeleted, MemberRemoved, RemovalReason};
use invite_core::grant::check_grant;
use invite_core::invite::{
    CreateInviteRequest, UpdateInviteRequest, check_manageable, check_version,
};
use invite_core::permissions::{InviteAction, Requirement, Standing, may_revoke_by_code};
use invite_core::redeem::{
    InviteStatus, InvitesPause, PreviewRefused, RedemptionFacts, RedemptionRefused, check_preview,
    decide_redemption,
};
use invite_core::server::PageLimit;
use invite_core::undo::{UndoInviteRequest, check_undoable, plan_undo};
use invite_core::{ErrorCode, Problem};
use invite_store::models::{Invite, Member, Preview};
use invite_store::repo::{CreatedInvite, InviteScope, NewInvite};
use invite_store::{Backend, DbConnection, write_transaction};
use uuid::Uuid;

use crate::members::VisitorStanding;
use crate::{Ctx, OpError, OpResult, Outcome, member_standing, with_events};

/// Most invites one list returns, and the default page.
pub const MAX_LIST: i64 = 1000;

/// Where an invite is created: a server, or one of its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `POST /servers/{id}/invites`.
    Server(Uuid),
    /// `POST /channels/{id}/invites`: the body may repeat the channel, not name another.
    Channel(Uuid),
}

/// The channel's server, for a caller who belongs to it; 404 `CHANNEL_NOT_FOUND` both for an
/// unknown channel and for a channel of a server the caller is not in, which must look the same.
fn channel_standing(
    conn: &mut DbConnection,
    channel_id: Uuid,
    user_id: Uuid,
) -> OpResult<(Uuid, Standing)> {
    let not_found = || OpError::refused(ErrorCode::ChannelNotFound);
    let channel = conn.find_channel(channel_id)?.ok_or_else(not_found)?;
    let standing = conn.standing(channel.server_id, user_id)?.ok_or_else(not_found)?;
    Ok((channel.server_id, standing))
}

/// The server a place belongs to (for the per-server rate limit), or the place's 404.
pub fn server_of(conn: &mut DbConnection, place: Place) -> OpResult<Uuid> {
    match place {
        Place::Server(server_id) => Ok(server_id),
        Place::Channel(channel_id) => Ok(conn
            .find_channel(channel_id)?
            .ok_or_else(|| OpError::refused(ErrorCode::ChannelNotFound))?
            .server_id),
    }
}

/// Creates an invite (`CREATE_INVITES`): membership, then permission, then the request's rules,
/// then whether the creator may grant what it grants (`OWNER_ONLY` for `ADMINISTRATOR`, else
/// `MISSING_PERMISSION` for a bit they lack), then the store's (channel, limit, reuse, code). `unique: false` may return an equal active
/// invite instead, which changes nothing and emits no event.
pub fn create(
    conn: &mut DbConnection,
    ctx: &Ctx,
    place: Place,
    request: CreateInviteRequest,
    random: &mut dyn RandomSource,
) -> OpResult<Outcome<CreatedInvite>> {
    write_transaction(conn, |conn| {
        // The standing of a server's member is read with the server's lock, which the create
        // needs anyway (it counts against the server's limit): one round trip for both. A
        // channel names its server only once read, and the create takes the lock itself.
        let (server_id, standing, server_locked) = match place {
            Place::Server(server_id) => {
                let standing = conn
                    .standing_locked(server_id, ctx.user_id())?
                    .ok_or_else(|| OpError::refused(ErrorCode::ServerNotFound))?;
                (server_id, standing, true)
            }
            Place::Channel(channel_id) => {
                let (server_id, standing) = channel_standing(conn, channel_id, ctx.user_id())?;
                (server_id, standing, false)
            }
        };
        standing.require(Requirement::CreateInvites)?;
        let request = match place {
            Place::Server(_) => request,
            Place::Channel(channel_id) => request.scoped_to_channel(channel_id)?,
        };
        let settings = request.validate(ctx.now)?;
        check_grant(&standing, settings.grant_permissions)?;
        let new = NewInvite {
            server_id,
            creator: &ctx.actor,
            settings: &settings,
            now: ctx.now,
            server_locked,
        };
        let announce = |invite: &Invite| Event::InviteCreate(invite.into());
        let (created, events) = conn.create_invite_announced(&new, random, announce)?;
        Ok(Outcome::new(created, events))
    })
}

/// Which creates may be committed together by one transaction (group commit), and the server
/// each locks first, by which a batch orders them. On PostgreSQL, one of `groups` groups by
/// server, each batch taking its servers' locks in id order, as the set-based accept does, so
/// that batches cannot deadlock; a create through a channel names its server only once it runs,
/// and goes first. On SQLite, the group of every accept: all writes queue for its one writer
/// anyway.
pub fn create_group(place: Place, backend: Backend, groups: u64) -> (String, Option<Uuid>) {
    match (backend, place) {
        (Backend::Postgres, Place::Server(server_id)) => {
            (format!("create/{}", crate::accept::bucket(server_id, groups)), Some(server_id))
        }
        (Backend::Postgres, Place::Channel(channel_id)) => {
            (format!("create/{}", crate::accept::bucket(channel_id, groups)), None)
        }
        (Backend::Sqlite, _) => (String::new(), None),
    }
}

/// `?channel_id=&limit=&before=` of a server's invite list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListQuery {
    /// Only invites to this channel (a channel of another server lists nothing).
    pub channel_id: Option<Uuid>,
    /// Page size.
    pub limit: Option<i64>,
    /// Only invites older than this one.
    pub before: Option<Uuid>,
}

/// The invites of a server (or, with [`Place::Channel`], of a channel), newest first, expired
/// and used-up ones included, revoked and vanity ones left out (`CREATE_INVITES`, or
/// `MANAGE_SERVER`).
pub fn list(
    conn: &mut DbConnection,
    ctx: &Ctx,
    place: Place,
    query: ListQuery,
) -> OpResult<Vec<Invite>> {
    let scope = match place {
        Place::Server(server_id) => {
            member_standing(conn, server_id, ctx.user_id())?.may_see_invites()?;
            match query.channel_id {
                Some(channel_id) => match conn.find_channel(channel_id)? {
                    Some(channel) if channel.server_id == server_id => {
                        InviteScope::Channel(channel_id)
                    }
                    _ => {
                        PageLimit::parse(query.limit, MAX_LIST, MAX_LIST)?;
                        return Ok(Vec::new());
                    }
                },
                None => InviteScope::Server(server_id),
            }
        }
        Place::Channel(channel_id) => {
            channel_standing(conn, channel_id, ctx.user_id())?.1.may_see_invites()?;
            InviteScope::Channel(channel_id)
        }
    };
    let limit = PageLimit::parse(query.limit, MAX_LIST, MAX_LIST)?;
    Ok(conn.list_invites(scope, query.before, limit)?)
}

/// The invite of this server, for a member allowed to see invites; 404 when it is unknown,
/// revoked or another server's.
fn server_invite(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    invite_id: Uuid,
) -> OpResult<(Standing, Invite)> {
    let standing = member_standing(conn, server_id, ctx.user_id())?;
    standing.may_see_invites()?;
    let invite = conn
        .find_invite(invite_id)?
        .filter(|invite| invite.server_id == server_id && invite.revoked_at.is_none())
        .ok_or_else(|| OpError::refused(ErrorCode::InviteNotFound))?;
    Ok((standing, invite))
}

/// The invite locked for a change, as it is now: still one the invite endpoints manage (not
/// revoked meanwhile, not the vanity invite), at the version `If-Match` expects.
fn locked_for_change(
    conn: &mut DbConnection,
    invite_id: Uuid,
    expected: Option<i64>,
) -> OpResult<Invite> {
    let invite = conn.lock_invite(invite_id)?;
    check_manageable(invite.kind, invite.revoked_at.is_some())?;
    check_version(expected, invite.version)?;
    Ok(invite)
}

/// Edits an invite's limits, what it grants and whom it is for; a new expiry counts from now.
/// `CREATE_INVITES` for one's own, `MANAGE_SERVER` for others'; a new grant must be one the
/// editor may make (as on creation), and is theirs from then on: a join checks what they hold. `expected`, from `If-Match`, is checked after the permission
/// (a malformed one is only reported to someone allowed to edit).
pub fn update(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, invite_id): (Uuid, Uuid),
    request: &UpdateInviteRequest,
    expected: Result<Option<i64>, Problem>,
) -> OpResult<Outcome<Invite>> {
    write_transaction(conn, |conn| {
        let (standing, invite) = server_invite(conn, ctx, server_id, invite_id)?;
        standing.may_manage_invite(invite.created_by, InviteAction::Edit)?;
        let invite = locked_for_change(conn, invite.id, expected?)?;
        // Checked against the invite as it is under its lock: a concurrent join cannot slip
        // under a lowered limit.
        let changes = request.validate(&invite.status(), ctx.now)?;
        if let Some(grant) = changes.grant_permissions {
            check_grant(&standing, grant)?;
        }
        let invite = conn.update_invite(&invite, &changes, ctx.user_id(), ctx.now)?;
        let event = Event::InviteUpdate((&invite).into());
        with_events(conn, ctx.now, invite, &[event])
    })
}

/// Revokes an invite of a server (a soft delete: its code is never reissued). `CREATE_INVITES`
/// for one's own, `MANAGE_SERVER` for others'.
pub fn revoke(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, invite_id): (Uuid, Uuid),
    expected: Result<Option<i64>, Problem>,
) -> OpResult<Outcome<Invite>> {
    write_transaction(conn, |conn| {
        let (standing, invite) = server_invite(conn, ctx, server_id, invite_id)?;
        standing.may_manage_invite(invite.created_by, InviteAction::Revoke)?;
        revoke_checked(conn, ctx, &invite, expected?)
    })
}

/// Revokes an invite by its code: its creator (even one who left the server), or
/// `MANAGE_SERVER` in its server. A stranger to the server is told `INVITE_NOT_FOUND`, as for
/// an unknown code.
///
/// The decision is read once outside the transaction, so that a refusal (a scan of guessed
/// codes, most of all) never opens a write transaction, which on SQLite would queue behind
/// every join; the transaction decides again, since the invite or the caller's standing may
/// have changed in between.
pub fn revoke_by_code(
    conn: &mut DbConnection,
    ctx: &Ctx,
    code: &CodeRef,
    expected: Result<Option<i64>, Problem>,
) -> OpResult<Outcome<Invite>> {
    revocable_by_code(conn, ctx, code)?;
    write_transaction(conn, |conn| {
        let invite = revocable_by_code(conn, ctx, code)?;
        revoke_checked(conn, ctx, &invite, expected?)
    })
}

/// The live invite holding `code`, if the caller may revoke it by its code.
fn revocable_by_code(conn: &mut DbConnection, ctx: &Ctx, code: &CodeRef) -> OpResult<Invite> {
    let invite = conn
        .find_invite_by_code(code)?
        .filter(|invite| invite.revoked_at.is_none())
        .ok_or_else(|| OpError::refused(ErrorCode::InviteNotFound))?;
    let standing = if invite.created_by == Some(ctx.user_id()) {
        None
    } else {
        conn.standing(invite.server_id, ctx.user_id())?
    };
    may_revoke_by_code(ctx.user_id(), invite.created_by, standing.as_ref())?;
    Ok(invite)
}

fn revoke_checked(
    conn: &mut DbConnection,
    ctx: &Ctx,
    invite: &Invite,
    expected: Option<i64>,
) -> OpResult<Outcome<Invite>> {
    // Revoked by someone else since it was read: no longer there to revoke.
    let invite = locked_for_change(conn, invite.id, expected)?;
    let revoked = conn.revoke_invite(&invite, ctx.user_id(), ctx.now)?;
    let event = Event::InviteDelete(InviteDeleted {
        server_id: invite.server_id,
        invite_id: invite.id,
        code: invite.code.clone(),
    });
    with_events(conn, ctx.now, revoked, &[event])
}

/// What undoing an invite did (contract section 11, "Undo a leaked link").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undone {
    /// Whether this undo revoked the invite (`false`: it was revoked already, by a revoke or an
    /// earlier undo). Either way it is revoked now.
    pub revoked_now: bool,
    /// Members removed.
    pub removed: u64,
    /// Members who joined through it (since `since`) and stay: the owner, and those whose
    /// permissions were set after they joined.
    pub kept: u64,
}

/// Undoes a leaked link (`MANAGE_SERVER` and `KICK_MEMBERS`): revokes the invite, unless it is
/// revoked already (audited and evented as a revoke), and removes everyone who joined through it
/// (since `since`, when the request gives one) as [`invite_core::undo::plan_undo`] decides, each
/// removal audited as `MemberKick` (`{"reason": "invite_undo", "code"}`) and evented as
/// `MEMBER_REMOVE` in the same transaction. Repeating it removes nobody more.
///
/// Unknown and other servers' invites are 404 `INVITE_NOT_FOUND`, revoked ones are not (undoing
/// a revoked link is what a moderator who revoked it first still needs), the vanity invite is
/// 400 `VANITY_INVITE`.
///
/// A join racing the undo cannot leave a member through the invite behind: the undo takes the
/// invite's row lock, which every accept takes (on PostgreSQL the single accept's use and the
/// set-based accept's `FOR UPDATE`), before it reads who joined. An accept that held it first
/// has committed by then, and its member is read and removed; one that comes after finds the
/// invite revoked. On SQLite writers run one at a time.
pub fn undo(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, invite_id): (Uuid, Uuid),
    request: &UndoInviteRequest,
) -> OpResult<Outcome<Undone>> {
    write_transaction(conn, |conn| {
        let standing = member_standing(conn, server_id, ctx.user_id())?;
        standing.require(Requirement::ManageServer)?;
        standing.require(Requirement::KickMembers)?;
        let since = request.validate()?;
        let invite = conn
            .find_invite(invite_id)?
            .filter(|invite| invite.server_id == server_id)
            .ok_or_else(|| OpError::refused(ErrorCode::InviteNotFound))?;
        check_undoable(invite.kind)?;
        // The lock first, then who joined: see above. Then the members' rows, before anything
        // takes the server's (the revoke's audit entry, the count, the events), the order in
        // which a kick or a permission change takes them.
        let invite = conn.lock_invite(invite.id)?;
        let joiners = conn.lock_joiners(invite.id)?;
        let owner = conn
            .find_server(server_id)?
            .ok_or_else(|| OpError::refused(ErrorCode::ServerNotFound))?
            .owner_id;
        let plan = plan_undo(&joiners, owner, since);
        let mut events = Vec::with_capacity(plan.remove.len() + 1);
        let revoked_now = invite.revoked_at.is_none();
        if revoked_now {
            conn.revoke_invite(&invite, ctx.user_id(), ctx.now)?;
            events.push(Event::InviteDelete(InviteDeleted {
                server_id,
                invite_id: invite.id,
                code: invite.code.clone(),
            }));
        }
        let removed = conn.remove_joiners(&invite, &plan.remove, ctx.user_id(), ctx.now)?;
        events.extend(removed.iter().map(|&user_id| {
            let (reason, invite_id) = (RemovalReason::InviteUndo, Some(invite.id));
            Event::MemberRemove(MemberRemoved { server_id, user_id, reason, invite_id })
        }));
        let removed = u64::try_from(removed.len()).unwrap_or(u64::MAX);
        with_events(conn, ctx.now, Undone { revoked_now, removed, kept: plan.kept }, &events)
    })
}

/// What an invite's preview shows, for the API and the invite page alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewVerdict {
    /// Whether it can be shown at all: only an invite someone could still accept (a pause does
    /// not hide it). The API answers 404 with the reason otherwise.
    pub shown: Result<(), PreviewRefused>,
    /// What accepting it would answer this visitor now, in the join's own order: the invite
    /// page's state. A visitor nobody signed in as is a stranger to the server.
    pub join: Result<(), RedemptionRefused>,
}

/// Decides what an invite's preview shows (see [`PreviewVerdict`]): `invite` is the invite the
/// code names (`None`: no invite has it), `pause` its server's, and `visitor` where the
/// signed-in visitor stands with the server (`None`: nobody signed in) and whether the invite
/// is open to them (`allowed_user_ids`; nobody signed in is told nothing of the list).
pub fn preview_verdict(
    invite: Option<&InviteStatus>,
    pause: Option<InvitesPause>,
    visitor: Option<(VisitorStanding, bool)>,
    now: DateTime<Utc>,
) -> PreviewVerdict {
    let standing = visitor.map(|(standing, _)| standing);
    let facts = RedemptionFacts {
        invite: invite.copied(),
        pause,
        is_member: standing == Some(VisitorStanding::Member),
        is_banned: standing == Some(VisitorStanding::Banned),
        is_allowed: visitor.is_none_or(|(_, allowed)| allowed),
    };
    PreviewVerdict { shown: check_preview(invite, now), join: decide_redemption(&facts, now) }
}

/// What anyone may see of an invite, with its server's members present at `now`: one read
/// (`DbConnection::preview`); `None` for an unknown code. Whether it can be previewed is
/// decided by the caller, who may hold it in a cache.
pub fn preview(
    conn: &mut DbConnection,
    code: &CodeRef,
    now: DateTime<Utc>,
) -> OpResult<Option<Preview>> {
    Ok(conn.preview(code, now)?)
}

/// Members who joined with an invite of the server, in join order (`MANAGE_SERVER`); revoked
/// invites count, since who joined with them stays worth knowing.
pub fn members_joined_with(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, invite_id): (Uuid, Uuid),
    (limit, after): (Option<i64>, Option<Uuid>),
) -> OpResult<Vec<Member>> {
    member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
    let limit = PageLimit::parse(limit, crate::members::DEFAULT_PAGE, crate::members::MAX_PAGE)?;
    conn.find_invite(invite_id)?
        .filter(|invite| invite.server_id == server_id)
        .ok_or_else(|| OpError::refused(ErrorCode::InviteNotFound))?;
    Ok(conn.members_joined_with(invite_id, after, limit)?)
}
