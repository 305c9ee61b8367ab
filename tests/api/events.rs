//! The outbox as integrators see it (contract section 9): `GET /servers/{id}/events`, and every
//! change's events committed with it.

use serde_json::{Value, json};

use crate::helpers::{TestApp, bits, both_backends, server_id};

fn events(
    app: &TestApp,
    server: &Value,
    owner: &crate::helpers::TestUser,
    query: &str,
) -> Vec<Value> {
    let response = app.get(&format!("/servers/{}/events{query}", server_id(server)), owner);
    response.assert_status(200);
    response.body.as_array().unwrap().clone()
}

both_backends! {
    fn every_change_is_an_event_in_commit_order(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let sid = server_id(&server).to_owned();
        let invite = app.create_invite(&server, &owner, json!({"max_uses": 5}));
        let guest = app.user();
        app.accept(&invite, &guest).assert_status(201);
        app.put(&format!("/servers/{sid}/invites-pause"), &owner, json!({})).assert_status(204);
        app.delete(&format!("/servers/{sid}/invites-pause"), &owner).assert_status(204);
        app.delete(&format!("/servers/{sid}/members/{}", guest.id), &owner).assert_status(204);
        app.delete(&format!("/servers/{sid}/invites/{}", invite["id"].as_str().unwrap()), &owner).assert_status(204);
        // A refusal changes nothing and tells nobody.
        app.accept(&invite, &app.user()).assert_code(404, "INVITE_REVOKED");

        let all = events(app, &server, &owner, "");
        let kinds: Vec<&str> = all.iter().map(|event| event["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["INVITE_CREATE", "MEMBER_JOIN", "INVITES_PAUSE", "INVITES_RESUME", "MEMBER_REMOVE", "INVITE_DELETE"]);
        let seqs: Vec<i64> = all.iter().map(|event| event["seq"].as_i64().unwrap()).collect();
        assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
        assert_eq!(all[0]["data"]["code"], invite["code"]);
        assert_eq!(all[0]["server_id"], server["id"]);
        assert_eq!(all[1]["data"]["user_id"], guest.id.to_string());
        assert_eq!(all[1]["data"]["member_count"], 2);
        assert_eq!(all[1]["data"]["invite_id"], invite["id"]);
        assert_eq!(all[4]["data"]["reason"], "kick");
        assert!(all.iter().all(|event| event["created_at"].as_str().unwrap().ends_with('Z')));

        // Paging with the last `seq` seen.
        let page = events(app, &server, &owner, "?limit=2");
        assert_eq!(page.len(), 2);
        let rest = events(app, &server, &owner, &format!("?after={}", page[1]["seq"]));
        assert_eq!(rest.len(), 4);
        assert_eq!(rest[0]["seq"], all[2]["seq"]);
        assert!(events(app, &server, &owner, &format!("?after={}", seqs[5])).is_empty());
    }

    fn the_events_are_for_managers_and_the_query_is_checked(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let sid = server_id(&server);
        let member = app.member(&server, &owner);
        let path = format!("/servers/{sid}/events");
        app.get(&path, &member).assert_error(403, "MISSING_PERMISSION", "You need the Manage Server permission");
        app.get(&path, &app.user()).assert_code(404, "SERVER_NOT_FOUND");
        app.grant(&server, &owner, &member, bits::MANAGE_SERVER);
        app.get(&path, &member).assert_status(200);
        for query in ["?after=-1", "?limit=0", "?limit=1001", "?after=x", "?since=1"] {
            app.get(&format!("{path}{query}"), &owner).assert_code(400, "INVALID_QUERY");
        }
        // Another server's events are not this one's.
        let other = app.create_server(&owner);
        app.create_invite(&other, &owner, json!({}));
        assert!(events(app, &server, &owner, "").iter().all(|event| event["server_id"] == server["id"]));
    }
}
