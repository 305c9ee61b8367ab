//! Delivering webhooks (contract section 9), Stripe's and Svix's way:
//!
//! - **Ordered, at least once, per webhook.** Each webhook has a cursor in the database: the
//!   last event delivered. One instance at a time holds its lease and posts the next event;
//!   on success the cursor moves. A crash between the receiver's answer and the cursor's move
//!   delivers that event again: receivers de-duplicate by `Invite-Event-Id` (the `seq`).
//! - **Signed.** `Invite-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
//!   keyed with the webhook's secret: the timestamp in the signed content stops replays of old
//!   deliveries (`examples/webhook_receiver.rs` checks both).
//! - **Retried.** A failure (no answer within [`TIMEOUT`], or a status other than 2xx) is tried
//!   again after an exponential, jittered wait counted from the end of the failed attempt (from
//!   1 s, at most an hour apart, `backon`), for 24 hours; then the webhook is disabled, saying
//!   why. The state is in the database, so a retry survives a restart.
//! - **Kept inside the public internet.** The URL is read as the HTTP client reads it
//!   ([`WebhookUrl`]), so an address written another way (`http://2130706433/`) is the address
//!   it is. A name is resolved at every connection and the addresses that are not public
//!   ([`is_public`]) are dropped there (not only at registration: a name can be pointed
//!   elsewhere after, DNS rebinding); an address is checked before every attempt. All of it
//!   unless `INVITE_WEBHOOK_ALLOW_PRIVATE`, as the process was started. Redirects are not
//!   followed.
//! - **Never in anyone's way.** Each webhook is delivered on a task of its own: one receiver
//!   that hangs delays its own events, no other webhook's and no request.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use invite_core::webhook::{TargetHost, WebhookUrl, is_public};
use invite_store::repo::{AttemptOutcome, Delivery, StoredEvent, Webhook};
use parking_lot::Mutex;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;
use uuid::Uuid;

use crate::door::Door;
use crate::events::EventBus;
use crate::metrics::Metrics;

/// Longest a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long deliveries keep failing before the webhook is disabled.
pub const GIVE_UP_AFTER: TimeDelta = TimeDelta::hours(24);

/// How long a lease lasts; renewed at every pass.
const LEASE: TimeDelta = TimeDelta::seconds(60);

/// How often due webhooks are looked for, besides when events arrive.
const PASS_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest time between two passes: under a stream of joins, events arrive thousands of
/// times a second, and one pass serves all that arrived since the last.
const PASS_GAP: Duration = Duration::from_millis(100);

/// Events fetched at a time for one webhook.
const BATCH: i64 = 100;

/// Deliveries logged are kept this long.
const KEEP_DELIVERIES: TimeDelta = TimeDelta::days(7);

/// The wait before attempt `attempt + 1` (after `attempt` failures), jittered.
pub fn retry_delay(attempts: u32) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_hours(1))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempts.saturating_sub(1) as usize)
        .unwrap_or(Duration::from_hours(1))
}

/// `t=<unix>,v1=<hex>`: the signature of `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A new webhook secret: 32 random bytes, hex, prefixed so it is recognisable in a leak scan.
///
/// # Panics
/// When the operating system has no randomness to give, which leaves nothing safe to do.
pub fn new_secret() -> SecretString {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    format!("whsec_{}", hex::encode(bytes)).into()
}

/// Resolves names for the delivery client, keeping only addresses a delivery may reach.
#[derive(Debug, Clone, Copy)]
struct PublicOnly {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.into_iter().filter(|addr| allow_private || is_public(addr.ip())).collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{} resolves to no public address (private, loopback and link-local ones are refused)",
                    name.as_str()
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Resolves a webhook's host as a delivery would: `Err` with the reason when it points nowhere
/// a delivery may go.
pub async fn check_target(endpoint: &WebhookUrl, allow_private: bool) -> Result<(), String> {
    let addrs: Vec<SocketAddr> = match endpoint.host() {
        TargetHost::Address(ip) => vec![SocketAddr::new(*ip, endpoint.port())],
        TargetHost::Name(name) => tokio::net::lookup_host((name.as_str(), endpoint.port()))
            .await
            .map_err(|_| format!("url's host {name} does not resolve"))?
            .collect(),
    };
    if allow_private || addrs.iter().any(|addr| is_public(addr.ip())) {
        Ok(())
    } else {
        Err("url must not point at a private, loopback or link-local address".to_owned())
    }
}

/// The deliverer of this instance.
pub struct Deliverer {
    instance: Uuid,
    client: reqwest::Client,
    allow_private: bool,
    running: Mutex<HashSet<Uuid>>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").field("instance", &self.instance).finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer refusing private targets unless `allow_private`.
    ///
    /// # Panics
    /// When no HTTP client can be built at all (no TLS backend is involved: never).
    pub fn new(allow_private: bool) -> Self {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PublicOnly { allow_private }))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent("invite-service-webhooks/1")
            .build()
            .expect("an HTTP client without TLS always builds");
        Self { instance: Uuid::now_v7(), client, allow_private, running: Mutex::default() }
    }

    /// Whether webhooks may target private addresses (`INVITE_WEBHOOK_ALLOW_PRIVATE`).
    pub fn allow_private(&self) -> bool {
        self.allow_private
    }
}

/// What delivering works with.
#[derive(Debug, Clone)]
pub struct Delivering {
    /// This instance's deliverer.
    pub deliverer: Arc<Deliverer>,
    /// The way into the database.
    pub door: Door,
    /// Where new events are announced.
    pub bus: Arc<EventBus>,
    /// Counts deliveries.
    pub metrics: Arc<Metrics>,
}

/// Delivers, as long as the service runs: a pass when events arrive, and at least every
/// `PASS_INTERVAL`. Spawn it on the server's runtime.
pub async fn run(state: Delivering) {
    let mut purged = Instant::now();
    loop {
        let _ = tokio::time::timeout(PASS_INTERVAL, state.bus.new_events()).await;
        let started = Instant::now();
        pass(&state).await;
        tokio::time::sleep(PASS_GAP.saturating_sub(started.elapsed())).await;
        if purged.elapsed() > Duration::from_hours(1) {
            purged = Instant::now();
            let before = state.door.now() - KEEP_DELIVERIES;
            let _ = state.door.upkeep(move |conn| conn.purge_deliveries(before)).await;
        }
    }
}

/// Gives up this instance's leases once it has stopped serving, so that another instance goes
/// on delivering at once rather than after `LEASE`. Deliveries still under way can then no
/// longer record their outcome: the next holder makes that attempt again (at least once).
pub async fn release_leases(door: &Door, deliverer: &Deliverer) {
    let owner = deliverer.instance;
    if let Err(error) = door.upkeep(move |conn| conn.release_leases(owner)).await {
        tracing::warn!(%error, "cannot give up the webhook leases: they run out within a minute");
    }
}

/// Leases the due webhooks and starts delivering each that is not already being delivered.
async fn pass(state: &Delivering) {
    let deliverer = Arc::clone(&state.deliverer);
    let now = state.door.now();
    let owner = deliverer.instance;
    let leased =
        match state.door.upkeep(move |conn| conn.lease_due_webhooks(owner, now, now + LEASE)).await
        {
            Ok(leased) => leased,
            Err(error) => {
                tracing::debug!(%error, "cannot lease webhooks");
                return;
            }
        };
    for webhook in leased {
        if !deliverer.running.lock().insert(webhook.id) {
            continue;
        }
        let state = state.clone();
        tokio::task::spawn_local(async move {
            let id = webhook.id;
            deliver(&state, webhook).await;
            state.deliverer.running.lock().remove(&id);
        });
    }
}

/// Delivers the webhook's events after its cursor, in order, until one fails or none is left.
async fn deliver(state: &Delivering, mut webhook: Webhook) {
    let owner = state.deliverer.instance;
    loop {
        let (server, after) = (webhook.server_id, webhook.cursor);
        let Ok(events) =
            state.door.read(move |conn| conn.server_events(server, after, BATCH)).await
        else {
            return;
        };
        if events.is_empty() {
            return;
        }
        for event in events {
            let now = state.door.now();
            if !webhook.event_types.contains(&event.kind()) {
                webhook.cursor = event.seq;
                continue;
            }
            let (delivery, delivered) = post(state, &webhook, &event, now).await;
            state.metrics.observe_webhook_delivery(delivered);
            // The wait runs from the end of the attempt: from its start, a receiver that hangs
            // until the timeout would be retried as soon as it lets go, every TIMEOUT.
            let ended = state.door.now();
            let outcome = if delivered {
                AttemptOutcome::Delivered { cursor: event.seq }
            } else {
                let attempts = webhook.attempts.saturating_add(1);
                let failing_since = webhook.failing_since.unwrap_or(now);
                if ended - failing_since >= GIVE_UP_AFTER {
                    AttemptOutcome::Disable {
                        reason: format!(
                            "deliveries failed for 24 hours; the last: {}",
                            delivery.error.as_deref().unwrap_or("no answer")
                        ),
                    }
                } else {
                    let wait = retry_delay(u32::try_from(attempts).unwrap_or(u32::MAX));
                    AttemptOutcome::Retry {
                        attempts,
                        failing_since,
                        next_attempt_at: ended + TimeDelta::from_std(wait).unwrap_or(LEASE),
                    }
                }
            };
            // Skipped events before this one move the cursor along with it.
            let recorded = {
                let (id, outcome_to_write) = (webhook.id, outcome.clone());
                let delivery = delivery.clone();
                state
                    .door
                    .upkeep(move |conn| {
                        conn.record_attempt(owner, Some(&delivery), id, &outcome_to_write, ended)
                    })
                    .await
            };
            if !matches!(recorded, Ok(true)) {
                // The lease is gone (or the database): another pass takes over.
                return;
            }
            match outcome {
                AttemptOutcome::Delivered { cursor } => {
                    webhook.cursor = cursor;
                    webhook.attempts = 0;
                    webhook.failing_since = None;
                }
                AttemptOutcome::Retry { .. } | AttemptOutcome::Disable { .. } => return,
            }
        }
        // Only skipped events in this batch: move the cursor past them.
        let (id, cursor) = (webhook.id, webhook.cursor);
        let now = state.door.now();
        let skipped = state
            .door
            .upkeep(move |conn| {
                conn.record_attempt(owner, None, id, &AttemptOutcome::Delivered { cursor }, now)
            })
            .await;
        if !matches!(skipped, Ok(true)) {
            return;
        }
    }
}

/// The body of a delivery.
#[derive(serde::Serialize)]
struct Envelope<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'a str,
    server_id: Uuid,
    created_at: DateTime<Utc>,
    data: &'a serde_json::Value,
}

/// Posts one event; the delivery to log, and whether it was delivered.
async fn post(
    state: &Delivering,
    webhook: &Webhook,
    event: &StoredEvent,
    now: DateTime<Utc>,
) -> (Delivery, bool) {
    let body = serde_json::to_vec(&Envelope {
        id: event.seq.to_string(),
        kind: event.kind().as_str(),
        server_id: event.server_id(),
        created_at: event.created_at,
        data: &event.event.payload(),
    })
    .unwrap_or_default();
    let started = Instant::now();
    let result = send(state, webhook, event, now.timestamp(), body).await;
    let delivery = Delivery {
        event_seq: event.seq,
        event_type: event.kind().as_str().to_owned(),
        attempt: webhook.attempts.saturating_add(1),
        status: result.as_ref().ok().map(|status| i32::from(*status)),
        error: match &result {
            Ok(status) if (200..300).contains(status) => None,
            Ok(status) => Some(format!("the receiver answered {status}")),
            Err(error) => Some(error.clone()),
        },
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        created_at: now,
    };
    let delivered = matches!(result, Ok(status) if (200..300).contains(&status));
    (delivery, delivered)
}

async fn send(
    state: &Delivering,
    webhook: &Webhook,
    event: &StoredEvent,
    timestamp: i64,
    body: Vec<u8>,
) -> Result<u16, String> {
    // The URL is read again as the client will read it, under today's rules: a webhook
    // registered while private targets were allowed, or under laxer rules, gets no further.
    let endpoint = WebhookUrl::parse(&webhook.url)
        .map_err(|refused| format!("the url is refused: {}", refused.message))?;
    // An address is connected to without resolving, so the resolver cannot stand guard: check
    // it here.
    if let TargetHost::Address(ip) = endpoint.host()
        && !state.deliverer.allow_private
        && !is_public(*ip)
    {
        return Err(format!(
            "{ip} is not a public address (private, loopback and link-local ones are refused)"
        ));
    }
    let response = state
        .deliverer
        .client
        .post(endpoint.url().clone())
        .header("content-type", "application/json")
        .header("invite-event-id", event.seq.to_string())
        .header("invite-event-type", event.kind().as_str())
        .header("invite-signature", signature(webhook.secret.expose_secret(), timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|error| describe(&error))?;
    Ok(response.status().as_u16())
}

/// The error with its causes, on one line (`reqwest` keeps the reason in its sources).
fn describe(error: &reqwest::Error) -> String {
    let first = if error.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else {
        error.to_string()
    };
    let causes = std::iter::successors(std::error::Error::source(error), |cause| cause.source());
    std::iter::once(first).chain(causes.map(ToString::to_string)).collect::<Vec<_>>().join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let signed = signature("whsec_x", 1_700_000_000, b"{}");
        assert!(signed.starts_with("t=1700000000,v1="), "{signed}");
        assert_eq!(signed.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(signed, signature("whsec_x", 1_700_000_001, b"{}"));
        assert_ne!(signed, signature("whsec_x", 1_700_000_000, b"{ }"));
        assert_ne!(signed, signature("whsec_y", 1_700_000_000, b"{}"));
        // RFC 4231 test case 2, as a sanity check of the construction's primitive.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_back_off_exponentially_with_a_cap() {
        for attempts in 1..40 {
            let wait = retry_delay(attempts);
            let floor =
                Duration::from_secs(1 << (attempts - 1).min(12)).min(Duration::from_hours(1));
            assert!(
                wait >= floor && wait <= floor * 2 + Duration::from_secs(1),
                "{attempts}: {wait:?}"
            );
        }
        let secret = new_secret();
        assert!(secret.expose_secret().starts_with("whsec_") && secret.expose_secret().len() == 70);
        assert_ne!(secret.expose_secret(), new_secret().expose_secret());
    }
}
