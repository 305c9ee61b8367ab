//! Join approval: an accept of an approval invite returns the filed request and its event once;
//! who may list and decide (membership, then permission); an approval's events (the join's,
//! then the request's); the accept's refusal of an approval; a ban denying pending requests.

use invite_core::approval::JoinRequestStatus;
use invite_core::permissions::Permissions;
use invite_core::server::{BanRequest, UpdateMemberRequest};
use invite_ops::accept::accept;
use invite_ops::{Ctx, OutboxOnly};
use invite_store::DbConnection;
use invite_store::models::StoredJoinRequest;
use invite_store::repo::{Actor, Keyed, Redemption};
use invite_store::testing::TestDatabase;
use uuid::Uuid;

use crate::{code_of, ctx, on_both_backends, server_with_invite, settled, t0};

/// Accepts `invite` as `user`, expecting a filing; the request and the kinds of its events.
fn file(
    conn: &mut DbConnection,
    invite: &invite_store::models::Invite,
    user: Uuid,
) -> (StoredJoinRequest, Vec<&'static str>) {
    let code = invite_core::code::CodeRef::parse(invite.code.as_deref().unwrap()).unwrap();
    let joiner = Ctx { actor: Actor::new(user), now: t0() };
    let Keyed::Fresh(outcome) = accept(conn, &joiner, &code, None).unwrap() else {
        panic!("not keyed")
    };
    let kinds = outcome.events().iter().map(|event| event.event.kind().as_str()).collect();
    let Redemption::Filed(filed) = outcome.settle(&OutboxOnly) else { panic!("not filed") };
    (filed.request, kinds)
}

/// Makes `user` a member of the server with `permissions`, through a plain invite of the owner's.
fn member_with(
    conn: &mut DbConnection,
    owner: Uuid,
    server_id: Uuid,
    user: Uuid,
    permissions: Permissions,
) {
    let server = invite_store::DbConnection::find_server(conn, server_id).unwrap().unwrap();
    let invite = crate::create_invite(conn, &server, owner, "{}");
    let code = invite_core::code::CodeRef::parse(invite.code.as_deref().unwrap()).unwrap();
    let _ = accept(conn, &ctx(user), &code, None).unwrap();
    if !permissions.is_empty() {
        let request = UpdateMemberRequest { permissions };
        settled(invite_ops::members::update(conn, &ctx(owner), (server_id, user), &request));
    }
}

on_both_backends! {
    fn an_accept_files_once_and_announces_it_once(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (_, _, invite) = server_with_invite(conn, r#"{"requires_approval": true}"#);
        let guest = Uuid::now_v7();
        let (request, kinds) = file(conn, &invite, guest);
        assert_eq!(kinds, ["JOIN_REQUEST_CREATE"]);
        let (again, kinds) = file(conn, &invite, guest);
        assert_eq!(again, request);
        assert!(kinds.is_empty(), "a pending request is not announced again");
    }

    fn who_may_list_and_decide(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"requires_approval": true}"#);
        let (plain, kicker, manager, stranger) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        member_with(conn, owner, server.id, plain, Permissions::empty());
        member_with(conn, owner, server.id, kicker, Permissions::KICK_MEMBERS);
        member_with(conn, owner, server.id, manager, Permissions::MANAGE_SERVER);
        let (request, _) = file(conn, &invite, Uuid::now_v7());
        let list = |conn: &mut DbConnection, who: Uuid| invite_ops::join_requests::list(conn, &ctx(who), server.id, JoinRequestStatus::Pending);
        assert_eq!(code_of(list(conn, stranger)), "SERVER_NOT_FOUND");
        assert_eq!(code_of(list(conn, plain)), "MISSING_PERMISSION");
        assert_eq!(list(conn, kicker).unwrap(), vec![request.clone()]);
        assert_eq!(list(conn, manager).unwrap(), vec![request.clone()]);
        assert_eq!(code_of(invite_ops::join_requests::deny(conn, &ctx(plain), (server.id, request.id))), "MISSING_PERMISSION");
        let denied = invite_ops::join_requests::deny(conn, &ctx(kicker), (server.id, request.id)).unwrap();
        let kinds: Vec<_> = denied.events().iter().map(|event| event.event.kind().as_str()).collect();
        assert_eq!(kinds, ["JOIN_REQUEST_UPDATE"]);
        assert_eq!(denied.settle(&OutboxOnly).status, JoinRequestStatus::Denied);
        assert_eq!(code_of(invite_ops::join_requests::approve(conn, &ctx(manager), (server.id, request.id))), "JOIN_REQUEST_NOT_PENDING");
    }

    fn an_approval_returns_the_join_s_events_then_the_request_s(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"requires_approval": true, "max_uses": 1}"#);
        let (first, _) = file(conn, &invite, Uuid::now_v7());
        let (second, _) = file(conn, &invite, Uuid::now_v7());
        let approved = invite_ops::join_requests::approve(conn, &ctx(owner), (server.id, first.id)).unwrap();
        let kinds: Vec<_> = approved.events().iter().map(|event| event.event.kind().as_str()).collect();
        assert_eq!(kinds, ["MEMBER_JOIN", "JOIN_REQUEST_UPDATE"]);
        assert_eq!(approved.settle(&OutboxOnly).status, JoinRequestStatus::Approved);
        assert_eq!(code_of(invite_ops::join_requests::approve(conn, &ctx(owner), (server.id, second.id))), "INVITE_MAXED_OUT");
        let pending = invite_ops::join_requests::list(conn, &ctx(owner), server.id, JoinRequestStatus::Pending).unwrap();
        assert_eq!(pending, vec![second]);
    }

    fn a_ban_denies_pending_requests_with_its_events(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"requires_approval": true}"#);
        let troll = Uuid::now_v7();
        let (request, _) = file(conn, &invite, troll);
        let banned = invite_ops::members::ban(conn, &ctx(owner), (server.id, troll), &BanRequest::default()).unwrap();
        let kinds: Vec<_> = banned.events().iter().map(|event| event.event.kind().as_str()).collect();
        assert_eq!(kinds, ["BAN_ADD", "JOIN_REQUEST_UPDATE"]);
        let _ = banned.settle(&OutboxOnly);
        let mine = invite_ops::join_requests::mine(conn, &ctx(troll)).unwrap();
        assert_eq!(mine.iter().map(|r| (r.id, r.status, r.decided_by)).collect::<Vec<_>>(), [(request.id, JoinRequestStatus::Denied, Some(owner))]);
        assert_eq!(code_of(invite_ops::join_requests::withdraw(conn, &ctx(troll), request.id)), "JOIN_REQUEST_NOT_PENDING");
        assert_eq!(code_of(invite_ops::join_requests::withdraw(conn, &ctx(owner), request.id)), "JOIN_REQUEST_NOT_FOUND");
    }
}
