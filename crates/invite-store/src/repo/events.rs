//! The outbox (contract section 9): events written in the transaction of the change they report,
//! read in `seq` order by everything that listens.
//!
//! ## Reading without losing anything
//!
//! SQLite runs one writer at a time, so `seq`s are drawn in commit order: whatever a reader sees
//! up to the largest `seq` is all there will ever be up to it.
//!
//! PostgreSQL draws `seq`s from a sequence as transactions run, and commits them in another order:
//! a reader that has seen `seq` 11 committed may later see 10 commit. Two rules close that gap.
//! - One server's events are numbered in its commit order: every transaction takes its servers'
//!   row locks before drawing ([`DbConnection::append_events`] does, and the accept statement
//!   updates the server's row first), and holds them to its commit.
//! - Readers of every server's events read only up to a horizon
//!   ([`EventHorizon`]): at some moment, the sequence has handed out `seq`s up to `S`. Every
//!   transaction that could hold one of them wrote a row before drawing, so it had its
//!   transaction id by then; read after `S`, the running transactions of this database that have
//!   an id are all that may still commit one, and the newest of them is below some `X`. Once the
//!   oldest running one is at or past `X`, all of them have ended, and every `seq` up to `S` that
//!   will ever be seen is there to see. A gap left by a rollback is simply never filled.
//! - Only this database's transactions that have written count: a long read elsewhere on the
//!   cluster (a backup, a report, another database's work) holds the cluster's snapshot `xmin`
//!   back for as long as it runs, and a reader that waited for that `xmin` would stop
//!   delivering events for as long.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use invite_core::event::{Audience, Event, EventType};
use uuid::Uuid;

use super::servers::lock_server;
use crate::connection::{Backend, DbConnection, MultiBackend, on_each_backend};
use crate::error::StoreResult;
use crate::models::corrupt;
use crate::schema::events;
use crate::sql_types::{Id, Json, Ts};

/// An event as the outbox holds it: its place in the outbox, the event, and when it was
/// written. Serialised as the events endpoint and the webhooks send it: `seq`, `server_id`,
/// `type`, `payload`, `audience`, `created_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its place in the outbox.
    pub seq: i64,
    /// What happened.
    pub event: Event,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

impl StoredEvent {
    /// The server it is about.
    pub fn server_id(&self) -> Uuid {
        self.event.server_id()
    }

    /// What happened, without the payload.
    pub fn kind(&self) -> EventType {
        self.event.kind()
    }

    /// Who may hear of it.
    pub fn audience(&self) -> Audience {
        self.event.audience()
    }
}

impl serde::Serialize for StoredEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut out = serializer.serialize_struct("StoredEvent", 6)?;
        out.serialize_field("seq", &self.seq)?;
        out.serialize_field("server_id", &self.server_id())?;
        out.serialize_field("type", &self.kind())?;
        out.serialize_field("payload", &self.event.payload())?;
        out.serialize_field("audience", &self.audience())?;
        out.serialize_field("created_at", &self.created_at)?;
        out.end()
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = events)]
struct EventRow {
    seq: i64,
    kind: String,
    payload: Json,
    created_at: Ts,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = events)]
struct EventInsert {
    server_id: Id,
    kind: String,
    payload: Json,
    audience: String,
    created_at: Ts,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = crate::StoreError;

    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        let kind = EventType::parse(&row.kind).ok_or_else(|| corrupt("event type", &row.kind))?;
        let event = Event::from_parts(kind, row.payload.0)
            .map_err(|error| corrupt("event payload", &error.to_string()))?;
        Ok(Self { seq: row.seq, event, created_at: row.created_at.0 })
    }
}

/// What a reader learns about the sequence at one moment (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct HorizonSample {
    /// The largest `seq` handed out so far.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub drawn: i64,
    /// The oldest of this database's running transactions that have written, read after
    /// `drawn` (`i64::MAX` when there is none).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub xmin: i64,
    /// Above the newest of them (0 when there is none): every transaction that may still
    /// commit a `seq` up to `drawn` is below it.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub xmax: i64,
}

/// Up to where a reader of every server's events may read: the largest `seq` such that no
/// transaction still running can commit an event at or below it.
#[derive(Debug, Default, Clone)]
pub struct EventHorizon {
    /// Samples not yet settled: (`drawn`, `xmax`), oldest first.
    pending: VecDeque<(i64, i64)>,
    safe: i64,
}

/// Samples kept waiting for a long transaction before the oldest are merged.
const MAX_PENDING: usize = 64;

impl EventHorizon {
    /// A horizon starting at `seq` (everything up to it is known).
    pub fn starting_at(seq: i64) -> Self {
        Self { pending: VecDeque::new(), safe: seq }
    }

    /// Takes a new sample; returns the largest `seq` now safe to read up to.
    pub fn advance(&mut self, sample: HorizonSample) -> i64 {
        if sample.drawn > self.safe {
            if self.pending.len() == MAX_PENDING {
                // Keep the newest `drawn` with the most demanding `xmax`: later, not wrong.
                let merged = self.pending.pop_front().map_or((0, 0), |first| first);
                if let Some(next) = self.pending.front_mut() {
                    *next = (next.0.max(merged.0), next.1.max(merged.1));
                }
            }
            self.pending.push_back((sample.drawn, sample.xmax));
        }
        while let Some(&(drawn, xmax)) = self.pending.front() {
            if xmax > sample.xmin {
                break;
            }
            self.safe = self.safe.max(drawn);
            self.pending.pop_front();
        }
        self.safe
    }

    /// Whether drawn `seq`s are waiting for transactions to end (read again soon).
    pub fn is_waiting(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// The outbox (contract section 9); see the `events` module for how it is read safely.
impl DbConnection {
    /// Appends events inside the caller's transaction, after taking their servers' row locks (so
    /// that one server's events are numbered in commit order); returns them as stored.
    pub fn append_events(
        &mut self,
        new: &[Event],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<StoredEvent>> {
        // On PostgreSQL, each server's row lock orders its events' `seq`s by commit. SQLite
        // runs one writer at a time, so its `seq`s are in commit order already, and the lock
        // would only write the row again (one write more for every SQLite join).
        if self.backend() == Backend::Postgres {
            let mut servers: Vec<Uuid> = new.iter().map(Event::server_id).collect();
            servers.sort_unstable();
            servers.dedup();
            // In a fixed order, so that two transactions locking the same servers cannot
            // deadlock.
            for server_id in servers {
                lock_server(self, server_id)?;
            }
        }
        new.iter()
            .map(|event| {
                let values = EventInsert {
                    server_id: Id(event.server_id()),
                    kind: event.kind().as_str().to_owned(),
                    payload: Json(event.payload()),
                    audience: event.audience().as_str().to_owned(),
                    created_at: Ts(now),
                };
                let seq = on_each_backend!(self, |inner| diesel::insert_into(events::table)
                    .values(&values)
                    .returning(events::seq)
                    .get_result::<i64>(inner))?;
                Ok(StoredEvent { seq, event: event.clone(), created_at: now })
            })
            .collect()
    }

    /// One server's events after `after`, oldest first: safe to page through with `after`,
    /// since a server's events commit in `seq` order.
    pub fn server_events(
        &mut self,
        server_id: Uuid,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        let scope = events::table.filter(events::server_id.eq(Id(server_id)));
        load_events(self, scope.into_boxed(), after, limit)
    }

    /// Every server's events after `after` and up to `up_to` (an [`EventHorizon`]), oldest
    /// first.
    pub fn events_between(
        &mut self,
        after: i64,
        up_to: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        load_events(self, events::table.filter(events::seq.le(up_to)).into_boxed(), after, limit)
    }

    /// The smallest `seq` the outbox still holds (`None` when it is empty): a reader that last
    /// saw a `seq` below the one before it may have missed purged events.
    pub fn oldest_seq(&mut self) -> StoreResult<Option<i64>> {
        Ok(events::table.select(diesel::dsl::min(events::seq)).get_result::<Option<i64>>(self)?)
    }

    /// The events of `servers` after `after` and up to `up_to`, oldest first (a gateway
    /// session's replay).
    pub fn servers_events_between(
        &mut self,
        servers: &[Uuid],
        after: i64,
        up_to: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        if servers.is_empty() {
            return Ok(Vec::new());
        }
        let scope = events::table
            .filter(events::server_id.eq_any(servers.iter().copied().map(Id)))
            .filter(events::seq.le(up_to));
        load_events(self, scope.into_boxed(), after, limit)
    }

    /// What an [`EventHorizon`] needs to know now.
    pub fn horizon_sample(&mut self) -> StoreResult<HorizonSample> {
        match self {
            // The sequence is read first (the materialized CTE is scanned before the lateral
            // join runs for its row), then the running transactions. `backend_xid` is 32 bits;
            // it is widened against a reference 2^31 past the statement's snapshot, which every
            // running transaction's id is below and within 2^32 of.
            DbConnection::Postgres(pg) => Ok(diesel::sql_query(
                "WITH sample AS MATERIALIZED ( \
                   SELECT coalesce(pg_sequence_last_value('events_seq_seq'::regclass), 0) AS drawn, \
                          pg_snapshot_xmax(pg_current_snapshot())::text::bigint + 2147483648 \
                            AS reference) \
                 SELECT sample.drawn, \
                        coalesce(running.oldest, 9223372036854775807) AS xmin, \
                        coalesce(running.newest + 1, 0) AS xmax \
                 FROM sample, LATERAL ( \
                   SELECT min(id) AS oldest, max(id) AS newest \
                   FROM (SELECT sample.reference - ((sample.reference \
                                 - a.backend_xid::text::bigint) % 4294967296 + 4294967296) \
                                 % 4294967296 AS id \
                         FROM pg_stat_activity a \
                         WHERE a.datname = current_database() AND a.backend_xid IS NOT NULL \
                           AND a.pid <> pg_backend_pid()) AS ids) AS running",
            )
            .get_result(pg)?),
            DbConnection::Sqlite(_) => {
                // Writers are serialised: what is visible is final.
                let drawn = self.latest_seq()?;
                Ok(HorizonSample { drawn, xmin: 0, xmax: 0 })
            }
        }
    }

    /// The largest `seq` committed so far (0 when none).
    pub fn latest_seq(&mut self) -> StoreResult<i64> {
        Ok(events::table
            .select(diesel::dsl::max(events::seq))
            .get_result::<Option<i64>>(self)?
            .unwrap_or(0))
    }

    /// Deletes up to about `batch` events written before `before`; returns how many went.
    pub fn purge_events(&mut self, before: DateTime<Utc>, batch: i64) -> StoreResult<usize> {
        // Events are appended in time order: the oldest `batch` by `seq` are the ones to check.
        let expired = events::table
            .filter(events::created_at.lt(Ts(before)))
            .order(events::seq)
            .limit(batch)
            .select(events::seq)
            .load::<i64>(self)?;
        let Some(newest) = expired.last() else { return Ok(0) };
        Ok(diesel::delete(events::table.filter(events::seq.le(*newest))).execute(self)?)
    }
}

/// The joins and departures after `after` and up to `up_to`, oldest first: what per-invite
/// analytics fold (see the `stats` module).
pub(super) fn membership_events_between(
    conn: &mut DbConnection,
    after: i64,
    up_to: i64,
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    let kinds = [EventType::MemberJoin.as_str(), EventType::MemberRemove.as_str()];
    let scope = events::table.filter(events::seq.le(up_to)).filter(events::kind.eq_any(kinds));
    load_events(conn, scope.into_boxed(), after, limit)
}

/// The events of `scope` after `after`, oldest first: the one read behind every reader, which
/// differ only in which servers and up to which `seq` they read.
fn load_events(
    conn: &mut DbConnection,
    scope: events::BoxedQuery<'_, MultiBackend>,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    scope
        .filter(events::seq.gt(after))
        .order(events::seq)
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)?
        .into_iter()
        .map(StoredEvent::try_from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(drawn: i64, xmin: i64, xmax: i64) -> HorizonSample {
        HorizonSample { drawn, xmin, xmax }
    }

    #[test]
    fn the_horizon_waits_for_transactions_that_may_still_commit() {
        let mut horizon = EventHorizon::starting_at(0);
        // Seqs up to 10 drawn; transactions up to 99 may hold some; 95 is still running.
        assert_eq!(horizon.advance(sample(10, 95, 100)), 0);
        assert!(horizon.is_waiting());
        // More drawn meanwhile; 95 still runs.
        assert_eq!(horizon.advance(sample(12, 95, 103)), 0);
        // Everything before 100 ended: up to 10 is final, 11 and 12 wait for 100..103.
        assert_eq!(horizon.advance(sample(12, 101, 104)), 10);
        assert_eq!(horizon.advance(sample(12, 104, 104)), 12);
        assert!(!horizon.is_waiting());
        // Nothing new drawn: nothing to wait for.
        assert_eq!(horizon.advance(sample(12, 104, 104)), 12);
    }

    #[test]
    fn a_long_transaction_merges_samples_instead_of_growing_them() {
        let mut horizon = EventHorizon::starting_at(0);
        for n in 1..=200 {
            horizon.advance(sample(n, 1, n + 1));
        }
        assert!(horizon.pending.len() <= MAX_PENDING);
        assert_eq!(horizon.advance(sample(200, 1000, 1000)), 200);
    }
}
