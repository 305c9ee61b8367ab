//! Idempotency records, the maintenance switch, a connection lost under a transaction, and the
//! outbox readers' horizon.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use invite_core::event::{Event, InvitesResumed};
use invite_store::repo::{
    EventHorizon, IdempotencyClaim, JoinResponseTemplate, Keyed, PriorResponse, RecordedResponse,
    Redemption, keyed, recorded,
};
use invite_store::testing::TestDatabase;
use invite_store::{Constraint, StoreError};
use uuid::Uuid;

use crate::{
    code_of, conformance, create_server, minutes, owned_server, server_with_invite, t0, user,
};

const JOINED: JoinResponseTemplate<'static> =
    JoinResponseTemplate { status: 201, before: "{\"server_id\":\"", after: "\"}" };

fn claim(user_id: Uuid, key: &str) -> IdempotencyClaim {
    IdempotencyClaim { user_id, key: key.to_owned(), fingerprint: "f1".to_owned() }
}

fn response(body: &str) -> RecordedResponse {
    RecordedResponse { status: 201, body: body.to_owned(), etag: Some("\"1\"".to_owned()) }
}

conformance! {
    fn a_join_commits_with_its_record(db: &TestDatabase) {
        let conn = &mut db.connect();
        let (owner, server, invite) = server_with_invite(conn, r#"{"max_uses": 5}"#);
        let guest = user();
        let key = claim(guest.user_id, "join");
        let joined = conn.redeem_recorded(&code_of(&invite), &guest, t0(), &key, &JOINED).unwrap();
        assert!(matches!(joined, Redemption::Joined(_)), "{joined:?}");
        let body = format!("{{\"server_id\":\"{}\"}}", server.id);
        assert_eq!(
            conn.prior_response(&key, t0()).unwrap(),
            PriorResponse::Replay(RecordedResponse { status: 201, body: body.clone(), etag: None })
        );
        // The retry is the record, not a second attempt (which would say "already a member").
        let retry = keyed(conn, &key, t0(), |conn| {
            conn.redeem_recorded(&code_of(&invite), &guest, t0(), &key, &JOINED)
        }, |redemption| matches!(redemption, Redemption::Joined(_))).unwrap();
        assert_eq!(retry, Keyed::Replay(RecordedResponse { status: 201, body, etag: None }));
        assert_eq!(conn.find_invite(invite.id).unwrap().unwrap().uses, 1);
        // A refusal records nothing.
        let late = user();
        let late_key = claim(late.user_id, "late");
        conn.set_invites_pause(server.id, Some(invite_core::redeem::InvitesPause::Indefinitely), owner.user_id, t0()).unwrap();
        let refused = conn.redeem_recorded(&code_of(&invite), &late, t0(), &late_key, &JOINED).unwrap();
        assert!(matches!(refused, Redemption::Refused(_)), "{refused:?}");
        assert_eq!(conn.prior_response(&late_key, t0()).unwrap(), PriorResponse::None);
    }

    fn a_write_commits_with_its_record_or_not_at_all(db: &TestDatabase) {
        let conn = &mut db.connect();
        let owner = user();
        let key = claim(owner.user_id, "create");
        let first = recorded(conn, &key, t0(), |conn| Ok::<_, StoreError>(create_server(conn, &owner)), |server| response(&server.id.to_string())).unwrap();
        let Keyed::Fresh((first, _)) = first else { panic!("{first:?}") };
        let again = recorded(conn, &key, t0(), |_| -> invite_store::StoreResult<()> { panic!("the work must not run again") }, |()| response("x")).unwrap();
        assert_eq!(again, Keyed::Replay(first));
        // Another request under the key is refused; the work fails: nothing is kept.
        let other = IdempotencyClaim { fingerprint: "f2".to_owned(), ..key.clone() };
        let refused = recorded(conn, &other, t0(), |conn| Ok::<_, StoreError>(create_server(conn, &owner)), |_| response("y"));
        assert!(matches!(refused, Err(StoreError::Stopped(invite_store::Fact::KeyReused))), "{refused:?}");
        let failing = claim(owner.user_id, "failing");
        let before = count_servers(conn);
        let failed = recorded(conn, &failing, t0(), |conn| {
            create_server(conn, &owner);
            Err::<(), _>(StoreError::NotFound(invite_store::Entity::Row))
        }, |()| response("z"));
        assert!(matches!(failed, Err(StoreError::NotFound(_))), "{failed:?}");
        assert_eq!(count_servers(conn), before, "the write rolled back with the failure");
        assert_eq!(conn.prior_response(&failing, t0()).unwrap(), PriorResponse::None);
    }

    fn records_answer_for_a_day_then_are_purged(db: &TestDatabase) {
        let conn = &mut db.connect();
        let owner = user();
        let old = claim(owner.user_id, "old");
        let fresh = claim(owner.user_id, "fresh");
        conn.record_response(&old, &response("old"), t0()).unwrap();
        conn.record_response(&fresh, &response("fresh"), t0() + minutes(120)).unwrap();
        let day_later = t0() + minutes(24 * 60);
        assert_eq!(conn.prior_response(&old, day_later - minutes(1)).unwrap(), PriorResponse::Replay(response("old")));
        assert_eq!(conn.purge_idempotency_records(day_later, 1000).unwrap(), 1);
        assert_eq!(conn.prior_response(&old, day_later).unwrap(), PriorResponse::None);
        assert_eq!(conn.prior_response(&fresh, day_later).unwrap(), PriorResponse::Replay(response("fresh")));
        // An expired record not purged yet frees its key too.
        let later = t0() + minutes(26 * 60 + 1);
        assert_eq!(conn.prior_response(&fresh, later).unwrap(), PriorResponse::None);
        conn.record_response(&fresh, &response("again"), later).unwrap();
        assert_eq!(conn.prior_response(&fresh, later).unwrap(), PriorResponse::Replay(response("again")));
        // Two records under one key cannot be.
        let twin = conn.record_response(&fresh, &response("twin"), later);
        assert!(matches!(twin, Err(StoreError::Conflict(Constraint::IdempotencyKey))), "{twin:?}");
    }

    fn the_maintenance_switch_keeps_when_it_changed(db: &TestDatabase) {
        let conn = &mut db.connect();
        assert_eq!(conn.maintenance().unwrap(), None);
        let on = conn.set_maintenance(true, Some("Upgrading"), Some(t0() + minutes(30)), t0()).unwrap();
        assert_eq!((on.enabled, on.message.as_deref(), on.since), (true, Some("Upgrading"), t0()));
        assert!(on.is_active(t0()) && !on.is_active(t0() + minutes(30)));
        // A new message keeps the window's start.
        let edited = conn.set_maintenance(true, Some("Almost done"), None, t0() + minutes(5)).unwrap();
        assert_eq!((edited.since, edited.ends_at), (t0(), None));
        let off = conn.set_maintenance(false, None, None, t0() + minutes(10)).unwrap();
        assert_eq!(conn.maintenance().unwrap(), Some(off.clone()));
        assert_eq!((off.enabled, off.since), (false, t0() + minutes(10)));
    }
}

fn count_servers(conn: &mut invite_store::DbConnection) -> i64 {
    invite_store::schema::servers::table.count().get_result(conn).unwrap()
}

/// The process id of the PostgreSQL backend serving `conn`.
fn backend_pid(conn: &mut invite_store::DbConnection) -> invite_store::StoreResult<i32> {
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    Ok(diesel::sql_query("SELECT pg_backend_pid() AS pid").get_result::<Pid>(conn)?.pid)
}

/// A twin on another instance records first: this one's change rolls back, and the twin's
/// response is the answer (PostgreSQL: SQLite writers are serialised, there is no such race).
/// A replay confirms that its record is durable: it locks the record in a transaction of its
/// own, whose commit waits for the synchronous standbys (a record read from a primary that came
/// back from a crash may not be on the standby being promoted). A server that cannot take the
/// lock, read-only like a standby, answers as a database away rather than replaying.
#[test]
fn postgres_a_replay_is_confirmed_by_a_commit_of_its_own() {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let db = TestDatabase::postgres();
    let conn = &mut db.connect();
    let owner = user();
    let key = claim(owner.user_id, "durable");
    conn.record_response(&key, &response("made"), t0()).unwrap();
    let locked_by = |conn: &mut invite_store::DbConnection| -> i64 {
        diesel::sql_query(
            "SELECT xmax::text::bigint AS n FROM idempotency_records WHERE idempotency_key = 'durable'",
        )
        .get_result::<Count>(conn)
        .unwrap()
        .n
    };
    assert_eq!(locked_by(conn), 0, "recording takes no lock");
    assert_eq!(conn.prior_response(&key, t0()).unwrap(), PriorResponse::Replay(response("made")));
    assert_ne!(locked_by(conn), 0, "the replay locked its record in a transaction with an id");
    // A server in recovery refuses the lock as it refuses any write.
    conn.batch_execute("SET default_transaction_read_only = on").unwrap();
    let refused = conn.prior_response(&key, t0());
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
    // A key with no record needs no confirmation, and reads go on.
    assert_eq!(
        conn.prior_response(&claim(owner.user_id, "new"), t0()).unwrap(),
        PriorResponse::None
    );
}

#[test]
fn postgres_a_twin_that_recorded_first_wins() {
    let db = TestDatabase::postgres();
    let conn = &mut db.connect();
    let owner = user();
    let key = claim(owner.user_id, "raced");
    let before = count_servers(conn);
    let answer = recorded(
        conn,
        &key,
        t0(),
        |conn| {
            let server = create_server(conn, &owner);
            // Meanwhile, on another connection, the twin commits its record.
            db.connect().record_response(&key, &response("twin"), t0()).unwrap();
            Ok::<_, StoreError>(server)
        },
        |server| response(&server.id.to_string()),
    )
    .unwrap();
    assert_eq!(answer, Keyed::Replay(response("twin")));
    assert_eq!(count_servers(conn), before, "this one's server rolled back");
}

/// The connection dies in the middle of a write transaction (PostgreSQL stopping, a network cut):
/// the caller is told the database is unavailable, never that something else broke.
#[test]
fn postgres_a_connection_lost_mid_transaction_is_unavailable() {
    let db = TestDatabase::postgres();
    let conn = &mut db.connect();
    let (owner, server) = owned_server(conn);
    let pid = backend_pid(conn).unwrap();
    let failures = invite_store::repo::audit_write_failures();
    let settings = crate::settings("{}");
    let new = invite_store::repo::NewInvite {
        server_id: server.id,
        creator: &owner,
        settings: &settings,
        now: t0(),
        server_locked: false,
    };
    // The code is drawn inside the transaction, after the server's row is locked: the
    // connection is killed right then.
    let mut killer = db.connect();
    let mut random = |dest: &mut [u8]| {
        killer.batch_execute(&format!("SELECT pg_terminate_backend({pid})")).unwrap();
        dest.fill(7);
    };
    let result = conn.create_invite(&new, &mut random);
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    assert_eq!(invite_store::repo::audit_write_failures(), failures, "not an audit failure");
    assert!(StoreError::from(diesel::result::Error::BrokenTransactionManager).is_unavailable());
}

/// The event horizon (see `invite_store::repo::EventHorizon`): readers wait for a transaction
/// of this database that drew a `seq` and has not committed, and for nothing else the cluster
/// runs. A transaction with an id held open in another database holds the cluster's snapshot
/// `xmin` back; a horizon that followed it stopped delivering events for as long.
#[test]
fn postgres_the_event_horizon_waits_for_this_databases_writers_only() {
    let db = TestDatabase::postgres();
    let conn = &mut db.connect();
    let (server, other) = (create_server(conn, &user()), create_server(conn, &user()));
    let mut elsewhere = PgConnection::establish(&invite_store::testing::admin_url()).unwrap();
    elsewhere.batch_execute("BEGIN; SELECT pg_current_xact_id();").unwrap();
    let start = conn.latest_seq().unwrap();
    let mut horizon = EventHorizon::starting_at(start);
    assert_eq!(horizon.advance(conn.horizon_sample().unwrap()), start);
    let update = |server_id| Event::InvitesResume(InvitesResumed { server_id });
    let event = update(server.id);
    // A writer that drew a seq and is still running: the horizon stays below it.
    let mut writer = db.connect();
    writer.batch_execute("BEGIN").unwrap();
    let drawn = writer.append_events(std::slice::from_ref(&event), t0()).unwrap()[0].seq;
    assert_eq!(horizon.advance(conn.horizon_sample().unwrap()), start);
    assert!(horizon.is_waiting());
    // A later writer, of another server, commits first: still nothing past the running one.
    let later = update(other.id);
    let committed = db.connect().append_events(&[later], t0()).unwrap()[0].seq;
    assert!(horizon.advance(conn.horizon_sample().unwrap()) < drawn);
    writer.batch_execute("COMMIT").unwrap();
    // Both are readable now, in order, though the other database's transaction still runs.
    let safe = horizon.advance(conn.horizon_sample().unwrap());
    let safe =
        if safe < committed { horizon.advance(conn.horizon_sample().unwrap()) } else { safe };
    assert_eq!(safe, committed);
    let seqs: Vec<i64> =
        conn.events_between(start, safe, 10).unwrap().iter().map(|event| event.seq).collect();
    assert_eq!(seqs, vec![drawn, committed]);
    elsewhere.batch_execute("ROLLBACK").unwrap();
}

/// Every backend of the pool is terminated (an operator's `pg_terminate_backend`, a restart):
/// the connection that finds out is never handed out again, even when the code that used it
/// swallowed the error (as a batch settling each write's outcome does), and the idle ones are
/// tested before their next use, so the next piece of work succeeds at once instead of
/// meeting each dead connection in turn.
#[test]
fn postgres_connections_whose_server_is_gone_are_never_handed_out_again() {
    let db = TestDatabase::postgres();
    let pool = db.pool();
    // Fill the pool: four connections checked out at once, then back to idle.
    let held: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
    drop(held);
    let before: std::collections::HashSet<i32> =
        (0..4).map(|_| pool.run(backend_pid).unwrap()).collect();
    let mut admin = PgConnection::establish(&invite_store::testing::admin_url()).unwrap();
    let database = match db.url() {
        invite_store::DatabaseUrl::Postgres(url) => url.rsplit('/').next().unwrap().to_owned(),
        invite_store::DatabaseUrl::Sqlite(_) => unreachable!(),
    };
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
        ))
        .unwrap();
    // The first use meets a dead connection; its caller drops the error on the floor.
    let swallowed: Result<(), StoreError> = pool.run(|conn| {
        let _ = conn.batch_execute("SELECT 1");
        Ok(())
    });
    assert!(swallowed.is_ok());
    // Everything after works on the first try, on connections opened since.
    for _ in 0..8 {
        let pid = pool.run(backend_pid).expect("a live connection");
        assert!(!before.contains(&pid), "a terminated backend ({pid}) was handed out again");
    }
}

/// A PostgreSQL connection is replaced once it has served its lifetime, so that no prepared
/// statement's plan outlives it (see `invite_store::CONNECTION_LIFETIME`): a statement planned
/// while a table was nearly empty is planned again for the table as it has grown. r2d2's reaper
/// closes idle connections past their lifetime every 30 s, so this waits for one of its rounds.
#[test]
fn postgres_connections_are_replaced_after_their_lifetime() {
    let db = TestDatabase::postgres();
    let mut config = invite_store::PoolConfig::new(db.url().clone());
    config.max_size = 1;
    config.connection_lifetime = std::time::Duration::from_secs(1);
    let pool = invite_store::DbPool::new(&config);
    let backend = |conn: &mut invite_store::DbConnection| {
        Ok(diesel::sql_query("SELECT pg_backend_pid() AS pid").get_result::<Pid>(conn)?.pid)
    };
    let first: i32 = pool.run(backend).unwrap();
    assert_eq!(pool.run(backend).unwrap(), first, "a connection is kept while it is young");
    let started = std::time::Instant::now();
    while pool.run(backend).unwrap() == first {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(45),
            "the connection outlived its lifetime by more than the reaper's round"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}
