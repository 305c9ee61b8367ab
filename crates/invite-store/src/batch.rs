//! Group commit: several writes committed by one transaction, so that one commit (one WAL
//! flush, one fsync) covers them all, each write keeping its own outcome.
//!
//! This follows the leader/follower group commit of database logs (as in the 1984 paper on
//! main-memory databases by David J. `DeWitt` and others, and in `MySQL`'s binary log): writes that
//! arrive while a commit is in progress queue up, and the next leader commits the queue at
//! once. The queueing is the caller's (invite-http's `Db::run_combined`, a combiner in which
//! the first waiter takes the batch); this module is what a leader does with a batch on its
//! connection:
//!
//! - **PostgreSQL**: the writes run one after another in one transaction, without savepoints
//!   (a subtransaction per write would cost what the batch saves). The accepts of one invite,
//!   batched together, hold its row lock across one commit instead of one commit each, which is
//!   what lets a viral invite admit more than one join per WAL flush.
//! - **SQLite**: one `BEGIN IMMEDIATE` for the batch, a savepoint per write: SQLite admits one
//!   writer at a time anyway, and `synchronous = FULL` flushes once per commit, so one commit
//!   for many writes is the whole gain. A savepoint costs no fsync.
//!
//! On PostgreSQL, the plain accepts of a batch go further: one statement decides and writes
//! them all ([`crate::repo::redeem_set`]), so that the database plans, locks and writes once per
//! batch instead of once per join; what else the batch holds commits after them. A batch of
//! preview reads is one statement too ([`DbConnection::previews`]), outside any
//! transaction.
//!
//! Whatever fails, no write's outcome depends on its batch-mates: a write that fails in a
//! PostgreSQL batch aborts it (PostgreSQL cannot go on in a failed transaction), and every
//! write of the batch runs again alone, each in its own transaction; on SQLite the failed
//! write's savepoint is rolled back and the rest commit. A commit that fails sends every write
//! to run alone. A write whose request deadline passes is never committed: the batch is rolled
//! back and the others run alone.

use std::time::Instant;

use chrono::{DateTime, Utc};
use diesel::Connection as _;
use invite_core::code::CodeRef;

use crate::connection::{DbConnection, with_deadline, write_transaction};
use crate::error::{StoreError, StoreResult};
use crate::models::Preview;
use crate::repo::{JoinRequest, Redemption, redeem_set};

/// A write, or a read, that a batch may run together with others of its kind as one statement.
#[derive(Debug, Clone, PartialEq)]
pub enum SetRequest {
    /// A plain accept, without an Idempotency-Key (see [`redeem_set`]).
    Join(JoinRequest),
    /// A preview read: the code, and when (for the presence count).
    Preview(CodeRef, DateTime<Utc>),
}

/// What a set statement found for one [`SetRequest`], of the same kind.
#[derive(Debug, Clone, PartialEq)]
pub enum SetOutcome {
    /// The join's redemption, committed.
    Joined(Redemption),
    /// The code's preview; `None` when no invite has the code (boxed: a preview is large).
    Previewed(Option<Box<Preview>>),
}

/// One write of a batch: the work, its request's deadline, and where its outcome goes.
pub trait BatchWrite: Send {
    /// Runs the write on `conn` (inside the batch's transaction, or alone), keeping its
    /// outcome; `false` when the write failed.
    fn run(&mut self, conn: &mut DbConnection) -> bool;

    /// The request's deadline: the write must not commit past it.
    fn deadline(&self) -> Instant;

    /// Hands the write its answer: `Ok` when what `run` kept stands (committed, or the write's
    /// own failure), or the error that prevented it.
    fn settle(self: Box<Self>, committed: StoreResult<()>);

    /// The row this write locks first (a server's id), by which a batch orders its writes:
    /// batches that take their locks in one order (the set-based accept takes its servers' in
    /// id order too) cannot deadlock. `None` runs first, in arrival order.
    fn lock_order(&self) -> Option<uuid::Uuid> {
        None
    }

    /// What this write is, when a batch may run it together with others of its kind in one
    /// statement; `None` for any other write.
    fn set_request(&self) -> Option<&SetRequest> {
        None
    }

    /// Takes what a set statement found for this write, in place of running it. Called only
    /// on a write whose [`BatchWrite::set_request`] is `Some`, with an outcome of its kind.
    fn decided(&mut self, outcome: SetOutcome) {
        let _ = outcome;
    }
}

/// Why a batch's transaction was abandoned (never reported: its writes run again alone).
#[derive(Debug)]
enum Abandoned {
    /// A write failed on PostgreSQL, or a deadline passed before the commit.
    Write,
    /// The database refused the transaction itself.
    Store(StoreError),
}

impl From<StoreError> for Abandoned {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<diesel::result::Error> for Abandoned {
    fn from(error: diesel::result::Error) -> Self {
        Self::Store(error.into())
    }
}

/// Commits `writes` together on `conn` and settles every one of them (see the module).
pub fn commit_batch(conn: &mut DbConnection, writes: Vec<Box<dyn BatchWrite>>) {
    let now = Instant::now();
    let (live, overdue): (Vec<_>, Vec<_>) =
        writes.into_iter().partition(|write| write.deadline() > now);
    for write in overdue {
        write.settle(Err(overdue_error()));
    }
    let joins = live.iter().filter(|write| join_of(&***write).is_some()).count();
    let previews = live.iter().filter(|write| preview_of(&***write).is_some()).count();
    match live.len() {
        0 => {}
        1 => live.into_iter().for_each(|write| run_alone(conn, write)),
        _ if previews == live.len() => read_previews(conn, live),
        _ if joins > 1 && matches!(conn, DbConnection::Postgres(_)) => commit_joins(conn, live),
        _ => commit_together(conn, live),
    }
}

fn join_of(write: &dyn BatchWrite) -> Option<&JoinRequest> {
    match write.set_request() {
        Some(SetRequest::Join(join)) => Some(join),
        _ => None,
    }
}

fn preview_of(write: &dyn BatchWrite) -> Option<(&CodeRef, DateTime<Utc>)> {
    match write.set_request() {
        Some(SetRequest::Preview(code, now)) => Some((code, *now)),
        _ => None,
    }
}

/// A batch of preview reads: one statement, outside any transaction, its presence counted as
/// of the latest request's time. When the read fails, each runs alone.
fn read_previews(conn: &mut DbConnection, writes: Vec<Box<dyn BatchWrite>>) {
    let codes: Vec<CodeRef> = writes
        .iter()
        .filter_map(|write| preview_of(&**write))
        .map(|(code, _)| code.clone())
        .collect();
    let now = writes.iter().filter_map(|write| preview_of(&**write)).map(|(_, now)| now).max();
    let latest = writes.iter().map(|write| write.deadline()).max().unwrap_or_else(Instant::now);
    let found = with_deadline(latest, || conn.previews(&codes, now.unwrap_or_else(Utc::now)));
    match found {
        Ok(found) => {
            let by_code: std::collections::HashMap<String, Preview> = found
                .into_iter()
                .filter_map(|preview| Some((preview.invite.code.clone()?, preview)))
                .collect();
            for (mut write, code) in writes.into_iter().zip(codes) {
                // Two requests for one code share its preview.
                let preview = by_code.get(code.as_str()).cloned().map(Box::new);
                write.decided(SetOutcome::Previewed(preview));
                write.settle(Ok(()));
            }
        }
        Err(error) => {
            tracing::warn!(%error, reads = writes.len(), "a batch of previews failed: each runs alone");
            for write in writes {
                run_alone(conn, write);
            }
        }
    }
}

/// PostgreSQL's set-based batch: the plain accepts decided and written by one statement in a
/// transaction of their own; the joins it left undecided then run alone, and the batch's other
/// writes commit together after them.
fn commit_joins(conn: &mut DbConnection, writes: Vec<Box<dyn BatchWrite>>) {
    let (joins, others): (Vec<_>, Vec<_>) =
        writes.into_iter().partition(|write| join_of(&**write).is_some());
    let latest = joins.iter().map(|write| write.deadline()).max().unwrap_or_else(Instant::now);
    let result = with_deadline(latest, || {
        write_transaction(conn, |conn| -> Result<_, Abandoned> {
            let DbConnection::Postgres(pg) = conn else { return Err(Abandoned::Write) };
            let requests: Vec<&JoinRequest> =
                joins.iter().filter_map(|write| join_of(&**write)).collect();
            let decided = redeem_set(pg, &requests)?;
            // Nothing commits for a request that has been answered 503 meanwhile.
            let now = Instant::now();
            if joins.iter().any(|write| write.deadline() <= now) {
                return Err(Abandoned::Write);
            }
            Ok(decided)
        })
    });
    let mut alone = Vec::new();
    match result {
        Ok(decided) => {
            for (mut write, redemption) in joins.into_iter().zip(decided) {
                match redemption {
                    Some(redemption) => {
                        write.decided(SetOutcome::Joined(redemption));
                        write.settle(Ok(()));
                    }
                    None => alone.push(write),
                }
            }
        }
        Err(abandoned) => {
            // A race the statement cannot settle (a concurrent join of the same user, a ban
            // crossing the batch) is expected now and then; anything else is worth a warning.
            match abandoned {
                Abandoned::Store(StoreError::Conflict(_)) | Abandoned::Write => {}
                Abandoned::Store(error) => {
                    tracing::warn!(%error, joins = joins.len(), "a set-based accept failed: its joins run alone");
                }
            }
            alone = joins;
        }
    }
    for write in alone {
        if write.deadline() <= Instant::now() {
            write.settle(Err(overdue_error()));
        } else {
            run_alone(conn, write);
        }
    }
    commit_batch(conn, others);
}

fn commit_together(conn: &mut DbConnection, mut writes: Vec<Box<dyn BatchWrite>>) {
    // Stable: writes with the same key, or none, keep their arrival order.
    writes.sort_by_key(|write| write.lock_order());
    let latest = writes.iter().map(|write| write.deadline()).max().unwrap_or_else(Instant::now);
    let sqlite = matches!(conn, DbConnection::Sqlite(_));
    let result = with_deadline(latest, || {
        write_transaction(conn, |conn| -> Result<(), Abandoned> {
            for write in &mut writes {
                let deadline = write.deadline();
                if sqlite {
                    // The write's own savepoint: its failure rolls back only its work.
                    let saved = conn.transaction(|conn| -> Result<(), Abandoned> {
                        if with_deadline(deadline, || write.run(conn)) {
                            Ok(())
                        } else {
                            Err(Abandoned::Write)
                        }
                    });
                    if let Err(error @ Abandoned::Store(_)) = saved {
                        // The savepoint itself failed: the transaction cannot be trusted.
                        return Err(error);
                    }
                } else if !with_deadline(deadline, || write.run(conn)) {
                    return Err(Abandoned::Write);
                }
            }
            // Nothing commits for a request that has been answered 503 meanwhile.
            let now = Instant::now();
            if writes.iter().any(|write| write.deadline() <= now) {
                return Err(Abandoned::Write);
            }
            Ok(())
        })
    });
    match result {
        Ok(()) => writes.into_iter().for_each(|write| write.settle(Ok(()))),
        Err(abandoned) => {
            if let Abandoned::Store(error) = abandoned {
                tracing::warn!(%error, writes = writes.len(), "a batch failed: its writes run alone");
            }
            for write in writes {
                if write.deadline() <= Instant::now() {
                    write.settle(Err(overdue_error()));
                } else {
                    run_alone(conn, write);
                }
            }
        }
    }
}

/// Runs one write as if there were no batch: its own statements and transactions.
fn run_alone(conn: &mut DbConnection, mut write: Box<dyn BatchWrite>) {
    let deadline = write.deadline();
    with_deadline(deadline, || write.run(conn));
    write.settle(Ok(()));
}

fn overdue_error() -> StoreError {
    StoreError::Unavailable("the request's deadline passed before its write could commit".into())
}
