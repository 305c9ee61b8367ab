//! Join approval (contract section 11): `requires_approval` on create and PATCH, the accept that
//! files a join request (202) and takes no use, the moderators' list and decisions, the user's
//! own requests, a ban's denial, the cap, the refusals, the audit entries and the events, and
//! approvals racing for an invite's last uses.

use invite_core::approval::{JoinRequest, JoinRequestStatus, MAX_PENDING_PER_SERVER};
use invite_store::repo::insert_join_request_unchecked;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, at_once, bits, both_backends, server_id};

fn id_of(value: &Value) -> Uuid {
    value["id"].as_str().unwrap().parse().unwrap()
}

fn requests_path(server: &Value) -> String {
    format!("/servers/{}/join-requests", server_id(server))
}

fn decide_path(server: &Value, request: &Value, decision: &str) -> String {
    format!("{}/{}/{decision}", requests_path(server), request["id"].as_str().unwrap())
}

/// Accepts `invite` as `user`, expecting a filing: the request.
fn file(app: &TestApp, invite: &Value, user: &TestUser) -> Value {
    let answer = app.accept(invite, user);
    answer.assert_status(202);
    assert_eq!(answer.body["message"], "Join request filed", "{}", answer.text);
    answer.body["request"].clone()
}

/// The request as the database holds it.
fn stored(app: &TestApp, request: &Value) -> JoinRequest {
    app.conn().find_join_request(id_of(request)).unwrap().unwrap()
}

fn is_member(app: &TestApp, server: &Value, user: &TestUser) -> bool {
    app.conn().find_member(id_of(server), user.id).unwrap().is_some()
}

fn audit(app: &TestApp, server: &Value, owner: &TestUser, action: &str) -> Vec<Value> {
    app.audit_log(server, owner).into_iter().filter(|entry| entry["action"] == action).collect()
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|request| request["id"].as_str().unwrap()).collect()
}

both_backends! {
    fn an_approval_invite_shows_it_and_an_accept_files_a_request(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites", server_id(&server));
        let created = app.post(&path, &owner, json!({"requires_approval": true, "max_uses": 3}));
        created.assert_status(201);
        assert_eq!(created.body["requires_approval"], true);
        let invite = created.body;
        assert_eq!(app.get(&path, &owner).body[0]["requires_approval"], true);
        let plain = app.create_invite(&server, &owner, json!({}));
        assert_eq!(plain["requires_approval"], false);
        // The public preview shows it: whoever clicks knows a moderator decides.
        let code = invite["code"].as_str().unwrap();
        let stranger = app.user();
        assert_eq!(app.get(&format!("/invites/{code}"), &stranger).body["requires_approval"], true);

        let guest = app.user();
        let request = file(app, &invite, &guest);
        let keys: Vec<&str> = {
            let mut keys: Vec<&str> = request.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            keys
        };
        assert_eq!(keys, ["created_at", "decided_at", "decided_by", "id", "invite_id", "server_id", "status", "user_id"]);
        assert_eq!(
            (&request["server_id"], &request["invite_id"], &request["user_id"], &request["status"], &request["decided_at"], &request["decided_by"]),
            (&server["id"], &invite["id"], &json!(guest.id), &json!("pending"), &Value::Null, &Value::Null)
        );
        // No use, no member; the database holds the request.
        assert_eq!(app.uses(&invite), 0);
        assert!(!is_member(app, &server, &guest));
        assert_eq!(stored(app, &request).status, JoinRequestStatus::Pending);
        // Accepting any approval invite of the server again answers the same request.
        let other = app.create_invite(&server, &owner, json!({"requires_approval": true}));
        assert_eq!(file(app, &other, &guest), request);
        assert_eq!(file(app, &invite, &guest), request);
        assert_eq!(app.conn().count_pending_join_requests(id_of(&server)).unwrap(), 1);
        let created: Vec<Value> = app.events(&server, &owner).into_iter().filter(|event| event["type"] == "JOIN_REQUEST_CREATE").collect();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0]["data"], request);
        // A PATCH turns it off: the next accept joins.
        let invite_path = format!("{path}/{}", invite["id"].as_str().unwrap());
        let patched = app.patch(&invite_path, &owner, json!({"requires_approval": false}));
        patched.assert_status(200);
        assert_eq!(patched.body["requires_approval"], false);
        app.accept(&invite, &app.user()).assert_status(201);
        assert_eq!(app.conn().find_invite(id_of(&invite)).unwrap().unwrap().uses, 1);
    }

    fn a_wrong_type_is_a_validation_error_and_changes_nothing(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({}));
        let path = format!("/servers/{}/invites", server_id(&server));
        let before = app.get(&path, &owner).body.as_array().unwrap().len();
        for wrong in [json!("yes"), json!(1), json!([true])] {
            app.post(&path, &owner, json!({"requires_approval": wrong}))
                .assert_error(400, "VALIDATION_ERROR", "requires_approval must be true or false");
            app.patch(&format!("{path}/{}", invite["id"].as_str().unwrap()), &owner, json!({"requires_approval": wrong}))
                .assert_code(400, "VALIDATION_ERROR");
        }
        assert_eq!(app.get(&path, &owner).body.as_array().unwrap().len(), before);
        assert!(!app.conn().find_invite(id_of(&invite)).unwrap().unwrap().requires_approval);
        for status in ["all", "PENDING", ""] {
            app.get(&format!("{}?status={status}", requests_path(&server)), &owner).assert_code(400, "VALIDATION_ERROR");
        }
    }

    fn a_refused_filing_files_nothing(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"requires_approval": true, "max_uses": 1}));
        let sid = server_id(&server).to_owned();
        let banned = app.user();
        app.put(&format!("/servers/{sid}/bans/{}", banned.id), &owner, json!({})).assert_status(204);
        app.accept(&invite, &banned).assert_code(403, "BANNED");
        app.accept(&invite, &owner).assert_code(409, "ALREADY_MEMBER");
        let named = app.create_invite(&server, &owner, json!({"requires_approval": true, "allowed_user_ids": [Uuid::now_v7()]}));
        app.accept(&named, &app.user()).assert_code(403, "INVITE_NOT_FOR_YOU");
        app.put(&format!("/servers/{sid}/invites-pause"), &owner, json!({})).assert_status(204);
        app.accept(&invite, &app.user()).assert_code(403, "INVITES_PAUSED");
        app.delete(&format!("/servers/{sid}/invites-pause"), &owner).assert_status(204);
        let expiring = app.create_invite(&server, &owner, json!({"requires_approval": true, "max_age": 60}));
        app.clock.advance(chrono::Duration::seconds(61));
        app.accept(&expiring, &app.user()).assert_code(400, "INVITE_EXPIRED");
        let revoked = app.create_invite(&server, &owner, json!({"requires_approval": true}));
        app.delete(&format!("/servers/{sid}/invites/{}", revoked["id"].as_str().unwrap()), &owner).assert_status(204);
        app.accept(&revoked, &app.user()).assert_code(404, "INVITE_REVOKED");
        // Used up: a plain join took its one use before approval was turned on.
        let used = app.create_invite(&server, &owner, json!({"max_uses": 1}));
        app.accept(&used, &app.user()).assert_status(201);
        app.patch(&format!("/servers/{sid}/invites/{}", used["id"].as_str().unwrap()), &owner, json!({"requires_approval": true})).assert_status(200);
        app.accept(&used, &app.user()).assert_code(400, "INVITE_MAXED_OUT");
        assert_eq!(app.conn().count_pending_join_requests(id_of(&server)).unwrap(), 0);
        assert_eq!(app.get(&requests_path(&server), &owner).body, json!([]));
        assert!(app.events(&server, &owner).iter().all(|event| event["type"] != "JOIN_REQUEST_CREATE"));
        assert_eq!(app.uses(&invite), 0);
    }

    fn the_list_is_oldest_first_by_status_and_needs_kick_or_manage(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"requires_approval": true}));
        let (a, b, c, d) = (app.user(), app.user(), app.user(), app.user());
        let ra = file(app, &invite, &a);
        app.clock.advance(chrono::Duration::seconds(1));
        let rb = file(app, &invite, &b);
        app.clock.advance(chrono::Duration::seconds(1));
        let rc = file(app, &invite, &c);
        app.clock.advance(chrono::Duration::seconds(1));
        let rd = file(app, &invite, &d);
        let path = requests_path(&server);
        let pending = app.get(&path, &owner);
        pending.assert_status(200);
        assert_eq!(ids(&pending.body), [ra["id"].as_str().unwrap(), rb["id"].as_str().unwrap(), rc["id"].as_str().unwrap(), rd["id"].as_str().unwrap()]);
        app.post(&decide_path(&server, &rb, "approve"), &owner, json!({})).assert_status(200);
        app.post(&decide_path(&server, &rc, "deny"), &owner, json!({})).assert_status(200);
        app.delete(&format!("/users/@me/join-requests/{}", rd["id"].as_str().unwrap()), &d).assert_status(204);
        for (status, expected) in [("pending", &ra), ("approved", &rb), ("denied", &rc), ("withdrawn", &rd)] {
            let listed = app.get(&format!("{path}?status={status}"), &owner);
            listed.assert_status(200);
            assert_eq!(ids(&listed.body), [expected["id"].as_str().unwrap()], "{status}");
            assert_eq!(listed.body[0]["status"], status);
        }
        assert_eq!(ids(&app.get(&path, &owner).body), [ra["id"].as_str().unwrap()], "pending by default");
        // Who may see them: Kick Members or Manage Server; a plain member may not, a stranger
        // is told the server is not found.
        let kicker = app.member_with(&server, &owner, bits::KICK_MEMBERS);
        let manager = app.member_with(&server, &owner, bits::MANAGE_SERVER);
        let inviter = app.member_with(&server, &owner, bits::CREATE_INVITES);
        for who in [&kicker, &manager] {
            app.get(&path, who).assert_status(200);
        }
        app.get(&path, &inviter).assert_error(403, "MISSING_PERMISSION", "You need the Kick Members or Manage Server permission");
        app.get(&path, &app.user()).assert_code(404, "SERVER_NOT_FOUND");
        for decision in ["approve", "deny"] {
            app.post(&decide_path(&server, &ra, decision), &inviter, json!({})).assert_code(403, "MISSING_PERMISSION");
        }
        assert_eq!(stored(app, &ra).status, JoinRequestStatus::Pending);
        // The user's own, of every status.
        let mine = app.get("/users/@me/join-requests", &b);
        mine.assert_status(200);
        assert_eq!(ids(&mine.body), [rb["id"].as_str().unwrap()]);
        assert_eq!(mine.body[0]["status"], "approved");
    }

    fn an_approval_makes_a_member_through_the_invite_with_its_grant(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"requires_approval": true, "max_uses": 2, "grant_permissions": bits::KICK_MEMBERS}));
        let guest = app.user();
        let request = file(app, &invite, &guest);
        let kicker = app.member_with(&server, &owner, bits::KICK_MEMBERS);
        app.clock.advance(chrono::Duration::seconds(5));
        let approved = app.post(&decide_path(&server, &request, "approve"), &kicker, json!({}));
        approved.assert_status(200);
        assert_eq!(approved.body["status"], "approved");
        assert_eq!(approved.body["decided_by"], json!(kicker.id));
        assert!(approved.body["decided_at"].is_string());
        assert_eq!(approved.body["id"], request["id"]);
        let member = app.conn().find_member(id_of(&server), guest.id).unwrap().unwrap();
        assert_eq!((member.joined_via_invite_id, member.permissions.bits()), (Some(id_of(&invite)), bits::KICK_MEMBERS));
        assert_eq!(app.uses(&invite), 1);
        let stored = stored(app, &request);
        assert_eq!((stored.status, stored.decided_by), (JoinRequestStatus::Approved, Some(kicker.id)));
        // Audit and events: a join as any other, and the decision.
        let entries = audit(app, &server, &owner, "JoinRequestApprove");
        assert_eq!(entries.len(), 1);
        assert_eq!((&entries[0]["actor_id"], &entries[0]["target_id"]), (&json!(kicker.id), &json!(guest.id)));
        assert_eq!(entries[0]["details"]["request_id"], request["id"]);
        assert_eq!(audit(app, &server, &owner, "MemberJoin").iter().filter(|entry| entry["target_id"] == json!(guest.id)).count(), 1);
        let events = app.events(&server, &owner);
        let kinds: Vec<&str> = events.iter().rev().take(2).map(|event| event["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["JOIN_REQUEST_UPDATE", "MEMBER_JOIN"]);
        assert_eq!(events.last().unwrap()["data"]["status"], "approved");
        assert_eq!(events[events.len() - 2]["data"]["user_id"], json!(guest.id));
        // Deciding it again: 409; another server's request: 404.
        for decision in ["approve", "deny"] {
            app.post(&decide_path(&server, &request, decision), &owner, json!({}))
                .assert_code(409, "JOIN_REQUEST_NOT_PENDING");
        }
        let (other_owner, other_server) = app.owned_server();
        app.post(&decide_path(&other_server, &request, "approve"), &other_owner, json!({})).assert_code(404, "JOIN_REQUEST_NOT_FOUND");
        app.post(&decide_path(&server, &json!({"id": Uuid::now_v7()}), "deny"), &owner, json!({})).assert_code(404, "JOIN_REQUEST_NOT_FOUND");
        assert_eq!(app.uses(&invite), 1);
    }

    fn an_approval_the_accept_refuses_leaves_the_request_pending(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"requires_approval": true, "max_uses": 1}));
        let sid = server_id(&server).to_owned();
        let (first, second) = (app.user(), app.user());
        let r1 = file(app, &invite, &first);
        let r2 = file(app, &invite, &second);
        app.post(&decide_path(&server, &r1, "approve"), &owner, json!({})).assert_status(200);
        app.post(&decide_path(&server, &r2, "approve"), &owner, json!({})).assert_error(400, "INVITE_MAXED_OUT", "This invite has reached its maximum uses");
        assert_eq!(stored(app, &r2).status, JoinRequestStatus::Pending);
        assert!(!is_member(app, &server, &second));
        assert_eq!(app.uses(&invite), 1);
        // Expired.
        let expiring = app.create_invite(&server, &owner, json!({"requires_approval": true, "max_age": 60}));
        let third = app.user();
        let r3 = file(app, &expiring, &third);
        app.clock.advance(chrono::Duration::seconds(61));
        app.post(&decide_path(&server, &r3, "approve"), &owner, json!({})).assert_code(400, "INVITE_EXPIRED");
        assert_eq!(stored(app, &r3).status, JoinRequestStatus::Pending);
        // Revoked.
        let revoking = app.create_invite(&server, &owner, json!({"requires_approval": true}));
        let fourth = app.user();
        let r4 = file(app, &revoking, &fourth);
        app.delete(&format!("/servers/{sid}/invites/{}", revoking["id"].as_str().unwrap()), &owner).assert_status(204);
        app.post(&decide_path(&server, &r4, "approve"), &owner, json!({})).assert_error(404, "INVITE_REVOKED", "Invite not found");
        assert_eq!(stored(app, &r4).status, JoinRequestStatus::Pending);
        assert!(audit(app, &server, &owner, "JoinRequestApprove").len() == 1);
        // The refused ones can still be denied.
        let denied = app.post(&decide_path(&server, &r2, "deny"), &owner, json!({}));
        denied.assert_status(200);
        assert_eq!(denied.body["status"], "denied");
    }

    fn deny_and_withdraw(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"requires_approval": true}));
        let (denied_user, leaving) = (app.user(), app.user());
        let denied = file(app, &invite, &denied_user);
        let answer = app.post(&decide_path(&server, &denied, "deny"), &owner, json!({}));
        answer.assert_status(200);
        assert_eq!((&answer.body["status"], &answer.body["decided_by"]), (&json!("denied"), &json!(owner.id)));
        assert_eq!(stored(app, &denied).status, JoinRequestStatus::Denied);
        assert!(!is_member(app, &server, &denied_user));
        let entries = audit(app, &server, &owner, "JoinRequestDeny");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["target_id"], json!(denied_user.id));
        // Withdrawn by its user, not by anyone else.
        let mine = file(app, &invite, &leaving);
        let path = format!("/users/@me/join-requests/{}", mine["id"].as_str().unwrap());
        app.delete(&path, &denied_user).assert_code(404, "JOIN_REQUEST_NOT_FOUND");
        app.delete(&path, &leaving).assert_status(204);
        app.delete(&path, &leaving).assert_code(409, "JOIN_REQUEST_NOT_PENDING");
        let stored = stored(app, &mine);
        assert_eq!((stored.status, stored.decided_by), (JoinRequestStatus::Withdrawn, None));
        let own = app.get("/users/@me/join-requests", &leaving);
        assert_eq!(own.body[0]["status"], "withdrawn");
        app.post(&decide_path(&server, &mine, "approve"), &owner, json!({})).assert_code(409, "JOIN_REQUEST_NOT_PENDING");
        // A decided request does not stop a new one.
        let again = file(app, &invite, &leaving);
        assert_ne!(again["id"], mine["id"]);
        let updates = app.events(&server, &owner).into_iter().filter(|event| event["type"] == "JOIN_REQUEST_UPDATE").count();
        assert_eq!(updates, 2);
    }

    fn a_ban_denies_the_users_pending_requests(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"requires_approval": true}));
        let troll = app.user();
        let request = file(app, &invite, &troll);
        app.put(&format!("/servers/{}/bans/{}", server_id(&server), troll.id), &owner, json!({"reason": "raid"})).assert_status(204);
        let stored = stored(app, &request);
        assert_eq!((stored.status, stored.decided_by), (JoinRequestStatus::Denied, Some(owner.id)));
        app.post(&decide_path(&server, &request, "approve"), &owner, json!({})).assert_code(409, "JOIN_REQUEST_NOT_PENDING");
        assert!(!is_member(app, &server, &troll));
        let entries = audit(app, &server, &owner, "JoinRequestDeny");
        assert_eq!(entries[0]["details"]["reason"], "ban");
        let last = app.events(&server, &owner).pop().unwrap();
        assert_eq!((&last["type"], &last["data"]["status"]), (&json!("JOIN_REQUEST_UPDATE"), &json!("denied")));
    }

    fn the_thousand_and_first_pending_request_is_refused(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"requires_approval": true}));
        let (server_uuid, invite_uuid) = (id_of(&server), id_of(&invite));
        {
            let conn = &mut app.conn();
            for _ in 0..MAX_PENDING_PER_SERVER {
                let request = JoinRequest {
                    id: Uuid::now_v7(),
                    server_id: server_uuid,
                    invite_id: invite_uuid,
                    user_id: Uuid::now_v7(),
                    status: JoinRequestStatus::Pending,
                    created_at: chrono::Utc::now(),
                    decided_at: None,
                    decided_by: None,
                };
                insert_join_request_unchecked(conn, &request).unwrap();
            }
        }
        let late = app.user();
        app.accept(&invite, &late).assert_error(429, "TOO_MANY_JOIN_REQUESTS", "This server has too many pending join requests, please try again later");
        assert_eq!(app.conn().count_pending_join_requests(server_uuid).unwrap(), MAX_PENDING_PER_SERVER);
        assert!(app.get("/users/@me/join-requests", &late).body.as_array().unwrap().is_empty());
        // A decision makes room.
        let first = &app.get(&requests_path(&server), &owner).body[0];
        app.post(&decide_path(&server, first, "deny"), &owner, json!({})).assert_status(200);
        file(app, &invite, &late);
    }

    fn more_concurrent_approvals_than_uses_left_approve_exactly_the_uses(app: &TestApp) {
        const REQUESTS: usize = 20;
        let (owner, server, invite) = app.server_with_invite(json!({"requires_approval": true, "max_uses": 4}));
        // One use taken before approval was turned on: three left.
        let sid = server_id(&server).to_owned();
        app.patch(&format!("/servers/{sid}/invites/{}", invite["id"].as_str().unwrap()), &owner, json!({"requires_approval": false})).assert_status(200);
        app.accept(&invite, &app.user()).assert_status(201);
        app.patch(&format!("/servers/{sid}/invites/{}", invite["id"].as_str().unwrap()), &owner, json!({"requires_approval": true})).assert_status(200);
        let users: Vec<TestUser> = (0..REQUESTS).map(|_| app.user()).collect();
        let requests: Vec<Value> = users.iter().map(|user| file(app, &invite, user)).collect();
        let answers = at_once(&requests, |request| app.post(&decide_path(&server, request, "approve"), &owner, json!({})));
        let approved = answers.iter().filter(|(status, _)| *status == 200).count();
        for (status, body) in &answers {
            assert!(*status == 200 || (*status == 400 && body["code"] == "INVITE_MAXED_OUT"), "{status} {body}");
        }
        assert_eq!(approved, 3);
        assert_eq!(app.uses(&invite), 4);
        let members = users.iter().filter(|user| is_member(app, &server, user)).count();
        assert_eq!(members, 3);
        assert_eq!(app.get(&format!("/servers/{sid}"), &owner).body["member_count"], 5);
        let pending = app.get(&requests_path(&server), &owner).body;
        assert_eq!(pending.as_array().unwrap().len(), REQUESTS - 3);
        assert_eq!(app.get(&format!("{}?status=approved", requests_path(&server)), &owner).body.as_array().unwrap().len(), 3);
    }
}

#[test]
fn join_approval_is_in_the_openapi_document() {
    let app = TestApp::spawn(invite_store::Backend::Sqlite);
    let doc = app.request(reqwest::Method::GET, "/openapi.json", None, None).body;
    let paths = &doc["paths"];
    assert!(paths["/servers/{server_id}/join-requests"]["get"]["responses"]["200"].is_object());
    for decision in ["approve", "deny"] {
        let item = &paths
            [format!("/servers/{{server_id}}/join-requests/{{request_id}}/{decision}").as_str()]["post"];
        assert!(item["responses"]["200"].is_object(), "{decision}: {item:#}");
        assert!(item["responses"]["409"].is_object(), "{decision}: {item:#}");
    }
    assert!(paths["/users/@me/join-requests"]["get"]["responses"]["200"].is_object());
    assert!(
        paths["/users/@me/join-requests/{request_id}"]["delete"]["responses"]["204"].is_object()
    );
    assert!(paths["/invites/{code}/accept"]["post"]["responses"]["202"].is_object());
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["JoinRequest"]["properties"]["status"].is_object(),
        "{:#}",
        schemas["JoinRequest"]
    );
    assert!(schemas["Invite"]["properties"]["requires_approval"].is_object());
    assert!(schemas["CreateInviteRequest"]["properties"]["requires_approval"].is_object());
}
