//! The reference integrations of `examples/`, run as their users would run them, against the
//! real service.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
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
    let (owner, server, invite) = app.server_with_invite(json!({}));
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

/// `moderation` undoes a leaked link and sets raid protection, and the service ends in the
/// state the walk-through describes: the leaked invite revoked, a raid's pause audited and
/// lifted, and as members the three admitted before the pause and the one let in after it, not
/// the one the pause refused.
#[test]
fn moderation_undoes_a_leak_and_pauses_a_raid() {
    let app = TestApp::spawn(Backend::Sqlite);
    let moderator = app.user();
    let guests: Vec<_> = (0..5).map(|_| app.user()).collect();
    let tokens: Vec<&str> = guests.iter().map(|guest| guest.token.as_str()).collect();
    let output = Command::new(example("moderation"))
        .args([&app.base, &moderator.token, &tokens.join(",")])
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for line in [
        "undo: revoked true, removed 3, kept 0",
        "undo again: removed 0",
        "joining through the undone link: refused INVITE_REVOKED",
        "join 3: joined",
        "join 4: refused INVITES_PAUSED",
        "audit: invites paused for a raid, by the service",
        "after lifting the pause, the last stranger: joined",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    let sid = stdout
        .lines()
        .find_map(|line| line.strip_prefix("server ")?.strip_suffix(" created"))
        .expect("the example names its server");
    let members = app.get(&format!("/servers/{sid}/members"), &moderator);
    let mut ids: Vec<&str> =
        members.body.as_array().unwrap().iter().map(|m| m["user_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected: Vec<String> = [&moderator, &guests[0], &guests[1], &guests[2], &guests[4]]
        .map(|u| u.id.to_string())
        .into();
    expected.sort_unstable();
    assert_eq!(ids, expected, "the owner, the three before the pause, the one after it");
    let protection = app.get(&format!("/servers/{sid}/raid-protection"), &moderator);
    assert_eq!(protection.body, json!({"enabled": false}));
    let paused = app.get(&format!("/servers/{sid}"), &moderator);
    assert!(paused.body["invites_paused_until"].is_null(), "{}", paused.body);
}

/// The lines `child` prints, as they come (read on a thread of their own, so that a test can
/// wait for one with a timeout).
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let (sender, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    lines
}

/// `webhook_receiver` takes the service's signed deliveries and refuses a forged one.
#[test]
fn webhook_receiver_takes_signed_deliveries_and_refuses_forged_ones() {
    let app = TestApp::spawn_args(Backend::Sqlite, &["--webhook-allow-private", "on"]);
    let (owner, server) = app.owned_server();
    let sid = server["id"].as_str().unwrap();
    // The receiver needs the secret, which registering shows: register its address first.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/");
    let webhook = app.post(&format!("/servers/{sid}/webhooks"), &owner, json!({"url": url}));
    webhook.assert_status(201);
    let mut receiver = Command::new(example("webhook_receiver"))
        .arg(format!("127.0.0.1:{port}"))
        .env("WEBHOOK_SECRET", webhook.body["secret"].as_str().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut receiver);
    let next_line = || lines.recv_timeout(Duration::from_secs(20)).expect("the receiver printed");
    assert!(next_line().starts_with("receiving webhooks on"));

    let invite = app.create_invite(&server, &owner, json!({}));
    let line = next_line();
    assert!(
        line.contains("INVITE_CREATE") && line.contains(invite["code"].as_str().unwrap()),
        "{line}"
    );
    // A delivery signed with another secret is refused, and the receiver says why.
    let forged = reqwest::blocking::Client::new()
        .post(&url)
        .header("Invite-Signature", format!("t={},v1={}", Utc::now().timestamp(), "0".repeat(64)))
        .body(r#"{"id":"forged","type":"MEMBER_JOIN"}"#)
        .send()
        .unwrap();
    assert_eq!(forged.status().as_u16(), 400);
    assert_eq!(next_line(), "refused a delivery: signature mismatch");
    receiver.kill().unwrap();
    receiver.wait().unwrap();
    // The service logged the real delivery as answered (just after the receiver printed it).
    let path =
        format!("/servers/{sid}/webhooks/{}/deliveries", webhook.body["id"].as_str().unwrap());
    let started = Instant::now();
    let logged = loop {
        let deliveries = app.get(&path, &owner).body["deliveries"].clone();
        if deliveries.as_array().is_some_and(|all| !all.is_empty())
            || started.elapsed() > Duration::from_secs(10)
        {
            break deliveries;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(logged[0]["status"], 204, "{logged}");
    assert_eq!(logged[0]["event_type"], "INVITE_CREATE", "{logged}");
}

/// `gateway_listener` prints a server's events and, when its instance stops, moves to the next
/// one and resumes there: every change, made before, during and after the switch, is printed
/// once and in order.
#[test]
fn gateway_listener_resumes_on_the_next_instance_when_one_stops() {
    let app = TestApp::spawn(Backend::Postgres);
    let other = app.second_instance(&[]);
    let (owner, server) = app.owned_server();
    let sid = server["id"].as_str().unwrap();
    let mut listener = Command::new(example("gateway_listener"))
        .args([&format!("{},{}", app.base, other.base), sid, &owner.token])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut listener);
    // Everything it printed, kept for the checks at the end and for the failure messages.
    let mut printed = Vec::new();
    let mut until = |needles: &[&str]| loop {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) else {
            panic!("no line with {needles:?} came; the listener printed {printed:#?}")
        };
        printed.push(line.clone());
        if needles.iter().all(|needle| line.contains(needle)) {
            break line;
        }
    };
    until(&[&format!("connected to {} at seq ", app.base)]);
    let invite = app.create_invite(&server, &owner, json!({}));
    until(&["INVITE_CREATE", invite["code"].as_str().unwrap()]);

    // Users join through the other instance all through the switch, so that some joins are
    // committed while the listener is between instances.
    let stop = AtomicBool::new(false);
    // The restarted instance is kept to the end: it owns the database `other` uses.
    let (_restarted, mut joined) = std::thread::scope(|scope| {
        let joiner = scope.spawn(|| {
            let mut joined = Vec::new();
            while !stop.load(Ordering::Relaxed) && joined.len() < 200 {
                let user = other.user();
                other.accept(&invite, &user).assert_status(201);
                joined.push(user.id.to_string());
                std::thread::sleep(Duration::from_millis(20));
            }
            joined
        });
        // The stopping instance closes its sessions with 1012: resume on another.
        let app = app.restart(&[]);
        until(&[&format!("connected to {} at seq ", other.base)]);
        stop.store(true, Ordering::Relaxed);
        (app, joiner.join().unwrap())
    });
    let last = other.user();
    other.accept(&invite, &last).assert_status(201);
    joined.push(last.id.to_string());
    until(&["MEMBER_JOIN", &last.id.to_string()]);
    listener.kill().unwrap();
    listener.wait().unwrap();

    let transcript = printed.join("\n");
    let events: Vec<(i64, &str, serde_json::Value)> = printed
        .iter()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            let seq = parts.next()?.parse().ok()?;
            Some((seq, parts.next()?, serde_json::from_str(parts.next()?).unwrap()))
        })
        .collect();
    assert!(events.windows(2).all(|pair| pair[0].0 < pair[1].0), "{transcript}");
    let kinds: Vec<&str> = events.iter().map(|(_, kind, _)| *kind).collect();
    assert_eq!(kinds[0], "INVITE_CREATE", "{transcript}");
    assert!(kinds[1..].iter().all(|kind| *kind == "MEMBER_JOIN"), "{transcript}");
    let joins: Vec<&str> =
        events[1..].iter().map(|(_, _, d)| d["user_id"].as_str().unwrap()).collect();
    assert_eq!(joins, joined, "every join printed once, in order:\n{transcript}");
    let counts: Vec<i64> =
        events[1..].iter().map(|(_, _, d)| d["member_count"].as_i64().unwrap()).collect();
    assert_eq!(counts, (2..).take(joined.len()).collect::<Vec<i64>>(), "{transcript}");
    assert!(events.iter().all(|(_, _, d)| d["server_id"] == sid), "{transcript}");
    // It left the stopping instance for the next one, resuming where it was.
    let position = |prefix: &str| printed.iter().position(|line| line.starts_with(prefix));
    let disconnected = position("disconnected (1012 ").expect(&transcript);
    let reconnected = position(&format!("connected to {} ", other.base)).expect(&transcript);
    assert!(disconnected < reconnected, "{transcript}");
    // The replay comes before `RESUMED`, which counts it.
    let resumed = position("resumed ").expect(&transcript);
    assert!(reconnected < resumed, "{transcript}");
    let replayed = resumed - reconnected - 1;
    assert_eq!(printed[resumed], format!("resumed {replayed} events"), "{transcript}");
    let resumed_from: i64 = printed[disconnected].rsplit(' ').next().unwrap().parse().unwrap();
    assert!(resumed_from >= events[0].0, "{transcript}");
}
