//! Webhooks (contract section 9): registered, listed and deleted by `MANAGE_SERVER`. Where a
//! webhook's host points is checked by the caller, which resolves it (this layer does no I/O
//! beyond the database).

use invite_core::ErrorCode;
use invite_core::permissions::Requirement;
use invite_core::webhook::{WebhookTarget, check_webhook_count};
use invite_store::repo::{Delivery, NewWebhook, Webhook};
use invite_store::{DbConnection, write_transaction};
use secrecy::SecretString;
use uuid::Uuid;

use crate::{Ctx, OpError, OpResult, Outcome, member_standing};

/// Deliveries one listing shows.
pub const RECENT_DELIVERIES: i64 = 50;

/// Whether the caller may register webhooks on the server (`MANAGE_SERVER`): asked before the
/// target's host is resolved, so that a stranger learns nothing about URLs; [`create`] asks again
/// in its transaction.
pub fn may_register(conn: &mut DbConnection, ctx: &Ctx, server_id: Uuid) -> OpResult<()> {
    member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
    Ok(())
}

/// Registers a webhook that will receive the server's events from now on, signed with
/// `secret` (`MANAGE_SERVER`; at most ten per server).
pub fn create(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    target: &WebhookTarget,
    secret: &SecretString,
) -> OpResult<Outcome<Webhook>> {
    write_transaction(conn, |conn| {
        member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
        // Two registrations at nine must not both pass: they take turns on the server's row.
        conn.lock_server(server_id)?;
        check_webhook_count(conn.count_webhooks(server_id)?)?;
        let cursor = conn.latest_seq()?;
        let new = NewWebhook {
            server_id,
            url: &target.url,
            event_types: &target.events,
            secret,
            created_by: ctx.user_id(),
            now: ctx.now,
        };
        Ok(Outcome::quiet(conn.create_webhook(&new, cursor)?))
    })
}

/// The server's webhooks, oldest first (`MANAGE_SERVER`).
pub fn list(conn: &mut DbConnection, ctx: &Ctx, server_id: Uuid) -> OpResult<Vec<Webhook>> {
    member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
    Ok(conn.list_webhooks(server_id)?)
}

/// Deletes a webhook of the server, with its deliveries (`MANAGE_SERVER`).
pub fn delete(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, webhook_id): (Uuid, Uuid),
) -> OpResult<Outcome<()>> {
    member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
    if conn.delete_webhook(server_id, webhook_id)? {
        Ok(Outcome::quiet(()))
    } else {
        Err(OpError::refused(ErrorCode::WebhookNotFound))
    }
}

/// A webhook of the server and its latest deliveries, newest first (`MANAGE_SERVER`).
pub fn deliveries(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, webhook_id): (Uuid, Uuid),
) -> OpResult<(Webhook, Vec<Delivery>)> {
    member_standing(conn, server_id, ctx.user_id())?.require(Requirement::ManageServer)?;
    let webhook = conn
        .find_webhook(webhook_id)?
        .filter(|webhook| webhook.server_id == server_id)
        .ok_or_else(|| OpError::refused(ErrorCode::WebhookNotFound))?;
    let deliveries = conn.deliveries(webhook_id, RECENT_DELIVERIES)?;
    Ok((webhook, deliveries))
}
