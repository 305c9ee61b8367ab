//! The one bridge between async handlers and the synchronous store, and the guard in front of
//! the database (contract section 6).
//!
//! Every database call goes through [`Db::run`]:
//! - **Deadline.** A request's database work (waiting for a thread and a connection, then the
//!   statements) must be over within `INVITE_DB_TIMEOUT` of the request's arrival; past it the
//!   request is answered 503 `SERVICE_UNAVAILABLE` at once, and a write still open then rolls
//!   back rather than commits (see `invite_store::DbPool::run_by`).
//! - **Load shedding.** When more work is waiting than the threads can start within
//!   `INVITE_DB_QUEUE_TIMEOUT` (by Little's law: waiting × the recent time each holds a thread
//!   ÷ threads), new work is refused at once with 503 `OVERLOADED`: a longer queue would only
//!   make every admitted request slower, since the database is already as busy as it gets.
//! - **A busy machine.** The queue above only sees the database. When the processor is what
//!   runs out (the service, the database and whatever else shares the machine, all busy), a
//!   request waits in the kernel's queues and for a worker before it reaches the gate, where
//!   no count of the database's queue can see it, and refusals become as slow as everything
//!   else. Each worker measures how late its event loop runs ([`Db::watch_lag`]); while the
//!   lag is over `INVITE_SHED_LAG`, the work in flight is capped and the cap cut by a quarter
//!   every [`LAG_TICK`], and while it is not, the cap grows by one a tick when it binds
//!   (additive increase, multiplicative decrease, as TCP's congestion control and adaptive
//!   concurrency limiters such as Netflix's `concurrency-limits` do). Fewer admitted joins
//!   leave the processor to the refusals, which then stay fast.
//! - **Circuit breaker.** After consecutive failures to reach the database, requests are
//!   answered 503 at once instead of each waiting out the deadline; one request every
//!   [`PROBE_INTERVAL`] goes through to find out whether the database is back.
//! - **Health.** What the bridge observes feeds `/status` ([`DbHealth`]).
//!
//! The checkout and the work run on actix's blocking pool (never on a worker thread, which
//! would stall every request it serves), and the request's tracing span follows them there.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::web;
use chrono::{DateTime, Utc};
use invite_store::batch::BatchWrite;
use invite_store::repo::{IdempotencyClaim, Keyed, RecordedResponse};
use invite_store::{DbConnection, DbPool, StoreError, StoreResult};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;

/// Consecutive failures to reach the database that open the circuit.
const FAILURES_TO_OPEN: u32 = 3;

/// How often a request is let through to the database while the circuit is open.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// How long a shed request or a failure keeps the database `degraded` in `/status`.
const TROUBLE_WINDOW: Duration = Duration::from_secs(30);

/// Kept from the request's database budget for the rest of its life (writing the answer), and
/// for the time before its arrival was noted (its connection accepted and its head read), so
/// the client has its answer within `INVITE_DB_TIMEOUT` even on a busy machine: 20 ms was
/// measured to fall short (2.04 s) with two cores shared by five services, and 100 ms too
/// (2.034 s, a debug build beside the SIGKILL and SIGTERM fault tests, 2026-12-04). At most an
/// eighth of the timeout, so that a short `INVITE_DB_TIMEOUT` still leaves the work most of it.
const ANSWER_MARGIN: Duration = Duration::from_millis(250);

/// The time a request's database work may take, counted from its arrival: `timeout`
/// (`INVITE_DB_TIMEOUT`) less [`ANSWER_MARGIN`], the margin at most an eighth of it.
fn work_budget(timeout: Duration) -> Duration {
    timeout.saturating_sub(ANSWER_MARGIN.min(timeout / 8))
}

tokio::task_local! {
    /// When the request being served arrived; set by [`since_arrival`].
    static ARRIVED: Instant;
}

/// Runs a request's future knowing when it arrived, so its database deadline counts from then.
pub async fn since_arrival<F: std::future::Future>(arrived: Instant, request: F) -> F::Output {
    ARRIVED.scope(arrived, request).await
}

/// How the bridge is tuned.
#[derive(Debug, Clone, Copy)]
pub struct DbLimits {
    /// Longest a request's database work may take, from its arrival (`INVITE_DB_TIMEOUT`).
    pub timeout: Duration,
    /// Longest expected wait before new work is shed (`INVITE_DB_QUEUE_TIMEOUT`).
    pub queue_timeout: Duration,
    /// Threads that run database work at once (every worker's blocking pool together).
    pub threads: usize,
    /// Event-loop lag above which the work in flight is capped (`INVITE_SHED_LAG`); zero
    /// leaves it uncapped.
    pub lag_limit: Duration,
}

/// How often each worker measures its event loop's lag and the cap on work in flight moves.
pub const LAG_TICK: Duration = Duration::from_millis(10);

/// The cap on work in flight while the event loops keep time: none.
const UNCAPPED: usize = usize::MAX;

/// A handle on the pool and its guard, cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: DbPool,
    gate: Arc<Gate>,
    metrics: Arc<Metrics>,
    combiner: Arc<Combiner>,
}

/// Most writes one batch commits (see [`Db::run_combined`]).
const MAX_BATCH: usize = 64;

/// The writes waiting to be combined, by key. A key is present while a leader is committing
/// its writes: whoever finds it absent becomes the leader (see [`Db::run_combined`]).
#[derive(Debug, Default)]
struct Combiner {
    queues: Mutex<HashMap<String, VecDeque<Pending>>>,
}

/// A write waiting for its batch.
struct Pending {
    write: Box<dyn BatchWrite>,
    /// Counted as work waiting for a thread: the leader, and the writes that queued behind a
    /// full batch (see [`Db::run_combined`]).
    waiting: Option<Waiting>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

/// A write of [`Db::run_combined`]: its work, and the request awaiting its outcome.
struct Job<T, F> {
    work: F,
    deadline: Instant,
    outcome: Option<StoreResult<T>>,
    reply: Option<oneshot::Sender<StoreResult<T>>>,
}

impl<T, F> BatchWrite for Job<T, F>
where
    T: Send,
    F: Fn(&mut DbConnection) -> StoreResult<T> + Send,
{
    fn run(&mut self, conn: &mut DbConnection) -> bool {
        let outcome = (self.work)(conn);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn settle(mut self: Box<Self>, committed: StoreResult<()>) {
        let answer = committed.and_then(|()| {
            self.outcome.take().unwrap_or_else(|| {
                Err(StoreError::Unavailable("the write was settled without running".into()))
            })
        });
        if let Some(reply) = self.reply.take() {
            // The request may have been answered 503 already; then nobody listens.
            let _ = reply.send(answer);
        }
    }
}

impl Db {
    /// Wraps a pool; `limits.threads` must match the blocking threads the server runs.
    pub fn new(pool: DbPool, limits: DbLimits, metrics: Arc<Metrics>) -> Self {
        Self { pool, gate: Arc::new(Gate::new(limits)), metrics, combiner: Arc::default() }
    }

    /// The pool, for health checks and metrics.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// What the bridge has observed of the database.
    pub fn health(&self) -> DbHealth {
        self.gate.health(Instant::now())
    }

    /// Runs `work` with a pooled connection on the blocking pool, within the request's deadline.
    pub async fn run<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        let (deadline, probe, _in_flight) = self.admit()?;
        let waiting = Waiting::new(&self.gate);
        let gate = Arc::clone(&self.gate);
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let blocking = web::block(move || {
            let started = waiting.start();
            let result = span.in_scope(|| pool.run_by(deadline, work));
            gate.observe_hold(started.elapsed());
            result
        });
        let outcome = match tokio::time::timeout_at(deadline.into(), blocking).await {
            Err(_) => Err(StoreError::Unavailable("the database did not answer in time".into())),
            Ok(Err(error)) => {
                return Err(ApiError::internal(format!("the blocking pool failed: {error}")));
            }
            Ok(Ok(outcome)) => outcome,
        };
        self.observe(outcome, probe)
    }

    /// The request's deadline, counted from its arrival, and its admission by the gate (a
    /// refusal is counted when it is for overload); the request is in flight until the
    /// returned guard drops.
    fn admit(&self) -> ApiResult<(Instant, Probe, InFlight)> {
        let now = Instant::now();
        let arrived = ARRIVED.try_with(|arrived| *arrived).unwrap_or(now);
        let deadline = arrived + work_budget(self.gate.limits.timeout);
        let probe = self.gate.admit(now, deadline).inspect_err(|error| {
            if matches!(error, ApiError::Overloaded) {
                self.metrics.observe_shed();
            }
        })?;
        Ok((deadline, probe, InFlight::new(&self.gate)))
    }

    /// Measures, every [`LAG_TICK`], how late the event loop it runs on wakes up, and moves
    /// the cap on work in flight accordingly (see the module's documentation). Spawn one on
    /// each worker; it ends with the worker.
    pub async fn watch_lag(self) {
        if self.gate.limits.lag_limit.is_zero() {
            return;
        }
        let mut due = tokio::time::Instant::now() + LAG_TICK;
        loop {
            tokio::time::sleep_until(due).await;
            let now = tokio::time::Instant::now();
            self.gate.tick(now.saturating_duration_since(due));
            due = now + LAG_TICK;
        }
    }

    /// The event loops' recent lag, and the cap on database work in flight (`None`: uncapped).
    pub fn load(&self) -> (Duration, Option<usize>) {
        let cap = self.gate.ceiling.load(Ordering::Relaxed);
        (
            Duration::from_nanos(self.gate.lag_nanos.load(Ordering::Relaxed)),
            (cap != UNCAPPED).then_some(cap),
        )
    }

    /// Tells the gate how the database work went, and turns its outcome into the API's.
    fn observe<T>(&self, outcome: StoreResult<T>, probe: Probe) -> ApiResult<T> {
        self.gate.observe(outcome.as_ref().err(), probe, Instant::now());
        outcome.map_err(ApiError::from)
    }

    /// Runs the write `work` combined with the concurrent writes of the same `key`: group
    /// commit (see `invite_store::batch`), with a combiner in front of it. The first request
    /// to find no batch in progress for its key becomes the leader: on a blocking thread with
    /// one connection, it commits what has queued for the key, batch after batch (up to
    /// [`MAX_BATCH`] writes each), until the queue is empty. Every other request queues its
    /// write and awaits its own outcome without holding a thread or a connection, so a batch
    /// can grow past the pool's size. Deadlines, shedding and the circuit are those of
    /// [`Db::run`]; `work` may run more than once (again alone when its batch fails), so it
    /// must be a complete write of its own, as every store write is.
    pub async fn run_combined<T, F>(&self, key: String, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: Fn(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        let (deadline, probe, _in_flight) = self.admit()?;
        let (reply, answer) = oneshot::channel();
        let write: Box<dyn BatchWrite> =
            Box::new(Job { work, deadline, outcome: None, reply: Some(reply) });
        let lead = {
            let mut queues = self.combiner.queues.lock();
            if let Some(queue) = queues.get_mut(&key) {
                // The next batch takes up to MAX_BATCH queued writes at once, on the leader's
                // thread: only a write queued behind a full batch waits as if for a thread of
                // its own. (Counting every queued write so refused a closed loop of 64 joins
                // on SQLite, half the machine's rate, whenever one commit was slow.)
                let waiting = (queue.len() >= MAX_BATCH).then(|| Waiting::new(&self.gate));
                queue.push_back(Pending { write, waiting });
                false
            } else {
                let waiting = Some(Waiting::new(&self.gate));
                queues.insert(key.clone(), VecDeque::from([Pending { write, waiting }]));
                true
            }
        };
        if lead {
            let (db, span) = (self.clone(), tracing::Span::current());
            // Not awaited: the leader serves its followers even if its own request gives up.
            drop(web::block(move || span.in_scope(|| db.lead(&key))));
        }
        let outcome = match tokio::time::timeout_at(deadline.into(), answer).await {
            Err(_) => Err(StoreError::Unavailable("the database did not answer in time".into())),
            Ok(Err(_)) => Err(StoreError::Unavailable("the write was dropped unanswered".into())),
            Ok(Ok(outcome)) => outcome,
        };
        self.observe(outcome, probe)
    }

    /// The leader's loop (see [`Db::run_combined`]): commits the key's queue, batch after
    /// batch, and gives the key up once the queue is empty.
    fn lead(&self, key: &str) {
        /// Hands the key on if the leader unwinds (a write that panicked: its batch-mates
        /// are answered 503), so that what queued meanwhile is not left behind a leader that
        /// is gone: a new leader takes the queue, or the key is given up if it is empty.
        struct Abdicate<'a> {
            db: &'a Db,
            key: &'a str,
        }
        impl Drop for Abdicate<'_> {
            fn drop(&mut self) {
                if !std::thread::panicking() {
                    return;
                }
                let mut queues = self.db.combiner.queues.lock();
                if queues.get(self.key).is_none_or(VecDeque::is_empty) {
                    queues.remove(self.key);
                } else {
                    let (db, key) = (self.db.clone(), self.key.to_owned());
                    drop(web::block(move || db.lead(&key)));
                }
            }
        }
        let _abdicate = Abdicate { db: self, key };
        loop {
            let pending: Vec<Pending> = {
                let mut queues = self.combiner.queues.lock();
                let Some(queue) = queues.get_mut(key) else { return };
                if queue.is_empty() {
                    queues.remove(key);
                    return;
                }
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            let size = pending.len();
            let writes: Vec<Box<dyn BatchWrite>> = pending
                .into_iter()
                .map(|Pending { write, waiting }| {
                    if let Some(waiting) = waiting {
                        waiting.start();
                    }
                    write
                })
                .collect();
            let latest =
                writes.iter().map(|write| write.deadline()).max().unwrap_or_else(Instant::now);
            let started = Instant::now();
            // A failed checkout drops the writes unsettled: their requests hear "dropped
            // unanswered", a 503 like any failure to reach the database.
            let _ = self.pool.run_by(latest, |conn| {
                invite_store::batch::commit_batch(conn, writes);
                Ok(())
            });
            self.metrics.observe_batch(size);
            // Each write held the thread for its share of the batch.
            let share = u32::try_from(size).unwrap_or(u32::MAX).max(1);
            self.gate.observe_hold(started.elapsed() / share);
        }
    }

    /// Runs a write whose response `render` describes. With an Idempotency-Key (`claim`), the
    /// write and the record of its response commit together, and a key already answered is
    /// replayed without doing the work again (see `invite_store::repo::recorded`); a fresh
    /// answer comes with the work's value.
    pub async fn write<T, F, R>(
        &self,
        claim: Option<IdempotencyClaim>,
        now: DateTime<Utc>,
        work: F,
        render: R,
    ) -> ApiResult<Keyed<(RecordedResponse, T)>>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
        R: FnOnce(&T) -> RecordedResponse + Send + 'static,
    {
        self.run(move |conn| match claim {
            None => work(conn).map(|value| Keyed::Fresh((render(&value), value))),
            Some(claim) => invite_store::repo::recorded(conn, &claim, now, work, render),
        })
        .await
    }
}

/// Counts a request's database work as in flight, from its admission to its answer.
struct InFlight(Arc<Gate>);

impl InFlight {
    fn new(gate: &Arc<Gate>) -> Self {
        gate.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(gate))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a request as waiting until its work starts on a thread (or is dropped unstarted).
struct Waiting {
    gate: Option<Arc<Gate>>,
}

impl Waiting {
    fn new(gate: &Arc<Gate>) -> Self {
        gate.waiting.fetch_add(1, Ordering::AcqRel);
        Self { gate: Some(Arc::clone(gate)) }
    }

    fn start(mut self) -> Instant {
        if let Some(gate) = self.gate.take() {
            gate.waiting.fetch_sub(1, Ordering::AcqRel);
            gate.progress();
        }
        Instant::now()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Whether a request was let through as the open circuit's probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe(bool);

/// The circuit's state.
#[derive(Debug, Clone, Copy)]
enum Circuit {
    /// Requests go through; `failures` in a row have failed.
    Closed { failures: u32 },
    /// The database is away since `since`; the next probe may go at `next_probe`.
    Open { since: Instant, next_probe: Instant, probing: bool },
}

/// What the bridge remembers for `/status`.
#[derive(Debug, Clone, Copy)]
struct Record {
    circuit: Circuit,
    /// The latest failure to reach the database, and the latest request shed.
    last_failure: Option<Instant>,
    last_shed: Option<Instant>,
    /// When the latest spell of trouble began (for "degraded since").
    trouble_began: Option<Instant>,
    /// When the circuit last closed again.
    recovered: Option<Instant>,
}

#[derive(Debug)]
struct Gate {
    limits: DbLimits,
    waiting: AtomicUsize,
    /// Requests admitted whose database work has not been answered yet.
    in_flight: AtomicUsize,
    /// The most requests in flight admitted while the processor is short ([`UNCAPPED`] while
    /// it is not).
    ceiling: AtomicUsize,
    /// The event loops' recent lag, in nanoseconds (an exponential moving average).
    lag_nanos: AtomicU64,
    /// Recent time a request holds a thread, in nanoseconds (an exponential moving average).
    hold_nanos: AtomicU64,
    /// When work last started or finished, in nanoseconds since `started`.
    progress_nanos: AtomicU64,
    record: Mutex<Record>,
    started: Instant,
}

impl Gate {
    fn new(limits: DbLimits) -> Self {
        Self {
            limits: DbLimits { threads: limits.threads.max(1), ..limits },
            waiting: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            ceiling: AtomicUsize::new(UNCAPPED),
            lag_nanos: AtomicU64::new(0),
            hold_nanos: AtomicU64::new(0),
            progress_nanos: AtomicU64::new(0),
            record: Mutex::new(Record {
                circuit: Circuit::Closed { failures: 0 },
                last_failure: None,
                last_shed: None,
                trouble_began: None,
                recovered: None,
            }),
            started: Instant::now(),
        }
    }

    /// Lets a request through, or refuses it at once: the circuit is open (503
    /// `SERVICE_UNAVAILABLE`), or the queue could not be served in time (503 `OVERLOADED`).
    fn admit(&self, now: Instant, deadline: Instant) -> ApiResult<Probe> {
        let probe = {
            let mut record = self.record.lock();
            match &mut record.circuit {
                Circuit::Closed { .. } => Probe(false),
                Circuit::Open { next_probe, probing, .. } => {
                    if *probing || now < *next_probe {
                        return Err(ApiError::Unavailable("the database is unreachable".into()));
                    }
                    *probing = true;
                    Probe(true)
                }
            }
        };
        if !probe.0
            && self.in_flight.load(Ordering::Acquire) >= self.ceiling.load(Ordering::Relaxed)
        {
            self.shed(now);
            return Err(ApiError::Overloaded);
        }
        let waiting = self.waiting.load(Ordering::Acquire);
        if !probe.0 && waiting >= self.limits.threads {
            // Work that has not finished tells as much as work that has: when nothing has
            // started or finished for a while (a database stalling), each thread is held at
            // least that long.
            let stalled = now.saturating_duration_since(
                self.started + Duration::from_nanos(self.progress_nanos.load(Ordering::Relaxed)),
            );
            let average = Duration::from_nanos(self.hold_nanos.load(Ordering::Relaxed));
            let hold = average.max(stalled);
            // Integer arithmetic: thread counts and queues are far below u32::MAX.
            let expected = hold * u32::try_from(waiting + 1).unwrap_or(u32::MAX)
                / u32::try_from(self.limits.threads).unwrap_or(u32::MAX);
            let budget = self.limits.queue_timeout.min(deadline.saturating_duration_since(now));
            if expected > budget {
                self.shed(now);
                return Err(ApiError::Overloaded);
            }
        }
        Ok(probe)
    }

    /// Records a request refused as overload, for `/status`.
    fn shed(&self, now: Instant) {
        let mut record = self.record.lock();
        begin_trouble(&mut record, now);
        record.last_shed = Some(now);
    }

    /// One worker's measure of its event loop's `lag`: moves the cap on work in flight (see
    /// the module's documentation).
    fn tick(&self, lag: Duration) {
        let sample = u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX);
        // A single late wake-up (a page fault, a preempted thread) moves the average by an
        // eighth: the cap follows a machine that stays short, not a hiccup.
        let old = self.lag_nanos.load(Ordering::Relaxed);
        let smoothed = old - old / 8 + sample / 8;
        self.lag_nanos.store(smoothed, Ordering::Relaxed);
        let in_flight = self.in_flight.load(Ordering::Acquire);
        let ceiling = self.ceiling.load(Ordering::Relaxed);
        let lag = Duration::from_nanos(smoothed);
        let next = if lag > self.limits.lag_limit {
            // Cut from what is in flight, not from a cap far above it.
            (ceiling.min(in_flight) * 3 / 4).max(1)
        } else if ceiling != UNCAPPED && in_flight >= ceiling {
            ceiling + 1
        } else if ceiling != UNCAPPED && in_flight < ceiling / 2 && lag < self.limits.lag_limit / 4
        {
            // The load fell away and the machine keeps time: no cap is needed.
            UNCAPPED
        } else {
            ceiling
        };
        self.ceiling.store(next, Ordering::Relaxed);
    }

    /// Notes that work started or finished now.
    fn progress(&self) {
        let now = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.progress_nanos.fetch_max(now, Ordering::Relaxed);
    }

    fn observe_hold(&self, hold: Duration) {
        self.progress();
        let sample = u64::try_from(hold.as_nanos()).unwrap_or(u64::MAX);
        // An update lost to a concurrent one only delays the average by one sample.
        let old = self.hold_nanos.load(Ordering::Relaxed);
        let new = if old == 0 { sample } else { old - old / 8 + sample / 8 };
        self.hold_nanos.store(new, Ordering::Relaxed);
    }

    /// Records the outcome of a request that reached for the database.
    fn observe(&self, error: Option<&StoreError>, probe: Probe, now: Instant) {
        let failed = error.is_some_and(StoreError::is_unavailable);
        let mut record = self.record.lock();
        if failed {
            begin_trouble(&mut record, now);
            record.last_failure = Some(now);
            record.circuit = match record.circuit {
                Circuit::Closed { failures } if failures + 1 < FAILURES_TO_OPEN => {
                    Circuit::Closed { failures: failures + 1 }
                }
                Circuit::Closed { .. } => {
                    tracing::warn!("the database is unreachable: answering 503 until it is back");
                    Circuit::Open { since: now, next_probe: now + PROBE_INTERVAL, probing: false }
                }
                Circuit::Open { since, .. } => {
                    Circuit::Open { since, next_probe: now + PROBE_INTERVAL, probing: false }
                }
            };
        } else if probe.0 || matches!(record.circuit, Circuit::Closed { .. }) {
            if matches!(record.circuit, Circuit::Open { .. }) {
                tracing::info!("the database is back");
                record.recovered = Some(now);
            }
            record.circuit = Circuit::Closed { failures: 0 };
        }
    }

    fn health(&self, now: Instant) -> DbHealth {
        let record = *self.record.lock();
        if let Circuit::Open { since, .. } = record.circuit {
            return DbHealth { state: DbState::Unreachable, since };
        }
        let latest =
            [record.last_failure, record.last_shed, record.recovered].into_iter().flatten().max();
        match latest {
            Some(latest) if now.duration_since(latest) <= TROUBLE_WINDOW => DbHealth {
                state: DbState::Degraded {
                    shedding: record
                        .last_shed
                        .is_some_and(|shed| now.duration_since(shed) <= TROUBLE_WINDOW),
                },
                since: [record.trouble_began, record.recovered]
                    .into_iter()
                    .flatten()
                    .filter(|began| *began <= latest)
                    .min()
                    .unwrap_or(latest),
            },
            Some(latest) => DbHealth { state: DbState::Healthy, since: latest + TROUBLE_WINDOW },
            None => DbHealth { state: DbState::Healthy, since: self.started },
        }
    }
}

/// Marks the start of a spell of trouble, unless one is going on.
fn begin_trouble(record: &mut Record, now: Instant) {
    let quiet = [record.last_failure, record.last_shed]
        .into_iter()
        .flatten()
        .all(|last| now.duration_since(last) > TROUBLE_WINDOW);
    if quiet && !matches!(record.circuit, Circuit::Open { .. }) {
        record.trouble_began = Some(now);
    }
}

/// The database as the bridge sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbState {
    /// Answering, with nothing shed and no failure lately.
    Healthy,
    /// Answering, but requests were shed or failed lately (`shedding` says whether any was
    /// shed).
    Degraded {
        /// Whether requests were refused as overload.
        shedding: bool,
    },
    /// Unreachable: the circuit is open.
    Unreachable,
}

/// The database's state and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbHealth {
    /// The state.
    pub state: DbState,
    /// Since when.
    pub since: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_keeps_250_ms_of_the_timeout_or_an_eighth_of_a_short_one() {
        assert_eq!(work_budget(Duration::from_secs(2)), Duration::from_millis(1_750));
        assert_eq!(work_budget(Duration::from_millis(400)), Duration::from_millis(350));
        assert_eq!(work_budget(Duration::ZERO), Duration::ZERO);
    }

    fn gate(threads: usize) -> Gate {
        Gate::new(DbLimits {
            timeout: Duration::from_secs(2),
            queue_timeout: Duration::from_millis(100),
            threads,
            lag_limit: Duration::from_millis(30),
        })
    }

    /// Ticks until the smoothed lag has settled at `lag`.
    fn lag_for_a_while(gate: &Gate, lag: Duration) {
        for _ in 0..100 {
            gate.tick(lag);
        }
    }

    #[test]
    fn a_lagging_machine_caps_the_work_in_flight_and_a_quiet_one_lifts_the_cap() {
        let gate = Arc::new(gate(16));
        let now = Instant::now();
        let deadline = now + Duration::from_secs(2);
        let admitted: Vec<InFlight> = (0..40).map(|_| InFlight::new(&gate)).collect();
        // Late by 10 ms, under the limit: nothing is capped however much is in flight.
        lag_for_a_while(&gate, Duration::from_millis(10));
        assert!(gate.admit(now, deadline).is_ok());
        // Late by 50 ms: the cap falls below the 40 in flight and new work is refused.
        lag_for_a_while(&gate, Duration::from_millis(50));
        let cap = gate.ceiling.load(Ordering::Relaxed);
        assert!(cap < 40, "{cap}");
        assert!(matches!(gate.admit(now, deadline), Err(ApiError::Overloaded)));
        assert!(matches!(gate.health(now).state, DbState::Degraded { shedding: true }));
        // It never falls to nothing: one request at a time still goes through.
        assert!(cap >= 1);
        // Back on time with the work still in flight: once the average has come down, the cap
        // grows by one a tick.
        for _ in 0..10 {
            gate.tick(Duration::ZERO);
        }
        let settled = gate.ceiling.load(Ordering::Relaxed);
        for _ in 0..5 {
            gate.tick(Duration::ZERO);
        }
        assert_eq!(gate.ceiling.load(Ordering::Relaxed), settled + 5);
        // Once the work has drained and the machine keeps time, the cap is gone.
        drop(admitted);
        lag_for_a_while(&gate, Duration::ZERO);
        assert_eq!(gate.ceiling.load(Ordering::Relaxed), UNCAPPED);
        assert!(gate.admit(now, deadline).is_ok());
    }

    #[test]
    fn a_stalled_database_is_shed_before_anything_finishes() {
        let gate = gate(4);
        let later = gate.started + Duration::from_millis(500);
        gate.waiting.store(4, Ordering::Relaxed);
        // Nothing has started or finished for 500 ms: five in line on four threads wait over
        // 100 ms.
        assert!(matches!(
            gate.admit(later, later + Duration::from_secs(2)),
            Err(ApiError::Overloaded)
        ));
    }

    #[test]
    fn sheds_only_a_queue_that_cannot_start_in_time() {
        let gate = gate(4);
        let now = Instant::now();
        let deadline = now + Duration::from_secs(2);
        gate.observe_hold(Duration::from_millis(10));
        // 40 waiting on 4 threads holding 10 ms each: about 100 ms to start.
        gate.waiting.store(39, Ordering::Relaxed);
        assert!(gate.admit(now, deadline).is_ok());
        gate.waiting.store(44, Ordering::Relaxed);
        assert!(matches!(gate.admit(now, deadline), Err(ApiError::Overloaded)));
        // Fewer waiting than threads is no queue at all, however slow the work.
        gate.observe_hold(Duration::from_secs(10));
        gate.waiting.store(3, Ordering::Relaxed);
        assert!(gate.admit(now, deadline).is_ok());
        assert_eq!(gate.health(now).state, DbState::Degraded { shedding: true });
    }

    #[test]
    fn failures_open_the_circuit_and_a_probe_closes_it() {
        let gate = gate(4);
        let start = Instant::now();
        let deadline = start + Duration::from_secs(2);
        let away = StoreError::Unavailable("connection refused".into());
        for _ in 0..FAILURES_TO_OPEN {
            assert_eq!(gate.admit(start, deadline).unwrap(), Probe(false));
            gate.observe(Some(&away), Probe(false), start);
        }
        assert_eq!(gate.health(start), DbHealth { state: DbState::Unreachable, since: start });
        assert!(matches!(gate.admit(start, deadline), Err(ApiError::Unavailable(_))));
        let later = start + PROBE_INTERVAL;
        assert_eq!(gate.admit(later, deadline).unwrap(), Probe(true));
        // One probe at a time.
        assert!(gate.admit(later, deadline).is_err());
        gate.observe(None, Probe(true), later);
        assert!(gate.admit(later, deadline).is_ok());
        let health = gate.health(later);
        assert_eq!(health.state, DbState::Degraded { shedding: false });
        assert_eq!(health.since, start);
        let quiet = later + TROUBLE_WINDOW + Duration::from_secs(1);
        assert_eq!(
            gate.health(quiet),
            DbHealth { state: DbState::Healthy, since: later + TROUBLE_WINDOW }
        );
    }

    #[test]
    fn a_refusal_is_not_a_failure() {
        let gate = gate(4);
        let now = Instant::now();
        let refused = StoreError::NotFound(invite_store::Entity::Invite);
        for _ in 0..10 {
            gate.observe(Some(&refused), Probe(false), now);
        }
        assert!(gate.admit(now, now + Duration::from_secs(2)).is_ok());
        assert_eq!(gate.health(now).state, DbState::Healthy);
    }

    /// A bridge over a SQLite file in `dir`, with a 10 s request deadline.
    fn sqlite_db(dir: &tempfile::TempDir, queue_timeout: Duration, threads: usize) -> Db {
        let url = invite_store::DatabaseUrl::Sqlite(
            dir.path().join("combiner.db").to_string_lossy().into_owned(),
        );
        let pool = DbPool::new(&invite_store::PoolConfig::new(url));
        let limits = DbLimits {
            timeout: Duration::from_secs(10),
            queue_timeout,
            threads,
            lag_limit: Duration::ZERO,
        };
        Db::new(pool, limits, Arc::new(Metrics::new()))
    }

    /// Writes queued behind a batch wait for that batch, not for threads: a full batch's worth
    /// behind a slow commit is no overload (a closed loop of 64 joins on SQLite was refused
    /// whenever one commit stalled), while writes queued past a full batch still count.
    #[actix_web::test]
    async fn writes_queued_for_the_next_batch_are_not_a_queue_for_threads() {
        use futures_util::FutureExt as _;

        let dir = tempfile::tempdir().unwrap();
        let db = sqlite_db(&dir, Duration::from_millis(100), 2);
        // Polled once: refused at once, or queued (and left to commit on its own).
        let write = |hold: Duration| {
            db.run_combined("the-key".to_owned(), move |_conn: &mut DbConnection| {
                std::thread::sleep(hold);
                Ok(())
            })
            .now_or_never()
        };
        let queued = || db.combiner.queues.lock().get("the-key").map_or(0, VecDeque::len);
        // The leader's batch holds its thread for 800 ms: a commit that stalls.
        assert!(write(Duration::from_millis(800)).is_none());
        let started = Instant::now();
        while db.gate.waiting.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for _ in 0..MAX_BATCH - 1 {
            assert!(write(Duration::ZERO).is_none(), "refused behind one slow batch");
        }
        assert_eq!(db.gate.waiting.load(Ordering::Acquire), 0);
        // Stalled for 200 ms with 63 queued: the next batch takes them all.
        tokio::time::sleep(Duration::from_millis(200).saturating_sub(started.elapsed())).await;
        assert!(write(Duration::ZERO).is_none(), "refused with one batch queued");
        // Past a full batch, each write waits for a batch of its own, on one of two threads:
        // two are queued, and the next is refused.
        assert!(write(Duration::ZERO).is_none());
        assert!(write(Duration::ZERO).is_none());
        assert_eq!(db.gate.waiting.load(Ordering::Acquire), 2);
        assert!(matches!(write(Duration::ZERO), Some(Err(ApiError::Overloaded))));
        assert!(started.elapsed() < Duration::from_millis(800), "the stall ended too early");
        assert_eq!(queued(), MAX_BATCH + 2);
        // Everything queued commits, and nothing is left counted.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !db.combiner.queues.lock().is_empty() {
            assert!(Instant::now() < deadline, "the queue was never served");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(db.gate.waiting.load(Ordering::Acquire), 0);
    }

    /// A write that panics in a leader's batch must not leave its key led by nobody: the
    /// next write of the key leads again and commits.
    #[actix_web::test]
    async fn a_panicking_write_does_not_stall_its_key() {
        let dir = tempfile::tempdir().unwrap();
        // A stalled key shows as the deadline passing; a generous one keeps a machine busy
        // with the rest of the suite from looking like a stall.
        let db = sqlite_db(&dir, Duration::from_secs(5), 4);
        let key = "the-key".to_owned();
        let panicked = db
            .run_combined(key.clone(), |_conn: &mut DbConnection| -> StoreResult<()> {
                panic!("a write that panics")
            })
            .await;
        assert!(matches!(panicked, Err(ApiError::Unavailable(_))), "{panicked:?}");
        let started = Instant::now();
        let answered = db
            .run_combined(key, |conn: &mut DbConnection| {
                use diesel::RunQueryDsl as _;
                diesel::sql_query("CREATE TABLE led (id INTEGER)").execute(conn)?;
                Ok("committed")
            })
            .await;
        assert_eq!(answered.unwrap(), "committed");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        // The leader answers its batch before it finds the queue empty and gives the key up,
        // on its own thread: wait for that, not for a particular interleaving.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !db.combiner.queues.lock().is_empty() {
            assert!(Instant::now() < deadline, "the key was never given up");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
