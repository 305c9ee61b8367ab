use diesel::prelude::*;
use invite_core::audit::AuditAction;
use invite_core::code::{CodeRef, InviteCode};
use invite_core::event::EventType;
use invite_core::invite::{InviteKind, UpdateInviteRequest};
use invite_core::server::{ChannelName, PageLimit};
use invite_store::Fact;

use invite_store::repo::{CreatedInvite, InviteScope, NewInvite};
use invite_store::schema::{invites, servers};
use invite_store::sql_types::{Id, Ts};
use invite_store::testing::{TestDatabase, insert_active_invites};
use invite_store::{DbConnection, StoreError};
use uuid::Uuid;

use crate::{
    conformance, create_invite, create_server, minutes, owned_server, reload, server_with_invite,
    settings, t0, user,
};

/// What the store found that stopped a change.
fn stopped(result: Result<impl std::fmt::Debug, StoreError>) -> Fact {
    match result {
        Err(StoreError::Stopped(fact)) => fact,
        other => panic!("expected the change to be stopped, got {other:?}"),
    }
}

fn invite_rows(conn: &mut DbConnection, server_id: Uuid) -> i64 {
    invites::table.filter(invites::server_id.eq(Id(server_id))).count().get_result(conn).unwrap()
}

fn page(limit: i64) -> PageLimit {
    PageLimit::parse(Some(limit), 1000, 1000).unwrap()
}

/// A random source that always yields the same bytes, so every draw is the same code.
fn constant(byte: u8) -> impl FnMut(&mut [u8]) {
    move |dest: &mut [u8]| dest.fill(byte)
}

conformance! {
    fn a_created_invite_is_stored_with_its_settings_and_audited(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"max_uses": 10, "expires_in_hours": 24, "temporary": true}"#);
        assert!(InviteCode::parse(invite.code.as_deref().unwrap()).is_ok());
        assert_eq!(invite.kind, InviteKind::Random);
        assert_eq!((invite.max_uses, invite.uses, invite.max_age), (Some(10), 0, 86_400));
        assert_eq!(invite.expires_at, Some(t0() + chrono::Duration::hours(24)));
        assert!(invite.temporary);
        assert_eq!((invite.version, invite.revoked_at, invite.created_by), (1, None, Some(owner.user_id)));
        assert_eq!(reload(conn, &invite), invite);
        assert_eq!(conn.find_invite_by_code(&crate::code_of(&invite)).unwrap(), Some(invite.clone()));

        let entries = conn.list_audit_entries(server.id, None, page(10)).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].action, AuditAction::InviteCreate);
        assert_eq!(entries[0].target_id, Some(invite.id));
        assert_eq!(entries[0].details, serde_json::json!({ "code": invite.code, "max_uses": 10 }));
    }

    fn an_unknown_channel_is_refused_and_nothing_is_written(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let elsewhere = create_server(conn, &owner);
        let foreign = conn.create_channel(elsewhere.id, &ChannelName::parse("x").unwrap(), t0()).unwrap();
        for channel_id in [Uuid::now_v7(), foreign.id] {
            let settings = settings(&format!(r#"{{"channel_id": "{channel_id}"}}"#));
            let new = NewInvite { server_id: server.id, creator: &owner, settings: &settings, now: t0(), server_locked: false };
            assert_eq!(stopped(conn.create_invite(&new, &mut invite_core::code::OsRandom)), Fact::ChannelNotInServer);
        }
        assert_eq!(invite_rows(conn, server.id), 0);
        assert!(conn.list_audit_entries(server.id, None, page(10)).unwrap().is_empty());

        let own = conn.create_channel(server.id, &ChannelName::parse("general").unwrap(), t0()).unwrap();
        let invite = create_invite(conn, &server, &owner, &format!(r#"{{"channel_id": "{}"}}"#, own.id));
        assert_eq!(invite.channel_id, Some(own.id));
    }

    fn unique_false_reuses_an_equal_active_invite(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, first) = server_with_invite(conn, r#"{"max_uses": 5, "max_age": 3600}"#);
        let reuse = settings(r#"{"max_uses": 5, "max_age": 3600, "unique": false}"#);
        let new = NewInvite { server_id: server.id, creator: &owner, settings: &reuse, now: t0(), server_locked: false };
        assert_eq!(conn.create_invite(&new, &mut invite_core::code::OsRandom).unwrap(), CreatedInvite::Reused(first.clone()));
        assert_eq!(invite_rows(conn, server.id), 1);
        assert_eq!(conn.list_audit_entries(server.id, None, page(10)).unwrap().len(), 1, "a reuse is not audited");

        // Different settings, another creator, or an inactive match: a new invite.
        for (json, creator) in [
            (r#"{"max_uses": 6, "max_age": 3600, "unique": false}"#, owner.clone()),
            (r#"{"max_uses": 5, "max_age": 3600, "temporary": true, "unique": false}"#, owner.clone()),
            (r#"{"max_uses": 5, "max_age": 3600, "unique": false}"#, user()),
        ] {
            let settings = settings(json);
            let new = NewInvite { server_id: server.id, creator: &creator, settings: &settings, now: t0(), server_locked: false };
            assert!(matches!(conn.create_invite(&new, &mut invite_core::code::OsRandom).unwrap(), CreatedInvite::Created(_)), "{json}");
        }
        crate::revoke(conn, first.id, owner.user_id, t0()).unwrap();
        let new = NewInvite { server_id: server.id, creator: &owner, settings: &reuse, now: t0(), server_locked: false };
        assert!(matches!(conn.create_invite(&new, &mut invite_core::code::OsRandom).unwrap(), CreatedInvite::Created(_)));
    }

    fn a_code_collision_draws_again_and_gives_up_after_three(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let new = NewInvite { server_id: server.id, creator: &owner, settings: &settings("{}"), now: t0(), server_locked: false };
        let CreatedInvite::Created(first) = conn.create_invite(&new, &mut constant(0)).unwrap() else { panic!() };
        assert_eq!(first.code.as_deref(), Some("AAAAAAAA"));

        // Every draw collides: 500 CODE_SPACE_EXHAUSTED, nothing written, transaction not poisoned.
        assert_eq!(stopped(conn.create_invite(&new, &mut constant(0))), Fact::CodesExhausted);
        assert_eq!(invite_rows(conn, server.id), 1);

        // Two collisions, then a free code: reserved on the third attempt.
        let mut draws = 0;
        let mut two_collisions = |dest: &mut [u8]| {
            draws += 1;
            dest.fill(u8::from(draws > 2));
        };
        let CreatedInvite::Created(third) = conn.create_invite(&new, &mut two_collisions).unwrap() else { panic!() };
        assert_eq!(third.code.as_deref(), Some("BBBBBBBB"));
        assert_eq!(invite_rows(conn, server.id), 2);
    }

    fn a_server_holds_at_most_1000_active_invites(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        // 999 active rows, plus inactive ones that must not count.
        insert_active_invites(conn, server.id, 999, t0());
        let rows: Vec<_> = (999..1003)
            .map(|i| {
                let (expires_at, max_uses, uses, revoked_at) = match i {
                    999 => (Some(Ts(t0())), None, 0, None),
                    1000 => (None, Some(2), 2, None),
                    1001 => (None, None, 0, Some(Ts(t0()))),
                    _ => (None, None, 0, None),
                };
                (
                    invites::id.eq(Id(Uuid::now_v7())),
                    invites::server_id.eq(Id(server.id)),
                    invites::code.eq(format!("c{i:07}")),
                    invites::kind.eq(["random", "vanity"][usize::from(i == 1002)]),
                    invites::max_uses.eq(max_uses),
                    invites::uses.eq(uses),
                    invites::expires_at.eq(expires_at),
                    invites::revoked_at.eq(revoked_at),
                    invites::created_at.eq(Ts(t0())),
                    invites::updated_at.eq(Ts(t0())),
                )
            })
            .collect();
        conn.transaction(|conn| {
            rows.iter().try_for_each(|row| diesel::insert_into(invites::table).values(row).execute(conn).map(drop))
        })
        .unwrap();
        assert_eq!(conn.count_active_invites(server.id, t0()).unwrap(), 999);

        let last = create_invite(conn, &server, &owner, "{}");
        let new = NewInvite { server_id: server.id, creator: &owner, settings: &settings("{}"), now: t0(), server_locked: false };
        assert_eq!(stopped(conn.create_invite(&new, &mut invite_core::code::OsRandom)), Fact::ActiveInvitesFull);
        assert_eq!(invite_rows(conn, server.id), 1004);
        crate::revoke(conn, last.id, owner.user_id, t0()).unwrap();
        create_invite(conn, &server, &owner, "{}");
    }

    // Creates read a counter, not the server's invites (see the migration
    // `active_invite_count`): every change to whether an invite counts moves it, an expired
    // invite lapses at the server's next create, and at every step the counter agrees with a
    // scan of the invites.
    fn the_active_invite_counter_follows_every_change_and_every_expiry(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let check = |conn: &mut DbConnection, now, expected: i64| {
            let scanned: i64 = invites::table
                .filter(invites::server_id.eq(Id(server.id)))
                .filter(invites::kind.eq("random"))
                .filter(invites::revoked_at.is_null())
                .filter(invites::expires_at.is_null().or(invites::expires_at.gt(Ts(now))))
                .filter(invites::max_uses.is_null().or(invites::uses.nullable().lt(invites::max_uses)))
                .count()
                .get_result(conn)
                .unwrap();
            assert_eq!((conn.count_active_invites(server.id, now).unwrap(), scanned), (expected, expected));
            for (name, found) in invite_store::invariants::violations(conn).unwrap() {
                assert_eq!(found, 0, "{name}");
            }
        };
        let once = create_invite(conn, &server, &owner, r#"{"max_uses": 1}"#);
        let hour = create_invite(conn, &server, &owner, r#"{"max_age": 3600}"#);
        let plain = create_invite(conn, &server, &owner, "{}");
        let short = create_invite(conn, &server, &owner, r#"{"max_age": 1800}"#);
        check(conn, t0(), 4);

        // The use that exhausts an invite, a revoke, an edit that gives uses back.
        assert!(matches!(conn.redeem(&crate::code_of(&once), &user(), t0()).unwrap(), invite_store::repo::Redemption::Joined(_)));
        check(conn, t0(), 3);
        crate::revoke(conn, plain.id, owner.user_id, t0()).unwrap();
        check(conn, t0(), 2);
        let more: UpdateInviteRequest = serde_json::from_str(r#"{"max_uses": 3}"#).unwrap();
        crate::update(conn, once.id, &more, owner.user_id, t0()).unwrap();
        check(conn, t0(), 3);

        // Two hours on, `hour` and `short` have expired: counted as such before any write, then
        // lapsed by the next create (the API's path), which moves the mark.
        let later = t0() + minutes(120);
        check(conn, later, 1);
        let base = settings("{}");
        let new = NewInvite { server_id: server.id, creator: &owner, settings: &base, now: later, server_locked: false };
        let payload = crate::announce;
        conn.create_invite_announced(&new, &mut invite_core::code::OsRandom, payload).unwrap();
        check(conn, later, 2);
        let mark = |conn: &mut DbConnection| -> Option<chrono::DateTime<chrono::Utc>> {
            servers::table.filter(servers::id.eq(Id(server.id))).select(servers::invites_lapsed_through).get_result(conn).unwrap()
        };
        assert_eq!(mark(conn), Some(later));
        // Revoking a lapsed invite changes nothing; giving one a new lifetime counts it again.
        crate::revoke(conn, short.id, owner.user_id, later).unwrap();
        check(conn, later, 2);
        let renewed: UpdateInviteRequest = serde_json::from_str(r#"{"expires_in_hours": 1}"#).unwrap();
        crate::update(conn, hour.id, &renewed, owner.user_id, later).unwrap();
        check(conn, later, 3);
        crate::revoke(conn, hour.id, owner.user_id, later).unwrap();
        check(conn, later, 2);
        // A create whose clock is behind the mark neither lapses nor moves it.
        let behind = NewInvite { now: t0() + minutes(60), ..new };
        conn.create_invite_announced(&behind, &mut invite_core::code::OsRandom, payload).unwrap();
        check(conn, later, 3);
        assert_eq!(mark(conn), Some(later));
    }

    // The path the API takes (on PostgreSQL one statement after the lock): the same rules as
    // `create_invite`, and the event it returns is the one the outbox holds.
    fn an_announced_create_writes_its_event_with_it_and_keeps_every_rule(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let payload = crate::announce;
        let base = settings(r#"{"max_uses": 5, "max_age": 60, "temporary": true}"#);
        let new = NewInvite { server_id: server.id, creator: &owner, settings: &base, now: t0(), server_locked: false };
        let (CreatedInvite::Created(first), events) =
            conn.create_invite_announced(&new, &mut constant(0), payload).unwrap()
        else {
            panic!("a new invite")
        };
        assert_eq!(first.code.as_deref(), Some("AAAAAAAA"));
        assert_eq!((first.max_uses, first.max_age, first.temporary), (Some(5), 60, true));
        assert_eq!(reload(conn, &first), first);
        assert_eq!(conn.server_events(server.id, 0, 100).unwrap(), events);
        assert_eq!(
            (events[0].kind(), events[0].created_at, &events[0].event),
            (EventType::InviteCreate, t0(), &crate::announce(&first))
        );
        let entries = conn.list_audit_entries(server.id, None, page(10)).unwrap();
        assert_eq!((entries[0].action, entries[0].target_id), (AuditAction::InviteCreate, Some(first.id)));
        assert_eq!(entries[0].details, serde_json::json!({ "code": "AAAAAAAA", "max_uses": 5 }));

        // Collisions draw again; when every draw collides nothing is written.
        assert_eq!(stopped(conn.create_invite_announced(&new, &mut constant(0), payload)), Fact::CodesExhausted);
        let mut draws = 0;
        let mut two_collisions = |dest: &mut [u8]| {
            draws += 1;
            dest.fill(u8::from(draws > 2));
        };
        let (CreatedInvite::Created(third), _) =
            conn.create_invite_announced(&new, &mut two_collisions, payload).unwrap()
        else {
            panic!("a new invite")
        };
        assert_eq!(third.code.as_deref(), Some("BBBBBBBB"));
        assert_eq!((invite_rows(conn, server.id), conn.server_events(server.id, 0, 100).unwrap().len()), (2, 2));

        // `unique: false` reuses an equal active invite, and announces nothing.
        let reuse = base.clone();
        let reuse = invite_core::invite::InviteSettings { unique: false, ..reuse };
        let again = NewInvite { settings: &reuse, ..new };
        let (reused, events) = conn.create_invite_announced(&again, &mut invite_core::code::OsRandom, payload).unwrap();
        assert_eq!((reused, events), (CreatedInvite::Reused(third.clone()), Vec::new()));

        // At 1000 active invites: refused, nothing written.
        insert_active_invites(conn, server.id, 998, t0());
        assert_eq!(stopped(conn.create_invite_announced(&new, &mut invite_core::code::OsRandom, payload)), Fact::ActiveInvitesFull);
        assert_eq!((invite_rows(conn, server.id), conn.server_events(server.id, 0, 100).unwrap().len()), (1000, 2));
        // An unknown channel is refused.
        let elsewhere = settings(&format!(r#"{{"channel_id": "{}"}}"#, Uuid::now_v7()));
        let stray = NewInvite { settings: &elsewhere, ..new };
        assert_eq!(stopped(conn.create_invite_announced(&stray, &mut invite_core::code::OsRandom, payload)), Fact::ChannelNotInServer);
    }

    fn lists_are_newest_first_without_revoked_or_vanity(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let channel = conn.create_channel(server.id, &ChannelName::parse("general").unwrap(), t0()).unwrap();
        let at = |m| t0() + minutes(m);
        let a = crate::create_invite_at(conn, &server, &owner, r#"{"max_age": 60}"#, at(0));
        let b = crate::create_invite_at(conn, &server, &owner, &format!(r#"{{"channel_id": "{}"}}"#, channel.id), at(1));
        let c = crate::create_invite_at(conn, &server, &owner, r#"{"max_uses": 1}"#, at(2));
        let d = crate::create_invite_at(conn, &server, &owner, "{}", at(3));
        crate::revoke(conn, d.id, owner.user_id, at(4)).unwrap();
        conn.set_vanity_code_for_test(server.id, owner.user_id);

        let ids = |invites: Vec<invite_store::models::Invite>| invites.into_iter().map(|i| i.id).collect::<Vec<_>>();
        // `a` has expired by now: lists still show expired and used-up invites.
        assert_eq!(ids(conn.list_invites(InviteScope::Server(server.id), None, page(1000)).unwrap()), [c.id, b.id, a.id]);
        assert_eq!(ids(conn.list_invites(InviteScope::Server(server.id), None, page(2)).unwrap()), [c.id, b.id]);
        assert_eq!(ids(conn.list_invites(InviteScope::Server(server.id), Some(c.id), page(1000)).unwrap()), [b.id, a.id]);
        assert_eq!(ids(conn.list_invites(InviteScope::Channel(channel.id), None, page(1000)).unwrap()), [b.id]);
        assert_eq!(stopped(conn.list_invites(InviteScope::Server(server.id), Some(Uuid::now_v7()), page(10))), Fact::UnknownCursor("an invite"));
    }

    fn updates_bump_the_version_and_are_audited(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"max_uses": 5}"#);
        let request: UpdateInviteRequest = serde_json::from_str(r#"{"max_uses": 8, "expires_in_hours": 1}"#).unwrap();
        let later = t0() + minutes(30);
        let updated = crate::update(conn, invite.id, &request, owner.user_id, later).unwrap();
        assert_eq!((updated.max_uses, updated.max_age, updated.version), (Some(8), 3600, 2));
        assert_eq!(updated.expires_at, Some(later + chrono::Duration::hours(1)));
        assert_eq!(updated.updated_at, later);
        assert_eq!(reload(conn, &invite), updated);

        let unlimited: UpdateInviteRequest = serde_json::from_str(r#"{"max_uses": null, "max_age": 0}"#).unwrap();
        let updated = crate::update(conn, invite.id, &unlimited, owner.user_id, later).unwrap();
        assert_eq!((updated.max_uses, updated.expires_at, updated.version), (None, None, 3));

        // No change, no write: the version stays.
        let empty: UpdateInviteRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(crate::update(conn, invite.id, &empty, owner.user_id, later).unwrap().version, 3);

        let entries = conn.list_audit_entries(server.id, None, page(10)).unwrap();
        let actions: Vec<_> = entries.iter().map(|e| e.action).collect();
        assert_eq!(actions, [AuditAction::InviteUpdate, AuditAction::InviteUpdate, AuditAction::InviteCreate]);
    }

    fn revoking_is_a_soft_delete_and_the_code_is_never_reissued(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let new = NewInvite { server_id: server.id, creator: &owner, settings: &settings("{}"), now: t0(), server_locked: false };
        let CreatedInvite::Created(invite) = conn.create_invite(&new, &mut constant(3)).unwrap() else { panic!() };

        let revoked = crate::revoke(conn, invite.id, owner.user_id, t0() + minutes(1)).unwrap();
        assert_eq!((revoked.revoked_at, revoked.version), (Some(t0() + minutes(1)), 2));
        assert_eq!(reload(conn, &invite), revoked, "the row and its code stay");
        assert!(matches!(conn.lock_invite(Uuid::now_v7()), Err(StoreError::NotFound(_))));

        // The same draw again cannot take the revoked invite's code.
        assert_eq!(stopped(conn.create_invite(&new, &mut constant(3))), Fact::CodesExhausted);

        let actions: Vec<_> = conn.list_audit_entries(server.id, None, page(10)).unwrap().iter().map(|e| e.action).collect();
        assert_eq!(actions, [AuditAction::InviteRevoke, AuditAction::InviteCreate]);
    }

    fn previews_show_the_server_and_channel_in_one_read(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let channel = conn.create_channel(server.id, &ChannelName::parse("welcome").unwrap(), t0()).unwrap();
        let invite = create_invite(conn, &server, &owner, &format!(r#"{{"channel_id": "{}"}}"#, channel.id));
        let preview = conn.preview(&crate::code_of(&invite), t0()).unwrap().unwrap();
        assert_eq!(preview.invite, invite);
        assert_eq!(preview.server_name, "Test server");
        assert_eq!(preview.member_count, 1);
        assert_eq!(preview.invites_paused, None);
        assert_eq!(preview.channel, Some((channel.id, "welcome".to_owned())));
        assert_eq!(preview.presence_count, 0, "nobody is connected");
        assert_eq!(conn.preview(&CodeRef::parse("zzzzzzzz").unwrap(), t0()).unwrap(), None);
    }

    // What `invite-loadtest verify` checks after a load: each kind of damage is found, once
    // per damaged row, by the set-based counts.
    fn the_invariants_count_each_kind_of_damage(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, "{}");
        create_invite(conn, &server, &owner, r#"{"max_uses": 2}"#);
        let joined = conn.redeem(&crate::code_of(&invite), &user(), t0()).unwrap();
        assert!(matches!(joined, invite_store::repo::Redemption::Joined(_)));
        let found = |conn: &mut DbConnection| -> Vec<i64> {
            let counts = invite_store::invariants::violations(conn).unwrap();
            counts.into_iter().map(|(_, found)| found).collect()
        };
        let damage = |conn: &mut DbConnection, sql: &str| {
            diesel::sql_query(sql).execute(conn).unwrap();
        };
        assert_eq!(found(conn), [0, 0, 0, 0, 0]);
        // A use without its member, on both invites (a use beyond max_uses the schema refuses).
        damage(conn, "UPDATE invites SET uses = uses + 1");
        assert_eq!(found(conn), [0, 2, 0, 0, 0]);
        damage(conn, "UPDATE invites SET uses = uses - 1");
        assert_eq!(found(conn), [0, 0, 0, 0, 0]);
        // A member gone without its use given back, then the use given back too.
        damage(conn, "DELETE FROM members WHERE source = 'invite'");
        assert_eq!(found(conn), [0, 1, 0, 1, 0]);
        damage(conn, "UPDATE invites SET uses = 0");
        assert_eq!(found(conn), [0, 0, 0, 1, 0], "the server still counts its member");
        damage(conn, "UPDATE servers SET member_count = 1, active_invites = 3");
        assert_eq!(found(conn), [0, 0, 0, 0, 1]);
    }
}

/// Gives a server a vanity invite, for tests that need one in the way.
trait VanityForTest {
    fn set_vanity_code_for_test(
        &mut self,
        server_id: Uuid,
        actor: Uuid,
    ) -> invite_store::models::Invite;
}

impl VanityForTest for DbConnection {
    fn set_vanity_code_for_test(
        &mut self,
        server_id: Uuid,
        actor: Uuid,
    ) -> invite_store::models::Invite {
        let random_part = &Uuid::now_v7().simple().to_string()[14..];
        let code = invite_core::code::VanityCode::parse(&format!("v-{random_part}")).unwrap();
        self.set_vanity_code(server_id, Some(&code), actor, t0()).unwrap().unwrap()
    }
}
