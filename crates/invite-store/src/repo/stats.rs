//! Per-invite analytics (contract section 11): counters and daily roll-ups that the accept never
//! writes.
//!
//! - Joins and departures are folded in from the outbox behind one cursor
//!   (`invite_stats_fold`), in the transaction that advances it: on PostgreSQL the cursor's row
//!   is locked first, so instances sharing the database take turns and never fold an event
//!   twice; SQLite's writers run one at a time. The caller says up to which `seq` the outbox is
//!   final (an [`EventHorizon`](super::EventHorizon)), so no event that commits late is skipped.
//! - Previews and refusals, counted in memory by each instance, are added in batches: a row
//!   per invite, whatever the number of previews it stands for (the previews all in one
//!   statement on PostgreSQL).
//! - Reads take a few rows per invite, and per invite (or server) and day: never the members.

use std::collections::BTreeMap;

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::upsert::excluded;
use invite_core::stats::{InviteStats, InviteSummary, ServerStats, Tally, day_date, retained};
use uuid::Uuid;

use super::events::membership_events_between;
use crate::connection::{DbConnection, write_transaction};
use crate::error::StoreResult;
use crate::schema::{
    invite_joins_daily, invite_refusals, invite_stats, invite_stats_fold, invites,
    server_joins_daily,
};
use crate::sql_types::Id;

/// Rows written by one statement on PostgreSQL.
const CHUNK: usize = 1000;

/// Adds `$rows` into `$table` with one `INSERT ... ON CONFLICT ($target) DO UPDATE SET $set`
/// per [`CHUNK`] of rows on PostgreSQL. diesel writes no multi-row upsert for SQLite, whose
/// statements are calls into this process rather than round trips: one per row there (the
/// `sqlite` form), in the caller's transaction.
macro_rules! upsert {
    (sqlite $sqlite:expr, $table:expr, $rows:expr, $target:expr, $set:expr) => {
        for row in $rows {
            diesel::insert_into($table)
                .values(row)
                .on_conflict($target)
                .do_update()
                .set($set)
                .execute($sqlite)?;
        }
    };
    ($conn:expr, $table:expr, $rows:expr, $target:expr, $set:expr) => {
        match $conn {
            DbConnection::Postgres(pg) => {
                for chunk in $rows.chunks(CHUNK) {
                    diesel::insert_into($table)
                        .values(chunk)
                        .on_conflict($target)
                        .do_update()
                        .set($set)
                        .execute(pg)?;
                }
            }
            DbConnection::Sqlite(sqlite) => upsert!(sqlite sqlite, $table, $rows, $target, $set),
        }
    };
}

/// Previews of one invite, counted by an instance since its last flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewCount {
    /// The invite.
    pub invite_id: Uuid,
    /// Its server.
    pub server_id: Uuid,
    /// How many.
    pub previews: i64,
}

/// Refused accepts of one code for one reason, counted by an instance since its last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalCount {
    /// The code that was accepted.
    pub code: String,
    /// The contract's error code of the refusal (`INVITE_MAXED_OUT`, ...).
    pub error: &'static str,
    /// How many.
    pub refusals: i64,
}

/// What one call of [`DbConnection::fold_stats`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Folded {
    /// The cursor after it: every event up to this `seq` is folded in.
    pub through: i64,
    /// Joins and departures it folded.
    pub events: usize,
    /// Whether it stopped at its limit before `up_to`: call again.
    pub more: bool,
}

#[derive(Insertable)]
#[diesel(table_name = invite_stats)]
struct StatsRow {
    invite_id: Id,
    server_id: Id,
    previews: i64,
    accepts: i64,
    departures: i64,
}

#[derive(Insertable)]
#[diesel(table_name = invite_joins_daily)]
struct DayRow {
    invite_id: Id,
    day: i64,
    server_id: Id,
    joins: i64,
}

#[derive(Insertable)]
#[diesel(table_name = server_joins_daily)]
struct ServerDayRow {
    server_id: Id,
    day: i64,
    joins: i64,
}

#[derive(Insertable)]
#[diesel(table_name = invite_refusals)]
struct RefusalRow {
    invite_id: Id,
    code: String,
    server_id: Id,
    refusals: i64,
}

/// The counters' upsert on PostgreSQL: every row of a flush or a fold in one statement, its
/// columns bound as five arrays (`unnest` keeps their order). A flush writes a row for nearly
/// every invite previewed since the last, and multi-row `VALUES` would take a statement per
/// [`CHUNK`] of them, each of thousands of parameters parsed and planned afresh.
const ADD_COUNTS_PG: &str = "\
    INSERT INTO invite_stats AS s (invite_id, server_id, previews, accepts, departures) \
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int8[], $4::int8[], $5::int8[]) \
    ON CONFLICT (invite_id) DO UPDATE SET previews = s.previews + excluded.previews, \
        accepts = s.accepts + excluded.accepts, departures = s.departures + excluded.departures";

/// Adds `rows` to the counters: each column to what the row holds, or the row as it is.
fn add_counts(conn: &mut DbConnection, rows: &[StatsRow]) -> StoreResult<()> {
    use diesel::sql_types::{Array, Uuid as SqlUuid};
    use invite_stats::dsl::{accepts, departures, invite_id, previews};
    match conn {
        DbConnection::Postgres(pg) => {
            if rows.is_empty() {
                return Ok(());
            }
            let ids = |get: fn(&StatsRow) -> Uuid| rows.iter().map(get).collect::<Vec<_>>();
            let column = |get: fn(&StatsRow) -> i64| rows.iter().map(get).collect::<Vec<_>>();
            diesel::sql_query(ADD_COUNTS_PG)
                .bind::<Array<SqlUuid>, _>(ids(|row| row.invite_id.0))
                .bind::<Array<SqlUuid>, _>(ids(|row| row.server_id.0))
                .bind::<Array<BigInt>, _>(column(|row| row.previews))
                .bind::<Array<BigInt>, _>(column(|row| row.accepts))
                .bind::<Array<BigInt>, _>(column(|row| row.departures))
                .execute(pg)?;
        }
        DbConnection::Sqlite(sqlite) => upsert!(
            sqlite sqlite,
            invite_stats::table,
            rows,
            invite_id,
            (
                previews.eq(previews + excluded(previews)),
                accepts.eq(accepts + excluded(accepts)),
                departures.eq(departures + excluded(departures)),
            )
        ),
    }
    Ok(())
}

fn add_days(conn: &mut DbConnection, rows: &[DayRow]) -> StoreResult<()> {
    use invite_joins_daily::dsl::{day, invite_id, joins};
    upsert!(
        conn,
        invite_joins_daily::table,
        rows,
        (invite_id, day),
        joins.eq(joins + excluded(joins))
    );
    // The same by server, in key order.
    let mut by_server: BTreeMap<(Uuid, i64), i64> = BTreeMap::new();
    for row in rows {
        *by_server.entry((row.server_id.0, row.day)).or_default() += row.joins;
    }
    let servers: Vec<ServerDayRow> = by_server
        .into_iter()
        .map(|((server, day_number), count)| ServerDayRow {
            server_id: Id(server),
            day: day_number,
            joins: count,
        })
        .collect();
    {
        use server_joins_daily::dsl::{day, joins, server_id};
        upsert!(
            conn,
            server_joins_daily::table,
            &servers,
            (server_id, day),
            joins.eq(joins + excluded(joins))
        );
    }
    Ok(())
}

/// `SUM` of a `bigint` column as a `bigint` (PostgreSQL's is a `numeric`), 0 over no rows.
fn sum(column: &str) -> diesel::expression::SqlLiteral<BigInt> {
    sql::<BigInt>(&format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)"))
}

/// Per-invite analytics.
impl DbConnection {
    /// Folds the joins and departures after the cursor and up to `up_to` (at most `limit` of
    /// them) into the counters and daily roll-ups, and moves the cursor, in one transaction.
    /// `up_to` must be a `seq` below which nothing can still commit (see
    /// [`EventHorizon`](super::EventHorizon)); a cursor already past it changes nothing.
    pub fn fold_stats(&mut self, up_to: i64, limit: i64) -> StoreResult<Folded> {
        write_transaction(self, |conn| {
            let cursor = invite_stats_fold::table.select(invite_stats_fold::folded_through);
            // SQLite has no row locks (nor `FOR UPDATE`): its writers run one at a time.
            let folded: i64 = match conn {
                DbConnection::Postgres(pg) => cursor.for_update().get_result(pg)?,
                DbConnection::Sqlite(sqlite) => cursor.get_result(sqlite)?,
            };
            if up_to <= folded {
                return Ok(Folded { through: folded, events: 0, more: false });
            }
            let events = membership_events_between(conn, folded, up_to, limit)?;
            let more = i64::try_from(events.len()).unwrap_or(i64::MAX) >= limit;
            let through = match events.last() {
                Some(last) if more => last.seq,
                _ => up_to,
            };
            let mut tally = Tally::default();
            for stored in &events {
                tally.add(&stored.event, stored.created_at);
            }
            let mut counts = Vec::with_capacity(tally.invites.len());
            let mut days = Vec::new();
            for (invite, gained) in &tally.invites {
                counts.push(StatsRow {
                    invite_id: Id(*invite),
                    server_id: Id(gained.server_id),
                    previews: 0,
                    accepts: gained.accepts,
                    departures: gained.departures,
                });
                days.extend(gained.joins_by_day.iter().map(|(day, joins)| DayRow {
                    invite_id: Id(*invite),
                    day: *day,
                    server_id: Id(gained.server_id),
                    joins: *joins,
                }));
            }
            add_counts(conn, &counts)?;
            add_days(conn, &days)?;
            diesel::update(invite_stats_fold::table)
                .set(invite_stats_fold::folded_through.eq(through))
                .execute(conn)?;
            Ok(Folded { through, events: events.len(), more })
        })
    }

    /// How far the outbox is folded in.
    pub fn stats_folded_through(&mut self) -> StoreResult<i64> {
        Ok(invite_stats_fold::table.select(invite_stats_fold::folded_through).get_result(self)?)
    }

    /// Adds previews counted in memory, a row per invite (one statement on PostgreSQL).
    pub fn add_previews(&mut self, counts: &[PreviewCount]) -> StoreResult<()> {
        let mut counts: Vec<&PreviewCount> =
            counts.iter().filter(|count| count.previews > 0).collect();
        // In the fold's order (by invite), so that a flush and another instance's fold, which
        // lock some of the same rows, cannot deadlock.
        counts.sort_unstable_by_key(|count| count.invite_id);
        let rows: Vec<StatsRow> = counts
            .into_iter()
            .map(|count| StatsRow {
                invite_id: Id(count.invite_id),
                server_id: Id(count.server_id),
                previews: count.previews,
                accepts: 0,
                departures: 0,
            })
            .collect();
        add_counts(self, &rows)
    }

    /// Adds refusals counted in memory; codes that name no invite are dropped. Returns how
    /// many rows were written.
    pub fn add_refusals(&mut self, counts: &[RefusalCount]) -> StoreResult<usize> {
        use invite_refusals::dsl::{code, invite_id, refusals};
        let mut written = 0;
        for chunk in counts.chunks(CHUNK) {
            let codes: Vec<&str> = chunk.iter().map(|count| count.code.as_str()).collect();
            let found: Vec<(Option<String>, Id, Id)> = invites::table
                .filter(invites::code.eq_any(&codes))
                .select((invites::code, invites::id, invites::server_id))
                .load(self)?;
            let by_code: BTreeMap<&str, (Id, Id)> = found
                .iter()
                .filter_map(|(found, id, server)| Some((found.as_deref()?, (*id, *server))))
                .collect();
            let mut rows: Vec<RefusalRow> = chunk
                .iter()
                .filter(|count| count.refusals > 0)
                .filter_map(|count| {
                    let (invite, server) = by_code.get(count.code.as_str())?;
                    Some(RefusalRow {
                        invite_id: *invite,
                        code: count.error.to_owned(),
                        server_id: *server,
                        refusals: count.refusals,
                    })
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            // In key order, so that two instances' flushes cannot deadlock on the same rows.
            rows.sort_unstable_by(|a, b| (a.invite_id.0, &a.code).cmp(&(b.invite_id.0, &b.code)));
            written += rows.len();
            upsert!(
                &mut *self,
                invite_refusals::table,
                &rows,
                (invite_id, code),
                refusals.eq(refusals + excluded(refusals))
            );
        }
        Ok(written)
    }

    /// One invite's analytics, its joins per day from `first_day` (an
    /// [`invite_core::stats::day_number`]) on.
    pub fn invite_stats(&mut self, invite_id: Uuid, first_day: i64) -> StoreResult<InviteStats> {
        let counts: Option<(i64, i64, i64)> = invite_stats::table
            .filter(invite_stats::invite_id.eq(Id(invite_id)))
            .select((invite_stats::previews, invite_stats::accepts, invite_stats::departures))
            .get_result(self)
            .optional()?;
        let (previews, accepts, departures) = counts.unwrap_or_default();
        let refusals: Vec<(String, i64)> = invite_refusals::table
            .filter(invite_refusals::invite_id.eq(Id(invite_id)))
            .select((invite_refusals::code, invite_refusals::refusals))
            .load(self)?;
        let days: Vec<(i64, i64)> = invite_joins_daily::table
            .filter(invite_joins_daily::invite_id.eq(Id(invite_id)))
            .filter(invite_joins_daily::day.ge(first_day))
            .order(invite_joins_daily::day)
            .select((invite_joins_daily::day, invite_joins_daily::joins))
            .load(self)?;
        Ok(InviteStats {
            previews,
            accepts,
            refusals: refusals.into_iter().filter(|(_, n)| *n > 0).collect(),
            joins_per_day: by_date(days),
            retained: retained(accepts, departures),
        })
    }

    /// A server's totals, its joins per day from `first_day` on, and its `top` invites by
    /// accepts.
    pub fn server_stats(
        &mut self,
        server_id: Uuid,
        first_day: i64,
        top: i64,
    ) -> StoreResult<ServerStats> {
        let (previews, accepts, departures): (i64, i64, i64) = invite_stats::table
            .filter(invite_stats::server_id.eq(Id(server_id)))
            .select((sum("previews"), sum("accepts"), sum("departures")))
            .get_result(self)?;
        let refusals: Vec<(String, i64)> = invite_refusals::table
            .filter(invite_refusals::server_id.eq(Id(server_id)))
            .group_by(invite_refusals::code)
            .select((invite_refusals::code, sum("refusals")))
            .load(self)?;
        let days: Vec<(i64, i64)> = server_joins_daily::table
            .filter(server_joins_daily::server_id.eq(Id(server_id)))
            .filter(server_joins_daily::day.ge(first_day))
            .order(server_joins_daily::day)
            .select((server_joins_daily::day, server_joins_daily::joins))
            .load(self)?;
        // In the order of `invite_stats_server_accepts_idx`: the first `top` rows of one range.
        let rows: Vec<(Id, Option<String>, i64, i64, i64)> = invite_stats::table
            .inner_join(invites::table)
            .filter(invite_stats::server_id.eq(Id(server_id)))
            .order((invite_stats::accepts.desc(), invite_stats::invite_id))
            .limit(top)
            .select((
                invite_stats::invite_id,
                invites::code,
                invite_stats::previews,
                invite_stats::accepts,
                invite_stats::departures,
            ))
            .load(self)?;
        Ok(ServerStats {
            totals: InviteStats {
                previews,
                accepts,
                refusals: refusals.into_iter().filter(|(_, n)| *n > 0).collect(),
                joins_per_day: by_date(days),
                retained: retained(accepts, departures),
            },
            invites: rows
                .into_iter()
                .map(|(invite_id, code, previews, accepts, departures)| InviteSummary {
                    invite_id: invite_id.0,
                    code,
                    previews,
                    accepts,
                    retained: retained(accepts, departures),
                })
                .collect(),
        })
    }
}

/// Roll-ups by day number, as dates; days without joins left out.
fn by_date(days: Vec<(i64, i64)>) -> Vec<(chrono::NaiveDate, i64)> {
    days.into_iter()
        .filter(|(_, joins)| *joins > 0)
        .map(|(day, joins)| (day_date(day), joins))
        .collect()
}
