//! The one way into the database, named for what each passage does.
//!
//! Every method runs its work through the guarded bridge of [`crate::db`] (the request's
//! deadline, the load shedder, the circuit breaker, the metrics), except
//! [`Door::check_health`], which asks the database past the circuit and the shedder. A change's
//! events are settled into this instance's consumers inside the door, before the caller sees
//! its value: no caller can forget them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use invite_core::clock::Clock;
use invite_ops::{Ctx, EventSink, OpError, OpResult, Outcome};
use invite_store::repo::{Actor, IdempotencyClaim, Keyed, RecordedResponse};
use invite_store::{DbConnection, DbPool};

use crate::db::{Db, DbHealth, DbResult, SetSpec};

/// Where a change's events go on this instance.
pub type Sink = Arc<dyn EventSink + Send + Sync>;

/// The one way into the database: the guarded bridge, where changes' events go, and the
/// clock that dates them.
#[derive(Clone)]
pub struct Door {
    db: Db,
    sink: Sink,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Door {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Door").field("db", &self.db).finish_non_exhaustive()
    }
}

/// What a grouped change returns, and what it is once its events are settled: an [`Outcome`],
/// or one recorded under an Idempotency-Key (a replay has no events: they were settled when it
/// was fresh).
pub trait Settle {
    /// The value, once the events are settled.
    type Settled;

    /// Hands the events to `sink` and returns the value.
    fn settle(self, sink: &dyn EventSink) -> Self::Settled;
}

impl<T> Settle for Outcome<T> {
    type Settled = T;

    fn settle(self, sink: &dyn EventSink) -> T {
        Outcome::settle(self, sink)
    }
}

impl<T> Settle for Keyed<Outcome<T>> {
    type Settled = Keyed<T>;

    fn settle(self, sink: &dyn EventSink) -> Keyed<T> {
        match self {
            Keyed::Fresh(outcome) => Keyed::Fresh(outcome.settle(sink)),
            Keyed::Replay(recorded) => Keyed::Replay(recorded),
        }
    }
}

impl Door {
    /// A door over the bridge `db`, settling changes' events into `sink`, dating them by
    /// `clock`.
    pub fn new(db: Db, sink: Sink, clock: Arc<dyn Clock>) -> Self {
        Self { db, sink, clock }
    }

    /// How many groups the writes that come in streams fall into on PostgreSQL (see
    /// [`crate::db::WriteGroups`]).
    pub fn write_groups(&self) -> crate::db::WriteGroups {
        self.db.write_groups()
    }

    /// The time now, by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The service's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Who acts, and when (now): what an operation is run with.
    pub fn ctx(&self, actor: Actor) -> Ctx {
        Ctx { actor, now: self.clock.now() }
    }

    /// Runs a query: work that changes nothing.
    pub async fn read<T, E, F>(&self, work: F) -> DbResult<T>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        self.db.run(work).await
    }

    /// Runs a query combined with the concurrent queries of the same `key`, which a batch may
    /// read with one statement as `set` describes (see [`SetSpec`]): for reads that come in
    /// streams and miss a cache, such as previews. `work` is the query alone, for a batch that
    /// cannot be read at once.
    pub async fn read_grouped<T, E, F>(&self, key: String, set: SetSpec<T>, work: F) -> DbResult<T>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: Fn(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        self.db.run_combined(key, Some(set), None, work).await
    }

    /// Runs a write of the service's own bookkeeping, which nobody hears of: leases, session
    /// rows, delivery logs, purges of what has expired.
    pub async fn upkeep<T, E, F>(&self, work: F) -> DbResult<T>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        self.db.run(work).await
    }

    /// Runs a change (an operation of `invite-ops`); its events reach this instance's
    /// consumers, and are announced to the others, before its value is returned.
    pub async fn change<T, F>(&self, work: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> OpResult<Outcome<T>> + Send + 'static,
    {
        Ok(self.db.run(work).await?.settle(&*self.sink))
    }

    /// Runs a change whose answer `render` describes, recorded under the Idempotency-Key
    /// `claim` (as of now) when there is one: the change and the record of its answer commit together,
    /// and a key already answered is replayed without doing the work again (see
    /// `invite_store::repo::recorded`). Without a key, the answer is rendered and not
    /// recorded. The events of a fresh change are settled as [`Door::change`] settles them.
    pub async fn change_keyed<T, F, R>(
        &self,
        claim: Option<IdempotencyClaim>,
        work: F,
        render: R,
    ) -> DbResult<Keyed<RecordedResponse>>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> OpResult<Outcome<T>> + Send + 'static,
        R: FnOnce(&T) -> RecordedResponse + Send + 'static,
    {
        let now = self.clock.now();
        let answer = self
            .db
            .write(claim, now, work, move |outcome: &Outcome<T>| render(outcome.value()))
            .await?;
        Ok(self.settle_keyed(answer))
    }

    /// [`Door::change_keyed`] committed together with the concurrent changes of the same `key`
    /// (group commit, as [`Door::change_grouped`]), run in its batch in `lock_order` (the row it
    /// locks first: see `invite_store::batch::BatchWrite::lock_order`). For changes that come
    /// in streams and answer with a recorded response (creates). `work` and `render` may run
    /// more than once (again alone when the group fails).
    pub async fn change_keyed_grouped<T, F, R>(
        &self,
        key: String,
        lock_order: Option<uuid::Uuid>,
        claim: Option<IdempotencyClaim>,
        work: F,
        render: R,
    ) -> DbResult<Keyed<RecordedResponse>>
    where
        T: Send + 'static,
        F: Fn(&mut DbConnection) -> OpResult<Outcome<T>> + Send + 'static,
        R: Fn(&T) -> RecordedResponse + Send + 'static,
    {
        let now = self.clock.now();
        let answer = self
            .db
            .run_combined(key, None, lock_order, move |conn| -> OpResult<_> {
                let render = |outcome: &Outcome<T>| render(outcome.value());
                match &claim {
                    None => work(conn).map(|outcome| Keyed::Fresh((render(&outcome), outcome))),
                    Some(claim) => invite_store::repo::recorded(conn, claim, now, &work, render),
                }
            })
            .await?;
        Ok(self.settle_keyed(answer))
    }

    /// Hands a fresh keyed change's events on; its answer is already rendered.
    fn settle_keyed<T>(
        &self,
        answer: Keyed<(RecordedResponse, Outcome<T>)>,
    ) -> Keyed<RecordedResponse> {
        match answer {
            Keyed::Fresh((response, outcome)) => {
                let _ = outcome.settle(&*self.sink);
                Keyed::Fresh(response)
            }
            Keyed::Replay(response) => Keyed::Replay(response),
        }
    }

    /// Runs a change committed together with the concurrent changes of the same `key`: group
    /// commit, for the writes that come in streams (joins). `work` may run more than once
    /// (again alone when its group fails), so it must be a complete change of its own, as
    /// every operation is. Its events are settled as [`Door::change`] settles them. With `set`,
    /// a batch may run the change with others of its kind in one statement instead of running
    /// `work` (see [`SetSpec`]).
    pub async fn change_grouped<S, E, F>(
        &self,
        key: String,
        set: Option<SetSpec<S>>,
        work: F,
    ) -> DbResult<S::Settled>
    where
        S: Settle + Send + 'static,
        E: Into<OpError>,
        F: Fn(&mut DbConnection) -> Result<S, E> + Send + 'static,
    {
        Ok(self.db.run_combined(key, set, None, work).await?.settle(&*self.sink))
    }

    /// Asks the database itself, past the circuit and the shedder, whether it answers: for a
    /// load balancer's readiness check, which must say what the database does now, not what
    /// the circuit last concluded. A success closes an open circuit; a failure counts like any
    /// other.
    pub async fn check_health<T, E, F>(&self, work: F) -> DbResult<T>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        self.db.check(work).await
    }

    /// Where changes' events go: for a change made outside the door (a command's set-up
    /// before the service serves), settled the same way.
    pub fn sink(&self) -> &dyn EventSink {
        &*self.sink
    }

    /// The pool, for its size, backend and state.
    pub fn pool(&self) -> &DbPool {
        self.db.pool()
    }

    /// What the bridge has observed of the database.
    pub fn health(&self) -> DbHealth {
        self.db.health()
    }

    /// The event loops' recent lag.
    pub fn lag(&self) -> Duration {
        self.db.lag()
    }

    /// Measures how late the event loop it runs on wakes up, for the shedder (see
    /// [`Db::watch_lag`]). Spawn one on each worker.
    pub async fn watch_lag(self) {
        self.db.watch_lag().await;
    }
}
