//! What events carry, built from what the store returns, and the events endpoint of
//! integrators who poll.

use invite_core::event::{MemberData, ServerData};
use invite_core::permissions::Requirement;
use invite_core::{ErrorCode, Problem};
use invite_store::DbConnection;
use invite_store::models::{Member, Server};
use invite_store::repo::StoredEvent;
use uuid::Uuid;

use crate::{Ctx, OpResult, member_standing};

/// Most events one page of `GET /servers/{id}/events` returns, and the default page.
pub const MAX_EVENTS_PAGE: i64 = 1000;
/// Events in a page by default.
pub const DEFAULT_EVENTS_PAGE: i64 = 100;

/// A member, as `MEMBER_UPDATE` carries it.
pub fn member_data(member: &Member) -> MemberData {
    MemberData {
        server_id: member.server_id,
        user_id: member.user_id,
        permissions: member.permissions,
        temporary: member.temporary,
    }
}

/// A server, as `SERVER_UPDATE` carries it.
pub fn server_data(server: &Server) -> ServerData {
    ServerData {
        id: server.id,
        name: server.name.clone(),
        icon_url: server.icon_url.clone(),
        default_permissions: server.default_permissions,
        features: server.features.clone(),
    }
}

/// A server's events after `after` (`MANAGE_SERVER`), oldest first: an integrator pages with the
/// last `seq` it saw and never misses one, since a server's events commit in `seq` order.
pub fn server_events(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    (after, limit): (Option<i64>, Option<i64>),
) -> OpResult<Vec<StoredEvent>> {
    member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
    let after = after.unwrap_or(0);
    if after < 0 {
        return Err(
            Problem::with_message(ErrorCode::InvalidQuery, "after must be 0 or more").into()
        );
    }
    let limit = invite_core::server::PageLimit::parse(limit, DEFAULT_EVENTS_PAGE, MAX_EVENTS_PAGE)?;
    Ok(conn.server_events(server_id, after, limit.get())?)
}
