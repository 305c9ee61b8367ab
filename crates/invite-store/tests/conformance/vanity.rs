use chrono::Duration;
use invite_core::ErrorCode;
use invite_core::audit::AuditAction;
use invite_core::code::{CodeRef, VanityCode};
use invite_core::invite::InviteKind;
use invite_core::server::PageLimit;
use invite_store::repo::{CreatedInvite, NewInvite};
use invite_store::testing::TestDatabase;
use invite_store::{Fact, StoreError};

use crate::{conformance, create_server, owned_server, reload, settings, t0, user};

fn vanity(code: &str) -> VanityCode {
    VanityCode::parse(code).unwrap()
}

/// The message of the refusal a taken vanity code gets (`VANITY_TAKEN`).
fn taken(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::Stopped(Fact::VanityCode(refused))) => {
            let problem = invite_core::Problem::from(refused);
            assert_eq!(problem.code, ErrorCode::VanityTaken);
            problem.message.into_owned()
        }
        other => panic!("expected VANITY_TAKEN, got {other:?}"),
    }
}

conformance! {
    fn a_vanity_code_is_an_unlimited_permanent_invite(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        assert_eq!(conn.vanity_invite(server.id).unwrap(), None);
        let invite = conn.set_vanity_code(server.id, Some(&vanity("Rust-Lang")), owner.user_id, t0()).unwrap().unwrap();
        assert_eq!(invite.code.as_deref(), Some("rust-lang"));
        assert_eq!(invite.kind, InviteKind::Vanity);
        assert_eq!((invite.max_uses, invite.expires_at, invite.max_age), (None, None, 0));
        assert_eq!(conn.vanity_invite(server.id).unwrap(), Some(invite.clone()));
        assert_eq!(conn.find_server(server.id).unwrap().unwrap().vanity_code.as_deref(), Some("rust-lang"));
        // Setting the same code again changes nothing.
        assert_eq!(conn.set_vanity_code(server.id, Some(&vanity("rust-lang")), owner.user_id, t0()).unwrap(), Some(invite.clone()));
        assert_eq!(reload(conn, &invite).version, 1);

        let entries = conn.list_audit_entries(server.id, None, PageLimit::parse(None, 50, 100).unwrap()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].action, AuditAction::VanityUpdate);
        assert_eq!(entries[0].details, serde_json::json!({ "old_code": null, "new_code": "rust-lang" }));
    }

    fn codes_are_one_namespace(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (alice, bob) = (user(), user());
        let first = create_server(conn, &alice);
        let second = create_server(conn, &bob);
        conn.set_vanity_code(first.id, Some(&vanity("gophers")), alice.user_id, t0()).unwrap();
        assert_eq!(taken(conn.set_vanity_code(second.id, Some(&vanity("gophers")), bob.user_id, t0())), "This vanity code is not available");
        // A random code is taken too, even by its own server, even once revoked. The draw is
        // fixed to a lower-case code, the only kind a vanity code can equal.
        let mut all_lower = |dest: &mut [u8]| {
            // Bytes 26..=51 are the letters a-z of the alphabet.
            dest.iter_mut().zip(0u8..).for_each(|(byte, i)| *byte = 26 + i % 26);
        };
        let new = NewInvite { server_id: second.id, creator: &bob, settings: &settings("{}"), now: t0(), server_locked: false };
        let CreatedInvite::Created(random) = conn.create_invite(&new, &mut all_lower).unwrap() else {
            panic!("expected a new invite");
        };
        assert_eq!(random.code.as_deref(), Some("abcdefgh"));
        let as_vanity = vanity("abcdefgh");
        taken(conn.set_vanity_code(second.id, Some(&as_vanity), bob.user_id, t0()));
        crate::revoke(conn, random.id, bob.user_id, t0()).unwrap();
        taken(conn.set_vanity_code(second.id, Some(&as_vanity), bob.user_id, t0()));
        assert_eq!(conn.vanity_invite(second.id).unwrap(), None);
    }

    fn a_released_code_waits_thirty_days_for_other_servers(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (alice, bob) = (user(), user());
        let first = create_server(conn, &alice);
        let second = create_server(conn, &bob);
        let old = conn.set_vanity_code(first.id, Some(&vanity("crabs")), alice.user_id, t0()).unwrap().unwrap();
        // Changing the code releases the old one.
        let new = conn.set_vanity_code(first.id, Some(&vanity("crustaceans")), alice.user_id, t0()).unwrap().unwrap();
        assert_ne!(old.id, new.id);
        assert_eq!(reload(conn, &old).revoked_at, Some(t0()));
        assert_eq!(conn.redeem(&CodeRef::parse("crabs").unwrap(), &user(), t0()).unwrap(),
            invite_store::repo::Redemption::Refused(invite_core::redeem::RedemptionRefused::Revoked));

        let message = taken(conn.set_vanity_code(second.id, Some(&vanity("crabs")), bob.user_id, t0() + Duration::days(29)));
        assert_eq!(message, "This vanity code was released recently; other servers can claim it from 2026-12-22T12:00:00Z");

        // The releasing server may take it back at once: its old invite comes back.
        let back = conn.set_vanity_code(first.id, Some(&vanity("crabs")), alice.user_id, t0() + Duration::days(1)).unwrap().unwrap();
        assert_eq!(back.id, old.id);
        assert_eq!((back.revoked_at, back.version), (None, 3));
        assert_eq!(reload(conn, &new).revoked_at, Some(t0() + Duration::days(1)));

        // Released again; after 30 days another server may claim it, and the old row gives the
        // code up but keeps its history.
        conn.set_vanity_code(first.id, None, alice.user_id, t0() + Duration::days(2)).unwrap();
        assert_eq!(conn.vanity_invite(first.id).unwrap(), None);
        let claimed = conn.set_vanity_code(second.id, Some(&vanity("crabs")), bob.user_id, t0() + Duration::days(32)).unwrap().unwrap();
        assert_eq!(claimed.server_id, second.id);
        assert_eq!(reload(conn, &old).code, None);
        assert_eq!(conn.find_invite_by_code(&CodeRef::parse("crabs").unwrap()).unwrap(), Some(claimed));
    }
}
