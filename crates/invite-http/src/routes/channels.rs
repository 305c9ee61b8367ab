//! Channels.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use invite_core::permissions::Requirement;
use invite_core::server::{ChannelName, CreateChannelRequest};
use invite_store::repo::ChannelRepository;
use uuid::Uuid;

use super::member_standing;
use crate::auth::AuthUser;
use crate::dto::ChannelDto;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::JsonBody;
use crate::idempotency::{IdempotencyKey, render, respond};
use crate::state::AppState;

routes! {
    "/servers/{server_id}/channels" => { POST: create, GET: list },
}

/// Creates a channel (`MANAGE_CHANNELS`).
#[utoipa::path(post, path = "/servers/{server_id}/channels", tag = "servers", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server"), crate::openapi::IdempotencyHeader), request_body = CreateChannelRequest, responses(
        (status = 201, description = "Created (a replay of an `Idempotency-Key` carries `Idempotent-Replayed: true`)", body = ChannelDto),
        (status = 403, description = "`MISSING_PERMISSION`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
    key: IdempotencyKey,
    JsonBody(request): JsonBody<CreateChannelRequest>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let now = state.clock.now();
    let answer = state
        .db
        .write(
            key.claim(),
            now,
            move |conn| {
                member_standing(conn, server_id, actor.user_id)?
                    .require(Requirement::ManageChannels)?;
                let name = ChannelName::parse(&request.name)?;
                conn.create_channel(server_id, &name, now)
            },
            |channel| render(StatusCode::CREATED, &ChannelDto::from(channel.clone()), None),
        )
        .await?;
    Ok(respond(answer))
}

/// The server's channels, oldest first.
#[utoipa::path(get, path = "/servers/{server_id}/channels", tag = "servers", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server")), responses(
        (status = 200, description = "Channels", body = [ChannelDto]),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let channels = state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?;
            conn.list_channels(server_id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(channels.into_iter().map(ChannelDto::from).collect::<Vec<_>>()))
}
