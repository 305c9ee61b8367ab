//! Members: listing, permissions, leaving and kicking, and who joined with an invite.

use actix_web::{HttpResponse, web};
use invite_core::permissions::Requirement;
use invite_core::server::{PageLimit, UpdateMemberRequest};
use invite_core::{ErrorCode, Problem};
use invite_store::StoreError;
use invite_store::repo::{InviteRepository, MemberRepository, Removal};
use uuid::Uuid;

use super::{AfterQuery, member_standing};
use crate::auth::AuthUser;
use crate::dto::MemberDto;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::JsonBody;
use crate::state::AppState;

routes! {
    "/servers/{server_id}/members" => { GET: list },
    "/servers/{server_id}/members/{user_id}" => { PATCH: update, DELETE: remove },
    "/servers/{server_id}/invites/{invite_id}/members" => { GET: joined_with },
}

const MAX_PAGE: i64 = 1000;
const DEFAULT_PAGE: i64 = 100;

fn member_not_found(error: StoreError) -> StoreError {
    match error {
        StoreError::NotFound => Problem::of(ErrorCode::MemberNotFound).into(),
        other => other,
    }
}

/// Members ordered by user id, with how each joined.
#[utoipa::path(get, path = "/servers/{server_id}/members", tag = "members", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server"), AfterQuery), responses(
        (status = 200, description = "Members", body = [MemberDto]),
        (status = 404, description = "`SERVER_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<Uuid>,
    query: web::Query<AfterQuery>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let AfterQuery { limit, after } = query.into_inner();
    let members = state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?;
            let limit = PageLimit::parse(limit, DEFAULT_PAGE, MAX_PAGE)?;
            conn.list_members(server_id, after, limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(members.into_iter().map(MemberDto::from).collect::<Vec<_>>()))
}

/// Replaces a member's extra permissions (`ADMINISTRATOR`); ends a temporary membership.
#[utoipa::path(patch, path = "/servers/{server_id}/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server"), ("user_id" = Uuid, Path, description = "The member")), request_body = UpdateMemberRequest, responses(
        (status = 200, description = "The member", body = MemberDto),
        (status = 403, description = "`MISSING_PERMISSION`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND` or `MEMBER_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn update(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    JsonBody(request): JsonBody<UpdateMemberRequest>,
) -> ApiResult<HttpResponse> {
    let (server_id, user_id) = path.into_inner();
    let member = state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?.require(Requirement::Administrator)?;
            conn.set_member_permissions(server_id, user_id, request.permissions)
                .map_err(member_not_found)
        })
        .await?;
    Ok(HttpResponse::Ok().json(MemberDto::from(member)))
}

/// Leaving (oneself) or kicking (`KICK_MEMBERS`); the owner can do neither to themselves nor be
/// kicked, since a server without its owner could never be managed again.
/// Leaves (oneself) or kicks (`KICK_MEMBERS`); never the owner.
#[utoipa::path(delete, path = "/servers/{server_id}/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server"), ("user_id" = Uuid, Path, description = "The member")), responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`MISSING_PERMISSION`, or `OWNER_IMMUNE`: the owner can neither leave nor be kicked", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND` or `MEMBER_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn remove(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (server_id, user_id) = path.into_inner();
    let now = state.clock.now();
    state
        .db
        .run(move |conn| {
            let standing = member_standing(conn, server_id, actor.user_id)?;
            let leaving = user_id == actor.user_id;
            if !leaving {
                standing.require(Requirement::KickMembers)?;
            }
            let owner_id = server_owner(conn, server_id)?;
            if user_id == owner_id {
                let message = if leaving {
                    "The server owner cannot leave their own server"
                } else {
                    "The server owner cannot be removed from their server"
                };
                return Err(Problem::with_message(ErrorCode::OwnerImmune, message).into());
            }
            let removal =
                if leaving { Removal::Leave } else { Removal::Kick { by: actor.user_id } };
            conn.remove_member(server_id, user_id, removal, now).map_err(member_not_found)
        })
        .await?;
    state.previews.member_left(server_id);
    Ok(HttpResponse::NoContent().finish())
}

/// The server's owner.
pub(super) fn server_owner(
    conn: &mut invite_store::DbConnection,
    server_id: Uuid,
) -> invite_store::StoreResult<Uuid> {
    use invite_store::repo::ServerRepository;
    Ok(conn.find_server(server_id)?.ok_or_else(|| Problem::of(ErrorCode::ServerNotFound))?.owner_id)
}

/// Members who joined with an invite, in join order (`MANAGE_SERVER`).
#[utoipa::path(get, path = "/servers/{server_id}/invites/{invite_id}/members", tag = "members", security(("bearer" = [])),
    params(("server_id" = Uuid, Path, description = "The server"), ("invite_id" = Uuid, Path, description = "The invite"), AfterQuery), responses(
        (status = 200, description = "Members", body = [MemberDto]),
        (status = 403, description = "`MISSING_PERMISSION`", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND` or `INVITE_NOT_FOUND`", body = ErrorBody),
    ))]
pub(crate) async fn joined_with(
    state: web::Data<AppState>,
    AuthUser(actor): AuthUser,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<AfterQuery>,
) -> ApiResult<HttpResponse> {
    let (server_id, invite_id) = path.into_inner();
    let AfterQuery { limit, after } = query.into_inner();
    let members = state
        .db
        .run(move |conn| {
            member_standing(conn, server_id, actor.user_id)?.require(Requirement::ManageServer)?;
            let limit = PageLimit::parse(limit, DEFAULT_PAGE, MAX_PAGE)?;
            // Revoked invites count: who joined with them stays worth knowing.
            conn.find_invite(invite_id)?
                .filter(|invite| invite.server_id == server_id)
                .ok_or_else(|| Problem::of(ErrorCode::InviteNotFound))?;
            conn.members_joined_with(invite_id, after, limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(members.into_iter().map(MemberDto::from).collect::<Vec<_>>()))
}
