//! The reference integrations of `examples/`, run as their users would run them, against the
//! real service.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use invite_store::Backend;
use reqwest::Method;
use serde_json::json;

use crate::helpers::TestApp;

const ADMIN: &str = "admin-token-admin-token-admin-token-0";

/// An example's binary, built by `cargo test` beside this test's own.
fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let path = deps.parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace`, which builds examples",
        path.display()
    );
    path
}

/// `join_with_retry` meets a maintenance window, then an empty rate-limit bucket, and joins
/// once both are over, with one Idempotency-Key throughout.
#[test]
fn join_with_retry_rides_out_maintenance_and_a_rate_limit() {
    let app = TestApp::spawn_args(
        Backend::Sqlite,
        &["--admin-token", ADMIN, "--rate-limits", "on", "--rate-limit-accept", "1/4s"],
    );
    let owner = app.user();
    let server = app.create_server(&owner);
    let invite = app.create_invite(&server, &owner, json!({}));
    let guest = app.user();
    // The guest's bucket is empty: one accept (of another server's invite) spent it.
    let other = app.create_server(&owner);
    let spent = app.create_invite(&other, &owner, json!({}));
    app.accept(&spent, &guest).assert_status(201);
    // And the service is in maintenance for the next two seconds.
    let until = (Utc::now() + chrono::TimeDelta::seconds(2)).to_rfc3339();
    app.raw(|client, base| {
        client
            .put(format!("{base}/admin/maintenance"))
            .bearer_auth(ADMIN)
            .json(&json!({"until": until}))
    })
    .assert_status(200);

    let started = Instant::now();
    let output = Command::new(example("join_with_retry"))
        .args([&app.base, invite["code"].as_str().unwrap(), &guest.token])
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("Joined {}", server["id"].as_str().unwrap())), "{stdout}");
    assert!(stderr.contains("MAINTENANCE"), "it met the maintenance window: {stderr}");
    assert!(stderr.contains("RATE_LIMITED"), "it met the rate limit: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(app.uses(&invite), 1, "joined once");
    let members = app.request(
        Method::GET,
        &format!("/servers/{}/members", server["id"].as_str().unwrap()),
        Some(&owner),
        None,
    );
    assert_eq!(members.body.as_array().unwrap().len(), 2);
}
