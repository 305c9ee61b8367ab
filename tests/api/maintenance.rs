//! Maintenance mode (contract section 6): writes refused with the operator's message and
//! `Retry-After`, reads and previews going on, the operator's switch, and every instance on the
//! database following it.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use invite_store::Backend;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, on_both_backends, server_id, until};

const ADMIN: &str = "admin-token-admin-token-admin-token-0";

fn admin(app: &TestApp, method: Method, body: Option<Value>, token: Option<&str>) -> TestResponse {
    app.raw(|client, base| {
        let mut request = client.request(method, format!("{base}/admin/maintenance"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match body {
            Some(body) => request.json(&body),
            None => request,
        }
    })
}

fn writes_wait_while_reads_go_on(backend: Backend) {
    let app = TestApp::spawn_args(backend, &["--admin-token", ADMIN]);
    let (owner, server, invite) = app.server_with_invite(json!({"max_uses": 5}));
    let until =
        (Utc::now() + chrono::TimeDelta::minutes(30)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let started = admin(
        &app,
        Method::PUT,
        Some(json!({"message": "Moving to a bigger database", "until": until})),
        Some(ADMIN),
    );
    started.assert_status(200);
    assert_eq!(started.body["active"], true);
    assert_eq!(started.body["message"], "Moving to a bigger database");
    assert_eq!(started.body["until"], until);

    let refused = app.accept(&invite, &app.user());
    refused.assert_error(503, "MAINTENANCE", "Moving to a bigger database");
    // Half an hour away: clients come back within a minute, not in half an hour.
    assert_eq!(refused.header("retry-after"), Some("60"));
    app.post("/servers", &owner, json!({"name": "x"})).assert_code(503, "MAINTENANCE");
    app.delete(
        &format!("/servers/{}/invites/{}", server_id(&server), invite["id"].as_str().unwrap()),
        &owner,
    )
    .assert_code(503, "MAINTENANCE");
    // Even a request without a token is told about the maintenance, not about its token.
    app.request(Method::POST, "/servers", None, None).assert_code(503, "MAINTENANCE");
    assert_eq!(app.uses(&invite), 0);

    let code = invite["code"].as_str().unwrap();
    app.request(Method::GET, &format!("/invites/{code}"), None, None).assert_status(200);
    app.get(&format!("/servers/{}", server_id(&server)), &owner).assert_status(200);
    let ready = app.request(Method::GET, "/readyz", None, None);
    ready.assert_status(200);
    assert_eq!(ready.body["maintenance"]["active"], true, "{}", ready.text);
    let status = app.request(Method::GET, "/status", None, None);
    assert_eq!(status.body["status"], "maintenance", "{}", status.text);
    assert_eq!(status.body["maintenance"]["message"], "Moving to a bigger database");
    let metrics = app.request(Method::GET, "/metrics", None, None).text;
    assert!(metrics.contains("invite_maintenance 1"), "the gauge shows it");

    admin(&app, Method::DELETE, None, Some(ADMIN)).assert_status(204);
    app.accept(&invite, &app.user()).assert_status(201);
    let switch = admin(&app, Method::GET, None, Some(ADMIN));
    assert_eq!(
        (switch.body["active"].clone(), switch.body["enabled"].clone()),
        (json!(false), json!(false))
    );
}

fn the_switch_is_the_operators_alone(backend: Backend) {
    let app = TestApp::spawn_args(backend, &["--admin-token", ADMIN]);
    let user = app.user();
    for token in [None, Some("wrong-token-wrong-token-wrong-token!!"), Some(user.token.as_str())] {
        let refused = admin(&app, Method::PUT, Some(json!({})), token);
        refused.assert_code(401, "UNAUTHORIZED");
    }
    let past = (Utc::now() - chrono::TimeDelta::minutes(1)).to_rfc3339();
    admin(&app, Method::PUT, Some(json!({"until": past})), Some(ADMIN)).assert_error(
        400,
        "VALIDATION_ERROR",
        "until must be in the future",
    );
    admin(&app, Method::PUT, Some(json!({"message": "x".repeat(501)})), Some(ADMIN))
        .assert_code(400, "VALIDATION_ERROR");
    admin(&app, Method::PUT, Some(json!({"mesage": "typo"})), Some(ADMIN))
        .assert_code(400, "INVALID_JSON");
    // Nothing of that switched anything.
    app.post("/servers", &user, json!({"name": "still open"})).assert_status(201);

    // Without a configured token the endpoints do not exist.
    let closed = TestApp::spawn(backend);
    admin(&closed, Method::PUT, Some(json!({})), Some(ADMIN)).assert_code(404, "NOT_FOUND");
    admin(&closed, Method::GET, None, None).assert_code(404, "NOT_FOUND");
}

fn started_in_maintenance_from_the_settings(backend: Backend) {
    let app = TestApp::spawn_args(backend, &["--maintenance", "on"]);
    let user = app.user();
    let refused = app.post("/servers", &user, json!({"name": "x"}));
    refused.assert_error(
        503,
        "MAINTENANCE",
        "The service is in maintenance mode, please retry later",
    );
    assert_eq!(refused.header("retry-after"), Some("60"), "no planned end: a minute");
    // A window whose end has passed is over by itself.
    let past = (Utc::now() - chrono::TimeDelta::seconds(1)).to_rfc3339();
    let over = app.second_instance(&["--maintenance", "on", "--maintenance-until", &past]);
    over.post("/servers", &user, json!({"name": "x"})).assert_status(201);
}

fn retry_after_counts_down_to_the_end_at_most_a_minute(backend: Backend) {
    let app = TestApp::spawn_args(backend, &["--admin-token", ADMIN]);
    let user = app.user();
    let set = |until: String| {
        admin(
            &app,
            Method::PUT,
            Some(json!({"message": "Upgrading", "until": until})),
            Some(ADMIN),
        )
        .assert_status(200);
        let refused = app.post("/servers", &user, json!({"name": "x"}));
        refused.assert_error(503, "MAINTENANCE", "Upgrading");
        refused.header("retry-after").unwrap().parse::<u64>().unwrap()
    };
    // Years away: a minute, so that clients notice an early end.
    assert_eq!(set("2030-01-01T00:00:00Z".to_owned()), 60);
    // Seconds away: until the end.
    let soon =
        (Utc::now() + chrono::TimeDelta::seconds(20)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let retry = set(soon);
    assert!((1..=20).contains(&retry), "until the end: {retry}");
}

fn every_instance_follows_the_switch_within_seconds(backend: Backend) {
    let first = TestApp::spawn_args(backend, &["--admin-token", ADMIN]);
    let second = first.second_instance(&[]);
    let user = first.user();
    second.post("/servers", &user, json!({"name": "before"})).assert_status(201);
    admin(&first, Method::PUT, Some(json!({"message": "Back soon"})), Some(ADMIN))
        .assert_status(200);
    let followed = until(|| second.post("/servers", &user, json!({"name": "x"})).status == 503);
    assert!(followed < Duration::from_secs(5), "the second instance followed after {followed:?}");
    second.post("/servers", &user, json!({"name": "x"})).assert_error(
        503,
        "MAINTENANCE",
        "Back soon",
    );
    admin(&first, Method::DELETE, None, Some(ADMIN)).assert_status(204);
    let followed = until(|| second.post("/servers", &user, json!({"name": "x"})).status == 201);
    assert!(followed < Duration::from_secs(5), "the second instance followed after {followed:?}");
}

on_both_backends!(
    writes_wait_while_reads_go_on,
    the_switch_is_the_operators_alone,
    started_in_maintenance_from_the_settings,
    retry_after_counts_down_to_the_end_at_most_a_minute,
    every_instance_follows_the_switch_within_seconds,
);
