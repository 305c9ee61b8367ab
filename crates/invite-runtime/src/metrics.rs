//! Prometheus metrics, one registry per service (no global registry): requests by route,
//! method and status, latency histograms, accept outcomes, pool state, audit write failures,
//! shedding, rate limits, maintenance, how far the outbox is read, and webhook deliveries.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

use invite_store::DbPool;

/// The service's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    accepts: IntCounterVec,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    audit_write_failures: IntCounter,
    rate_limited: IntCounterVec,
    shed: IntCounter,
    shed_after: Histogram,
    deadline_missed: IntCounter,
    maintenance: IntGauge,
    events_read: IntGauge,
    webhook_deliveries: IntCounterVec,
    write_batch_size: Histogram,
    worker_lag: Gauge,
    gateway: GatewaySeries,
    stale_reads: IntCounterVec,
    replica_staleness: Gauge,
}

/// The gateway's series (contract section 10).
#[derive(Debug, Clone)]
struct GatewaySeries {
    connections: IntGauge,
    dispatch: Histogram,
    slow_consumers: IntCounter,
    resumes: IntCounter,
    temporary_removed: IntCounter,
}

impl GatewaySeries {
    fn new() -> Self {
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        Self {
            connections: gauge("gateway_connections", "Gateway sessions open on this instance"),
            dispatch: Histogram::with_opts(
                HistogramOpts::new(
                    "gateway_dispatch_seconds",
                    "From an event's write to its frame being handed to a session's connection",
                )
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            )
            .expect("valid metric"),
            slow_consumers: counter(
                "gateway_slow_consumers_total",
                "Gateway sessions closed because their send queue filled",
            ),
            resumes: counter(
                "gateway_resumes_total",
                "Gateway sessions that resumed from a seq (replayed what they missed)",
            ),
            temporary_removed: counter(
                "temporary_members_removed_total",
                "Temporary members removed after their last gateway session was gone for the grace period",
            ),
        }
    }

    fn collectors(&self) -> [Box<dyn prometheus::core::Collector>; 5] {
        [
            Box::new(self.connections.clone()),
            Box::new(self.dispatch.clone()),
            Box::new(self.slow_consumers.clone()),
            Box::new(self.resumes.clone()),
            Box::new(self.temporary_removed.clone()),
        ]
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A gauge with a valid, fixed name.
fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

/// The load shedder's series (see `db`).
struct SheddingSeries {
    /// Requests shed.
    shed: IntCounter,
    /// How long after its arrival each shed request was refused: a refusal is only worth its
    /// name if it comes at once.
    shed_after: Histogram,
    /// Admitted requests whose deadline passed before their database work was done: what
    /// shedding exists to prevent.
    deadline_missed: IntCounter,
    /// The workers' lag.
    worker_lag: Gauge,
}

fn shedding_series() -> SheddingSeries {
    SheddingSeries {
        shed: IntCounter::new(
            "db_overloaded_total",
            "Requests refused at once (503 OVERLOADED): they could not have been served within their deadline",
        )
        .expect("valid metric"),
        shed_after: Histogram::with_opts(
            HistogramOpts::new(
                "db_shed_seconds",
                "From a shed request's arrival to its refusal (503 OVERLOADED)",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
        )
        .expect("valid metric"),
        deadline_missed: IntCounter::new(
            "db_deadline_missed_total",
            "Admitted requests answered 503 because their deadline passed before the database was done",
        )
        .expect("valid metric"),
        worker_lag: Gauge::new(
            "worker_lag_seconds",
            "How late the workers' event loops wake up (a moving average): the processor is short",
        )
        .expect("valid metric"),
    }
}

/// Why a read that a standby may serve went where it went (see `Door::read_stale`): the
/// `why` label of `stale_reads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadServed {
    /// The standby served it: it was within the staleness bound.
    Replica,
    /// The primary: no read URL is configured.
    NoReplica,
    /// The primary: the standby was not known to be within the staleness bound (behind, or
    /// unreachable when last checked).
    Lagging,
    /// The primary: this instance changed what the read shows within the bound.
    ChangedHere,
    /// The primary, after the standby failed to answer (away, overloaded, its circuit open).
    ReplicaFailed,
    /// The primary, asked again: the standby's answer was a refusal or found nothing, which
    /// may only be the standby being behind.
    Confirmed,
}

impl ReadServed {
    const ALL: [Self; 6] = [
        Self::Replica,
        Self::NoReplica,
        Self::Lagging,
        Self::ChangedHere,
        Self::ReplicaFailed,
        Self::Confirmed,
    ];

    /// The `served_by` and `why` labels.
    fn labels(self) -> [&'static str; 2] {
        match self {
            Self::Replica => ["replica", "current"],
            Self::NoReplica => ["primary", "no_replica"],
            Self::Lagging => ["primary", "lagging"],
            Self::ChangedHere => ["primary", "changed_here"],
            Self::ReplicaFailed => ["primary", "replica_failed"],
            Self::Confirmed => ["primary", "confirmed"],
        }
    }
}

/// Reads a standby may serve, by who served them and why; and how stale the standby may be.
fn replica_series() -> (IntCounterVec, Gauge) {
    let reads = IntCounterVec::new(
        Opts::new(
            "stale_reads_total",
            "Reads a standby may serve (previews missing the cache, lists), by who served them and why",
        ),
        &["served_by", "why"],
    )
    .expect("valid metric");
    for served in ReadServed::ALL {
        reads.with_label_values(&served.labels());
    }
    let staleness = Gauge::new(
        "replica_staleness_seconds",
        "How old the standby's data may be: since the latest primary WAL position it was seen to have replayed was read (-1 without a read URL or before the first check)",
    )
    .expect("valid metric");
    staleness.set(-1.0);
    (reads, staleness)
}

/// Audit entries that failed, and requests refused by rate limits (every bucket a series from
/// the start).
fn refusal_series() -> (IntCounter, IntCounterVec) {
    let audit_write_failures = IntCounter::new(
        "audit_write_failures_total",
        "Audit entries that could not be written (their operations failed with them)",
    )
    .expect("valid metric");
    let rate_limited = IntCounterVec::new(
        Opts::new("rate_limited_total", "Requests refused with 429, by bucket"),
        &["bucket"],
    )
    .expect("valid metric");
    for bucket in crate::rate_limit::bucket::Bucket::ALL {
        rate_limited.with_label_values(&[bucket.name()]);
    }
    (audit_write_failures, rate_limited)
}

/// Sizes of the batches of writes committed together.
fn batch_histogram() -> Histogram {
    Histogram::with_opts(
        HistogramOpts::new(
            "db_write_batch_size",
            "Requests run together by one batch (group commit of accepts; on PostgreSQL, also preview cache misses read by one statement)",
        )
        .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
    )
    .expect("valid metric")
}

impl Metrics {
    /// Registers every series.
    ///
    /// # Panics
    /// Never in practice: the names below are valid and registered once per registry.
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("invite".to_owned()), None).expect("a valid prefix");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route and method",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        let accepts = IntCounterVec::new(
            Opts::new(
                "accept_outcomes_total",
                "Invite accepts by outcome: joined, or the refusal reason",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let pool_connections = gauge("db_pool_connections", "Open database connections");
        let pool_idle = gauge("db_pool_idle_connections", "Idle database connections");
        let pool_max = gauge("db_pool_max_connections", "Configured most database connections");
        let (audit_write_failures, rate_limited) = refusal_series();
        let SheddingSeries { shed, shed_after, deadline_missed, worker_lag } = shedding_series();
        let maintenance = gauge("maintenance", "1 while maintenance mode refuses writes, else 0");
        let events_read = gauge(
            "events_read_seq",
            "The outbox seq this instance has read up to: its caches are current to there",
        );
        let webhook_deliveries = IntCounterVec::new(
            Opts::new("webhook_deliveries_total", "Webhook delivery attempts by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let write_batch_size = batch_histogram();
        let gateway = GatewaySeries::new();
        let (stale_reads, replica_staleness) = replica_series();
        for outcome in ["delivered", "failed"] {
            webhook_deliveries.with_label_values(&[outcome]);
        }
        // Every outcome is a series from the start, so a dashboard sees zeros, not gaps.
        for outcome in ["joined", "unavailable", "error"]
            .into_iter()
            .chain(invite_core::redeem::RedemptionRefused::ALL.iter().map(|reason| reason.label()))
        {
            accepts.with_label_values(&[outcome]);
        }
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(accepts.clone()),
            Box::new(pool_connections.clone()),
            Box::new(pool_idle.clone()),
            Box::new(pool_max.clone()),
            Box::new(audit_write_failures.clone()),
            Box::new(rate_limited.clone()),
            Box::new(shed.clone()),
            Box::new(shed_after.clone()),
            Box::new(deadline_missed.clone()),
            Box::new(maintenance.clone()),
            Box::new(events_read.clone()),
            Box::new(webhook_deliveries.clone()),
            Box::new(write_batch_size.clone()),
            Box::new(worker_lag.clone()),
            Box::new(stale_reads.clone()),
            Box::new(replica_staleness.clone()),
        ]
        .into_iter()
        .chain(gateway.collectors())
        {
            registry.register(collector).expect("each series is registered once");
        }
        Self {
            registry,
            requests,
            latency,
            accepts,
            pool_connections,
            pool_idle,
            pool_max,
            audit_write_failures,
            rate_limited,
            shed,
            shed_after,
            deadline_missed,
            maintenance,
            events_read,
            webhook_deliveries,
            write_batch_size,
            worker_lag,
            gateway,
            stale_reads,
            replica_staleness,
        }
    }

    /// Counts a read a standby may serve, by who served it and why.
    pub fn observe_stale_read(&self, served: ReadServed) {
        self.stale_reads.with_label_values(&served.labels()).inc();
    }

    /// How old the standby's data may be, as last checked; `None` while unknown.
    pub fn set_replica_staleness(&self, staleness: Option<std::time::Duration>) {
        self.replica_staleness.set(staleness.map_or(-1.0, |staleness| staleness.as_secs_f64()));
    }

    /// Gateway sessions open on this instance.
    pub fn set_gateway_connections(&self, open: usize) {
        self.gateway.connections.set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// How long an event took from its write to a session's connection.
    pub fn observe_gateway_dispatch(&self, seconds: f64) {
        self.gateway.dispatch.observe(seconds);
    }

    /// A gateway session closed for reading too slowly.
    pub fn gateway_slow_consumer(&self) {
        self.gateway.slow_consumers.inc();
    }

    /// A gateway session resumed.
    pub fn gateway_resume(&self) {
        self.gateway.resumes.inc();
    }

    /// A temporary member was removed.
    pub fn temporary_member_removed(&self) {
        self.gateway.temporary_removed.inc();
    }

    /// Records the size of a batch of writes committed together.
    pub fn observe_batch(&self, size: usize) {
        #[expect(clippy::cast_precision_loss, reason = "batches hold at most 64 writes")]
        self.write_batch_size.observe(size as f64);
    }

    /// The outbox `seq` this instance has read (and applied to its caches) up to.
    pub fn set_events_read(&self, seq: i64) {
        self.events_read.set(seq);
    }

    /// Counts a webhook delivery attempt.
    pub fn observe_webhook_delivery(&self, delivered: bool) {
        self.webhook_deliveries
            .with_label_values(&[if delivered { "delivered" } else { "failed" }])
            .inc();
    }

    /// Counts a 429 of `bucket`.
    pub fn observe_rate_limited(&self, bucket: &str) {
        self.rate_limited.with_label_values(&[bucket]).inc();
    }

    /// Counts a request shed as overload, refused `after` its arrival.
    pub fn observe_shed(&self, after: std::time::Duration) {
        self.shed.inc();
        self.shed_after.observe(after.as_secs_f64());
    }

    /// Counts an admitted request whose deadline passed before its database work was done.
    pub fn observe_deadline_missed(&self) {
        self.deadline_missed.inc();
    }

    /// Whether maintenance mode is refusing writes.
    pub fn set_maintenance(&self, active: bool) {
        self.maintenance.set(i64::from(active));
    }

    /// Counts a finished request; `route` is the matched pattern (`/servers/{server_id}`), never
    /// the concrete path, so the number of series stays bounded.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        // Any token is a valid HTTP method; labelling each one a client invents would let
        // clients grow the series without bound.
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
            _ => "OTHER",
        };
        self.requests.with_label_values(&[route, method, &status.to_string()]).inc();
        self.latency.with_label_values(&[route, method]).observe(seconds);
    }

    /// Counts an accept by outcome (`joined`, `expired`, `unavailable`, ...).
    pub fn observe_accept(&self, outcome: &str) {
        self.accepts.with_label_values(&[outcome]).inc();
    }

    /// The text exposition, with the pool and audit figures read now, and the event loops'
    /// recent `lag`.
    pub fn render(&self, pool: &DbPool, lag: std::time::Duration) -> String {
        let pool = pool.state();
        self.pool_connections.set(i64::from(pool.connections));
        self.pool_idle.set(i64::from(pool.idle));
        self.pool_max.set(i64::from(pool.max_size));
        self.worker_lag.set(lag.as_secs_f64());
        let failures = invite_store::repo::audit_write_failures();
        self.audit_write_failures.inc_by(failures.saturating_sub(self.audit_write_failures.get()));
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
