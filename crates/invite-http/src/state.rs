//! What every handler shares, built once at start-up and passed down explicitly.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use actix_web::HttpResponse;
use invite_core::clock::{Clock, SystemClock};
use invite_core::code::{OsRandom, RandomSource};
use invite_ops::{Ctx, EventSink, OpError, Outcome};
use invite_store::DbConnection;
use invite_store::repo::{Actor, IdempotencyClaim, Keyed, RecordedResponse, StoredEvent};

use crate::auth::Authenticator;
use crate::client_addr::TrustedProxies;
use crate::config::Reliability;
use crate::db::Db;
use crate::error::ApiResult;
use crate::events::EventBus;
use crate::idempotency::InFlight;
use crate::idempotency::respond;
use crate::maintenance::Maintenance;
use crate::metrics::Metrics;
use crate::preview_cache::PreviewCache;
use crate::rate_limit::{AddrKey, BucketState, Limited, RateLimits};
use crate::webhooks::Deliverer;

/// Makes the random source a code reservation draws from; injectable so tests can force
/// collisions.
pub type RandomFactory = Arc<dyn Fn() -> Box<dyn RandomSource + Send> + Send + Sync>;

/// The OS CSPRNG, for production.
pub fn os_random() -> RandomFactory {
    Arc::new(|| Box::new(OsRandom))
}

/// The application state.
#[derive(Clone)]
pub struct AppState {
    /// Rate limits, `None` when turned off (`INVITE_RATE_LIMITS=off`).
    pub limits: Option<Arc<RateLimits>>,
    /// Whose forwarding headers name the client.
    pub proxies: Arc<TrustedProxies>,
    /// This instance's view of the maintenance switch.
    pub maintenance: Arc<Maintenance>,
    /// The operator token of `/admin/*`, if configured.
    pub admin_token: Option<secrecy::SecretString>,
    /// Idempotency keys whose request is running here.
    pub in_flight: Arc<InFlight>,
    /// Set once the server is stopping: responses then close their connections.
    pub draining: Arc<AtomicBool>,
    /// When the process started serving.
    pub started: Instant,
    /// The outbox's reader on this instance, and its wake-ups.
    pub events: Arc<EventBus>,
    /// Delivers webhooks.
    pub deliverer: Arc<Deliverer>,
    /// Whether webhooks may target private addresses (`INVITE_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
    /// How long events stay in the outbox (`INVITE_EVENTS_RETENTION`).
    pub events_retention: std::time::Duration,
    /// Where the `LISTEN` connection goes (PostgreSQL only).
    pub listen_url: Option<secrecy::SecretString>,
    /// The database, behind the one async bridge.
    pub db: Db,
    /// Token verification.
    pub auth: Arc<Authenticator>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Where random codes come from.
    pub random: RandomFactory,
    /// The public base URL invite links are built on, without a trailing slash.
    pub public_url: String,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Previews by code.
    pub previews: Arc<PreviewCache>,
    /// The invite page's settings.
    pub page: Arc<crate::page::PageSettings>,
    /// The gateway's sessions and settings.
    pub gateway: Arc<crate::gateway::Gateway>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .field("auth", &self.auth)
            .field("clock", &self.clock)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state for a database and a configuration; the clock and random source are the
    /// system's (tests replace them).
    pub fn new(
        db: Db,
        auth: Authenticator,
        public_url: String,
        reliability: &Reliability,
        previews: PreviewCache,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            limits: reliability
                .rates
                .map(|rates| Arc::new(RateLimits::new(rates, Arc::clone(&metrics)))),
            proxies: Arc::new(
                TrustedProxies::new(reliability.trusted_proxies.clone())
                    .reading(reliability.client_address_header),
            ),
            maintenance: Arc::default(),
            admin_token: reliability.admin_token.clone(),
            in_flight: Arc::default(),
            draining: Arc::default(),
            started: Instant::now(),
            events: Arc::default(),
            deliverer: Arc::new(Deliverer::new(reliability.webhook_allow_private)),
            webhook_allow_private: reliability.webhook_allow_private,
            events_retention: reliability.events_retention,
            listen_url: None,
            db,
            auth: Arc::new(auth),
            clock: Arc::new(SystemClock),
            random: os_random(),
            public_url,
            metrics,
            previews: Arc::new(previews),
            page: Arc::default(),
            gateway: Arc::default(),
        }
    }

    /// Charges `bucket`'s key for this request, recording where it stands for the response's
    /// `X-RateLimit-*` headers; 429 when the bucket is empty. Nothing when limits are off.
    pub fn limit(
        &self,
        req: &actix_web::HttpRequest,
        charge: impl FnOnce(&RateLimits) -> Result<BucketState, Limited>,
    ) -> Result<(), crate::error::ApiError> {
        let Some(limits) = &self.limits else { return Ok(()) };
        match charge(limits) {
            Ok(state) => {
                crate::rate_limit::record(req, state);
                Ok(())
            }
            Err(limited) => {
                crate::rate_limit::record(req, limited.state);
                Err(crate::error::ApiError::RateLimited(limited))
            }
        }
    }

    /// What to answer a lookup of a code that does not exist: `not_found`, once the client
    /// address's `unknown-code` bucket is charged for it, or 429 when that bucket is empty.
    pub fn unknown_code(
        &self,
        req: &actix_web::HttpRequest,
        not_found: crate::error::ApiError,
    ) -> crate::error::ApiError {
        let addr = AddrKey::from(self.proxies.client_of(req));
        match self.limit(req, |limits| limits.unknown_code(addr)) {
            Ok(()) => not_found,
            Err(limited) => limited,
        }
    }

    /// Refuses a lookup by code from an address that has used up its `unknown-code` bucket,
    /// before the lookup costs anything. Nothing when limits are off.
    pub fn not_scanning(&self, req: &actix_web::HttpRequest) -> Result<(), crate::error::ApiError> {
        let Some(limits) = &self.limits else { return Ok(()) };
        let addr = AddrKey::from(self.proxies.client_of(req));
        limits.not_scanning(addr).map_err(|limited| {
            crate::rate_limit::record(req, limited.state);
            crate::error::ApiError::RateLimited(limited)
        })
    }

    /// The actor of a request, and its time from the service's clock.
    pub fn ctx(&self, actor: Actor) -> Ctx {
        Ctx { actor, now: self.clock.now() }
    }

    /// Runs a change through the operations layer: its events are applied on this instance and
    /// announced to the others before the answer leaves.
    pub async fn change<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<Outcome<T>, OpError> + Send + 'static,
    {
        Ok(self.db.run(work).await?.settle(self))
    }

    /// Runs a POST's change: with an Idempotency-Key (`claim`), replayed or recorded with the
    /// change (see [`Db::write`]); `render` is the response, as sent and recorded.
    pub async fn post<T, F, R>(
        &self,
        claim: Option<IdempotencyClaim>,
        work: F,
        render: R,
    ) -> ApiResult<HttpResponse>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<Outcome<T>, OpError> + Send + 'static,
        R: FnOnce(&T) -> RecordedResponse + Send + 'static,
    {
        let now = self.clock.now();
        let answer = self
            .db
            .write(claim, now, work, move |outcome: &Outcome<T>| render(outcome.value()))
            .await?;
        Ok(match answer {
            Keyed::Fresh((response, outcome)) => {
                outcome.settle(self);
                respond(Keyed::Fresh(response))
            }
            Keyed::Replay(response) => respond(Keyed::Replay(response)),
        })
    }

    /// The link people open to preview and accept an invite.
    pub fn invite_url(&self, code: &str) -> String {
        invite_url(&self.public_url, code)
    }
}

/// A change's events reach this instance's consumers (its preview cache at once, its gateway
/// sessions and webhook deliverer through the bus) and are announced to the other instances.
impl EventSink for AppState {
    fn publish(&self, events: &[StoredEvent]) {
        self.events.published(&self.previews, events);
    }
}

/// The link to an invite on the public base URL `base`.
pub fn invite_url(base: &str, code: &str) -> String {
    format!("{base}/invite/{code}")
}
