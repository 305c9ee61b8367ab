//! The gateway (contract section 10), through real WebSocket clients: what each member hears,
//! resuming, cross-instance delivery, the close codes of bad input, heartbeats, temporary
//! members and presence.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::helpers::{TestApp, TestUser, on_both_backends, server_id};

/// Bits of the permissions the tests grant.
const CREATE_INVITES: i64 = 1 << 14;

/// A client of the gateway.
struct Client {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
}

/// How a session ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// A close frame with this code.
    Closed(u16),
    /// Nothing within the wait.
    Silent,
}

impl Client {
    /// Connects with the token in `Authorization` (when given) and this query.
    fn connect(app: &TestApp, query: &str, token: Option<&str>) -> Self {
        let url = format!("{}/gateway{query}", app.base.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        if let Some(token) = token {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (socket, response) = tungstenite::connect(request).expect("the upgrade succeeds");
        assert_eq!(response.status(), 101);
        Self { socket }
    }

    /// Connects as `user` with a receive buffer of a few KiB (so that the service's frames
    /// back up soon when it does not read), and reads `HELLO` and `READY`.
    fn ready_with_small_buffer(app: &TestApp, user: &TestUser) -> Self {
        let address: std::net::SocketAddr =
            app.base.trim_start_matches("http://").parse().expect("the service's address");
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        // Before connecting, so that the window offered in the handshake is small too.
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&address.into()).unwrap();
        let url = format!("{}/gateway", app.base.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {}", user.token).parse().unwrap());
        let (socket, _) = tungstenite::client(request, MaybeTlsStream::Plain(socket.into()))
            .expect("the upgrade succeeds");
        let mut client = Self { socket };
        assert_eq!(client.next().expect("HELLO")["op"], "HELLO");
        assert_eq!(client.next().expect("READY")["op"], "READY");
        client
    }

    /// Connects as `user` and reads `HELLO` and `READY`; returns the client and `READY`'s data.
    fn ready(app: &TestApp, user: &TestUser, query: &str) -> (Self, Value) {
        let mut client = Self::connect(app, query, Some(&user.token));
        assert_eq!(client.next().expect("HELLO")["op"], "HELLO");
        let ready = client.next().expect("READY");
        assert_eq!(ready["op"], "READY", "{ready}");
        (client, ready["d"].clone())
    }

    fn set_timeout(&mut self, wait: Duration) {
        if let MaybeTlsStream::Plain(stream) = self.socket.get_mut() {
            stream.set_read_timeout(Some(wait)).unwrap();
        }
    }

    /// The next frame within 10 s that is not a heartbeat; `None` when none came.
    fn next(&mut self) -> Option<Value> {
        self.next_within(Duration::from_secs(10))
    }

    fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.set_timeout(left);
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if frame["op"] == "HEARTBEAT" || frame["op"] == "HEARTBEAT_ACK" {
                        continue;
                    }
                    return Some(frame);
                }
                Ok(Message::Close(frame)) => panic!("closed: {frame:?}"),
                Ok(_) => {}
                Err(tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(error) => panic!("the connection failed: {error}"),
            }
        }
    }

    /// The next event, asserting its type.
    #[track_caller]
    fn event(&mut self, kind: &str) -> Value {
        let frame = self.next().unwrap_or_else(|| panic!("no {kind} came"));
        assert_eq!(
            (frame["op"].as_str(), frame["t"].as_str()),
            (Some("DISPATCH"), Some(kind)),
            "{frame}"
        );
        frame
    }

    /// Skips to the next event of `kind` (the others of a busy server are not the point).
    #[track_caller]
    fn skip_to(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().unwrap_or_else(|| panic!("no {kind} came"));
            if frame["t"] == kind {
                return frame;
            }
        }
    }

    /// Reads until the server closes (its code) or `wait` passes.
    fn end(&mut self, wait: Duration) -> End {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return End::Silent;
            }
            self.set_timeout(left);
            match self.socket.read() {
                Ok(Message::Close(frame)) => {
                    return End::Closed(frame.map_or(1005, |frame| u16::from(frame.code)));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return End::Silent;
                }
                Err(error) => panic!("the connection failed before a close frame: {error}"),
            }
        }
    }

    fn send(&mut self, message: Message) {
        self.socket.send(message).unwrap();
    }

    fn close(mut self) {
        let _ = self.socket.close(None);
        let _ = self.end(Duration::from_secs(2));
    }
}

fn members_of(app: &TestApp, server: &Value, owner: &TestUser) -> Vec<String> {
    let response = app.get(&format!("/servers/{}/members", server_id(server)), owner);
    response.assert_status(200);
    response
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_owned())
        .collect()
}

fn each_member_hears_what_the_audience_rules_allow(backend: invite_store::Backend) {
    let app = TestApp::spawn(backend);
    let (owner, server) = app.owned_server();
    let member = app.member(&server, &owner);
    let manager = app.member_with(&server, &owner, CREATE_INVITES);

    let (mut owner_ws, ready) = Client::ready(&app, &owner, "");
    assert_eq!(ready["user_id"], owner.id.to_string());
    assert_eq!(ready["servers"][0]["id"], server["id"], "{ready}");
    assert_eq!(ready["servers"][0]["member_count"], 3);
    assert!(ready["seq"].as_i64().unwrap() > 0);
    let (mut member_ws, _) = Client::ready(&app, &member, "");
    let (mut manager_ws, _) = Client::ready(&app, &manager, "");

    // A new invite's code reaches those allowed to list invites only.
    let invite = app.create_invite(&server, &owner, json!({}));
    let created = owner_ws.event("INVITE_CREATE");
    assert_eq!(created["d"]["code"], invite["code"]);
    assert_eq!(manager_ws.event("INVITE_CREATE")["d"]["code"], invite["code"]);
    // Everyone hears the join; the member never heard the code.
    let newcomer = app.user();
    app.accept(&invite, &newcomer).assert_status(201);
    for client in [&mut owner_ws, &mut manager_ws] {
        let joined = client.event("MEMBER_JOIN");
        assert_eq!(joined["d"]["user_id"], newcomer.id.to_string());
    }
    let joined = member_ws.event("MEMBER_JOIN");
    assert_eq!(joined["d"]["user_id"], newcomer.id.to_string());
    assert!(joined["s"].as_i64() > created["s"].as_i64());
    // A revocation goes to every member, in order after the join.
    app.delete(&format!("/invites/{}", invite["code"].as_str().unwrap()), &owner)
        .assert_status(204);
    let deleted = member_ws.event("INVITE_DELETE");
    assert_eq!(deleted["d"]["invite_id"], invite["id"]);
    assert!(deleted["s"].as_i64() > joined["s"].as_i64());
    assert_eq!(owner_ws.event("INVITE_DELETE")["s"], deleted["s"]);

    // Given CREATE_INVITES during the session, the member hears the next code.
    app.grant(&server, &owner, &member, CREATE_INVITES);
    assert_eq!(member_ws.event("MEMBER_UPDATE")["d"]["user_id"], member.id.to_string());
    let second = app.create_invite(&server, &owner, json!({}));
    assert_eq!(member_ws.event("INVITE_CREATE")["d"]["code"], second["code"]);
    for client in [owner_ws, member_ws, manager_ws] {
        client.close();
    }
}

/// Join approval: a join request's events go to those who may decide it and to its requester,
/// who is not a member; a plain member hears neither.
fn join_requests_are_heard_by_deciders_and_the_requester_only(backend: invite_store::Backend) {
    const KICK_MEMBERS: i64 = 1 << 8;
    let app = TestApp::spawn(backend);
    let (owner, server) = app.owned_server();
    let plain = app.member(&server, &owner);
    let kicker = app.member_with(&server, &owner, KICK_MEMBERS);
    let invite = app.create_invite(&server, &owner, json!({"requires_approval": true}));
    let requester = app.user();
    let (mut kicker_ws, _) = Client::ready(&app, &kicker, "");
    let (mut plain_ws, _) = Client::ready(&app, &plain, "");
    let (mut requester_ws, ready) = Client::ready(&app, &requester, "");
    assert_eq!(ready["servers"], json!([]), "not a member yet");

    let filed = app.accept(&invite, &requester);
    filed.assert_status(202);
    let request_id = filed.body["request"]["id"].clone();
    let created = kicker_ws.event("JOIN_REQUEST_CREATE");
    assert_eq!((&created["d"]["id"], &created["d"]["status"]), (&request_id, &json!("pending")));
    assert_eq!(requester_ws.event("JOIN_REQUEST_CREATE")["d"]["id"], request_id);

    let path = format!(
        "/servers/{}/join-requests/{}/approve",
        server_id(&server),
        request_id.as_str().unwrap()
    );
    app.post(&path, &kicker, json!({})).assert_status(200);
    let updated = requester_ws.skip_to("JOIN_REQUEST_UPDATE");
    assert_eq!((&updated["d"]["id"], &updated["d"]["status"]), (&request_id, &json!("approved")));
    assert_eq!(kicker_ws.skip_to("JOIN_REQUEST_UPDATE")["d"]["status"], "approved");
    // The plain member hears the join, as every member does, and nothing of the request.
    assert_eq!(plain_ws.event("MEMBER_JOIN")["d"]["user_id"], requester.id.to_string());
    if let Some(frame) = plain_ws.next_within(Duration::from_secs(1)) {
        panic!("a plain member heard {frame}");
    }
    for client in [kicker_ws, plain_ws, requester_ws] {
        client.close();
    }
}

fn a_removed_member_hears_the_removal_and_nothing_after(backend: invite_store::Backend) {
    let app = TestApp::spawn(backend);
    let (owner, server) = app.owned_server();
    let kicked = app.member(&server, &owner);
    let leaver = app.member(&server, &owner);
    let (mut owner_ws, _) = Client::ready(&app, &owner, "");
    let (mut kicked_ws, _) = Client::ready(&app, &kicked, "");
    let (mut leaver_ws, _) = Client::ready(&app, &leaver, "");
    let pause = format!("/servers/{}/invites-pause", server_id(&server));

    app.delete(&format!("/servers/{}/members/{}", server_id(&server), kicked.id), &owner)
        .assert_status(204);
    let removal = kicked_ws.event("MEMBER_REMOVE");
    assert_eq!(
        (removal["d"]["user_id"].as_str(), removal["d"]["reason"].as_str()),
        (Some(&*kicked.id.to_string()), Some("kick"))
    );
    app.delete(&format!("/servers/{}/members/{}", server_id(&server), leaver.id), &leaver)
        .assert_status(204);
    // The others hear of the kick; then the leaver of their own leaving.
    assert_eq!(leaver_ws.event("MEMBER_REMOVE")["d"]["reason"], "kick");
    assert_eq!(leaver_ws.event("MEMBER_REMOVE")["d"]["reason"], "leave");
    // The server goes on; the two hear nothing of it.
    app.put(&pause, &owner, json!({})).assert_status(204);
    owner_ws.event("MEMBER_REMOVE");
    owner_ws.event("MEMBER_REMOVE");
    owner_ws.event("INVITES_PAUSE");
    assert_eq!(kicked_ws.next_within(Duration::from_millis(700)), None);
    assert_eq!(leaver_ws.next_within(Duration::from_millis(100)), None);
    // A ban removes too, with its reason.
    app.delete(&pause, &owner).assert_status(204);
    let banned = app.member(&server, &owner);
    let (mut banned_ws, _) = Client::ready(&app, &banned, "");
    app.put(
        &format!("/servers/{}/bans/{}", server_id(&server), banned.id),
        &owner,
        json!({"reason": "spam"}),
    )
    .assert_status(204);
    assert_eq!(banned_ws.event("BAN_ADD")["d"]["reason"], "spam");
    assert_eq!(banned_ws.event("MEMBER_REMOVE")["d"]["reason"], "ban");
    app.put(&pause, &owner, json!({})).assert_status(204);
    // Delivered to the owner, so the banned member's silence is not merely a slow delivery.
    owner_ws.skip_to("MEMBER_REMOVE");
    owner_ws.skip_to("INVITES_PAUSE");
    assert_eq!(banned_ws.next_within(Duration::from_millis(300)), None);
    for client in [owner_ws, kicked_ws, leaver_ws, banned_ws] {
        client.close();
    }
}

fn resume_replays_what_was_missed_in_order(backend: invite_store::Backend) {
    let app = TestApp::spawn(backend);
    let (owner, server) = app.owned_server();
    let member = app.member(&server, &owner);
    let (client, ready) = Client::ready(&app, &member, "");
    let seen = ready["seq"].as_i64().unwrap();
    client.close();

    // Missed while away: a join, a revocation, and an invite the member may not hear of.
    let invite = app.create_invite(&server, &owner, json!({}));
    app.accept(&invite, &app.user()).assert_status(201);
    app.delete(&format!("/invites/{}", invite["code"].as_str().unwrap()), &owner)
        .assert_status(204);
    let other = app.user();
    let elsewhere = app.create_server(&other);
    app.create_invite(&elsewhere, &other, json!({}));

    let (mut client, ready) = Client::ready(&app, &member, &format!("?resume_from={seen}"));
    assert!(ready["seq"].as_i64().unwrap() > seen);
    let joined = client.event("MEMBER_JOIN");
    let deleted = client.event("INVITE_DELETE");
    assert!(seen < joined["s"].as_i64().unwrap() && joined["s"].as_i64() < deleted["s"].as_i64());
    let resumed = client.next().unwrap();
    assert_eq!(resumed, json!({"op": "RESUMED", "d": {"replayed": 2}}));
    // Live again afterwards.
    app.put(&format!("/servers/{}/invites-pause", server_id(&server)), &owner, json!({}))
        .assert_status(204);
    client.event("INVITES_PAUSE");
    client.close();

    // From the future: refused; from before what the outbox keeps: INVALID_SESSION.
    let latest = ready["seq"].as_i64().unwrap();
    let mut future =
        Client::connect(&app, &format!("?resume_from={}", latest + 1000), Some(&member.token));
    assert_eq!(future.end(Duration::from_secs(10)), End::Closed(4007));
    let mut conn = app.conn();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!("DELETE FROM events WHERE seq <= {}", seen + 1)),
        &mut conn,
    )
    .unwrap();
    let mut stale = Client::connect(&app, &format!("?resume_from={seen}"), Some(&member.token));
    let mut frames = Vec::new();
    let end = loop {
        stale.set_timeout(Duration::from_secs(10));
        match stale.socket.read().unwrap() {
            Message::Text(text) => {
                frames.push(serde_json::from_str::<Value>(&text).unwrap()["op"].clone());
            }
            Message::Close(frame) => break frame.map(|frame| u16::from(frame.code)),
            _ => {}
        }
    };
    assert_eq!(frames, ["HELLO", "READY", "INVALID_SESSION"]);
    assert_eq!(end, Some(4011));
}

fn bad_input_closes_with_its_code_and_disturbs_no_one(backend: invite_store::Backend) {
    let app = TestApp::spawn(backend);
    let (owner, server) = app.owned_server();
    let (mut witness, _) = Client::ready(&app, &owner, "");

    let refused = |query: &str, token: Option<&str>| {
        Client::connect(&app, query, token).end(Duration::from_secs(10))
    };
    assert_eq!(refused("", None), End::Closed(4004), "no token");
    assert_eq!(refused("", Some("not-a-token")), End::Closed(4004), "a bad token");
    assert_eq!(
        refused(&format!("?token={}", owner.token.replace('.', "x")), None),
        End::Closed(4004)
    );
    assert_eq!(refused("?resume_from=abc", Some(&owner.token)), End::Closed(4007));
    assert_eq!(refused("?resume_from=-1", Some(&owner.token)), End::Closed(4007));

    let sent = |message: Message| {
        let (mut client, _) = Client::ready(&app, &owner, "");
        client.send(message);
        client.end(Duration::from_secs(10))
    };
    assert_eq!(sent(Message::text("{not json")), End::Closed(4002));
    assert_eq!(sent(Message::text(r#"{"d": 1}"#)), End::Closed(4002));
    assert_eq!(sent(Message::text(r#"{"op": "IDENTIFY"}"#)), End::Closed(4001));
    assert_eq!(sent(Message::binary(vec![1_u8, 2, 3])), End::Closed(4003));
    let big = format!(r#"{{"op": "HEARTBEAT", "pad": "{}"}}"#, "x".repeat(5000));
    assert_eq!(sent(Message::text(big)), End::Closed(4006));

    // The token in the query works as well as the header.
    let mut by_query = Client::connect(&app, &format!("?token={}", owner.token), None);
    assert_eq!(by_query.next().unwrap()["op"], "HELLO");
    assert_eq!(by_query.next().unwrap()["op"], "READY");
    by_query.close();

    // The first session went on through all of it.
    witness.send(Message::text(r#"{"op": "HEARTBEAT"}"#));
    witness.set_timeout(Duration::from_secs(10));
    let ack = loop {
        if let Message::Text(text) = witness.socket.read().unwrap() {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
    };
    assert_eq!(ack["op"], "HEARTBEAT_ACK");
    app.create_invite(&server, &owner, json!({}));
    witness.event("INVITE_CREATE");
    witness.close();

    // Not a WebSocket: a JSON refusal.
    let plain = app.get("/gateway", &owner);
    plain.assert_code(400, "MALFORMED_REQUEST");
}

fn heartbeats_go_both_ways_and_a_silent_client_is_closed(backend: invite_store::Backend) {
    let app = TestApp::spawn_args(backend, &["--gateway-heartbeat", "400ms"]);
    let owner = app.user();
    app.create_server(&owner);
    let mut client = Client::connect(&app, "", Some(&owner.token));
    client.set_timeout(Duration::from_secs(10));
    let Message::Text(hello) = client.socket.read().unwrap() else { panic!("HELLO first") };
    assert_eq!(
        serde_json::from_str::<Value>(&hello).unwrap(),
        json!({"op": "HELLO", "d": {"heartbeat_interval": 400}})
    );
    // Answering the server's heartbeats keeps the session open well past 1.5 intervals.
    let started = Instant::now();
    let mut beats = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        if let Message::Text(text) = client.socket.read().unwrap() {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["op"] == "HEARTBEAT" {
                beats += 1;
                client.send(Message::text(r#"{"op": "HEARTBEAT_ACK"}"#));
            }
        }
    }
    assert!(beats >= 2, "{beats} heartbeats");
    // Then silence: closed after 1.5 intervals (600 ms), not before an interval.
    let silent = Instant::now();
    assert_eq!(client.end(Duration::from_secs(5)), End::Closed(4008));
    assert!(silent.elapsed() >= Duration::from_millis(400), "{:?}", silent.elapsed());
}

fn a_silent_client_is_closed_one_and_a_half_intervals_after_its_last_frame(
    backend: invite_store::Backend,
) {
    let app = TestApp::spawn_args(backend, &["--gateway-heartbeat", "2s"]);
    let owner = app.user();
    let (mut client, _) = Client::ready(&app, &owner, "");
    // Its last frame; the server's heartbeats and its answer do not count.
    client.send(Message::text(r#"{"op": "HEARTBEAT"}"#));
    let last = Instant::now();
    assert_eq!(client.end(Duration::from_secs(10)), End::Closed(4008));
    // 1.5 intervals (3 s): not one (2 s), nor two (4 s).
    let silent = last.elapsed();
    assert!(
        silent >= Duration::from_millis(2900) && silent < Duration::from_millis(3700),
        "closed {silent:?} after its last frame"
    );
}

fn the_sessions_of_a_user_are_capped_on_all_instances(backend: invite_store::Backend) {
    let app = TestApp::spawn_args(backend, &["--gateway-max-per-user", "2"]);
    let user = app.user();
    let (first, _) = Client::ready(&app, &user, "");
    let (second, _) = Client::ready(&app, &user, "");
    let metrics = app.request(reqwest::Method::GET, "/metrics", None, None).text;
    assert!(metrics.contains("invite_gateway_connections 2"), "{metrics}");
    let mut third = Client::connect(&app, "", Some(&user.token));
    assert_eq!(third.next().unwrap()["op"], "HELLO");
    assert_eq!(third.end(Duration::from_secs(10)), End::Closed(4010));
    // One going frees its place.
    first.close();
    let (fourth, _) = Client::ready(&app, &user, "");
    second.close();
    fourth.close();
}

fn a_client_that_does_not_read_is_closed_as_a_slow_consumer(backend: invite_store::Backend) {
    // A queue of 16 frames: more than a round of updates below, which the outbox's reader may
    // hand over in one pass. Heartbeats far apart: neither client is closed for silence.
    let args = ["--gateway-queue", "16", "--gateway-heartbeat", "60s"];
    let app = TestApp::spawn_args(backend, &args);
    let (owner, server) = app.owned_server();
    let member = app.member(&server, &owner);
    // The owner's client never reads: the socket's buffers fill, then the frames waiting for
    // the connection, then its queue.
    let mut slow = Client::ready_with_small_buffer(&app, &owner);
    let (mut quick, _) = Client::ready(&app, &member, "");
    let path = format!("/servers/{}", server_id(&server));
    let filler = "a".repeat(1900);
    let kicked = |app: &TestApp| {
        let metrics = app.request(reqwest::Method::GET, "/metrics", None, None).text;
        metrics.contains("invite_gateway_slow_consumers_total 1")
    };
    let mut updates = 0;
    // In rounds of 10 updates: the service's buffers take over a thousand, and a round is
    // short beside the 1 s the service waits for room to send the close.
    while !kicked(&app) {
        assert!(updates < 3000, "still not a slow consumer after {updates} updates of 2 KB");
        for _ in 0..10 {
            updates += 1;
            let icon = format!("https://example.com/{filler}/{updates}");
            app.patch(&path, &owner, json!({"icon_url": icon})).assert_status(200);
        }
        // The other session hears every update, in order.
        for expected in updates - 9..=updates {
            let update = quick.event("SERVER_UPDATE");
            let icon = update["d"]["icon_url"].as_str().unwrap();
            assert!(icon.ends_with(&format!("/{expected}")), "update {expected}: {icon}");
        }
    }
    // The slow one gets what was already on its way, then 4009; it may resume from there.
    assert_eq!(slow.end(Duration::from_secs(10)), End::Closed(4009));
    app.patch(&path, &owner, json!({"name": "still serving"})).assert_status(200);
    assert_eq!(quick.event("SERVER_UPDATE")["d"]["name"], "still serving");
    let metrics = app.request(reqwest::Method::GET, "/metrics", None, None).text;
    assert!(metrics.contains("invite_gateway_connections 1"), "{metrics}");
    quick.close();
}

fn an_expiring_token_ends_its_session(backend: invite_store::Backend) {
    let app = TestApp::spawn(backend);
    let user = app.user();
    let token = app.token_for(user.id, Duration::from_secs(2));
    let mut client = Client::connect(&app, "", Some(&token));
    assert_eq!(client.next().unwrap()["op"], "HELLO");
    assert_eq!(client.next().unwrap()["op"], "READY");
    assert_eq!(client.end(Duration::from_secs(5)), End::Closed(4005));
}

fn temporary_members_leave_when_their_last_session_has_been_gone_for_the_grace(
    backend: invite_store::Backend,
) {
    let app = TestApp::spawn_args(backend, &["--temporary-grace", "1s"]);
    let (owner, server, invite) = app.server_with_invite(json!({"temporary": true}));
    let (gone, stays, promoted) = (app.user(), app.user(), app.user());
    for user in [&gone, &stays, &promoted] {
        app.accept(&invite, user).assert_status(201);
    }
    let (mut owner_ws, _) = Client::ready(&app, &owner, "");
    let (gone_ws, _) = Client::ready(&app, &gone, "");
    let (stays_ws, _) = Client::ready(&app, &stays, "");
    // Presence counts the connected members: the owner and two temporary ones.
    let code = invite["code"].as_str().unwrap();
    let preview = app.get(&format!("/invites/{code}?with_counts=true"), &owner);
    assert_eq!(preview.body["approximate_presence_count"], 3, "{}", preview.text);
    // The invite page says so too (read from the same cached preview).
    let page = app.request(reqwest::Method::GET, &format!("/invite/{code}"), None, None);
    assert!(page.text.contains("4 members, 3 online"), "{}", page.text);
    // Given a permission, a temporary member is one no longer.
    app.grant(&server, &owner, &promoted, CREATE_INVITES);
    gone_ws.close();

    let departed = owner_ws.event("MEMBER_UPDATE");
    assert_eq!(departed["d"]["temporary"], false);
    let removal = owner_ws.event("MEMBER_REMOVE");
    assert_eq!(
        removal["d"],
        json!({"server_id": server["id"], "user_id": gone.id.to_string(), "reason": "temporary",
               "invite_id": invite["id"]})
    );
    let members = members_of(&app, &server, &owner);
    assert!(!members.contains(&gone.id.to_string()));
    assert!(members.contains(&stays.id.to_string()), "connected throughout");
    assert!(members.contains(&promoted.id.to_string()), "given permissions");
    let audit = app.get(&format!("/servers/{}/audit-log", server_id(&server)), &owner);
    let entry = audit.body["audit_log_entries"]
        .as_array()
        .or_else(|| audit.body.as_array())
        .unwrap()
        .iter()
        .find(|entry| entry["action"] == "MemberRemoveTemporary")
        .cloned()
        .unwrap_or_else(|| panic!("no MemberRemoveTemporary entry: {}", audit.text));
    assert_eq!(entry["target_id"], gone.id.to_string());
    // The one still connected stays past several grace periods.
    assert_eq!(owner_ws.next_within(Duration::from_millis(2500)), None);
    assert!(members_of(&app, &server, &owner).contains(&stays.id.to_string()));
    stays_ws.close();
    assert_eq!(owner_ws.event("MEMBER_REMOVE")["d"]["user_id"], stays.id.to_string());
    owner_ws.close();
}

fn an_instance_delivers_what_another_committed_in_order() {
    let app = TestApp::spawn(invite_store::Backend::Postgres);
    let other = app.second_instance(&[]);
    let (owner, server) = app.owned_server();
    let (mut client, _) = Client::ready(&other, &owner, "");
    let invite = app.create_invite(&server, &owner, json!({"max_uses": 20}));
    for _ in 0..5 {
        app.accept(&invite, &app.user()).assert_status(201);
    }
    let mut seqs = vec![client.event("INVITE_CREATE")["s"].as_i64().unwrap()];
    for _ in 0..5 {
        seqs.push(client.event("MEMBER_JOIN")["s"].as_i64().unwrap());
    }
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
    client.close();
}

#[test]
fn postgres_an_instance_delivers_what_another_committed_in_order() {
    an_instance_delivers_what_another_committed_in_order();
}

on_both_backends!(
    each_member_hears_what_the_audience_rules_allow,
    join_requests_are_heard_by_deciders_and_the_requester_only,
    a_removed_member_hears_the_removal_and_nothing_after,
    resume_replays_what_was_missed_in_order,
    bad_input_closes_with_its_code_and_disturbs_no_one,
    heartbeats_go_both_ways_and_a_silent_client_is_closed,
    a_silent_client_is_closed_one_and_a_half_intervals_after_its_last_frame,
    the_sessions_of_a_user_are_capped_on_all_instances,
    a_client_that_does_not_read_is_closed_as_a_slow_consumer,
    an_expiring_token_ends_its_session,
    temporary_members_leave_when_their_last_session_has_been_gone_for_the_grace,
);
