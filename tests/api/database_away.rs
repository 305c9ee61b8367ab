//! The database away: fast, clear 503s, never a hang or a 500.

use std::time::{Duration, Instant};

use invite_store::{DatabaseUrl, DbPool, PoolConfig};
use serde_json::json;

use crate::helpers::TestApp;

/// A server whose database is a PostgreSQL port nothing listens on.
fn app_without_database() -> TestApp {
    let mut config =
        PoolConfig::new(DatabaseUrl::parse("postgres://postgres@127.0.0.1:1/none").unwrap());
    config.checkout_timeout = Duration::from_secs(1);
    TestApp::spawn_on(DbPool::new(&config), None, invite_http::server::random::os_random())
}

#[test]
fn requests_needing_the_database_answer_503_fast() {
    let app = app_without_database();
    let user = app.user();
    let started = Instant::now();
    let response = app.post("/servers", &user, json!({"name": "x"}));
    response.assert_error(
        503,
        "SERVICE_UNAVAILABLE",
        "The service is temporarily unavailable, please retry",
    );
    assert_eq!(response.header("retry-after"), Some("2"));
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(!response.text.contains("127.0.0.1"), "no database detail leaks: {}", response.text);

    let accept = app.request(reqwest::Method::POST, "/invites/abcdefgh/accept", Some(&user), None);
    accept.assert_code(503, "SERVICE_UNAVAILABLE");
    let preview = app.request(reqwest::Method::GET, "/invites/abcdefgh", None, None);
    preview.assert_code(503, "SERVICE_UNAVAILABLE");
    // Requests that need no database still work.
    app.get("/healthz", &user).assert_status(200);
}

#[test]
fn readiness_names_the_failed_check() {
    let app = app_without_database();
    let ready = app.request(reqwest::Method::GET, "/readyz", None, None);
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.body["checks"]["database"], "unavailable");
    assert_eq!(ready.body["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(ready.body["error"], "Not ready: the database check failed");
    assert_eq!(ready.header("retry-after"), Some("2"));
}
