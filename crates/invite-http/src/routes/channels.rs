//! Channels.

use actix_web::{HttpResponse, web};
use invite_core::permissions::Requirement;
use invite_core::server::{ChannelName, CreateChannelRequest};
use invite_store::repo::ChannelRepository;
use uuid::Uuid;

use super::{member_standing, resource};
use crate::auth::AuthUser;
use crate::dto::ChannelDto;
use crate::error::ApiResult;
use crate::extract::JsonBody;
use crate::state::AppState;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/servers/{server_id}/channels")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    );
}

async fn create(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
    JsonBody(request): JsonBody<CreateChannelRequest>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let name = ChannelName::parse(&request.name)?;
    let now = state.clock.now();
    let channel = state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?
                .require(Requirement::ManageChannels)?;
            conn.create_channel(server_id, &name, now)
        })
        .await?;
    Ok(HttpResponse::Created().json(ChannelDto::from(channel)))
}

async fn list(
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
