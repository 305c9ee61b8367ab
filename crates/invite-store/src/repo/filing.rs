//! Filing a join request (contract section 11, join approval): what an accept of an invite that
//! requires approval writes once the accept's refusals have passed, with the server's writers
//! serialised by the caller. Apart from the accept (`repo::redeem`, which calls it) and the
//! decisions (`repo::join_requests`), so that neither depends on the other through it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use invite_core::approval::{Filing, decide_filing};
use invite_core::event::Event;
use uuid::Uuid;

use super::actor::Actor;
use super::events::StoredEvent;
use crate::connection::DbConnection;
use crate::error::{Fact, StoreError, StoreResult};
use crate::models::{JoinRequestRow, JoinRequestStatus, StoredJoinRequest, corrupt};
use crate::schema::join_requests;
use crate::sql_types::{Id, Ts};

/// A join request an accept filed, or found pending.
#[derive(Debug, Clone, PartialEq)]
pub struct Filed {
    /// The user's pending request for the server.
    pub request: StoredJoinRequest,
    /// The `JOIN_REQUEST_CREATE` event, when this accept filed it; `None` when the request was
    /// pending already (the accept answers with it, and writes nothing).
    pub event: Option<StoredEvent>,
}

/// Files the request with the server's writers serialised (its row lock on PostgreSQL, the
/// one writer on SQLite), the accept's refusals passed.
pub(super) fn file_locked(
    conn: &mut DbConnection,
    server_id: Uuid,
    invite_id: Uuid,
    user: &Actor,
    now: DateTime<Utc>,
) -> StoreResult<Filed> {
    let pending = join_requests::table
        .filter(join_requests::server_id.eq(Id(server_id)))
        .filter(join_requests::user_id.eq(Id(user.user_id)))
        .filter(join_requests::status.eq(JoinRequestStatus::Pending.as_str()))
        .select(JoinRequestRow::as_select())
        .get_result(conn)
        .optional()?
        .map(StoredJoinRequest::try_from)
        .transpose()?;
    // The count only matters for a new request.
    let count = if pending.is_some() { 0 } else { count_pending(conn, server_id)? };
    let filing = decide_filing(pending.is_some(), count)
        .map_err(|_| StoreError::Stopped(Fact::JoinRequestsFull))?;
    if let (Filing::Existing, Some(request)) = (filing, pending) {
        return Ok(Filed { request, event: None });
    }
    let request = StoredJoinRequest {
        id: Uuid::now_v7(),
        server_id,
        invite_id,
        user_id: user.user_id,
        status: JoinRequestStatus::Pending,
        created_at: now,
        decided_at: None,
        decided_by: None,
    };
    diesel::insert_into(join_requests::table).values(&row_of(&request)).execute(conn)?;
    conn.remember_user(user, now)?;
    let event = Event::JoinRequestCreate(request.clone());
    let event = conn
        .append_events(std::slice::from_ref(&event), now)?
        .pop()
        .ok_or_else(|| corrupt("event", "none appended"))?;
    Ok(Filed { request, event: Some(event) })
}

pub(super) fn row_of(request: &StoredJoinRequest) -> JoinRequestRow {
    JoinRequestRow {
        id: Id(request.id),
        server_id: Id(request.server_id),
        invite_id: Id(request.invite_id),
        user_id: Id(request.user_id),
        status: request.status.as_str().to_owned(),
        created_at: Ts(request.created_at),
        decided_at: request.decided_at.map(Ts),
        decided_by: request.decided_by.map(Id),
    }
}

pub(super) fn count_pending(conn: &mut DbConnection, server_id: Uuid) -> StoreResult<i64> {
    Ok(join_requests::table
        .filter(join_requests::server_id.eq(Id(server_id)))
        .filter(join_requests::status.eq(JoinRequestStatus::Pending.as_str()))
        .count()
        .get_result(conn)?)
}

/// Inserts a pending request as it is, without the filing's checks: for tests that need a
/// server's queue full without a thousand accepts.
#[doc(hidden)]
pub fn insert_join_request_unchecked(
    conn: &mut DbConnection,
    request: &StoredJoinRequest,
) -> StoreResult<()> {
    diesel::insert_into(join_requests::table).values(&row_of(request)).execute(conn)?;
    Ok(())
}
