//! Bans.

use actix_web::{HttpResponse, web};
use invite_core::permissions::Requirement;
use invite_core::server::BanRequest;
use invite_core::{ErrorCode, Problem};
use invite_store::StoreError;
use invite_store::repo::BanRepository;
use uuid::Uuid;

use super::member_standing;
use super::members::server_owner;
use crate::auth::AuthUser;
use crate::dto::BanDto;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::JsonBody;
use crate::state::AppState;

routes! {
    "/servers/{server_id}/bans" => { GET: list },
    "/servers/{server_id}/bans/{user_id}" => { PUT: ban, DELETE: unban },
}

/// Bans a user (`BAN_MEMBERS`) and removes their membership; banning again updates the reason.
#[utoipa::path(put, path = "/servers/{server_id}/bans/{user_id}", tag = "members", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server"), ("user_id" = Uuid, Path, description = "The user")), request_body(content = Option<BanRequest>), responses(
        (status = 204, description = "Banned"),
        (status = 400, description = "`VALIDATION_ERROR` or malformed input", body = ErrorBody),
        (status = 403, description = "`MISSING_PERMISSION`, or `OWNER_IMMUNE`: the owner cannot be banned", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn ban(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    JsonBody(request): JsonBody<BanRequest>,
) -> ApiResult<HttpResponse> {
    let (server_id, user_id) = path.into_inner();
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?.require(Requirement::BanMembers)?;
            let reason = request.reason()?;
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
    state.previews.member_left(server_id);
    Ok(HttpResponse::NoContent().finish())
}

/// Lifts a ban (`BAN_MEMBERS`).
#[utoipa::path(delete, path = "/servers/{server_id}/bans/{user_id}", tag = "members", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server"), ("user_id" = Uuid, Path, description = "The user")), responses(
        (status = 204, description = "Lifted"),
        (status = 403, description = "`MISSING_PERMISSION`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND` or `BAN_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn unban(
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

/// The server's bans, newest first (`BAN_MEMBERS`).
#[utoipa::path(get, path = "/servers/{server_id}/bans", tag = "members", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server")), responses(
        (status = 200, description = "Bans", body = [BanDto]),
        (status = 403, description = "`MISSING_PERMISSION`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn list(
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
