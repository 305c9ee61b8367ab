//! Servers, their invite pause, and their audit log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use invite_core::permissions::Requirement;
use invite_core::server::{CreateServerRequest, PageLimit, PauseRequest, UpdateServerRequest};
use invite_core::{ErrorCode, Problem};
use invite_store::repo::{AuditRepository, ServerRepository};
use uuid::Uuid;

use super::{BeforeQuery, member_standing};
use crate::auth::AuthUser;
use crate::dto::{AuditEntryDto, ServerDto};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::JsonBody;
use crate::idempotency::{IdempotencyKey, render, respond};
use crate::state::AppState;

routes! {
    "/servers" => { POST: create },
    "/servers/{server_id}" => { GET: get, PATCH: update },
    "/servers/{server_id}/invites-pause" => { PUT: pause, DELETE: resume },
    "/servers/{server_id}/audit-log" => { GET: audit_log },
}

/// Most audit entries one page returns, and the default page.
const MAX_AUDIT_PAGE: i64 = 100;
const DEFAULT_AUDIT_PAGE: i64 = 50;

/// Creates a server; the caller becomes its owner and first member.
#[utoipa::path(post, path = "/servers", tag = "servers", security(("bearer" = [])),
    params(crate::openapi::IdempotencyHeader), request_body = CreateServerRequest,
    responses((status = 201, description = "Created (a replay of an `Idempotency-Key` carries `Idempotent-Replayed: true`)", body = ServerDto)))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    key: IdempotencyKey,
    JsonBody(request): JsonBody<CreateServerRequest>,
) -> ApiResult<HttpResponse> {
    let settings = request.validate()?;
    let now = state.clock.now();
    let answer = state
        .db
        .write(
            key.claim(),
            now,
            move |conn| conn.create_server(&actor, &settings, now),
            move |server| render(StatusCode::CREATED, &ServerDto::new(server.clone(), now), None),
        )
        .await?;
    Ok(respond(answer))
}

/// A server the caller belongs to.
#[utoipa::path(get, path = "/servers/{server_id}", tag = "servers", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server")), responses(
        (status = 200, description = "The server", body = ServerDto),
        (status = 404, description = "Unknown, or the caller is not a member (`SERVER_NOT_FOUND`)", body = ErrorBody),
    ))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let server = state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?;
            Ok(conn
                .find_server(server_id)?
                .ok_or_else(|| Problem::of(ErrorCode::ServerNotFound))?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ServerDto::new(server, state.clock.now())))
}

/// Edits a server (`MANAGE_SERVER`; `features` only by the owner).
#[utoipa::path(patch, path = "/servers/{server_id}", tag = "servers", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server")), request_body(content = Option<UpdateServerRequest>, description = "Absent or `{}`: no change"), responses(
        (status = 200, description = "The server after the change", body = ServerDto),
        (status = 403, description = "`MISSING_PERMISSION`, or `OWNER_ONLY` for `features`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn update(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
    JsonBody(request): JsonBody<UpdateServerRequest>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let now = state.clock.now();
    let server = state
        .db
        .run(move |conn| {
            let standing = member_standing(conn, server_id, actor.user_id)?;
            standing.require(Requirement::ManageServer)?;
            let changes = request.validate()?;
            // Features are what the platform grants a server; only its owner may change them.
            if changes.features.is_some() {
                standing.require(Requirement::Owner)?;
            }
            conn.update_server(server_id, &changes, now)
        })
        .await?;
    state.previews.invalidate_all();
    Ok(HttpResponse::Ok().json(ServerDto::new(server, now)))
}

/// Pauses the server's invites, until a time or until resumed (`MANAGE_SERVER`).
#[utoipa::path(put, path = "/servers/{server_id}/invites-pause", tag = "servers", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server")), request_body(content = Option<PauseRequest>, description = "Absent or `{}`: until resumed"), responses(
        (status = 204, description = "Paused"),
        (status = 403, description = "`MISSING_PERMISSION`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn pause(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
    JsonBody(request): JsonBody<PauseRequest>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?.require(Requirement::ManageServer)?;
            let pause = request.validate(now)?;
            conn.set_invites_pause(server_id, Some(pause), actor.user_id, now)
        })
        .await?;
    state.previews.invalidate_all();
    Ok(HttpResponse::NoContent().finish())
}

/// Resumes the server's invites (`MANAGE_SERVER`).
#[utoipa::path(delete, path = "/servers/{server_id}/invites-pause", tag = "servers", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server")), responses(
        (status = 204, description = "Resumed"),
        (status = 403, description = "`MISSING_PERMISSION`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn resume(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?.require(Requirement::ManageServer)?;
            conn.set_invites_pause(server_id, None, actor.user_id, now)
        })
        .await?;
    state.previews.invalidate_all();
    Ok(HttpResponse::NoContent().finish())
}

/// The audit log, newest first (`ADMINISTRATOR`).
#[utoipa::path(get, path = "/servers/{server_id}/audit-log", tag = "servers", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server"), BeforeQuery), responses(
        (status = 200, description = "Entries, newest first (limit 1-100, default 50)", body = [AuditEntryDto]),
        (status = 403, description = "`MISSING_PERMISSION`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn audit_log(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
    query: web::Query<BeforeQuery>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let BeforeQuery { limit, before } = query.into_inner();
    let entries = state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?.require(Requirement::Administrator)?;
            let limit = PageLimit::parse(limit, DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE)?;
            conn.list_audit_entries(server_id, before, limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(entries.into_iter().map(AuditEntryDto::from).collect::<Vec<_>>()))
}
