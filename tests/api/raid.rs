//! Raid protection (contract section 11): `PUT/GET/DELETE /servers/{id}/raid-protection`, the
//! pause a burst of joins sets (as `PUT .../invites-pause` would), its audit entry and event, the
//! count starting afresh, and racing joins admitted no further than the threshold.

use invite_core::clock::Clock;
use invite_core::raid::{RaidProtection, RaidWindow};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, at_once, bits, both_backends, server_id};

fn raid_path(server: &Value) -> String {
    format!("/servers/{}/raid-protection", server_id(server))
}

fn id_of(server: &Value) -> Uuid {
    server_id(server).parse().unwrap()
}

/// What the database holds: the protection and its window.
fn held(app: &TestApp, server: &Value) -> (Option<RaidProtection>, RaidWindow) {
    app.conn().raid_protection(id_of(server)).unwrap()
}

/// The audit log's `InvitesPause` entries.
fn pause_entries(app: &TestApp, server: &Value, owner: &TestUser) -> Vec<Value> {
    app.audit_log(server, owner)
        .into_iter()
        .filter(|entry| entry["action"] == "InvitesPause")
        .collect()
}

fn preview_paused(app: &TestApp, invite: &Value, user: &TestUser) -> Value {
    app.get(&format!("/invites/{}", invite["code"].as_str().unwrap()), user).body["invites_paused"]
        .clone()
}

both_backends! {
    fn raid_protection_is_set_read_and_turned_off(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = raid_path(&server);
        let member = app.member(&server, &owner);
        let manager = app.member_with(&server, &owner, bits::MANAGE_SERVER);
        let stranger = app.user();

        let off = app.get(&path, &owner);
        assert_eq!((off.status, off.body.clone()), (200, json!({"enabled": false})));
        let body = json!({"joins": 10, "window_seconds": 60, "pause_seconds": 600});
        app.put(&path, &member, body.clone()).assert_error(403, "MISSING_PERMISSION", "You need the Manage Server permission");
        app.get(&path, &member).assert_code(403, "MISSING_PERMISSION");
        app.delete(&path, &member).assert_code(403, "MISSING_PERMISSION");
        app.put(&path, &stranger, body.clone()).assert_error(404, "SERVER_NOT_FOUND", "Server not found");
        app.get(&path, &stranger).assert_code(404, "SERVER_NOT_FOUND");
        assert_eq!(held(app, &server), (None, RaidWindow::default()));

        let set = app.put(&path, &manager, body.clone());
        let expected = json!({"enabled": true, "joins": 10, "window_seconds": 60, "pause_seconds": 600});
        assert_eq!((set.status, set.body.clone()), (200, expected.clone()));
        assert_eq!(app.get(&path, &owner).body, expected);
        assert_eq!(held(app, &server), (Some(RaidProtection::new(10, 60, 600).unwrap()), RaidWindow::default()));

        // The bounds are inclusive; JSON Schema's integers (`2.0`) are integers.
        let edges = app.put(&path, &owner, json!({"joins": 2.0, "window_seconds": 86_400, "pause_seconds": 604_800}));
        assert_eq!(edges.body, json!({"enabled": true, "joins": 2, "window_seconds": 86_400, "pause_seconds": 604_800}));
        app.put(&path, &owner, body).assert_status(200);

        app.delete(&path, &owner).assert_status(204);
        assert_eq!(app.get(&path, &owner).body, json!({"enabled": false}));
        assert_eq!(held(app, &server), (None, RaidWindow::default()));
        app.delete(&path, &owner).assert_status(204);
    }

    fn a_wrong_type_or_range_is_a_validation_error_and_changes_nothing(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = raid_path(&server);
        app.put(&path, &owner, json!({"joins": 5, "window_seconds": 60, "pause_seconds": 600})).assert_status(200);
        let cases = [
            (json!({"joins": 1, "window_seconds": 60, "pause_seconds": 600}), "joins must be between 2 and 10000"),
            (json!({"joins": 10001, "window_seconds": 60, "pause_seconds": 600}), "joins must be between 2 and 10000"),
            (json!({"joins": "5", "window_seconds": 60, "pause_seconds": 600}), "joins must be an integer"),
            (json!({"joins": 2.5, "window_seconds": 60, "pause_seconds": 600}), "joins must be an integer"),
            (json!({"joins": 5, "window_seconds": 9, "pause_seconds": 600}), "window_seconds must be between 10 and 86400"),
            (json!({"joins": 5, "window_seconds": 86_401, "pause_seconds": 600}), "window_seconds must be between 10 and 86400"),
            (json!({"joins": 5, "window_seconds": null, "pause_seconds": 600}), "window_seconds must be an integer"),
            (json!({"joins": 5, "window_seconds": 60, "pause_seconds": 59}), "pause_seconds must be between 60 and 604800"),
            (json!({"joins": 5, "window_seconds": 60, "pause_seconds": 604_801}), "pause_seconds must be between 60 and 604800"),
            (json!({"joins": 5, "window_seconds": 60, "pause_seconds": false}), "pause_seconds must be an integer"),
            (json!({"joins": 5, "window_seconds": 60}), "pause_seconds is required"),
            (json!({}), "joins is required"),
        ];
        for (body, message) in cases {
            app.put(&path, &owner, body).assert_error(400, "VALIDATION_ERROR", message);
        }
        // An empty body is `{}`.
        let empty = app.raw(|client, base| client.put(format!("{base}{path}")).bearer_auth(&owner.token));
        empty.assert_error(400, "VALIDATION_ERROR", "joins is required");
        app.put(&path, &owner, json!({"joins": 5, "window_seconds": 60, "pause_seconds": 600, "extra": 1})).assert_code(400, "INVALID_JSON");
        // Nothing changed.
        assert_eq!(held(app, &server), (Some(RaidProtection::new(5, 60, 600).unwrap()), RaidWindow::default()));
        assert_eq!(app.get(&path, &owner).body, json!({"enabled": true, "joins": 5, "window_seconds": 60, "pause_seconds": 600}));
    }

    fn a_raid_pauses_invites_as_a_pause_would_and_the_threshold_join_is_admitted(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let sid = server_id(&server).to_owned();
        app.patch(&format!("/servers/{sid}"), &owner, json!({"features": ["VANITY_URL"]})).assert_status(200);
        app.patch(&format!("/servers/{sid}/vanity-url"), &owner, json!({"code": "raid-target"})).assert_status(200);
        let vanity = json!({"code": "raid-target"});
        let invite = app.create_invite(&server, &owner, json!({}));
        app.put(&raid_path(&server), &owner, json!({"joins": 3, "window_seconds": 60, "pause_seconds": 600})).assert_status(200);

        // Every join counts, whichever invite it came through; the third is admitted.
        app.accept(&invite, &app.user()).assert_status(201);
        app.accept(&vanity, &app.user()).assert_status(201);
        assert_eq!(preview_paused(app, &invite, &owner), json!(false));
        let tripping = app.accept(&invite, &app.user());
        tripping.assert_status(201);
        let tripped_at = app.clock.now();

        // The same state as `PUT .../invites-pause`.
        app.accept(&invite, &app.user()).assert_error(403, "INVITES_PAUSED", "Invites to this server are paused");
        app.accept(&vanity, &app.user()).assert_code(403, "INVITES_PAUSED");
        assert_eq!(preview_paused(app, &invite, &owner), json!(true));
        // The invite page says so, in the words of any timed pause.
        let code = invite["code"].as_str().unwrap().to_owned();
        let page = app.raw(|client, base| client.get(format!("{base}/invite/{code}")).header("accept", "text/html"));
        assert_eq!(page.status, 403, "{}", page.text);
        assert!(page.text.contains("Invites to this server are paused for a while"), "{}", page.text);
        let server_now = app.get(&format!("/servers/{sid}"), &owner).body;
        let until: chrono::DateTime<chrono::Utc> = server_now["invites_paused_until"].as_str().unwrap().parse().unwrap();
        let expected = tripped_at + chrono::Duration::seconds(600);
        assert!((until - expected).num_seconds().abs() <= 1, "{until} against {expected}");
        assert_eq!(server_now["member_count"], 4);
        assert_eq!(held(app, &server).1, RaidWindow::default());

        let entries = pause_entries(app, &server, &owner);
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0]["actor_id"], Value::Null);
        assert_eq!(entries[0]["target_id"], json!(sid));
        assert_eq!(entries[0]["details"], json!({"reason": "raid", "joins": 3, "window_seconds": 60}));
        let events = app.events(&server, &owner);
        let last = events.last().unwrap();
        assert_eq!(last["type"], "INVITES_PAUSE", "{events:?}");
        assert_eq!(last["data"]["server_id"], json!(sid));
        let evented_until: chrono::DateTime<chrono::Utc> = last["data"]["until"].as_str().unwrap().parse().unwrap();
        assert_eq!(evented_until, until);
        assert_eq!(events[events.len() - 2]["type"], "MEMBER_JOIN");

        // The pause ends by itself, and the count starts afresh.
        app.clock.advance(chrono::Duration::seconds(601));
        assert_eq!(preview_paused(app, &invite, &owner), json!(false));
        for _ in 0..2 {
            app.accept(&invite, &app.user()).assert_status(201);
        }
        assert_eq!(held(app, &server).1.joins, 2);
        assert_eq!(pause_entries(app, &server, &owner).len(), 1);
    }

    fn a_lifted_pause_or_a_window_run_out_starts_the_count_afresh(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let invite = app.create_invite(&server, &owner, json!({}));
        let pause = format!("/servers/{}/invites-pause", server_id(&server));
        app.put(&raid_path(&server), &owner, json!({"joins": 3, "window_seconds": 60, "pause_seconds": 3600})).assert_status(200);
        for _ in 0..2 {
            app.accept(&invite, &app.user()).assert_status(201);
        }
        // The window runs out: two more joins make a window of two, not four.
        app.clock.advance(chrono::Duration::seconds(60));
        for _ in 0..2 {
            app.accept(&invite, &app.user()).assert_status(201);
        }
        assert_eq!(held(app, &server).1.joins, 2);
        app.accept(&invite, &app.user()).assert_status(201);
        app.accept(&invite, &app.user()).assert_code(403, "INVITES_PAUSED");

        // Lifted early: resumed at once, counted from one again.
        app.delete(&pause, &owner).assert_status(204);
        assert_eq!(held(app, &server).1, RaidWindow::default());
        for _ in 0..2 {
            app.accept(&invite, &app.user()).assert_status(201);
        }
        app.accept(&invite, &app.user()).assert_status(201);
        app.accept(&invite, &app.user()).assert_code(403, "INVITES_PAUSED");
        // Two raids, two entries (the resume is `InvitesResume`).
        assert_eq!(pause_entries(app, &server, &owner).len(), 2);
    }

    fn racing_joins_admit_exactly_the_threshold(app: &TestApp) {
        const JOINS: usize = 10;
        const RACERS: usize = 40;
        for round in 0..2 {
            let (owner, server) = app.owned_server();
            let invites = [app.create_invite(&server, &owner, json!({})), app.create_invite(&server, &owner, json!({}))];
            app.put(&raid_path(&server), &owner, json!({"joins": JOINS, "window_seconds": 600, "pause_seconds": 600})).assert_status(200);
            let users: Vec<TestUser> = (0..RACERS).map(|_| app.user()).collect();
            let racers: Vec<(&TestUser, &Value)> = users.iter().zip(invites.iter().cycle()).collect();
            let answers = at_once(&racers, |(user, invite)| app.accept(invite, user));
            let admitted = answers.iter().filter(|(status, _)| *status == 201).count();
            for (status, body) in &answers {
                assert!(*status == 201 || (*status == 403 && body["code"] == "INVITES_PAUSED"), "round {round}: {status} {body}");
            }
            assert_eq!(admitted, JOINS, "round {round}");
            // What the database holds: the members, the pause, one entry, one event.
            let server_now = app.get(&format!("/servers/{}", server_id(&server)), &owner).body;
            assert_eq!(server_now["member_count"], JOINS + 1, "round {round}");
            assert!(server_now["invites_paused_until"].is_string(), "round {round}: {server_now}");
            let members = app.get(&format!("/servers/{}/members?limit=1000", server_id(&server)), &owner).body;
            assert_eq!(members.as_array().unwrap().len(), JOINS + 1, "round {round}");
            let uses: i64 = invites.iter().map(|invite| app.uses(invite)).sum();
            assert_eq!(uses, i64::try_from(JOINS).unwrap(), "round {round}");
            assert_eq!(pause_entries(app, &server, &owner).len(), 1, "round {round}");
            let events = app.events(&server, &owner);
            let pauses = events.iter().filter(|event| event["type"] == "INVITES_PAUSE").count();
            let joins = events.iter().filter(|event| event["type"] == "MEMBER_JOIN").count();
            assert_eq!((pauses, joins), (1, JOINS), "round {round}");
            assert_eq!(events.last().unwrap()["type"], "INVITES_PAUSE", "round {round}");
        }
    }
}

#[test]
fn raid_protection_is_in_the_openapi_document() {
    let app = TestApp::spawn(invite_store::Backend::Sqlite);
    let doc = app.request(reqwest::Method::GET, "/openapi.json", None, None).body;
    let item = &doc["paths"]["/servers/{server_id}/raid-protection"];
    for (method, status) in [("get", "200"), ("put", "200"), ("delete", "204")] {
        assert!(item[method]["responses"][status].is_object(), "{method}: {item:#}");
        assert!(item[method]["responses"]["403"].is_object(), "{method}: {item:#}");
    }
    let answer = &item["put"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(answer, "#/components/schemas/RaidProtection");
    assert!(item["put"]["responses"]["400"].is_object());
    let request = &doc["components"]["schemas"]["RaidProtectionRequest"];
    let mut required: Vec<&str> =
        request["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    required.sort_unstable();
    assert_eq!(required, ["joins", "pause_seconds", "window_seconds"], "{request}");
    assert_eq!(request["properties"]["joins"]["minimum"], 2, "{request}");
    assert_eq!(request["properties"]["pause_seconds"]["maximum"], 604_800, "{request}");
}
