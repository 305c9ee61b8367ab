//! Bans.

use actix_web::{HttpResponse, web};
use invite_core::server::BanRequest;
use uuid::Uuid;

use super::common::Caller;
use crate::api::error::{ApiResult, ErrorBody};
use crate::api::extract::JsonBody;

routes![list, ban, unban];

/// Bans a user (`BAN_MEMBERS`) and removes their membership; banning again updates the reason.
#[utoipa::path(put, path = "/servers/{server_id}/bans/{user_id}", tag = "members", security(("bearer" = [])),
    params(super::common::ServerPath, ("user_id" = Uuid, Path, description = "The user")), request_body(content = Option<BanRequest>), responses(
        (status = 204, description = "Banned"),
        (status = 400, description = "`VALIDATION_ERROR` or malformed input", body = ErrorBody),
        (status = 403, description = "`MISSING_PERMISSION`, or `OWNER_IMMUNE`: the owner cannot be banned", body = ErrorBody),
        super::common::ServerNotFound,
    ))]
pub(crate) async fn ban(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    JsonBody(request): JsonBody<BanRequest>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    caller
        .change_then_no_content(move |conn, ctx| invite_ops::members::ban(conn, ctx, ids, &request))
        .await
}

/// Lifts a ban (`BAN_MEMBERS`).
#[utoipa::path(delete, path = "/servers/{server_id}/bans/{user_id}", tag = "members", security(("bearer" = [])),
    params(super::common::ServerPath, ("user_id" = Uuid, Path, description = "The user")), responses(
        (status = 204, description = "Lifted"),
        (status = 404, description = "`SERVER_NOT_FOUND` or `BAN_NOT_FOUND`", body = ErrorBody),
        super::common::MissingPermission,
    ))]
pub(crate) async fn unban(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    caller.change_then_no_content(move |conn, ctx| invite_ops::members::unban(conn, ctx, ids)).await
}

/// The server's bans, newest first (`BAN_MEMBERS`).
#[utoipa::path(get, path = "/servers/{server_id}/bans", tag = "members", security(("bearer" = [])),
    params(super::common::ServerPath), responses(
        (status = 200, description = "Bans", body = [invite_api::Ban]),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn list(caller: Caller, path: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let bans =
        caller.read(move |conn, ctx| invite_ops::members::bans(conn, ctx, server_id)).await?;
    Ok(HttpResponse::Ok().json(bans))
}
