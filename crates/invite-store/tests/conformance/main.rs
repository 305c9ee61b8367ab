//! The store's conformance suite: every test is written once and runs on PostgreSQL (a database
//! of its own, cloned from a migrated template) and on a SQLite file.
#![expect(
    clippy::unwrap_used,
    reason = "tests panic to fail; allow-unwrap-in-tests misses helpers and macro-declared tests"
)]

mod audit;
mod batch;
mod concurrency;
mod gateway;
mod grants;
mod invites;
mod join_requests;
mod members;
mod migrations;
mod raid;
mod redeem;
mod reliability;
mod schema;
mod servers;
mod stats;
mod vanity;

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use invite_core::code::CodeRef;
use invite_core::invite::{CreateInviteRequest, InviteSettings};
use invite_core::server::CreateServerRequest;
use invite_store::DbConnection;
use invite_store::models::{Invite, Server};
use invite_store::repo::{Actor, CreatedInvite, NewInvite};
use uuid::Uuid;

/// Declares tests once and instantiates each for both backends, as `postgres::name` and
/// `sqlite::name`.
pub(crate) use invite_store::on_both_backends as conformance;

/// A fixed point in time, so expiry is deterministic.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}

fn user() -> Actor {
    Actor::new(Uuid::now_v7())
}

fn named(name: &str) -> Actor {
    Actor { user_id: Uuid::now_v7(), username: Some(name.to_owned()) }
}

fn create_server(conn: &mut DbConnection, owner: &Actor) -> Server {
    let request = CreateServerRequest {
        name: "Test server".into(),
        icon_url: None,
        default_permissions: None,
    };
    conn.create_server(owner, &request.validate().unwrap(), t0()).unwrap()
}

/// A new user and the server they own: where most tests start.
fn owned_server(conn: &mut DbConnection) -> (Actor, Server) {
    let owner = user();
    let server = create_server(conn, &owner);
    (owner, server)
}

/// A new user, the server they own, and an invite of theirs made with `json`.
fn server_with_invite(conn: &mut DbConnection, json: &str) -> (Actor, Server, Invite) {
    let (owner, server) = owned_server(conn);
    let invite = create_invite(conn, &server, &owner, json);
    (owner, server, invite)
}

fn settings(json: &str) -> InviteSettings {
    serde_json::from_str::<CreateInviteRequest>(json).unwrap().validate(t0()).unwrap()
}

fn create_invite(conn: &mut DbConnection, server: &Server, creator: &Actor, json: &str) -> Invite {
    create_invite_at(conn, server, creator, json, t0())
}

fn create_invite_at(
    conn: &mut DbConnection,
    server: &Server,
    creator: &Actor,
    json: &str,
    now: DateTime<Utc>,
) -> Invite {
    let settings =
        serde_json::from_str::<CreateInviteRequest>(json).unwrap().validate(now).unwrap();
    let new =
        NewInvite { server_id: server.id, creator, settings: &settings, now, server_locked: false };
    match conn.create_invite(&new, &mut invite_core::code::OsRandom).unwrap() {
        CreatedInvite::Created(invite) => invite,
        CreatedInvite::Reused(invite) => panic!("expected a new invite, got {invite:?}"),
    }
}

fn code_of(invite: &Invite) -> CodeRef {
    CodeRef::parse(invite.code.as_deref().unwrap()).unwrap()
}

/// What the database holds about a server's membership: (member rows, `member_count`).
fn membership_counts(conn: &mut DbConnection, server_id: Uuid) -> (i64, i64) {
    use invite_store::schema::{members, servers};
    use invite_store::sql_types::Id;
    let rows = members::table
        .filter(members::server_id.eq(Id(server_id)))
        .count()
        .get_result::<i64>(conn)
        .unwrap();
    let counted = servers::table
        .filter(servers::id.eq(Id(server_id)))
        .select(servers::member_count)
        .get_result::<i64>(conn)
        .unwrap();
    (rows, counted)
}

/// Revokes an invite as the operations layer does: under its lock, in one transaction.
fn revoke(
    conn: &mut DbConnection,
    invite_id: Uuid,
    actor: Uuid,
    now: DateTime<Utc>,
) -> invite_store::StoreResult<Invite> {
    invite_store::write_transaction(conn, |conn| {
        let invite = conn.lock_invite(invite_id)?;
        conn.revoke_invite(&invite, actor, now)
    })
}

/// Undoes an invite as the operations layer does: the invite's lock, then who joined through it
/// (locked), then the revoke (unless it is revoked already) and the removals the rule
/// decides, in one transaction; who was removed.
fn undo(
    conn: &mut DbConnection,
    invite_id: Uuid,
    owner: Uuid,
    now: DateTime<Utc>,
) -> invite_store::StoreResult<Vec<Uuid>> {
    invite_store::write_transaction(conn, |conn| {
        let invite = conn.lock_invite(invite_id)?;
        let joiners = conn.lock_joiners(invite.id)?;
        let plan = invite_core::undo::plan_undo(&joiners, owner, None);
        if invite.revoked_at.is_none() {
            conn.revoke_invite(&invite, owner, now)?;
        }
        conn.remove_joiners(&invite, &plan.remove, owner, now)
    })
}

/// Edits an invite as the operations layer does: the request checked against the invite under
/// its lock, in one transaction.
fn update(
    conn: &mut DbConnection,
    invite_id: Uuid,
    request: &invite_core::invite::UpdateInviteRequest,
    actor: Uuid,
    now: DateTime<Utc>,
) -> invite_store::StoreResult<Invite> {
    invite_store::write_transaction(conn, |conn| {
        let invite = conn.lock_invite(invite_id)?;
        let changes = request.validate(&invite.status(), now).expect("a valid edit");
        conn.update_invite(&invite, &changes, actor, now)
    })
}

/// A new invite's `INVITE_CREATE`, as the operations layer announces it.
fn announce(invite: &Invite) -> invite_core::event::Event {
    invite_core::event::Event::InviteCreate(invite.into())
}

/// An event's payload as the outbox holds it, whoever wrote it (the store's code, or SQL).
fn stored_payload(conn: &mut DbConnection, seq: i64) -> serde_json::Value {
    use invite_store::schema::events;
    events::table
        .filter(events::seq.eq(seq))
        .select(events::payload)
        .get_result::<invite_store::sql_types::Json>(conn)
        .unwrap()
        .0
}

/// The invite as stored now.
fn reload(conn: &mut DbConnection, invite: &Invite) -> Invite {
    conn.find_invite(invite.id).unwrap().unwrap()
}
