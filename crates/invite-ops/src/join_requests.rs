//! Join approval (contract section 11): a server's join requests, listed and decided by those
//! who may (`KICK_MEMBERS` or `MANAGE_SERVER`), and a user's own, listed and withdrawn. Filing
//! one is an accept's doing (see [`crate::accept`]).

use invite_core::Problem;
use invite_core::approval::{JoinRequest, JoinRequestStatus};
use invite_store::repo::Approval;
use invite_store::{DbConnection, write_transaction};
use uuid::Uuid;

use crate::{Ctx, OpResult, Outcome, member_standing};

/// The server's requests in `status`, oldest first (membership, then the permission).
pub fn list(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    status: JoinRequestStatus,
) -> OpResult<Vec<JoinRequest>> {
    member_standing(conn, server_id, ctx.user_id())?.may_decide_join_requests()?;
    Ok(conn.list_join_requests(server_id, status)?)
}

/// The caller's own requests, of every server, oldest first.
pub fn mine(conn: &mut DbConnection, ctx: &Ctx) -> OpResult<Vec<JoinRequest>> {
    Ok(conn.user_join_requests(ctx.user_id())?)
}

/// The pending request of `user_id` for the server, if any: what the invite page shows a
/// signed-in visitor of an approval invite who asked already.
pub fn pending_for(
    conn: &mut DbConnection,
    server_id: Uuid,
    user_id: Uuid,
) -> OpResult<Option<JoinRequest>> {
    Ok(conn.user_join_requests(user_id)?.into_iter().find(|request| {
        request.server_id == server_id && request.status == JoinRequestStatus::Pending
    }))
}

/// Approves a pending request: the user joins through its invite, within its uses, with what
/// it grants, counted for raid protection, in the transaction that approves the request. When
/// the accept would refuse now (used up, expired, revoked, the user banned...), that refusal,
/// and the request stays pending. Events: `MEMBER_JOIN` (and a raid's `INVITES_PAUSE`), then
/// `JOIN_REQUEST_UPDATE`.
pub fn approve(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, request_id): (Uuid, Uuid),
) -> OpResult<Outcome<JoinRequest>> {
    decide(conn, ctx, server_id, |conn| {
        match conn.approve_join_request(server_id, request_id, ctx.user_id(), ctx.now)? {
            Approval::Approved(approved) => {
                let joined = approved.joined;
                let events = std::iter::once(joined.event)
                    .chain(joined.raid_pause)
                    .chain(std::iter::once(approved.event))
                    .collect();
                Ok(Outcome::new(approved.request, events))
            }
            Approval::Refused(reason) => Err(Problem::from(reason).into()),
        }
    })
}

/// Denies a pending request. Event: `JOIN_REQUEST_UPDATE`.
pub fn deny(
    conn: &mut DbConnection,
    ctx: &Ctx,
    (server_id, request_id): (Uuid, Uuid),
) -> OpResult<Outcome<JoinRequest>> {
    decide(conn, ctx, server_id, |conn| {
        let decided = conn.deny_join_request(server_id, request_id, ctx.user_id(), ctx.now)?;
        Ok(Outcome::new(decided.request, vec![decided.event]))
    })
}

/// Runs a decision on one of the server's requests in one transaction with the check that the
/// caller may decide them: a permission taken away meanwhile stops the decision.
fn decide(
    conn: &mut DbConnection,
    ctx: &Ctx,
    server_id: Uuid,
    decision: impl FnOnce(&mut DbConnection) -> OpResult<Outcome<JoinRequest>>,
) -> OpResult<Outcome<JoinRequest>> {
    write_transaction(conn, |conn| {
        member_standing(conn, server_id, ctx.user_id())?.may_decide_join_requests()?;
        decision(conn)
    })
}

/// Withdraws one of the caller's own pending requests. Event: `JOIN_REQUEST_UPDATE`.
pub fn withdraw(
    conn: &mut DbConnection,
    ctx: &Ctx,
    request_id: Uuid,
) -> OpResult<Outcome<JoinRequest>> {
    let decided = conn.withdraw_join_request(ctx.user_id(), request_id, ctx.now)?;
    Ok(Outcome::new(decided.request, vec![decided.event]))
}
