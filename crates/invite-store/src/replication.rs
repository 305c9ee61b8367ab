//! Where a PostgreSQL standby's replay stands against its primary's WAL, for deciding whether
//! reads that may be stale can go to the standby (`INVITE_DATABASE_READ_URL`).
//!
//! The positions are compared, not the time of the last replayed transaction: on a primary
//! that writes nothing for a while, `pg_last_xact_replay_timestamp()` grows old while the
//! standby has replayed everything there is, and a standby whose WAL receiver is disconnected
//! replays everything it received and looks current by any measure taken on it alone. A
//! position read on the primary at a known moment, found replayed on the standby, says the
//! standby holds every commit acknowledged before that moment, whatever else happens.

use diesel::RunQueryDsl as _;
use diesel::sql_types::{Bool, Nullable, Text};

use crate::connection::DbConnection;
use crate::error::StoreResult;

/// A position in PostgreSQL's write-ahead log (a `pg_lsn`), ordered as the log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalPosition(pub u64);

impl WalPosition {
    /// Reads `pg_lsn`'s text form, two hexadecimal halves (`16/B374D848`).
    pub fn parse(text: &str) -> Option<Self> {
        let (high, low) = text.trim().split_once('/')?;
        let high = u32::from_str_radix(high, 16).ok()?;
        let low = u32::from_str_radix(low, 16).ok()?;
        Some(Self((u64::from(high) << 32) | u64::from(low)))
    }
}

/// What a server that serves reads says of its replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Not a standby (not in recovery): a primary of its own, as current as what it holds.
    /// A multi-host read URL with `target_session_attrs=prefer-standby` lands on the primary
    /// when no standby answers.
    NotAStandby,
    /// A standby, which has replayed the WAL up to here.
    Replayed(WalPosition),
    /// A standby that has replayed nothing yet, or a backend without WAL (SQLite).
    Unknown,
}

#[derive(diesel::QueryableByName)]
struct Position {
    #[diesel(sql_type = Nullable<Text>)]
    lsn: Option<String>,
}

#[derive(diesel::QueryableByName)]
struct StandbyPosition {
    #[diesel(sql_type = Bool)]
    standby: bool,
    #[diesel(sql_type = Nullable<Text>)]
    lsn: Option<String>,
}

/// The primary's current WAL position: every commit acknowledged before it was read is at or
/// before it. `None` on SQLite, or when the server is itself in recovery.
pub fn primary_position(conn: &mut DbConnection) -> StoreResult<Option<WalPosition>> {
    let DbConnection::Postgres(pg) = conn else { return Ok(None) };
    let found = diesel::sql_query(
        "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS lsn",
    )
    .get_result::<Position>(pg)?;
    Ok(found.lsn.as_deref().and_then(WalPosition::parse))
}

/// How far the server behind `conn` has replayed, if it is a standby.
pub fn replay(conn: &mut DbConnection) -> StoreResult<Replay> {
    let DbConnection::Postgres(pg) = conn else { return Ok(Replay::Unknown) };
    let found = diesel::sql_query(
        "SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn()::text AS lsn",
    )
    .get_result::<StandbyPosition>(pg)?;
    Ok(match (found.standby, found.lsn.as_deref().and_then(WalPosition::parse)) {
        (false, _) => Replay::NotAStandby,
        (true, Some(position)) => Replay::Replayed(position),
        (true, None) => Replay::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_as_the_log_orders_them() {
        assert_eq!(WalPosition::parse("0/0"), Some(WalPosition(0)));
        assert_eq!(WalPosition::parse("16/B374D848"), Some(WalPosition(0x16_B374_D848)));
        assert!(WalPosition::parse("1/0") > WalPosition::parse("0/FFFFFFFF"));
        assert_eq!(WalPosition::parse("garbage"), None);
        assert_eq!(WalPosition::parse("1FFFFFFFF/0"), None);
    }
}
