//! Vanity URLs: the feature, one namespace with random codes, the 30-day cooldown, and joins.

use std::sync::Arc;

use invite_store::Backend;
use invite_store::testing::TestDatabase;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, bits, both_backends, server_id};

fn vanity_path(server: &Value) -> String {
    format!("/servers/{}/vanity-url", server_id(server))
}

/// A server with the `VANITY_URL` feature.
fn featured_server(app: &TestApp, owner: &TestUser) -> Value {
    let server = app.create_server(owner);
    app.patch(
        &format!("/servers/{}", server_id(&server)),
        owner,
        json!({"features": ["VANITY_URL"]}),
    )
    .assert_status(200);
    server
}

both_backends! {
    fn a_vanity_url_needs_the_feature_and_manage_server(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = vanity_path(&server);
        assert_eq!(app.get(&path, &owner).body, json!({"code": null, "uses": 0}));
        app.patch(&path, &owner, json!({"code": "rustaceans"})).assert_error(403, "MISSING_FEATURE", "This server lacks the VANITY_URL feature");
        app.patch(&format!("/servers/{}", server_id(&server)), &owner, json!({"features": ["VANITY_URL"]})).assert_status(200);
        let member = app.member(&server, &owner);
        app.patch(&path, &member, json!({"code": "rustaceans"})).assert_error(403, "MISSING_PERMISSION", "You need the Manage Server permission");
        app.get(&path, &member).assert_code(403, "MISSING_PERMISSION");
        app.grant(&server, &owner, &member, bits::MANAGE_SERVER);

        let set = app.patch(&path, &member, json!({"code": "Rustaceans"}));
        set.assert_status(200);
        assert_eq!(set.body, json!({"code": "rustaceans", "uses": 0}));
        assert_eq!(app.get(&format!("/servers/{}", server_id(&server)), &owner).body["vanity_code"], "rustaceans");
        for (body, message) in [
            (json!({"code": "ab"}), "vanity code must be between 3 and 32 characters"),
            (json!({"code": "no spaces"}), "vanity code may only contain letters a-z, digits 0-9 and hyphens"),
            (json!({"code": "-edge"}), "vanity code must not start or end with a hyphen"),
            (json!({"code": "a--b"}), "vanity code must not contain two hyphens in a row"),
            (json!({"code": "metrics"}), "this vanity code is reserved"),
            (json!({}), "code is required (a vanity code, or null to release it)"),
        ] {
            app.patch(&path, &owner, body).assert_error(400, "VALIDATION_ERROR", message);
        }
        assert_eq!(app.get(&path, &owner).body["code"], "rustaceans");
    }

    fn people_preview_and_join_by_vanity_code_and_uses_are_counted(app: &TestApp) {
        let owner = app.user();
        let server = featured_server(app, &owner);
        app.patch(&vanity_path(&server), &owner, json!({"code": "join-us"})).assert_status(200);
        let preview = app.request(reqwest::Method::GET, "/invites/Join-Us", None, None);
        preview.assert_status(200);
        assert_eq!((preview.body["code"].clone(), preview.body["inviter_id"].clone(), preview.body["expires_at"].clone()), (json!("join-us"), json!(null), json!(null)));
        let guest = app.user();
        let joined = app.raw(|c, base| c.post(format!("{base}/invites/join-us/accept")).bearer_auth(&guest.token));
        joined.assert_status(201);
        assert_eq!(app.get(&vanity_path(&server), &owner).body, json!({"code": "join-us", "uses": 1}));
        let members = app.get(&format!("/servers/{}/members", server_id(&server)), &owner);
        let member = members.body.as_array().unwrap().iter().find(|m| m["user_id"] == json!(guest.id)).unwrap().clone();
        assert_eq!(member["joined_via"]["source"], "vanity");
        assert_eq!(member["joined_via"]["invite_code"], "join-us");

        // Vanity invites stay out of invite lists and out of reach of the invite endpoints.
        let listed = app.get(&format!("/servers/{}/invites", server_id(&server)), &owner);
        assert_eq!(listed.body, json!([]));
        app.delete("/invites/join-us", &owner).assert_code(400, "VANITY_INVITE");
        let vanity_id = member["joined_via"]["invite_id"].as_str().unwrap().to_owned();
        app.delete(&format!("/servers/{}/invites/{vanity_id}", server_id(&server)), &owner).assert_code(400, "VANITY_INVITE");
        app.patch(&format!("/servers/{}/invites/{vanity_id}", server_id(&server)), &owner, json!({"max_uses": 1})).assert_code(400, "VANITY_INVITE");
        assert_eq!(app.get(&vanity_path(&server), &owner).body, json!({"code": "join-us", "uses": 1}));
        app.request(reqwest::Method::GET, "/invites/join-us", None, None).assert_status(200);
    }

    fn another_servers_code_is_taken_and_a_released_one_cools_down_for_thirty_days(app: &TestApp) {
        let (alice, bob) = (app.user(), app.user());
        let first = featured_server(app, &alice);
        let second = featured_server(app, &bob);
        app.patch(&vanity_path(&first), &alice, json!({"code": "crabs"})).assert_status(200);
        app.patch(&vanity_path(&second), &bob, json!({"code": "crabs"})).assert_error(409, "VANITY_TAKEN", "This vanity code is not available");

        let released = app.patch(&vanity_path(&first), &alice, json!({"code": null}));
        assert_eq!(released.body, json!({"code": null, "uses": 0}));
        app.get("/invites/crabs", &bob).assert_code(404, "INVITE_REVOKED");
        let cooling = app.patch(&vanity_path(&second), &bob, json!({"code": "crabs"}));
        cooling.assert_code(409, "VANITY_TAKEN");
        assert!(cooling.body["error"].as_str().unwrap().starts_with("This vanity code was released recently"), "{}", cooling.text);

        app.clock.advance(chrono::Duration::days(29));
        app.patch(&vanity_path(&second), &bob, json!({"code": "crabs"})).assert_code(409, "VANITY_TAKEN");
        app.clock.advance(chrono::Duration::days(2));
        let claimed = app.patch(&vanity_path(&second), &bob, json!({"code": "crabs"}));
        claimed.assert_status(200);
        let preview = app.get("/invites/crabs", &alice);
        assert_eq!(preview.body["server_id"], second["id"]);
    }

    fn the_releasing_server_can_take_its_code_back_at_once(app: &TestApp) {
        let owner = app.user();
        let server = featured_server(app, &owner);
        app.patch(&vanity_path(&server), &owner, json!({"code": "first-name"})).assert_status(200);
        app.patch(&vanity_path(&server), &owner, json!({"code": "second-name"})).assert_status(200);
        app.get("/invites/first-name", &owner).assert_code(404, "INVITE_REVOKED");
        let back = app.patch(&vanity_path(&server), &owner, json!({"code": "first-name"}));
        assert_eq!(back.body["code"], "first-name");
        app.get("/invites/first-name", &owner).assert_status(200);
        app.get("/invites/second-name", &owner).assert_code(404, "INVITE_REVOKED");
    }

    ; collisions_with_random_codes
}

/// Random codes drawn from bytes of 26 are all `aaaaaaaa`: a vanity code of that spelling
/// collides with a random invite, and a random code with a vanity one.
fn collisions_with_random_codes(backend: Backend) {
    let app = TestApp::spawn_with(
        TestDatabase::new(backend),
        Arc::new(|| Box::new(|dest: &mut [u8]| dest.fill(26))),
    );
    let owner = app.user();
    let server = featured_server(&app, &owner);
    let random = app.create_invite(&server, &owner, json!({}));
    assert_eq!(random["code"], "aaaaaaaa");
    app.patch(&vanity_path(&server), &owner, json!({"code": "aaaaaaaa"})).assert_error(
        409,
        "VANITY_TAKEN",
        "This vanity code is not available",
    );
    // The next random draw collides three times: 500 CODE_SPACE_EXHAUSTED, nothing written.
    let exhausted =
        app.post(&format!("/servers/{}/invites", server_id(&server)), &owner, json!({}));
    exhausted.assert_error(
        500,
        "CODE_SPACE_EXHAUSTED",
        "Could not generate a unique invite code, please try again",
    );
    assert_eq!(
        app.get(&format!("/servers/{}/invites", server_id(&server)), &owner)
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let other = featured_server(&app, &owner);
    app.delete(
        &format!("/servers/{}/invites/{}", server_id(&server), random["id"].as_str().unwrap()),
        &owner,
    )
    .assert_status(204);
    // Revoked, the random code still holds its name: never reissued, not even as a vanity code.
    app.patch(&vanity_path(&other), &owner, json!({"code": "aaaaaaaa"}))
        .assert_code(409, "VANITY_TAKEN");
}
