//! Servers, their invite pause, and their audit log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use invite_core::raid::RaidProtectionRequest;
use invite_core::server::{CreateServerRequest, PauseRequest, UpdateServerRequest};
use uuid::Uuid;

use super::common::{BeforeQuery, Caller, json_list};
use crate::api::error::{ApiResult, ErrorBody};
use crate::api::extract::JsonBody;
use crate::api::idempotency::{IdempotencyKey, render, respond};

routes![create, get, update, pause, resume, raid_protection, protect, unprotect, audit_log];

/// Creates a server; the caller becomes its owner and first member.
#[utoipa::path(post, path = "/servers", tag = "servers", security(("bearer" = [])),
    params(super::common::IdempotencyHeader), request_body = CreateServerRequest,
    responses((status = 201, description = "Created (a replay of an `Idempotency-Key` carries `Idempotent-Replayed: true`)", body = invite_api::Server)))]
pub(crate) async fn create(
    caller: Caller,
    key: IdempotencyKey,
    JsonBody(request): JsonBody<CreateServerRequest>,
) -> ApiResult<HttpResponse> {
    // The request's rules first: they need no database.
    request.validate()?;
    let ctx = caller.ctx();
    let now = ctx.now;
    let answer = caller
        .door()
        .change_keyed(
            key.claim(),
            move |conn| invite_ops::servers::create(conn, &ctx, &request),
            move |server| {
                render(StatusCode::CREATED, &crate::api::wire::server(server.clone(), now), None)
            },
        )
        .await?;
    Ok(respond(answer))
}

/// A server the caller belongs to.
#[utoipa::path(get, path = "/servers/{server_id}", tag = "servers", security(("bearer" = [])),
    params(super::common::ServerPath), responses(
        (status = 200, description = "The server", body = invite_api::Server),
        (status = 404, description = "Unknown, or the caller is not a member (`SERVER_NOT_FOUND`)", body = ErrorBody),
    ))]
pub(crate) async fn get(caller: Caller, path: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    let ctx = caller.ctx();
    let now = ctx.now;
    let server_id = path.into_inner();
    let server =
        caller.door().read(move |conn| invite_ops::servers::get(conn, &ctx, server_id)).await?;
    Ok(HttpResponse::Ok().json(crate::api::wire::server(server, now)))
}

/// Edits a server (`MANAGE_SERVER`; `features` only by the owner).
#[utoipa::path(patch, path = "/servers/{server_id}", tag = "servers", security(("bearer" = [])),
    params(super::common::ServerPath), request_body(content = Option<UpdateServerRequest>, description = "Absent or `{}`: no change"), responses(
        (status = 200, description = "The server after the change", body = invite_api::Server),
        (status = 403, description = "`MISSING_PERMISSION`, or `OWNER_ONLY` for `features`", body = ErrorBody),
        super::common::ServerNotFound,
    ))]
pub(crate) async fn update(
    caller: Caller,
    path: web::Path<Uuid>,
    JsonBody(request): JsonBody<UpdateServerRequest>,
) -> ApiResult<HttpResponse> {
    let ctx = caller.ctx();
    let now = ctx.now;
    let server_id = path.into_inner();
    let server = caller
        .door()
        .change(move |conn| invite_ops::servers::update(conn, &ctx, server_id, &request))
        .await?;
    Ok(HttpResponse::Ok().json(crate::api::wire::server(server, now)))
}

/// Pauses the server's invites, until a time or until resumed (`MANAGE_SERVER`).
#[utoipa::path(put, path = "/servers/{server_id}/invites-pause", tag = "servers", security(("bearer" = [])),
    params(super::common::ServerPath), request_body(content = Option<PauseRequest>, description = "Absent or `{}`: until resumed"), responses(
        (status = 204, description = "Paused"),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn pause(
    caller: Caller,
    path: web::Path<Uuid>,
    JsonBody(request): JsonBody<PauseRequest>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    caller
        .change_then_no_content(move |conn, ctx| {
            invite_ops::servers::set_pause(conn, ctx, server_id, Some(&request))
        })
        .await
}

/// Resumes the server's invites (`MANAGE_SERVER`).
#[utoipa::path(delete, path = "/servers/{server_id}/invites-pause", tag = "servers", security(("bearer" = [])),
    params(super::common::ServerPath), responses(
        (status = 204, description = "Resumed"),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn resume(caller: Caller, path: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    caller
        .change_then_no_content(move |conn, ctx| {
            invite_ops::servers::set_pause(conn, ctx, server_id, None)
        })
        .await
}

/// The server's raid protection (`MANAGE_SERVER`): `{"enabled": false}` when it is off.
#[utoipa::path(get, path = "/servers/{server_id}/raid-protection", tag = "servers", security(("bearer" = [])),
    params(super::common::ServerPath), responses(
        (status = 200, description = "The protection, or `{\"enabled\": false}`", body = invite_api::RaidProtection),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn raid_protection(
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let protection = caller
        .read(move |conn, ctx| invite_ops::servers::raid_protection(conn, ctx, server_id))
        .await?;
    Ok(HttpResponse::Ok().json(crate::api::wire::raid_protection(protection)))
}

/// Sets the server's raid protection (`MANAGE_SERVER`): once `joins` people have joined within
/// `window_seconds`, the invites pause for `pause_seconds`, as `PUT .../invites-pause` would
/// (audited `InvitesPause` with no actor, evented `INVITES_PAUSE`). The join that reaches the
/// threshold is admitted; no window admits more. The count starts afresh.
#[utoipa::path(put, path = "/servers/{server_id}/raid-protection", tag = "servers", security(("bearer" = [])),
    params(super::common::ServerPath), request_body = RaidProtectionRequest, responses(
        (status = 200, description = "The protection as set", body = invite_api::RaidProtection),
        (status = 400, description = "A field missing, not an integer, or out of its bounds (`VALIDATION_ERROR`)", body = ErrorBody),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn protect(
    caller: Caller,
    path: web::Path<Uuid>,
    JsonBody(request): JsonBody<RaidProtectionRequest>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let protection = caller
        .change(move |conn, ctx| {
            invite_ops::servers::set_raid_protection(conn, ctx, server_id, Some(&request))
        })
        .await?;
    Ok(HttpResponse::Ok().json(crate::api::wire::raid_protection(protection)))
}

/// Turns the server's raid protection off (`MANAGE_SERVER`); a pause it set stays until it
/// ends or `DELETE .../invites-pause` lifts it.
#[utoipa::path(delete, path = "/servers/{server_id}/raid-protection", tag = "servers", security(("bearer" = [])),
    params(super::common::ServerPath), responses(
        (status = 204, description = "Off"),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn unprotect(caller: Caller, path: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    caller
        .change_then_no_content(move |conn, ctx| {
            invite_ops::servers::set_raid_protection(conn, ctx, server_id, None)
        })
        .await
}

/// The audit log, newest first (`ADMINISTRATOR`).
#[utoipa::path(get, path = "/servers/{server_id}/audit-log", tag = "servers", security(("bearer" = [])),
    params(super::common::ServerPath, BeforeQuery), responses(
        (status = 200, description = "Entries, newest first (limit 1-100, default 50)", body = [invite_api::AuditEntry]),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn audit_log(
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<BeforeQuery>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let page = query.into_inner().page();
    let entries = caller
        .read(move |conn, ctx| invite_ops::servers::audit_log(conn, ctx, server_id, page))
        .await?;
    Ok(json_list(entries, crate::api::wire::audit_entry))
}
