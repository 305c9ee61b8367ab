//! What events carry, and the events endpoint of integrators who poll.

use invite_core::permissions::Requirement;
use invite_core::redeem::InvitesPause;
use invite_core::{ErrorCode, Problem};
use invite_store::models::{Invite, Member, Server};
use invite_store::repo::{Event, EventRepository};
use invite_store::{DbConnection, StoreResult};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Ctx, member_standing};

/// Most events one page of `GET /servers/{id}/events` returns, and the default page.
pub const MAX_EVENTS_PAGE: i64 = 1000;
/// Events in a page by default.
pub const DEFAULT_EVENTS_PAGE: i64 = 100;

/// An invite, as `INVITE_CREATE` and `INVITE_UPDATE` carry it (the API's invite, without its
/// link, whose base only the HTTP layer knows).
pub fn invite_payload(invite: &Invite) -> Value {
    json!({
        "id": invite.id,
        "server_id": invite.server_id,
        "channel_id": invite.channel_id,
        "code": invite.code,
        "kind": invite.kind.as_str(),
        "created_by": invite.created_by,
        "max_uses": invite.max_uses,
        "uses": invite.uses,
        "max_age": invite.max_age,
        "expires_at": invite.expires_at,
        "temporary": invite.temporary,
        "created_at": invite.created_at,
        "version": invite.version,
    })
}

/// A member, as `MEMBER_UPDATE` carries it.
pub fn member_payload(member: &Member) -> Value {
    json!({
        "server_id": member.server_id,
        "user_id": member.user_id,
        "permissions": member.permissions.bits(),
        "temporary": member.temporary,
    })
}

/// A server, as `SERVER_UPDATE` carries it.
pub fn server_payload(server: &Server) -> Value {
    json!({
        "id": server.id,
        "name": server.name,
        "icon_url": server.icon_url,
        "default_permissions": server.default_permissions.bits(),
        "features": server.features.iter().map(|feature| feature.as_str()).collect::<Vec<_>>(),
    })
}

/// `INVITES_PAUSE`: until when (`null`: until resumed).
pub fn pause_payload(server_id: Uuid, pause: InvitesPause) -> Value {
    let until = match pause {
        InvitesPause::Until(until) => Some(until),
        InvitesPause::Indefinitely => None,
    };
    json!({"server_id": server_id, "until": until})
}

/// A server's events after `after` (`MANAGE_SERVER`), oldest first: an integrator pages with the
/// last `seq` it saw and never misses one, since a server's events commit in `seq` order.
pub fn server_events(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    (after, limit): (Option<i64>, Option<i64>),
) -> StoreResult<Vec<Event>> {
    member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
    let after = after.unwrap_or(0);
    if after < 0 {
        return Err(
            Problem::with_message(ErrorCode::InvalidQuery, "after must be 0 or more").into()
        );
    }
    let limit = invite_core::server::PageLimit::parse(limit, DEFAULT_EVENTS_PAGE, MAX_EVENTS_PAGE)?;
    conn.server_events(server_id, after, limit.get())
}
