//! Vanity URLs.

use actix_web::{HttpResponse, web};
use invite_core::server::VanityRequest;
use uuid::Uuid;

use super::common::Caller;
use crate::api::error::{ApiResult, ErrorBody};
use crate::api::extract::JsonBody;

routes![get, update];

/// The server's vanity code and its uses (`MANAGE_SERVER`).
#[utoipa::path(get, path = "/servers/{server_id}/vanity-url", tag = "invites", security(("bearer" = [])),
    params(super::common::ServerPath), responses(
        (status = 200, description = "The vanity URL (`code` null when none)", body = invite_api::VanityUrl),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn get(caller: Caller, path: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let invite =
        caller.read(move |conn, ctx| invite_ops::servers::vanity(conn, ctx, server_id)).await?;
    Ok(HttpResponse::Ok().json(crate::api::wire::vanity_url(invite)))
}

/// Sets or releases (`{"code": null}`) the vanity code (`MANAGE_SERVER`, feature `VANITY_URL`).
#[utoipa::path(patch, path = "/servers/{server_id}/vanity-url", tag = "invites", security(("bearer" = [])),
    params(super::common::ServerPath), request_body = VanityRequest, responses(
        (status = 200, description = "The vanity URL after the change", body = invite_api::VanityUrl),
        (status = 403, description = "`MISSING_PERMISSION` or `MISSING_FEATURE`", body = ErrorBody),
        (status = 409, description = "`VANITY_TAKEN`: another server holds it, or released it less than 30 days ago", body = ErrorBody),
        super::common::ServerNotFound,
    ))]
pub(crate) async fn update(
    caller: Caller,
    path: web::Path<Uuid>,
    JsonBody(request): JsonBody<VanityRequest>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let invite = caller
        .change(move |conn, ctx| invite_ops::servers::set_vanity(conn, ctx, server_id, &request))
        .await?;
    Ok(HttpResponse::Ok().json(crate::api::wire::vanity_url(invite)))
}
