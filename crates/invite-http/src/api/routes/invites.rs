//! Invites: create, list, edit and revoke (server- and channel-scoped), preview and accept.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use invite_core::code::CodeRef;
use invite_core::invite::{CreateInviteRequest, UpdateInviteRequest};
use invite_core::redeem::{PreviewRefused, RedemptionRefused};
use invite_core::undo::UndoInviteRequest;
use invite_core::{ErrorCode, Problem};
use invite_ops::invites::Place;
use invite_store::models::Invite;
use invite_store::repo::{
    CreatedInvite, JoinResponseTemplate, Keyed, RecordedResponse, Redemption,
};
use serde::Deserialize;
use uuid::Uuid;

use invite_runtime::analytics::Analytics;
use invite_runtime::door::Door;
use invite_runtime::metrics::Metrics;
use invite_runtime::preview_cache::PreviewCache;

use super::common::{Caller, app_data, json_list};
use crate::api::error::{ApiError, ApiResult, ErrorBody, ready_extractor};
use crate::api::extract::{JsonBody, etag, if_match};
use crate::api::idempotency::{IdempotencyKey, render, respond};
use crate::api::wire::Links;
use crate::guard::auth::AuthUser;
use crate::guard::limiter::Limiter;
use crate::server::random::RandomFactory;

routes![
    create_in_server,
    list_in_server,
    update,
    revoke,
    create_in_channel,
    list_in_channel,
    preview,
    revoke_by_code,
    accept,
    undo
];

/// The refusal of a revocation whose `If-Match` names another version.
#[derive(utoipa::IntoResponses)]
#[response(status = 412, description = "`PRECONDITION_FAILED`")]
pub(crate) struct PreconditionFailed(
    #[expect(dead_code, reason = "documents the body; `ApiError` writes it")] ErrorBody<'static>,
);

/// `?channel_id=&limit=&before=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only invites to this channel.
    channel_id: Option<Uuid>,
    /// Page size (1-1000, default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only invites older than this one (its id).
    before: Option<Uuid>,
}

/// `?limit=&before=` for a channel's invites.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Page size (1-1000, default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only invites older than this one (its id).
    before: Option<Uuid>,
}

/// `?with_counts=&with_expiration=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PreviewQuery {
    /// Adds `approximate_member_count` and `approximate_presence_count`.
    #[serde(default)]
    with_counts: bool,
    /// Accepted for Fluxer's clients, which send it; `expires_at` is always included.
    #[serde(default)]
    #[expect(dead_code, reason = "read only so that Fluxer's clients are not refused")]
    with_expiration: bool,
}

fn invite_response(
    mut builder: actix_web::HttpResponseBuilder,
    invite: &Invite,
    links: &Links,
) -> HttpResponse {
    builder
        .insert_header(etag(invite.version))
        .json(crate::api::wire::invite(invite, links.public_url()))
}

/// Creates an invite (`CREATE_INVITES`). `unique: false` returns an equal active invite of the
/// caller's with 200 instead of creating one.
#[utoipa::path(post, path = "/servers/{server_id}/invites", tag = "invites", security(("bearer" = [])),
    params(super::common::ServerPath, super::common::IdempotencyHeader), request_body(content = Option<CreateInviteRequest>, description = "Absent or empty: `{}`"), responses(
        CreateAnswers,
        (status = 400, description = "A rule of the request (`VALIDATION_ERROR`, for `grant_permissions`, `allowed_user_ids` and `requires_approval` a wrong type too), `UNKNOWN_CHANNEL`, `MAX_INVITES_REACHED`, malformed input", body = ErrorBody),
        super::common::GrantRefused, super::common::ServerNotFound,
    ))]
pub(crate) async fn create_in_server(
    creating: Creating,
    req: HttpRequest,
    path: web::Path<Uuid>,
    key: IdempotencyKey,
    JsonBody(request): JsonBody<CreateInviteRequest>,
) -> ApiResult<HttpResponse> {
    creating.create(&req, key, request, Place::Server(path.into_inner())).await
}

/// Creates an invite to a channel (`CREATE_INVITES` in its server); same body as for servers.
#[utoipa::path(post, path = "/channels/{channel_id}/invites", tag = "invites", security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "The channel"), super::common::IdempotencyHeader), request_body(content = Option<CreateInviteRequest>, description = "Absent or empty: `{}`"), responses(
        CreateAnswers,
        (status = 400, description = "A rule of the request (`VALIDATION_ERROR`, for `grant_permissions`, `allowed_user_ids` and `requires_approval` a wrong type too), `MAX_INVITES_REACHED`, malformed input", body = ErrorBody),
        (status = 404, description = "`CHANNEL_NOT_FOUND`: unknown, or in a server the caller is not in", body = ErrorBody),
        super::common::GrantRefused,
    ))]
pub(crate) async fn create_in_channel(
    creating: Creating,
    req: HttpRequest,
    path: web::Path<Uuid>,
    key: IdempotencyKey,
    JsonBody(request): JsonBody<CreateInviteRequest>,
) -> ApiResult<HttpResponse> {
    creating.create(&req, key, request, Place::Channel(path.into_inner())).await
}

/// The answers of a creation that both of its paths give: the invite made, an equal one
/// found, or the `create` bucket empty.
#[derive(utoipa::IntoResponses)]
#[expect(dead_code, reason = "documents the bodies; `create` writes them")]
enum CreateAnswers {
    /// The invite made.
    #[response(status = 201, description = "Created (a replay of an `Idempotency-Key` carries `Idempotent-Replayed: true`)", headers(("ETag" = String, description = "The invite's version, quoted")))]
    Created(invite_api::Invite),
    /// An equal active invite of the caller's.
    #[response(status = 200, description = "`unique: false` found an equal active invite", headers(("ETag" = String, description = "The invite's version, quoted")))]
    Found(invite_api::Invite),
    /// The `create` bucket is empty.
    #[response(status = 429, description = "`RATE_LIMITED`: the `create` bucket is empty; retry after `Retry-After` seconds. Every response of this operation carries `X-RateLimit-Limit`, `-Remaining`, `-Reset-After` and `-Bucket`", headers(("Retry-After" = u64, description = "Seconds to wait")))]
    RateLimited(crate::api::error::RateLimitedBody<'static>),
}

/// What creating an invite works with, whichever path named the server: the caller, and the
/// service's rate limits, links and code randomness.
pub(crate) struct Creating {
    caller: Caller,
    limiter: web::Data<Limiter>,
    links: web::Data<Links>,
    random: web::Data<RandomFactory>,
}

ready_extractor!(Creating, creating);

fn creating(req: &HttpRequest, payload: &mut Payload) -> Result<Creating, ApiError> {
    Ok(Creating {
        limiter: app_data(req)?,
        links: app_data(req)?,
        random: app_data(req)?,
        caller: Caller::from_request(req, payload).into_inner()?,
    })
}

impl Creating {
    /// Creates the invite: the rate limit is per user and server, so a channel-scoped path
    /// first finds the channel's server.
    async fn create(
        &self,
        req: &HttpRequest,
        key: IdempotencyKey,
        request: CreateInviteRequest,
        place: Place,
    ) -> ApiResult<HttpResponse> {
        let door = self.caller.door();
        if self.limiter.enabled() {
            let server_id = match place {
                Place::Server(server_id) => server_id,
                Place::Channel(_) => {
                    door.read(move |conn| invite_ops::invites::server_of(conn, place)).await?
                }
            };
            let user_id = self.caller.user_id();
            self.limiter.limit(req, |limits| limits.create(user_id, server_id))?;
        }
        let ctx = self.caller.ctx();
        let random = RandomFactory::clone(&self.random);
        let public_url = self.links.public_url().to_owned();
        let (group, lock_order) = invite_ops::invites::create_group(
            place,
            door.pool().backend(),
            door.write_groups().creates,
        );
        let answer = door
            .change_keyed_grouped(
                group,
                lock_order,
                key.claim(),
                move |conn| {
                    let request = request.clone();
                    invite_ops::invites::create(conn, &ctx, place, request, random().as_mut())
                },
                move |created| {
                    let (status, invite) = match created {
                        CreatedInvite::Created(invite) => (StatusCode::CREATED, invite),
                        CreatedInvite::Reused(invite) => (StatusCode::OK, invite),
                    };
                    render(
                        status,
                        &crate::api::wire::invite(invite, &public_url),
                        Some(invite.version),
                    )
                },
            )
            .await?;
        Ok(respond(answer))
    }
}

/// The server's invites, newest first, expired and used-up ones included, revoked and vanity
/// ones left out (`CREATE_INVITES`).
#[utoipa::path(get, path = "/servers/{server_id}/invites", tag = "invites", security(("bearer" = [])),
    params(super::common::ServerPath, ListQuery), responses(
        (status = 200, description = "Invites (limit 1-1000, default 1000)", body = [invite_api::Invite]),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn list_in_server(
    links: web::Data<Links>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let ListQuery { channel_id, limit, before } = query.into_inner();
    let query = invite_ops::invites::ListQuery { channel_id, limit, before };
    list(&caller, &links, Place::Server(path.into_inner()), query).await
}

/// The channel's invites, newest first (`CREATE_INVITES` in its server).
#[utoipa::path(get, path = "/channels/{channel_id}/invites", tag = "invites", security(("bearer" = [])),
    params(("channel_id" = Uuid, Path, description = "The channel"), PageQuery), responses(
        (status = 200, description = "Invites (limit 1-1000, default 1000)", body = [invite_api::Invite]),
        (status = 404, description = "`CHANNEL_NOT_FOUND`", body = ErrorBody),
        super::common::MissingPermission,
    ))]
pub(crate) async fn list_in_channel(
    links: web::Data<Links>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let PageQuery { limit, before } = query.into_inner();
    let query = invite_ops::invites::ListQuery { channel_id: None, limit, before };
    list(&caller, &links, Place::Channel(path.into_inner()), query).await
}

/// The invites of a server or a channel, whichever path named it.
async fn list(
    caller: &Caller,
    links: &Links,
    place: Place,
    query: invite_ops::invites::ListQuery,
) -> ApiResult<HttpResponse> {
    // A list is looked at, not acted on: a standby may serve it.
    let invites = caller
        .read_stale(move |conn, ctx| invite_ops::invites::list(conn, ctx, place, query))
        .await?;
    Ok(json_list(&invites, |invite| crate::api::wire::invite(invite, links.public_url())))
}

/// Edits an invite's limits; a new expiry counts from now. `CREATE_INVITES` for one's own,
/// `MANAGE_SERVER` for others'. `If-Match` makes the edit conditional on the version.
#[utoipa::path(patch, path = "/servers/{server_id}/invites/{invite_id}", tag = "invites", security(("bearer" = [])),
    params(super::common::ServerPath, ("invite_id" = Uuid, Path, description = "The invite"), super::common::IfMatchHeader),
    request_body(content = Option<UpdateInviteRequest>, description = "Absent or `{}`: no change"), responses(
        (status = 200, description = "The invite after the change", body = invite_api::Invite, headers(("ETag" = String, description = "The invite's version, quoted"))),
        (status = 400, description = "`VALIDATION_ERROR` (e.g. max_uses below uses), `VANITY_INVITE`, malformed input", body = ErrorBody),
        super::common::InviteNotFound,
        (status = 412, description = "`PRECONDITION_FAILED`: the version changed", body = ErrorBody),
        super::common::GrantRefused,
    ))]
pub(crate) async fn update(
    links: web::Data<Links>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    JsonBody(request): JsonBody<UpdateInviteRequest>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    let expected = if_match(&req);
    let invite = caller
        .change(move |conn, ctx| invite_ops::invites::update(conn, ctx, ids, &request, expected))
        .await?;
    Ok(invite_response(HttpResponse::Ok(), &invite, &links))
}

/// Revokes an invite (a soft delete: its code is never reissued). `CREATE_INVITES` for one's
/// own, `MANAGE_SERVER` for others'.
#[utoipa::path(delete, path = "/servers/{server_id}/invites/{invite_id}", tag = "invites", security(("bearer" = [])),
    params(super::common::ServerPath, ("invite_id" = Uuid, Path, description = "The invite"), super::common::IfMatchHeader), responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "`VANITY_INVITE`, or a malformed id", body = ErrorBody),
        (status = 404, description = "`SERVER_NOT_FOUND`, or `INVITE_NOT_FOUND` (unknown, revoked, another server's)", body = ErrorBody),
        PreconditionFailed,
        super::common::MissingPermission,
    ))]
pub(crate) async fn revoke(
    req: HttpRequest,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    let expected = if_match(&req);
    caller
        .change_then_no_content(move |conn, ctx| {
            invite_ops::invites::revoke(conn, ctx, ids, expected)
        })
        .await
}

/// Undoes a leaked link (`MANAGE_SERVER` and `KICK_MEMBERS`): revokes the invite (if it is not
/// already) and removes everyone who joined through it, or through it since `since`, except the
/// owner and members whose permissions were set after they joined, who are counted in `kept`.
/// Repeating it removes nobody more. A join racing it either commits first and is removed, or is
/// refused.
#[utoipa::path(post, path = "/servers/{server_id}/invites/{invite_id}/undo", tag = "invites", security(("bearer" = [])),
    params(super::common::ServerPath, ("invite_id" = Uuid, Path, description = "The invite (a revoked one too)"), super::common::IdempotencyHeader),
    request_body(content = Option<UndoInviteRequest>, description = "Absent or empty: `{}`, everyone who joined through it"), responses(
        (status = 200, description = "Revoked, and who joined through it removed (a replay of an `Idempotency-Key` carries `Idempotent-Replayed: true`)", body = invite_api::InviteUndone),
        (status = 400, description = "`VALIDATION_ERROR` (`since` is not an RFC 3339 time), `VANITY_INVITE`, malformed input", body = ErrorBody),
        super::common::InviteRefusals,
    ))]
pub(crate) async fn undo(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    key: IdempotencyKey,
    JsonBody(request): JsonBody<UndoInviteRequest>,
) -> ApiResult<HttpResponse> {
    let ctx = caller.ctx();
    let ids = path.into_inner();
    let answer = caller
        .door()
        .change_keyed(
            key.claim(),
            move |conn| invite_ops::invites::undo(conn, &ctx, ids, &request),
            |undone| render(StatusCode::OK, &crate::api::wire::invite_undone(undone), None),
        )
        .await?;
    Ok(respond(answer))
}

/// Revokes an invite by its code: its creator (even after leaving the server), or
/// `MANAGE_SERVER` in its server. To anyone else who is not a member it answers as for a code
/// that does not exist.
#[utoipa::path(delete, path = "/invites/{code}", tag = "invites", security(("bearer" = [])),
    params(super::common::CodePath, super::common::IfMatchHeader), responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "`VANITY_INVITE`", body = ErrorBody),
        (status = 403, description = "`MISSING_PERMISSION`: a member of the invite's server without `MANAGE_SERVER`", body = ErrorBody),
        (status = 404, description = "`INVITE_NOT_FOUND`: unknown, revoked, or of a server the caller is not in (the same body for each); charges the client address's `unknown-code` bucket", body = ErrorBody),
        PreconditionFailed,
        (status = 429, description = "`RATE_LIMITED`: the `unknown-code` bucket is empty; retry after `Retry-After` seconds", body = crate::api::error::RateLimitedBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(crate) async fn revoke_by_code(
    limiter: web::Data<Limiter>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    limiter.not_scanning(&req)?;
    // Every "not found" here charges the scanning bucket: an unknown code, a revoked one, and
    // a code of a server the caller is not in, which must not be told apart.
    let not_found = |error: ApiError| match error.code() {
        ErrorCode::InviteNotFound => limiter.unknown_code(&req, error),
        _ => error,
    };
    let code =
        CodeRef::parse(&path).ok_or_else(|| not_found(ApiError::of(ErrorCode::InviteNotFound)))?;
    let expected = if_match(&req);
    caller
        .change(move |conn, ctx| invite_ops::invites::revoke_by_code(conn, ctx, &code, expected))
        .await
        .map_err(not_found)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Public preview of an invite someone could still accept; no token needed.
#[utoipa::path(get, path = "/invites/{code}", tag = "invites",
    params(super::common::CodePath, PreviewQuery), responses(
        (status = 200, description = "The preview", body = invite_api::Preview),
        (status = 404, description = "\"Invite not found or has expired\", with `INVITE_NOT_FOUND`, `INVITE_REVOKED`, `INVITE_EXPIRED` or `INVITE_MAXED_OUT`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`: the `preview` (or, after many unknown codes, `unknown-code`) bucket is empty; retry after `Retry-After` seconds. Every response of this operation carries `X-RateLimit-Limit`, `-Remaining`, `-Reset-After` and `-Bucket`", body = crate::api::error::RateLimitedBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(crate) async fn preview(
    door: web::Data<Door>,
    limiter: web::Data<Limiter>,
    previews: web::Data<PreviewCache>,
    analytics: web::Data<Analytics>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PreviewQuery>,
) -> ApiResult<HttpResponse> {
    let addr = limiter.client(&req);
    limiter.limit(&req, |limits| limits.preview(addr))?;
    // A code that does not exist (a malformed one cannot) charges the scanning bucket.
    let unknown = || -> ApiResult<HttpResponse> {
        limiter.limit(&req, |limits| limits.unknown_code(addr))?;
        Err(ApiError::Preview(PreviewRefused::NotFound))
    };
    let Some(code) = CodeRef::parse(&path) else { return unknown() };
    let Some(found) = invite_runtime::preview_cache::lookup(&door, &previews, &code).await? else {
        return unknown();
    };
    let now = door.now();
    let verdict =
        invite_ops::invites::preview_verdict(Some(&found.status), found.invites_paused, None, now);
    verdict.shown.map_err(ApiError::Preview)?;
    analytics.previewed(found.invite_id, found.server_id);
    let mut preview =
        crate::api::wire::preview(code.as_str(), &found, previews.member_count(&found), now);
    if query.with_counts {
        preview.approximate_member_count = Some(preview.member_count);
        // Members with a live gateway session on any instance, as cached with the preview.
        preview.approximate_presence_count = Some(found.presence_count);
    }
    Ok(HttpResponse::Ok().json(preview))
}

/// Joins the invite's server. Atomic: an invite admits exactly as many people as it allows.
#[utoipa::path(post, path = "/invites/{code}/accept", tag = "invites", security(("bearer" = [])),
    params(super::common::CodePath, super::common::IdempotencyHeader), responses(
        (status = 201, description = "Joined (a replay of an `Idempotency-Key` carries `Idempotent-Replayed: true`)", body = invite_api::Joined),
        (status = 202, description = "The invite requires approval: a join request was filed, or the caller's pending request for the server is answered again. No use is taken", body = invite_api::JoinRequestFiled),
        (status = 400, description = "`INVITE_EXPIRED` or `INVITE_MAXED_OUT`", body = ErrorBody),
        (status = 403, description = "`BANNED`, `INVITE_NOT_FOR_YOU` (the invite names its users, and the caller is not one) or `INVITES_PAUSED`", body = ErrorBody),
        (status = 404, description = "`INVITE_NOT_FOUND` (which charges the client address's `unknown-code` bucket) or `INVITE_REVOKED` (\"Invite not found\")", body = ErrorBody),
        (status = 409, description = "`ALREADY_MEMBER`", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_JOIN_REQUESTS`: the server holds 1000 pending join requests. Or `RATE_LIMITED`: the `accept` bucket (or, for a code that does not exist, `unknown-code`) is empty; retry after `Retry-After` seconds. Every response of this operation carries `X-RateLimit-Limit`, `-Remaining`, `-Reset-After` and `-Bucket`", body = crate::api::error::RateLimitedBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(crate) async fn accept(
    door: web::Data<Door>,
    limiter: web::Data<Limiter>,
    metrics: web::Data<Metrics>,
    req: HttpRequest,
    AuthUser(actor): AuthUser,
    path: web::Path<String>,
    key: IdempotencyKey,
) -> ApiResult<HttpResponse> {
    limiter.limit(&req, |limits| limits.accept(actor.user_id))?;
    // A code that does not exist charges the scanning bucket once the join has said so: the
    // join itself stays one statement, and a code that exists costs nothing more.
    let not_found =
        || limiter.unknown_code(&req, Problem::from(RedemptionRefused::NotFound).into());
    let code = CodeRef::parse(&path).ok_or_else(not_found)?;
    let recording = key.claim().map(|claim| (claim, &JOINED));
    let analytics = super::common::app_data::<Analytics>(&req)?;
    match invite_runtime::accept::redeem(&door, (&metrics, &analytics), actor, code, recording)
        .await?
    {
        Keyed::Replay(recorded) => Ok(respond(Keyed::Replay(recorded))),
        Keyed::Fresh(Redemption::Joined(joined)) => Ok(respond(Keyed::Fresh(RecordedResponse {
            status: JOINED.status,
            body: JOINED.render(joined.member.server_id),
            etag: None,
        }))),
        // The invite requires approval: 202 with the request, filed now or pending already.
        // Not recorded under the key: a retry answers the same pending request anyway.
        Keyed::Fresh(Redemption::Filed(filed)) => {
            Ok(HttpResponse::Accepted().json(invite_api::JoinRequestFiled::new(filed.request)))
        }
        Keyed::Fresh(Redemption::Refused(RedemptionRefused::NotFound)) => Err(not_found()),
        Keyed::Fresh(Redemption::Refused(reason)) => Err(Problem::from(reason).into()),
    }
}

/// The response to a join, `{"message":"Joined server","server_id":"..."}`
/// ([`invite_api::Joined`]), as the store records it with the join itself (in the PostgreSQL
/// accept's single statement).
const JOINED: JoinResponseTemplate<'static> = JoinResponseTemplate {
    status: 201,
    before: r#"{"message":"Joined server","server_id":""#,
    after: r#""}"#,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The template the store fills in is the wire type's JSON, to the byte.
    #[test]
    fn the_join_template_is_the_joined_body() {
        let server_id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let joined = serde_json::to_string(&invite_api::Joined::new(server_id)).unwrap();
        assert_eq!(JOINED.render(server_id), joined);
    }
}
