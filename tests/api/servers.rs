use serde_json::json;
use uuid::Uuid;

use crate::helpers::{TestApp, bits, both_backends, server_id};

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
        app.post("/servers", &owner, json!({"name": "x", "default_permissions": 1_i64 << 40})).assert_code(400, "INVALID_JSON");
        app.post("/servers", &owner, json!({})).assert_code(400, "INVALID_JSON");
    }

    fn strangers_see_no_server(app: &TestApp) {
        let owner = app.user();
        let server = app.create_server(&owner);
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
        let owner = app.user();
        let server = app.create_server(&owner);
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
}
