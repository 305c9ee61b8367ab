//! Webhooks (contract section 9): registration, signed and ordered deliveries to a receiver
//! written here, retries, a receiver that hangs, giving up after a day, and the refusals.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use invite_store::Backend;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, on_both_backends, server_id, until};

/// What the receiver does with a delivery.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    Hang,
}

/// A delivery as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An HTTP receiver answering each delivery with the next scripted answer (then 200).
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    /// While set, every delivery is answered 500, whatever the script says.
    failing: Arc<AtomicBool>,
}

impl Receiver {
    fn start(script: Vec<Answer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(AtomicBool::new(false));
        let (log, fail) = (received.clone(), failing.clone());
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap_or_default();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.trim_end().split_once(':') {
                        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(name, _)| name == "content-length")
                    .map_or(0, |(_, value)| value.parse().unwrap());
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap_or_default();
                log.lock().unwrap().push(Received { headers, body, at: Instant::now() });
                let answer = script.next().unwrap_or(Answer::Status(200));
                let answer = if fail.load(Ordering::SeqCst) { Answer::Status(500) } else { answer };
                match answer {
                    Answer::Status(status) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                    }
                    // Keep the connection open, saying nothing, for longer than the timeout.
                    Answer::Hang => {
                        let held = stream;
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_secs(30));
                            drop(held);
                        });
                    }
                }
            }
        });
        Self { url, received, failing }
    }

    /// The port it listens on (at 127.0.0.1).
    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().trim_end_matches("/hooks").parse().unwrap()
    }

    /// Waits until `count` deliveries arrived (at most 30 s); returns them.
    fn wait_for(&self, count: usize) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let received = self.received.lock().unwrap().clone();
            if received.len() >= count {
                return received;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "only {} deliveries: {received:?}",
                received.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn app(backend: Backend) -> TestApp {
    TestApp::spawn_args(backend, &["--webhook-allow-private", "on"])
}

fn register(app: &TestApp, server: &Value, owner: &TestUser, body: Value) -> Value {
    let created = app.post(&format!("/servers/{}/webhooks", server_id(server)), owner, body);
    created.assert_status(201);
    created.body
}

/// Checks a delivery's signature as a receiver would (`examples/webhook_receiver.rs`).
fn assert_signed(delivery: &Received, secret: &str) {
    let signature = delivery.header("invite-signature").expect("signed");
    let timestamp: i64 =
        signature.split(',').find_map(|part| part.strip_prefix("t=")).unwrap().parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 120, "a fresh timestamp");
    assert_eq!(signature, invite_runtime::webhooks::signature(secret, timestamp, &delivery.body));
}

fn deliveries_are_signed_ordered_and_filtered(backend: Backend) {
    let app = app(backend);
    let (owner, server) = app.owned_server();
    let receiver = Receiver::start(Vec::new());
    let webhook = register(
        &app,
        &server,
        &owner,
        json!({"url": receiver.url, "events": ["INVITE_CREATE", "MEMBER_JOIN"]}),
    );
    let secret = webhook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{webhook}");
    assert_eq!(webhook["events"], json!(["INVITE_CREATE", "MEMBER_JOIN"]));
    assert_eq!(webhook["enabled"], true);

    let invite = app.create_invite(&server, &owner, json!({"max_uses": 5}));
    let guest = app.user();
    app.accept(&invite, &guest).assert_status(201);
    // Not subscribed: skipped, and never delays what follows.
    app.put(&format!("/servers/{}/invites-pause", server_id(&server)), &owner, json!({}))
        .assert_status(204);
    let second = app.create_invite(&server, &owner, json!({}));

    let received = receiver.wait_for(3);
    let bodies: Vec<Value> = received.iter().map(Received::json).collect();
    let kinds: Vec<&str> = bodies.iter().map(|body| body["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["INVITE_CREATE", "MEMBER_JOIN", "INVITE_CREATE"]);
    assert_eq!(bodies[0]["data"]["code"], invite["code"]);
    assert_eq!(bodies[1]["data"]["user_id"], guest.id.to_string());
    assert_eq!(bodies[2]["data"]["code"], second["code"]);
    let ids: Vec<i64> =
        bodies.iter().map(|body| body["id"].as_str().unwrap().parse().unwrap()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    for (delivery, body) in received.iter().zip(&bodies) {
        assert_signed(delivery, &secret);
        assert_eq!(delivery.header("invite-event-id"), body["id"].as_str());
        assert_eq!(delivery.header("invite-event-type"), body["type"].as_str());
        assert_eq!(delivery.header("content-type"), Some("application/json"));
    }
    // The secret is shown once.
    let listed = app.get(&format!("/servers/{}/webhooks", server_id(&server)), &owner);
    assert_eq!(listed.body[0]["secret"], Value::Null);
    assert_eq!(listed.body[0]["url"], receiver.url);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.received.lock().unwrap().len(), 3, "nothing else was delivered");
}

fn a_failed_delivery_is_retried_and_logged(backend: Backend) {
    let app = app(backend);
    let (owner, server) = app.owned_server();
    let receiver = Receiver::start(vec![Answer::Status(500), Answer::Status(503)]);
    let webhook = register(&app, &server, &owner, json!({"url": receiver.url}));
    let invite = app.create_invite(&server, &owner, json!({}));
    let received = receiver.wait_for(3);
    let bodies: Vec<Value> = received.iter().map(Received::json).collect();
    assert!(
        bodies.iter().all(|body| body["data"]["code"] == invite["code"]),
        "the same event again"
    );
    // Waits grow: at least a second, then at least two.
    assert!(received[1].at - received[0].at >= Duration::from_millis(900));
    assert!(received[2].at - received[1].at >= Duration::from_millis(1900));
    let path = format!(
        "/servers/{}/webhooks/{}/deliveries",
        server_id(&server),
        webhook["id"].as_str().unwrap()
    );
    // The receiver has its third request before the service has logged its answer.
    let mut log = app.get(&path, &owner);
    until(|| {
        log = app.get(&path, &owner);
        log.body["deliveries"].as_array().is_some_and(|logged| logged.len() == 3)
    });
    let deliveries = log.body["deliveries"].as_array().unwrap().clone();
    let seen: Vec<(i64, Value)> = deliveries
        .iter()
        .rev()
        .map(|d| (d["attempt"].as_i64().unwrap(), d["status"].clone()))
        .collect();
    assert_eq!(seen, [(1, json!(500)), (2, json!(503)), (3, json!(200))], "{}", log.text);
    assert_eq!(deliveries[0]["error"], Value::Null);
    assert_eq!(deliveries[2]["error"], "the receiver answered 500");
    assert_eq!(log.body["webhook"]["failed_attempts"], 0);
    let metrics = app.request(reqwest::Method::GET, "/metrics", None, None).text;
    assert!(metrics.contains("invite_webhook_deliveries_total{outcome=\"failed\"} 2"), "{metrics}");
    assert!(
        metrics.contains("invite_webhook_deliveries_total{outcome=\"delivered\"} 1"),
        "{metrics}"
    );
}

/// The retry state is in the database: a deploy between two attempts loses nothing, and the
/// new process goes on as soon as the retry is due (the old one gave up its lease as it stopped,
/// rather than leaving it to run out a minute later).
fn a_delivery_survives_a_restart_mid_retry(backend: Backend) {
    let app = app(backend);
    let (owner, server) = app.owned_server();
    let receiver = Receiver::start(Vec::new());
    let webhook = register(&app, &server, &owner, json!({"url": receiver.url}));
    // Failing until the old process is gone: only the new one can deliver.
    receiver.failing.store(true, Ordering::SeqCst);
    let invite = app.create_invite(&server, &owner, json!({}));
    receiver.wait_for(1);
    let app = app.restart(&["--webhook-allow-private", "on"]);
    receiver.failing.store(false, Ordering::SeqCst);
    let restarted = Instant::now();
    let failed = receiver.received.lock().unwrap().len();
    let received = receiver.wait_for(failed + 1);
    assert!(
        restarted.elapsed() < Duration::from_secs(25),
        "delivered {:?} after the restart",
        restarted.elapsed()
    );
    let event = received[failed].json();
    assert_eq!(event["id"], received[0].json()["id"], "the same event again");
    assert_eq!(event["data"]["code"], invite["code"]);
    let path = format!(
        "/servers/{}/webhooks/{}/deliveries",
        server_id(&server),
        webhook["id"].as_str().unwrap()
    );
    let started = Instant::now();
    let log = loop {
        let log = app.get(&path, &owner);
        if log.body["deliveries"][0]["status"] == 200 {
            break log;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{}", log.text);
        std::thread::sleep(Duration::from_millis(50));
    };
    let attempts: Vec<i64> = log.body["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|d| d["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(
        attempts,
        (1..=i64::try_from(failed).unwrap() + 1).collect::<Vec<_>>(),
        "{}",
        log.text
    );
}

fn a_webhook_failing_for_a_day_is_disabled(backend: Backend) {
    let app = app(backend);
    let (owner, server) = app.owned_server();
    let receiver = Receiver::start(vec![Answer::Status(500); 10]);
    let webhook = register(&app, &server, &owner, json!({"url": receiver.url}));
    app.create_invite(&server, &owner, json!({}));
    receiver.wait_for(1);
    // A day passes; the next attempt is the last.
    app.clock.advance(chrono::Duration::hours(25));
    let started = Instant::now();
    loop {
        let listed = app.get(&format!("/servers/{}/webhooks", server_id(&server)), &owner);
        if listed.body[0]["enabled"] == false {
            let reason = listed.body[0]["disabled_reason"].as_str().unwrap();
            assert!(reason.starts_with("deliveries failed for 24 hours"), "{reason}");
            assert!(reason.contains("the receiver answered 500"), "{reason}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{}", listed.text);
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = receiver.received.lock().unwrap().len();
    app.create_invite(&server, &owner, json!({}));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.received.lock().unwrap().len(), before, "a disabled webhook gets nothing");
    let _ = webhook;
}

fn a_receiver_that_hangs_holds_up_nobody_else(backend: Backend) {
    let app = app(backend);
    let (owner, server) = app.owned_server();
    let hanging = Receiver::start(vec![Answer::Hang]);
    let healthy = Receiver::start(Vec::new());
    let slow = register(&app, &server, &owner, json!({"url": hanging.url}));
    register(&app, &server, &owner, json!({"url": healthy.url}));
    let started = Instant::now();
    app.create_invite(&server, &owner, json!({}));
    healthy.wait_for(1);
    assert!(started.elapsed() < Duration::from_secs(5), "the other webhook was not held up");
    // Requests are not held up either.
    app.create_invite(&server, &owner, json!({}));
    let path = format!(
        "/servers/{}/webhooks/{}/deliveries",
        server_id(&server),
        slow["id"].as_str().unwrap()
    );
    loop {
        let log = app.get(&path, &owner);
        if let Some(first) = log.body["deliveries"].as_array().and_then(|d| d.last()) {
            assert_eq!(first["status"], Value::Null);
            assert!(
                first["error"].as_str().unwrap().contains("no answer within 10 s"),
                "{}",
                log.text
            );
            assert!(first["duration_ms"].as_i64().unwrap() >= 9_000);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{}", log.text);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The webhook's delivery log, waiting (at most 20 s) until it holds `count` attempts; newest
/// first.
fn deliveries(
    app: &TestApp,
    server: &Value,
    owner: &TestUser,
    webhook: &Value,
    count: usize,
) -> Vec<Value> {
    let path = format!(
        "/servers/{}/webhooks/{}/deliveries",
        server_id(server),
        webhook["id"].as_str().unwrap()
    );
    let started = Instant::now();
    loop {
        let log = app.get(&path, owner);
        let deliveries = log.body["deliveries"].as_array().cloned().unwrap_or_default();
        if deliveries.len() >= count {
            return deliveries;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{}", log.text);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn at(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// The wait before a retry runs from the end of the failed attempt: a receiver that hangs
/// until the timeout is not posted again the moment it lets go.
fn a_retry_waits_from_the_end_of_the_attempt(backend: Backend) {
    let app = app(backend);
    let (owner, server) = app.owned_server();
    let receiver = Receiver::start(vec![Answer::Hang]);
    let webhook = register(&app, &server, &owner, json!({"url": receiver.url}));
    app.create_invite(&server, &owner, json!({}));
    let first = &deliveries(&app, &server, &owner, &webhook, 1)[0];
    let first_end = at(&first["created_at"])
        + chrono::Duration::milliseconds(first["duration_ms"].as_i64().unwrap());
    assert!(first["duration_ms"].as_i64().unwrap() >= 9_000, "{first}");
    let listed = app.get(&format!("/servers/{}/webhooks", server_id(&server)), &owner);
    let scheduled = &listed.body[0];
    assert_eq!(scheduled["failed_attempts"], 1, "{}", listed.text);
    // The first wait is at least a second, jittered.
    let wait = at(&scheduled["next_attempt_at"]) - first_end;
    assert!(
        wait >= chrono::Duration::seconds(1),
        "{wait:?} after the attempt ended: {}",
        listed.text
    );
    let log = deliveries(&app, &server, &owner, &webhook, 2);
    assert_eq!(log[0]["status"], 200, "{log:?}");
    let gap = at(&log[0]["created_at"]) - first_end;
    assert!(gap >= wait, "attempt 2 started {gap:?} after attempt 1 ended: {log:?}");
    let received = receiver.wait_for(2);
    assert!(received[1].at - received[0].at >= Duration::from_secs(11), "{received:?}");
}

/// A webhook registered while private targets were allowed, at an address written in any of
/// the ways the HTTP client reads as 127.0.0.1, gets nothing once they are not: each attempt is
/// refused before it connects, and logged so.
fn a_private_target_stored_earlier_is_refused_at_delivery(backend: Backend) {
    let app = app(backend);
    let (owner, server) = app.owned_server();
    let receiver = Receiver::start(Vec::new());
    let port = receiver.port();
    let urls = [
        format!("http://2130706433:{port}/hooks"),
        format!("http://0x7f.1:{port}/hooks"),
        format!("http://127\u{3002}0\u{3002}0\u{3002}1:{port}/hooks"),
        format!("http://[::ffff:127.0.0.1]:{port}/hooks"),
        format!("http://127.0.0.1:{port}/hooks"),
        format!("http://localhost:{port}/hooks"),
    ];
    let webhooks: Vec<Value> = urls
        .iter()
        .map(|url| {
            register(&app, &server, &owner, json!({"url": url, "events": ["INVITE_CREATE"]}))
        })
        .collect();
    // While allowed, every spelling reaches the receiver: they do point at it.
    app.create_invite(&server, &owner, json!({}));
    receiver.wait_for(urls.len());
    for webhook in &webhooks {
        assert_eq!(deliveries(&app, &server, &owner, webhook, 1)[0]["status"], 200, "{webhook}");
    }

    let app = app.restart(&[]);
    app.create_invite(&server, &owner, json!({}));
    for (webhook, url) in webhooks.iter().zip(&urls) {
        let log = deliveries(&app, &server, &owner, webhook, 2);
        let refused = &log[0];
        assert_eq!(refused["status"], Value::Null, "{url}: {log:?}");
        let error = refused["error"].as_str().unwrap();
        let expected = if url.contains("localhost") {
            "localhost resolves to no public address"
        } else {
            "127.0.0.1 is not a public address"
        };
        assert!(error.contains(expected), "{url}: {error}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        receiver.received.lock().unwrap().len(),
        urls.len(),
        "the receiver got nothing more"
    );
}

on_both_backends!(
    a_retry_waits_from_the_end_of_the_attempt,
    a_private_target_stored_earlier_is_refused_at_delivery,
    deliveries_are_signed_ordered_and_filtered,
    a_failed_delivery_is_retried_and_logged,
    a_delivery_survives_a_restart_mid_retry,
    a_webhook_failing_for_a_day_is_disabled,
    a_receiver_that_hangs_holds_up_nobody_else,
);

mod registration {
    use super::*;
    use crate::helpers::bits;

    #[test]
    fn what_a_webhook_may_be() {
        let app = TestApp::spawn(Backend::Sqlite);
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/webhooks", server_id(&server));
        let refused = |body: Value, message: &str| {
            app.post(&path, &owner, body).assert_error(400, "VALIDATION_ERROR", message);
        };
        refused(json!({"url": "ftp://example.com/x"}), "url must be an http:// or https:// URL");
        refused(json!({"url": "example.com"}), "url must be an http:// or https:// URL");
        refused(
            json!({"url": "https://example.com", "events": ["JOIN"]}),
            "unknown event type \"JOIN\"",
        );
        refused(
            json!({"url": "https://example.com", "events": []}),
            "events must name at least one event type (or be left out for all)",
        );
        // Without INVITE_WEBHOOK_ALLOW_PRIVATE, the service's own network is out of reach.
        for private in [
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest",
            "http://10.0.0.1/",
            // Other spellings of 127.0.0.1 the HTTP client reads as that address.
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://127\u{3002}0\u{3002}0\u{3002}1/",
            "http://127\u{ff0e}0\u{ff0e}0\u{ff0e}1/",
            "http://0xa9.0xfe.0xa9.0xfe/latest",
            // IPv6 carrying an IPv4 address, or translating to one.
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::1]/",
            // Site-local, documentation, benchmarking, reserved, this network.
            "http://[fec0::1]/",
            "http://192.0.2.1/",
            "http://198.18.0.1/",
            "http://198.19.255.254/",
            "http://240.0.0.1/",
            "http://0/",
        ] {
            refused(
                json!({"url": private}),
                "url must not point at a private, loopback or link-local address",
            );
        }
        app.post(&path, &owner, json!({"url": "https://example.com", "colour": 1}))
            .assert_code(400, "INVALID_JSON");
        // Only MANAGE_SERVER registers, lists and deletes.
        let member = app.member(&server, &owner);
        app.post(&path, &member, json!({"url": "http://127.0.0.1/"}))
            .assert_code(403, "MISSING_PERMISSION");
        app.get(&path, &member).assert_code(403, "MISSING_PERMISSION");
        app.get(&path, &app.user()).assert_code(404, "SERVER_NOT_FOUND");
        app.grant(&server, &owner, &member, bits::MANAGE_SERVER);
        app.get(&path, &member).assert_status(200);
        assert_eq!(app.get(&path, &owner).body, json!([]), "nothing was registered");
    }

    #[test]
    fn ten_webhooks_at_most_and_deleting_one_frees_its_place() {
        let app = TestApp::spawn_args(Backend::Sqlite, &["--webhook-allow-private", "on"]);
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}/webhooks", server_id(&server));
        let ids: Vec<String> = (0..10)
            .map(|n| {
                register(
                        &app,
                        &server,
                        &owner,
                        json!({"url": format!("http://127.0.0.1:9/{n}")}),
                    )["id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
            })
            .collect();
        app.post(&path, &owner, json!({"url": "http://127.0.0.1:9/11"})).assert_error(
            400,
            "VALIDATION_ERROR",
            "Maximum number of webhooks reached (10)",
        );
        app.delete(&format!("{path}/{}", ids[0]), &owner).assert_status(204);
        app.delete(&format!("{path}/{}", ids[0]), &owner).assert_error(
            404,
            "WEBHOOK_NOT_FOUND",
            "Webhook not found",
        );
        app.get(&format!("{path}/{}/deliveries", ids[0]), &owner)
            .assert_code(404, "WEBHOOK_NOT_FOUND");
        register(&app, &server, &owner, json!({"url": "http://127.0.0.1:9/11"}));
        // A webhook of another server is not found through this one.
        let other = app.create_server(&owner);
        app.delete(&format!("/servers/{}/webhooks/{}", server_id(&other), ids[1]), &owner)
            .assert_code(404, "WEBHOOK_NOT_FOUND");
    }
}
