//! The maintenance switch: one row, read by every instance every few seconds.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::connection::{DbConnection, on_each_backend, write_transaction};
use crate::error::StoreResult;
use crate::schema::maintenance;
use crate::sql_types::Ts;

/// The only row's id.
const ROW: i16 = 1;

/// The maintenance switch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceState {
    /// Whether writes are refused.
    pub enabled: bool,
    /// What to tell people (at most 500 characters).
    pub message: Option<String>,
    /// When the window is planned to end; past it, maintenance is over by itself.
    pub ends_at: Option<DateTime<Utc>>,
    /// When the switch last changed between on and off.
    pub since: DateTime<Utc>,
}

impl MaintenanceState {
    /// Whether writes are refused at `now`: switched on, and not past its planned end.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.enabled && self.ends_at.is_none_or(|ends_at| now < ends_at)
    }
}

#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = maintenance, treat_none_as_null = true)]
struct MaintenanceRow {
    id: i16,
    enabled: bool,
    message: Option<String>,
    ends_at: Option<Ts>,
    since: Ts,
}

impl From<MaintenanceRow> for MaintenanceState {
    fn from(row: MaintenanceRow) -> Self {
        Self {
            enabled: row.enabled,
            message: row.message,
            ends_at: row.ends_at.map(|ts| ts.0),
            since: row.since.0,
        }
    }
}

fn load(conn: &mut DbConnection) -> StoreResult<Option<MaintenanceState>> {
    Ok(maintenance::table
        .select(MaintenanceRow::as_select())
        .get_result(conn)
        .optional()?
        .map(MaintenanceState::from))
}

/// The maintenance switch (contract section 6), shared by every instance on the database.
impl DbConnection {
    /// The switch as last set; `None` if it never was (maintenance is off).
    pub fn maintenance(&mut self) -> StoreResult<Option<MaintenanceState>> {
        load(self)
    }

    /// Sets the switch. Switching it on while it is on, or off while off, keeps `since`.
    pub fn set_maintenance(
        &mut self,
        enabled: bool,
        message: Option<&str>,
        ends_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<MaintenanceState> {
        write_transaction(self, |conn| {
            let since = match load(conn)? {
                Some(current) if current.enabled == enabled => current.since,
                _ => now,
            };
            let row = MaintenanceRow {
                id: ROW,
                enabled,
                message: message.map(str::to_owned),
                ends_at: ends_at.map(Ts),
                since: Ts(since),
            };
            on_each_backend!(conn, |inner| diesel::insert_into(maintenance::table)
                .values(&row)
                .on_conflict(maintenance::id)
                .do_update()
                .set(&row)
                .execute(inner))?;
            Ok(MaintenanceState::from(row))
        })
    }
}
