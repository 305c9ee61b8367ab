//! Invites for named users (contract section 11): `allowed_user_ids` on create and PATCH, who
//! sees the list, and the refusal of everyone else (403 `INVITE_NOT_FOR_YOU`) before any
//! write, in its place in the redemption order, alone and among racing joins.

use std::sync::{Arc, Barrier};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, both_backends, server_id};

const NOT_FOR_YOU: &str = "This invite is for someone else";

fn id_of(value: &Value) -> Uuid {
    value["id"].as_str().unwrap().parse().unwrap()
}

fn invite_path(server: &Value, invite: &Value) -> String {
    format!("/servers/{}/invites/{}", server_id(server), invite["id"].as_str().unwrap())
}

/// What the database holds: (the invite's uses, its version, the server's member count).
fn held(app: &TestApp, server: &Value, invite: &Value) -> (i64, i64, i64) {
    let conn = &mut app.conn();
    let stored = conn.find_invite(id_of(invite)).unwrap().unwrap();
    let counted = conn.find_server(id_of(server)).unwrap().unwrap().member_count;
    (stored.uses, stored.version, counted)
}

fn is_member(app: &TestApp, server: &Value, user: &TestUser) -> bool {
    app.conn().find_member(id_of(server), user.id).unwrap().is_some()
}

both_backends! {
    fn only_the_named_users_may_accept_and_anyone_else_consumes_nothing(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let (first, second, stranger) = (app.user(), app.user(), app.user());
        let path = format!("/servers/{}/invites", server_id(&server));
        let created = app.post(&path, &owner, json!({"max_uses": 5, "allowed_user_ids": [first.id, second.id]}));
        created.assert_status(201);
        let ids = json!([first.id, second.id]);
        assert_eq!(created.body["allowed_user_ids"], ids);
        let invite = created.body;
        // Shown to those who may list invites...
        let listed = app.get(&path, &owner);
        assert_eq!(listed.body[0]["allowed_user_ids"], ids);
        // ...never in the preview, to anyone.
        let code = invite["code"].as_str().unwrap();
        for viewer in [&owner, &stranger] {
            let preview = app.get(&format!("/invites/{code}"), viewer);
            preview.assert_status(200);
            assert!(preview.body.get("allowed_user_ids").is_none(), "{}", preview.text);
            assert!(!preview.text.contains(&first.id.to_string()), "{}", preview.text);
        }

        let before = held(app, &server, &invite);
        let events_before = app.events(&server, &owner).len();
        for _ in 0..2 {
            app.accept(&invite, &stranger).assert_error(403, "INVITE_NOT_FOR_YOU", NOT_FOR_YOU);
        }
        assert_eq!(held(app, &server, &invite), before, "no use, no version, no member counted");
        assert!(!is_member(app, &server, &stranger));
        assert_eq!(app.events(&server, &owner).len(), events_before, "no event");
        let log = app.get(&format!("/servers/{}/audit-log?limit=100", server_id(&server)), &owner);
        assert!(!log.text.contains(&stranger.id.to_string()), "no audit entry: {}", log.text);

        for user in [&first, &second] {
            app.accept(&invite, user).assert_status(201);
            assert!(is_member(app, &server, user));
        }
        assert_eq!(held(app, &server, &invite), (2, 3, before.2 + 2));
        app.accept(&invite, &stranger).assert_code(403, "INVITE_NOT_FOR_YOU");
        app.accept(&invite, &first).assert_code(409, "ALREADY_MEMBER");
    }

    fn the_refusal_comes_right_after_banned(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let sid = server_id(&server).to_owned();
        let (listed, stranger) = (app.user(), app.user());
        let invite = app.create_invite(&server, &owner, json!({"max_uses": 1, "allowed_user_ids": [listed.id]}));
        // A member is told so, a banned user so: both come first.
        let member = app.member(&server, &owner);
        app.accept(&invite, &member).assert_code(409, "ALREADY_MEMBER");
        let banned = app.user();
        app.put(&format!("/servers/{sid}/bans/{}", banned.id), &owner, json!({})).assert_status(204);
        app.accept(&invite, &banned).assert_code(403, "BANNED");
        // Paused: someone else is told it is not for them, the one it is for that it is paused.
        app.put(&format!("/servers/{sid}/invites-pause"), &owner, json!({})).assert_status(204);
        app.accept(&invite, &stranger).assert_code(403, "INVITE_NOT_FOR_YOU");
        app.accept(&invite, &listed).assert_code(403, "INVITES_PAUSED");
        app.delete(&format!("/servers/{sid}/invites-pause"), &owner).assert_status(204);
        // Used up: the same.
        app.accept(&invite, &listed).assert_status(201);
        let other = app.user();
        app.patch(&invite_path(&server, &invite), &owner, json!({"allowed_user_ids": [listed.id, other.id]})).assert_status(200);
        app.accept(&invite, &stranger).assert_code(403, "INVITE_NOT_FOR_YOU");
        app.accept(&invite, &other).assert_code(400, "INVITE_MAXED_OUT");
        assert_eq!(app.uses(&invite), 1);
    }

    fn the_list_is_validated_and_edited_and_null_opens_the_invite(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites", server_id(&server));
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let hundred: Vec<Uuid> = (0..100).map(|_| Uuid::now_v7()).collect();
        let mut too_many = hundred.clone();
        too_many.push(Uuid::now_v7());
        let listed_before = app.get(&path, &owner).body.as_array().unwrap().len();
        for wrong in [json!([a, b, a]), json!([]), json!(too_many), json!("x"), json!([1]), json!(["not-an-id"]), json!({"a": a})] {
            app.post(&path, &owner, json!({"allowed_user_ids": wrong})).assert_code(400, "VALIDATION_ERROR");
        }
        app.post(&path, &owner, json!({"allowed_user_ids": [a, a]}))
            .assert_error(400, "VALIDATION_ERROR", &format!("allowed_user_ids lists {a} more than once"));
        assert_eq!(app.get(&path, &owner).body.as_array().unwrap().len(), listed_before, "nothing created");
        let full = app.post(&path, &owner, json!({"allowed_user_ids": hundred}));
        full.assert_status(201);
        assert_eq!(full.body["allowed_user_ids"].as_array().unwrap().len(), 100);

        // An open invite made for one user, then opened again with null.
        let invite = app.create_invite(&server, &owner, json!({}));
        let (named, stranger) = (app.user(), app.user());
        for wrong in [json!([named.id, named.id]), json!([]), json!(7)] {
            app.patch(&invite_path(&server, &invite), &owner, json!({"allowed_user_ids": wrong})).assert_code(400, "VALIDATION_ERROR");
        }
        let edited = app.patch(&invite_path(&server, &invite), &owner, json!({"allowed_user_ids": [named.id]}));
        edited.assert_status(200);
        assert_eq!((edited.body["allowed_user_ids"].clone(), edited.body["version"].as_i64()), (json!([named.id]), Some(2)));
        app.accept(&invite, &stranger).assert_code(403, "INVITE_NOT_FOR_YOU");
        // Another field's edit leaves the list alone.
        let limited = app.patch(&invite_path(&server, &invite), &owner, json!({"max_uses": 10}));
        assert_eq!(limited.body["allowed_user_ids"], json!([named.id]));
        let opened = app.patch(&invite_path(&server, &invite), &owner, json!({"allowed_user_ids": null}));
        assert_eq!(opened.body["allowed_user_ids"], Value::Null);
        app.accept(&invite, &stranger).assert_status(201);
        // unique: false never hands back an invite for named users in place of a new one.
        let capped = app.create_invite(&server, &owner, json!({"max_uses": 3}));
        let reused = app.post(&path, &owner, json!({"unique": false, "max_uses": 3}));
        assert_eq!((reused.status, reused.body["id"].clone()), (200, capped["id"].clone()), "{}", reused.text);
        let for_one = app.post(&path, &owner, json!({"unique": false, "allowed_user_ids": [named.id]}));
        for_one.assert_status(201);
        let again = app.post(&path, &owner, json!({"unique": false, "allowed_user_ids": [named.id]}));
        again.assert_status(201);
        assert_ne!(again.body["id"], for_one.body["id"]);
    }

    fn racing_joins_are_each_decided_exactly(app: &TestApp) {
        // Listed users and strangers accept at once (on PostgreSQL, grouped into set-based
        // accepts): every listed user joins, every stranger is refused, nothing else written.
        let (owner, server) = app.owned_server();
        let listed: Vec<TestUser> = (0..12).map(|_| app.user()).collect();
        let strangers: Vec<TestUser> = (0..12).map(|_| app.user()).collect();
        let ids: Vec<Uuid> = listed.iter().map(|user| user.id).collect();
        let invite = app.create_invite(&server, &owner, json!({"allowed_user_ids": ids, "grant_permissions": 256}));
        let barrier = Arc::new(Barrier::new(24));
        let answers: Vec<(bool, u16, Value)> = std::thread::scope(|scope| {
            let handles: Vec<_> = listed
                .iter()
                .map(|user| (true, user))
                .chain(strangers.iter().map(|user| (false, user)))
                .map(|(is_listed, user)| {
                    let barrier = barrier.clone();
                    let invite = &invite;
                    scope.spawn(move || {
                        barrier.wait();
                        let response = app.accept(invite, user);
                        (is_listed, response.status, response.body)
                    })
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().unwrap()).collect()
        });
        for (is_listed, status, body) in answers {
            if is_listed {
                assert_eq!(status, 201, "{body}");
            } else {
                assert_eq!((status, body), (403, json!({"error": NOT_FOR_YOU, "code": "INVITE_NOT_FOR_YOU"})));
            }
        }
        assert_eq!(app.uses(&invite), 12);
        for user in &listed {
            let member = app.conn().find_member(id_of(&server), user.id).unwrap().unwrap();
            assert_eq!(member.permissions.bits(), 256);
        }
        assert!(strangers.iter().all(|user| !is_member(app, &server, user)));
        assert_eq!(app.conn().find_server(id_of(&server)).unwrap().unwrap().member_count, 13);
    }
}
