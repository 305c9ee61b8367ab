//! The gateway (contract section 10): `GET /gateway` over WebSocket pushes the caller's servers'
//! events as they commit, read from the outbox in `seq` order on every instance; sessions are
//! recorded in the database for presence and for removing temporary members.
//!
//! A session: the token (`Authorization: Bearer` or `?token=`) is checked after the upgrade, so
//! that a refusal is a close code a client can read, not a failed handshake; then `HELLO`, a
//! session row (refused past the per-user cap, counted on all instances), `READY` once the
//! outbox's reader has seeded the session, the replay of `?resume_from=<seq>`, and live events.
//! `invite_runtime::gateway::protocol` lists the frames and close codes.

mod context;
mod socket;

use std::sync::Arc;
use std::time::Duration;

use actix_http::ws::{CloseReason, ProtocolError};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use invite_core::ErrorCode;
use invite_store::repo::{Actor, MemberServer, NewSession, StoredEvent};
use serde_json::json;
use uuid::Uuid;

use invite_runtime::gateway::hub::{Outgoing, Registration};
use invite_runtime::gateway::protocol::{self, ClientOp, CloseCode, MAX_FRAME, op_frame};
use socket::{Incoming, WebSocket};

use crate::api::error::ApiError;
use crate::server::upgrade::{Takeover, Upgraded};

pub(crate) use context::GatewayContext;

/// Registers `GET /gateway`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/gateway")
            .route(web::get().to(connect))
            .default_service(web::to(|| crate::api::extract::method_not_allowed(&["GET"]))),
    );
}

/// The query of `GET /gateway`, read by hand: a malformed value is a close code, not a 400.
#[derive(Debug, Default)]
struct Query {
    token: Option<String>,
    resume_from: Option<String>,
}

impl Query {
    fn parse(query: &str) -> Self {
        let mut parsed = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "token" => parsed.token = Some(value.into_owned()),
                "resume_from" => parsed.resume_from = Some(value.into_owned()),
                _ => {}
            }
        }
        parsed
    }
}

/// The handshake's answer, with the session to run on the connection once it is sent
/// ([`crate::server::upgrade`]).
async fn connect(
    req: HttpRequest,
    state: web::Data<GatewayContext>,
) -> Result<HttpResponse, ApiError> {
    let refused = || {
        ApiError::with_message(
            ErrorCode::MalformedRequest,
            "GET /gateway is a WebSocket: send Upgrade: websocket",
        )
    };
    if !crate::server::upgrade::is_upgradable(&req) {
        return Err(refused());
    }
    let mut handshake = actix_http::ws::handshake(req.head()).map_err(|_| refused())?;
    let query = Query::parse(req.query_string());
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").map(str::to_owned));
    let identity = header.or(query.token).and_then(|token| state.auth.verify_until(&token).ok());
    let state = state.into_inner();
    let session = move |upgraded: Upgraded| -> futures_util::future::LocalBoxFuture<'static, ()> {
        Box::pin(async move {
            let connection =
                Connection { socket: WebSocket::new(upgraded, MAX_FRAME), last_sent: 0 };
            let Some((actor, expires)) = identity else {
                connection.close(CloseCode::AuthenticationFailed).await;
                return;
            };
            let resume_from = match query.resume_from.as_deref().map(str::parse::<i64>) {
                None => None,
                Some(Ok(seq)) if seq >= 0 => Some(seq),
                Some(_) => {
                    connection.close(CloseCode::InvalidSeq).await;
                    return;
                }
            };
            run(&state, connection, (actor, expires), resume_from).await;
        })
    };
    let mut response = HttpResponse::from(handshake.finish()).map_into_boxed_body();
    response.extensions_mut().insert(Takeover::new(session));
    Ok(response)
}

/// How long a closing session waits for the client: one that does not read cannot be waited
/// for.
const CLOSE_PATIENCE: Duration = Duration::from_secs(1);

/// The client's end, and the last event `seq` sent to it.
struct Connection {
    socket: WebSocket,
    last_sent: i64,
}

impl Connection {
    async fn send(&mut self, text: bytestring::ByteString) -> bool {
        self.socket.text(text).await.is_ok()
    }

    async fn close(self, code: CloseCode) {
        let reason =
            CloseReason { code: (code as u16).into(), description: Some(code.reason().to_owned()) };
        self.socket.close(Some(reason), CLOSE_PATIENCE).await;
    }
}

/// A session from `HELLO` to its close.
async fn run(
    state: &Arc<GatewayContext>,
    mut connection: Connection,
    (actor, expires): (Actor, i64),
    resume_from: Option<i64>,
) {
    let gateway = &state.gateway;
    let heartbeat = gateway.settings.heartbeat;
    let hello = op_frame(
        "HELLO",
        &json!({"heartbeat_interval": u64::try_from(heartbeat.as_millis()).unwrap_or(u64::MAX)}),
    );
    if !connection.send(hello).await {
        return;
    }
    let session_id = Uuid::now_v7();
    let now = state.clock.now();
    let (ttl, _) = gateway.session_ttl();
    let row = NewSession {
        id: session_id,
        user_id: actor.user_id,
        instance_id: gateway.instance_id,
        expires_at: now + chrono::TimeDelta::from_std(ttl).unwrap_or_default(),
    };
    let cap = i64::from(gateway.settings.max_per_user);
    let remembered = actor.clone();
    let opened = state
        .door
        .upkeep(move |conn| {
            conn.remember_user(&remembered, now)?;
            conn.open_session(row, now, cap)
        })
        .await;
    match opened {
        Ok(true) => {}
        Ok(false) => return connection.close(CloseCode::TooManyConnections).await,
        Err(_) => return connection.close(CloseCode::Unavailable).await,
    }
    let registration = gateway.hub.register(actor.user_id);
    state.metrics.set_gateway_connections(gateway.hub.connections());
    state.events.gateway_session(true);
    state.events.wake_reader();
    let id = registration.id;
    let end =
        serve(state, &mut connection, registration, (session_id, &actor, expires), resume_from)
            .await;
    gateway.hub.unregister(id);
    state.metrics.set_gateway_connections(gateway.hub.connections());
    state.events.gateway_session(false);
    let ended = state.clock.now();
    // Its row says when it ended: the grace period of a temporary member counts from here.
    if let Err(error) = state.door.upkeep(move |conn| conn.close_session(session_id, ended)).await {
        tracing::debug!(%error, "cannot record the end of a gateway session; it lapses instead");
    }
    match end {
        End::Close(code) => connection.close(code).await,
        End::Answer(reason) => connection.socket.answer_close(reason, CLOSE_PATIENCE).await,
        End::Gone => {}
    }
}

/// How a session ends.
enum End {
    /// The gateway closes it with this code.
    Close(CloseCode),
    /// The client closed it: the close is answered.
    Answer(Option<CloseReason>),
    /// The connection is gone.
    Gone,
}

impl From<CloseCode> for End {
    fn from(code: CloseCode) -> Self {
        Self::Close(code)
    }
}

/// `READY`, the replay, then events and heartbeats until the session ends.
async fn serve(
    state: &Arc<GatewayContext>,
    connection: &mut Connection,
    mut registration: Registration,
    (session_id, actor, expires): (Uuid, &Actor, i64),
    resume_from: Option<i64>,
) -> End {
    // Boxed, so that its state (the replay's) is not part of every idle session's task.
    let started = start(state, connection, &mut registration, (session_id, actor), resume_from);
    if let Err(end) = Box::pin(started).await {
        return end;
    }
    let heartbeat = state.gateway.settings.heartbeat;
    let silence = heartbeat + heartbeat / 2;
    // Pushed back by every frame from the client.
    let silent = tokio::time::sleep(silence);
    tokio::pin!(silent);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let expiry = Duration::from_secs(u64::try_from(expires - Utc::now().timestamp()).unwrap_or(0));
    let expired = tokio::time::sleep(expiry);
    tokio::pin!(expired);
    // One waiter for the whole session: a new one for every frame would take the `Notify`'s
    // lock twice per frame, ten thousand times per event.
    let kick = Arc::clone(&registration.kick);
    let kicked = kick.wait();
    tokio::pin!(kicked);
    loop {
        // In this order, and no further than the first ready branch: a frame's wake-up then
        // polls the client's stream and the queue, not every timer (ten thousand times per
        // event). The client's frames come first, so a busy queue cannot make it look silent.
        tokio::select! {
            biased;
            message = connection.socket.next() => {
                silent.as_mut().reset(tokio::time::Instant::now() + silence);
                match message {
                    None => return End::Gone,
                    Some(Ok(message)) => {
                        if let Some(end) = answer(connection, message, kicked.as_mut()).await {
                            return end;
                        }
                    }
                    Some(Err(ProtocolError::Overflow)) => return CloseCode::FrameTooLarge.into(),
                    Some(Err(_)) => return CloseCode::DecodeError.into(),
                }
            }
            frame = registration.queue.recv() => {
                // The hub drops the queue of a session it closes (a slow consumer): what
                // was queued is sent, then the close code.
                let Some(mut frame) = frame else {
                    return registration.kick.code().map_or(End::Gone, End::from);
                };
                // What is queued already goes out before the next wait.
                loop {
                    if let Some(end) = deliver(state, connection, frame, kicked.as_mut()).await {
                        return end;
                    }
                    match registration.queue.try_recv() {
                        Ok(next) => frame = next,
                        Err(_) => break,
                    }
                }
            }
            () = &mut silent => return CloseCode::SessionTimedOut.into(),
            _ = ticks.tick() => {
                let beat = serde_json::json!({"op": "HEARTBEAT", "s": connection.last_sent});
                if let Some(end) = send(connection, beat.to_string().into(), kicked.as_mut()).await {
                    return end;
                }
            }
            code = &mut kicked => return code.into(),
            () = &mut expired => return CloseCode::TokenExpired.into(),
        }
    }
}

/// `READY`, once the reader has seeded the session, then the replay. Apart from [`serve`]'s
/// loop: what it reads (the servers, their JSON) is dropped before the session idles, instead
/// of being kept in the session's future for its whole life.
async fn start(
    state: &GatewayContext,
    connection: &mut Connection,
    registration: &mut Registration,
    (session_id, actor): (Uuid, &Actor),
    resume_from: Option<i64>,
) -> Result<(), End> {
    let seeded = tokio::select! {
        seeded = &mut registration.seeded => seeded.ok(),
        () = tokio::time::sleep(Duration::from_secs(10)) => None,
    };
    let Some(seeded) = seeded else { return Err(CloseCode::Unavailable.into()) };
    let servers: Vec<_> = seeded.servers.iter().map(server_json).collect();
    let ready = op_frame(
        "READY",
        &json!({"session_id": session_id, "user_id": actor.user_id, "servers": servers, "seq": seeded.seq}),
    );
    drop(servers);
    if !connection.send(ready).await {
        return Err(End::Gone);
    }
    // Live events up to what the client says it has seen (perhaps from an instance whose
    // reader is ahead of this one's) are not sent again.
    connection.last_sent = seeded.seq.max(resume_from.unwrap_or(0));
    if let Some(from) = resume_from {
        replay(state, connection, &seeded.servers, from, seeded.seq).await?;
    }
    Ok(())
}

/// Answers one client message; how the session ends, if this ends it.
async fn answer(
    connection: &mut Connection,
    message: Incoming,
    kicked: std::pin::Pin<&mut impl std::future::Future<Output = CloseCode>>,
) -> Option<End> {
    match message {
        Incoming::Text(text) => match ClientOp::parse(&text) {
            Ok(ClientOp::Heartbeat) => {
                let ack = op_frame("HEARTBEAT_ACK", &serde_json::Value::Null);
                send(connection, ack, kicked).await
            }
            Ok(ClientOp::HeartbeatAck) => None,
            Err(code) => Some(code.into()),
        },
        Incoming::Binary => Some(CloseCode::BinaryFrame.into()),
        Incoming::Ping(bytes) => {
            tokio::select! {
                sent = connection.socket.pong(&bytes) => sent.is_err().then_some(End::Gone),
                code = kicked => Some(code.into()),
            }
        }
        Incoming::Pong => None,
        Incoming::Close(reason) => Some(End::Answer(reason)),
    }
}

/// Sends a frame, unless the hub closes the session first (a client that does not read
/// leaves the send waiting for room); how the session ends, if this ends it.
async fn send(
    connection: &mut Connection,
    text: bytestring::ByteString,
    kicked: std::pin::Pin<&mut impl std::future::Future<Output = CloseCode>>,
) -> Option<End> {
    tokio::select! {
        sent = connection.socket.text(text) => sent.is_err().then_some(End::Gone),
        code = kicked => Some(code.into()),
    }
}

/// Sends one queued frame, unless the replay sent its event already; how the session ends, if
/// this ends it.
async fn deliver(
    state: &GatewayContext,
    connection: &mut Connection,
    frame: Arc<Outgoing>,
    kicked: std::pin::Pin<&mut impl std::future::Future<Output = CloseCode>>,
) -> Option<End> {
    let Some((seq, written)) = frame.event else {
        return send(connection, frame.text.clone(), kicked).await;
    };
    if seq <= connection.last_sent {
        return None;
    }
    connection.last_sent = seq;
    let end = send(connection, frame.text.clone(), kicked).await;
    // Closed as a slow consumer while waiting for the connection: not delivered.
    if let Some(End::Close(_)) = end {
        return end;
    }
    let delay = (Utc::now() - written).to_std().unwrap_or_default();
    state.metrics.observe_gateway_dispatch(delay.as_secs_f64());
    end
}

/// Sends the events of the session's servers after `from` and up to `until` (the reader's
/// cursor at `READY`), then `RESUMED`.
async fn replay(
    state: &GatewayContext,
    connection: &mut Connection,
    servers: &[MemberServer],
    from: i64,
    until: i64,
) -> Result<(), End> {
    let (oldest, latest) = state
        .door
        .read(|conn| -> invite_store::StoreResult<_> {
            Ok((conn.oldest_seq()?, conn.latest_seq()?))
        })
        .await
        .map_err(|_| End::Close(CloseCode::Unavailable))?;
    if from > latest.max(until) {
        return Err(CloseCode::InvalidSeq.into());
    }
    // The event after `from` was purged: what was missed cannot be told.
    if oldest.is_some_and(|oldest| from < oldest - 1) {
        let invalid = op_frame(
            "INVALID_SESSION",
            &json!({"reason": "resume_from is older than the outbox keeps", "oldest_seq": oldest}),
        );
        let _ = connection.send(invalid).await;
        return Err(CloseCode::InvalidSession.into());
    }
    state.metrics.gateway_resume();
    let ids: Vec<Uuid> = servers.iter().map(|server| server.id).collect();
    let mut after = from;
    let mut replayed = 0_u64;
    loop {
        let wanted = ids.clone();
        let page = state
            .door
            .read(move |conn| conn.servers_events_between(&wanted, after, until, 500))
            .await
            .map_err(|_| End::Close(CloseCode::Unavailable))?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            if !may_hear(servers, event) {
                continue;
            }
            if !connection.send(protocol::dispatch_frame(event)).await {
                return Err(End::Gone);
            }
            replayed += 1;
        }
    }
    connection.last_sent = connection.last_sent.max(until);
    if !connection.send(op_frame("RESUMED", &json!({"replayed": replayed}))).await {
        return Err(End::Gone);
    }
    Ok(())
}

/// Whether a member of `servers` hears `event` at the replay.
fn may_hear(servers: &[MemberServer], event: &StoredEvent) -> bool {
    servers
        .iter()
        .find(|server| server.id == event.server_id())
        .is_some_and(|server| event.audience().may_hear(&server.standing))
}

fn server_json(server: &MemberServer) -> serde_json::Value {
    json!({
        "id": server.id,
        "name": server.name,
        "icon_url": server.icon_url,
        "member_count": server.member_count,
        "permissions": server.standing.effective().bits(),
    })
}
