//! The maintenance switch (contract section 6), which every instance sharing the database
//! follows: switched by an operator (`/admin/maintenance`) or at start-up
//! (`INVITE_MAINTENANCE`). It belongs to no server, so it has no audit entry and no event; the
//! instances poll it.

use chrono::{DateTime, Utc};
use invite_core::maintenance::MaintenanceRequest;
use invite_store::DbConnection;
use invite_store::repo::MaintenanceState;

use crate::{OpResult, Outcome};

/// Starts (or changes) maintenance: writes are refused with the message until `until`.
pub fn start(
    conn: &mut DbConnection,
    request: &MaintenanceRequest,
    now: DateTime<Utc>,
) -> OpResult<Outcome<MaintenanceState>> {
    let window = request.validate(now)?;
    let state = conn.set_maintenance(true, window.message.as_deref(), window.until, now)?;
    Ok(Outcome::quiet(state))
}

/// Sets the switch as the configuration says at start-up (`INVITE_MAINTENANCE`, its message
/// and end, checked when the configuration was read).
pub fn configure(
    conn: &mut DbConnection,
    enabled: bool,
    message: Option<&str>,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> OpResult<Outcome<MaintenanceState>> {
    Ok(Outcome::quiet(conn.set_maintenance(enabled, message, until, now)?))
}

/// Ends maintenance.
pub fn end(conn: &mut DbConnection, now: DateTime<Utc>) -> OpResult<Outcome<MaintenanceState>> {
    Ok(Outcome::quiet(conn.set_maintenance(false, None, None, now)?))
}

/// The switch as the database holds it.
pub fn current(conn: &mut DbConnection) -> OpResult<Option<MaintenanceState>> {
    Ok(conn.maintenance()?)
}
