//! Undoing a leaked link (contract section 11): `POST /servers/{id}/invites/{invite_id}/undo`,
//! what it removes and keeps, its audit entries and events, its refusals, and joins racing it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use invite_core::server::PageLimit;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, bits, both_backends, server_id};

fn undo_path(server: &Value, invite: &Value) -> String {
    format!("/servers/{}/invites/{}/undo", server_id(server), invite["id"].as_str().unwrap())
}

fn id_of(value: &Value) -> Uuid {
    value["id"].as_str().unwrap().parse().unwrap()
}

/// What the database holds about the server and the invite: (members through the invite, by
/// id, member rows, `member_count`, whether the invite is revoked).
fn held(app: &TestApp, server: &Value, invite: &Value) -> (Vec<Uuid>, usize, i64, bool) {
    let conn = &mut app.conn();
    let page = PageLimit::parse(Some(1000), 1000, 1000).unwrap();
    let through: Vec<Uuid> = sorted(
        conn.members_joined_with(id_of(invite), None, page)
            .unwrap()
            .into_iter()
            .map(|member| member.user_id)
            .collect(),
    );
    let rows = conn.list_members(id_of(server), None, page).unwrap().len();
    let counted = conn.find_server(id_of(server)).unwrap().unwrap().member_count;
    let revoked = conn.find_invite(id_of(invite)).unwrap().unwrap().revoked_at.is_some();
    (through, rows, counted, revoked)
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort_unstable();
    ids
}

/// `count` new users who joined through `invite`.
fn joined(app: &TestApp, invite: &Value, count: usize) -> Vec<TestUser> {
    (0..count)
        .map(|_| {
            let user = app.user();
            app.accept(invite, &user).assert_status(201);
            user
        })
        .collect()
}

both_backends! {
    fn an_undo_revokes_removes_who_joined_and_keeps_who_was_given_permissions(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({}));
        let sid = server_id(&server).to_owned();
        let guests = joined(app, &invite, 3);
        // Given permissions after joining, even none at all: vouched for, so kept.
        app.grant(&server, &owner, &guests[2], 0);
        // Joined through another invite: none of this undo's business.
        let other = app.member(&server, &owner);
        let events_before = app.events(&server, &owner).len();

        let undone = app.post(&undo_path(&server, &invite), &owner, json!({}));
        undone.assert_status(200);
        undone.assert_json();
        assert_eq!(undone.body, json!({"revoked": true, "removed": 2, "kept": 1}));

        let (through, rows, counted, revoked) = held(app, &server, &invite);
        assert_eq!(through, [guests[2].id]);
        assert_eq!((rows, counted, revoked), (3, 3, true));
        let conn = &mut app.conn();
        for gone in &guests[..2] {
            assert!(conn.find_member(id_of(&server), gone.id).unwrap().is_none());
            app.get(&format!("/servers/{sid}"), gone).assert_code(404, "SERVER_NOT_FOUND");
        }
        assert!(conn.find_member(id_of(&server), other.id).unwrap().is_some());
        // Its uses count the joins that happened; nobody joins through it again.
        assert_eq!(app.uses(&invite), 3);
        app.accept(&invite, &app.user()).assert_code(404, "INVITE_REVOKED");
        app.get(&format!("/invites/{}", invite["code"].as_str().unwrap()), &owner).assert_code(404, "INVITE_REVOKED");

        // Each removal a kick audited with the reason and the code; the revoke audited once.
        let log = app.audit_log(&server, &owner);
        let kicks: Vec<&Value> = log.iter().filter(|entry| entry["action"] == "MemberKick").collect();
        assert_eq!(kicks.len(), 2);
        for kick in &kicks {
            assert_eq!(kick["details"], json!({"reason": "invite_undo", "code": invite["code"]}));
            assert_eq!((kick["actor_id"].as_str(), kick["target_type"].as_str()), (Some(owner.id.to_string().as_str()), Some("user")));
        }
        let mut kicked: Vec<String> = kicks.iter().map(|kick| kick["target_id"].as_str().unwrap().to_owned()).collect();
        kicked.sort();
        let mut expected: Vec<String> = guests[..2].iter().map(|guest| guest.id.to_string()).collect();
        expected.sort();
        assert_eq!(kicked, expected);
        let revokes: Vec<&Value> = log.iter().filter(|entry| entry["action"] == "InviteRevoke").collect();
        assert_eq!(revokes.len(), 1);
        assert_eq!(revokes[0]["target_id"], invite["id"]);

        // The revoke's event, then a MEMBER_REMOVE for each removal, committed with it.
        let new: Vec<Value> = app.events(&server, &owner).split_off(events_before);
        let kinds: Vec<&str> = new.iter().map(|event| event["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["INVITE_DELETE", "MEMBER_REMOVE", "MEMBER_REMOVE"]);
        assert_eq!(new[0]["data"], json!({"server_id": server["id"], "invite_id": invite["id"], "code": invite["code"]}));
        let mut removed: Vec<String> = new[1..].iter().map(|event| {
            assert_eq!(event["data"]["reason"], "invite_undo");
            event["data"]["user_id"].as_str().unwrap().to_owned()
        }).collect();
        removed.sort();
        assert_eq!(removed, expected);

        // Repeating it removes nobody, says the same of who stays, and writes nothing.
        let again = app.post(&undo_path(&server, &invite), &owner, json!({}));
        assert_eq!((again.status, again.body.clone()), (200, json!({"revoked": true, "removed": 0, "kept": 1})));
        assert_eq!(app.audit_log(&server, &owner).len(), log.len());
        assert_eq!(app.events(&server, &owner).len(), events_before + 3);
        assert_eq!(held(app, &server, &invite), (vec![guests[2].id], 3, 3, true));
    }

    fn since_undoes_only_the_later_joins(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({}));
        let early = joined(app, &invite, 2);
        app.grant(&server, &owner, &early[1], bits::CREATE_INVITES);
        app.clock.advance(chrono::Duration::minutes(10));
        let late = joined(app, &invite, 3);
        app.grant(&server, &owner, &late[2], bits::CREATE_INVITES);
        let conn = &mut app.conn();
        let mut joined_at = |user: &TestUser| conn.find_member(id_of(&server), user.id).unwrap().unwrap().joined_at;
        let since = joined_at(&late[0]);
        assert!(joined_at(&early[1]) < since);

        // Those who joined before `since` are in neither count.
        let path = undo_path(&server, &invite);
        let undone = app.post(&path, &owner, json!({"since": since.to_rfc3339()}));
        assert_eq!((undone.status, undone.body.clone()), (200, json!({"revoked": true, "removed": 2, "kept": 1})));
        let expected = sorted(vec![early[0].id, early[1].id, late[2].id]);
        assert_eq!(held(app, &server, &invite), (expected, 4, 4, true));

        // Another offset names the same instant; a later `since` finds nobody to remove.
        let offset = since.with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap()).to_rfc3339();
        assert_eq!(app.post(&path, &owner, json!({"since": offset})).body, json!({"revoked": true, "removed": 0, "kept": 1}));
        // Without `since`, the earlier joins too: the one given permissions stays.
        let all = app.post(&path, &owner, json!({"since": null}));
        assert_eq!(all.body, json!({"revoked": true, "removed": 1, "kept": 2}));
        assert_eq!(held(app, &server, &invite).0, sorted(vec![early[1].id, late[2].id]));
    }

    fn an_invite_revoked_before_can_still_be_undone(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({}));
        let guests = joined(app, &invite, 2);
        app.delete(&format!("/servers/{}/invites/{}", server_id(&server), invite["id"].as_str().unwrap()), &owner).assert_status(204);
        let events_before = app.events(&server, &owner).len();
        // A bare POST, no body at all, is `{}`.
        let undone = app.request(reqwest::Method::POST, &undo_path(&server, &invite), Some(&owner), None);
        assert_eq!((undone.status, undone.body.clone()), (200, json!({"revoked": true, "removed": 2, "kept": 0})));
        // Not revoked twice: no second INVITE_DELETE, no second InviteRevoke.
        let new: Vec<Value> = app.events(&server, &owner).split_off(events_before);
        assert_eq!(new.iter().map(|event| event["type"].as_str().unwrap()).collect::<Vec<_>>(), ["MEMBER_REMOVE", "MEMBER_REMOVE"]);
        let revokes = app.audit_log(&server, &owner).iter().filter(|entry| entry["action"] == "InviteRevoke").count();
        assert_eq!(revokes, 1);
        assert_eq!(held(app, &server, &invite), (vec![], 1, 1, true));
        for guest in &guests {
            // Removed, not banned: another invite lets them back.
            app.accept(&app.create_invite(&server, &owner, json!({})), guest).assert_status(201);
        }
    }

    fn an_undo_needs_manage_server_and_kick_members(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({}));
        let guests = joined(app, &invite, 2);
        let path = undo_path(&server, &invite);
        let manager = app.member_with(&server, &owner, bits::MANAGE_SERVER);
        let kicker = app.member_with(&server, &owner, bits::KICK_MEMBERS);
        app.post(&path, &manager, json!({})).assert_error(403, "MISSING_PERMISSION", "You need the Kick Members permission");
        app.post(&path, &kicker, json!({})).assert_error(403, "MISSING_PERMISSION", "You need the Manage Server permission");
        app.post(&path, &guests[0], json!({})).assert_error(403, "MISSING_PERMISSION", "You need the Manage Server permission");
        // Membership, then permission, then the body: a stranger learns nothing.
        app.post(&path, &app.user(), json!({"since": "whenever"})).assert_error(404, "SERVER_NOT_FOUND", "Server not found");
        app.post(&path, &kicker, json!({"since": "whenever"})).assert_code(403, "MISSING_PERMISSION");
        assert_eq!(held(app, &server, &invite), (sorted(vec![guests[0].id, guests[1].id]), 5, 5, false));

        let moderator = app.member_with(&server, &owner, bits::MANAGE_SERVER | bits::KICK_MEMBERS);
        let undone = app.post(&path, &moderator, json!({}));
        assert_eq!((undone.status, undone.body.clone()), (200, json!({"revoked": true, "removed": 2, "kept": 0})));
        let kicks = app.audit_log(&server, &owner).into_iter().filter(|entry| entry["action"] == "MemberKick").count();
        assert_eq!(kicks, 2);
    }

    fn bad_input_is_refused_and_changes_nothing(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({}));
        let guest = joined(app, &invite, 1).remove(0);
        let path = undo_path(&server, &invite);
        let log = app.audit_log(&server, &owner).len();
        let message = "since must be an RFC 3339 time, such as 2026-12-07T12:00:00Z";
        for since in [json!("yesterday"), json!(""), json!("2026-12-07"), json!("2026-12-07T12:00"), json!(1_765_108_800), json!(true), json!(["2026-12-07T12:00:00Z"]), json!({"at": "2026-12-07T12:00:00Z"})] {
            app.post(&path, &owner, json!({ "since": since })).assert_error(400, "VALIDATION_ERROR", message);
        }
        app.post(&path, &owner, json!({"until": "2026-12-07T12:00:00Z"})).assert_code(400, "INVALID_JSON");
        app.post(&path, &owner, json!(["2026-12-07T12:00:00Z"])).assert_code(400, "INVALID_JSON");
        app.raw(|client, base| client.post(format!("{base}{path}")).bearer_auth(&owner.token).header("content-type", "application/json").body("{\"since\":")).assert_code(400, "INVALID_JSON");
        app.raw(|client, base| client.post(format!("{base}{path}")).bearer_auth(&owner.token).header("content-type", "text/plain").body("{}")).assert_code(415, "UNSUPPORTED_MEDIA_TYPE");
        app.request(reqwest::Method::POST, &path, None, Some(&json!({}))).assert_code(401, "UNAUTHORIZED");

        // Unknown invites, malformed ids, and another server's invite.
        let sid = server_id(&server);
        app.post(&format!("/servers/{sid}/invites/{}/undo", Uuid::now_v7()), &owner, json!({})).assert_error(404, "INVITE_NOT_FOUND", "Invite not found");
        app.post(&format!("/servers/{sid}/invites/not-a-uuid/undo"), &owner, json!({})).assert_code(400, "INVALID_ID");
        app.post(&format!("/servers/not-a-uuid/invites/{}/undo", invite["id"].as_str().unwrap()), &owner, json!({})).assert_code(400, "INVALID_ID");
        let (stranger, elsewhere, foreign) = app.server_with_invite(json!({}));
        let foreign_guest = joined(app, &foreign, 1).remove(0);
        // Someone else's server, named with its own id: the caller is not in it.
        app.post(&undo_path(&elsewhere, &foreign), &owner, json!({})).assert_error(404, "SERVER_NOT_FOUND", "Server not found");
        // Its invite, named under one's own server.
        app.post(&format!("/servers/{sid}/invites/{}/undo", foreign["id"].as_str().unwrap()), &owner, json!({})).assert_error(404, "INVITE_NOT_FOUND", "Invite not found");
        app.request(reqwest::Method::GET, &path, Some(&owner), None).assert_code(405, "METHOD_NOT_ALLOWED");

        // Nothing changed, here or there.
        assert_eq!(held(app, &server, &invite), (vec![guest.id], 2, 2, false));
        assert_eq!(held(app, &elsewhere, &foreign), (vec![foreign_guest.id], 2, 2, false));
        assert_eq!(app.audit_log(&server, &owner).len(), log);
        app.accept(&invite, &app.user()).assert_status(201);
        assert!(app.audit_log(&elsewhere, &stranger).iter().all(|entry| entry["action"] != "MemberKick"));
    }

    fn the_vanity_invite_cannot_be_undone(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let sid = server_id(&server).to_owned();
        app.patch(&format!("/servers/{sid}"), &owner, json!({"features": ["VANITY_URL"]})).assert_status(200);
        let code = format!("undo-{}", &Uuid::now_v7().simple().to_string()[20..]);
        app.patch(&format!("/servers/{sid}/vanity-url"), &owner, json!({"code": code})).assert_status(200);
        let guest = app.user();
        app.request(reqwest::Method::POST, &format!("/invites/{code}/accept"), Some(&guest), None).assert_status(201);
        // Its id is the one its members' join records carry.
        let members = app.get(&format!("/servers/{sid}/members"), &owner);
        let record = members.body.as_array().unwrap().iter().find(|member| member["user_id"] == json!(guest.id)).unwrap().clone();
        assert_eq!(record["joined_via"]["source"], "vanity");
        let vanity_id = record["joined_via"]["invite_id"].as_str().unwrap();
        app.post(&format!("/servers/{sid}/invites/{vanity_id}/undo"), &owner, json!({}))
            .assert_error(400, "VANITY_INVITE", "The vanity invite cannot be undone; change or release the vanity URL instead");
        assert!(app.conn().find_member(id_of(&server), guest.id).unwrap().is_some());
        app.request(reqwest::Method::POST, &format!("/invites/{code}/accept"), Some(&app.user()), None).assert_status(201);
    }

    fn a_replayed_key_answers_the_first_undo(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({}));
        joined(app, &invite, 2);
        let path = undo_path(&server, &invite);
        let send = || app.raw(|client, base| client.post(format!("{base}{path}")).bearer_auth(&owner.token).header("Idempotency-Key", "undo-1").json(&json!({})));
        let first = send();
        assert_eq!((first.status, first.body.clone(), first.header("idempotent-replayed")), (200, json!({"revoked": true, "removed": 2, "kept": 0}), None));
        let replay = send();
        assert_eq!((replay.status, replay.body.clone(), replay.header("idempotent-replayed")), (200, first.body.clone(), Some("true")));
        let other = app.raw(|client, base| client.post(format!("{base}{path}")).bearer_auth(&owner.token).header("Idempotency-Key", "undo-1").json(&json!({"since": "2026-12-07T12:00:00Z"})));
        other.assert_code(422, "IDEMPOTENCY_KEY_REUSED");
    }

    fn fifty_joins_racing_an_undo_leave_nobody_behind(app: &TestApp) {
        const JOINS: usize = 50;
        // Joined before the undo is sent, for sure: the rest race it or come after.
        const FIRST: usize = 15;
        for round in 0..3 {
            let (owner, server, invite) = app.server_with_invite(json!({}));
            let users: Vec<TestUser> = (0..JOINS).map(|_| app.user()).collect();
            let path = undo_path(&server, &invite);
            let barrier = Arc::new(Barrier::new(JOINS + 1));
            let answered = AtomicUsize::new(0);
            let (answers, undone) = std::thread::scope(|scope| {
                let accepts: Vec<_> = users
                    .iter()
                    .enumerate()
                    .map(|(i, user)| {
                        let (barrier, invite, answered) = (barrier.clone(), &invite, &answered);
                        scope.spawn(move || {
                            barrier.wait();
                            // Spread over 50 ms, so that the undo lands among them.
                            std::thread::sleep(Duration::from_millis(u64::try_from(i).unwrap()));
                            let response = app.accept(invite, user);
                            answered.fetch_add(1, Ordering::SeqCst);
                            (response.status, response.body)
                        })
                    })
                    .collect();
                let (barrier, owner, path, answered) = (barrier.clone(), &owner, &path, &answered);
                let undo = scope.spawn(move || {
                    barrier.wait();
                    while answered.load(Ordering::SeqCst) < FIRST + 5 * round {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    app.post(path, owner, json!({}))
                });
                let answers: Vec<(u16, Value)> = accepts.into_iter().map(|h| h.join().unwrap()).collect();
                (answers, undo.join().unwrap())
            });
            undone.assert_status(200);
            let joined = answers.iter().filter(|(status, _)| *status == 201).count();
            for (status, body) in &answers {
                assert!(*status == 201 || (*status == 404 && body["code"] == "INVITE_REVOKED"), "round {round}: {status} {body}");
            }
            // Everyone who got in before the undo was removed by it; nobody got in after.
            assert_eq!(undone.body, json!({"revoked": true, "removed": joined, "kept": 0}), "round {round}");
            assert_eq!(held(app, &server, &invite), (vec![], 1, 1, true), "round {round}");
            assert_eq!(app.uses(&invite), i64::try_from(joined).unwrap(), "round {round}");
            let removes = app.events(&server, &owner).iter().filter(|event| event["type"] == "MEMBER_REMOVE").count();
            assert_eq!(removes, joined, "round {round}");
            assert!(joined >= FIRST + 5 * round, "round {round}: {joined}");
            println!("round {round}: {joined} of {JOINS} joined before the undo");
            // And it stays so: a repeat finds nobody.
            assert_eq!(app.post(&path, &owner, json!({})).body, json!({"revoked": true, "removed": 0, "kept": 0}));
        }
    }
}

#[test]
fn the_undo_is_in_the_openapi_document() {
    let app = TestApp::spawn(invite_store::Backend::Sqlite);
    let doc = app.request(reqwest::Method::GET, "/openapi.json", None, None).body;
    let operation = &doc["paths"]["/servers/{server_id}/invites/{invite_id}/undo"]["post"];
    let answer = &operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(answer, "#/components/schemas/InviteUndone", "{operation:#}");
    for status in ["400", "403", "404"] {
        assert!(operation["responses"][status].is_object(), "{status}: {operation:#}");
    }
    let parameters: Vec<&str> = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|parameter| parameter["name"].as_str().unwrap())
        .collect();
    assert_eq!(parameters, ["server_id", "invite_id", "Idempotency-Key"]);
    let schemas = &doc["components"]["schemas"];
    let since = &schemas["UndoInviteRequest"]["properties"]["since"];
    assert_eq!(since["format"], "date-time", "{since}");
    let undone = &schemas["InviteUndone"];
    let mut required: Vec<&str> =
        undone["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    required.sort_unstable();
    assert_eq!(required, ["kept", "removed", "revoked"], "{undone}");
}
