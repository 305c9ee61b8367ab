//! Members: listing, permissions, leaving and kicking, and who joined with an invite.

use actix_web::{HttpResponse, web};
use invite_core::server::UpdateMemberRequest;
use invite_ops::{Ctx, OpResult};
use invite_store::DbConnection;
use invite_store::models::Member;
use uuid::Uuid;

use super::common::{AfterQuery, Caller, json_list};
use crate::api::error::{ApiResult, ErrorBody};
use crate::api::extract::JsonBody;

routes![list, update, remove, joined_with];

/// The refusal of a user who is not a member of the server, or of a server the caller is not in.
#[derive(utoipa::IntoResponses)]
#[response(status = 404, description = "`SERVER_NOT_FOUND` or `MEMBER_NOT_FOUND`")]
pub(crate) struct MemberNotFound(
    #[expect(dead_code, reason = "documents the body; `ApiError` writes it")] ErrorBody<'static>,
);

/// Members ordered by user id, with how each joined.
#[utoipa::path(get, path = "/servers/{server_id}/members", tag = "members", security(("bearer" = [])),
    params(super::common::ServerPath, AfterQuery), responses(
        (status = 200, description = "Members", body = [invite_api::Member]),
        super::common::ServerNotFound,
    ))]
pub(crate) async fn list(
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<AfterQuery>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let page = query.into_inner().page();
    members(&caller, move |conn, ctx| invite_ops::members::list(conn, ctx, server_id, page)).await
}

/// `200` with the members `read` finds. A list is looked at, not acted on: a standby may serve
/// it.
async fn members<F>(caller: &Caller, read: F) -> ApiResult<HttpResponse>
where
    F: Fn(&mut DbConnection, &Ctx) -> OpResult<Vec<Member>> + Send + Sync + 'static,
{
    let members = caller.read_stale(read).await?;
    Ok(json_list(members, crate::api::wire::member))
}

/// Replaces a member's extra permissions (`ADMINISTRATOR`); ends a temporary membership.
#[utoipa::path(patch, path = "/servers/{server_id}/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(super::common::ServerPath, ("user_id" = Uuid, Path, description = "The member")), request_body = UpdateMemberRequest, responses(
        (status = 200, description = "The member", body = invite_api::Member),
        MemberNotFound,
        super::common::MissingPermission,
    ))]
pub(crate) async fn update(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    JsonBody(request): JsonBody<UpdateMemberRequest>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    let member = caller
        .change(move |conn, ctx| invite_ops::members::update(conn, ctx, ids, &request))
        .await?;
    Ok(HttpResponse::Ok().json(crate::api::wire::member(member)))
}

/// Leaves (oneself) or kicks (`KICK_MEMBERS`); never the owner, since a server without its
/// owner could never be managed again.
#[utoipa::path(delete, path = "/servers/{server_id}/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(super::common::ServerPath, ("user_id" = Uuid, Path, description = "The member")), responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`MISSING_PERMISSION`, or `OWNER_IMMUNE`: the owner can neither leave nor be kicked", body = ErrorBody),
        MemberNotFound,
    ))]
pub(crate) async fn remove(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    caller
        .change_then_no_content(move |conn, ctx| invite_ops::members::remove(conn, ctx, ids))
        .await
}

/// Members who joined with an invite, in join order (`MANAGE_SERVER`).
#[utoipa::path(get, path = "/servers/{server_id}/invites/{invite_id}/members", tag = "members", security(("bearer" = [])),
    params(super::common::ServerPath, ("invite_id" = Uuid, Path, description = "The invite"), AfterQuery), responses(
        (status = 200, description = "Members", body = [invite_api::Member]),
        super::common::InviteNotFound,
        super::common::MissingPermission,
    ))]
pub(crate) async fn joined_with(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<AfterQuery>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    let page = query.into_inner().page();
    members(&caller, move |conn, ctx| {
        invite_ops::invites::members_joined_with(conn, ctx, ids, page)
    })
    .await
}
