//! The one bridge between async handlers and the synchronous store, and the guard in front of
//! the database (contract section 6).
//!
//! Every database call goes through `Db::run` (by way of [`crate::door::Door`]):
//! - **Deadline.** A request's database work (waiting for a thread and a connection, then the
//!   statements) must be over within `INVITE_DB_TIMEOUT` of the request's arrival; past it the
//!   request is answered 503 `SERVICE_UNAVAILABLE` at once, and a write still open then rolls
//!   back rather than commits (see `invite_store::DbPool::run_by`).
//! - **Load shedding.** A request is refused at once with 503 `OVERLOADED` only when it could
//!   not be served within what remains of its deadline: the wait for a thread (by Little's law:
//!   the work queued ahead × the recent time each holds a thread ÷ threads), plus its own time
//!   on a thread, plus how late the event loops run ([`Db::watch_lag`]: on a machine whose
//!   processors are short, an answer waits that long to be written). Anything that can be
//!   served in time is served, however long the queue: a closed loop of clients can never be
//!   refused, and an open loop past the database's rate is refused as soon as its queue would
//!   outlast the deadline, instead of answering 503 after the wait.
//! - **Circuit breaker.** After consecutive failures to reach the database, requests are
//!   answered 503 at once instead of each waiting out the deadline. A health check of its own
//!   (a ping on a thread of its own, every [`PROBE_INTERVAL`]) finds out when the database is
//!   back and closes the circuit; no user's request is spent finding out.
//! - **Health.** What the bridge observes feeds `/status` ([`DbHealth`]); `/readyz` asks the
//!   database itself (`Db::check`), past the circuit and the shedder.
//!
//! The checkout and the work run on the runtime's blocking pool (never on a worker thread,
//! which would stall every request it serves), and the request's tracing span follows them
//! there. Nothing here speaks HTTP: a [`Failure`] is the host's to turn into an answer.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use invite_ops::{OpError, OpResult};
use invite_store::batch::{BatchWrite, SetOutcome, SetRequest};
use invite_store::{DbConnection, DbPool, StoreResult};
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::task::spawn_blocking;

use crate::metrics::Metrics;

/// Why the way into the database gave no answer of the work's own.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// More work waits for the database than it can serve in time: refused at once, before
    /// anything ran.
    #[error("overloaded: refused at once")]
    Overloaded,
    /// The work's own error, or the database away, late or broken (`OpError::Unavailable`,
    /// `OpError::Internal`).
    #[error(transparent)]
    Op(#[from] OpError),
}

impl Failure {
    /// The database cannot be reached or did not answer in time.
    fn unavailable(cause: &str) -> Self {
        Self::Op(OpError::Unavailable(cause.to_owned()))
    }
}

/// What the way into the database answers.
pub type DbResult<T> = Result<T, Failure>;

/// Consecutive failures to reach the database that open the circuit.
const FAILURES_TO_OPEN: u32 = 3;

/// How often the circuit's health check pings the database while the circuit is open.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// How long a shed request or a failure keeps the database `degraded` in `/status`.
const TROUBLE_WINDOW: Duration = Duration::from_secs(30);

/// Kept from the request's database budget for the rest of its life (writing the answer), and
/// for the time before its arrival was noted (its connection accepted and its head read), so
/// the client has its answer within `INVITE_DB_TIMEOUT` even on a busy machine where the
/// processors are shared with the database and other services. At most an eighth of the
/// timeout, so that a short `INVITE_DB_TIMEOUT` still leaves the work most of it.
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
    /// Longest expected wait for a thread before new work is shed, when the operator wants it
    /// shorter than what remains of the deadline (`INVITE_DB_QUEUE_TIMEOUT`); `None`: the
    /// deadline alone decides.
    pub queue_timeout: Option<Duration>,
    /// Threads that run database work at once (every worker's blocking pool together).
    pub threads: usize,
    /// Groups the writes that come in streams fall into on PostgreSQL.
    pub write_groups: WriteGroups,
}

/// How many groups accepts and creates each fall into on PostgreSQL: a group's batches commit
/// one after another, different groups' side by side. Fewer groups make larger batches, which
/// cost the database less per write when the batch is one statement (a batch's plain accepts);
/// creates are written one after another within their batch, so for them a group is a queue
/// and more groups serve more at once. Hence a count for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteGroups {
    /// Groups of accepts (`INVITE_DB_ACCEPT_GROUPS`).
    pub accepts: u64,
    /// Groups of creates (`INVITE_DB_CREATE_GROUPS`).
    pub creates: u64,
}

impl WriteGroups {
    /// One group of each: everything of a kind in one queue (what the tests of the bridge use).
    pub const ONE: Self = Self { accepts: 1, creates: 1 };
}

/// A queue's wait is judged by twice its expected value. The pace it is expected from is the
/// recent one, and the work admitted now starts up to a deadline later: past the database's
/// rate, the service's own refusals and the clients' traffic take processor time from the
/// work, and the pace falls while the queue waits. Work admitted because its mean wait just
/// fits would miss its deadline about as often as not. Refusing at half the deadline costs an
/// overloaded service nothing (its queue never runs dry), and closed loops of clients queue
/// far less than their deadline, so it refuses none of them.
const QUEUE_MARGIN: (u32, u32) = (2, 1);

/// `wait` with [`QUEUE_MARGIN`].
fn with_margin(wait: Duration) -> Duration {
    wait * QUEUE_MARGIN.0 / QUEUE_MARGIN.1
}

/// How long the pace of starts is counted before it is folded into its average (see
/// [`Gate::expected_finish`]): long enough that a few starts together (the threads a batch
/// frees at once) do not read as the queue's pace, short enough to follow a database slowing
/// down within a fraction of a deadline.
const PACE_WINDOW: Duration = Duration::from_millis(50);

/// How often each worker measures its event loop's lag.
pub const LAG_TICK: Duration = Duration::from_millis(10);

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
    queues: Mutex<HashMap<String, KeyQueue>>,
    /// Recent time a batch of each key takes, in nanoseconds (an exponential moving average;
    /// absent until the key's first batch: a cold instance has no queue to estimate). By key,
    /// since a batch of previews is read in a fraction of a batch of joins' time.
    batch_nanos: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

/// One key's writes, and when the batch being committed began.
#[derive(Debug, Default)]
struct KeyQueue {
    pending: VecDeque<Pending>,
    batch_began: Option<Instant>,
}

/// A write waiting for its batch.
struct Pending {
    write: Box<dyn BatchWrite>,
    /// The leader's write is counted as work waiting for a thread until its first batch
    /// starts; the others wait for a batch, not for a thread of their own.
    waiting: Option<Waiting>,
}

impl Combiner {
    fn batch_time(&self, key: &str) -> Duration {
        let nanos = self.batch_nanos.lock().get(key).map_or(0, |n| n.load(Ordering::Relaxed));
        Duration::from_nanos(nanos)
    }

    fn observe_batch(&self, key: &str, took: Duration) {
        let average = Arc::clone(self.batch_nanos.lock().entry(key.to_owned()).or_default());
        ewma(&average, took);
    }
}

/// Folds `sample` into the moving average kept in `average`, an eighth at a time; the first
/// sample is taken as it is. An update lost to a concurrent one only delays the average by one
/// sample.
fn ewma(average: &AtomicU64, sample: Duration) {
    let sample = u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX);
    let old = average.load(Ordering::Relaxed);
    let new = if old == 0 { sample.max(1) } else { old - old / 8 + sample / 8 };
    average.store(new, Ordering::Relaxed);
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

/// What makes a grouped write (`Door::change_grouped`, `Door::read_grouped`) one that a batch
/// may run together with others of its kind in one statement (a plain accept, a preview read):
/// the request, and how what the statement found becomes the write's value (what `work` would
/// have returned for it).
#[derive(Debug)]
pub struct SetSpec<T> {
    /// The request.
    pub request: SetRequest,
    /// The write's value for what the statement found.
    pub finish: fn(SetOutcome) -> OpResult<T>,
}

/// A write of [`Db::run_combined`]: its work, and the request awaiting its outcome.
struct Job<T, F> {
    work: F,
    set: Option<SetSpec<T>>,
    lock_order: Option<uuid::Uuid>,
    deadline: Instant,
    outcome: Option<OpResult<T>>,
    reply: Option<oneshot::Sender<OpResult<T>>>,
    /// Set once the write is taken into a batch.
    taken: Arc<AtomicBool>,
}

impl<T, E, F> BatchWrite for Job<T, F>
where
    T: Send,
    E: Into<OpError>,
    F: Fn(&mut DbConnection) -> Result<T, E> + Send,
{
    fn run(&mut self, conn: &mut DbConnection) -> bool {
        self.taken.store(true, Ordering::Release);
        let outcome = (self.work)(conn).map_err(Into::into);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn set_request(&self) -> Option<&SetRequest> {
        self.set.as_ref().map(|set| &set.request)
    }

    fn lock_order(&self) -> Option<uuid::Uuid> {
        self.lock_order
    }

    fn decided(&mut self, outcome: SetOutcome) {
        self.taken.store(true, Ordering::Release);
        if let Some(set) = &self.set {
            self.outcome = Some((set.finish)(outcome));
        }
    }

    fn settle(mut self: Box<Self>, committed: StoreResult<()>) {
        let answer = committed.map_err(OpError::from).and_then(|()| {
            self.outcome.take().unwrap_or_else(|| {
                Err(OpError::Unavailable("the write was settled without running".into()))
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

    /// Where the bridge's counts go.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// How many groups the writes that come in streams fall into (see [`WriteGroups`]).
    pub fn write_groups(&self) -> WriteGroups {
        self.gate.limits.write_groups
    }

    /// What the bridge has observed of the database.
    pub fn health(&self) -> DbHealth {
        self.gate.health(Instant::now())
    }

    /// Runs `work` with a pooled connection on the blocking pool, within the request's deadline.
    pub(crate) async fn run<T, E, F>(&self, work: F) -> DbResult<T>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let deadline = self.admit()?;
        let (outcome, reached) = self.on_thread(deadline, work).await?;
        self.observe(outcome, deadline, reached)
    }

    /// Runs `work` on the blocking pool with a connection, giving up at `deadline`; and
    /// whether the work started before then (a request still waiting for a thread at its
    /// deadline met a queue, not a database that is away).
    async fn on_thread<T, E, F>(&self, deadline: Instant, work: F) -> DbResult<(OpResult<T>, bool)>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let waiting = Waiting::new(&self.gate);
        let gate = Arc::clone(&self.gate);
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let reached = Arc::new(AtomicBool::new(false));
        let started_work = Arc::clone(&reached);
        let blocking = spawn_blocking(move || {
            started_work.store(true, Ordering::Release);
            let started = waiting.start();
            let result =
                span.in_scope(|| pool.run_by(deadline, |conn| work(conn).map_err(Into::into)));
            gate.observe_hold(started.elapsed());
            result
        });
        match tokio::time::timeout_at(deadline.into(), blocking).await {
            Err(_) => Ok((
                Err(OpError::Unavailable("the database did not answer in time".into())),
                reached.load(Ordering::Acquire),
            )),
            Ok(Err(error)) => {
                Err(Failure::Op(OpError::Internal(format!("the blocking pool failed: {error}"))))
            }
            Ok(Ok(outcome)) => Ok((outcome, true)),
        }
    }

    /// Asks the database itself, past the circuit and the shedder, whether it answers: for
    /// `/readyz`, which a load balancer polls to decide where traffic goes and which must say
    /// what the database does now, not what the circuit last concluded. A success closes an
    /// open circuit; a failure counts like any other.
    pub(crate) async fn check<T, E, F>(&self, work: F) -> DbResult<T>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let deadline = Instant::now() + work_budget(self.gate.limits.timeout);
        let (outcome, _) = self.on_thread(deadline, work).await?;
        match &outcome {
            Ok(_) => self.gate.close(Instant::now()),
            Err(error) => self.note_failure(error),
        }
        outcome.map_err(Failure::Op)
    }

    /// The request's deadline, counted from its arrival, if the gate admits it; a refusal for
    /// overload is counted, with how long after its arrival it was refused.
    fn admit(&self) -> DbResult<Instant> {
        let now = Instant::now();
        let (arrived, deadline) = self.deadline(now);
        self.gate.admit(now, deadline).inspect_err(|error| {
            if matches!(error, Failure::Overloaded) {
                self.metrics.observe_shed(now.saturating_duration_since(arrived));
            }
        })?;
        Ok(deadline)
    }

    /// When the request being served arrived (`now` for work that is no request), and the
    /// deadline of its database work.
    fn deadline(&self, now: Instant) -> (Instant, Instant) {
        let arrived = ARRIVED.try_with(|arrived| *arrived).unwrap_or(now);
        (arrived, arrived + work_budget(self.gate.limits.timeout))
    }

    /// Measures, every [`LAG_TICK`], how late the event loop it runs on wakes up, for the
    /// shedder's estimate (see the module's documentation). Spawn one on each worker; it ends
    /// with the worker.
    pub async fn watch_lag(self) {
        let mut due = tokio::time::Instant::now() + LAG_TICK;
        loop {
            tokio::time::sleep_until(due).await;
            let now = tokio::time::Instant::now();
            self.gate.tick(now.saturating_duration_since(due));
            due = now + LAG_TICK;
        }
    }

    /// The event loops' recent lag.
    pub fn lag(&self) -> Duration {
        self.gate.lag()
    }

    /// Tells the gate how an admitted request's database work went (`reached`: whether it
    /// started, rather than waiting in a queue until its deadline), and turns its outcome into
    /// the API's.
    fn observe<T>(&self, outcome: OpResult<T>, deadline: Instant, reached: bool) -> DbResult<T> {
        match &outcome {
            Err(error) if error.is_unavailable() => {
                if Instant::now() >= deadline && ARRIVED.try_with(|_| ()).is_ok() {
                    self.metrics.observe_deadline_missed();
                }
                // A queue that outlasted the deadline says the database is busy, not away:
                // the shedder's business, not the circuit's.
                if reached {
                    self.note_failure(error);
                }
            }
            // An answer, a refusal or a conflict: the database answered.
            _ => self.gate.succeeded(),
        }
        outcome.map_err(Failure::Op)
    }

    /// Records a failure to reach the database; when it opens the circuit, starts the health
    /// check that will close it.
    fn note_failure(&self, error: &OpError) {
        if error.is_unavailable() && self.gate.failed(Instant::now()) {
            spawn_prober(&self.gate, self.pool.clone());
        }
    }

    /// Runs the write `work` combined with the concurrent writes of the same `key`: group
    /// commit (see `invite_store::batch`), with a combiner in front of it. The first request
    /// to find no batch in progress for its key becomes the leader: on a blocking thread with
    /// one connection, it commits what has queued for the key, batch after batch (up to
    /// `MAX_BATCH` writes each), until the queue is empty. Every other request queues its
    /// write and awaits its own outcome without holding a thread or a connection, so a batch
    /// can grow past the pool's size. Deadlines, shedding and the circuit are those of
    /// [`Db::run`]; `work` may run more than once (again alone when its batch fails), so it
    /// must be a complete write of its own, as every store write is. With `set`, a batch may
    /// run the write with others of its kind in one statement instead of running `work`; a
    /// batch runs its writes in `lock_order` (see `BatchWrite::lock_order`).
    pub(crate) async fn run_combined<T, E, F>(
        &self,
        key: String,
        set: Option<SetSpec<T>>,
        lock_order: Option<uuid::Uuid>,
        work: F,
    ) -> DbResult<T>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: Fn(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let now = Instant::now();
        let (arrived, deadline) = self.deadline(now);
        self.gate.admit_to_circuit()?;
        let (reply, answer) = oneshot::channel();
        let taken = Arc::new(AtomicBool::new(false));
        let write: Box<dyn BatchWrite> = Box::new(Job {
            work,
            set,
            lock_order,
            deadline,
            outcome: None,
            reply: Some(reply),
            taken: Arc::clone(&taken),
        });
        let lead = {
            let mut queues = self.combiner.queues.lock();
            if let Some(queue) = queues.get_mut(&key) {
                // Behind a leader, a write waits for the batch being committed, then for the
                // batches queued ahead of it (up to MAX_BATCH writes each) and its own, on the
                // leader's thread; not for a thread of its own. A batch running longer than
                // usual is a stall (a checkpoint's fsync, the leader descheduled on a busy
                // machine): like the gate's, it is expected to last as long again and is
                // counted once, not taken as the pace of every batch behind it, or a moment's
                // stall would refuse a closed loop's writes that are served well in time.
                let batch = self.combiner.batch_time(&key);
                let current = queue.batch_began.map_or(batch, |began| batch.max(now - began));
                let behind = u32::try_from(queue.pending.len() / MAX_BATCH + 1).unwrap_or(u32::MAX);
                let finish = self.gate.lag() + current + with_margin(batch * behind);
                if finish > deadline.saturating_duration_since(now) {
                    drop(queues);
                    self.gate.shed(now);
                    self.metrics.observe_shed(now.saturating_duration_since(arrived));
                    return Err(Failure::Overloaded);
                }
                queue.pending.push_back(Pending { write, waiting: None });
                false
            } else {
                // A new leader waits for a thread like any other work.
                self.gate.admit(now, deadline).inspect_err(|error| {
                    if matches!(error, Failure::Overloaded) {
                        self.metrics.observe_shed(now.saturating_duration_since(arrived));
                    }
                })?;
                let waiting = Some(Waiting::new(&self.gate));
                let pending = VecDeque::from([Pending { write, waiting }]);
                queues.insert(key.clone(), KeyQueue { pending, batch_began: None });
                true
            }
        };
        if lead {
            let (db, span) = (self.clone(), tracing::Span::current());
            // Not awaited: the leader serves its followers even if its own request gives up.
            drop(spawn_blocking(move || span.in_scope(|| db.lead(&key))));
        }
        let outcome = match tokio::time::timeout_at(deadline.into(), answer).await {
            Err(_) => Err(OpError::Unavailable("the database did not answer in time".into())),
            Ok(Err(_)) => Err(OpError::Unavailable("the write was dropped unanswered".into())),
            Ok(Ok(outcome)) => outcome,
        };
        self.observe(outcome, deadline, taken.load(Ordering::Acquire))
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
                if queues.get(self.key).is_none_or(|queue| queue.pending.is_empty()) {
                    queues.remove(self.key);
                } else {
                    let (db, key) = (self.db.clone(), self.key.to_owned());
                    drop(spawn_blocking(move || db.lead(&key)));
                }
            }
        }
        let _abdicate = Abdicate { db: self, key };
        loop {
            let pending: Vec<Pending> = {
                let mut queues = self.combiner.queues.lock();
                let Some(queue) = queues.get_mut(key) else { return };
                if queue.pending.is_empty() {
                    queues.remove(key);
                    return;
                }
                queue.batch_began = Some(Instant::now());
                let take = queue.pending.len().min(MAX_BATCH);
                queue.pending.drain(..take).collect()
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
                Ok::<_, invite_store::StoreError>(())
            });
            self.metrics.observe_batch(size);
            let took = started.elapsed();
            self.combiner.observe_batch(key, took);
            self.gate.observe_hold(took);
        }
    }
}

/// Counts a request as waiting until its work starts on a thread (or is dropped unstarted).
struct Waiting {
    gate: Option<Arc<Gate>>,
}

impl Waiting {
    fn new(gate: &Arc<Gate>) -> Self {
        if gate.waiting.fetch_add(1, Ordering::AcqRel) == 0 {
            // A queue forming now has not stalled for as long as nothing last moved: the
            // stall is measured from here (see `Gate::expected_finish`).
            gate.progress();
        }
        Self { gate: Some(Arc::clone(gate)) }
    }

    fn start(mut self) -> Instant {
        if let Some(gate) = self.gate.take() {
            gate.waiting.fetch_sub(1, Ordering::AcqRel);
            gate.started_work();
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

/// The circuit's state.
#[derive(Debug, Clone, Copy)]
enum Circuit {
    /// Requests go through; `failures` in a row have failed.
    Closed { failures: u32 },
    /// The database is away since `since`: requests are refused until the health check (or
    /// `/readyz`) finds it back.
    Open { since: Instant },
}

/// What the bridge remembers for `/status`, and the circuit.
#[derive(Debug, Clone, Copy)]
struct Record {
    circuit: Circuit,
    /// Whether a health check runs: at most one at a time, started by the failure that opens
    /// the circuit and ended by the success that closes it.
    probing: bool,
    /// The latest failure to reach the database, and the latest request shed.
    last_failure: Option<Instant>,
    last_shed: Option<Instant>,
    /// When the latest spell of trouble began (for "degraded since").
    trouble_began: Option<Instant>,
    /// When the circuit last closed again.
    recovered: Option<Instant>,
}

/// Pings the database every [`PROBE_INTERVAL`] on a thread of its own until it answers, then
/// closes the circuit. A thread rather than a task on the blocking pool: while the database is
/// away, that pool may be full of work stuck on dead connections, and a ping stuck the same way
/// must hold up nothing but the next ping. It ends with the circuit closed, or when the bridge
/// is gone.
fn spawn_prober(gate: &Arc<Gate>, pool: DbPool) {
    let gate = Arc::downgrade(gate);
    let spawned = std::thread::Builder::new()
        .name("db-health-check".into())
        .spawn(move || probe_until_back(&gate, &pool));
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the database health check");
    }
}

fn probe_until_back(gate: &Weak<Gate>, pool: &DbPool) {
    loop {
        std::thread::sleep(PROBE_INTERVAL);
        let Some(gate) = gate.upgrade() else { return };
        let deadline = Instant::now() + work_budget(gate.limits.timeout);
        match pool.ping_by(deadline) {
            Ok(()) => {
                gate.close(Instant::now());
                return;
            }
            Err(error) => {
                tracing::debug!(%error, "database health check: still away");
                gate.failed(Instant::now());
            }
        }
    }
}

#[derive(Debug)]
struct Gate {
    limits: DbLimits,
    /// Requests whose database work waits for a thread.
    waiting: AtomicUsize,
    /// The event loops' recent lag, in nanoseconds (an exponential moving average).
    lag_nanos: AtomicU64,
    /// Recent time a request holds a thread, in nanoseconds (an exponential moving average;
    /// zero until the first request has finished: a cold instance has no queue to estimate).
    hold_nanos: AtomicU64,
    /// Recent gap between two starts of work on a thread, in nanoseconds (an exponential
    /// moving average of the mean gap over each [`PACE_WINDOW`]; zero until the first window
    /// closes), and the window counting now: when it began and how many starts it has seen.
    start_gap_nanos: AtomicU64,
    window_began_nanos: AtomicU64,
    window_starts: AtomicU64,
    /// When work last started or finished, or a queue last formed, in nanoseconds since
    /// `started`.
    progress_nanos: AtomicU64,
    record: Mutex<Record>,
    started: Instant,
}

impl Gate {
    fn new(limits: DbLimits) -> Self {
        Self {
            limits: DbLimits { threads: limits.threads.max(1), ..limits },
            waiting: AtomicUsize::new(0),
            lag_nanos: AtomicU64::new(0),
            hold_nanos: AtomicU64::new(0),
            start_gap_nanos: AtomicU64::new(0),
            window_began_nanos: AtomicU64::new(0),
            window_starts: AtomicU64::new(0),
            progress_nanos: AtomicU64::new(0),
            record: Mutex::new(Record {
                circuit: Circuit::Closed { failures: 0 },
                probing: false,
                last_failure: None,
                last_shed: None,
                trouble_began: None,
                recovered: None,
            }),
            started: Instant::now(),
        }
    }

    /// Lets a request through, or refuses it at once: the circuit is open (503
    /// `SERVICE_UNAVAILABLE`), or it could not be served before `deadline` (503 `OVERLOADED`).
    fn admit(&self, now: Instant, deadline: Instant) -> DbResult<()> {
        self.admit_to_circuit()?;
        let (queue, finish) = self.expected_finish(now);
        let too_late = finish > deadline.saturating_duration_since(now);
        let queue_too_long = self.limits.queue_timeout.is_some_and(|longest| queue > longest);
        if too_late || queue_too_long {
            self.shed(now);
            return Err(Failure::Overloaded);
        }
        Ok(())
    }

    /// Refuses at once while the circuit is open.
    fn admit_to_circuit(&self) -> DbResult<()> {
        match self.record.lock().circuit {
            Circuit::Open { .. } => Err(Failure::unavailable("the database is unreachable")),
            Circuit::Closed { .. } => Ok(()),
        }
    }

    /// The event loops' recent lag.
    fn lag(&self) -> Duration {
        Duration::from_nanos(self.lag_nanos.load(Ordering::Relaxed))
    }

    /// How long new work would wait for a thread, and how long until it would be answered:
    /// that wait, the work's own time on a thread, and the event loops' lag.
    ///
    /// The queue drains one start at a time, and two measures say how fast: the recent time a
    /// request holds a thread, over the threads, and the recent mean gap between two starts. The
    /// shorter wins, so that one request held long (a checkpoint's fsync) among many quick ones
    /// does not make the whole queue look slow, and a burst after a quiet spell (whose gaps
    /// were long) is judged by what each request costs.
    fn expected_finish(&self, now: Instant) -> (Duration, Duration) {
        let hold = Duration::from_nanos(self.hold_nanos.load(Ordering::Relaxed));
        let lag = self.lag();
        let waiting = self.waiting.load(Ordering::Acquire);
        if waiting < self.limits.threads {
            // Fewer waiting than threads is no queue at all, however slow the work.
            return (Duration::ZERO, hold + lag);
        }
        // Integer arithmetic: thread counts and queues are far below u32::MAX.
        let threads = u32::try_from(self.limits.threads).unwrap_or(u32::MAX);
        let gap = Duration::from_nanos(self.start_gap_nanos.load(Ordering::Relaxed));
        let per_start = if gap.is_zero() { hold / threads } else { (hold / threads).min(gap) };
        // Work that has not finished tells as much as work that has: when nothing has
        // started or finished since a queue formed (a database stalling), the stall is
        // expected to last as long again before the queue moves, and this work to be held at
        // least that long. A stall delays the queue; it does not slow each start, so it is
        // added once, not spread over the queue: a process descheduled for a moment on a busy
        // machine must not make a long but quick queue look hopeless.
        let stalled = now.saturating_duration_since(
            self.started + Duration::from_nanos(self.progress_nanos.load(Ordering::Relaxed)),
        );
        let queue =
            stalled + with_margin(per_start * u32::try_from(waiting + 1).unwrap_or(u32::MAX));
        (queue, queue + hold.max(stalled) + lag)
    }

    /// Records a request refused as overload, for `/status`.
    fn shed(&self, now: Instant) {
        let mut record = self.record.lock();
        begin_trouble(&mut record, now);
        record.last_shed = Some(now);
    }

    /// One worker's measure of its event loop's `lag`.
    fn tick(&self, lag: Duration) {
        let sample = u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX);
        // A single late wake-up (a page fault, a preempted thread) moves the average by an
        // eighth: the estimate follows a machine that stays short, not a hiccup.
        let old = self.lag_nanos.load(Ordering::Relaxed);
        self.lag_nanos.store(old - old / 8 + sample / 8, Ordering::Relaxed);
    }

    /// Notes that work started or finished now.
    fn progress(&self) {
        let now = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.progress_nanos.fetch_max(now, Ordering::Relaxed);
    }

    /// Notes that work started on a thread now, for the pace of starts.
    fn started_work(&self) {
        let now = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
        self.progress_nanos.fetch_max(now, Ordering::Relaxed);
        let starts = self.window_starts.fetch_add(1, Ordering::Relaxed) + 1;
        let began = self.window_began_nanos.load(Ordering::Relaxed);
        let span = now.saturating_sub(began);
        // Whoever closes the window folds it in; a start counted into the next one meanwhile
        // is lost, which only delays the average a little.
        if Duration::from_nanos(span) >= PACE_WINDOW
            && self
                .window_began_nanos
                .compare_exchange(began, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.window_starts.store(0, Ordering::Relaxed);
            ewma(&self.start_gap_nanos, Duration::from_nanos(span / starts));
        }
    }

    fn observe_hold(&self, hold: Duration) {
        self.progress();
        ewma(&self.hold_nanos, hold);
    }

    /// An admitted request reached the database: a run of failures is over.
    fn succeeded(&self) {
        let mut record = self.record.lock();
        if let Circuit::Closed { failures } = &mut record.circuit {
            *failures = 0;
        }
    }

    /// Records a failure to reach the database; `true` when it opened the circuit and no
    /// health check runs yet, so the caller must start one.
    fn failed(&self, now: Instant) -> bool {
        let mut record = self.record.lock();
        begin_trouble(&mut record, now);
        record.last_failure = Some(now);
        if let Circuit::Closed { failures } = record.circuit {
            if failures + 1 < FAILURES_TO_OPEN {
                record.circuit = Circuit::Closed { failures: failures + 1 };
                return false;
            }
            tracing::warn!("the database is unreachable: answering 503 until it is back");
            record.circuit = Circuit::Open { since: now };
        }
        !std::mem::replace(&mut record.probing, true)
    }

    /// The database answered a health check: the circuit closes.
    fn close(&self, now: Instant) {
        let mut record = self.record.lock();
        if let Circuit::Open { .. } = record.circuit {
            tracing::info!("the database is back");
            record.recovered = Some(now);
        }
        record.circuit = Circuit::Closed { failures: 0 };
        record.probing = false;
    }

    fn health(&self, now: Instant) -> DbHealth {
        let record = *self.record.lock();
        if let Circuit::Open { since } = record.circuit {
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
            queue_timeout: None,
            threads,
            write_groups: WriteGroups::ONE,
        })
    }

    /// `n` pieces of work waiting for a thread, until dropped.
    fn queue(gate: &Arc<Gate>, n: usize) -> Vec<Waiting> {
        (0..n).map(|_| Waiting::new(gate)).collect()
    }

    /// Whether work with the budget of a 2 s timeout left is admitted behind `waiting` others.
    fn admitted_behind(gate: &Arc<Gate>, waiting: usize) -> bool {
        let _queued = queue(gate, waiting);
        let now = Instant::now();
        gate.admit(now, now + Duration::from_millis(1_750)).is_ok()
    }

    /// A cold instance knows no cost yet: a burst far larger than its threads is admitted, since
    /// nothing says it cannot be served in time, and a queue that has only just formed has not
    /// stalled, however long the instance sat idle before it.
    #[test]
    fn a_cold_instance_admits_a_burst() {
        let mut idle = gate(4);
        // Started half a minute ago, and nothing since.
        idle.started -= Duration::from_secs(30);
        assert!(admitted_behind(&Arc::new(idle), 64));
    }

    /// Work is refused only when its expected finish is past what remains of its deadline: the
    /// queue ahead on the threads, its own time on a thread, and the loops' lag.
    #[test]
    fn sheds_only_what_could_not_be_served_before_its_deadline() {
        let gate = Arc::new(gate(4));
        gate.observe_hold(Duration::from_millis(10));
        let now = Instant::now();
        let deadline = now + Duration::from_millis(1_750);
        // 300 queued on 4 threads holding 10 ms each: 0.75 s to start (judged as twice that),
        // and served in time.
        let queued = queue(&gate, 299);
        gate.progress();
        assert!(gate.admit(now, deadline).is_ok());
        // With less of its deadline left, the same request is refused.
        assert!(matches!(
            gate.admit(now, now + Duration::from_millis(1_400)),
            Err(Failure::Overloaded)
        ));
        assert_eq!(gate.health(now).state, DbState::Degraded { shedding: true });
        // 600 queued: past the deadline however fresh the request.
        let more = queue(&gate, 300);
        assert!(matches!(gate.admit(now, deadline), Err(Failure::Overloaded)));
        drop(more);
        // The loops running late count too: 300 queued and 800 ms of lag do not fit in 1.75 s.
        for _ in 0..100 {
            gate.tick(Duration::from_millis(800));
        }
        assert!(matches!(gate.admit(now, deadline), Err(Failure::Overloaded)));
        drop(queued);
        // Fewer waiting than threads is no queue at all, however slow the work.
        let few = queue(&gate, 3);
        for _ in 0..100 {
            gate.tick(Duration::ZERO);
        }
        gate.observe_hold(Duration::from_secs(1));
        assert!(gate.admit(now, deadline).is_ok());
        drop(few);
    }

    /// A queue drains as fast as work starts: one request held for seconds (a checkpoint's
    /// fsync) among many quick ones moves the average hold, not the pace of the queue.
    #[test]
    fn one_slow_request_among_quick_ones_does_not_make_the_queue_look_slow() {
        let gate = Arc::new(gate(4));
        for _ in 0..50 {
            Waiting::new(&gate).start();
            gate.observe_hold(Duration::from_millis(8));
            std::thread::sleep(Duration::from_millis(2));
        }
        gate.observe_hold(Duration::from_secs(2));
        // Judged by the average hold alone, 201 in line on 4 threads would take over 12 s.
        assert!(admitted_behind(&gate, 200));
    }

    /// An operator may still cap the wait for a thread below the deadline.
    #[test]
    fn a_queue_timeout_caps_the_wait_when_set() {
        let gate = Arc::new(Gate::new(DbLimits {
            timeout: Duration::from_secs(2),
            queue_timeout: Some(Duration::from_millis(100)),
            threads: 4,
            write_groups: WriteGroups::ONE,
        }));
        gate.observe_hold(Duration::from_millis(10));
        let now = Instant::now();
        // 19 in line on 4 threads holding 10 ms each: 47.5 ms, judged as 95 ms.
        let queued = queue(&gate, 18);
        assert!(gate.admit(now, now + Duration::from_secs(2)).is_ok());
        let more = queue(&gate, 5);
        assert!(matches!(gate.admit(now, now + Duration::from_secs(2)), Err(Failure::Overloaded)));
        drop((queued, more));
    }

    #[test]
    fn a_stalled_database_is_shed_before_anything_finishes() {
        let gate = Arc::new(gate(4));
        let queued = queue(&gate, 4);
        // The queue formed, then nothing started or finished for 500 ms: expected to stall as
        // long again, and the work then held at least that long, it cannot be done within
        // 600 ms.
        let later = Instant::now() + Duration::from_millis(500);
        assert!(matches!(
            gate.admit(later, later + Duration::from_millis(600)),
            Err(Failure::Overloaded)
        ));
        assert!(gate.admit(later, later + Duration::from_secs(2)).is_ok());
        drop(queued);
    }

    #[test]
    fn failures_open_the_circuit_and_a_health_check_closes_it() {
        let gate = gate(4);
        let start = Instant::now();
        let deadline = start + Duration::from_secs(2);
        for failure in 1..=FAILURES_TO_OPEN {
            assert!(gate.admit(start, deadline).is_ok());
            // Only the failure that opens the circuit asks for a health check.
            assert_eq!(gate.failed(start), failure == FAILURES_TO_OPEN);
        }
        assert_eq!(gate.health(start), DbHealth { state: DbState::Unreachable, since: start });
        // Every request is refused at once, none is spent as a probe.
        let later = start + PROBE_INTERVAL * 4;
        assert!(matches!(gate.admit(later, deadline), Err(Failure::Op(OpError::Unavailable(_)))));
        assert!(matches!(gate.admit(later, deadline), Err(Failure::Op(OpError::Unavailable(_)))));
        // A failed check neither closes it nor asks for a second checker.
        assert!(!gate.failed(later));
        // An admitted request that succeeds late does not close it either.
        gate.succeeded();
        assert!(gate.admit(later, deadline).is_err());
        gate.close(later);
        assert!(gate.admit(later, deadline).is_ok());
        let health = gate.health(later);
        assert_eq!(health.state, DbState::Degraded { shedding: false });
        assert_eq!(health.since, start);
        let quiet = later + TROUBLE_WINDOW + Duration::from_secs(1);
        assert_eq!(
            gate.health(quiet),
            DbHealth { state: DbState::Healthy, since: later + TROUBLE_WINDOW }
        );
        // Opened again later, it asks for a new checker.
        for _ in 1..FAILURES_TO_OPEN {
            assert!(!gate.failed(quiet));
        }
        assert!(gate.failed(quiet));
    }

    #[test]
    fn a_success_ends_a_run_of_failures() {
        let gate = gate(4);
        let now = Instant::now();
        for _ in 0..10 {
            assert!(!gate.failed(now));
            gate.succeeded();
        }
        assert!(gate.admit(now, now + Duration::from_secs(2)).is_ok());
    }

    /// The circuit's health check: once the database answers, the circuit closes by itself,
    /// while no request goes through.
    #[tokio::test]
    async fn the_health_check_closes_the_circuit_once_the_database_answers() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite_db(&dir, None, 2);
        for _ in 0..FAILURES_TO_OPEN {
            db.note_failure(&OpError::Unavailable("connection refused".into()));
        }
        assert_eq!(db.health().state, DbState::Unreachable);
        let refused = db.run(|_conn| Ok::<_, OpError>(())).await;
        assert!(matches!(refused, Err(Failure::Op(OpError::Unavailable(_)))), "{refused:?}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while db.health().state == DbState::Unreachable {
            assert!(Instant::now() < deadline, "the health check never closed the circuit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        db.run(|_conn| Ok::<_, OpError>(())).await.unwrap();
    }

    /// A bridge over a SQLite file in `dir`, with a 10 s request deadline.
    fn sqlite_db(dir: &tempfile::TempDir, queue_timeout: Option<Duration>, threads: usize) -> Db {
        sqlite_db_with(dir, queue_timeout, threads, Duration::from_secs(10))
    }

    fn sqlite_db_with(
        dir: &tempfile::TempDir,
        queue_timeout: Option<Duration>,
        threads: usize,
        timeout: Duration,
    ) -> Db {
        let url = invite_store::DatabaseUrl::Sqlite(
            dir.path().join("combiner.db").to_string_lossy().into_owned(),
        );
        let pool = DbPool::new(&invite_store::PoolConfig::new(url));
        Db::new(
            pool,
            DbLimits { timeout, queue_timeout, threads, write_groups: WriteGroups::ONE },
            Arc::new(Metrics::new()),
        )
    }

    /// Writes queued behind a leader wait for its batches, not for threads of their own: they
    /// are refused only once the batch being committed (a stall expected to last as long again)
    /// and the batches ahead of them at their known cost would outlast their deadline.
    #[tokio::test]
    async fn a_keys_writes_are_refused_only_once_its_batches_would_outlast_the_deadline() {
        use futures_util::FutureExt as _;

        let dir = tempfile::tempdir().unwrap();
        // 2 s: each write's work must be over within 1.75 s.
        let db = sqlite_db_with(&dir, None, 2, Duration::from_secs(2));
        // Polled once: refused at once, or queued (and left to commit on its own).
        let write = |hold: Duration| {
            db.run_combined("the-key".to_owned(), None, None, move |_conn: &mut DbConnection| {
                std::thread::sleep(hold);
                Ok::<_, OpError>(())
            })
            .now_or_never()
        };
        let started = |db: &Db| {
            let db = db.clone();
            async move {
                while db.gate.waiting.load(Ordering::Acquire) > 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        // Batches of the key are known to take 100 ms; the leader's holds its thread for
        // 1.5 s: a commit that stalls.
        db.combiner.observe_batch("the-key", Duration::from_millis(100));
        assert!(write(Duration::from_millis(1_500)).is_none());
        started(&db).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        // 150 ms into the stalled batch (expected to last 150 ms more), a write behind seven
        // full batches would be done after eight more of 100 ms (judged as twice that: 1.75 s
        // in all), and one behind eight after nine (1.95 s). A slow machine oversleeping by up
        // to 140 ms still admits past 448 writes.
        let mut admitted = 0;
        while write(Duration::ZERO).is_none() {
            admitted += 1;
            assert!(admitted <= 512, "never refused behind {admitted} writes");
        }
        assert!(admitted >= 448, "refused behind only {admitted} writes");
        // None of them waited as if for a thread of its own.
        assert_eq!(db.gate.waiting.load(Ordering::Acquire), 0);
        // Everything queued commits, and nothing is left counted.
        let drained = |db: &Db| {
            let db = db.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(5);
                while !db.combiner.queues.lock().is_empty() {
                    assert!(Instant::now() < deadline, "the queue was never served");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        drained(&db).await;
        assert_eq!(db.gate.waiting.load(Ordering::Acquire), 0);

        // A stall alone refuses once it has lasted longer than what the deadline leaves: 1.8 s
        // into a batch that stalls for 2 s, even a write with nothing queued ahead of it.
        assert!(write(Duration::from_secs(2)).is_none());
        started(&db).await;
        tokio::time::sleep(Duration::from_millis(1_800)).await;
        assert!(matches!(write(Duration::ZERO), Some(Err(Failure::Overloaded))));
        drained(&db).await;
    }

    /// A write that panics in a leader's batch must not leave its key led by nobody: the
    /// next write of the key leads again and commits.
    #[tokio::test]
    async fn a_panicking_write_does_not_stall_its_key() {
        let dir = tempfile::tempdir().unwrap();
        // A stalled key shows as the deadline passing.
        let db = sqlite_db(&dir, None, 4);
        let key = "the-key".to_owned();
        let panicked = db
            .run_combined(key.clone(), None, None, |_conn: &mut DbConnection| -> OpResult<()> {
                panic!("a write that panics")
            })
            .await;
        assert!(matches!(panicked, Err(Failure::Op(OpError::Unavailable(_)))), "{panicked:?}");
        let started = Instant::now();
        let answered = db
            .run_combined(key, None, None, |conn: &mut DbConnection| {
                use diesel::RunQueryDsl as _;
                diesel::sql_query("CREATE TABLE led (id INTEGER)").execute(conn)?;
                Ok::<_, OpError>("committed")
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
