//! This instance's view of the maintenance switch (contract section 6).
//!
//! The switch lives in the database, so every instance sharing it follows: each instance reads
//! it every [`POLL_INTERVAL`] (see `background`), and the instance that switched it knows at
//! once. A window with an end time is over by itself once the time has passed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use invite_store::repo::MaintenanceState;
use parking_lot::RwLock;

use crate::metrics::Metrics;

/// How often each instance reads the switch; an instance follows a switch made elsewhere
/// within this (and within 5 s, as the contract asks, with room to spare).
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// This instance's view of the switch.
#[derive(Debug, Default)]
pub struct Maintenance {
    state: RwLock<Option<MaintenanceState>>,
}

impl Maintenance {
    /// The switch as last read or set.
    pub fn current(&self) -> Option<MaintenanceState> {
        self.state.read().clone()
    }

    /// The switch, if it refuses writes at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> Option<MaintenanceState> {
        self.state.read().as_ref().filter(|state| state.is_active(now)).cloned()
    }

    /// Records the switch as the database holds it.
    pub fn update(&self, state: Option<MaintenanceState>) {
        *self.state.write() = state;
    }
}

/// This instance's view of the maintenance switch, and its gauge.
#[derive(Debug, Clone)]
pub struct MaintenanceView {
    /// The view.
    pub maintenance: Arc<Maintenance>,
    /// The gauge's registry.
    pub metrics: Arc<Metrics>,
}

impl MaintenanceView {
    /// Records the switch in the view, and in its gauge whether it is active at `now`.
    pub fn show(&self, switch: Option<MaintenanceState>, now: DateTime<Utc>) {
        let active = switch.as_ref().is_some_and(|switch| switch.is_active(now));
        self.metrics.set_maintenance(active);
        self.maintenance.update(switch);
    }
}
