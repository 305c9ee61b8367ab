//! The gateway's upkeep on every instance: keeping this instance's session rows live, removing
//! temporary members whose last session has been gone for the grace period, and deleting the
//! rows of sessions long ended.
//!
//! Every instance sweeps: a removal checks again inside its own transaction, so two instances
//! sweeping at once remove a member once.

use std::time::Duration;

use chrono::TimeDelta;

use std::sync::Arc;

use super::instance::Gateway;
use super::protocol::CloseCode;
use crate::door::Door;
use crate::metrics::Metrics;

/// Most temporary members removed in one pass.
const SWEEP_BATCH: i64 = 100;

/// How long the rows of ended sessions are kept beyond the grace period.
const KEEP_ENDED: Duration = Duration::from_hours(1);

/// What the upkeep works with.
#[derive(Debug, Clone)]
pub struct Upkeep {
    /// The way into the database.
    pub door: Door,
    /// This instance's gateway.
    pub gateway: Arc<Gateway>,
    /// Counts the temporary members removed.
    pub metrics: Arc<Metrics>,
}

/// The upkeep: runs as long as the service does. Spawn it on the server's runtime.
pub async fn run(upkeep: Upkeep) {
    let (ttl, renew) = upkeep.gateway.session_ttl();
    let mut ticks = tokio::time::interval(renew);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        renew_sessions(&upkeep, ttl).await;
        sweep_temporary_members(&upkeep).await;
        purge(&upkeep).await;
    }
}

async fn renew_sessions(state: &Upkeep, ttl: Duration) {
    if state.gateway.hub.connections() == 0 {
        return;
    }
    let now = state.door.now();
    let until = now + TimeDelta::from_std(ttl).unwrap_or_default();
    let instance = state.gateway.instance_id;
    if let Err(error) =
        state.door.upkeep(move |conn| conn.renew_sessions(instance, now, until)).await
    {
        // Sessions lapse if this goes on past their lifetime: presence undercounts, and a
        // temporary member may be removed while connected (the removal reaches them).
        tracing::warn!(%error, "cannot renew this instance's gateway sessions");
    }
}

async fn sweep_temporary_members(state: &Upkeep) {
    let grace = TimeDelta::from_std(state.gateway.settings.temporary_grace).unwrap_or_default();
    let now = state.door.now();
    let lapsed = match state
        .door
        .read(move |conn| conn.lapsed_temporary_members(now, grace, SWEEP_BATCH))
        .await
    {
        Ok(lapsed) => lapsed,
        Err(error) => {
            tracing::debug!(%error, "cannot look for lapsed temporary members");
            return;
        }
    };
    for member in lapsed {
        let removed = state
            .door
            .change(move |conn| invite_ops::members::remove_temporary(conn, member, now, grace))
            .await;
        match removed {
            Ok(true) => {
                state.metrics.temporary_member_removed();
                tracing::info!(server_id = %member.0, user_id = %member.1, "removed a temporary member");
            }
            Ok(false) => {}
            Err(error) => tracing::debug!(?error, "cannot remove a temporary member"),
        }
    }
}

async fn purge(state: &Upkeep) {
    let keep = state.gateway.settings.temporary_grace + KEEP_ENDED;
    let before = state.door.now() - TimeDelta::from_std(keep).unwrap_or_default();
    if let Err(error) = state.door.upkeep(move |conn| conn.purge_sessions(before)).await {
        tracing::debug!(%error, "cannot purge ended gateway sessions");
    }
}

/// Closes every session of this instance with "resume elsewhere" and records their end (the
/// instance is stopping); waits up to `patience` for them to go.
pub async fn stop(door: &Door, gateway: &Gateway, patience: Duration) {
    let hub = &gateway.hub;
    if hub.connections() == 0 {
        return;
    }
    hub.close_all(CloseCode::Restarting);
    let deadline = tokio::time::Instant::now() + patience;
    while hub.connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = door.now();
    let instance = gateway.instance_id;
    let _ = door.upkeep(move |conn| conn.end_instance_sessions(instance, now)).await;
}
