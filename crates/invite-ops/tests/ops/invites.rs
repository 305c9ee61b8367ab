//! Editing and revoking invites: the rules the operations check under the invite's lock.

use invite_core::code::CodeRef;
use invite_core::event::{Event, EventType};
use invite_core::invite::UpdateInviteRequest;
use invite_store::repo::StoredEvent;
use invite_store::testing::TestDatabase;
use uuid::Uuid;

use crate::{code_of, ctx, on_both_backends, owned_server, server_with_invite, settled, t0};

fn edit(json: &str) -> UpdateInviteRequest {
    serde_json::from_str(json).unwrap()
}

on_both_backends! {
    fn an_edit_checks_if_match_and_announces_the_invite_as_it_is_after(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"max_uses": 5}"#);
        let ids = (server.id, invite.id);
        let stale = invite_ops::invites::update(conn, &ctx(owner), ids, &edit(r#"{"max_uses": 8}"#), Ok(Some(2)));
        assert_eq!(code_of(stale), "PRECONDITION_FAILED");
        assert_eq!(conn.find_invite(invite.id).unwrap().unwrap(), invite, "nothing changed");

        let outcome = invite_ops::invites::update(conn, &ctx(owner), ids, &edit(r#"{"max_uses": 8}"#), Ok(Some(1))).unwrap();
        let events = outcome.events().to_vec();
        let updated = outcome.settle(&invite_ops::OutboxOnly);
        assert_eq!((updated.max_uses, updated.version), (Some(8), 2));
        assert_eq!(events.len(), 1);
        let Event::InviteUpdate(data) = &events[0].event else { panic!("{events:?}") };
        assert_eq!((data.id, data.max_uses, data.version), (invite.id, Some(8), 2));
        // Committed with the change: the outbox holds what the outcome carries.
        assert_eq!(conn.server_events(server.id, 0, 100).unwrap().last(), events.last());
        // A malformed If-Match is reported to someone allowed to edit.
        let malformed = Err(invite_core::Problem::of(invite_core::ErrorCode::PreconditionFailed));
        assert_eq!(code_of(invite_ops::invites::update(conn, &ctx(owner), ids, &edit("{}"), malformed)), "PRECONDITION_FAILED");
    }

    fn a_limit_below_the_uses_is_refused_against_the_invite_under_its_lock(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"max_uses": 5}"#);
        let code = CodeRef::parse(invite.code.as_deref().unwrap()).unwrap();
        for _ in 0..3 {
            let joiner = invite_store::repo::Actor::new(Uuid::now_v7());
            conn.redeem(&code, &joiner, t0()).unwrap();
        }
        let ids = (server.id, invite.id);
        let refused = invite_ops::invites::update(conn, &ctx(owner), ids, &edit(r#"{"max_uses": 2}"#), Ok(None));
        let Err(invite_ops::OpError::Refused(problem)) = refused else { panic!("{refused:?}") };
        assert_eq!(problem.message, "max_uses must not be below the invite's current uses (3)");
        let edited = settled(invite_ops::invites::update(conn, &ctx(owner), ids, &edit(r#"{"max_uses": 3}"#), Ok(None)));
        assert_eq!(edited.max_uses, Some(3));
    }

    fn a_revoke_checks_if_match_and_a_second_finds_nothing(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let ids = (server.id, invite.id);
        assert_eq!(code_of(invite_ops::invites::revoke(conn, &ctx(owner), ids, Ok(Some(7)))), "PRECONDITION_FAILED");
        let outcome = invite_ops::invites::revoke(conn, &ctx(owner), ids, Ok(Some(1))).unwrap();
        assert_eq!(outcome.events().iter().map(StoredEvent::kind).collect::<Vec<_>>(), [EventType::InviteDelete]);
        let revoked = outcome.settle(&invite_ops::OutboxOnly);
        assert_eq!(revoked.version, 2);
        assert_eq!(code_of(invite_ops::invites::revoke(conn, &ctx(owner), ids, Ok(None))), "INVITE_NOT_FOUND");
    }

    fn the_vanity_invite_is_not_managed_through_the_invite_endpoints(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let code = invite_core::code::VanityCode::parse(&format!("v-{}", &Uuid::now_v7().simple().to_string()[20..])).unwrap();
        let vanity = conn.set_vanity_code(server.id, Some(&code), owner, t0()).unwrap().unwrap();
        let ids = (server.id, vanity.id);
        assert_eq!(code_of(invite_ops::invites::revoke(conn, &ctx(owner), ids, Ok(None))), "VANITY_INVITE");
        assert_eq!(code_of(invite_ops::invites::update(conn, &ctx(owner), ids, &edit(r#"{"max_uses": 3}"#), Ok(None))), "VANITY_INVITE");
        assert_eq!(conn.find_invite(vanity.id).unwrap().unwrap(), vanity, "nothing changed");
    }

    fn strangers_and_members_without_the_permission_are_refused_in_that_order(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (_, server, invite) = server_with_invite(conn, "{}");
        let ids = (server.id, invite.id);
        let stranger = Uuid::now_v7();
        assert_eq!(code_of(invite_ops::invites::revoke(conn, &ctx(stranger), ids, Ok(None))), "SERVER_NOT_FOUND");
        let code = CodeRef::parse(invite.code.as_deref().unwrap()).unwrap();
        assert_eq!(code_of(invite_ops::invites::revoke_by_code(conn, &ctx(stranger), &code, Ok(None))), "INVITE_NOT_FOUND");
        let member = Uuid::now_v7();
        conn.redeem(&code, &invite_store::repo::Actor::new(member), t0()).unwrap();
        assert_eq!(code_of(invite_ops::invites::revoke(conn, &ctx(member), ids, Ok(None))), "MISSING_PERMISSION");
        assert_eq!(code_of(invite_ops::invites::revoke_by_code(conn, &ctx(member), &code, Ok(None))), "MISSING_PERMISSION");
    }

    fn an_undo_returns_what_it_did_with_the_events_it_committed(db: &TestDatabase) {
        use invite_core::event::RemovalReason;
        use invite_core::undo::UndoInviteRequest;
        use invite_ops::invites::Undone;

        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let code = CodeRef::parse(invite.code.as_deref().unwrap()).unwrap();
        let joiners: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        for joiner in &joiners {
            conn.redeem(&code, &invite_store::repo::Actor::new(*joiner), t0()).unwrap();
        }
        conn.set_member_permissions(server.id, joiners[0], invite_core::permissions::Permissions::empty(), t0()).unwrap();
        let ids = (server.id, invite.id);
        let all = UndoInviteRequest::default();

        let outcome = invite_ops::invites::undo(conn, &ctx(owner), ids, &all).unwrap();
        let events = outcome.events().to_vec();
        assert_eq!(outcome.settle(&invite_ops::OutboxOnly), Undone { revoked_now: true, removed: 2, kept: 1 });
        assert_eq!(events.iter().map(StoredEvent::kind).collect::<Vec<_>>(), [EventType::InviteDelete, EventType::MemberRemove, EventType::MemberRemove]);
        for event in &events[1..] {
            let Event::MemberRemove(removed) = &event.event else { panic!("{events:?}") };
            assert_eq!((removed.server_id, removed.reason), (server.id, RemovalReason::InviteUndo));
            assert!(joiners[1..].contains(&removed.user_id));
        }
        // Committed with the change: the outbox holds what the outcome carries.
        let mut stored = conn.server_events(server.id, 0, 100).unwrap();
        assert_eq!(stored.split_off(stored.len() - events.len()), events);
        assert!(conn.find_member(server.id, joiners[0]).unwrap().is_some());

        // Repeated: the invite is revoked already, nobody else goes, nothing is announced.
        let again = invite_ops::invites::undo(conn, &ctx(owner), ids, &all).unwrap();
        assert!(again.events().is_empty());
        assert_eq!(again.settle(&invite_ops::OutboxOnly), Undone { revoked_now: false, removed: 0, kept: 1 });
    }

    fn an_undo_is_refused_in_the_order_of_the_other_changes(db: &TestDatabase) {
        use invite_core::undo::UndoInviteRequest;

        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        let ids = (server.id, invite.id);
        let bad = UndoInviteRequest { since: Some(serde_json::json!(7)) };
        let all = UndoInviteRequest::default();
        let stranger = Uuid::now_v7();
        assert_eq!(code_of(invite_ops::invites::undo(conn, &ctx(stranger), ids, &bad)), "SERVER_NOT_FOUND");
        let code = CodeRef::parse(invite.code.as_deref().unwrap()).unwrap();
        let member = Uuid::now_v7();
        conn.redeem(&code, &invite_store::repo::Actor::new(member), t0()).unwrap();
        assert_eq!(code_of(invite_ops::invites::undo(conn, &ctx(member), ids, &bad)), "MISSING_PERMISSION");
        assert_eq!(code_of(invite_ops::invites::undo(conn, &ctx(owner), ids, &bad)), "VALIDATION_ERROR");
        assert_eq!(code_of(invite_ops::invites::undo(conn, &ctx(owner), (server.id, Uuid::now_v7()), &all)), "INVITE_NOT_FOUND");
        let (_, elsewhere, foreign) = server_with_invite(conn, "{}");
        assert_eq!(code_of(invite_ops::invites::undo(conn, &ctx(owner), (server.id, foreign.id), &all)), "INVITE_NOT_FOUND");
        assert_eq!(code_of(invite_ops::invites::undo(conn, &ctx(owner), (elsewhere.id, foreign.id), &all)), "SERVER_NOT_FOUND");
        let vanity_code = invite_core::code::VanityCode::parse(&format!("u-{}", &Uuid::now_v7().simple().to_string()[20..])).unwrap();
        let vanity = conn.set_vanity_code(server.id, Some(&vanity_code), owner, t0()).unwrap().unwrap();
        assert_eq!(code_of(invite_ops::invites::undo(conn, &ctx(owner), (server.id, vanity.id), &all)), "VANITY_INVITE");
        assert_eq!(conn.find_invite(invite.id).unwrap().unwrap().revoked_at, None, "nothing changed");
    }
}
