//! Reads from a standby (`INVITE_DATABASE_READ_URL`, issue 30): previews that miss the cache
//! and lists may be served by it; accepts, creates, revokes and the checks that decide them
//! never are; a standby that is away costs a request nothing but a wait. PostgreSQL only: a
//! read URL over SQLite is refused at start-up (`crates/invite-http/tests/cli.rs`).

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use invite_store::DbConnection;
use invite_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::helpers::{TestApp, server_id, until};

/// The read URL of `db`'s database seen through the schema `standby` (tables first looked up
/// there, then in `public`): once [`freeze_standby`] has copied the tables into it, a standby
/// that stopped replaying at that moment, which the test can then make differ from the
/// primary. The service takes a read URL whose server is not in recovery as current.
fn standby_url(db: &TestDatabase) -> String {
    let url = db.url_string();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3Dstandby%2Cpublic")
}

/// Copies every table as it is now into the schema `standby`.
fn freeze_standby(conn: &mut DbConnection) {
    conn.batch_execute(
        "CREATE SCHEMA standby; \
         DO $$ DECLARE t text; BEGIN \
           FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP \
             EXECUTE format('CREATE TABLE standby.%I AS TABLE public.%I', t, t); \
           END LOOP; \
         END $$;",
    )
    .unwrap();
}

fn code(invite: &Value) -> &str {
    invite["code"].as_str().unwrap()
}

fn preview(app: &TestApp, invite: &Value) -> crate::helpers::TestResponse {
    app.request(reqwest::Method::GET, &format!("/invites/{}", code(invite)), None, None)
}

/// Previews the invite `times` times, each answered 200 within two seconds: a standby that
/// does not answer costs a preview no more than the wait for it.
fn previews_promptly(app: &TestApp, invite: &Value, times: usize) {
    for _ in 0..times {
        let started = Instant::now();
        preview(app, invite).assert_status(200);
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }
}

/// `invite_stale_reads_total` with these labels, from `/metrics`.
fn stale_reads(app: &TestApp, served_by: &str, why: &str) -> u64 {
    let metrics = app.request(reqwest::Method::GET, "/metrics", None, None).text;
    let series = format!("invite_stale_reads_total{{served_by=\"{served_by}\",why=\"{why}\"}} ");
    metrics.lines().find_map(|line| line.strip_prefix(&series)).unwrap().parse().unwrap()
}

/// Whether the service has seen its standby current (`invite_replica_staleness_seconds` is
/// no longer -1).
fn standby_checked(app: &TestApp) -> bool {
    let metrics = app.request(reqwest::Method::GET, "/metrics", None, None).text;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("invite_replica_staleness_seconds "))
        .is_some_and(|value| value.parse::<f64>().unwrap() >= 0.0)
}

fn count(conn: &mut DbConnection, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel::RunQueryDsl as _;
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

#[test]
fn previews_and_lists_read_the_standby_and_decisions_never_do() {
    let db = TestDatabase::postgres();
    let read_url = standby_url(&db);
    let app =
        TestApp::spawn_on_db(db, &["--database-read-url", &read_url, "--preview-cache-ttl", "0s"]);
    let (owner, server, shown) = app.server_with_invite(json!({}));
    let missing = app.create_invite(&server, &owner, json!({}));
    let expired = app.create_invite(&server, &owner, json!({}));
    let server_id = server_id(&server).to_owned();
    let mut conn = app.conn();
    freeze_standby(&mut conn);
    // The standby differs from the primary: a name only it holds, an invite it lacks, and an
    // invite that has expired on it alone.
    conn.batch_execute(&format!(
        "UPDATE standby.servers SET name = 'Read from the standby'; \
         DELETE FROM standby.invites WHERE code = '{}'; \
         UPDATE standby.invites SET expires_at = now() - interval '1 day' WHERE code = '{}';",
        code(&missing),
        code(&expired),
    ))
    .unwrap();
    until(|| standby_checked(&app));

    // A preview missing the cache reads the standby.
    let from_standby = preview(&app, &shown);
    from_standby.assert_status(200);
    assert_eq!(from_standby.body["server_name"], "Read from the standby");
    assert!(stale_reads(&app, "replica", "current") >= 1);
    // A code the standby does not know (perhaps only yet) is asked of the primary.
    let confirmed = preview(&app, &missing);
    confirmed.assert_status(200);
    assert_ne!(confirmed.body["server_name"], "Read from the standby");
    assert!(stale_reads(&app, "primary", "confirmed") >= 1);
    // What the standby says of an invite is only shown: expired there, it is not previewed...
    preview(&app, &expired).assert_status(404);
    // ...but the accept decides on the primary, where it is valid.
    let guest = app.user();
    app.accept(&expired, &guest).assert_status(201);
    let joined = format!("SELECT count(*) AS n FROM {{}}.members WHERE user_id = '{}'", guest.id);
    assert_eq!(count(&mut conn, &joined.replace("{}", "public")), 1);
    assert_eq!(count(&mut conn, &joined.replace("{}", "standby")), 0);

    // Lists read the standby: it lacks the invite deleted there, and the member who just
    // joined on the primary.
    let invites = app.get(&format!("/servers/{server_id}/invites"), &owner);
    invites.assert_status(200);
    let codes: Vec<&str> = invites.body.as_array().unwrap().iter().map(code).collect();
    assert!(codes.contains(&code(&shown)) && !codes.contains(&code(&missing)), "{codes:?}");
    let members = app.get(&format!("/servers/{server_id}/members"), &owner);
    members.assert_status(200);
    let ids: Vec<&str> =
        members.body.as_array().unwrap().iter().map(|m| m["user_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&owner.id.to_string().as_str()), "{ids:?}");
    assert!(!ids.contains(&guest.id.to_string().as_str()), "{ids:?}");

    // An instance's own change shows at once in what it serves: revoked here, the invite is
    // read on the primary within the standby's bound, which still shows it.
    app.delete(&format!("/invites/{}", code(&shown)), &owner).assert_status(204);
    preview(&app, &shown).assert_status(404);
    assert!(stale_reads(&app, "primary", "changed_here") >= 1);

    // A change's permission check reads the primary: the owner is nobody on the standby.
    conn.batch_execute("DELETE FROM standby.members").unwrap();
    app.create_invite(&server, &owner, json!({}));
    // A list the standby refuses (not a member there) is asked of the primary again.
    app.get(&format!("/servers/{server_id}/invites"), &owner).assert_status(200);
}

#[test]
fn an_unreachable_standby_leaves_previews_and_lists_to_the_primary() {
    let app = TestApp::spawn_args(
        invite_store::Backend::Postgres,
        &[
            "--database-read-url",
            "postgres://postgres@127.0.0.1:1/none",
            "--preview-cache-ttl",
            "0s",
        ],
    );
    let (owner, server, invite) = app.server_with_invite(json!({}));
    previews_promptly(&app, &invite, 3);
    app.get(&format!("/servers/{}/invites", server_id(&server)), &owner).assert_status(200);
    // Never seen current, it is never asked.
    assert!(stale_reads(&app, "primary", "lagging") >= 4);
    assert_eq!(stale_reads(&app, "replica", "current"), 0);
}

#[test]
fn a_standby_lost_while_current_costs_a_read_nothing_but_the_wait() {
    let standby = TestDatabase::postgres();
    let app = TestApp::spawn_args(
        invite_store::Backend::Postgres,
        &["--database-read-url", &standby.url_string(), "--preview-cache-ttl", "0s"],
    );
    let (owner, server, invite) = app.server_with_invite(json!({}));
    until(|| standby_checked(&app));
    // Gone: its connections cut, and it cannot be reached again.
    drop(standby);
    previews_promptly(&app, &invite, 4);
    app.get(&format!("/servers/{}/members", server_id(&server)), &owner).assert_status(200);
    assert!(stale_reads(&app, "primary", "replica_failed") >= 1);
}
