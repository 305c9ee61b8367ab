//! Responses recorded for `Idempotency-Key` replays (contract section 6, Stripe's semantics).
//!
//! A record is written inside the transaction of the change it describes, so the change and
//! its record commit together or not at all: a retry after a crash between the commit and the
//! response finds the record and replays it instead of doing the work again. The primary key
//! `(user_id, idempotency_key)` makes a twin that raced on another instance fail its own
//! transaction; it then finds the winner's record.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;

use crate::connection::{DbConnection, check_deadline, write_transaction};
use crate::error::StoreResult;
use crate::schema::idempotency_records;
use crate::sql_types::{Id, Ts};

/// How long a record answers for its key; afterwards the key is free again.
pub const IDEMPOTENCY_WINDOW: TimeDelta = TimeDelta::hours(24);

/// A request's claim on its key: who sent it, the key, and what the request was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    /// The caller (keys are per user, as Stripe's are per account).
    pub user_id: uuid::Uuid,
    /// The `Idempotency-Key` header, already checked (1-255 printable ASCII characters).
    pub key: String,
    /// A digest of the method, path and body; the same key on another request is refused.
    pub fingerprint: String,
}

/// The first response to a keyed request, as it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedResponse {
    /// Its status.
    pub status: u16,
    /// Its JSON body.
    pub body: String,
    /// Its `ETag`, when it had one.
    pub etag: Option<String>,
}

/// What a key already stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriorResponse {
    /// Nothing: the request is new.
    None,
    /// The same request was answered before: this is its response.
    Replay(RecordedResponse),
    /// The key was used for another request (another method, path or body).
    OtherRequest,
}

/// A join's response, built in the statement that performs the join: the body is `before`, the
/// server's id, then `after`. The HTTP layer writes the template, so the store renders nothing
/// of its own, and the PostgreSQL accept stays one statement with its record in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinResponseTemplate<'a> {
    /// The status of a join.
    pub status: u16,
    /// The body up to the server's id.
    pub before: &'a str,
    /// The body after the server's id.
    pub after: &'a str,
}

impl JoinResponseTemplate<'_> {
    /// The body for a join into `server_id`.
    pub fn render(&self, server_id: uuid::Uuid) -> String {
        format!("{}{server_id}{}", self.before, self.after)
    }
}

#[derive(Debug, Insertable, Queryable, Selectable)]
#[diesel(table_name = idempotency_records)]
struct RecordRow {
    user_id: Id,
    idempotency_key: String,
    fingerprint: String,
    status: i32,
    body: String,
    etag: Option<String>,
    created_at: Ts,
}

fn for_claim(
    claim: &IdempotencyClaim,
) -> diesel::dsl::And<
    diesel::dsl::Eq<idempotency_records::user_id, Id>,
    diesel::dsl::Eq<idempotency_records::idempotency_key, &str>,
> {
    idempotency_records::user_id
        .eq(Id(claim.user_id))
        .and(idempotency_records::idempotency_key.eq(claim.key.as_str()))
}

/// Responses recorded for `Idempotency-Key` replays.
impl DbConnection {
    /// What the claim's key already stands for. A record older than
    /// [`IDEMPOTENCY_WINDOW`] stands for nothing, and is deleted on the way.
    pub fn prior_response(
        &mut self,
        claim: &IdempotencyClaim,
        now: DateTime<Utc>,
    ) -> StoreResult<PriorResponse> {
        let row = idempotency_records::table
            .filter(for_claim(claim))
            .select(RecordRow::as_select())
            .get_result(self)
            .optional()?;
        let Some(row) = row else { return Ok(PriorResponse::None) };
        if row.created_at.0 <= now - IDEMPOTENCY_WINDOW {
            // Expired but not purged yet: the key is free again, and the new record must not
            // meet the old one's primary key.
            diesel::delete(idempotency_records::table.filter(for_claim(claim)))
                .filter(idempotency_records::created_at.le(row.created_at))
                .execute(self)?;
            return Ok(PriorResponse::None);
        }
        if row.fingerprint != claim.fingerprint {
            return Ok(PriorResponse::OtherRequest);
        }
        let status = u16::try_from(row.status)
            .map_err(|_| crate::models::corrupt("recorded status", &row.status.to_string()))?;
        confirm_durable(self, claim)?;
        Ok(PriorResponse::Replay(RecordedResponse { status, body: row.body, etag: row.etag }))
    }

    /// Records the response to the claim's request; call it inside the transaction of the change
    /// it describes. A conflict on [`Constraint::IdempotencyKey`](crate::Constraint) means a
    /// twin recorded first, and the caller's transaction must roll back.
    pub fn record_response(
        &mut self,
        claim: &IdempotencyClaim,
        response: &RecordedResponse,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        diesel::insert_into(idempotency_records::table)
            .values(RecordRow {
                user_id: Id(claim.user_id),
                idempotency_key: claim.key.clone(),
                fingerprint: claim.fingerprint.clone(),
                status: i32::from(response.status),
                body: response.body.clone(),
                etag: response.etag.clone(),
                created_at: Ts(now),
            })
            .execute(self)?;
        Ok(())
    }

    /// Deletes up to about `batch` records older than [`IDEMPOTENCY_WINDOW`]; returns how many
    /// went.
    pub fn purge_idempotency_records(
        &mut self,
        now: DateTime<Utc>,
        batch: i64,
    ) -> StoreResult<usize> {
        // In batches, so a purge never holds locks on a large table for long.
        let expired = idempotency_records::table
            .filter(idempotency_records::created_at.le(Ts(now - IDEMPOTENCY_WINDOW)))
            .select(idempotency_records::created_at)
            .order(idempotency_records::created_at)
            .limit(batch)
            .load::<Ts>(self)?;
        let Some(newest) = expired.last() else { return Ok(0) };
        Ok(diesel::delete(
            idempotency_records::table.filter(idempotency_records::created_at.le(*newest)),
        )
        .execute(self)?)
    }
}

/// Makes sure that a record about to be replayed is durable, on PostgreSQL: a replay says the
/// change happened, so the change must survive a failover.
///
/// A record can be read before it is durable. A primary that crashed with the commit of a change
/// in its write-ahead log, but not yet on its synchronous standby (the client was answered 503),
/// comes back from crash recovery with the change visible, and an HA manager's keeper restarts it
/// in place while the standby is being promoted (`pg_auto_failover` does): a retry that reaches it
/// then would find the record and replay it, and the promoted standby never had the change.
///
/// So the replay locks the record (`FOR KEY SHARE`) in a transaction of its own. Taking a row lock
/// gives the transaction an id, so its commit waits, as every commit does, for the synchronous
/// standbys to have the log up to it, the recorded change included; with none configured it
/// commits at once. Where no standby follows any more, the wait outlasts the request's deadline
/// and the answer is 503; the client's next retry reaches the new primary. A wait that ended
/// past the deadline confirms nothing (PostgreSQL ends a cancelled wait with a commit and a
/// mere warning), so it is refused too. A read-only server (a standby, or a primary demoted by
/// a failover) refuses the lock, which is answered like a database away.
fn confirm_durable(conn: &mut DbConnection, claim: &IdempotencyClaim) -> StoreResult<()> {
    if let DbConnection::Postgres(_) = conn {
        write_transaction(conn, |conn| {
            if let DbConnection::Postgres(pg) = conn {
                diesel::sql_query(
                    "SELECT 1 FROM idempotency_records \
                     WHERE user_id = $1 AND idempotency_key = $2 FOR KEY SHARE",
                )
                .bind::<diesel::sql_types::Uuid, _>(claim.user_id)
                .bind::<diesel::sql_types::Text, _>(&claim.key)
                .execute(pg)?;
            }
            Ok::<_, crate::StoreError>(())
        })?;
        check_deadline()?;
    }
    Ok(())
}

/// How a keyed request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyed<T> {
    /// It ran now.
    Fresh(T),
    /// It ran before: this is the response it got then.
    Replay(RecordedResponse),
}

/// Runs a request that carries an `Idempotency-Key`: replays the key's recorded response if
/// there is one (and refuses the key if it was used for another request); otherwise runs
/// `attempt`, which records its response in the transaction of its change.
///
/// When `attempt` fails (other than for an unavailable database), or `changed` says it changed
/// nothing, a twin of the request on another instance may have committed meanwhile and be the
/// reason why (its member row, its key): its record, if there is one now, is the answer.
pub fn keyed<T, E>(
    conn: &mut DbConnection,
    claim: &IdempotencyClaim,
    now: DateTime<Utc>,
    attempt: impl FnOnce(&mut DbConnection) -> Result<T, E>,
    changed: impl FnOnce(&T) -> bool,
) -> Result<Keyed<T>, E>
where
    E: From<crate::StoreError> + crate::error::Availability,
{
    match conn.prior_response(claim, now)? {
        PriorResponse::Replay(response) => return Ok(Keyed::Replay(response)),
        PriorResponse::OtherRequest => return Err(reused().into()),
        PriorResponse::None => {}
    }
    let outcome = attempt(conn);
    let settled = match &outcome {
        Ok(value) => changed(value),
        Err(error) => error.is_unavailable(),
    };
    if settled {
        return outcome.map(Keyed::Fresh);
    }
    match conn.prior_response(claim, now)? {
        PriorResponse::Replay(response) => Ok(Keyed::Replay(response)),
        PriorResponse::OtherRequest => Err(reused().into()),
        PriorResponse::None => outcome.map(Keyed::Fresh),
    }
}

/// [`keyed`] for a write that `work` performs and `render` describes: the work and its record
/// commit in one transaction; a fresh answer comes with the work's value. Nothing is recorded
/// when the work fails: it changed nothing, so a retry is decided afresh.
pub fn recorded<T, E>(
    conn: &mut DbConnection,
    claim: &IdempotencyClaim,
    now: DateTime<Utc>,
    work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
    render: impl FnOnce(&T) -> RecordedResponse,
) -> Result<Keyed<(RecordedResponse, T)>, E>
where
    E: From<crate::StoreError> + From<diesel::result::Error> + crate::error::Availability,
{
    keyed(
        conn,
        claim,
        now,
        |conn| {
            write_transaction(conn, |conn| {
                let value = work(conn)?;
                let response = render(&value);
                conn.record_response(claim, &response, now)?;
                Ok((response, value))
            })
        },
        |_| true,
    )
}

/// [`recorded`] for a request with an Idempotency-Key (`claim`); without one, `work`'s answer
/// is rendered and not recorded: what every change with a recorded answer runs.
pub fn answered<T, E>(
    conn: &mut DbConnection,
    claim: Option<&IdempotencyClaim>,
    now: DateTime<Utc>,
    work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
    render: impl FnOnce(&T) -> RecordedResponse,
) -> Result<Keyed<(RecordedResponse, T)>, E>
where
    E: From<crate::StoreError> + From<diesel::result::Error> + crate::error::Availability,
{
    match claim {
        None => work(conn).map(|value| Keyed::Fresh((render(&value), value))),
        Some(claim) => recorded(conn, claim, now, work, render),
    }
}

fn reused() -> crate::StoreError {
    crate::Fact::KeyReused.into()
}
