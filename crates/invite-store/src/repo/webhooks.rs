//! Webhooks (contract section 9): registrations, their delivery state, and a log of deliveries.
//!
//! Delivery is in `seq` order per webhook: `cursor` is the last event delivered (or skipped as
//! not subscribed), and one instance at a time holds a webhook's lease to deliver the next. The
//! state is in the database, so a retry survives a restart, and a crashed instance's lease runs
//! out for another to take over.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use invite_core::event::EventType;
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use crate::connection::{DbConnection, on_each_backend, write_transaction};
use crate::error::{StoreError, StoreResult};
use crate::models::corrupt;
use crate::schema::{webhook_deliveries, webhooks};
use crate::sql_types::{Id, Json, Ts};

/// A registered webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Its id.
    pub id: Uuid,
    /// Its server.
    pub server_id: Uuid,
    /// Where events are posted.
    pub url: String,
    /// Which events.
    pub event_types: Vec<EventType>,
    /// The signing secret.
    pub secret: SecretString,
    /// Who registered it.
    pub created_by: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The last event delivered (or skipped as not subscribed).
    pub cursor: i64,
    /// Failed attempts at the next event.
    pub attempts: i32,
    /// When the next event first failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// When to try it again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was disabled, and why.
    pub disabled: Option<(DateTime<Utc>, String)>,
}

/// A webhook to register.
#[derive(Debug, Clone)]
pub struct NewWebhook<'a> {
    /// Its server.
    pub server_id: Uuid,
    /// Where events are posted (already checked: http(s), not private unless allowed).
    pub url: &'a str,
    /// Which events.
    pub event_types: &'a [EventType],
    /// The signing secret.
    pub secret: &'a SecretString,
    /// Who registers it.
    pub created_by: Uuid,
    /// When.
    pub now: DateTime<Utc>,
}

pub use invite_core::webhook::Delivery;

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Delivered (or nothing to deliver): the cursor moves to this `seq`.
    Delivered {
        /// The new cursor.
        cursor: i64,
    },
    /// Failed: try again at this time.
    Retry {
        /// Failed attempts so far at this event.
        attempts: i32,
        /// Since when it fails.
        failing_since: DateTime<Utc>,
        /// When to try again.
        next_attempt_at: DateTime<Utc>,
    },
    /// Failed for too long: the webhook is disabled, for this reason.
    Disable {
        /// Why.
        reason: String,
    },
}

// No `Debug`: it holds the secret as the column's text.
#[derive(Queryable, Selectable)]
#[diesel(table_name = webhooks)]
struct WebhookRow {
    id: Id,
    server_id: Id,
    url: String,
    event_types: Json,
    secret: String,
    created_by: Id,
    created_at: Ts,
    cursor: i64,
    attempts: i32,
    failing_since: Option<Ts>,
    next_attempt_at: Option<Ts>,
    disabled_at: Option<Ts>,
    disabled_reason: Option<String>,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;

    fn try_from(row: WebhookRow) -> Result<Self, StoreError> {
        let event_types = row
            .event_types
            .0
            .as_array()
            .ok_or_else(|| corrupt("webhook event types", &row.event_types.0.to_string()))?
            .iter()
            .map(|name| {
                name.as_str()
                    .and_then(EventType::parse)
                    .ok_or_else(|| corrupt("webhook event type", &name.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            id: row.id.0,
            server_id: row.server_id.0,
            url: row.url,
            event_types,
            secret: row.secret.into(),
            created_by: row.created_by.0,
            created_at: row.created_at.0,
            cursor: row.cursor,
            attempts: row.attempts,
            failing_since: row.failing_since.map(|ts| ts.0),
            next_attempt_at: row.next_attempt_at.map(|ts| ts.0),
            disabled: row.disabled_at.map(|at| (at.0, row.disabled_reason.unwrap_or_default())),
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries)]
struct DeliveryRow {
    id: Id,
    webhook_id: Id,
    event_seq: i64,
    event_type: String,
    attempt: i32,
    status: Option<i32>,
    error: Option<String>,
    duration_ms: i64,
    created_at: Ts,
}

impl From<DeliveryRow> for Delivery {
    fn from(row: DeliveryRow) -> Self {
        Self {
            event_seq: row.event_seq,
            event_type: row.event_type,
            attempt: row.attempt,
            status: row.status,
            error: row.error,
            duration_ms: row.duration_ms,
            created_at: row.created_at.0,
        }
    }
}

fn types_json(types: &[EventType]) -> Json {
    Json(types.iter().map(|kind| kind.as_str()).collect())
}

/// Webhooks and their deliveries (contract section 9).
impl DbConnection {
    /// Registers a webhook whose deliveries start after event `cursor`.
    pub fn create_webhook(&mut self, new: &NewWebhook<'_>, cursor: i64) -> StoreResult<Webhook> {
        let values = (
            webhooks::id.eq(Id(Uuid::now_v7())),
            webhooks::server_id.eq(Id(new.server_id)),
            webhooks::url.eq(new.url),
            webhooks::event_types.eq(types_json(new.event_types)),
            webhooks::secret.eq(new.secret.expose_secret()),
            webhooks::created_by.eq(Id(new.created_by)),
            webhooks::created_at.eq(Ts(new.now)),
            webhooks::cursor.eq(cursor),
            webhooks::attempts.eq(0),
        );
        let row = on_each_backend!(self, |inner| diesel::insert_into(webhooks::table)
            .values(values.clone())
            .returning(WebhookRow::as_returning())
            .get_result(inner))?;
        Webhook::try_from(row)
    }

    /// How many webhooks the server has.
    pub fn count_webhooks(&mut self, server_id: Uuid) -> StoreResult<i64> {
        Ok(webhooks::table
            .filter(webhooks::server_id.eq(Id(server_id)))
            .count()
            .get_result(self)?)
    }

    /// The server's webhooks, oldest first.
    pub fn list_webhooks(&mut self, server_id: Uuid) -> StoreResult<Vec<Webhook>> {
        webhooks::table
            .filter(webhooks::server_id.eq(Id(server_id)))
            .order((webhooks::created_at, webhooks::id))
            .select(WebhookRow::as_select())
            .load(self)?
            .into_iter()
            .map(Webhook::try_from)
            .collect()
    }

    /// The webhook, or `None`.
    pub fn find_webhook(&mut self, webhook_id: Uuid) -> StoreResult<Option<Webhook>> {
        webhooks::table
            .filter(webhooks::id.eq(Id(webhook_id)))
            .select(WebhookRow::as_select())
            .get_result(self)
            .optional()?
            .map(Webhook::try_from)
            .transpose()
    }

    /// Deletes the server's webhook, with its deliveries; `false` when there was none.
    pub fn delete_webhook(&mut self, server_id: Uuid, webhook_id: Uuid) -> StoreResult<bool> {
        let deleted = diesel::delete(
            webhooks::table
                .filter(webhooks::id.eq(Id(webhook_id)))
                .filter(webhooks::server_id.eq(Id(server_id))),
        )
        .execute(self)?;
        Ok(deleted > 0)
    }

    /// The webhook's latest deliveries, newest first.
    pub fn deliveries(&mut self, webhook_id: Uuid, limit: i64) -> StoreResult<Vec<Delivery>> {
        Ok(webhook_deliveries::table
            .filter(webhook_deliveries::webhook_id.eq(Id(webhook_id)))
            .order((webhook_deliveries::created_at.desc(), webhook_deliveries::id.desc()))
            .limit(limit)
            .select(DeliveryRow::as_select())
            .load(self)?
            .into_iter()
            .map(Delivery::from)
            .collect())
    }

    /// Takes (or renews) the lease of every enabled webhook that is due (not waiting for a
    /// retry) and not leased by another instance, until `until`.
    pub fn lease_due_webhooks(
        &mut self,
        owner: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<Webhook>> {
        // Most passes find nothing due: a read says so without taking SQLite's write lock away
        // from the joins (or opening a writing transaction on PostgreSQL).
        let due_somewhere = webhooks::table
            .filter(webhooks::disabled_at.is_null())
            .filter(webhooks::next_attempt_at.is_null().or(webhooks::next_attempt_at.le(Ts(now))))
            .select(webhooks::id)
            .limit(1)
            .get_result::<Id>(self)
            .optional()?;
        if due_somewhere.is_none() {
            return Ok(Vec::new());
        }
        write_transaction(self, |conn| {
            let due = webhooks::table
                .filter(webhooks::disabled_at.is_null())
                .filter(
                    webhooks::lease_until
                        .is_null()
                        .or(webhooks::lease_until.lt(Ts(now)))
                        .or(webhooks::lease_owner.eq(Id(owner))),
                )
                .filter(
                    webhooks::next_attempt_at.is_null().or(webhooks::next_attempt_at.le(Ts(now))),
                );
            let set = (webhooks::lease_owner.eq(Id(owner)), webhooks::lease_until.eq(Ts(until)));
            let rows: Vec<WebhookRow> = on_each_backend!(conn, |inner| diesel::update(due)
                .set(set)
                .returning(WebhookRow::as_returning())
                .get_results(inner))?;
            rows.into_iter().map(Webhook::try_from).collect()
        })
    }

    /// Gives up every lease `owner` holds, so that another instance takes over at once (an
    /// instance stopping gracefully; a crashed one's leases run out by themselves).
    pub fn release_leases(&mut self, owner: Uuid) -> StoreResult<usize> {
        Ok(diesel::update(webhooks::table.filter(webhooks::lease_owner.eq(Id(owner))))
            .set((webhooks::lease_owner.eq(None::<Id>), webhooks::lease_until.eq(None::<Ts>)))
            .execute(self)?)
    }

    /// Records an attempt (if any) and its outcome, if `owner` still holds the lease; `false`
    /// when it no longer does (nothing is written then).
    pub fn record_attempt(
        &mut self,
        owner: Uuid,
        delivery: Option<&Delivery>,
        webhook_id: Uuid,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        write_transaction(self, |conn| {
            // Only the lease holder writes: a lease that ran out may have passed to another.
            let held = webhooks::table
                .filter(webhooks::id.eq(Id(webhook_id)))
                .filter(webhooks::lease_owner.eq(Id(owner)));
            let updated = match outcome {
                AttemptOutcome::Delivered { cursor } => diesel::update(held)
                    .set((
                        webhooks::cursor.eq(*cursor),
                        webhooks::attempts.eq(0),
                        webhooks::failing_since.eq(None::<Ts>),
                        webhooks::next_attempt_at.eq(None::<Ts>),
                    ))
                    .execute(conn)?,
                AttemptOutcome::Retry { attempts, failing_since, next_attempt_at } => {
                    diesel::update(held)
                        .set((
                            webhooks::attempts.eq(*attempts),
                            webhooks::failing_since.eq(Some(Ts(*failing_since))),
                            webhooks::next_attempt_at.eq(Some(Ts(*next_attempt_at))),
                        ))
                        .execute(conn)?
                }
                AttemptOutcome::Disable { reason } => diesel::update(held)
                    .set((
                        webhooks::disabled_at.eq(Some(Ts(now))),
                        webhooks::disabled_reason.eq(Some(reason.as_str())),
                        webhooks::lease_owner.eq(None::<Id>),
                        webhooks::lease_until.eq(None::<Ts>),
                    ))
                    .execute(conn)?,
            };
            if updated == 0 {
                return Ok(false);
            }
            if let Some(delivery) = delivery {
                diesel::insert_into(webhook_deliveries::table)
                    .values(DeliveryRow {
                        id: Id(Uuid::now_v7()),
                        webhook_id: Id(webhook_id),
                        event_seq: delivery.event_seq,
                        event_type: delivery.event_type.clone(),
                        attempt: delivery.attempt,
                        status: delivery.status,
                        error: delivery.error.clone(),
                        duration_ms: delivery.duration_ms,
                        created_at: Ts(delivery.created_at),
                    })
                    .execute(conn)?;
            }
            Ok(true)
        })
    }

    /// Deletes deliveries logged before `before`.
    pub fn purge_deliveries(&mut self, before: DateTime<Utc>) -> StoreResult<usize> {
        Ok(diesel::delete(
            webhook_deliveries::table.filter(webhook_deliveries::created_at.lt(Ts(before))),
        )
        .execute(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhooks_secret_is_in_no_debug_output() {
        let secret = SecretString::from("whsec_0123456789abcdef");
        let now = Utc::now();
        let new = NewWebhook {
            server_id: Uuid::now_v7(),
            url: "https://hooks.example/invites",
            event_types: &[],
            secret: &secret,
            created_by: Uuid::now_v7(),
            now,
        };
        let webhook = Webhook {
            id: Uuid::now_v7(),
            server_id: new.server_id,
            url: new.url.to_owned(),
            event_types: Vec::new(),
            secret: secret.clone(),
            created_by: new.created_by,
            created_at: now,
            cursor: 0,
            attempts: 0,
            failing_since: None,
            next_attempt_at: None,
            disabled: None,
        };
        for printed in [format!("{new:?}"), format!("{webhook:?}")] {
            assert!(printed.contains("hooks.example"), "{printed}");
            assert!(!printed.contains("0123456789abcdef"), "{printed}");
        }
        assert_eq!(webhook.secret.expose_secret(), "whsec_0123456789abcdef");
    }
}
