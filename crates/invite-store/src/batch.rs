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
//! Whatever fails, no write's outcome depends on its batch-mates: a write that fails in a
//! PostgreSQL batch aborts it (PostgreSQL cannot go on in a failed transaction), and every
//! write of the batch runs again alone, each in its own transaction; on SQLite the failed
//! write's savepoint is rolled back and the rest commit. A commit that fails sends every write
//! to run alone. A write whose request deadline passes is never committed: the batch is rolled
//! back and the others run alone.

use std::time::Instant;

use diesel::Connection as _;

use crate::connection::{DbConnection, with_deadline, write_transaction};
use crate::error::{StoreError, StoreResult};

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
    match live.len() {
        0 => {}
        1 => live.into_iter().for_each(|write| run_alone(conn, write)),
        _ => commit_together(conn, live),
    }
}

fn commit_together(conn: &mut DbConnection, mut writes: Vec<Box<dyn BatchWrite>>) {
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
