//! The gateway when its instance stops (contract section 10): SIGTERM tells every session to
//! resume elsewhere before the process exits; SIGKILL leaves session rows that lapse by
//! themselves, so presence stops counting them and their temporary members are removed by
//! another instance. And idle sessions hold no buffers of the connection's: their memory is
//! measured on the process.

use std::time::{Duration, Instant};

use invite_store::Backend;
use invite_store::testing::TestDatabase;
use serde_json::{Value, json};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

use crate::support::{Service, client, json_of, token};

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// A session of `user` past `READY`.
fn session(base: &str, user: Uuid) -> Socket {
    session_with(base, user, WebSocketConfig::default())
}

/// A session of `user` past `READY`, its client configured so.
fn session_with(base: &str, user: Uuid, config: WebSocketConfig) -> Socket {
    let mut request =
        format!("{}/gateway", base.replace("http://", "ws://")).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {}", token(user)).parse().unwrap());
    let (mut socket, _) =
        tungstenite::client::connect_with_config(request, Some(config), 0).unwrap();
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_mut() {
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    for op in ["HELLO", "READY"] {
        let Message::Text(text) = socket.read().unwrap() else { panic!("{op} expected") };
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["op"], op);
    }
    socket
}

fn sigterm_tells_every_session_to_resume_elsewhere(backend: Backend) {
    let db = TestDatabase::new(backend);
    let service = Service::start(&db.url_string(), &[("INVITE_SHUTDOWN_TIMEOUT", "20s")]);
    let mut sessions: Vec<Socket> =
        (0..3).map(|_| session(&service.base, Uuid::now_v7())).collect();
    let signalled = Instant::now();
    service.terminate();
    for socket in &mut sessions {
        let code = loop {
            match socket.read() {
                Ok(Message::Close(frame)) => break frame.map(|frame| u16::from(frame.code)),
                Ok(_) => {}
                Err(error) => panic!("no close frame: {error}"),
            }
        };
        assert_eq!(code, Some(1012));
    }
    // Told at once, and the process does not wait out its shutdown timeout for them.
    let status = service.wait(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(10), "{:?}", signalled.elapsed());
}

fn a_killed_instances_sessions_lapse_and_its_temporary_members_go(backend: Backend) {
    let db = TestDatabase::new(backend);
    let grace = [("INVITE_TEMPORARY_GRACE", "1s")];
    let first = Service::start(&db.url_string(), &grace);
    let http = client();
    let owner = token(Uuid::now_v7());
    let server = json_of(
        http.post(format!("{}/servers", first.base))
            .bearer_auth(&owner)
            .json(&json!({"name": "Lapse"})),
    );
    let server_id = server["id"].as_str().unwrap();
    let invite = json_of(
        http.post(format!("{}/servers/{server_id}/invites", first.base))
            .bearer_auth(&owner)
            .json(&json!({"temporary": true})),
    );
    let code = invite["code"].as_str().unwrap();
    let guest = Uuid::now_v7();
    let joined = http
        .post(format!("{}/invites/{code}/accept", first.base))
        .bearer_auth(token(guest))
        .send()
        .unwrap();
    assert_eq!(joined.status(), 201);
    let _held = session(&first.base, guest);
    first.kill();

    // Another instance over the same database: the guest's session row outlives its process
    // only until it lapses, then the grace period runs, then the guest is removed.
    let second = Service::start(&db.url_string(), &grace);
    let started = Instant::now();
    let removed = loop {
        let members = json_of(
            http.get(format!("{}/servers/{server_id}/members", second.base)).bearer_auth(&owner),
        );
        let ids: Vec<&str> =
            members.as_array().unwrap().iter().filter_map(|m| m["user_id"].as_str()).collect();
        if !ids.contains(&guest.to_string().as_str()) {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the guest was never removed: {members}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Not before the grace period since the session could last have been renewed.
    assert!(removed >= Duration::from_millis(500), "{removed:?}");
    let preview = json_of(http.get(format!("{}/invites/{code}?with_counts=true", second.base)));
    assert_eq!(preview["approximate_presence_count"], 0, "{preview}");
    let audit = json_of(
        http.get(format!("{}/servers/{server_id}/audit-log", second.base)).bearer_auth(&owner),
    );
    assert!(
        audit.as_array().unwrap().iter().any(|entry| entry["action"] == "MemberRemoveTemporary"
            && entry["target_id"] == guest.to_string()),
        "{audit}"
    );
}

invite_store::on_both_backends!(
    sigterm_tells_every_session_to_resume_elsewhere,
    a_killed_instances_sessions_lapse_and_its_temporary_members_go
);

/// Idle sessions the memory test opens.
const IDLE_SESSIONS: usize = 2000;

/// The most an idle session may add to the service's resident memory. The session's own state
/// (its task, its place in the hub, its queue's slots) stays well under it; a session that kept
/// the HTTP connection's 8 KiB read and write buffers would be well over it.
const IDLE_SESSION_BYTES: u64 = 10 * 1024;

/// The service's resident memory, in bytes.
fn resident(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * 1024
}

/// `count` sessions of users of their own, opened from a few threads at once, past `READY`.
fn idle_sessions(base: &str, count: usize) -> Vec<Socket> {
    let threads = 8;
    std::thread::scope(|scope| {
        let opening: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    // Small client buffers: the test's own memory is not the point.
                    let config = WebSocketConfig::default().read_buffer_size(4096);
                    (thread..count)
                        .step_by(threads)
                        .map(|_| session_with(base, Uuid::now_v7(), config))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        opening.into_iter().flat_map(|thread| thread.join().unwrap()).collect()
    })
}

#[test]
#[cfg(target_os = "linux")]
fn idle_sessions_hold_no_connection_buffers() {
    // A socket on each side for every session.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    assert!(limit >= 2 * IDLE_SESSIONS as u64 + 200, "cannot open enough files: {limit}");
    let db = TestDatabase::new(Backend::Sqlite);
    let service = Service::start(
        &db.url_string(),
        &[
            ("INVITE_MAX_CONNECTIONS_PER_ADDRESS", "10000"),
            // Nobody is closed for silence while the sessions are opened and measured.
            ("INVITE_GATEWAY_HEARTBEAT", "1h"),
        ],
    );
    // Warmed up first: the workers' pools, the hub's tables and the allocator's arenas grow
    // with the first sessions, not with each.
    let warm = idle_sessions(&service.base, 200);
    std::thread::sleep(Duration::from_secs(1));
    let before = resident(service.pid());
    let idle = idle_sessions(&service.base, IDLE_SESSIONS);
    std::thread::sleep(Duration::from_secs(1));
    let after = resident(service.pid());
    let per_session = after.saturating_sub(before) / IDLE_SESSIONS as u64;
    eprintln!("{IDLE_SESSIONS} idle sessions: {per_session} bytes each");
    assert!(
        per_session <= IDLE_SESSION_BYTES,
        "{IDLE_SESSIONS} idle sessions took {} KiB, {per_session} bytes each (at most {IDLE_SESSION_BYTES})",
        (after - before) / 1024
    );
    drop((warm, idle));
}
