//! The audit log: written inside the operation it describes, read newest first.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use invite_core::audit::AuditAction;
use invite_core::server::PageLimit;
use uuid::Uuid;

use super::cursor::unknown_cursor;
use crate::connection::{DbConnection, on_each_backend};
use crate::error::{StoreError, StoreResult};
use crate::models::{AuditEntry, AuditRow};
use crate::schema::audit_entries;
use crate::sql_types::{Id, Json, Ts};

/// Audit writes that failed (failing their operations) since the process started. A counter
/// rather than configuration, so a process-wide static is the honest shape for it; `/metrics`
/// exports it.
static AUDIT_WRITE_FAILURES: AtomicU64 = AtomicU64::new(0);

/// How many audit writes have failed since the process started.
pub fn audit_write_failures() -> u64 {
    AUDIT_WRITE_FAILURES.load(Ordering::Relaxed)
}

/// An entry to record.
pub(crate) struct NewAuditEntry {
    pub(crate) server_id: Uuid,
    /// `None` for what the service did by itself (a raid's pause).
    pub(crate) actor_id: Option<Uuid>,
    pub(crate) action: AuditAction,
    pub(crate) target_id: Option<Uuid>,
    pub(crate) details: serde_json::Value,
    pub(crate) now: DateTime<Utc>,
}

/// Records an entry inside the caller's transaction, plainly: the entry commits with the change
/// it describes, and a failed entry fails the change (contract section 5.3). A failure that is
/// not the connection's is logged and counted on its way out.
pub(crate) fn record(conn: &mut DbConnection, entry: NewAuditEntry) -> StoreResult<()> {
    let row = AuditRow {
        id: Id(Uuid::now_v7()),
        server_id: Id(entry.server_id),
        actor_id: entry.actor_id.map(Id),
        action: entry.action.as_str().to_owned(),
        target_type: entry.action.target_type().as_str().to_owned(),
        target_id: entry.target_id.map(Id),
        details: Json(entry.details),
        created_at: Ts(entry.now),
    };
    // On the connection inside: rendering the insert for `MultiBackend` first cost as much as
    // running it (every join writes one).
    match on_each_backend!(conn, |conn| diesel::insert_into(audit_entries::table)
        .values(&row)
        .execute(conn))
    {
        Ok(_) => Ok(()),
        Err(error) => {
            let error = StoreError::from(error);
            if !error.is_unavailable() {
                count_failure(entry.server_id, entry.action, &error);
            }
            Err(error)
        }
    }
}

/// Logs and counts an audit entry that could not be written.
pub(crate) fn count_failure(server_id: Uuid, action: AuditAction, error: impl std::fmt::Display) {
    AUDIT_WRITE_FAILURES.fetch_add(1, Ordering::Relaxed);
    tracing::error!(
        %error,
        %server_id,
        action = action.as_str(),
        "audit entry could not be written; the operation it describes failed with it"
    );
}

/// The audit log.
impl DbConnection {
    /// Entries newest first, older than `before`.
    pub fn list_audit_entries(
        &mut self,
        server_id: Uuid,
        before: Option<Uuid>,
        limit: PageLimit,
    ) -> StoreResult<Vec<AuditEntry>> {
        let mut query = audit_entries::table
            .filter(audit_entries::server_id.eq(Id(server_id)))
            .order((audit_entries::created_at.desc(), audit_entries::id.desc()))
            .limit(limit.get())
            .select(AuditRow::as_select())
            .into_boxed();
        if let Some(before) = before {
            let cursor = audit_entries::table
                .filter(audit_entries::server_id.eq(Id(server_id)))
                .filter(audit_entries::id.eq(Id(before)))
                .select(audit_entries::created_at)
                .get_result::<Ts>(self)
                .optional()?
                .ok_or_else(|| unknown_cursor("an audit log entry"))?;
            query =
                query.filter(audit_entries::created_at.lt(cursor).or(
                    audit_entries::created_at.eq(cursor).and(audit_entries::id.lt(Id(before))),
                ));
        }
        query.load(self)?.into_iter().map(AuditEntry::try_from).collect()
    }
}
