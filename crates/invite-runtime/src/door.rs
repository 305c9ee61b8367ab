//! The one way into the database, named for what each passage does.
//!
//! Every method runs its work through the guarded bridge of [`crate::db`] (the request's
//! deadline, the load shedder, the circuit breaker, the metrics), except
//! [`Door::check_health`], which asks the database past the circuit and the shedder. A change's
//! events are settled into this instance's consumers inside the door, before the caller sees
//! its value: no caller can forget them.
//!
//! Reads that may be stale are named so: [`Door::read_stale`] and [`Door::read_grouped_stale`]
//! may be served by the standby of `INVITE_DATABASE_READ_URL` (see [`crate::replica`]), for
//! what a user only looks at (previews missing the cache, lists). Every other method reads and
//! writes the primary: a decision is never taken on what a standby says.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use invite_core::clock::Clock;
use invite_ops::{Ctx, EventSink, OpError, OpResult, Outcome};
use invite_store::repo::{Actor, IdempotencyClaim, Keyed, RecordedResponse};
use invite_store::{DbConnection, DbPool};

use crate::db::{Db, DbHealth, DbResult, Failure, SetSpec};
use crate::metrics::ReadServed;
use crate::replica::Replica;

/// Where a change's events go on this instance.
pub type Sink = Arc<dyn EventSink + Send + Sync>;

/// The one way into the database: the guarded bridge, where changes' events go, and the
/// clock that dates them.
#[derive(Clone)]
pub struct Door {
    db: Db,
    /// The standby that [`Door::read_stale`] may read, if `INVITE_DATABASE_READ_URL` is set.
    replica: Option<Arc<Replica>>,
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
        Self { db, replica: None, sink, clock }
    }

    /// This door, with `replica` serving the reads that may be stale while it is current.
    #[must_use]
    pub fn with_replica(mut self, replica: Arc<Replica>) -> Self {
        self.replica = Some(replica);
        self
    }

    /// The standby, if one is configured.
    pub fn replica(&self) -> Option<&Arc<Replica>> {
        self.replica.as_ref()
    }

    /// The standby, if reads may go to it now; else why not.
    fn current_replica(&self) -> Result<&Replica, ReadServed> {
        match &self.replica {
            None => Err(ReadServed::NoReplica),
            Some(replica) if replica.is_current() => Ok(replica),
            Some(_) => Err(ReadServed::Lagging),
        }
    }

    /// Counts a read a standby may serve.
    fn served(&self, served: ReadServed) {
        self.db.metrics().observe_stale_read(served);
    }

    /// Runs a query whose answer may be stale by up to the standby's bound
    /// (`INVITE_DATABASE_READ_MAX_LAG`): served by the standby when one is configured and known
    /// to be within the bound, else by the primary. For what a user only looks at (a list);
    /// never for what decides a change. A standby that fails to answer in time (away,
    /// overloaded, its circuit open) costs the request nothing but the wait: the primary
    /// serves it, within what remains of the deadline (the standby is given half the
    /// database timeout). A refusal from the standby (not a member, not found) may only be it
    /// being behind, so it is asked of the primary again. `work` runs once or twice.
    pub async fn read_stale<T, E, F>(&self, work: F) -> DbResult<T>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: Fn(&mut DbConnection) -> Result<T, E> + Send + Sync + 'static,
    {
        let work = Arc::new(work);
        let served = match self.current_replica() {
            Ok(replica) => {
                let on_replica = Arc::clone(&work);
                match replica.db().run(move |conn| on_replica(conn)).await {
                    Ok(value) => {
                        self.served(ReadServed::Replica);
                        return Ok(value);
                    }
                    Err(failure) => fallback(&failure),
                }
            }
            Err(why) => why,
        };
        self.served(served);
        self.db.run(move |conn| work(conn)).await
    }

    /// [`Door::read_grouped`], with the reads that may be stale of [`Door::read_stale`]: the
    /// batch is read on the standby when it is current, and on the primary otherwise, or when
    /// the standby fails. An answer `settled` does not accept (a code the standby does not
    /// know, perhaps only yet) is read again on the primary, grouped the same way. With
    /// `changed_here` (the caller knows this instance changed what the read shows within the
    /// bound, when the standby may not have it yet), the primary reads it: an instance's own
    /// changes show at once in what it serves.
    pub async fn read_grouped_stale<T, E, F>(
        &self,
        key: String,
        set: SetSpec<T>,
        work: F,
        settled: fn(&T) -> bool,
        changed_here: bool,
    ) -> DbResult<T>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: Fn(&mut DbConnection) -> Result<T, E> + Send + Sync + 'static,
    {
        let work = Arc::new(work);
        let replica = match self.current_replica() {
            Ok(_) if changed_here => Err(ReadServed::ChangedHere),
            other => other,
        };
        let served = match replica {
            Ok(replica) => {
                let on_replica = Arc::clone(&work);
                let replica_set = SetSpec { request: set.request.clone(), finish: set.finish };
                match replica
                    .db()
                    .run_combined(key.clone(), Some(replica_set), None, move |conn| {
                        on_replica(conn)
                    })
                    .await
                {
                    Ok(value) if settled(&value) => {
                        self.served(ReadServed::Replica);
                        return Ok(value);
                    }
                    Ok(_) => ReadServed::Confirmed,
                    Err(failure) => fallback(&failure),
                }
            }
            Err(why) => why,
        };
        self.served(served);
        self.db.run_combined(key, Some(set), None, move |conn| work(conn)).await
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
            .run(move |conn| {
                let render = |outcome: &Outcome<T>| render(outcome.value());
                invite_store::repo::answered(conn, claim.as_ref(), now, work, render)
            })
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
            .run_combined(key, None, lock_order, move |conn| {
                let render = |outcome: &Outcome<T>| render(outcome.value());
                invite_store::repo::answered(conn, claim.as_ref(), now, &work, render)
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

/// Why a read the standby failed goes to the primary: its refusal is confirmed there, and its
/// failure to answer is the standby's, not the request's.
fn fallback(failure: &Failure) -> ReadServed {
    match failure {
        Failure::Overloaded => ReadServed::ReplicaFailed,
        Failure::Op(error) if error.is_unavailable() || matches!(error, OpError::Internal(_)) => {
            ReadServed::ReplicaFailed
        }
        Failure::Op(_) => ReadServed::Confirmed,
    }
}
