//! Per-invite analytics (contract section 11).

use actix_web::{HttpResponse, web};
use uuid::Uuid;

use super::common::Caller;
use crate::api::error::ApiResult;

routes![invite_stats, server_stats];

/// An invite's analytics (`MANAGE_SERVER`): its previews, accepts, refused accepts by error code,
/// joins per UTC day over the last 30 days (oldest first, days without joins left out), and how
/// many who joined through it are still members. They lag by up to
/// `INVITE_ANALYTICS_FLUSH_INTERVAL`; previews counted by an instance that crashed since its
/// last flush are lost.
#[utoipa::path(get, path = "/servers/{server_id}/invites/{invite_id}/stats", tag = "invites", security(("bearer" = [])),
    params(super::common::ServerPath, ("invite_id" = Uuid, Path, description = "The invite (a revoked one too)")), responses(
        (status = 200, description = "The invite's analytics", body = invite_api::InviteStats),
        super::common::InviteRefusals,
    ))]
pub(crate) async fn invite_stats(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    // From the primary: the figures already lag by the flush interval; a standby's lag on top
    // would stretch the bound the README gives.
    let stats =
        caller.read(move |conn, ctx| invite_ops::stats::invite_stats(conn, ctx, ids)).await?;
    Ok(HttpResponse::Ok().json(invite_api::InviteStats::from(stats)))
}

/// The server's analytics (`MANAGE_SERVER`): the totals over its invites, in the fields of an
/// invite's, and `invites`, its top 100 by accepts (most first, ties by id).
#[utoipa::path(get, path = "/servers/{server_id}/invite-stats", tag = "servers", security(("bearer" = [])),
    params(super::common::ServerPath), responses(
        (status = 200, description = "The server's analytics", body = invite_api::ServerInviteStats),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn server_stats(caller: Caller, path: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let stats =
        caller.read(move |conn, ctx| invite_ops::stats::server_stats(conn, ctx, server_id)).await?;
    Ok(HttpResponse::Ok().json(invite_api::ServerInviteStats::from(stats)))
}
