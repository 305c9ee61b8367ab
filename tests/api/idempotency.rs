//! `Idempotency-Key` on every POST (contract section 6, Stripe's semantics): a replay returns
//! the first response without doing the work again, a key on another request is refused, a twin
//! in flight is told so, malformed keys are refused, and keys expire after 24 hours.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use invite_store::Backend;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, TestUser, both_backends, server_id};

fn keyed(
    app: &TestApp,
    path: &str,
    user: &TestUser,
    key: &str,
    body: Option<Value>,
) -> TestResponse {
    app.raw(|client, base| {
        let request = client
            .request(Method::POST, format!("{base}{path}"))
            .bearer_auth(&user.token)
            .header("Idempotency-Key", key);
        match body {
            Some(body) => request.json(&body),
            None => request,
        }
    })
}

#[track_caller]
fn assert_replay_of(replay: &TestResponse, first: &TestResponse) {
    assert_eq!(replay.status, first.status, "{}", replay.text);
    assert_eq!(replay.text, first.text, "the very same body");
    assert_eq!(replay.header("etag"), first.header("etag"));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.header("idempotent-replayed"), None);
    replay.assert_json();
}

fn member_rows(app: &TestApp, server: &Value) -> usize {
    let limit = invite_core::server::PageLimit::parse(Some(1000), 1000, 1000).unwrap();
    app.conn().list_members(server_id(server).parse().unwrap(), None, limit).unwrap().len()
}

both_backends! {
    fn every_post_replays_its_first_response(app: &TestApp) {
        let owner = app.user();
        let first = keyed(app, "/servers", &owner, "server-1", Some(json!({"name": "Rust"})));
        first.assert_status(201);
        assert_replay_of(&keyed(app, "/servers", &owner, "server-1", Some(json!({"name": "Rust"}))), &first);
        let server = first.body;

        let path = format!("/servers/{}/invites", server_id(&server));
        let created = keyed(app, &path, &owner, "invite-1", Some(json!({"max_uses": 3})));
        created.assert_status(201);
        assert_eq!(created.header("etag"), Some("\"1\""));
        assert_replay_of(&keyed(app, &path, &owner, "invite-1", Some(json!({"max_uses": 3}))), &created);
        assert_eq!(app.get(&path, &owner).body.as_array().unwrap().len(), 1, "one invite, not two");

        let channels = format!("/servers/{}/channels", server_id(&server));
        let channel = keyed(app, &channels, &owner, "channel-1", Some(json!({"name": "general"})));
        channel.assert_status(201);
        assert_replay_of(&keyed(app, &channels, &owner, "channel-1", Some(json!({"name": "general"}))), &channel);
        assert_eq!(app.get(&channels, &owner).body.as_array().unwrap().len(), 1);

        // The accept: a retry whose first answer was lost is told it joined, not that it is
        // already a member, and the invite's uses count one join.
        let guest = app.user();
        let accept = format!("/invites/{}/accept", created.body["code"].as_str().unwrap());
        let joined = keyed(app, &accept, &guest, "join-1", None);
        joined.assert_status(201);
        assert_eq!(joined.body, json!({"message": "Joined server", "server_id": server["id"]}));
        assert_replay_of(&keyed(app, &accept, &guest, "join-1", None), &joined);
        assert_eq!(app.uses(&created.body), 1);
        assert_eq!(member_rows(app, &server), 2);
        // Without the key, the same retry is what it always was.
        app.accept(&created.body, &guest).assert_code(409, "ALREADY_MEMBER");
    }

    fn a_key_names_one_request_of_one_user(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites", server_id(&server));
        keyed(app, &path, &owner, "k", Some(json!({"max_uses": 3}))).assert_status(201);
        let other_body = keyed(app, &path, &owner, "k", Some(json!({"max_uses": 4})));
        other_body.assert_error(422, "IDEMPOTENCY_KEY_REUSED",
            "This Idempotency-Key was used for another request (method, path or body)");
        let other_server = app.create_server(&owner);
        keyed(app, &format!("/servers/{}/invites", server_id(&other_server)), &owner, "k", Some(json!({"max_uses": 3})))
            .assert_code(422, "IDEMPOTENCY_KEY_REUSED");
        keyed(app, "/servers", &owner, "k", Some(json!({"name": "x"}))).assert_code(422, "IDEMPOTENCY_KEY_REUSED");
        assert_eq!(app.get(&path, &owner).body.as_array().unwrap().len(), 1);
        // Keys are per user: another member's "k" is another key.
        let admin = app.member_with(&server, &owner, crate::helpers::bits::CREATE_INVITES);
        let theirs = keyed(app, &path, &admin, "k", Some(json!({"max_uses": 4})));
        theirs.assert_status(201);
        assert_eq!(theirs.header("idempotent-replayed"), None);
    }

    fn malformed_keys_are_refused_and_change_nothing(app: &TestApp) {
        let owner = app.user();
        let long = "k".repeat(256);
        for key in ["", long.as_str(), "tab\there"] {
            keyed(app, "/servers", &owner, key, Some(json!({"name": "x"})))
                .assert_error(400, "VALIDATION_ERROR", "Idempotency-Key must be 1 to 255 printable ASCII characters");
        }
        let accented = app.raw(|client, base| {
            client.post(format!("{base}/servers")).bearer_auth(&owner.token)
                .header("Idempotency-Key", reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap())
                .json(&json!({"name": "x"}))
        });
        accented.assert_code(400, "VALIDATION_ERROR");
        // 255 printable characters are fine.
        keyed(app, "/servers", &owner, &"k".repeat(255), Some(json!({"name": "x"}))).assert_status(201);
    }

    fn refusals_are_decided_again(app: &TestApp) {
        let (owner, server, invite) = app.server_with_invite(json!({}));
        let pause = format!("/servers/{}/invites-pause", server_id(&server));
        app.put(&pause, &owner, json!({})).assert_status(204);
        let guest = app.user();
        let accept = format!("/invites/{}/accept", invite["code"].as_str().unwrap());
        keyed(app, &accept, &guest, "try", None).assert_code(403, "INVITES_PAUSED");
        app.delete(&pause, &owner).assert_status(204);
        let joined = keyed(app, &accept, &guest, "try", None);
        joined.assert_status(201);
        assert_eq!(joined.header("idempotent-replayed"), None, "a refusal is not what the key stands for");
    }

    fn keys_expire_after_a_day(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/invites", server_id(&server));
        let first = keyed(app, &path, &owner, "daily", Some(json!({})));
        app.clock.advance(chrono::Duration::hours(23));
        assert_replay_of(&keyed(app, &path, &owner, "daily", Some(json!({}))), &first);
        app.clock.advance(chrono::Duration::hours(2));
        let again = keyed(app, &path, &owner, "daily", Some(json!({})));
        again.assert_status(201);
        assert_eq!(again.header("idempotent-replayed"), None);
        assert_ne!(again.body["id"], first.body["id"], "done again: the key was free");
    }

    fn twins_racing_join_once(app: &TestApp) {
        let (_, server, invite) = app.server_with_invite(json!({"max_uses": 5}));
        let guest = app.user();
        let accept = format!("/invites/{}/accept", invite["code"].as_str().unwrap());
        let barrier = Arc::new(Barrier::new(8));
        let answers: Vec<TestResponse> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8).map(|_| {
                let (barrier, accept, guest) = (barrier.clone(), &accept, &guest);
                scope.spawn(move || { barrier.wait(); keyed(app, accept, guest, "twin", None) })
            }).collect();
            handles.into_iter().map(|handle| handle.join().unwrap()).collect()
        });
        let fresh = answers.iter().filter(|a| a.status == 201 && a.header("idempotent-replayed").is_none()).count();
        assert_eq!(fresh, 1, "{:?}", answers.iter().map(|a| &a.text).collect::<Vec<_>>());
        for answer in &answers {
            assert!(answer.status == 201 || answer.body["code"] == "IDEMPOTENCY_IN_FLIGHT", "{}", answer.text);
        }
        assert_eq!(app.uses(&invite), 1);
        assert_eq!(member_rows(app, &server), 2);
    }

    ; a_twin_in_flight_is_refused
}

/// A twin that arrives while its first request is held up in the database is told 409, and
/// the first one's answer is the key's afterwards.
fn a_twin_in_flight_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend);
    let (_, _, invite) = app.server_with_invite(json!({}));
    let guest = app.user();
    let accept = format!("/invites/{}/accept", invite["code"].as_str().unwrap());
    // Hold up the accept: take the lock it needs on a connection of the test's own.
    let mut blocker = app.conn();
    match backend {
        Backend::Sqlite => blocker.batch_execute("BEGIN IMMEDIATE").unwrap(),
        Backend::Postgres => blocker
            .batch_execute(&format!(
                "BEGIN; SELECT 1 FROM invites WHERE id = '{}' FOR UPDATE",
                invite["id"].as_str().unwrap()
            ))
            .unwrap(),
    }
    std::thread::scope(|scope| {
        let first = scope.spawn(|| keyed(&app, &accept, &guest, "held", None));
        std::thread::sleep(Duration::from_millis(400));
        keyed(&app, &accept, &guest, "held", None).assert_error(
            409,
            "IDEMPOTENCY_IN_FLIGHT",
            "A request with this Idempotency-Key is still being processed, retry shortly",
        );
        blocker.batch_execute("COMMIT").unwrap();
        let first = first.join().unwrap();
        first.assert_status(201);
        assert_replay_of(&keyed(&app, &accept, &guest, "held", None), &first);
    });
    assert_eq!(app.uses(&invite), 1);
}
