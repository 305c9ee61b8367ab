//! Raid protection (contract section 11): the setting, the window counted on the server's row
//! by every path a join takes (a single accept, a set-based batch, SQLite's), the pause with its
//! audit entry and event in the join's transaction, and racing joins admitted no further than
//! the threshold.

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, Utc};
use invite_core::audit::AuditAction;
use invite_core::code::CodeRef;
use invite_core::event::{Event, InvitesPaused};
use invite_core::raid::{RaidProtection, RaidWindow};
use invite_core::redeem::{InvitesPause, RedemptionRefused};
use invite_core::server::PageLimit;
use invite_store::DbConnection;
use invite_store::models::{AuditEntry, Server};
use invite_store::repo::{Actor, Redemption, StoredEvent};
use invite_store::testing::TestDatabase;

use crate::batch::commit_at;
use crate::concurrency::racing_pool;
use crate::{
    code_of, conformance, create_invite, membership_counts, owned_server, reload, t0, user,
};

fn seconds(n: i64) -> Duration {
    Duration::seconds(n)
}

fn protect(conn: &mut DbConnection, server: &Server, joins: i64, window: i64, pause: i64) {
    let protection = RaidProtection::new(joins, window, pause).unwrap();
    conn.set_raid_protection(server.id, Some(protection), t0()).unwrap();
}

fn join(conn: &mut DbConnection, code: &CodeRef, now: DateTime<Utc>) -> Redemption {
    conn.redeem(code, &user(), now).unwrap()
}

fn refusal(redemption: &Redemption) -> Option<RedemptionRefused> {
    match redemption {
        Redemption::Refused(reason) => Some(*reason),
        Redemption::Joined(_) | Redemption::Filed(_) => None,
    }
}

/// The pause event a join returned, if it tripped the protection.
fn raid_pause(redemption: &Redemption) -> Option<&StoredEvent> {
    match redemption {
        Redemption::Joined(joined) => joined.raid_pause.as_ref(),
        Redemption::Refused(_) | Redemption::Filed(_) => None,
    }
}

fn pauses_in_audit(conn: &mut DbConnection, server: &Server) -> Vec<AuditEntry> {
    let page = PageLimit::parse(Some(100), 100, 100).unwrap();
    let entries = conn.list_audit_entries(server.id, None, page).unwrap();
    entries.into_iter().filter(|entry| entry.action == AuditAction::InvitesPause).collect()
}

fn stored_events(conn: &mut DbConnection, server: &Server) -> Vec<StoredEvent> {
    conn.server_events(server.id, 0, 1000).unwrap()
}

fn paused(conn: &mut DbConnection, server: &Server) -> Option<InvitesPause> {
    conn.find_server(server.id).unwrap().unwrap().invites_paused
}

conformance! {
    fn raid_protection_is_stored_and_turned_off(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (_, server) = owned_server(conn);
        assert_eq!(conn.raid_protection(server.id).unwrap(), (None, RaidWindow::default()));
        protect(conn, &server, 5, 60, 600);
        let expected = RaidProtection::new(5, 60, 600).unwrap();
        assert_eq!(conn.raid_protection(server.id).unwrap(), (Some(expected), RaidWindow::default()));
        conn.set_raid_protection(server.id, None, t0()).unwrap();
        assert_eq!(conn.raid_protection(server.id).unwrap(), (None, RaidWindow::default()));
        let unknown = conn.raid_protection(uuid::Uuid::now_v7());
        assert!(matches!(unknown, Err(invite_store::StoreError::NotFound(_))), "{unknown:?}");
    }

    fn the_join_that_reaches_the_threshold_is_admitted_and_pauses_the_invites(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        // Two invites: every join counts, whichever it came through.
        let first = code_of(&create_invite(conn, &server, &owner, "{}"));
        let second = code_of(&create_invite(conn, &server, &owner, "{}"));
        protect(conn, &server, 3, 60, 600);

        let one = join(conn, &first, t0() + seconds(1));
        assert!(refusal(&one).is_none() && raid_pause(&one).is_none());
        assert_eq!(conn.raid_protection(server.id).unwrap().1, RaidWindow { started_at: Some(t0() + seconds(1)), joins: 1 });
        let two = join(conn, &second, t0() + seconds(30));
        assert!(refusal(&two).is_none() && raid_pause(&two).is_none());
        assert_eq!(conn.raid_protection(server.id).unwrap().1, RaidWindow { started_at: Some(t0() + seconds(1)), joins: 2 });

        let third = join(conn, &first, t0() + seconds(60));
        let Redemption::Joined(joined) = &third else { panic!("{third:?}") };
        let until = t0() + seconds(660);
        let pause = joined.raid_pause.clone().expect("the third join pauses the invites");
        assert_eq!(pause.event, Event::InvitesPause(InvitesPaused { server_id: server.id, until: Some(until) }));
        assert_eq!(pause.seq, joined.event.seq + 1);
        // What the database holds: the pause, the closed window, the audit entry, the events.
        assert_eq!(paused(conn, &server), Some(InvitesPause::Until(until)));
        assert_eq!(conn.raid_protection(server.id).unwrap().1, RaidWindow::default());
        let entries = pauses_in_audit(conn, &server);
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].actor_id, entries[0].target_id), (None, Some(server.id)));
        assert_eq!(entries[0].details, serde_json::json!({"reason": "raid", "joins": 3, "window_seconds": 60}));
        let events = stored_events(conn, &server);
        let last = events.last().unwrap();
        assert_eq!((last.seq, &last.event), (pause.seq, &pause.event));
        assert_eq!(membership_counts(conn, server.id), (4, 4));

        // Paused: refused, nothing consumed.
        assert_eq!(refusal(&join(conn, &second, t0() + seconds(100))), Some(RedemptionRefused::Paused));
        assert_eq!(membership_counts(conn, server.id), (4, 4));
        // Once the pause ends, the count starts afresh.
        let after = join(conn, &second, until);
        assert!(refusal(&after).is_none() && raid_pause(&after).is_none());
        assert_eq!(conn.raid_protection(server.id).unwrap().1, RaidWindow { started_at: Some(until), joins: 1 });
        assert_eq!(pauses_in_audit(conn, &server).len(), 1);
    }

    fn a_window_that_runs_out_or_a_lifted_pause_starts_the_count_afresh(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let code = code_of(&create_invite(conn, &server, &owner, "{}"));
        protect(conn, &server, 3, 60, 600);
        for at in [0, 59] {
            assert!(refusal(&join(conn, &code, t0() + seconds(at))).is_none());
        }
        // At exactly a window's length after its first join, a new window opens.
        let fresh = join(conn, &code, t0() + seconds(60));
        assert!(raid_pause(&fresh).is_none());
        assert_eq!(conn.raid_protection(server.id).unwrap().1, RaidWindow { started_at: Some(t0() + seconds(60)), joins: 1 });
        join(conn, &code, t0() + seconds(61));
        assert!(raid_pause(&join(conn, &code, t0() + seconds(62))).is_some());

        // Lifted early: the window is closed, and the next joins count from one.
        conn.set_invites_pause(server.id, None, owner.user_id, t0() + seconds(70)).unwrap();
        assert_eq!(conn.raid_protection(server.id).unwrap().1, RaidWindow::default());
        for at in [71, 72] {
            let joined = join(conn, &code, t0() + seconds(at));
            assert!(refusal(&joined).is_none() && raid_pause(&joined).is_none());
        }
        // A new setting counts from the next join too.
        protect(conn, &server, 3, 60, 600);
        assert_eq!(conn.raid_protection(server.id).unwrap().1, RaidWindow::default());
        // Turned off, nothing is counted.
        conn.set_raid_protection(server.id, None, t0()).unwrap();
        for at in 80..85 {
            assert!(raid_pause(&join(conn, &code, t0() + seconds(at))).is_none());
        }
        assert_eq!(conn.raid_protection(server.id).unwrap().1, RaidWindow::default());
        assert_eq!(paused(conn, &server), None);
        // A server without protection pays no pause for any number of joins.
        assert_eq!(pauses_in_audit(conn, &server).len(), 1);
    }

    fn a_batch_admits_what_the_window_has_room_for(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let first_invite = create_invite(conn, &server, &owner, "{}");
        let second_invite = create_invite(conn, &server, &owner, r#"{"max_uses": 1}"#);
        let (first, second) = (code_of(&first_invite), code_of(&second_invite));
        protect(conn, &server, 4, 60, 600);
        assert!(refusal(&join(conn, &first, t0())).is_none());

        // Seven joins at once, the window holding one: three are admitted (the second invite's
        // second use refused as used up before the window counts it), the last admitted pauses.
        let actors: Vec<Actor> = (0..7).map(|_| user()).collect();
        let codes = [&first, &second, &second, &first, &first, &first, &first];
        let batch: Vec<(&CodeRef, &Actor)> = codes.iter().copied().zip(&actors).collect();
        let outcomes = commit_at(conn, &batch, t0() + seconds(5));
        let reasons: Vec<_> = outcomes.iter().map(refusal).collect();
        let paused_reason = Some(RedemptionRefused::Paused);
        assert_eq!(
            reasons,
            [None, None, Some(RedemptionRefused::MaxedOut), None, paused_reason, paused_reason, paused_reason]
        );
        let pauses: Vec<_> = outcomes.iter().map(|outcome| raid_pause(outcome).is_some()).collect();
        assert_eq!(pauses, [false, false, false, true, false, false, false]);
        assert_eq!(paused(conn, &server), Some(InvitesPause::Until(t0() + seconds(605))));
        assert_eq!(pauses_in_audit(conn, &server).len(), 1);
        let events = stored_events(conn, &server);
        let types: Vec<&str> = events.iter().map(|event| event.event.kind().as_str()).collect();
        assert_eq!(types.iter().filter(|kind| **kind == "INVITES_PAUSE").count(), 1);
        assert_eq!(types.last(), Some(&"INVITES_PAUSE"));
        assert_eq!(membership_counts(conn, server.id), (5, 5));
        assert_eq!((reload(conn, &first_invite).uses, reload(conn, &second_invite).uses), (3, 1));
    }

    fn racing_batches_and_single_joins_admit_exactly_the_threshold(db: &TestDatabase) {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 10;
        const JOINS: i64 = 20;
        let pool = racing_pool(db);
        let conn = &mut db.connect();
        for round in 0..3 {
            let (owner, server) = owned_server(conn);
            let codes: Vec<CodeRef> = (0..2).map(|_| code_of(&create_invite(conn, &server, &owner, "{}"))).collect();
            protect(conn, &server, JOINS, 60, 600);
            let barrier = Arc::new(Barrier::new(THREADS));
            let handles: Vec<_> = (0..THREADS).map(|thread| {
                let (pool, barrier, codes) = (pool.clone(), barrier.clone(), codes.clone());
                std::thread::spawn(move || {
                    let actors: Vec<Actor> = (0..PER_THREAD).map(|_| user()).collect();
                    barrier.wait();
                    let now = t0() + seconds(1);
                    if thread % 2 == 0 {
                        // Batches of five: one statement each on PostgreSQL.
                        actors.chunks(5).flat_map(|few| {
                            let batch: Vec<(&CodeRef, &Actor)> = few.iter().enumerate().map(|(i, actor)| (&codes[i % 2], actor)).collect();
                            pool.run(|conn| Ok(commit_at(conn, &batch, now))).unwrap()
                        }).collect::<Vec<_>>()
                    } else {
                        actors.iter().enumerate().map(|(i, actor)| {
                            pool.run(|conn| conn.redeem(&codes[i % 2], actor, now)).unwrap()
                        }).collect()
                    }
                })
            }).collect();
            let outcomes: Vec<Redemption> = handles.into_iter().flat_map(|handle| handle.join().unwrap()).collect();
            let admitted = outcomes.iter().filter(|outcome| refusal(outcome).is_none()).count();
            let refused_paused = outcomes.iter().filter(|outcome| refusal(outcome) == Some(RedemptionRefused::Paused)).count();
            let trips = outcomes.iter().filter(|outcome| raid_pause(outcome).is_some()).count();
            let total = THREADS * PER_THREAD;
            assert_eq!((admitted, refused_paused, trips), (20, total - 20, 1), "round {round}");
            assert_eq!(membership_counts(conn, server.id), (JOINS + 1, JOINS + 1), "round {round}");
            assert_eq!(paused(conn, &server), Some(InvitesPause::Until(t0() + seconds(601))), "round {round}");
            assert_eq!(pauses_in_audit(conn, &server).len(), 1, "round {round}");
            let events = stored_events(conn, &server);
            let pauses = events.iter().filter(|event| matches!(event.event, Event::InvitesPause(_))).count();
            let joins = events.iter().filter(|event| matches!(event.event, Event::MemberJoin(_))).count();
            assert_eq!((pauses, joins), (1, 20), "round {round}");
            assert!(matches!(events.last().unwrap().event, Event::InvitesPause(_)), "round {round}: the pause follows every join");
        }
    }
}
