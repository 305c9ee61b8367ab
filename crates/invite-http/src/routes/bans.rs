//! Bans.

use actix_web::{HttpResponse, web};
use invite_core::permissions::Requirement;
use invite_core::server::BanRequest;
use invite_core::{ErrorCode, Problem};
use invite_store::StoreError;
use invite_store::repo::BanRepository;
use uuid::Uuid;

use super::members::server_owner;
use super::{member_standing, resource};
use crate::auth::AuthUser;
use crate::dto::BanDto;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::state::AppState;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/servers/{server_id}/bans").route(web::get().to(list))).service(
        resource("/servers/{server_id}/bans/{user_id}")
            .route(web::put().to(ban))
            .route(web::delete().to(unban)),
    );
}

async fn ban(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    JsonBody(request): JsonBody<BanRequest>,
) -> ApiResult<HttpResponse> {
    let (server_id, user_id) = path.into_inner();
    let reason = request.reason()?;
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?.require(Requirement::BanMembers)?;
            if user_id == server_owner(conn, server_id)? {
                return Err(Problem::with_message(
                    ErrorCode::OwnerImmune,
                    "The server owner cannot be banned",
                )
                .into());
            }
            conn.ban(server_id, user_id, reason, actor.user_id, now)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn unban(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (server_id, user_id) = path.into_inner();
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?.require(Requirement::BanMembers)?;
            conn.unban(server_id, user_id, actor.user_id, now).map_err(|error| match error {
                StoreError::NotFound => Problem::of(ErrorCode::BanNotFound).into(),
                other => other,
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let bans = state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?.require(Requirement::BanMembers)?;
            conn.list_bans(server_id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(bans.into_iter().map(BanDto::from).collect::<Vec<_>>()))
}
