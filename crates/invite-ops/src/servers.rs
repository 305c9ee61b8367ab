//! Servers: creation, reading and editing, the invite pause, the vanity URL, and the audit log.

use invite_core::ErrorCode;
use invite_core::audit::AuditAction;
use invite_core::event::{Event, InvitesPaused, InvitesResumed, VanityUpdated};
use invite_core::permissions::Requirement;
use invite_core::raid::{RaidProtection, RaidProtectionRequest};
use invite_core::redeem::InvitesPause;
use invite_core::server::{
    CreateServerRequest, PageLimit, PauseRequest, ServerFeature, UpdateServerRequest, VanityRequest,
};
use invite_store::models::{AuditEntry, Invite, Server};
use invite_store::{DbConnection, write_transaction};
use uuid::Uuid;

use crate::events::server_data;
use crate::{Ctx, OpError, OpResult, Outcome, member_standing, with_events};

/// Most audit entries one page returns, and the default page.
pub const MAX_AUDIT_PAGE: i64 = 100;
/// Audit entries in a page by default.
pub const DEFAULT_AUDIT_PAGE: i64 = 50;

/// Creates a server; the caller becomes its owner and first member. The rules of the request
/// are checked by [`CreateServerRequest::validate`] before this runs.
pub fn create(
    conn: &mut DbConnection,
    ctx: &Ctx,
    request: &CreateServerRequest,
) -> OpResult<Outcome<Server>> {
    let settings = request.validate()?;
    Ok(Outcome::quiet(conn.create_server(&ctx.actor, &settings, ctx.now)?))
}

/// A server the caller belongs to.
pub fn get(conn: &mut DbConnection, ctx: &Ctx, server_id: Uuid) -> OpResult<Server> {
    member_standing(conn, server_id, ctx.user_id())?;
    conn.find_server(server_id)?.ok_or_else(|| OpError::refused(ErrorCode::ServerNotFound))
}

/// Edits a server (`MANAGE_SERVER`; `features` only by the owner, since the platform grants
/// them).
pub fn update(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    request: &UpdateServerRequest,
) -> OpResult<Outcome<Server>> {
    write_transaction(conn, |conn| {
        let standing = member_standing(conn, server_id, ctx.user_id())?;
        standing.require(Requirement::ManageServer)?;
        let changes = request.validate()?;
        if changes.features.is_some() {
            standing.require(Requirement::Owner)?;
        }
        let server = conn.update_server(server_id, &changes, ctx.now)?;
        let event = Event::ServerUpdate(server_data(&server));
        with_events(conn, ctx.now, server, &[event])
    })
}

/// Pauses the server's invites (`Some`, until a time or indefinitely) or resumes them
/// (`None`) (`MANAGE_SERVER`).
pub fn set_pause(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    request: Option<&PauseRequest>,
) -> OpResult<Outcome<Server>> {
    write_transaction(conn, |conn| {
        member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
        let pause: Option<InvitesPause> =
            request.map(|request| request.validate(ctx.now)).transpose()?;
        let server = conn.set_invites_pause(server_id, pause, ctx.user_id(), ctx.now)?;
        let event = match pause {
            Some(pause) => Event::InvitesPause(InvitesPaused { server_id, until: pause.until() }),
            None => Event::InvitesResume(InvitesResumed { server_id }),
        };
        with_events(conn, ctx.now, server, &[event])
    })
}

/// The server's raid protection, `None` when it is off (`MANAGE_SERVER`).
pub fn raid_protection(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
) -> OpResult<Option<RaidProtection>> {
    member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
    Ok(conn.raid_protection(server_id)?.0)
}

/// Sets the server's raid protection (`Some`), or turns it off (`None`) (`MANAGE_SERVER`).
/// Membership and permission are checked before the body's rules. The count starts afresh
/// with the next join. A setting is no event of the server's members: nothing they see
/// changes until a raid pauses the invites, which is evented then.
pub fn set_raid_protection(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    request: Option<&RaidProtectionRequest>,
) -> OpResult<Outcome<Option<RaidProtection>>> {
    write_transaction(conn, |conn| {
        member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
        let protection = request.map(RaidProtectionRequest::validate).transpose()?;
        conn.set_raid_protection(server_id, protection, ctx.now)?;
        Ok(Outcome::quiet(protection))
    })
}

/// The server's active vanity invite (`MANAGE_SERVER`).
pub fn vanity(conn: &mut DbConnection, ctx: &Ctx, server_id: Uuid) -> OpResult<Option<Invite>> {
    member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
    Ok(conn.vanity_invite(server_id)?)
}

/// Sets or releases the vanity code (`MANAGE_SERVER`, and the server's `VANITY_URL` feature).
pub fn set_vanity(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    request: &VanityRequest,
) -> OpResult<Outcome<Option<Invite>>> {
    write_transaction(conn, |conn| {
        member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
        let code = request.validate()?;
        let server = conn
            .find_server(server_id)?
            .ok_or_else(|| OpError::refused(ErrorCode::ServerNotFound))?;
        ServerFeature::VanityUrl.require_in(&server.features)?;
        let invite = conn.set_vanity_code(server_id, code.as_ref(), ctx.user_id(), ctx.now)?;
        let event = Event::VanityUpdate(VanityUpdated {
            server_id,
            code: invite.as_ref().and_then(|invite| invite.code.clone()),
            previous_code: server.vanity_code,
        });
        with_events(conn, ctx.now, invite, &[event])
    })
}

/// The audit log, newest first (`ADMINISTRATOR`).
pub fn audit_log(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    (limit, before): (Option<i64>, Option<Uuid>),
) -> OpResult<Vec<AuditEntry>> {
    member_standing(conn, server_id, ctx.user_id())?.require(Requirement::Administrator)?;
    let limit = PageLimit::parse(limit, DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE)?;
    Ok(conn.list_audit_entries(server_id, before, limit)?)
}

/// The actions the audit log records, for the documentation of its endpoint.
pub const AUDITED: [AuditAction; 13] = AuditAction::ALL;
