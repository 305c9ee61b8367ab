//! Join requests (contract section 11, join approval): filed by an accept of an invite that
//! requires approval, decided by a moderator, withdrawn by their user, denied by a ban.
//!
//! Every change takes its server's row lock before it touches a request, and an approval takes
//! its invite's before that (the order of every accept: invite, then server), so that two
//! changes of one server's requests cannot deadlock, the one-pending-per-user rule and the cap
//! are read and written by one writer at a time, and an approval counts its use the way an
//! accept does: a conditional `UPDATE ... WHERE uses < max_uses` under the invite's lock, never
//! past `max_uses` however many moderators click at once. Whether a request may be filed or
//! decided is `invite_core::approval`'s to say; the store reads the facts and writes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use invite_core::approval::{Decision, check_pending};
use invite_core::audit::AuditAction;
use invite_core::code::CodeRef;
use invite_core::event::Event;
use invite_core::redeem::{RedemptionRefused, decide_redemption};
use uuid::Uuid;

use super::actor::Actor;
use super::audit::{self, NewAuditEntry};
use super::events::StoredEvent;
use super::filing::count_pending;
use super::redeem::{Joined, join_target, load_target};
use super::servers::lock_server;
use crate::connection::{DbConnection, MultiBackend, write_transaction};
use crate::error::{Entity, Fact, StoreError, StoreResult};
use crate::models::{JoinRequestRow, JoinRequestStatus, StoredJoinRequest, corrupt};
use crate::schema::{invites, join_requests};
use crate::sql_types::{Id, Ts};

/// What an approval did.
#[derive(Debug, Clone, PartialEq)]
pub enum Approval {
    /// The user joined through the request's invite, and the request is approved (boxed: it
    /// carries the join).
    Approved(Box<Approved>),
    /// The accept's refusal on the facts as they are now (the invite used up, expired or
    /// revoked, the user banned or a member already...): nothing changed, and the request
    /// stays pending.
    Refused(RedemptionRefused),
}

/// An approved request and the join it made.
#[derive(Debug, Clone, PartialEq)]
pub struct Approved {
    /// The request, approved.
    pub request: StoredJoinRequest,
    /// The join, as an accept reports it (its `MEMBER_JOIN` event, and the raid's pause if the
    /// join tripped it).
    pub joined: Joined,
    /// The `JOIN_REQUEST_UPDATE` event.
    pub event: StoredEvent,
}

/// A request that left `pending` by a denial or a withdrawal, and its event.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// The request as it is now.
    pub request: StoredJoinRequest,
    /// The `JOIN_REQUEST_UPDATE` event.
    pub event: StoredEvent,
}

fn load_request(
    conn: &mut DbConnection,
    request_id: Uuid,
) -> StoreResult<Option<StoredJoinRequest>> {
    join_requests::table
        .filter(join_requests::id.eq(Id(request_id)))
        .select(JoinRequestRow::as_select())
        .get_result(conn)
        .optional()?
        .map(StoredJoinRequest::try_from)
        .transpose()
}

/// The request, if it is the server's (another server's is as unknown as a missing one).
fn server_request(
    conn: &mut DbConnection,
    server_id: Uuid,
    request_id: Uuid,
) -> StoreResult<StoredJoinRequest> {
    load_request(conn, request_id)?
        .filter(|request| request.server_id == server_id)
        .ok_or(StoreError::NotFound(Entity::JoinRequest))
}

/// Moves a pending request to `decision`'s status: a conditional write (`WHERE status =
/// 'pending'`), so two deciders racing leave one decision, and the other is told the request
/// is not pending. The request as written.
fn decide(
    conn: &mut DbConnection,
    request: &StoredJoinRequest,
    decision: Decision,
    decided_by: Option<Uuid>,
    now: DateTime<Utc>,
) -> StoreResult<StoredJoinRequest> {
    check_pending(request.status).map_err(|_| StoreError::Stopped(Fact::JoinRequestNotPending))?;
    let status = decision.status();
    let written = diesel::update(
        join_requests::table
            .filter(join_requests::id.eq(Id(request.id)))
            .filter(join_requests::status.eq(JoinRequestStatus::Pending.as_str())),
    )
    .set((
        join_requests::status.eq(status.as_str()),
        join_requests::decided_at.eq(Some(Ts(now))),
        join_requests::decided_by.eq(decided_by.map(Id)),
    ))
    .execute(conn)?;
    if written == 0 {
        return Err(StoreError::Stopped(Fact::JoinRequestNotPending));
    }
    Ok(StoredJoinRequest { status, decided_at: Some(now), decided_by, ..request.clone() })
}

/// The audit entry of a moderator's decision on `request` (the target is the user).
fn decision_audit(
    request: &StoredJoinRequest,
    action: AuditAction,
    actor: Uuid,
    details: serde_json::Value,
    now: DateTime<Utc>,
) -> NewAuditEntry {
    NewAuditEntry {
        server_id: request.server_id,
        actor_id: Some(actor),
        action,
        target_id: Some(request.user_id),
        details,
        now,
    }
}

/// Denies `request` for `actor` with its `JoinRequestDeny` audit entry; `reason` is recorded
/// when the denial is not a moderator's own choice (a ban's).
fn deny_audited(
    conn: &mut DbConnection,
    request: &StoredJoinRequest,
    actor: Uuid,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<StoredJoinRequest> {
    let request = decide(conn, request, Decision::Deny, Some(actor), now)?;
    let mut details = serde_json::json!({
        "request_id": request.id,
        "invite_id": request.invite_id,
    });
    if let Some(reason) = reason {
        details["reason"] = reason.into();
    }
    audit::record(
        conn,
        decision_audit(&request, AuditAction::JoinRequestDeny, actor, details, now),
    )?;
    Ok(request)
}

/// Appends the `JOIN_REQUEST_UPDATE` of `request`.
fn announce(
    conn: &mut DbConnection,
    request: &StoredJoinRequest,
    now: DateTime<Utc>,
) -> StoreResult<StoredEvent> {
    let event = Event::JoinRequestUpdate(request.clone());
    conn.append_events(std::slice::from_ref(&event), now)?
        .pop()
        .ok_or_else(|| corrupt("event", "none appended"))
}

/// The requests `query` finds, oldest first (by filing time, then id).
fn oldest_first(
    conn: &mut DbConnection,
    query: join_requests::BoxedQuery<'_, MultiBackend>,
) -> StoreResult<Vec<StoredJoinRequest>> {
    query
        .order((join_requests::created_at.asc(), join_requests::id.asc()))
        .select(JoinRequestRow::as_select())
        .load(conn)?
        .into_iter()
        .map(StoredJoinRequest::try_from)
        .collect()
}

/// Takes the request `find` finds out of `pending` as `leave` does (a denial or a withdrawal),
/// under its server's lock, and announces it, in one transaction.
fn settle(
    conn: &mut DbConnection,
    find: impl FnOnce(&mut DbConnection) -> StoreResult<StoredJoinRequest>,
    leave: impl FnOnce(&mut DbConnection, &StoredJoinRequest) -> StoreResult<StoredJoinRequest>,
    now: DateTime<Utc>,
) -> StoreResult<Decided> {
    write_transaction(conn, |conn| {
        let request = find(conn)?;
        lock_server(conn, request.server_id)?;
        let request = leave(conn, &request)?;
        let event = announce(conn, &request, now)?;
        Ok(Decided { request, event })
    })
}

/// Join requests: reading them, and every change but the filing (which an accept makes, see
/// `DbConnection::redeem`).
impl DbConnection {
    /// The request with this id, of any server and user.
    pub fn find_join_request(
        &mut self,
        request_id: Uuid,
    ) -> StoreResult<Option<StoredJoinRequest>> {
        load_request(self, request_id)
    }

    /// A server's requests in `status`, oldest first (by filing time, then id).
    pub fn list_join_requests(
        &mut self,
        server_id: Uuid,
        status: JoinRequestStatus,
    ) -> StoreResult<Vec<StoredJoinRequest>> {
        let query = join_requests::table
            .filter(join_requests::server_id.eq(Id(server_id)))
            .filter(join_requests::status.eq(status.as_str()));
        oldest_first(self, query.into_boxed())
    }

    /// A user's own requests, of every server and status, oldest first.
    pub fn user_join_requests(&mut self, user_id: Uuid) -> StoreResult<Vec<StoredJoinRequest>> {
        let query = join_requests::table.filter(join_requests::user_id.eq(Id(user_id)));
        oldest_first(self, query.into_boxed())
    }

    /// How many pending requests a server holds.
    pub fn count_pending_join_requests(&mut self, server_id: Uuid) -> StoreResult<i64> {
        count_pending(self, server_id)
    }

    /// Approves the server's pending request `request_id` as `actor`: the user joins through
    /// its invite (the use counted within `max_uses`, what it grants granted, the join counted
    /// for raid protection, its `MEMBER_JOIN` event and `MemberJoin` audit entry), the request
    /// is approved, audited (`JoinRequestApprove`) and announced (`JOIN_REQUEST_UPDATE`), all
    /// in one transaction. `NotFound(JoinRequest)` for a request of another server,
    /// `Stopped(JoinRequestNotPending)` for one decided already.
    pub fn approve_join_request(
        &mut self,
        server_id: Uuid,
        request_id: Uuid,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Approval> {
        write_transaction(self, |conn| {
            let request = server_request(conn, server_id, request_id)?;
            check_pending(request.status)
                .map_err(|_| StoreError::Stopped(Fact::JoinRequestNotPending))?;
            // The invite's lock, then the server's: the order of every accept. Under them the
            // facts read below are the latest, and racing approvals of one invite take its uses
            // one at a time.
            let code = invites::table
                .filter(invites::id.eq(Id(request.invite_id)))
                .select(invites::code)
                .get_result::<Option<String>>(conn)?;
            let locked =
                diesel::update(invites::table.filter(invites::id.eq(Id(request.invite_id))))
                    .set(invites::version.eq(invites::version))
                    .execute(conn)?;
            // A released vanity code, or an invite gone: nothing to join through.
            let (Some(code), 1) = (code, locked) else {
                return Ok(Approval::Refused(RedemptionRefused::NotFound));
            };
            lock_server(conn, server_id)?;
            // Read again under the locks: a concurrent decision may have come first.
            let request = server_request(conn, server_id, request_id)?;
            check_pending(request.status)
                .map_err(|_| StoreError::Stopped(Fact::JoinRequestNotPending))?;
            let code = CodeRef::parse(&code).ok_or_else(|| corrupt("invite code", &code))?;
            let Some(target) = load_target(conn, &code, request.user_id)? else {
                return Ok(Approval::Refused(RedemptionRefused::NotFound));
            };
            if let Err(reason) = decide_redemption(&target.facts(), now) {
                return Ok(Approval::Refused(reason));
            }
            let requester = Actor { user_id: request.user_id, username: None };
            let super::redeem::Redemption::Joined(joined) =
                join_target(conn, &target, &requester, now, None)?
            else {
                // Unreachable under the invite's lock; kept so that a use is never overshot.
                return Ok(Approval::Refused(RedemptionRefused::MaxedOut));
            };
            let request = decide(conn, &request, Decision::Approve, Some(actor), now)?;
            audit::record(
                conn,
                decision_audit(
                    &request,
                    AuditAction::JoinRequestApprove,
                    actor,
                    serde_json::json!({
                        "request_id": request.id,
                        "invite_id": request.invite_id,
                        "code": target.code,
                    }),
                    now,
                ),
            )?;
            let event = announce(conn, &request, now)?;
            Ok(Approval::Approved(Box::new(Approved { request, joined: *joined, event })))
        })
    }

    /// Denies the server's pending request `request_id` as `actor`, audited
    /// (`JoinRequestDeny`) and announced; the same refusals as an approval.
    pub fn deny_join_request(
        &mut self,
        server_id: Uuid,
        request_id: Uuid,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Decided> {
        settle(
            self,
            |conn| server_request(conn, server_id, request_id),
            |conn, request| deny_audited(conn, request, actor, None, now),
            now,
        )
    }

    /// Withdraws `user_id`'s own pending request `request_id`, announced. `NotFound` for
    /// another user's request.
    pub fn withdraw_join_request(
        &mut self,
        user_id: Uuid,
        request_id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Decided> {
        settle(
            self,
            |conn| {
                load_request(conn, request_id)?
                    .filter(|request| request.user_id == user_id)
                    .ok_or(StoreError::NotFound(Entity::JoinRequest))
            },
            |conn, request| decide(conn, request, Decision::Withdraw, None, now),
            now,
        )
    }

    /// Denies `user_id`'s pending requests for the server, as a ban by `actor` does, inside
    /// the ban's transaction (which holds the server's lock): each audited
    /// (`JoinRequestDeny`, reason `ban`). The requests as they are now; the caller announces
    /// them with the ban's events.
    pub fn deny_pending_join_requests(
        &mut self,
        server_id: Uuid,
        user_id: Uuid,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<StoredJoinRequest>> {
        let pending: Vec<StoredJoinRequest> = join_requests::table
            .filter(join_requests::server_id.eq(Id(server_id)))
            .filter(join_requests::user_id.eq(Id(user_id)))
            .filter(join_requests::status.eq(JoinRequestStatus::Pending.as_str()))
            .select(JoinRequestRow::as_select())
            .load(self)?
            .into_iter()
            .map(StoredJoinRequest::try_from)
            .collect::<StoreResult<_>>()?;
        let mut denied = Vec::with_capacity(pending.len());
        for request in pending {
            denied.push(deny_audited(self, &request, actor, Some("ban"), now)?);
        }
        Ok(denied)
    }
}
