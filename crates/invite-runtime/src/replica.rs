//! The standby that reads which may be stale can go to (`INVITE_DATABASE_READ_URL`), and how
//! stale it is.
//!
//! Only [`crate::door::Door::read_stale`] and [`crate::door::Door::read_grouped_stale`] use
//! it: previews that miss the cache and lists. Every decision (accepts, creates, revokes,
//! the permission checks of writes, Idempotency-Keys, the maintenance switch, the outbox, the
//! gateway) reads the primary.
//!
//! **The staleness bound.** A thread of its own, every [`Replica::check_interval`], reads the
//! primary's WAL position and notes when; then asks the standby how far it has replayed. Once
//! the standby has replayed a position read at time `t`, it holds every commit acknowledged
//! before `t`. The standby serves reads while the latest such `t` is within
//! `INVITE_DATABASE_READ_MAX_LAG` of now; otherwise (behind, unreachable, or not checked
//! yet) the reads go to the primary. So a read the standby serves is at most the bound old.
//! The measure is positions, not `pg_last_xact_replay_timestamp()`: that grows old on a
//! primary that writes nothing while the standby is fully current, and a standby cut from its
//! primary looks current by anything measured on it alone. A read URL whose server is not in
//! recovery (`prefer-standby` with no standby up, or a database of its own) is taken as
//! current.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use invite_store::DbPool;
use invite_store::replication::{Replay, WalPosition};
use parking_lot::Mutex;

use crate::db::Db;
use crate::metrics::Metrics;

/// The positions waiting to be seen replayed, at most: with one read per check, the oldest
/// is this many checks old, past any bound worth keeping the standby for.
const MAX_PENDING: usize = 64;

/// The standby's bridge (a read-only pool behind a gate and a circuit of its own) and how
/// current it is.
#[derive(Debug)]
pub struct Replica {
    db: Db,
    max_lag: Duration,
    /// The standby holds every commit acknowledged before this instant, in nanoseconds since
    /// `started` (plus one, so that zero is "not known yet").
    current_through: AtomicU64,
    started: Instant,
    /// Primary positions read and when, not yet seen replayed, oldest first.
    pending: Mutex<VecDeque<(Instant, WalPosition)>>,
    metrics: Arc<Metrics>,
}

impl Replica {
    /// The standby behind `db` (its pool read-only), used while it is within `max_lag` of
    /// the primary behind `primary`, which a thread of its own checks until the replica is
    /// dropped.
    pub fn start(db: Db, primary: DbPool, max_lag: Duration, metrics: Arc<Metrics>) -> Arc<Self> {
        let replica = Arc::new(Self {
            db,
            max_lag,
            current_through: AtomicU64::new(0),
            started: Instant::now(),
            pending: Mutex::default(),
            metrics,
        });
        let watched = Arc::downgrade(&replica);
        let spawned = std::thread::Builder::new()
            .name("replica-lag".into())
            .spawn(move || watch(&watched, &primary));
        if let Err(error) = spawned {
            // Never checked, the standby is never used: every read goes to the primary.
            tracing::error!(%error, "cannot start the standby's lag check; reading the primary");
        }
        replica
    }

    /// The standby's bridge.
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// The staleness bound (`INVITE_DATABASE_READ_MAX_LAG`).
    pub fn max_lag(&self) -> Duration {
        self.max_lag
    }

    /// How often the lag is checked: a fifth of the bound, so the standby is taken off a
    /// few checks before it crosses it, between 20 ms and a second.
    pub fn check_interval(&self) -> Duration {
        (self.max_lag / 5).clamp(Duration::from_millis(20), Duration::from_secs(1))
    }

    /// How old the standby's data may be now; `None` until it has been seen current once.
    pub fn staleness(&self) -> Option<Duration> {
        match self.current_through.load(Ordering::Acquire) {
            0 => None,
            nanos => Some((self.started + Duration::from_nanos(nanos - 1)).elapsed()),
        }
    }

    /// Whether reads may go to the standby now: it is known to be within the bound.
    pub fn is_current(&self) -> bool {
        self.staleness().is_some_and(|staleness| staleness <= self.max_lag)
    }

    /// The standby holds every commit acknowledged before `moment`.
    fn current_through(&self, moment: Instant) {
        let nanos = u64::try_from(moment.saturating_duration_since(self.started).as_nanos())
            .unwrap_or(u64::MAX - 1)
            + 1;
        self.current_through.fetch_max(nanos, Ordering::AcqRel);
    }

    /// One check: the primary's position now (if it answers), then the standby's replay.
    fn check(&self, primary: &DbPool) -> Result<(), String> {
        let budget = self.check_interval().max(Duration::from_millis(500));
        let asked = Instant::now();
        // A primary away, or one that is itself in recovery, gives nothing new to compare: the
        // standby's staleness grows until it is known again.
        if let Ok(Some(position)) =
            primary.run_by(asked + budget, invite_store::replication::primary_position)
        {
            let mut pending = self.pending.lock();
            if pending.len() == MAX_PENDING {
                pending.pop_front();
            }
            pending.push_back((asked, position));
        }
        let replay_asked = Instant::now();
        let replay = self
            .db
            .pool()
            .run_by(Instant::now() + budget, invite_store::replication::replay)
            .map_err(|error| error.to_string())?;
        match replay {
            Replay::NotAStandby => self.current_through(replay_asked),
            Replay::Replayed(replayed) => {
                let mut pending = self.pending.lock();
                let mut newest = None;
                while let Some(&(moment, position)) = pending.front() {
                    if position > replayed {
                        break;
                    }
                    newest = Some(moment);
                    pending.pop_front();
                }
                drop(pending);
                if let Some(moment) = newest {
                    self.current_through(moment);
                }
            }
            Replay::Unknown => {}
        }
        Ok(())
    }
}

/// Checks the standby every [`Replica::check_interval`] until the replica is dropped.
fn watch(replica: &Weak<Replica>, primary: &DbPool) {
    let mut failing = false;
    loop {
        let interval = {
            let Some(replica) = replica.upgrade() else { return };
            match replica.check(primary) {
                Ok(()) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("the standby answers again");
                    }
                }
                Err(error) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(%error, "the standby does not answer: reading the primary");
                    }
                }
            }
            replica.metrics.set_replica_staleness(replica.staleness());
            replica.check_interval()
        };
        std::thread::sleep(interval);
    }
}
