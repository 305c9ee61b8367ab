use diesel::prelude::*;
use invite_core::audit::AuditAction;
use invite_core::code::{CodeRef, VanityCode};
use invite_core::event::EventType;
use invite_core::permissions::Permissions;
use invite_core::redeem::{
    InviteStatus, InvitesPause, RedemptionFacts, RedemptionRefused, decide_redemption,
};
use invite_core::server::PageLimit;
use invite_store::DbConnection;
use invite_store::models::JoinSource;
use invite_store::repo::{Actor, Redemption};
use invite_store::schema::invites;
use invite_store::sql_types::{Id, Ts};
use invite_store::testing::TestDatabase;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::{
    code_of, conformance, create_invite, membership_counts, minutes, named, owned_server, reload,
    server_with_invite, t0, user,
};

fn refusal(conn: &mut DbConnection, code: &CodeRef, who: &Actor) -> RedemptionRefused {
    match conn.redeem(code, who, t0()).unwrap() {
        Redemption::Refused(reason) => reason,
        Redemption::Joined(joined) => panic!("expected a refusal, joined {joined:?}"),
        Redemption::Filed(filed) => panic!("expected a refusal, filed {filed:?}"),
    }
}

conformance! {
    fn a_join_records_how_and_counts_everything_at_once(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"max_uses": 3, "temporary": true}"#);
        let guest = named("guest");
        let Redemption::Joined(joined) = conn.redeem(&code_of(&invite), &guest, t0()).unwrap() else { panic!() };
        assert_eq!((joined.uses, joined.version, joined.member_count), (1, 2, 2));
        assert_eq!(joined.member.server_id, server.id);
        assert_eq!(joined.member.source, JoinSource::Invite);
        assert_eq!(joined.member.joined_via_invite_id, Some(invite.id));
        assert_eq!(joined.member.joined_via_code, invite.code);
        assert_eq!(joined.member.inviter_id, Some(owner.user_id));
        assert!(joined.member.temporary);
        assert_eq!(joined.member.permissions, Permissions::empty());

        // The database agrees with what was returned.
        let stored = conn.find_member(server.id, guest.user_id).unwrap().unwrap();
        assert_eq!(stored, joined.member);
        assert_eq!(stored.username.as_deref(), Some("guest"));
        let after = reload(conn, &invite);
        assert_eq!((after.uses, after.version, after.updated_at), (1, 2, t0()));
        assert_eq!(membership_counts(conn, server.id), (2, 2));
        assert_eq!(conn.find_server(server.id).unwrap().unwrap().member_count, 2);

        let entries = conn.list_audit_entries(server.id, None, PageLimit::parse(None, 50, 100).unwrap()).unwrap();
        assert_eq!(entries[0].action, AuditAction::MemberJoin);
        assert_eq!((entries[0].actor_id, entries[0].target_id), (Some(guest.user_id), Some(guest.user_id)));
        assert_eq!(entries[0].details["code"], serde_json::json!(invite.code));

        // The MEMBER_JOIN event committed with the join is the one returned, field for field;
        // on PostgreSQL the statement builds the stored payload in SQL, so the payload is also
        // compared as stored, key for key, with the event's own serialisation.
        let events = conn.server_events(server.id, 0, 100).unwrap();
        let stored = events.iter().find(|event| event.kind() == EventType::MemberJoin).unwrap();
        assert_eq!(stored, &joined.event);
        let payload = joined.event.event.payload();
        assert_eq!(crate::stored_payload(conn, stored.seq), payload);
        assert_eq!(payload, serde_json::json!({
            "server_id": server.id, "user_id": guest.user_id, "invite_id": invite.id,
            "code": invite.code, "source": "invite", "inviter_id": owner.user_id,
            "temporary": true, "member_count": 2,
        }));
    }

    fn every_refusal_changes_nothing(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, open) = server_with_invite(conn, r#"{"max_uses": 2}"#);
        let member = user();
        conn.redeem(&code_of(&open), &member, t0()).unwrap();

        let expired = crate::create_invite_at(conn, &server, &owner, r#"{"max_age": 60}"#, t0() - minutes(1));
        let used_up = create_invite(conn, &server, &owner, r#"{"max_uses": 1}"#);
        conn.redeem(&code_of(&used_up), &user(), t0()).unwrap();
        let revoked = create_invite(conn, &server, &owner, "{}");
        crate::revoke(conn, revoked.id, owner.user_id, t0()).unwrap();
        let banned = user();
        conn.ban(server.id, banned.user_id, None, owner.user_id, t0()).unwrap();

        let before = (membership_counts(conn, server.id), reload(conn, &open), reload(conn, &used_up));
        assert_eq!(refusal(conn, &CodeRef::parse("nonexist").unwrap(), &user()), RedemptionRefused::NotFound);
        assert_eq!(refusal(conn, &code_of(&revoked), &user()), RedemptionRefused::Revoked);
        assert_eq!(refusal(conn, &code_of(&open), &member), RedemptionRefused::AlreadyMember);
        assert_eq!(refusal(conn, &code_of(&open), &owner), RedemptionRefused::AlreadyMember);
        assert_eq!(refusal(conn, &code_of(&open), &banned), RedemptionRefused::Banned);
        assert_eq!(refusal(conn, &code_of(&expired), &user()), RedemptionRefused::Expired);
        assert_eq!(refusal(conn, &code_of(&used_up), &user()), RedemptionRefused::MaxedOut);
        conn.set_invites_pause(server.id, Some(InvitesPause::Until(t0() + minutes(5))), owner.user_id, t0()).unwrap();
        assert_eq!(refusal(conn, &code_of(&open), &user()), RedemptionRefused::Paused);
        let after = (membership_counts(conn, server.id), reload(conn, &open), reload(conn, &used_up));
        assert_eq!(before, after);

        // A timed pause ends by itself.
        let later = t0() + minutes(5);
        assert!(matches!(conn.redeem(&code_of(&open), &user(), later).unwrap(), Redemption::Joined(_)));
    }

    fn the_reason_follows_the_contract_order(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        // Revoked, expired and used up at once, for a banned member while paused.
        let invite = create_invite(conn, &server, &owner, r#"{"max_uses": 1, "max_age": 60}"#);
        let someone = user();
        conn.redeem(&code_of(&invite), &someone, t0()).unwrap();
        conn.set_invites_pause(server.id, Some(InvitesPause::Indefinitely), owner.user_id, t0()).unwrap();
        let late = t0() + minutes(2);
        let reason = |conn: &mut DbConnection, who: &Actor| match conn.redeem(&code_of(&invite), who, late).unwrap() {
            Redemption::Refused(reason) => reason,
            Redemption::Joined(_) | Redemption::Filed(_) => panic!("joined"),
        };
        assert_eq!(reason(conn, &someone), RedemptionRefused::AlreadyMember);
        let banned = user();
        conn.ban(server.id, banned.user_id, None, owner.user_id, t0()).unwrap();
        assert_eq!(reason(conn, &banned), RedemptionRefused::Banned);
        assert_eq!(reason(conn, &user()), RedemptionRefused::Paused);
        conn.set_invites_pause(server.id, None, owner.user_id, t0()).unwrap();
        assert_eq!(reason(conn, &user()), RedemptionRefused::Expired);
        crate::revoke(conn, invite.id, owner.user_id, t0()).unwrap();
        assert_eq!(reason(conn, &someone), RedemptionRefused::Revoked);
    }

    fn a_vanity_join_is_recorded_as_such(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let code = VanityCode::parse("join-us").unwrap();
        let vanity = conn.set_vanity_code(server.id, Some(&code), owner.user_id, t0()).unwrap().unwrap();
        let guest = user();
        let Redemption::Joined(joined) = conn.redeem(&CodeRef::parse("Join-Us").unwrap(), &guest, t0()).unwrap() else { panic!() };
        assert_eq!(joined.member.source, JoinSource::Vanity);
        assert_eq!(joined.member.inviter_id, None);
        assert_eq!(joined.member.joined_via_invite_id, Some(vanity.id));
        assert_eq!(joined.member.joined_via_code.as_deref(), Some("join-us"));
        assert_eq!(reload(conn, &vanity).uses, 1);
    }

    fn the_store_admits_exactly_when_the_core_does(db: &TestDatabase) {
        // Random states are built in the database, redeemed, and the outcome compared with the
        // core's decision on the same facts: the SQL conditions may never drift from the rules.
        let conn = std::cell::RefCell::new(db.connect());
        let mut runner = TestRunner::new(Config { cases: 48, ..Config::default() });
        let states = (any::<bool>(), 0_u8..3, 0_u8..3, any::<bool>(), any::<bool>(), 0_u8..3, 0_u8..3);
        runner
            .run(&states, |(revoked, expiry, limit, is_member, is_banned, pause, listed)| {
                let conn = &mut *conn.borrow_mut();
                let (owner, server, invite) = server_with_invite(conn, "{}");
                let guest = user();
                let expires_at = [None, Some(t0()), Some(t0() + minutes(1))][usize::from(expiry)];
                // Open to anyone, for a list with the guest, for a list without.
                let allowed = &[None, Some(vec![uuid::Uuid::now_v7(), guest.user_id]), Some(vec![uuid::Uuid::now_v7()])][usize::from(listed)];
                let allowed_json = allowed.as_ref().map(|ids| invite_store::sql_types::Json(serde_json::json!(ids)));
                let (max_uses, uses) = [(None, 0), (Some(2), 1), (Some(2), 2)][usize::from(limit)];
                diesel::update(invites::table.filter(invites::id.eq(Id(invite.id))))
                    .set((
                        invites::expires_at.eq(expires_at.map(Ts)),
                        invites::max_uses.eq(max_uses),
                        invites::uses.eq(uses),
                        invites::revoked_at.eq(revoked.then_some(Ts(t0()))),
                        invites::allowed_user_ids.eq(allowed_json),
                    ))
                    .execute(conn)
                    .unwrap();
                if is_member {
                    let other = create_invite(conn, &server, &owner, "{}");
                    conn.redeem(&code_of(&other), &guest, t0() - minutes(10)).unwrap();
                }
                if is_banned {
                    conn.ban(server.id, guest.user_id, None, owner.user_id, t0()).unwrap();
                }
                let pause = [None, Some(InvitesPause::Indefinitely), Some(InvitesPause::Until(t0()))][usize::from(pause)];
                conn.set_invites_pause(server.id, pause, owner.user_id, t0()).unwrap();

                let facts = RedemptionFacts {
                    invite: Some(InviteStatus { revoked, expires_at, max_uses, uses }),
                    pause,
                    is_member: is_member && !is_banned, // a ban removes the membership
                    is_banned,
                    is_allowed: listed != 2,
                };
                let expected = decide_redemption(&facts, t0());
                let before = membership_counts(conn, server.id);
                let outcome = conn.redeem(&code_of(&invite), &guest, t0()).unwrap();
                match (expected, outcome) {
                    (Ok(()), Redemption::Joined(joined)) => {
                        prop_assert_eq!(joined.uses, uses + 1);
                        prop_assert_eq!(membership_counts(conn, server.id), (before.0 + 1, before.1 + 1));
                    }
                    (Err(reason), Redemption::Refused(refused)) => {
                        prop_assert_eq!(reason, refused);
                        prop_assert_eq!(membership_counts(conn, server.id), before);
                        prop_assert_eq!(reload(conn, &invite).uses, uses);
                    }
                    (expected, outcome) => prop_assert!(false, "core said {:?}, store did {:?}", expected, outcome),
                }
                Ok(())
            })
            .unwrap();
    }
}

/// On PostgreSQL a successful accept is one data statement: no BEGIN, no COMMIT, no second
/// round trip, and it is prepared once per connection (counted with diesel's instrumentation on
/// the very connection that runs it).
#[test]
fn postgres_accepts_in_one_statement() {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Instrumentation, InstrumentationEvent};

    #[derive(Default)]
    struct Statements(Arc<Mutex<Vec<String>>>);

    impl Instrumentation for Statements {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            match event {
                InstrumentationEvent::StartQuery { query, .. } => {
                    self.0.lock().unwrap().push(query.to_string());
                }
                InstrumentationEvent::BeginTransaction { .. } => {
                    self.0.lock().unwrap().push("BEGIN".to_owned());
                }
                InstrumentationEvent::CacheQuery { sql, .. } => {
                    self.0.lock().unwrap().push(format!("PREPARE {sql}"));
                }
                _ => {}
            }
        }
    }

    let db = TestDatabase::postgres();
    let conn = &mut db.connect();
    let (_, _, invite) = server_with_invite(conn, r#"{"max_uses": 10}"#);
    let seen = Arc::new(Mutex::new(Vec::new()));
    conn.set_instrumentation(Statements(seen.clone()));
    let outcome = conn.redeem(&code_of(&invite), &named("guest"), t0()).unwrap();
    assert!(matches!(outcome, Redemption::Joined(_)), "{outcome:?}");
    let statements = seen.lock().unwrap().clone();
    // The first accept on a connection runs the statement and caches it prepared.
    let prepared =
        statements.iter().filter(|sql| sql.starts_with("PREPARE WITH params AS")).count();
    let executed = statements.iter().filter(|sql| sql.starts_with("WITH params AS")).count();
    assert_eq!((statements.len(), prepared, executed), (2, 1, 1), "{statements:#?}");

    // The statement carries the username's upsert only for a token that names the user.
    assert!(statements[0].contains("INSERT INTO users"), "{statements:#?}");

    // Later accepts reuse the prepared statement: one round trip each.
    seen.lock().unwrap().clear();
    for name in ["a", "b", "c"] {
        assert!(matches!(
            conn.redeem(&code_of(&invite), &named(name), t0()).unwrap(),
            Redemption::Joined(_)
        ));
    }
    let statements = seen.lock().unwrap().clone();
    assert_eq!(statements.len(), 3, "{statements:#?}");
    assert!(
        statements.iter().all(|sql| sql.trim_start().starts_with("WITH params AS")),
        "{statements:#?}"
    );

    // A token without a username, or a request without an Idempotency-Key, leaves the parts
    // with nothing to write out of the statement: a statement of its own, prepared once.
    seen.lock().unwrap().clear();
    for _ in 0..2 {
        assert!(matches!(
            conn.redeem(&code_of(&invite), &user(), t0()).unwrap(),
            Redemption::Joined(_)
        ));
    }
    let statements = seen.lock().unwrap().clone();
    assert_eq!(statements.len(), 3, "{statements:#?}");
    let prepared = statements.iter().filter(|sql| sql.starts_with("PREPARE WITH params AS"));
    assert_eq!(prepared.count(), 1, "{statements:#?}");
    assert!(
        statements.iter().all(|sql| !sql.contains("INSERT INTO users")
            && !sql.contains("INSERT INTO idempotency_records")),
        "{statements:#?}"
    );

    // An accept with an Idempotency-Key records its response in that same statement.
    seen.lock().unwrap().clear();
    let guest = user();
    let claim = invite_store::repo::IdempotencyClaim {
        user_id: guest.user_id,
        key: "k".into(),
        fingerprint: "f".into(),
    };
    let template =
        invite_store::repo::JoinResponseTemplate { status: 201, before: "[", after: "]" };
    let outcome = conn.redeem_recorded(&code_of(&invite), &guest, t0(), &claim, &template);
    assert!(matches!(outcome, Ok(Redemption::Joined(_))), "{outcome:?}");
    let statements = seen.lock().unwrap().clone();
    assert_eq!(statements.len(), 2, "{statements:#?}");
    assert!(
        statements.iter().all(|sql| sql.contains("INSERT INTO idempotency_records")
            && !sql.contains("INSERT INTO users")),
        "{statements:#?}"
    );

    // Both parts at once: a named user's keyed accept records the response and the name.
    let host = named("host");
    let claim = invite_store::repo::IdempotencyClaim { user_id: host.user_id, ..claim };
    let outcome = conn.redeem_recorded(&code_of(&invite), &host, t0(), &claim, &template);
    let Ok(Redemption::Joined(joined)) = outcome else { panic!("{outcome:?}") };
    let server_id = joined.member.server_id;
    let row = diesel::sql_query(format!(
        "SELECT u.username AS name, r.body FROM users u \
         JOIN idempotency_records r ON r.user_id = u.id WHERE u.id = '{}'",
        host.user_id
    ))
    .get_result::<NameAndBody>(conn)
    .unwrap();
    let (name, body) = (row.name, row.body);
    assert_eq!((name.as_deref(), body), (Some("host"), format!("[{server_id}]")));
}

#[derive(diesel::QueryableByName)]
struct NameAndBody {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    body: String,
}
