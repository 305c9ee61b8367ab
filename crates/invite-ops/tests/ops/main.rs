//! The operations on real databases: every test runs on PostgreSQL (a database of its own) and
//! on a SQLite file. What the store does is the store's suite's; these check what the
//! operations decide (who may, in which order, with which refusal) and what they return (the
//! outcome and its events, committed with the change).
#![expect(
    clippy::unwrap_used,
    reason = "tests panic to fail; allow-unwrap-in-tests misses helpers and macro-declared tests"
)]

mod grants;
mod invites;
mod join_requests;
mod outcome;
mod raid;
mod stats;

use chrono::{DateTime, TimeZone, Utc};
use invite_core::invite::CreateInviteRequest;
use invite_core::server::CreateServerRequest;
use invite_ops::{Ctx, OpError, OutboxOnly, Outcome};
use invite_store::DbConnection;
use invite_store::models::{Invite, Server};
use invite_store::repo::{Actor, CreatedInvite};
use uuid::Uuid;

pub(crate) use invite_store::on_both_backends;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
}

fn ctx(user_id: Uuid) -> Ctx {
    Ctx { actor: Actor::new(user_id), now: t0() }
}

/// The value of an outcome whose events nobody here consumes.
fn settled<T>(outcome: Result<Outcome<T>, OpError>) -> T {
    outcome.expect("the operation succeeds").settle(&OutboxOnly)
}

fn create_server(conn: &mut DbConnection, owner: Uuid) -> Server {
    let request =
        CreateServerRequest { name: "Ops".into(), icon_url: None, default_permissions: None };
    settled(invite_ops::servers::create(conn, &ctx(owner), &request))
}

fn create_invite(conn: &mut DbConnection, server: &Server, creator: Uuid, json: &str) -> Invite {
    let request: CreateInviteRequest = serde_json::from_str(json).unwrap();
    let place = invite_ops::invites::Place::Server(server.id);
    let created = invite_ops::invites::create(
        conn,
        &ctx(creator),
        place,
        request,
        &mut invite_core::code::OsRandom,
    );
    match settled(created) {
        CreatedInvite::Created(invite) => invite,
        CreatedInvite::Reused(invite) => panic!("expected a new invite, got {invite:?}"),
    }
}

/// A new user, the server they own, and an invite of theirs made with `json`.
/// A new user and the server they own.
fn owned_server(conn: &mut DbConnection) -> (Uuid, Server) {
    let owner = Uuid::now_v7();
    (owner, create_server(conn, owner))
}

fn server_with_invite(conn: &mut DbConnection, json: &str) -> (Uuid, Server, Invite) {
    let (owner, server) = owned_server(conn);
    let invite = create_invite(conn, &server, owner, json);
    (owner, server, invite)
}

/// The refusal's code.
fn code_of<T: std::fmt::Debug>(result: Result<T, OpError>) -> &'static str {
    match result {
        Err(OpError::Refused(problem)) => problem.code.as_str(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
