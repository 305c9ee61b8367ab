//! Servers, their invite pause, and their audit log.

use actix_web::{HttpResponse, web};
use invite_core::permissions::Requirement;
use invite_core::server::{CreateServerRequest, PageLimit, PauseRequest, UpdateServerRequest};
use invite_core::{ErrorCode, Problem};
use invite_store::repo::{AuditRepository, ServerRepository};
use uuid::Uuid;

use super::{BeforeQuery, member_standing, resource};
use crate::auth::AuthUser;
use crate::dto::{AuditEntryDto, ServerDto};
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::state::AppState;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/servers").route(web::post().to(create)))
        .service(
            resource("/servers/{server_id}")
                .route(web::get().to(get))
                .route(web::patch().to(update)),
        )
        .service(
            resource("/servers/{server_id}/invites-pause")
                .route(web::put().to(pause))
                .route(web::delete().to(resume)),
        )
        .service(resource("/servers/{server_id}/audit-log").route(web::get().to(audit_log)));
}

/// Most audit entries one page returns, and the default page.
const MAX_AUDIT_PAGE: i64 = 100;
const DEFAULT_AUDIT_PAGE: i64 = 50;

async fn create(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    JsonBody(request): JsonBody<CreateServerRequest>,
) -> ApiResult<HttpResponse> {
    let settings = request.validate()?;
    let now = state.clock.now();
    let server = state.db.run(move |conn| conn.create_server(&actor, &settings, now)).await?;
    Ok(HttpResponse::Created().json(ServerDto::new(server, now)))
}

async fn get(
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

async fn update(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
    JsonBody(request): JsonBody<UpdateServerRequest>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let changes = request.validate()?;
    let now = state.clock.now();
    let server = state
        .db
        .run(move |conn| {
            let standing = member_standing(conn, server_id, actor.user_id)?;
            standing.require(Requirement::ManageServer)?;
            // Features are what the platform grants a server; only its owner may change them.
            if changes.features.is_some() {
                standing.require(Requirement::Owner)?;
            }
            conn.update_server(server_id, &changes, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ServerDto::new(server, now)))
}

async fn pause(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
    JsonBody(request): JsonBody<PauseRequest>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let now = state.clock.now();
    let pause = request.validate(now)?;
    state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?.require(Requirement::ManageServer)?;
            conn.set_invites_pause(server_id, Some(pause), actor.user_id, now)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn resume(
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
    Ok(HttpResponse::NoContent().finish())
}

async fn audit_log(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
    query: web::Query<BeforeQuery>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let limit = PageLimit::parse(query.limit, DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE)?;
    let before = query.before;
    let entries = state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?.require(Requirement::Administrator)?;
            conn.list_audit_entries(server_id, before, limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(entries.into_iter().map(AuditEntryDto::from).collect::<Vec<_>>()))
}
