//! Per-invite analytics (contract section 11), for those who manage the server. Reads only:
//! what the counters hold is written by the fold of the outbox and the flushes of what each
//! instance counted in memory (`invite_runtime::analytics`), which the instance answering a
//! read brings up to date for the server first, once [`may_read`] has let the caller in.

use invite_core::ErrorCode;
use invite_core::permissions::Requirement;
use invite_core::stats::{InviteStats, ServerStats, TOP_INVITES, first_shown_day};
use invite_store::DbConnection;
use uuid::Uuid;

use crate::{Ctx, OpError, OpResult, member_standing};

/// Whether the caller may read the server's analytics (`MANAGE_SERVER`): checked before the
/// counts are brought up to date for the read, so that nobody else's request writes them.
pub fn may_read(conn: &mut DbConnection, ctx: &Ctx, server_id: Uuid) -> OpResult<()> {
    Ok(member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?)
}

/// One invite's analytics (`MANAGE_SERVER`); an invite of another server is not found, as for
/// every invite endpoint of a server.
pub fn invite_stats(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, invite_id): (Uuid, Uuid),
) -> OpResult<InviteStats> {
    may_read(conn, ctx, server_id)?;
    let invite = conn
        .find_invite(invite_id)?
        .filter(|invite| invite.server_id == server_id)
        .ok_or_else(|| OpError::refused(ErrorCode::InviteNotFound))?;
    Ok(conn.invite_stats(invite.id, first_shown_day(ctx.now))?)
}

/// The server's totals and its top invites by accepts (`MANAGE_SERVER`).
pub fn server_stats(conn: &mut DbConnection, ctx: &Ctx, server_id: Uuid) -> OpResult<ServerStats> {
    may_read(conn, ctx, server_id)?;
    Ok(conn.server_stats(server_id, first_shown_day(ctx.now), TOP_INVITES)?)
}
