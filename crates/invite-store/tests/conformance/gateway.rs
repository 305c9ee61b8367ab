//! Gateway sessions: the per-user cap, renewal and lapse, presence, and which temporary members
//! are due for removal.

use chrono::Duration;
use invite_core::permissions::Permissions;
use invite_store::DbConnection;
use invite_store::repo::NewSession;
use invite_store::testing::TestDatabase;
use uuid::Uuid;

use crate::{
    code_of, conformance, create_invite, create_server, minutes, server_with_invite, t0, user,
};

fn session(user_id: Uuid, instance_id: Uuid, expires_in: Duration) -> NewSession {
    NewSession { id: Uuid::now_v7(), user_id, instance_id, expires_at: t0() + expires_in }
}

conformance! {
    fn sessions_are_capped_per_user_among_the_live_ones(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (someone, instance) = (Uuid::now_v7(), Uuid::now_v7());
        let first = session(someone, instance, minutes(1));
        assert!(conn.open_session(first, t0(), 2).unwrap());
        assert!(conn.open_session(session(someone, Uuid::now_v7(), minutes(1)), t0(), 2).unwrap());
        assert!(!conn.open_session(session(someone, instance, minutes(1)), t0(), 2).unwrap(), "a third");
        assert!(conn.open_session(session(Uuid::now_v7(), instance, minutes(1)), t0(), 2).unwrap(), "another user");
        // An ended session frees its place; so does one that lapsed.
        conn.close_session(first.id, t0()).unwrap();
        assert!(conn.open_session(session(someone, instance, minutes(1)), t0(), 2).unwrap());
        assert!(conn.open_session(session(someone, instance, minutes(1)), t0() + minutes(2), 2).unwrap());
    }

    fn renewal_keeps_an_instances_live_sessions_only(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (_, _, invite) = server_with_invite(conn, "{}");
        let (here, elsewhere) = (Uuid::now_v7(), Uuid::now_v7());
        let (a, b, c) = (user(), user(), user());
        for member in [&a, &b, &c] {
            conn.redeem(&code_of(&invite), member, t0()).unwrap();
        }
        let live = session(a.user_id, here, Duration::seconds(30));
        let ended = session(b.user_id, here, Duration::seconds(30));
        let other = session(c.user_id, elsewhere, Duration::seconds(30));
        // a twice (counted once), and someone who is not a member (not counted).
        let twice = session(a.user_id, elsewhere, Duration::seconds(30));
        let stranger = session(user().user_id, elsewhere, Duration::seconds(30));
        for row in [live, ended, other, twice, stranger] {
            assert!(conn.open_session(row, t0(), 10).unwrap());
        }
        // A preview reads the count with the invite, in its one statement.
        let previewed = |conn: &mut DbConnection, at| conn.preview(&code_of(&invite), at).unwrap().unwrap().presence_count;
        // The owner has no session; a, b and c are connected.
        assert_eq!(previewed(conn, t0()), 3);
        conn.close_session(ended.id, t0() + Duration::seconds(5)).unwrap();
        let renewed = conn
            .renew_sessions(here, t0() + Duration::seconds(10), t0() + Duration::seconds(40))
            .unwrap();
        assert_eq!(renewed, 1, "the ended one stays ended");
        // At 35 s the sessions on the other instance have lapsed (not renewed); ours lives.
        assert_eq!(previewed(conn, t0() + Duration::seconds(35)), 1);
        // A stopping instance ends its sessions at once.
        assert_eq!(conn.end_instance_sessions(here, t0() + Duration::seconds(36)).unwrap(), 1);
        assert_eq!(previewed(conn, t0() + Duration::seconds(36)), 0);
        // Rows of sessions long ended go: the ended one and the three that lapsed elsewhere.
        assert_eq!(conn.purge_sessions(t0() + Duration::seconds(34)).unwrap(), 4);
    }

    fn temporary_members_are_due_once_gone_for_the_grace_period(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, temporary) = server_with_invite(conn, r#"{"temporary": true}"#);
        let permanent = create_invite(conn, &server, &owner, "{}");
        let (gone, connected, never, promoted, regular) = (user(), user(), user(), user(), user());
        for member in [&gone, &connected, &never, &promoted] {
            conn.redeem(&code_of(&temporary), member, t0()).unwrap();
        }
        conn.redeem(&code_of(&permanent), &regular, t0()).unwrap();
        conn.set_member_permissions(server.id, promoted.user_id, Permissions::CREATE_INVITES, t0()).unwrap();
        let instance = Uuid::now_v7();
        let left = session(gone.user_id, instance, minutes(10));
        conn.open_session(left, t0(), 10).unwrap();
        conn.open_session(session(connected.user_id, instance, minutes(10)), t0(), 10).unwrap();
        conn.close_session(left.id, t0() + minutes(1)).unwrap();
        let grace = minutes(1);

        // At 1:30: the one who left has been gone 30 s; the one who never connected joined 90 s ago.
        let due = conn.lapsed_temporary_members(t0() + Duration::seconds(90), grace, 100).unwrap();
        assert_eq!(due, [(server.id, never.user_id)]);
        // At 2:01 the one who left is due too; the connected one, the promoted one (no longer
        // temporary) and the regular member never are.
        let due = conn.lapsed_temporary_members(t0() + Duration::seconds(121), grace, 100).unwrap();
        let mut expected = vec![(server.id, gone.user_id), (server.id, never.user_id)];
        expected.sort();
        let mut due = due;
        due.sort();
        assert_eq!(due, expected);
        assert!(conn.is_lapsed_temporary_member(server.id, gone.user_id, t0() + Duration::seconds(121), grace).unwrap());
        assert!(!conn.is_lapsed_temporary_member(server.id, connected.user_id, t0() + Duration::seconds(121), grace).unwrap());
        assert!(!conn.is_lapsed_temporary_member(server.id, promoted.user_id, t0() + minutes(30), grace).unwrap());
        assert!(!conn.find_member(server.id, promoted.user_id).unwrap().unwrap().temporary);
        // Coming back within the grace period keeps the membership.
        conn.open_session(session(gone.user_id, instance, minutes(10)), t0() + Duration::seconds(100), 10).unwrap();
        assert!(!conn.is_lapsed_temporary_member(server.id, gone.user_id, t0() + Duration::seconds(121), grace).unwrap());
    }

    fn member_servers_reads_a_burst_of_users_at_once(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, guest, stranger) = (user(), user(), user());
        let first = create_server(conn, &owner);
        let second = create_server(conn, &owner);
        let invite = create_invite(conn, &second, &owner, "{}");
        conn.redeem(&code_of(&invite), &guest, t0()).unwrap();
        let found = conn.member_servers(&[owner.user_id, guest.user_id, stranger.user_id]).unwrap();
        let of = |who: Uuid| -> Vec<(Uuid, bool)> {
            found.iter().filter(|(user_id, _)| *user_id == who).map(|(_, s)| (s.id, s.standing.is_owner)).collect()
        };
        let mut owned = vec![(first.id, true), (second.id, true)];
        owned.sort();
        assert_eq!(of(owner.user_id), owned);
        assert_eq!(of(guest.user_id), [(second.id, false)]);
        assert!(of(stranger.user_id).is_empty());
        let guest_standing = found.iter().find(|(user_id, _)| *user_id == guest.user_id).unwrap().1.standing;
        assert_eq!(guest_standing.default_permissions, second.default_permissions);
        assert_eq!(guest_standing.member_permissions, Permissions::empty());
    }
}
