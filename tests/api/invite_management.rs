//! Fluxer's invite features: channel invites, editing with versions, deletion by code, reuse,
//! temporary invites, counts, and who joined with an invite.

use std::sync::{Arc, Barrier};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, bits, both_backends, server_id};

fn invite_path(server: &Value, invite: &Value) -> String {
    format!("/servers/{}/invites/{}", server_id(server), invite["id"].as_str().unwrap())
}

fn patch_if_match(
    app: &TestApp,
    path: &str,
    user: &crate::helpers::TestUser,
    version: &str,
    body: Value,
) -> crate::helpers::TestResponse {
    let url = format!("{}{path}", app.base);
    app.raw(|c, _| c.patch(&url).bearer_auth(&user.token).header("if-match", version).json(&body))
}

both_backends! {
    fn channel_invites_are_created_listed_and_previewed_with_their_channel(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let channel = app.post(&format!("/servers/{}/channels", server_id(&server)), &owner, json!({"name": "welcome"})).body;
        let path = format!("/channels/{}/invites", channel["id"].as_str().unwrap());
        let created = app.post(&path, &owner, json!({"max_uses": 3}));
        created.assert_status(201);
        assert_eq!(created.body["channel_id"], channel["id"]);
        app.create_invite(&server, &owner, json!({}));
        let listed = app.get(&path, &owner);
        assert_eq!(listed.body.as_array().unwrap().len(), 1);
        assert_eq!(listed.body[0]["id"], created.body["id"]);
        let filtered = app.get(&format!("/servers/{}/invites?channel_id={}", server_id(&server), channel["id"].as_str().unwrap()), &owner);
        assert_eq!(filtered.body, listed.body);

        let preview = app.get(&format!("/invites/{}", created.body["code"].as_str().unwrap()), &owner);
        assert_eq!(preview.body["channel"], json!({"id": channel["id"], "name": "welcome"}));

        app.post(&path, &owner, json!({"channel_id": Uuid::now_v7()})).assert_code(400, "VALIDATION_ERROR");
        let stranger = app.user();
        app.post(&path, &stranger, json!({})).assert_error(404, "CHANNEL_NOT_FOUND", "Channel not found");
        app.get(&format!("/channels/{}/invites", Uuid::now_v7()), &owner).assert_error(404, "CHANNEL_NOT_FOUND", "Channel not found");
        let member = app.member(&server, &owner);
        app.post(&path, &member, json!({})).assert_error(403, "MISSING_PERMISSION", "You need the Create Invites permission");
    }

    fn editing_changes_limits_bumps_the_version_and_honours_if_match(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({"max_uses": 2}));
        let path = invite_path(&server, &invite);
        app.accept(&invite, &app.user()).assert_status(201);

        let edited = app.patch(&path, &owner, json!({"max_uses": 5, "expires_in_hours": 2}));
        edited.assert_status(200);
        assert_eq!((edited.body["max_uses"].clone(), edited.body["max_age"].clone(), edited.body["version"].clone()), (json!(5), json!(7200), json!(3)));
        assert_eq!(edited.header("etag"), Some("\"3\""));
        app.patch(&path, &owner, json!({"max_uses": 0})).assert_error(400, "VALIDATION_ERROR", "max_uses must be greater than 0");
        app.patch(&path, &owner, json!({"max_uses": null})).assert_status(200);
        // Down to the uses already made, but not below them.
        let at_uses = app.patch(&path, &owner, json!({"max_uses": 1}));
        assert_eq!((at_uses.status, at_uses.body["max_uses"].clone()), (200, json!(1)));
        app.patch(&path, &owner, json!({"max_uses": 2})).assert_status(200);
        app.accept(&invite, &app.user()).assert_status(201);
        app.patch(&path, &owner, json!({"max_uses": 1})).assert_error(400, "VALIDATION_ERROR", "max_uses must not be below the invite's current uses (2)");
        app.patch(&path, &owner, json!({"uses": 0})).assert_code(400, "INVALID_JSON");

        // A new lifetime counts from now, as the service's clock tells it.
        app.clock.advance(chrono::Duration::hours(5));
        let extended = app.patch(&path, &owner, json!({"expires_in_hours": 2}));
        let expires_at: chrono::DateTime<chrono::Utc> = extended.body["expires_at"].as_str().unwrap().parse().unwrap();
        let expected = chrono::Utc::now() + chrono::Duration::hours(7);
        assert!((expires_at - expected).num_seconds().abs() < 60, "{expires_at} vs {expected}");
        app.patch(&path, &owner, json!({"max_uses": null})).assert_status(200);

        patch_if_match(app, &path, &owner, "\"1\"", json!({"max_uses": 9})).assert_error(412, "PRECONDITION_FAILED", "The invite has changed since the version in If-Match");
        let current = app.get(&format!("/servers/{}/invites", server_id(&server)), &owner).body[0]["version"].clone();
        let ok = patch_if_match(app, &path, &owner, &format!("\"{current}\""), json!({"max_uses": 9}));
        ok.assert_status(200);
        let stored = app.conn().find_invite(invite["id"].as_str().unwrap().parse().unwrap()).unwrap().unwrap();
        assert_eq!((stored.max_uses, stored.version), (Some(9), current.as_i64().unwrap() + 1));

        // Someone else's invite needs MANAGE_SERVER.
        let creator = app.member_with(&server, &owner, bits::CREATE_INVITES);
        app.patch(&path, &creator, json!({"max_uses": 3})).assert_error(403, "MISSING_PERMISSION", "You need the Manage Server permission to edit this invite");
    }

    fn two_edits_with_the_same_version_one_wins(app: &TestApp) {
        let (owner, server) = app.owned_server();
        for round in 0..5 {
            let invite = app.create_invite(&server, &owner, json!({"max_uses": 10}));
            let path = invite_path(&server, &invite);
            let barrier = Arc::new(Barrier::new(2));
            let statuses: Vec<u16> = std::thread::scope(|scope| {
                let handles: Vec<_> = [20, 30]
                    .into_iter()
                    .map(|max_uses| {
                        let (barrier, path, owner) = (barrier.clone(), &path, &owner);
                        scope.spawn(move || {
                            barrier.wait();
                            patch_if_match(app, path, owner, "\"1\"", json!({"max_uses": max_uses})).status
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut sorted = statuses.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [200, 412], "round {round}");
            let stored = app.conn().find_invite(invite["id"].as_str().unwrap().parse().unwrap()).unwrap().unwrap();
            assert_eq!(stored.version, 2, "round {round}");
        }
    }

    fn deleting_by_code_is_for_the_creator_or_manage_server_and_a_secret_to_strangers(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let creator = app.member_with(&server, &owner, bits::CREATE_INVITES);
        let theirs = app.create_invite(&server, &creator, json!({}));
        let owners = app.create_invite(&server, &owner, json!({}));
        let code_path = |invite: &Value| format!("/invites/{}", invite["code"].as_str().unwrap());

        app.delete(&code_path(&owners), &creator).assert_error(403, "MISSING_PERMISSION", "You need the Manage Server permission to revoke this invite");
        // A stranger to the server hears exactly what a code that does not exist answers, and
        // the invite stays.
        let stranger = app.user();
        let unknown = app.delete("/invites/Qq7Qq7Qq", &stranger);
        unknown.assert_error(404, "INVITE_NOT_FOUND", "Invite not found");
        let refused = app.delete(&code_path(&owners), &stranger);
        refused.assert_error(404, "INVITE_NOT_FOUND", "Invite not found");
        assert_eq!(refused.text, unknown.text, "byte for byte");
        assert_eq!(refused.header("content-type"), unknown.header("content-type"));
        app.request(reqwest::Method::GET, &code_path(&owners), None, None).assert_status(200);
        // Its creator may still take it down after leaving the server.
        let leaver = app.member_with(&server, &owner, bits::CREATE_INVITES);
        let left_behind = app.create_invite(&server, &leaver, json!({}));
        app.delete(&format!("/servers/{}/members/{}", server_id(&server), leaver.id), &leaver).assert_status(204);
        app.delete(&code_path(&left_behind), &leaver).assert_status(204);
        app.request(reqwest::Method::GET, &code_path(&left_behind), None, None).assert_code(404, "INVITE_REVOKED");
        let stale = app.raw(|c, base| c.delete(format!("{base}{}", code_path(&theirs))).bearer_auth(&creator.token).header("if-match", "\"7\""));
        stale.assert_code(412, "PRECONDITION_FAILED");
        app.delete(&code_path(&theirs), &creator).assert_status(204);
        app.delete(&code_path(&theirs), &creator).assert_error(404, "INVITE_NOT_FOUND", "Invite not found");
        app.delete(&code_path(&owners), &owner).assert_status(204);
        app.delete("/invites/zzzzzzzz", &owner).assert_error(404, "INVITE_NOT_FOUND", "Invite not found");
    }

    fn revoking_honours_if_match(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({}));
        app.accept(&invite, &app.user()).assert_status(201);
        let url = format!("{}{}", app.base, invite_path(&server, &invite));
        let delete = |version: &str| app.raw(|c, _| c.delete(&url).bearer_auth(&owner.token).header("if-match", version));
        delete("\"1\"").assert_error(412, "PRECONDITION_FAILED", "The invite has changed since the version in If-Match");
        let listed = app.get(&format!("/servers/{}/invites", server_id(&server)), &owner);
        assert_eq!((listed.body[0]["id"].clone(), listed.body[0]["version"].clone()), (invite["id"].clone(), json!(2)));
        delete("\"2\"").assert_status(204);
        assert_eq!(app.get(&format!("/servers/{}/invites", server_id(&server)), &owner).body, json!([]));
    }

    fn unique_false_returns_the_existing_invite(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites", server_id(&server));
        let first = app.post(&path, &owner, json!({"max_uses": 5, "max_age": 3600, "temporary": true}));
        first.assert_status(201);
        let again = app.post(&path, &owner, json!({"max_uses": 5, "max_age": 3600, "temporary": true, "unique": false}));
        again.assert_status(200);
        assert_eq!(again.body["id"], first.body["id"]);
        assert_eq!(again.header("etag"), Some("\"1\""));
        assert_eq!(app.get(&path, &owner).body.as_array().unwrap().len(), 1);
        let different = app.post(&path, &owner, json!({"max_uses": 6, "unique": false}));
        different.assert_status(201);
        // Reuse creates nothing, so it records nothing either.
        let log = app.get(&format!("/servers/{}/audit-log", server_id(&server)), &owner).body;
        let creates: Vec<_> = log.as_array().unwrap().iter().filter(|entry| entry["action"] == "InviteCreate").map(|entry| entry["target_id"].clone()).collect();
        assert_eq!(creates, [different.body["id"].clone(), first.body["id"].clone()]);
    }

    fn a_temporary_invite_makes_a_temporary_member_and_counts_are_optional(app: &TestApp) {
        let (_, server, invite) = app.server_with_invite(json!({"temporary": true}));
        assert_eq!(invite["temporary"], true);
        let guest = app.user();
        app.accept(&invite, &guest).assert_status(201);
        let member = app.conn().find_member(server_id(&server).parse().unwrap(), guest.id).unwrap().unwrap();
        assert!(member.temporary);

        let code = invite["code"].as_str().unwrap();
        let plain = app.get(&format!("/invites/{code}"), &guest);
        assert_eq!((plain.body["temporary"].clone(), plain.body.get("approximate_member_count")), (json!(true), None));
        let counted = app.get(&format!("/invites/{code}?with_counts=true"), &guest);
        assert_eq!(counted.body["approximate_member_count"], 2);
        assert_eq!(counted.body["approximate_presence_count"], 0);
    }

    fn members_who_joined_with_each_invite(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let creator = app.member_with(&server, &owner, bits::CREATE_INVITES);
        let first = app.create_invite(&server, &owner, json!({}));
        let second = app.create_invite(&server, &creator, json!({}));
        let (a, b, c) = (app.user(), app.user(), app.user());
        app.accept(&first, &a).assert_status(201);
        app.accept(&second, &b).assert_status(201);
        app.accept(&first, &c).assert_status(201);

        let joined = |invite: &Value| {
            let response = app.get(&format!("{}/members", invite_path(&server, invite)), &owner);
            response.assert_status(200);
            response.body.as_array().unwrap().iter().map(|m| m["user_id"].clone()).collect::<Vec<_>>()
        };
        assert_eq!(joined(&first), [json!(a.id), json!(c.id)]);
        assert_eq!(joined(&second), [json!(b.id)]);
        let via_second = app.get(&format!("{}/members", invite_path(&server, &second)), &owner);
        assert_eq!(via_second.body[0]["joined_via"]["inviter_id"], json!(creator.id));
        app.get(&format!("{}/members", invite_path(&server, &first)), &creator).assert_error(403, "MISSING_PERMISSION", "You need the Manage Server permission");
        app.get(&format!("/servers/{}/invites/{}/members", server_id(&server), Uuid::now_v7()), &owner).assert_error(404, "INVITE_NOT_FOUND", "Invite not found");
        // Every membership names its invite in the database too.
        let conn = &mut app.conn();
        let stored = conn.find_member(server_id(&server).parse().unwrap(), b.id).unwrap().unwrap();
        assert_eq!(stored.joined_via_invite_id, Some(second["id"].as_str().unwrap().parse().unwrap()));
    }
}
