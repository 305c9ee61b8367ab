//! Per-invite analytics as the service keeps them (contract section 11).
//!
//! - Previews and refused accepts are counted in this instance's memory and written in batches
//!   every flush interval (`INVITE_ANALYTICS_FLUSH_INTERVAL`): never a write per preview. A
//!   cached preview is the hottest path of the service, so each thread counts in a map of its
//!   own: the lock around it is only ever contended by a flush, and no cache line moves between
//!   cores per preview. Counting allocates only the first time a thread counts an invite since
//!   the last flush. What a crash loses is what was counted since the last flush; a graceful
//!   stop flushes ([`finish`]). A flush that fails puts its counts back.
//! - Joins and departures are not counted here at all: they are in the outbox already, and
//!   [`fold`] adds them to the counters and daily roll-ups behind the store's cursor, up to this
//!   instance's horizon (where nothing can still commit below), at the same interval and
//!   before a read of a server's analytics ([`catch_up`]). Instances
//!   sharing a database take turns on the cursor; each event is folded once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use invite_core::redeem::RedemptionRefused;
use invite_store::DbConnection;
use invite_store::repo::{EventHorizon, PreviewCount, RefusalCount};
use parking_lot::Mutex;
use thread_local::ThreadLocal;
use uuid::Uuid;

use crate::db::DbResult;
use crate::door::Door;

/// Joins and departures folded per transaction.
const FOLD_BATCH: i64 = 5_000;

/// Samples of the outbox's horizon one fold may take while transactions that drew `seq`s end.
const HORIZON_TRIES: u32 = 5;
const HORIZON_RETRY: Duration = Duration::from_millis(10);

/// One invite's previews since the last flush, as one thread counted them.
#[derive(Debug)]
struct PreviewCounter {
    server_id: Uuid,
    previews: i64,
}

/// One thread's preview counters, by invite.
type PreviewCounters = HashMap<Uuid, PreviewCounter>;

fn add_previews(counters: &mut PreviewCounters, invite_id: Uuid, server_id: Uuid, previews: i64) {
    counters.entry(invite_id).or_insert(PreviewCounter { server_id, previews: 0 }).previews +=
        previews;
}

fn preview_counts(counters: PreviewCounters) -> Vec<PreviewCount> {
    counters
        .into_iter()
        .map(|(invite_id, counter)| PreviewCount {
            invite_id,
            server_id: counter.server_id,
            previews: counter.previews,
        })
        .collect()
}

/// Refusals since the last flush, by code accepted and by the contract's error code.
type Refusals = HashMap<Box<str>, HashMap<&'static str, i64>>;

/// This instance's counts of previews and refusals not yet written, and the horizon its folds
/// read the outbox up to.
#[derive(Debug)]
pub struct Analytics {
    /// Whether analytics are on here (`INVITE_ANALYTICS`): previews and refusals counted, and
    /// joins folded from the outbox.
    counting: bool,
    previews: ThreadLocal<Mutex<PreviewCounters>>,
    refusals: Mutex<Refusals>,
    horizon: Mutex<EventHorizon>,
}

/// What [`Analytics::take`] took: the rows of one flush.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Previews, by invite.
    pub previews: Vec<PreviewCount>,
    /// Refusals, by code and error code.
    pub refusals: Vec<RefusalCount>,
}

impl Pending {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.previews.is_empty() && self.refusals.is_empty()
    }
}

impl Analytics {
    /// Counts previews and refusals, and folds joins, when `counting`; else does nothing.
    pub fn new(counting: bool) -> Self {
        Self {
            counting,
            previews: ThreadLocal::new(),
            refusals: Mutex::default(),
            horizon: Mutex::new(EventHorizon::starting_at(0)),
        }
    }

    /// Whether analytics are on here.
    pub fn counting(&self) -> bool {
        self.counting
    }

    /// Counts one preview of the invite shown.
    pub fn previewed(&self, invite_id: Uuid, server_id: Uuid) {
        if !self.counting {
            return;
        }
        add_previews(&mut self.previews.get_or_default().lock(), invite_id, server_id, 1);
    }

    /// Counts an accept of `code` refused for `reason`; a code that names no invite is
    /// nobody's to count.
    pub fn refused(&self, code: &str, reason: RedemptionRefused) {
        if !self.counting || reason == RedemptionRefused::NotFound {
            return;
        }
        let error = reason.code().as_str();
        let mut refusals = self.refusals.lock();
        if let Some(by_error) = refusals.get_mut(code) {
            *by_error.entry(error).or_default() += 1;
        } else {
            refusals.insert(code.into(), HashMap::from([(error, 1)]));
        }
    }

    /// Takes every count not yet written, leaving zero.
    pub fn take(&self) -> Pending {
        // An invite previewed on several threads has a counter on each: added up here.
        let mut previews = PreviewCounters::new();
        for counters in &self.previews {
            let taken = std::mem::take(&mut *counters.lock());
            for (invite_id, counter) in taken {
                add_previews(&mut previews, invite_id, counter.server_id, counter.previews);
            }
        }
        Pending { previews: preview_counts(previews), refusals: self.take_refusals() }
    }

    /// Takes the previews of one server's invites not yet written, and every refusal (they
    /// are few, and keyed by code alone): what a read of that server's analytics writes first.
    pub fn take_server(&self, server_id: Uuid) -> Pending {
        let mut previews = PreviewCounters::new();
        for counters in &self.previews {
            counters.lock().retain(|&invite_id, counter| {
                if counter.server_id != server_id {
                    return true;
                }
                add_previews(&mut previews, invite_id, server_id, counter.previews);
                false
            });
        }
        Pending { previews: preview_counts(previews), refusals: self.take_refusals() }
    }

    fn take_refusals(&self) -> Vec<RefusalCount> {
        let refusals = std::mem::take(&mut *self.refusals.lock());
        let mut counts = Vec::new();
        for (code, by_error) in refusals {
            counts.extend(by_error.into_iter().map(|(error, refusals)| RefusalCount {
                code: code.to_string(),
                error,
                refusals,
            }));
        }
        counts
    }

    /// Puts counts back that could not be written, to go with the next flush.
    pub fn restore(&self, pending: Pending) {
        let mut counters = self.previews.get_or_default().lock();
        for count in pending.previews {
            add_previews(&mut counters, count.invite_id, count.server_id, count.previews);
        }
        drop(counters);
        let mut refusals = self.refusals.lock();
        for count in pending.refusals {
            *refusals
                .entry(count.code.into_boxed_str())
                .or_default()
                .entry(count.error)
                .or_default() += count.refusals;
        }
    }
}

/// Writes the counts taken from `analytics` in one transaction (a statement per batch of
/// rows); on failure they are put back for the next flush.
pub async fn flush(door: &Door, analytics: &Analytics) -> DbResult<()> {
    write(door, analytics, analytics.take()).await
}

/// Brings one server's analytics up to date before they are read: writes what this instance
/// counted of its previews (and every refusal counted here), and folds the joins and
/// departures the outbox holds. A moderator checking a link they just shared or undid sees
/// what happened, not the last interval's figures; only what other instances counted
/// (previews and refusals) still lags, by up to their flush interval. Nothing when analytics
/// are off here.
pub async fn catch_up(door: &Door, analytics: &Analytics, server_id: Uuid) -> DbResult<()> {
    if !analytics.counting {
        return Ok(());
    }
    write(door, analytics, analytics.take_server(server_id)).await?;
    fold(door, analytics).await
}

/// Writes `pending`, taken from `analytics`, or puts it back when it cannot.
async fn write(door: &Door, analytics: &Analytics, pending: Pending) -> DbResult<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let written = pending.clone();
    let outcome = door
        .upkeep(move |conn| {
            invite_store::write_transaction(conn, |conn| {
                conn.add_previews(&written.previews)?;
                conn.add_refusals(&written.refusals)?;
                Ok::<_, invite_store::StoreError>(())
            })
        })
        .await;
    if outcome.is_err() {
        analytics.restore(pending);
    }
    outcome
}

/// Folds the joins and departures committed since the store's cursor, up to this instance's
/// horizon of the outbox, into the counters and daily roll-ups.
pub async fn fold(door: &Door, analytics: &Analytics) -> DbResult<()> {
    let mut tries = 0;
    let safe = loop {
        let sample = door.read(DbConnection::horizon_sample).await?;
        let (safe, waiting) = {
            let mut horizon = analytics.horizon.lock();
            (horizon.advance(sample), horizon.is_waiting())
        };
        tries += 1;
        if !waiting || tries >= HORIZON_TRIES {
            break safe;
        }
        tokio::time::sleep(HORIZON_RETRY).await;
    };
    loop {
        let folded = door.upkeep(move |conn| conn.fold_stats(safe, FOLD_BATCH)).await?;
        if !folded.more {
            return Ok(());
        }
    }
}

/// Flushes and folds every `interval`, as long as the service runs; nothing when analytics are
/// off (`INVITE_ANALYTICS=off`: the fold then catches up once they are on again, here or on
/// another instance, within the outbox's retention). Spawn it on the server's runtime.
pub async fn run(door: Door, analytics: Arc<Analytics>, interval: Duration) {
    if !analytics.counting {
        return;
    }
    loop {
        tokio::time::sleep(interval).await;
        if let Err(error) = flush(&door, &analytics).await {
            tracing::debug!(%error, "could not write the analytics counted here");
        }
        if let Err(error) = fold(&door, &analytics).await {
            tracing::debug!(%error, "could not fold joins into the analytics");
        }
    }
}

/// The last flush and fold, when the service stops: a graceful stop loses no count.
pub async fn finish(door: &Door, analytics: &Analytics) {
    if !analytics.counting {
        return;
    }
    if let Err(error) = flush(door, analytics).await {
        tracing::warn!(%error, "previews and refusals counted here since the last flush are lost");
    }
    if let Err(error) = fold(door, analytics).await {
        tracing::debug!(%error, "the next instance folds the joins left");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn previews(pending: &Pending) -> Vec<(Uuid, Uuid, i64)> {
        let mut rows: Vec<_> =
            pending.previews.iter().map(|c| (c.invite_id, c.server_id, c.previews)).collect();
        rows.sort();
        rows
    }

    #[test]
    fn previews_are_counted_by_invite_and_taken_once() {
        let analytics = Analytics::new(true);
        for _ in 0..3 {
            analytics.previewed(id(1), id(9));
        }
        analytics.previewed(id(2), id(9));
        let pending = analytics.take();
        assert_eq!(previews(&pending), vec![(id(1), id(9), 3), (id(2), id(9), 1)]);
        assert!(analytics.take().is_empty(), "taken counts start again from zero");
    }

    #[test]
    fn previews_counted_on_many_threads_all_count() {
        let analytics = Arc::new(Analytics::new(true));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let analytics = Arc::clone(&analytics);
                std::thread::spawn(move || {
                    for n in 0..1000 {
                        analytics.previewed(id(n % 4), id(9));
                        if n % 100 == 0 && t == 0 {
                            // A flush in the middle takes what was counted so far.
                            analytics.restore(analytics.take());
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // Each thread counted each invite 250 times: one row per invite, the threads' counts
        // added up.
        let expected: Vec<_> = (0..4).map(|n| (id(n), id(9), 8 * 250)).collect();
        assert_eq!(previews(&analytics.take()), expected);
    }

    #[test]
    fn a_servers_take_leaves_the_other_servers_previews() {
        let analytics = Arc::new(Analytics::new(true));
        analytics.previewed(id(1), id(9));
        analytics.previewed(id(2), id(8));
        let other_thread = Arc::clone(&analytics);
        std::thread::spawn(move || other_thread.previewed(id(1), id(9))).join().unwrap();
        analytics.refused("aaaa1111", RedemptionRefused::Expired);
        let taken = analytics.take_server(id(9));
        assert_eq!(previews(&taken), vec![(id(1), id(9), 2)]);
        assert_eq!(taken.refusals.len(), 1, "refusals are keyed by code alone: all are taken");
        assert_eq!(previews(&analytics.take()), vec![(id(2), id(8), 1)]);
    }

    #[test]
    fn refusals_are_counted_by_code_and_error_and_unknown_codes_not_at_all() {
        let analytics = Analytics::new(true);
        analytics.refused("aaaa1111", RedemptionRefused::MaxedOut);
        analytics.refused("aaaa1111", RedemptionRefused::MaxedOut);
        analytics.refused("aaaa1111", RedemptionRefused::Banned);
        analytics.refused("nope0000", RedemptionRefused::NotFound);
        let mut rows: Vec<(String, &str, i64)> =
            analytics.take().refusals.into_iter().map(|c| (c.code, c.error, c.refusals)).collect();
        rows.sort();
        assert_eq!(
            rows,
            vec![
                ("aaaa1111".to_owned(), "BANNED", 1),
                ("aaaa1111".to_owned(), "INVITE_MAXED_OUT", 2)
            ]
        );
    }

    #[test]
    fn counts_put_back_after_a_failed_flush_add_to_new_ones() {
        let analytics = Analytics::new(true);
        analytics.previewed(id(1), id(9));
        analytics.refused("aaaa1111", RedemptionRefused::Expired);
        let failed = analytics.take();
        analytics.previewed(id(1), id(9));
        analytics.refused("aaaa1111", RedemptionRefused::Expired);
        analytics.restore(failed);
        let pending = analytics.take();
        assert_eq!(previews(&pending), vec![(id(1), id(9), 2)]);
        assert_eq!(pending.refusals[0].refusals, 2);
    }

    #[test]
    fn nothing_is_counted_when_counting_is_off() {
        let analytics = Analytics::new(false);
        analytics.previewed(id(1), id(9));
        analytics.refused("aaaa1111", RedemptionRefused::Expired);
        assert!(analytics.take().is_empty());
    }
}
