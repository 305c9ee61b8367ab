//! Per-invite analytics (contract section 11).

use actix_web::{HttpResponse, web};
use invite_runtime::analytics::Analytics;
use uuid::Uuid;

use super::common::Caller;
use crate::api::error::ApiResult;

routes![invite_stats, server_stats];

/// An invite's analytics (`MANAGE_SERVER`): its previews, accepts, refused accepts by error code,
/// joins per UTC day over the last 30 days (oldest first, days without joins left out), and how
/// many who joined through it are still members. The instance answering first writes what it
/// counted for the server and folds the joins in, so only what other instances counted
/// (previews and refusals) lags, by up to `INVITE_ANALYTICS_FLUSH_INTERVAL`; what an instance
/// that crashed counted since its last flush is lost.
#[utoipa::path(get, path = "/servers/{server_id}/invites/{invite_id}/stats", tag = "invites", security(("bearer" = [])),
    params(super::common::ServerPath, ("invite_id" = Uuid, Path, description = "The invite (a revoked one too)")), responses(
        (status = 200, description = "The invite's analytics", body = invite_api::InviteStats),
        super::common::InviteRefusals,
    ))]
pub(crate) async fn invite_stats(
    caller: Caller,
    analytics: web::Data<Analytics>,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    caught_up(&caller, &analytics, ids.0).await?;
    // From the primary: what was just written and folded is there; a standby's lag on top
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
pub(crate) async fn server_stats(
    caller: Caller,
    analytics: web::Data<Analytics>,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    caught_up(&caller, &analytics, server_id).await?;
    let stats =
        caller.read(move |conn, ctx| invite_ops::stats::server_stats(conn, ctx, server_id)).await?;
    Ok(HttpResponse::Ok().json(invite_api::ServerInviteStats::from(stats)))
}

/// Lets in only those who may read the server's analytics, then brings them up to date for the
/// read (`invite_runtime::analytics::catch_up`). A catch-up that fails leaves the read to answer
/// with what was written before: late figures, not an error.
async fn caught_up(caller: &Caller, analytics: &Analytics, server_id: Uuid) -> ApiResult<()> {
    if !analytics.counting() {
        return Ok(());
    }
    caller.read(move |conn, ctx| invite_ops::stats::may_read(conn, ctx, server_id)).await?;
    if let Err(error) =
        invite_runtime::analytics::catch_up(caller.door(), analytics, server_id).await
    {
        tracing::debug!(%error, "analytics read without catching up");
    }
    Ok(())
}
