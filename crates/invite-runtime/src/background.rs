//! Work each instance does on its own, beside the requests: following the maintenance switch,
//! forgetting idle rate-limit keys, purging expired idempotency records. Each task runs on the
//! server's runtime and stops with it.

use std::time::Duration;

use invite_store::repo::{
    EventRepository, IdempotencyRepository, MaintenanceRepository, MaintenanceState,
};

use crate::maintenance::POLL_INTERVAL;
use crate::state::AppState;

/// How often idle rate-limit keys are dropped. A key is idle once its bucket has refilled, so
/// a flood of distinct keys is held for at most a bucket's period plus this.
const FORGET_IDLE_EVERY: Duration = Duration::from_secs(5);

/// How often expired idempotency records are purged, and how many go per statement.
const PURGE_EVERY: Duration = Duration::from_mins(10);
const PURGE_BATCH: i64 = 10_000;

/// Records the maintenance switch in this instance's view and its gauge.
pub fn show_maintenance(state: &AppState, switch: Option<MaintenanceState>) {
    let active = switch.as_ref().is_some_and(|switch| switch.is_active(state.clock.now()));
    state.metrics.set_maintenance(active);
    state.maintenance.update(switch);
}

/// Starts the tasks; call from within the server's runtime.
pub fn spawn(state: &AppState) {
    let poller = state.clone();
    actix_web::rt::spawn(async move {
        loop {
            match poller.db.run(MaintenanceRepository::maintenance).await {
                Ok(switch) => show_maintenance(&poller, switch),
                // The database's own state is in /status; the last known switch stands.
                Err(error) => tracing::debug!(%error, "could not read the maintenance switch"),
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    });
    if let Some(limits) = state.limits.clone() {
        actix_web::rt::spawn(async move {
            loop {
                tokio::time::sleep(FORGET_IDLE_EVERY).await;
                let limits = limits.clone();
                // A pass over a million keys takes tens of milliseconds: not on a worker.
                let _ = actix_web::rt::task::spawn_blocking(move || limits.forget_idle()).await;
            }
        });
    }
    let purger = state.clone();
    actix_web::rt::spawn(async move {
        loop {
            let now = purger.clock.now();
            let before =
                now - chrono::TimeDelta::from_std(purger.events_retention).unwrap_or_default();
            loop {
                match purger.db.run(move |conn| conn.purge_events(before, PURGE_BATCH)).await {
                    Ok(purged) if purged > 0 => tracing::debug!(purged, "purged old events"),
                    _ => break,
                }
            }
            loop {
                match purger
                    .db
                    .run(move |conn| conn.purge_idempotency_records(now, PURGE_BATCH))
                    .await
                {
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
    });
}
