use serde_json::json;

use crate::helpers::{TestApp, bits, both_backends, server_id};

both_backends! {
    fn paused_invites_refuse_joins_until_resumed(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites-pause", server_id(&server));
        let invite = app.create_invite(&server, &owner, json!({}));
        let member = app.member(&server, &owner);
        app.put(&path, &member, json!({})).assert_error(403, "MISSING_PERMISSION", "You need the Manage Server permission");

        app.put(&path, &owner, json!({})).assert_status(204);
        let server_now = app.get(&format!("/servers/{}", server_id(&server)), &owner);
        assert_eq!(server_now.body["invites_paused_until"], "indefinitely");
        let preview = app.get(&format!("/invites/{}", invite["code"].as_str().unwrap()), &owner);
        assert_eq!(preview.body["invites_paused"], true);
        app.accept(&invite, &app.user()).assert_error(403, "INVITES_PAUSED", "Invites to this server are paused");

        app.delete(&path, &owner).assert_status(204);
        app.accept(&invite, &app.user()).assert_status(201);
        let preview = app.get(&format!("/invites/{}", invite["code"].as_str().unwrap()), &owner);
        assert_eq!(preview.body["invites_paused"], false);
    }

    fn a_timed_pause_ends_by_itself(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let manager = app.member_with(&server, &owner, bits::MANAGE_SERVER);
        let path = format!("/servers/{}/invites-pause", server_id(&server));
        let invite = app.create_invite(&server, &owner, json!({}));
        let until = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        app.put(&path, &manager, json!({"until": until})).assert_status(204);
        app.put(&path, &manager, json!({"until": "2001-01-01T00:00:00Z"})).assert_error(400, "VALIDATION_ERROR", "until must be in the future");
        app.put(&path, &manager, json!({"until": "tomorrow"})).assert_code(400, "INVALID_JSON");
        app.accept(&invite, &app.user()).assert_code(403, "INVITES_PAUSED");
        app.clock.advance(chrono::Duration::minutes(61));
        app.accept(&invite, &app.user()).assert_status(201);
        assert_eq!(app.get(&format!("/servers/{}", server_id(&server)), &owner).body["invites_paused_until"], json!(null));
    }
}
