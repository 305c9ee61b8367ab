//! Work each instance does on its own, beside the requests: following the maintenance switch,
//! forgetting idle rate-limit keys, purging expired idempotency records. The host spawns each
//! task on the server's runtime; it stops with it.

use std::sync::Arc;
use std::time::Duration;

use invite_store::DbConnection;

use crate::door::Door;
use crate::maintenance::{MaintenanceView, POLL_INTERVAL};
use crate::rate_limit::RateLimits;

/// How often idle rate-limit keys are dropped. A key is idle once its bucket has refilled, so
/// a flood of distinct keys is held for at most a bucket's period plus this.
const FORGET_IDLE_EVERY: Duration = Duration::from_secs(5);

/// How often expired idempotency records are purged, and how many go per statement.
const PURGE_EVERY: Duration = Duration::from_mins(10);
const PURGE_BATCH: i64 = 10_000;

/// Follows the maintenance switch as the database holds it, as long as the service runs.
/// Spawn it on the server's runtime.
pub async fn follow_maintenance(door: Door, view: MaintenanceView) {
    loop {
        let begun = view.maintenance.begin_read();
        match door.read(DbConnection::maintenance).await {
            Ok(switch) => view.show_read(begun, switch, door.now()),
            // The database's own state is in /status; the last known switch stands.
            Err(error) => tracing::debug!(%error, "could not read the maintenance switch"),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Forgets idle rate-limit keys, as long as the service runs. Spawn it on the server's
/// runtime.
pub async fn forget_idle_keys(limits: Arc<RateLimits>) {
    loop {
        tokio::time::sleep(FORGET_IDLE_EVERY).await;
        let limits = limits.clone();
        // A pass over a million keys takes tens of milliseconds: not on a worker.
        let _ = tokio::task::spawn_blocking(move || limits.forget_idle()).await;
    }
}

/// Purges old events (kept for `retention`) and expired idempotency records, as long as the
/// service runs. Spawn it on the server's runtime.
pub async fn purge(door: Door, retention: Duration) {
    loop {
        let now = door.now();
        let before = now - chrono::TimeDelta::from_std(retention).unwrap_or_default();
        loop {
            match door.upkeep(move |conn| conn.purge_events(before, PURGE_BATCH)).await {
                Ok(purged) if purged > 0 => tracing::debug!(purged, "purged old events"),
                _ => break,
            }
        }
        loop {
            match door.upkeep(move |conn| conn.purge_idempotency_records(now, PURGE_BATCH)).await {
                Ok(purged) if purged > 0 => {
                    tracing::debug!(purged, "purged expired idempotency records");
                }
                Ok(_) => break,
                Err(error) => {
                    tracing::debug!(%error, "could not purge idempotency records");
                    break;
                }
            }
        }
        tokio::time::sleep(PURGE_EVERY).await;
    }
}
