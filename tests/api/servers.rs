use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestResponse, TestUser, bits, both_backends, server_id};

/// A request with an optional body and `If-Match`.
fn send(
    app: &TestApp,
    user: &TestUser,
    (method, path, body, if_match): &(Method, String, Option<Value>, Option<&str>),
) -> TestResponse {
    let url = format!("{}{path}", app.base);
    app.raw(|client, _| {
        let mut request = client.request(method.clone(), &url).bearer_auth(&user.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(version) = if_match {
            request = request.header("if-match", *version);
        }
        request
    })
}

both_backends! {
    fn creating_a_server_makes_its_creator_owner_and_member(app: &TestApp) {
        let owner = app.user();
        let response = app.post("/servers", &owner, json!({"name": " Rust ", "icon_url": "https://cdn.example/r.png"}));
        response.assert_status(201);
        let server = &response.body;
        assert_eq!(server["name"], "Rust");
        assert_eq!(server["owner_id"], json!(owner.id));
        assert_eq!(server["default_permissions"], 1 | 2 | 16 | 32 | 64);
        assert_eq!((server["member_count"].clone(), server["features"].clone()), (json!(1), json!([])));
        assert_eq!((server["vanity_code"].clone(), server["invites_paused_until"].clone()), (json!(null), json!(null)));
        assert!(server["created_at"].as_str().unwrap().ends_with('Z'));

        let fetched = app.get(&format!("/servers/{}", server_id(server)), &owner);
        assert_eq!(fetched.body, *server);
        let members = app.get(&format!("/servers/{}/members", server_id(server)), &owner);
        assert_eq!(members.body[0]["user_id"], json!(owner.id));
        assert_eq!(members.body[0]["joined_via"], json!({"source": "owner", "invite_id": null, "invite_code": null, "inviter_id": null}));

        let custom = app.post("/servers", &owner, json!({"name": "Quiet", "default_permissions": 1}));
        assert_eq!(custom.body["default_permissions"], 1);
    }

    fn server_requests_are_validated(app: &TestApp) {
        let owner = app.user();
        app.post("/servers", &owner, json!({"name": ""})).assert_error(400, "VALIDATION_ERROR", "name must be between 1 and 100 characters");
        app.post("/servers", &owner, json!({"name": "x".repeat(101)})).assert_error(400, "VALIDATION_ERROR", "name must be between 1 and 100 characters");
        app.post("/servers", &owner, json!({"name": "x", "icon_url": "ftp://x"})).assert_error(400, "VALIDATION_ERROR", "icon_url must be an http or https URL of at most 2048 characters");
        // NUL cannot even be stored by PostgreSQL: refused up front on both backends.
        app.post("/servers", &owner, json!({"name": "a\u{0}b"})).assert_error(400, "VALIDATION_ERROR", "name must not contain control characters");
        app.post("/servers", &owner, json!({"name": "x", "icon_url": "https://cdn.example/\u{0}"})).assert_error(400, "VALIDATION_ERROR", "icon_url must be an http or https URL of at most 2048 characters");
        let server = app.create_server(&owner);
        app.post(&format!("/servers/{}/channels", server_id(&server)), &owner, json!({"name": "\u{0}\u{ec}\u{1F600}"})).assert_error(400, "VALIDATION_ERROR", "name must not contain control characters");
        app.put(&format!("/servers/{}/bans/{}", server_id(&server), Uuid::now_v7()), &owner, json!({"reason": "\u{1b}[31m"})).assert_error(400, "VALIDATION_ERROR", "reason must not contain control characters");
        app.post("/servers", &owner, json!({"name": "x", "default_permissions": 1_i64 << 40})).assert_code(400, "INVALID_JSON");
        app.post("/servers", &owner, json!({})).assert_code(400, "INVALID_JSON");
    }

    fn strangers_see_no_server(app: &TestApp) {
        let (_, server) = app.owned_server();
        let stranger = app.user();
        for path in [
            format!("/servers/{}", server_id(&server)),
            format!("/servers/{}/invites", server_id(&server)),
            format!("/servers/{}/members", server_id(&server)),
            format!("/servers/{}/channels", server_id(&server)),
            format!("/servers/{}/bans", server_id(&server)),
            format!("/servers/{}/audit-log", server_id(&server)),
            format!("/servers/{}", Uuid::now_v7()),
        ] {
            app.get(&path, &stranger).assert_error(404, "SERVER_NOT_FOUND", "Server not found");
        }
        app.post(&format!("/servers/{}/invites", server_id(&server)), &stranger, json!({}))
            .assert_error(404, "SERVER_NOT_FOUND", "Server not found");
    }

    fn editing_needs_manage_server_and_features_need_the_owner(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}", server_id(&server));
        let member = app.member(&server, &owner);
        app.patch(&path, &member, json!({"name": "Mine now"})).assert_error(403, "MISSING_PERMISSION", "You need the Manage Server permission");

        app.grant(&server, &owner, &member, bits::MANAGE_SERVER);
        let renamed = app.patch(&path, &member, json!({"name": "Renamed", "icon_url": null}));
        renamed.assert_status(200);
        assert_eq!(renamed.body["name"], "Renamed");
        app.patch(&path, &member, json!({"features": ["VANITY_URL"]})).assert_error(403, "OWNER_ONLY", "Only the server owner can do this");

        let featured = app.patch(&path, &owner, json!({"features": ["VANITY_URL"]}));
        assert_eq!(featured.body["features"], json!(["VANITY_URL"]));
        app.patch(&path, &owner, json!({"features": ["NOPE"]})).assert_code(400, "VALIDATION_ERROR");
        assert_eq!(app.get(&path, &owner).body["name"], "Renamed");
    }

    fn strangers_get_404_and_members_403_before_the_rules_of_their_request(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let id = server_id(&server).to_owned();
        let invite = app.create_invite(&server, &owner, json!({}));
        let invite_id = invite["id"].as_str().unwrap().to_owned();
        let member = app.member(&server, &owner);
        let stranger = app.user();
        // Every request breaks a rule of its body, query or If-Match, which only the owner,
        // who may make it, gets to hear about.
        let requests = [
            (Method::PATCH, format!("/servers/{id}"), Some(json!({"name": ""})), None),
            (Method::PUT, format!("/servers/{id}/invites-pause"), Some(json!({"until": "2000-01-01T00:00:00Z"})), None),
            (Method::PUT, format!("/servers/{id}/bans/{}", Uuid::now_v7()), Some(json!({"reason": "x".repeat(600)})), None),
            (Method::POST, format!("/servers/{id}/channels"), Some(json!({"name": ""})), None),
            (Method::POST, format!("/servers/{id}/invites"), Some(json!({"max_uses": 0})), None),
            (Method::GET, format!("/servers/{id}/invites?limit=0"), None, None),
            (Method::GET, format!("/servers/{id}/audit-log?limit=0"), None, None),
            (Method::GET, format!("/servers/{id}/invites/{invite_id}/members?limit=0"), None, None),
            (Method::PATCH, format!("/servers/{id}/vanity-url"), Some(json!({"code": "a"})), None),
            (Method::PATCH, format!("/servers/{id}/invites/{invite_id}"), Some(json!({})), Some("garbage")),
            (Method::DELETE, format!("/servers/{id}/invites/{invite_id}"), None, Some("garbage")),
        ];
        for request in &requests {
            let (method, path, ..) = request;
            send(app, &stranger, request).assert_error(404, "SERVER_NOT_FOUND", "Server not found");
            let refused = send(app, &member, request);
            assert_eq!((refused.status, refused.body["code"].as_str()), (403, Some("MISSING_PERMISSION")), "{method} {path}: {}", refused.text);
            let malformed = send(app, &owner, request);
            assert_eq!(malformed.status, 400, "{method} {path}: {}", malformed.text);
        }
        let members = (Method::GET, format!("/servers/{id}/members?limit=0"), None, None);
        send(app, &stranger, &members).assert_error(404, "SERVER_NOT_FOUND", "Server not found");
        send(app, &member, &members).assert_error(400, "INVALID_QUERY", "limit must be between 1 and 1000");

        // Nothing changed.
        let path = format!("/servers/{id}");
        assert_eq!(app.get(&path, &owner).body, app.get(&path, &member).body);
        assert_eq!(app.get(&path, &owner).body["name"], "Test server");
        assert_eq!(app.get(&format!("{path}/channels"), &owner).body, json!([]));
        assert_eq!(app.get(&format!("{path}/bans"), &owner).body, json!([]));
        assert_eq!(app.get(&format!("{path}/invites"), &owner).body.as_array().unwrap().len(), 2);
    }
}
