//! Per-invite analytics (contract section 11): joins and departures folded in from the outbox
//! behind one cursor (never twice, whichever path wrote the join, however many folds race),
//! previews and refusals added in batches, and the reads that roll them up.

use std::sync::{Arc, Barrier};

use chrono::Duration;
use diesel::prelude::*;
use invite_core::event::{Event, MemberRemoved, RemovalReason};
use invite_core::stats::{InviteStats, InviteSummary, day_date, day_number, first_shown_day};
use invite_store::DbConnection;
use invite_store::repo::{PreviewCount, RefusalCount, Removal};
use invite_store::testing::TestDatabase;
use uuid::Uuid;

use crate::batch::commit_at;
use crate::concurrency::racing_pool;
use crate::{code_of, conformance, create_invite, owned_server, t0, user};

/// Folds everything committed so far.
fn fold_all(conn: &mut DbConnection) {
    let latest = conn.latest_seq().unwrap();
    while conn.fold_stats(latest, 1000).unwrap().more {}
}

/// Removes the member as the operations layer does: the removal, and its event naming the
/// invite they had joined through.
fn leave(conn: &mut DbConnection, server_id: Uuid, user_id: Uuid) {
    invite_store::write_transaction(conn, |conn| {
        let invite_id = conn.remove_member(server_id, user_id, Removal::Leave, t0())?;
        let reason = RemovalReason::Leave;
        let event = Event::MemberRemove(MemberRemoved { server_id, user_id, reason, invite_id });
        conn.append_events(&[event], t0())
    })
    .unwrap();
}

/// Rows of the roll-up tables: what a read must never need more of than the days it shows.
fn roll_up_rows(conn: &mut DbConnection, invite_id: Uuid) -> i64 {
    use invite_store::schema::invite_joins_daily;
    invite_joins_daily::table
        .filter(invite_joins_daily::invite_id.eq(invite_store::sql_types::Id(invite_id)))
        .count()
        .get_result(conn)
        .unwrap()
}

/// Runs this migration's `down.sql` then `up.sql` again: as if it were applied now, over what
/// the tables hold.
fn apply_analytics_migration_again(conn: &mut DbConnection) {
    use diesel::connection::SimpleConnection as _;
    let (down, up) = match conn {
        DbConnection::Postgres(_) => (
            include_str!("../../../../migrations/postgres/2026-12-08-000002_invite_stats/down.sql"),
            include_str!("../../../../migrations/postgres/2026-12-08-000002_invite_stats/up.sql"),
        ),
        DbConnection::Sqlite(_) => (
            include_str!("../../../../migrations/sqlite/2026-12-08-000002_invite_stats/down.sql"),
            include_str!("../../../../migrations/sqlite/2026-12-08-000002_invite_stats/up.sql"),
        ),
    };
    conn.batch_execute(down).unwrap();
    conn.batch_execute(up).unwrap();
}

conformance! {
    fn joins_and_departures_fold_into_counters_and_daily_roll_ups(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let first = create_invite(conn, &server, &owner, "{}");
        let second = create_invite(conn, &server, &owner, "{}");
        let (a, b, c, d) = (user(), user(), user(), user());
        let tomorrow = t0() + Duration::days(1);
        // One alone, two in one batch (on PostgreSQL, the set-based statement), one the next day.
        conn.redeem(&code_of(&first), &a, t0()).unwrap();
        commit_at(conn, &[(&code_of(&first), &b), (&code_of(&second), &c)], t0());
        conn.redeem(&code_of(&first), &d, tomorrow).unwrap();
        leave(conn, server.id, a.user_id);
        // The owner joined through nothing; their departure would count against nothing.
        assert_eq!(conn.stats_folded_through().unwrap(), 0);
        fold_all(conn);
        assert_eq!(conn.stats_folded_through().unwrap(), conn.latest_seq().unwrap());

        let stats = conn.invite_stats(first.id, first_shown_day(tomorrow)).unwrap();
        assert_eq!((stats.previews, stats.accepts, stats.retained), (0, 3, 2));
        assert_eq!(
            stats.joins_per_day,
            vec![(t0().date_naive(), 2), (tomorrow.date_naive(), 1)]
        );
        assert!(stats.refusals.is_empty());
        assert_eq!(roll_up_rows(conn, first.id), 2);

        let totals = conn.server_stats(server.id, first_shown_day(tomorrow), 100).unwrap();
        assert_eq!((totals.totals.accepts, totals.totals.retained), (4, 3));
        assert_eq!(
            totals.totals.joins_per_day,
            vec![(t0().date_naive(), 3), (tomorrow.date_naive(), 1)]
        );
        let top: Vec<(Uuid, i64, i64)> =
            totals.invites.iter().map(|i| (i.invite_id, i.accepts, i.retained)).collect();
        assert_eq!(top, vec![(first.id, 3, 2), (second.id, 1, 1)]);
        assert_eq!(totals.invites[0].code, first.code);

        // Folding again finds nothing new: nothing is counted twice.
        fold_all(conn);
        assert_eq!(conn.invite_stats(first.id, first_shown_day(tomorrow)).unwrap(), stats);
    }

    fn a_fold_goes_no_further_than_asked_and_resumes_from_its_cursor(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let invite = create_invite(conn, &server, &owner, "{}");
        let seqs: Vec<i64> = (0..3)
            .map(|_| match conn.redeem(&code_of(&invite), &user(), t0()).unwrap() {
                invite_store::repo::Redemption::Joined(joined) => joined.event.seq,
                other => panic!("{other:?}"),
            })
            .collect();
        let accepts = |conn: &mut DbConnection| conn.invite_stats(invite.id, 0).unwrap().accepts;
        // Up to the second join, one event at a time.
        let folded = conn.fold_stats(seqs[1], 1).unwrap();
        assert_eq!((folded.through, folded.events, folded.more), (seqs[0], 1, true));
        assert_eq!(accepts(conn), 1);
        let folded = conn.fold_stats(seqs[1], 1).unwrap();
        assert_eq!((folded.through, folded.events), (seqs[1], 1));
        let folded = conn.fold_stats(seqs[1], 1).unwrap();
        assert_eq!((folded.through, folded.events, folded.more), (seqs[1], 0, false));
        assert_eq!(accepts(conn), 2);
        // A horizon behind the cursor (another instance's, which read less) changes nothing.
        assert_eq!(conn.fold_stats(seqs[0], 10).unwrap().through, seqs[1]);
        let folded = conn.fold_stats(seqs[2], 10).unwrap();
        assert_eq!((folded.through, folded.events, folded.more), (seqs[2], 1, false));
        assert_eq!(accepts(conn), 3);
    }

    fn previews_and_refusals_add_up_in_batches(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let first = create_invite(conn, &server, &owner, "{}");
        let second = create_invite(conn, &server, &owner, "{}");
        let previews = |invite: &invite_store::models::Invite, n| PreviewCount {
            invite_id: invite.id,
            server_id: server.id,
            previews: n,
        };
        conn.add_previews(&[previews(&first, 5), previews(&second, 2)]).unwrap();
        conn.add_previews(&[previews(&first, 3)]).unwrap();
        let refused = |code: &str, error, n| RefusalCount { code: code.to_owned(), error, refusals: n };
        let (first_code, second_code) = (first.code.clone().unwrap(), second.code.clone().unwrap());
        let written = conn
            .add_refusals(&[
                refused(&first_code, "INVITE_MAXED_OUT", 2),
                refused(&first_code, "BANNED", 1),
                refused(&second_code, "INVITE_MAXED_OUT", 4),
                // A code no invite has: nobody's to count.
                refused("zzzzzzzz", "INVITE_EXPIRED", 9),
            ])
            .unwrap();
        assert_eq!(written, 3);
        conn.add_refusals(&[refused(&first_code, "INVITE_MAXED_OUT", 1)]).unwrap();

        let stats = conn.invite_stats(first.id, 0).unwrap();
        assert_eq!((stats.previews, stats.accepts, stats.retained), (8, 0, 0));
        let refusals: Vec<(&str, i64)> =
            stats.refusals.iter().map(|(code, n)| (code.as_str(), *n)).collect();
        assert_eq!(refusals, vec![("BANNED", 1), ("INVITE_MAXED_OUT", 3)]);
        let totals = conn.server_stats(server.id, 0, 100).unwrap().totals;
        assert_eq!(totals.previews, 10);
        let refusals: Vec<(&str, i64)> =
            totals.refusals.iter().map(|(code, n)| (code.as_str(), *n)).collect();
        assert_eq!(refusals, vec![("BANNED", 1), ("INVITE_MAXED_OUT", 7)]);
        // An invite nothing happened to reads as zeros.
        let (_, other) = owned_server(conn);
        let quiet = create_invite(conn, &other, &owner, "{}");
        assert_eq!(conn.invite_stats(quiet.id, 0).unwrap(), InviteStats::default());
    }

    fn joins_per_day_shows_the_days_asked_for_and_the_top_ties_by_id(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let invites: Vec<_> = (0..3).map(|_| create_invite(conn, &server, &owner, "{}")).collect();
        let long_ago = t0() - Duration::days(40);
        conn.redeem(&code_of(&invites[0]), &user(), long_ago).unwrap();
        conn.redeem(&code_of(&invites[0]), &user(), t0()).unwrap();
        conn.redeem(&code_of(&invites[1]), &user(), t0()).unwrap();
        fold_all(conn);
        let stats = conn.invite_stats(invites[0].id, first_shown_day(t0())).unwrap();
        assert_eq!((stats.accepts, stats.joins_per_day.clone()), (2, vec![(t0().date_naive(), 1)]));
        assert_eq!(day_date(day_number(long_ago)), long_ago.date_naive());
        // Two at one accept each: the smaller id first; one with none is not listed at all.
        let top = conn.server_stats(server.id, first_shown_day(t0()), 2).unwrap().invites;
        let ids: Vec<Uuid> = top.iter().map(|summary: &InviteSummary| summary.invite_id).collect();
        assert_eq!(ids, vec![invites[0].id, invites[1].id]);
        let one = conn.server_stats(server.id, first_shown_day(t0()), 1).unwrap().invites;
        assert_eq!(one.len(), 1);
    }

    fn racing_folds_count_every_join_once(db: &TestDatabase) {
        const FOLDERS: usize = 4;
        let pool = racing_pool(db);
        let mut conn = pool.get().unwrap();
        let (owner, server) = owned_server(&mut conn);
        let invite = create_invite(&mut conn, &server, &owner, "{}");
        for _ in 0..20 {
            conn.redeem(&code_of(&invite), &user(), t0()).unwrap();
        }
        let latest = conn.latest_seq().unwrap();
        drop(conn);
        let barrier = Arc::new(Barrier::new(FOLDERS));
        let handles: Vec<_> = (0..FOLDERS)
            .map(|_| {
                let (pool, barrier) = (pool.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut conn = pool.get().unwrap();
                    while conn.fold_stats(latest, 3).unwrap().more {}
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let mut conn = pool.get().unwrap();
        let stats = conn.invite_stats(invite.id, 0).unwrap();
        assert_eq!((stats.accepts, stats.retained), (20, 20));
        assert_eq!(stats.joins_per_day, vec![(t0().date_naive(), 20)]);
    }

    fn the_migration_starts_the_counters_from_what_the_tables_hold(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server) = owned_server(conn);
        let invite = create_invite(conn, &server, &owner, "{}");
        // Within the migration's 30 days of the database's own clock.
        let yesterday = chrono::Utc::now() - Duration::days(1);
        let joiners: Vec<_> = (0..3).map(|_| user()).collect();
        for joiner in &joiners {
            conn.redeem(&code_of(&invite), joiner, yesterday).unwrap();
        }
        leave(conn, server.id, joiners[0].user_id);
        apply_analytics_migration_again(conn);

        // Its uses are its accepts; its members still there, its retained and its days.
        let stats = conn.invite_stats(invite.id, first_shown_day(chrono::Utc::now())).unwrap();
        assert_eq!((stats.accepts, stats.retained), (3, 2));
        assert_eq!(stats.joins_per_day, vec![(yesterday.date_naive(), 2)]);
        // The events already written are behind the cursor: nothing counts twice.
        assert_eq!(conn.stats_folded_through().unwrap(), conn.latest_seq().unwrap());
        fold_all(conn);
        assert_eq!(conn.invite_stats(invite.id, 0).unwrap().accepts, 3);
    }
}
