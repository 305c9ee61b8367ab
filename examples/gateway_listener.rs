//! Listening to one server's events over the gateway, the way a bot would: prints each event as
//! it arrives, and when the connection drops (a deploy, a network blip) reconnects to the next
//! instance and resumes from the last `seq` it saw, so that nothing is missed or printed twice.
//!
//! ```sh
//! cargo run --example gateway_listener -- http://127.0.0.1:8080,http://127.0.0.1:8081 <server_id> <token>
//! INVITE_URL=... INVITE_SERVER_ID=... INVITE_TOKEN=... cargo run --example gateway_listener
//! ```
//!
//! The bases are instances with no load balancer in front: after a disconnection the next one is
//! tried, round robin. Prints `connected to <base> at seq <n>`, then one line per event of the
//! server, `<seq> <TYPE> <payload as JSON>`, and runs until stopped. Exits 1 when the token is
//! refused or has expired, 2 when the arguments are missing. Plain `http://` bases only: this
//! example speaks no TLS.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::{Message, WebSocket};

mod common;

/// The wait before the first reconnection; it doubles while attempts fail, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long an instance may take to answer before the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a session ended.
enum End {
    /// The gateway closed it with this code and reason.
    Closed(u16, String),
    /// The connection failed, or never opened.
    Failed(String),
}

/// What outlives a session: the server listened to, and where to resume.
struct Listener {
    server_id: String,
    token: String,
    /// The last `seq` seen, which the next session resumes from; `None` before the first `READY`
    /// and after the gateway said the events since then are gone.
    seq: Option<i64>,
    /// The wait before the next reconnection: reset by every `READY`, so that one blip after
    /// hours of service is retried at once.
    backoff: Duration,
}

impl Listener {
    /// Records `seq` as seen: the resume point only ever moves forward.
    fn saw(&mut self, seq: i64) {
        self.seq = Some(self.seq.map_or(seq, |seen| seen.max(seq)));
    }

    fn connect(&self, base: &str) -> Result<WebSocket<TcpStream>, String> {
        let address = base.trim_start_matches("http://");
        let url = match self.seq {
            Some(seq) => format!("ws://{address}/gateway?resume_from={seq}"),
            None => format!("ws://{address}/gateway"),
        };
        let mut request = url.into_client_request().map_err(|error| error.to_string())?;
        let bearer = format!("Bearer {}", self.token).parse().map_err(|_| "unusable token")?;
        request.headers_mut().insert("authorization", bearer);
        let host = address.split('/').next().unwrap_or(address);
        let stream = TcpStream::connect(host).map_err(|error| error.to_string())?;
        // An instance that accepts but never answers is skipped rather than waited for forever.
        stream.set_read_timeout(Some(CONNECT_TIMEOUT)).map_err(|error| error.to_string())?;
        stream.set_write_timeout(Some(CONNECT_TIMEOUT)).map_err(|error| error.to_string())?;
        match tungstenite::client(request, stream) {
            Ok((socket, _)) => Ok(socket),
            Err(HandshakeError::Failure(error)) => Err(error.to_string()),
            Err(HandshakeError::Interrupted(_)) => Err("no answer to the upgrade".to_owned()),
        }
    }

    /// One session on `base`, from the connection to its end.
    fn session(&mut self, base: &str) -> End {
        let mut socket = match self.connect(base) {
            Ok(socket) => socket,
            Err(error) => return End::Failed(error),
        };
        // On a resume, `READY`'s seq counts once the replay of what came before it is over: a
        // session lost during the replay must resume from the last event actually printed.
        let mut ready_seq = 0;
        // The gateway sends a heartbeat every interval: silence for two means the connection
        // is dead even though no error says so (a network cut sends no close). Never less
        // than `CONNECT_TIMEOUT`, which `READY` may take: there are no heartbeats before it.
        let mut heard = Instant::now();
        let mut deaf_after = CONNECT_TIMEOUT;
        loop {
            let frame: Value = match socket.read() {
                Ok(Message::Text(text)) => serde_json::from_str(&text).unwrap_or_default(),
                Ok(Message::Close(frame)) => {
                    // Sends tungstenite's answer to the close, as the protocol asks.
                    let _ = socket.flush();
                    return match frame {
                        Some(frame) => End::Closed(frame.code.into(), frame.reason.to_string()),
                        None => End::Failed("closed without a code".to_owned()),
                    };
                }
                // Pings are answered by tungstenite itself.
                Ok(_) => Value::Null,
                Err(tungstenite::Error::Io(error))
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    if heard.elapsed() >= deaf_after {
                        return End::Failed(format!("nothing heard for {deaf_after:?}"));
                    }
                    // Quiet for half an interval: a heartbeat keeps the gateway from closing a
                    // session it has not heard from in 1.5 intervals.
                    if let Err(error) = socket.send(Message::text(r#"{"op":"HEARTBEAT"}"#)) {
                        return End::Failed(error.to_string());
                    }
                    continue;
                }
                Err(error) => return End::Failed(error.to_string()),
            };
            heard = Instant::now();
            let data = &frame["d"];
            match frame["op"].as_str().unwrap_or_default() {
                "HELLO" => {
                    let interval = data["heartbeat_interval"].as_u64().unwrap_or(30_000);
                    let interval = Duration::from_millis(interval).max(Duration::from_millis(20));
                    deaf_after = (interval * 2).max(CONNECT_TIMEOUT);
                    let _ = socket.get_ref().set_read_timeout(Some(interval / 2));
                }
                "READY" => {
                    ready_seq = data["seq"].as_i64().unwrap_or(0);
                    println!("connected to {base} at seq {ready_seq}");
                    if self.seq.is_none() {
                        self.saw(ready_seq);
                    }
                    self.backoff = FIRST_BACKOFF;
                    let servers = data["servers"].as_array().map_or(&[][..], Vec::as_slice);
                    if !servers.iter().any(|server| server["id"] == self.server_id.as_str()) {
                        eprintln!("note: not a member of {}: no events will come", self.server_id);
                    }
                }
                "RESUMED" => {
                    println!("resumed {} events", data["replayed"]);
                    self.saw(ready_seq);
                }
                "DISPATCH" => {
                    let seq = frame["s"].as_i64().unwrap_or(0);
                    if data["server_id"] == self.server_id.as_str() {
                        println!("{seq} {} {data}", frame["t"].as_str().unwrap_or("?"));
                    }
                    self.saw(seq);
                }
                "HEARTBEAT" => {
                    // `s` is the last seq the gateway sent: on a quiet server it moves the
                    // resume point forward, which keeps it within the outbox's retention.
                    if let Some(seq) = frame["s"].as_i64() {
                        self.saw(seq);
                    }
                    if let Err(error) = socket.send(Message::text(r#"{"op":"HEARTBEAT_ACK"}"#)) {
                        return End::Failed(error.to_string());
                    }
                }
                _ => {}
            }
        }
    }
}

fn main() -> ExitCode {
    let Some([urls, server_id, token]) =
        common::settings(["INVITE_URL", "INVITE_SERVER_ID", "INVITE_TOKEN"])
    else {
        eprintln!("usage: gateway_listener <base-url>[,<base-url>...] <server-id> <token>");
        eprintln!("       (or INVITE_URL, INVITE_SERVER_ID and INVITE_TOKEN in the environment)");
        return ExitCode::from(2);
    };
    let bases: Vec<&str> = urls.split(',').map(|base| base.trim().trim_end_matches('/')).collect();
    if bases.iter().any(|base| !base.starts_with("http://")) {
        eprintln!("every base is http://host:port (this example speaks no TLS): {urls}");
        return ExitCode::from(2);
    }

    let mut listener = Listener { server_id, token, seq: None, backoff: FIRST_BACKOFF };
    for base in bases.iter().cycle() {
        let reason = match listener.session(base) {
            End::Closed(code @ (4004 | 4005), reason) => {
                eprintln!("the gateway refused the token ({code} {reason}): get a fresh one");
                return ExitCode::from(1);
            }
            // The outbox no longer holds (or never held) the events after our seq: what
            // happened since cannot be told, and a session without `resume_from` starts anew.
            End::Closed(code @ (4007 | 4011), reason) => {
                listener.seq = None;
                format!("{code} {reason}; events were lost")
            }
            End::Closed(code, reason) => format!("{code} {reason}"),
            End::Failed(error) => error,
        };
        match listener.seq {
            Some(seq) => println!("disconnected ({reason}), resuming from {seq}"),
            None => println!("disconnected ({reason}), reconnecting"),
        }
        // 1012 (the instance is stopping) and 1013 (its database is away) alike: the next
        // instance, after a wait that grows while they all fail.
        std::thread::sleep(listener.backoff);
        listener.backoff = (listener.backoff * 2).min(MAX_BACKOFF);
    }
    unreachable!("the bases are cycled through forever")
}
