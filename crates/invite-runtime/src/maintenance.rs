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
    state: RwLock<View>,
}

/// The switch as this instance knows it, and how many times this instance has set it: a read
/// of the database that began before the latest setting must not undo it.
#[derive(Debug, Default)]
struct View {
    switch: Option<MaintenanceState>,
    settings: u64,
}

/// When a read of the switch began, for [`MaintenanceView::show_read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBegun(u64);

impl Maintenance {
    /// The switch as last read or set.
    pub fn current(&self) -> Option<MaintenanceState> {
        self.state.read().switch.clone()
    }

    /// The switch, if it refuses writes at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> Option<MaintenanceState> {
        self.state.read().switch.as_ref().filter(|state| state.is_active(now)).cloned()
    }

    /// Records the switch as this instance has just set it (or found it at start-up).
    pub fn update(&self, state: Option<MaintenanceState>) {
        let mut view = self.state.write();
        view.switch = state;
        view.settings += 1;
    }

    /// Marks the start of a read of the switch from the database.
    pub fn begin_read(&self) -> ReadBegun {
        ReadBegun(self.state.read().settings)
    }

    /// Records the switch as a read begun at `begun` found it, unless this instance has set it
    /// since: that read may have seen the database before the setting committed. Whether it
    /// was recorded.
    fn update_read(&self, begun: ReadBegun, state: Option<MaintenanceState>) -> bool {
        let mut view = self.state.write();
        if view.settings != begun.0 {
            return false;
        }
        view.switch = state;
        true
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
    /// Records the switch as this instance has just set it, and in the gauge whether it is
    /// active at `now`.
    pub fn show(&self, switch: Option<MaintenanceState>, now: DateTime<Utc>) {
        self.metrics.set_maintenance(switch.as_ref().is_some_and(|switch| switch.is_active(now)));
        self.maintenance.update(switch);
    }

    /// Records the switch as a read begun at `begun` found it in the database (see
    /// [`Maintenance::begin_read`]), unless this instance has set it since.
    pub fn show_read(
        &self,
        begun: ReadBegun,
        switch: Option<MaintenanceState>,
        now: DateTime<Utc>,
    ) {
        let active = switch.as_ref().is_some_and(|switch| switch.is_active(now));
        if self.maintenance.update_read(begun, switch) {
            self.metrics.set_maintenance(active);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(message: &str) -> MaintenanceState {
        MaintenanceState {
            enabled: true,
            message: Some(message.to_owned()),
            ends_at: None,
            since: Utc::now(),
        }
    }

    /// The poller's read and an administrator's switch on the same instance can cross: what
    /// the read found before the switch committed must not replace the switch.
    #[test]
    fn a_read_begun_before_a_setting_does_not_undo_it() {
        let view = MaintenanceView {
            maintenance: Arc::new(Maintenance::default()),
            metrics: Arc::new(Metrics::new()),
        };
        let begun = view.maintenance.begin_read();
        view.show(Some(window("new")), Utc::now());
        view.show_read(begun, Some(window("old")), Utc::now());
        assert_eq!(
            view.maintenance.current().and_then(|state| state.message).as_deref(),
            Some("new")
        );
        // A read begun after the setting is the database's word, and is taken.
        let begun = view.maintenance.begin_read();
        view.show_read(begun, None, Utc::now());
        assert_eq!(view.maintenance.current(), None);
    }
}
