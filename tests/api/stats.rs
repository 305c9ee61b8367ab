//! Per-invite analytics (contract section 11): `GET /servers/{id}/invites/{invite_id}/stats` and
//! `GET /servers/{id}/invite-stats` agree with what was done (previews, joins, refusals by code,
//! a kick and a leave) once flushed and folded; who may read them; the top 100 by accepts;
//! previews from two instances summed; and a graceful restart losing no count.

use diesel::prelude::*;
use invite_core::clock::Clock;
use invite_store::Backend;
use invite_store::schema::invite_stats;
use invite_store::sql_types::Id;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, bits, both_backends, server_id, until};

/// Written and folded often, so the tests see them at once.
const SOON: [&str; 2] = ["--analytics-flush-interval", "100ms"];

fn invite_stats_path(server: &Value, invite: &Value) -> String {
    format!("/servers/{}/invites/{}/stats", server_id(server), invite["id"].as_str().unwrap())
}

fn server_stats_path(server: &Value) -> String {
    format!("/servers/{}/invite-stats", server_id(server))
}

/// The stats at `path` once they equal `expected` (they lag by the flush interval); fails
/// with what they were otherwise.
fn settled(app: &TestApp, path: &str, reader: &TestUser, expected: &Value) -> Value {
    let mut last = Value::Null;
    let settled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        until(|| {
            let read = app.get(path, reader);
            read.assert_status(200);
            last = read.body;
            last == *expected
        })
    }));
    assert!(settled.is_ok(), "never {expected}; last {last}");
    last
}

fn preview(app: &TestApp, invite: &Value, user: &TestUser) {
    app.get(&format!("/invites/{}", invite["code"].as_str().unwrap()), user).assert_status(200);
}

/// (previews, accepts, departures) as the counters hold them, if they hold the invite at all.
fn stored(app: &TestApp, invite: &Value) -> Option<(i64, i64, i64)> {
    let invite_id: Uuid = invite["id"].as_str().unwrap().parse().unwrap();
    invite_stats::table
        .filter(invite_stats::invite_id.eq(Id(invite_id)))
        .select((invite_stats::previews, invite_stats::accepts, invite_stats::departures))
        .get_result(&mut app.conn())
        .optional()
        .unwrap()
}

/// (previews, accepts, departures) as the counters hold them.
fn counters(app: &TestApp, invite: &Value) -> (i64, i64, i64) {
    stored(app, invite).expect("the counters hold the invite")
}

fn today(app: &TestApp) -> String {
    app.clock.now().date_naive().to_string()
}

fn stats_agree_with_what_was_done(backend: Backend) {
    let app = TestApp::spawn_args(backend, &SOON);
    let (owner, server) = app.owned_server();
    let sid = server_id(&server).to_owned();
    let invite = app.create_invite(&server, &owner, json!({"max_uses": 4}));
    let other = app.create_invite(&server, &owner, json!({}));
    let viewer = app.user();
    for _ in 0..3 {
        preview(&app, &invite, &viewer);
    }
    let joiners: Vec<TestUser> = (0..4).map(|_| app.user()).collect();
    for joiner in &joiners {
        app.accept(&invite, joiner).assert_status(201);
    }
    // Refused: used up, and already a member (checked first).
    app.accept(&invite, &app.user()).assert_code(400, "INVITE_MAXED_OUT");
    app.accept(&invite, &app.user()).assert_code(400, "INVITE_MAXED_OUT");
    app.accept(&invite, &joiners[0]).assert_code(409, "ALREADY_MEMBER");
    app.accept(&other, &app.user()).assert_status(201);
    // One kicked, one leaves.
    app.delete(&format!("/servers/{sid}/members/{}", joiners[1].id), &owner).assert_status(204);
    app.delete(&format!("/servers/{sid}/members/{}", joiners[2].id), &joiners[2])
        .assert_status(204);

    let expected = json!({
        "previews": 3,
        "accepts": 4,
        "refusals": {"ALREADY_MEMBER": 1, "INVITE_MAXED_OUT": 2},
        "joins_per_day": [{"date": today(&app), "joins": 4}],
        "retained": 2,
    });
    settled(&app, &invite_stats_path(&server, &invite), &owner, &expected);
    assert_eq!(counters(&app, &invite), (3, 4, 2));

    let expected = json!({
        "previews": 3,
        "accepts": 5,
        "refusals": {"ALREADY_MEMBER": 1, "INVITE_MAXED_OUT": 2},
        "joins_per_day": [{"date": today(&app), "joins": 5}],
        "retained": 3,
        "invites": [
            {"invite_id": invite["id"], "code": invite["code"], "previews": 3, "accepts": 4,
             "retained": 2},
            {"invite_id": other["id"], "code": other["code"], "previews": 0, "accepts": 1,
             "retained": 1},
        ],
    });
    settled(&app, &server_stats_path(&server), &owner, &expected);
}

fn a_read_answers_what_its_instance_counted_and_a_refused_one_writes_nothing(backend: Backend) {
    // No flush or fold of its own while it runs: only the reads bring the counts in.
    let app = TestApp::spawn_args(backend, &["--analytics-flush-interval", "1h"]);
    let (owner, server) = app.owned_server();
    let invite = app.create_invite(&server, &owner, json!({"max_uses": 2}));
    let viewer = app.user();
    for _ in 0..3 {
        preview(&app, &invite, &viewer);
    }
    app.accept(&invite, &app.user()).assert_status(201);
    app.accept(&invite, &app.user()).assert_status(201);
    app.accept(&invite, &app.user()).assert_code(400, "INVITE_MAXED_OUT");

    let member = app.member(&server, &owner);
    app.get(&invite_stats_path(&server, &invite), &member).assert_code(403, "MISSING_PERMISSION");
    app.get(&server_stats_path(&server), &app.user()).assert_code(404, "SERVER_NOT_FOUND");
    assert_eq!(stored(&app, &invite), None, "a refused read writes nothing");

    let day = today(&app);
    let expected = json!({"previews": 3, "accepts": 2, "refusals": {"INVITE_MAXED_OUT": 1},
                          "joins_per_day": [{"date": day, "joins": 2}], "retained": 2});
    let read = app.get(&invite_stats_path(&server, &invite), &owner);
    read.assert_status(200);
    assert_eq!(read.body, expected);
    assert_eq!(stored(&app, &invite), Some((3, 2, 0)));

    // Counted after that read: the next read brings it in too.
    let other = app.create_invite(&server, &owner, json!({}));
    preview(&app, &other, &viewer);
    let read = app.get(&server_stats_path(&server), &owner);
    read.assert_status(200);
    assert_eq!(read.body["previews"], 4);
    assert_eq!(read.body["accepts"], 3, "two through the invite, one through the member's");
    assert_eq!(
        read.body["invites"][0],
        json!({"invite_id": invite["id"], "code": invite["code"], "previews": 3, "accepts": 2,
               "retained": 2})
    );
    assert_eq!(stored(&app, &other), Some((1, 0, 0)));
}

fn only_managers_read_stats_and_only_of_their_servers_invites(backend: Backend) {
    let app = TestApp::spawn_args(backend, &SOON);
    let (owner, server) = app.owned_server();
    let invite = app.create_invite(&server, &owner, json!({}));
    let member = app.member(&server, &owner);
    let manager = app.member_with(&server, &owner, bits::MANAGE_SERVER);
    let stranger = app.user();
    let path = invite_stats_path(&server, &invite);

    app.get(&path, &manager).assert_status(200);
    app.get(&server_stats_path(&server), &manager).assert_status(200);
    app.get(&path, &member).assert_error(
        403,
        "MISSING_PERMISSION",
        "You need the Manage Server permission",
    );
    app.get(&server_stats_path(&server), &member).assert_code(403, "MISSING_PERMISSION");
    app.get(&path, &stranger).assert_code(404, "SERVER_NOT_FOUND");
    app.get(&server_stats_path(&server), &stranger).assert_code(404, "SERVER_NOT_FOUND");
    // Another server's invite, even to the owner of both: not found here, as elsewhere.
    let elsewhere = app.create_server(&owner);
    app.get(&invite_stats_path(&elsewhere, &invite), &owner).assert_code(404, "INVITE_NOT_FOUND");
    let unknown = json!({"id": Uuid::now_v7().to_string()});
    app.get(&invite_stats_path(&server, &unknown), &owner).assert_code(404, "INVITE_NOT_FOUND");
    let malformed = format!("/servers/{}/invites/not-a-uuid/stats", server_id(&server));
    app.get(&malformed, &owner).assert_code(400, "INVALID_ID");
}

fn the_server_lists_its_top_100_invites_by_accepts(backend: Backend) {
    let app = TestApp::spawn_args(backend, &SOON);
    let (owner, server) = app.owned_server();
    let invites: Vec<Value> =
        (0..102).map(|_| app.create_invite(&server, &owner, json!({}))).collect();
    let server_uuid: Uuid = server_id(&server).parse().unwrap();
    // As the fold would have left them after i joins through the i-th invite: seeded, since
    // 5,000 joins through the API would take a debug build minutes.
    let rows: Vec<_> = invites
        .iter()
        .enumerate()
        .map(|(i, invite)| {
            let invite_id: Uuid = invite["id"].as_str().unwrap().parse().unwrap();
            (
                invite_stats::invite_id.eq(Id(invite_id)),
                invite_stats::server_id.eq(Id(server_uuid)),
                invite_stats::accepts.eq(i64::try_from(i).unwrap()),
                invite_stats::departures.eq(0),
                invite_stats::previews.eq(0),
            )
        })
        .collect();
    let mut conn = app.conn();
    for row in rows {
        diesel::insert_into(invite_stats::table).values(row).execute(&mut conn).unwrap();
    }
    let read = app.get(&server_stats_path(&server), &owner);
    read.assert_status(200);
    let listed: Vec<i64> = read.body["invites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|invite| invite["accepts"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, (2..102).rev().collect::<Vec<i64>>());
    assert_eq!(read.body["invites"][0]["invite_id"], invites[101]["id"]);
    assert_eq!(read.body["accepts"], (0..102).sum::<i64>());
}

fn previews_from_two_instances_are_summed(backend: Backend) {
    let first = TestApp::spawn_args(backend, &SOON);
    let second = first.second_instance(&SOON);
    let (owner, server) = first.owned_server();
    let invite = first.create_invite(&server, &owner, json!({}));
    let viewer = first.user();
    for _ in 0..2 {
        preview(&first, &invite, &viewer);
    }
    for _ in 0..3 {
        preview(&second, &invite, &viewer);
    }
    let expected = json!({"previews": 5, "accepts": 0, "refusals": {}, "joins_per_day": [],
                          "retained": 0});
    settled(&first, &invite_stats_path(&server, &invite), &owner, &expected);
}

fn a_graceful_restart_writes_what_was_counted(backend: Backend) {
    // Nothing is written while it runs: only the stop's flush can have written it.
    let app = TestApp::spawn_args(backend, &["--analytics-flush-interval", "1h"]);
    let (owner, server) = app.owned_server();
    let invite = app.create_invite(&server, &owner, json!({"max_uses": 1}));
    preview(&app, &invite, &owner);
    preview(&app, &invite, &owner);
    app.accept(&invite, &app.user()).assert_status(201);
    app.accept(&invite, &app.user()).assert_code(400, "INVITE_MAXED_OUT");
    let app = app.restart(&SOON);
    let expected = json!({
        "previews": 2,
        "accepts": 1,
        "refusals": {"INVITE_MAXED_OUT": 1},
        "joins_per_day": [{"date": today(&app), "joins": 1}],
        "retained": 1,
    });
    let path = invite_stats_path(&server, &invite);
    let read = app.get(&path, &owner);
    read.assert_status(200);
    assert_eq!(read.body, expected);
}

fn analytics_off_count_nothing_and_the_joins_are_folded_once_on(backend: Backend) {
    let app = TestApp::spawn_args(
        backend,
        &["--analytics", "off", "--analytics-flush-interval", "100ms"],
    );
    let (owner, server) = app.owned_server();
    let invite = app.create_invite(&server, &owner, json!({"max_uses": 1}));
    preview(&app, &invite, &owner);
    app.accept(&invite, &app.user()).assert_status(201);
    app.accept(&invite, &app.user()).assert_code(400, "INVITE_MAXED_OUT");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let path = invite_stats_path(&server, &invite);
    assert_eq!(app.get(&path, &owner).body["accepts"], 0);
    // On again: the join is in the outbox still, and folded; what was not counted stays so.
    let app = app.restart(&SOON);
    let expected = json!({
        "previews": 0,
        "accepts": 1,
        "refusals": {},
        "joins_per_day": [{"date": today(&app), "joins": 1}],
        "retained": 1,
    });
    settled(&app, &path, &owner, &expected);
}

both_backends! {
    ;
    analytics_off_count_nothing_and_the_joins_are_folded_once_on,
    stats_agree_with_what_was_done,
    only_managers_read_stats_and_only_of_their_servers_invites,
    the_server_lists_its_top_100_invites_by_accepts,
    previews_from_two_instances_are_summed,
    a_graceful_restart_writes_what_was_counted,
    a_read_answers_what_its_instance_counted_and_a_refused_one_writes_nothing,
}
