//! Webhooks and the events endpoint (contract section 9), for integrators who are told or who
//! poll.

use actix_web::{HttpResponse, web};
use invite_core::Problem;
use invite_core::webhook::CreateWebhookRequest;
use invite_store::repo::{StoredEvent, Webhook};
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use uuid::Uuid;

use super::common::{Caller, json_list};
use crate::api::error::{ApiResult, ErrorBody};
use crate::api::extract::JsonBody;
use invite_runtime::webhooks::Deliverer;

routes![events, create, list, delete, deliveries];

/// The refusals of what is done to one of a server's webhooks.
#[derive(utoipa::IntoResponses)]
#[expect(dead_code, reason = "documents the bodies; `ApiError` writes them")]
pub(crate) enum WebhookRefusals {
    /// The caller lacks `MANAGE_SERVER`.
    #[response(status = 403, description = "`MISSING_PERMISSION`")]
    MissingPermission(ErrorBody<'static>),
    /// No such webhook in a server the caller is in.
    #[response(status = 404, description = "`SERVER_NOT_FOUND` or `WEBHOOK_NOT_FOUND`")]
    NotFound(ErrorBody<'static>),
}

/// `?after=&limit=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// Only events after this `seq` (0, the default, is from the start of what is kept: 7 days).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Page size (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// An event as the events endpoint shows it.
fn event(event: &StoredEvent) -> invite_api::Event {
    invite_api::Event {
        seq: event.seq,
        kind: event.kind(),
        server_id: event.server_id(),
        data: event.event.payload(),
        created_at: event.created_at,
    }
}

/// The server's events after `after`, oldest first (`MANAGE_SERVER`): an integrator that pages
/// with the last `seq` it saw misses none and sees none twice.
#[utoipa::path(get, path = "/servers/{server_id}/events", tag = "events", security(("bearer" = [])),
    params(super::common::ServerPath, EventsQuery), responses(
        (status = 200, description = "Events, oldest first", body = [invite_api::Event]),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn events(
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<EventsQuery>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let EventsQuery { after, limit } = query.into_inner();
    let events = caller
        .read(move |conn, ctx| {
            invite_ops::events::server_events(conn, ctx, server_id, (after, limit))
        })
        .await?;
    Ok(json_list(&events, event))
}

/// A webhook as the API shows it; its secret only when `show_secret`.
fn webhook(webhook: Webhook, show_secret: bool) -> invite_api::Webhook {
    invite_api::Webhook {
        id: webhook.id,
        server_id: webhook.server_id,
        url: webhook.url,
        events: webhook.event_types,
        secret: show_secret.then(|| webhook.secret.expose_secret().to_owned()),
        enabled: webhook.disabled.is_none(),
        disabled_reason: webhook.disabled.as_ref().map(|(_, reason)| reason.clone()),
        disabled_at: webhook.disabled.map(|(at, _)| at),
        delivered_up_to: webhook.cursor,
        failed_attempts: webhook.attempts,
        next_attempt_at: webhook.next_attempt_at,
        created_at: webhook.created_at,
    }
}

/// Registers a webhook (`MANAGE_SERVER`, at most ten per server): the server's events from now
/// on are posted to `url`, signed with the secret the answer shows, once.
#[utoipa::path(post, path = "/servers/{server_id}/webhooks", tag = "events", security(("bearer" = [])),
    params(super::common::ServerPath, super::common::IdempotencyHeader),
    request_body = CreateWebhookRequest, responses(
        (status = 201, description = "Registered; `secret` is shown this once", body = invite_api::Webhook),
        (status = 400, description = "`VALIDATION_ERROR`: not an http(s) URL, a private address, an unknown event type, or ten webhooks already", body = ErrorBody),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn create(
    deliverer: web::Data<Deliverer>,
    caller: Caller,
    path: web::Path<Uuid>,
    key: crate::api::idempotency::IdempotencyKey,
    JsonBody(request): JsonBody<CreateWebhookRequest>,
) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let ctx = caller.ctx();
    let door = caller.door();
    // Membership and permission come first, so a stranger learns nothing about URLs.
    let checker = ctx.clone();
    door.read(move |conn| invite_ops::webhooks::may_register(conn, &checker, server_id)).await?;
    let target = request.validate()?;
    invite_runtime::webhooks::check_target(&target.endpoint, deliverer.allow_private())
        .await
        .map_err(Problem::validation)?;
    let secret = invite_runtime::webhooks::new_secret();
    let answer = door
        .change_keyed(
            key.claim(),
            move |conn| invite_ops::webhooks::create(conn, &ctx, server_id, &target, &secret),
            |created| {
                crate::api::idempotency::render(
                    actix_web::http::StatusCode::CREATED,
                    &webhook(created.clone(), true),
                    None,
                )
            },
        )
        .await?;
    Ok(crate::api::idempotency::respond(answer))
}

/// The server's webhooks, oldest first, without their secrets (`MANAGE_SERVER`).
#[utoipa::path(get, path = "/servers/{server_id}/webhooks", tag = "events", security(("bearer" = [])),
    params(super::common::ServerPath), responses(
        (status = 200, description = "Webhooks", body = [invite_api::Webhook]),
        super::common::MissingPermission, super::common::ServerNotFound,
    ))]
pub(crate) async fn list(caller: Caller, path: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    let server_id = path.into_inner();
    let webhooks =
        caller.read(move |conn, ctx| invite_ops::webhooks::list(conn, ctx, server_id)).await?;
    Ok(json_list(webhooks, |listed| webhook(listed, false)))
}

/// Deletes a webhook and its delivery log (`MANAGE_SERVER`).
#[utoipa::path(delete, path = "/servers/{server_id}/webhooks/{webhook_id}", tag = "events", security(("bearer" = [])),
    params(super::common::ServerPath, ("webhook_id" = Uuid, Path, description = "The webhook")), responses(
        (status = 204, description = "Deleted"),
        WebhookRefusals,
    ))]
pub(crate) async fn delete(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    caller
        .change_then_no_content(move |conn, ctx| invite_ops::webhooks::delete(conn, ctx, ids))
        .await
}

/// A webhook's latest deliveries, newest first, with its state (`MANAGE_SERVER`).
#[utoipa::path(get, path = "/servers/{server_id}/webhooks/{webhook_id}/deliveries", tag = "events", security(("bearer" = [])),
    params(super::common::ServerPath, ("webhook_id" = Uuid, Path, description = "The webhook")), responses(
        (status = 200, description = "The webhook and its deliveries", body = invite_api::Deliveries),
        WebhookRefusals,
    ))]
pub(crate) async fn deliveries(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let ids = path.into_inner();
    let (hook, deliveries) =
        caller.read(move |conn, ctx| invite_ops::webhooks::deliveries(conn, ctx, ids)).await?;
    Ok(HttpResponse::Ok()
        .json(invite_api::Deliveries { webhook: webhook(hook, false), deliveries }))
}
