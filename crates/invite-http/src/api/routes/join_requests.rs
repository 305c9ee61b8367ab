//! Join approval (contract section 11): a server's join requests, decided by members with
//! `KICK_MEMBERS` or `MANAGE_SERVER`, and the caller's own. Filing one is an accept's answer
//! (202, see `invites::accept`).

use actix_web::{HttpResponse, web};
use invite_core::approval::JoinRequestStatus;
use serde::Deserialize;
use uuid::Uuid;

use super::common::{Caller, json_list};
use crate::api::error::{ApiResult, ErrorBody};

routes![list, approve, deny, mine, withdraw];

/// `?status=` of a server's join requests.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatusQuery {
    /// `pending` (the default), `approved`, `denied` or `withdrawn`; anything else is 400
    /// `VALIDATION_ERROR`.
    #[param(value_type = Option<JoinRequestStatus>)]
    status: Option<String>,
}

/// `{server_id}` and `{request_id}`, in the path of a server's join request.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct RequestPath {
    /// The server
    #[expect(dead_code, reason = "read by each handler's `web::Path`")]
    server_id: Uuid,
    /// The join request
    #[expect(dead_code, reason = "read by each handler's `web::Path`")]
    request_id: Uuid,
}

/// The refusals of a decision on a join request.
#[derive(utoipa::IntoResponses)]
#[expect(dead_code, reason = "documents the bodies; `ApiError` writes them")]
pub(crate) enum DecisionRefusals {
    /// The caller may not decide.
    #[response(
        status = 403,
        description = "`MISSING_PERMISSION`: neither Kick Members nor Manage Server"
    )]
    Forbidden(ErrorBody<'static>),
    /// Not a request of this server.
    #[response(
        status = 404,
        description = "`JOIN_REQUEST_NOT_FOUND` (a request of another server, or none), or `SERVER_NOT_FOUND`"
    )]
    NotFound(ErrorBody<'static>),
    /// Decided already.
    #[response(
        status = 409,
        description = "`JOIN_REQUEST_NOT_PENDING`: approved, denied or withdrawn already"
    )]
    NotPending(ErrorBody<'static>),
}

/// The server's join requests in a status, oldest first (`KICK_MEMBERS` or `MANAGE_SERVER`).
#[utoipa::path(get, path = "/servers/{server_id}/join-requests", tag = "join-requests", security(("bearer" = [])),
    params(super::common::ServerPath, StatusQuery), responses(
        (status = 200, description = "The requests, oldest first", body = [invite_api::JoinRequest]),
        (status = 400, description = "`VALIDATION_ERROR`: an unknown `status`", body = ErrorBody),
        (status = 403, description = "`MISSING_PERMISSION`: neither Kick Members nor Manage Server", body = ErrorBody),
        super::common::ServerNotFound,
    ))]
pub(crate) async fn list(
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<StatusQuery>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    // The parameter's rule needs no database.
    let status = JoinRequestStatus::parse_filter(query.status.as_deref())?;
    let requests = caller
        .read(move |conn, ctx| invite_ops::join_requests::list(conn, ctx, server_id, status))
        .await?;
    Ok(json_list(requests, std::convert::identity))
}

/// Approves a pending join request (`KICK_MEMBERS` or `MANAGE_SERVER`): the user joins through
/// its invite, the use counted within `max_uses` in the same transaction (with what it grants,
/// counted for raid protection, `MEMBER_JOIN` as any join). Audited `JoinRequestApprove`,
/// evented `JOIN_REQUEST_UPDATE`.
#[utoipa::path(post, path = "/servers/{server_id}/join-requests/{request_id}/approve", tag = "join-requests", security(("bearer" = [])),
    params(RequestPath), responses(
        (status = 200, description = "The request, `approved`", body = invite_api::JoinRequest),
        (status = 400, description = "The accept's refusal, and the request stays pending: `INVITE_EXPIRED` or `INVITE_MAXED_OUT`", body = ErrorBody),
        (status = 403, description = "The accept's refusal (`BANNED`, `INVITES_PAUSED`, `INVITE_NOT_FOR_YOU`), or `MISSING_PERMISSION`", body = ErrorBody),
        (status = 404, description = "`JOIN_REQUEST_NOT_FOUND`, `SERVER_NOT_FOUND`, or the accept's `INVITE_REVOKED` (the request stays pending)", body = ErrorBody),
        (status = 409, description = "`JOIN_REQUEST_NOT_PENDING`, or the accept's `ALREADY_MEMBER`", body = ErrorBody),
    ))]
pub(crate) async fn approve(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    let request =
        caller.change(move |conn, ctx| invite_ops::join_requests::approve(conn, ctx, ids)).await?;
    Ok(HttpResponse::Ok().json(request))
}

/// Denies a pending join request (`KICK_MEMBERS` or `MANAGE_SERVER`). Audited
/// `JoinRequestDeny`, evented `JOIN_REQUEST_UPDATE`.
#[utoipa::path(post, path = "/servers/{server_id}/join-requests/{request_id}/deny", tag = "join-requests", security(("bearer" = [])),
    params(RequestPath), responses(
        (status = 200, description = "The request, `denied`", body = invite_api::JoinRequest),
        DecisionRefusals,
    ))]
pub(crate) async fn deny(caller: Caller, path: web::Path<(Uuid, Uuid)>) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    let request =
        caller.change(move |conn, ctx| invite_ops::join_requests::deny(conn, ctx, ids)).await?;
    Ok(HttpResponse::Ok().json(request))
}

/// The caller's own join requests, of every server and status, oldest first.
#[utoipa::path(get, path = "/users/@me/join-requests", tag = "join-requests", security(("bearer" = [])),
    responses((status = 200, description = "The caller's requests, oldest first", body = [invite_api::JoinRequest])))]
pub(crate) async fn mine(caller: Caller) -> ApiResult<HttpResponse> {
    let requests = caller.read(invite_ops::join_requests::mine).await?;
    Ok(json_list(requests, std::convert::identity))
}

/// Withdraws one of the caller's own pending join requests (it stays, `withdrawn`). Evented
/// `JOIN_REQUEST_UPDATE`.
#[utoipa::path(delete, path = "/users/@me/join-requests/{request_id}", tag = "join-requests", security(("bearer" = [])),
    params(("request_id" = Uuid, Path, description = "The join request")), responses(
        (status = 204, description = "Withdrawn"),
        (status = 404, description = "`JOIN_REQUEST_NOT_FOUND`: none of the caller's", body = ErrorBody),
        (status = 409, description = "`JOIN_REQUEST_NOT_PENDING`", body = ErrorBody),
    ))]
pub(crate) async fn withdraw(caller: Caller, path: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    let request_id = path.into_inner();
    caller
        .change_then_no_content(move |conn, ctx| {
            invite_ops::join_requests::withdraw(conn, ctx, request_id)
        })
        .await
}
