//! Channels.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use invite_core::server::CreateChannelRequest;
use uuid::Uuid;

use super::common::{Caller, json_list};
use crate::api::error::ApiResult;
use crate::api::extract::JsonBody;
use crate::api::idempotency::{IdempotencyKey, render, respond};

routes![create, list];

/// Creates a channel (`MANAGE_CHANNELS`).
#[utoipa::path(post, path = "/servers/{server_id}/channels", tag = "servers", security(("bearer" = [])),
    params(super::common::ServerPath, super::common::IdempotencyHeader), request_body = CreateChannelRequest, responses(
        (status = 201, description = "Created (a replay of an `Idempotency-Key` carries `Idempotent-Replayed: true`)", body = invite_api::Channel),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn create(
    caller: Caller,
    path: web::Path<Uuid>,
    key: IdempotencyKey,
    JsonBody(request): JsonBody<CreateChannelRequest>,
) -> ApiResult<HttpResponse> {
    let ctx = caller.ctx();
    let server_id = path.into_inner();
    let answer = caller
        .door()
        .change_keyed(
            key.claim(),
            move |conn| invite_ops::channels::create(conn, &ctx, server_id, &request),
            |channel| {
                render(StatusCode::CREATED, &crate::api::wire::channel(channel.clone()), None)
            },
        )
        .await?;
    Ok(respond(answer))
}

/// The server's channels, oldest first.
#[utoipa::path(get, path = "/servers/{server_id}/channels", tag = "servers", security(("bearer" = [])),
    params(super::common::ServerPath), responses(
        (status = 200, description = "Channels", body = [invite_api::Channel]),
        super::common::ServerNotFound,
    ))]
pub(crate) async fn list(caller: Caller, path: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let channels =
        caller.read(move |conn, ctx| invite_ops::channels::list(conn, ctx, server_id)).await?;
    Ok(json_list(channels, crate::api::wire::channel))
}
