//! Building and running the HTTP server on a listener it is handed: the binary binds the
//! configured address, tests bind port 0.
//!
//! The server is assembled from actix-server and actix-http rather than actix-web's
//! `HttpServer`, for two things `HttpServer` cannot do:
//! - each connection's stream is wrapped in [`JsonRefusals`], so the refusals the HTTP layer
//!   makes before any handler runs (408, 400, 414, 431) carry the JSON error body too;
//! - on SIGTERM, requests that arrive on open keep-alive connections are still answered, with
//!   `Connection: close`. `HttpServer` tells every connection to stop at once, which drops a
//!   request already on its way on an idle connection, unanswered.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use actix_http::{HttpService, KeepAlive};
use actix_service::{IntoServiceFactory as _, ServiceFactoryExt as _, fn_service, map_config};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Server, ServiceRequest, ServiceResponse};
use actix_web::http::{ConnectionType, Method};
use actix_web::middleware::{ErrorHandlers, Next, from_fn};
use actix_web::{App, HttpResponse, web};
use tokio::net::TcpStream;

use anyhow::Context as _;
use invite_core::clock::Clock;
use invite_runtime::analytics::{self, Analytics};
use invite_runtime::gateway::Gateway;
use invite_runtime::idempotency::InFlight;
use invite_runtime::maintenance::{Maintenance, MaintenanceView};
use invite_runtime::rate_limit::RateLimits;
use invite_runtime::webhooks::Deliverer;
use invite_store::DbPool;

use crate::api::routes::admin::AdminToken;
use crate::api::routes::health::Draining;
use crate::api::routes::status::Started;
use crate::api::wire::Links;
use crate::api::{extract, openapi, routes};
use crate::gateway::GatewayContext;
use crate::guard::auth::Authenticator;
use crate::guard::body::BodyTimeout;
use crate::guard::client_addr::TrustedProxies;
use crate::guard::limiter::Limiter;
use crate::guard::{body, rate_limit};
use crate::page::{PageContext, PageSettings};
use crate::server::config::Config;
use crate::server::connections::ConnectionLimit;
use crate::server::random::{RandomFactory, os_random};
use crate::server::refusals::{self, JsonRefusals};
use crate::server::request_log;
use invite_runtime::db::{Db, DbLimits, WriteGroups};
use invite_runtime::door::Door;
use invite_runtime::events::{EventBus, Publisher};
use invite_runtime::gateway::sessions;
use invite_runtime::metrics::Metrics;
use invite_runtime::preview_cache::PreviewCache;
use invite_runtime::replica::Replica;
use invite_runtime::{background, events, webhooks};

/// How long a connection may take to send a request's head (then 408).
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle keep-alive connection is kept.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// How the server runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerOptions {
    /// Worker threads; `None` is one per core.
    pub workers: Option<usize>,
    /// How long in-flight requests may finish after a stop signal.
    pub shutdown_timeout: Duration,
    /// The database pool's size: more threads waiting for a connection than there are
    /// connections only cost memory, so each worker's blocking pool is sized from it.
    pub db_pool_size: u32,
    /// Longest a request body may take to arrive.
    pub body_timeout: Duration,
    /// Most connections one address (other than a trusted proxy) holds open at once.
    pub connections_per_address: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            workers: None,
            shutdown_timeout: Duration::from_secs(30),
            db_pool_size: 10,
            body_timeout: Duration::from_secs(10),
            connections_per_address: 1000,
        }
    }
}

impl ServerOptions {
    /// Worker threads.
    pub(crate) fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            })
            .max(1)
    }

    /// Database threads per worker: each may run `pool size / workers + 1` database calls at
    /// once; more would only queue for a connection while holding a thread's memory.
    pub(crate) fn db_threads_per_worker(&self) -> usize {
        usize::try_from(self.db_pool_size).unwrap_or(usize::MAX).div_ceil(self.worker_count()) + 1
    }

    /// Database threads of the whole server, for the load shedder's arithmetic.
    pub(crate) fn db_threads(&self) -> usize {
        self.db_threads_per_worker() * self.worker_count()
    }
}

/// The service's parts, built once at start-up from the configuration. Nothing is handed the
/// whole: each handler, middleware and task is given the parts it uses (see [`configure_app`]
/// and [`run`]).
#[derive(Clone)]
pub(crate) struct Service {
    /// The one way into the database, with the service's clock.
    pub door: Door,
    /// Token verification.
    pub auth: Arc<Authenticator>,
    /// Rate limits, `None` when turned off (`INVITE_RATE_LIMITS=off`).
    pub limits: Option<Arc<RateLimits>>,
    /// Whose forwarding headers name the client.
    pub proxies: Arc<TrustedProxies>,
    /// This instance's view of the maintenance switch.
    pub maintenance: Arc<Maintenance>,
    /// The operator token of `/admin/*`, if configured.
    admin_token: Arc<AdminToken>,
    /// Idempotency keys whose request is running here.
    pub in_flight: Arc<InFlight>,
    /// Set once the server is stopping.
    draining: Arc<Draining>,
    /// When the process started serving.
    started: Started,
    /// The outbox's reader on this instance, and its wake-ups.
    pub events: Arc<EventBus>,
    /// Delivers webhooks.
    pub deliverer: Arc<Deliverer>,
    /// How long events stay in the outbox (`INVITE_EVENTS_RETENTION`).
    pub events_retention: std::time::Duration,
    /// Where the `LISTEN` connection goes (PostgreSQL only).
    pub listen_url: Option<secrecy::SecretString>,
    /// Where random codes come from.
    pub random: RandomFactory,
    /// The public base URL invite links are built on.
    pub links: Arc<Links>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Previews by code.
    pub previews: Arc<PreviewCache>,
    /// The invite page's settings.
    pub page: Arc<PageSettings>,
    /// The gateway's sessions and settings.
    pub gateway: Arc<Gateway>,
    /// Previews and refusals counted here, not yet written.
    pub analytics: Arc<Analytics>,
    /// How often they are written, and joins folded (`INVITE_ANALYTICS_FLUSH_INTERVAL`).
    pub analytics_interval: std::time::Duration,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("door", &self.door)
            .field("auth", &self.auth)
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// The parts the invite page uses.
    fn page_context(&self) -> PageContext {
        PageContext {
            settings: Arc::clone(&self.page),
            door: self.door.clone(),
            previews: Arc::clone(&self.previews),
            limiter: Arc::new(Limiter::new(self.limits.clone(), Arc::clone(&self.proxies))),
            proxies: Arc::clone(&self.proxies),
            maintenance: Arc::clone(&self.maintenance),
            auth: Arc::clone(&self.auth),
            links: Arc::clone(&self.links),
            metrics: Arc::clone(&self.metrics),
            analytics: Arc::clone(&self.analytics),
        }
    }

    /// The parts the gateway's sockets use.
    fn gateway_context(&self) -> GatewayContext {
        GatewayContext {
            auth: Arc::clone(&self.auth),
            clock: Arc::clone(self.door.clock()),
            door: self.door.clone(),
            events: Arc::clone(&self.events),
            gateway: Arc::clone(&self.gateway),
            metrics: Arc::clone(&self.metrics),
        }
    }

    /// This instance's view of the maintenance switch, with its gauge.
    fn maintenance_view(&self) -> MaintenanceView {
        MaintenanceView {
            maintenance: Arc::clone(&self.maintenance),
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// Everything a server needs, built from the configuration: the service's parts (dated by
/// `clock`) and the options. The maintenance switch is set from `INVITE_MAINTENANCE` when it
/// is set (an error if that cannot be written), and otherwise read as the database holds it.
pub(crate) fn prepare(
    config: &Config,
    pool: DbPool,
    auth: Authenticator,
    public_url: String,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(Service, ServerOptions)> {
    let reliability = config.reliability();
    let options = ServerOptions {
        workers: config.workers,
        shutdown_timeout: config.shutdown_timeout,
        db_pool_size: pool.state().max_size,
        body_timeout: reliability.body_timeout,
        connections_per_address: reliability.connections_per_address,
    };
    let now = clock.now();
    let switch = match &reliability.maintenance {
        Some(setting) => Some(
            pool.run_by(std::time::Instant::now() + config.db_timeout, |conn| {
                invite_ops::maintenance::configure(
                    conn,
                    setting.enabled,
                    setting.message.as_deref(),
                    setting.until,
                    now,
                )
            })
            .context("cannot set the maintenance switch (INVITE_MAINTENANCE)")?
            // The service's consumers do not run yet: the switch is read back below.
            .settle(&invite_ops::OutboxOnly),
        ),
        // The poller reads it again every few seconds: a database away now is not fatal here.
        None => pool
            .run_by(std::time::Instant::now() + config.db_timeout, invite_ops::maintenance::current)
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot read the maintenance switch yet");
                None
            }),
    };
    let metrics = Arc::new(Metrics::default());
    let limits = DbLimits {
        timeout: config.db_timeout,
        queue_timeout: reliability.db_queue_timeout,
        threads: options.db_threads(),
        write_groups: WriteGroups {
            accepts: config.db_accept_groups.max(1),
            creates: config.db_create_groups.max(1),
        },
    };
    let listen_url = match pool.url() {
        invite_store::DatabaseUrl::Postgres(url) => Some(secrecy::SecretString::from(url.as_str())),
        invite_store::DatabaseUrl::Sqlite(_) => None,
    };
    let events = Arc::new(EventBus::default());
    let previews = Arc::new(PreviewCache::new(config.preview_cache_size, config.preview_cache_ttl));
    let publisher = Arc::new(Publisher::new(Arc::clone(&events), Arc::clone(&previews)));
    let replica = config.read_pool(pool.backend())?.map(|read| {
        // Half the deadline: a standby that does not answer leaves the primary the other half.
        let read_limits = DbLimits { timeout: config.db_timeout / 2, ..limits };
        // The standby's refusals and failures are not the service's: the primary serves those
        // reads, so they stay out of the shedding and batch series, and
        // `invite_stale_reads_total` counts them instead.
        let read_db = Db::new(DbPool::new(&read), read_limits, Arc::new(Metrics::default()));
        Replica::start(read_db, pool.clone(), config.database_read_max_lag, Arc::clone(&metrics))
    });
    let mut door = Door::new(Db::new(pool, limits, Arc::clone(&metrics)), publisher, clock);
    if let Some(replica) = replica {
        door = door.with_replica(replica);
    }
    let service = Service {
        limits: reliability
            .rates
            .map(|rates| Arc::new(RateLimits::new(rates, Arc::clone(&metrics)))),
        proxies: Arc::new(
            TrustedProxies::new(reliability.trusted_proxies.clone())
                .reading(reliability.client_address_header),
        ),
        maintenance: Arc::default(),
        admin_token: Arc::new(AdminToken(reliability.admin_token.clone())),
        in_flight: Arc::default(),
        draining: Arc::default(),
        started: Started(Instant::now()),
        events,
        deliverer: Arc::new(Deliverer::new(reliability.webhook_allow_private)),
        events_retention: reliability.events_retention,
        listen_url,
        door,
        auth: Arc::new(auth),
        random: os_random(),
        links: Arc::new(Links::new(public_url)),
        metrics,
        previews,
        page: Arc::new(config.page()),
        gateway: Arc::new(Gateway::new(config.gateway())),
        analytics: Arc::new(Analytics::new(config.analytics)),
        analytics_interval: config.analytics_flush_interval,
    };
    service.maintenance_view().show(switch, now);
    Ok((service, options))
}

/// Registers the whole application on an actix `App`: the service's parts (each handler
/// extracts those it uses), extractor error handlers, routes, the JSON 404, the JSON safety net
/// for actix's own error responses, and request ids.
pub(crate) fn configure_app(service: &Service) -> impl FnOnce(&mut web::ServiceConfig) {
    let parts = service.clone();
    move |cfg| {
        let limiter = Limiter::new(parts.limits.clone(), Arc::clone(&parts.proxies));
        cfg.app_data(web::Data::new(parts.page_context()))
            .app_data(web::Data::new(parts.gateway_context()))
            .app_data(web::Data::new(parts.door))
            .app_data(web::Data::new(limiter))
            .app_data(web::Data::from(parts.auth))
            .app_data(web::Data::from(parts.maintenance))
            .app_data(web::Data::from(parts.admin_token))
            .app_data(web::Data::from(parts.in_flight))
            .app_data(web::Data::from(parts.draining))
            .app_data(web::Data::new(parts.started))
            .app_data(web::Data::from(parts.deliverer))
            .app_data(web::Data::new(parts.random))
            .app_data(web::Data::from(parts.links))
            .app_data(web::Data::from(parts.metrics))
            .app_data(web::Data::from(parts.previews))
            .app_data(web::Data::from(parts.analytics))
            .app_data(extract::path_config())
            .app_data(extract::query_config())
            .configure(crate::page::configure_links)
            .configure(routes::configure);
    }
}

/// HTTP requires HEAD wherever GET works: a HEAD request is routed as a GET, and the
/// connection leaves the body out (it knows the request was HEAD).
async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// Once the server is stopping, every response closes its connection: the client then opens a
/// new one (to another instance) instead of sending on one that is about to close.
async fn close_when_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let draining = req.app_data::<web::Data<Draining>>().is_some_and(|draining| draining.is_set());
    let mut response = next.call(req).await?;
    if draining {
        response.response_mut().head_mut().set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}

/// Starts serving on `listener`, with the background tasks; call from within an actix system.
/// The returned server handles SIGTERM and Ctrl-C itself: it answers 503 on `/readyz`, stops
/// accepting, lets in-flight requests (and those arriving on open connections) finish within
/// the shutdown timeout, then returns; dropping the state afterwards closes the pool.
pub(crate) fn run(
    listener: TcpListener,
    service: Service,
    options: ServerOptions,
) -> std::io::Result<Server> {
    spawn_background(&service);
    let (door, gateway) = (service.door.clone(), Arc::clone(&service.gateway));
    let draining = Arc::clone(&service.draining);
    let local_addr = listener.local_addr()?;
    // Built once: the handlers' annotations do not change while the process runs.
    // Serialized once and shared: the document's structure would otherwise be cloned into
    // every worker and again for every request.
    let document =
        web::Bytes::from(serde_json::to_vec(&openapi::document()).map_err(std::io::Error::other)?);
    let body_timeout = BodyTimeout(options.body_timeout);
    let connections =
        ConnectionLimit::new(options.connections_per_address, Arc::clone(&service.proxies));
    let server = actix_server::Server::build()
        .workers(options.worker_count())
        .worker_max_blocking_threads(options.db_threads_per_worker())
        .shutdown_timeout(options.shutdown_timeout.as_secs())
        .disable_signals()
        .listen("invite-http", listener, move || {
            // Called on each worker as it starts: the watch measures that worker's loop.
            actix_web::rt::spawn(service.door.clone().watch_lag());
            let document = document.clone();
            // Built twice: once for the connection's requests, once for those that ask for
            // an upgrade, which actix-http hands to a service of their own (`upgrade.rs`).
            let service = service.clone();
            let app = move || {
                let app = App::new()
                    .app_data(body_timeout)
                    .configure(configure_app(&service))
                    .service(
                        web::resource("/openapi.json")
                            .route(web::get().to({
                                let document = document.clone();
                                move || {
                                    std::future::ready(
                                        HttpResponse::Ok()
                                            .content_type("application/json")
                                            .body(document.clone()),
                                    )
                                }
                            }))
                            .default_service(web::to(|| extract::method_not_allowed(&["GET"]))),
                    )
                    // Swagger UI's files are compiled into the binary (`vendored`): no internet.
                    .configure(crate::api::docs::configure)
                    // Last: `/{code}` takes any one segment no route above took.
                    .configure(crate::page::configure)
                    .default_service(web::to(extract::not_found))
                    .wrap(from_fn(body::buffer))
                    .wrap(from_fn(refusals::refuse_long_targets))
                    .wrap(from_fn(head_as_get))
                    .wrap(from_fn(rate_limit::headers))
                    .wrap(ErrorHandlers::new().default_handler(extract::json_error_bodies))
                    .wrap(from_fn(close_when_draining))
                    .wrap(from_fn(request_log::middleware));
                map_config(
                    app.into_factory().map_err(|error: actix_web::Error| error.error_response()),
                    |()| AppConfig::default(),
                )
            };
            let http = HttpService::build()
                .keep_alive(KeepAlive::Timeout(KEEP_ALIVE))
                .client_request_timeout(REQUEST_HEAD_TIMEOUT)
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(local_addr)
                .upgrade(crate::server::upgrade::factory(app()))
                .h1(app());
            let connections = connections.clone();
            fn_service(move |mut stream: TcpStream| {
                let connections = connections.clone();
                async move {
                    let peer = stream.peer_addr().ok();
                    let slot = match peer.map(|peer| connections.admit(peer.ip())) {
                        Some(Some(slot)) => slot,
                        None => None,
                        Some(None) => {
                            // The address holds its share: say so, and close.
                            use tokio::io::AsyncWriteExt as _;
                            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                                let _ =
                                    stream.write_all(&crate::server::connections::refusal()).await;
                                let _ = stream.shutdown().await;
                            })
                            .await;
                            return Err(actix_http::error::DispatchError::Io(
                                std::io::Error::other("too many connections from one address"),
                            ));
                        }
                    };
                    // Responses are written whole; waiting to coalesce them only adds latency.
                    let _ = stream.set_nodelay(true);
                    Ok((JsonRefusals::new(stream, slot), peer))
                }
            })
            .and_then(http)
        })?
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        stop_signal().await;
        tracing::info!("stopping: finishing the requests under way");
        draining.set();
        // Gateway sessions would hold the stop for its whole timeout: they are told to
        // resume on another instance first.
        sessions::stop(&door, &gateway, Duration::from_secs(2)).await;
        handle.stop(true).await;
    });
    Ok(server)
}

/// Starts the work each instance does beside the requests, on the server's runtime: the
/// outbox's reader (and, on PostgreSQL, its listener), webhook delivery, the gateway's upkeep,
/// following the maintenance switch, forgetting idle rate-limit keys, and purges.
fn spawn_background(service: &Service) {
    use actix_web::rt::spawn;
    let consumers = events::Consumers {
        bus: Arc::clone(&service.events),
        previews: Arc::clone(&service.previews),
        gateway: Arc::clone(&service.gateway),
        metrics: Arc::clone(&service.metrics),
    };
    spawn(events::read(service.door.clone(), consumers));
    if let Some(url) = service.listen_url.clone() {
        spawn(events::listen(Arc::clone(&service.events), url));
    }
    spawn(webhooks::run(webhooks::Delivering {
        deliverer: Arc::clone(&service.deliverer),
        door: service.door.clone(),
        bus: Arc::clone(&service.events),
        metrics: Arc::clone(&service.metrics),
    }));
    spawn(sessions::run(sessions::Upkeep {
        door: service.door.clone(),
        gateway: Arc::clone(&service.gateway),
        metrics: Arc::clone(&service.metrics),
    }));
    spawn(background::follow_maintenance(service.door.clone(), service.maintenance_view()));
    if let Some(limits) = service.limits.clone() {
        spawn(background::forget_idle_keys(limits));
    }
    spawn(background::purge(service.door.clone(), service.events_retention));
    spawn(analytics::run(
        service.door.clone(),
        Arc::clone(&service.analytics),
        service.analytics_interval,
    ));
}

/// SIGTERM or Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = terminate => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
