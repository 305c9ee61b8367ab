//! `gateway`: holds N gateway sessions of the big server's members and measures the fan-out of
//! a stream of joins (contract section 10).
//!
//! - Connects `connections` members of the big server (each its own user and token), at most
//!   [`CONNECTING`] at a time, and waits for every `READY`.
//! - Samples the service's resident memory (`--server-pid`) with every session idle.
//! - Joins the big server once every `every` for `duration` (an open loop: each join is sent
//!   when due), each by a new user, numbered. Every session records, for each join, when it
//!   arrived; a join's delivery time is from when its request was sent (before its commit: an
//!   upper bound on the time from the commit) to its last session's arrival.
//! - Checks that every session received every join, each once, and every frame in increasing
//!   `seq`: nothing lost, nothing reordered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

use crate::ids;
use crate::scenario::Target;

/// Handshakes in flight at once: a burst of ten thousand would overflow the listen queue.
const CONNECTING: usize = 256;

/// Bytes a session reads at once (see [`open`]).
const READ_BUFFER: usize = 4096;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct GatewayLoad {
    /// Sessions to hold.
    pub(crate) connections: u64,
    /// One join every this.
    pub(crate) every: Duration,
    /// For this long.
    pub(crate) duration: Duration,
    /// The service's process, to sample its memory.
    pub(crate) server_pid: Option<u32>,
}

/// The id of the `n`th member of the big server (as `seed` made them).
fn big_member(n: u64) -> Uuid {
    Uuid::parse_str(&format!("ae000000-0000-4000-8000-{:012}", n + ids::BIG_SERVER * 1_000_000))
        .expect("a well-formed UUID")
}

/// The id of the `n`th joining user: numbered, so that each session knows which join a
/// `MEMBER_JOIN` reports.
fn joiner(run: u32, n: u64) -> Uuid {
    Uuid::parse_str(&format!("9e{run:06x}-0000-4000-8000-{n:012}")).expect("a well-formed UUID")
}

/// Which join of this run a `MEMBER_JOIN` payload reports, if it is one.
fn join_number(prefix: &str, user_id: &str) -> Option<usize> {
    user_id.strip_prefix(prefix)?.parse().ok()
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Raises this process's open-file limit as far as allowed (each session is a socket); the
/// limit now.
pub(crate) fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

/// The parts of a frame the tool reads, borrowed from its text: ten thousand sessions parse
/// every frame, and the tool shares the machine with the service.
#[derive(serde::Deserialize)]
struct Frame<'a> {
    op: &'a str,
    s: Option<i64>,
    t: Option<&'a str>,
    #[serde(borrow)]
    d: Option<FramePayload<'a>>,
}

/// The part of a payload the tool reads.
#[derive(serde::Deserialize)]
struct FramePayload<'a> {
    user_id: Option<&'a str>,
}

/// What the sessions saw.
struct Tally {
    /// For each join, the latest arrival at any session, in µs since the start.
    last_arrival: Vec<AtomicU64>,
    /// For each join, the sessions it reached.
    reached: Vec<AtomicU64>,
    /// Joins received, summed over sessions.
    received: AtomicU64,
    /// Frames out of `seq` order, or a join received twice.
    disorders: AtomicU64,
    /// Sessions that ended before the run did.
    dropped: AtomicUsize,
    /// Sessions with every join.
    complete: AtomicUsize,
    /// Handshakes tried again after a refusal.
    retries: AtomicU64,
}

/// Runs the load; prints and returns whether nothing was lost or reordered.
pub(crate) async fn run(
    target: &Target,
    load: &GatewayLoad,
) -> anyhow::Result<(bool, serde_json::Value)> {
    let started = Instant::now();
    let joins = usize::try_from(load.duration.as_nanos() / load.every.as_nanos().max(1))?;
    let run_id = fastrand::u32(..0x00ff_ffff);
    let prefix = format!("9e{run_id:06x}-0000-4000-8000-");
    let tally = Arc::new(Tally {
        last_arrival: (0..=joins).map(|_| AtomicU64::new(0)).collect(),
        reached: (0..=joins).map(|_| AtomicU64::new(0)).collect(),
        received: AtomicU64::new(0),
        disorders: AtomicU64::new(0),
        dropped: AtomicUsize::new(0),
        complete: AtomicUsize::new(0),
        retries: AtomicU64::new(0),
    });
    let ws_base = target.base.replacen("http", "ws", 1);
    let connecting = Arc::new(tokio::sync::Semaphore::new(CONNECTING));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<anyhow::Result<()>>(1024);
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut sessions = Vec::new();
    for n in 1..=load.connections {
        let token =
            target.auth.mint_for(big_member(n), None, Duration::from_hours(2)).context("mint")?;
        let (url, tally, connecting, ready, stop, prefix) = (
            format!("{ws_base}/gateway"),
            tally.clone(),
            connecting.clone(),
            ready_tx.clone(),
            stop.clone(),
            prefix.clone(),
        );
        sessions.push(tokio::spawn(async move {
            session(&url, &token, (&tally, &prefix, joins, started), &connecting, ready, &stop)
                .await;
        }));
    }
    drop(ready_tx);
    let mut connected = 0_u64;
    while connected < load.connections {
        match ready_rx.recv().await {
            Some(Ok(())) => connected += 1,
            Some(Err(error)) => bail!("a session failed to start after {connected}: {error:#}"),
            None => bail!("sessions ended before all were ready"),
        }
    }
    println!(
        "{connected} sessions ready in {:.1?} ({} handshakes tried again after a refusal)",
        started.elapsed(),
        tally.retries.load(Ordering::Acquire)
    );
    // Idle: every session's buffers as they stay between events.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = load.server_pid.and_then(rss_mib);
    if let Some(rss) = idle_rss {
        println!("server resident memory with {connected} idle sessions: {rss:.1} MiB");
    }

    let sent = drive_joins(target, run_id, joins, load.every, started).await?;
    // Deliveries still on their way.
    let deadline = Instant::now() + Duration::from_secs(10);
    while tally.complete.load(Ordering::Acquire) + tally.dropped.load(Ordering::Acquire)
        < sessions.len()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let busy_rss = load.server_pid.and_then(rss_mib);
    stop.notify_waiters();
    for session in sessions {
        session.abort();
    }
    report(&tally, &sent, connected, (idle_rss, busy_rss))
}

/// Sends join `n` every `every`; returns when each was sent (µs since `started`), or `None`
/// for a join the service refused.
async fn drive_joins(
    target: &Target,
    run_id: u32,
    joins: usize,
    every: Duration,
    started: Instant,
) -> anyhow::Result<Vec<Option<u64>>> {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut pending = Vec::with_capacity(joins);
    for n in 1..=joins {
        ticks.tick().await;
        let token = target
            .auth
            .mint_for(joiner(run_id, n as u64), None, Duration::from_hours(1))
            .context("mint")?;
        let request = target
            .client
            .post(format!("{}/invites/{}/accept", target.base, ids::BIG_CODE))
            .bearer_auth(token);
        pending.push(tokio::spawn(async move {
            let at = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            match request.send().await {
                Ok(response) if response.status().as_u16() == 201 => Some(at),
                Ok(response) => {
                    eprintln!("join {n} refused: {}", response.status());
                    None
                }
                Err(error) => {
                    eprintln!("join {n} failed: {error}");
                    None
                }
            }
        }));
    }
    let mut sent = vec![None];
    for join in pending {
        sent.push(join.await?);
    }
    Ok(sent)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects and reads `HELLO` and `READY`; the socket and `READY`'s `seq`.
async fn open(url: &str, token: &str) -> anyhow::Result<(Socket, i64)> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    // tungstenite zero-fills its read buffer's free space before each read: at its default
    // 128 KiB, ten thousand sessions spend the machine's time on that memset, which the service
    // shares, under a fan-out. The gateway's frames are far smaller; a larger one takes more
    // reads.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
    let mut seq = 0;
    for expected in ["HELLO", "READY"] {
        let frame = socket.next().await;
        let parsed = match &frame {
            Some(Ok(Message::Text(text))) => serde_json::from_str::<serde_json::Value>(text).ok(),
            _ => None,
        };
        if parsed.as_ref().and_then(|frame| frame["op"].as_str()) != Some(expected) {
            bail!("expected {expected}, got {frame:?}");
        }
        if let Some(ready_seq) = parsed.as_ref().and_then(|frame| frame["d"]["seq"].as_i64()) {
            seq = ready_seq;
        }
    }
    Ok((socket, seq))
}

/// One session: connects, reads `HELLO` and `READY`, answers heartbeats, and records joins.
async fn session(
    url: &str,
    token: &str,
    (tally, prefix, joins, started): (&Tally, &str, usize, Instant),
    connecting: &tokio::sync::Semaphore,
    ready: tokio::sync::mpsc::Sender<anyhow::Result<()>>,
    stop: &tokio::sync::Notify,
) {
    let permit = connecting.acquire().await;
    // A session refused for now (1013: the service sheds a burst of handshakes) tries again
    // after a while, as a client should.
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0;
    let (mut socket, mut last_seq) = loop {
        attempts += 1;
        match open(url, token).await {
            Ok(opened) => break opened,
            Err(error) if attempts < 30 => {
                tally.retries.fetch_add(1, Ordering::Relaxed);
                if attempts == 1 || attempts % 10 == 0 {
                    eprintln!("a session retries after: {error:#}");
                }
                tokio::time::sleep(delay + Duration::from_millis(fastrand::u64(..100))).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(error) => {
                let _ = ready.send(Err(error)).await;
                return;
            }
        }
    };
    drop(permit);
    let _ = ready.send(Ok(())).await;
    let mut seen = vec![false; joins + 1];
    let mut count = 0_usize;
    // One waiter for the session's life: a new one per frame takes the `Notify`'s lock, which
    // every session shares, twice per frame.
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            () = &mut stopped => return,
        };
        let Some(Ok(message)) = frame else {
            tally.dropped.fetch_add(1, Ordering::AcqRel);
            return;
        };
        let Message::Text(text) = message else { continue };
        let Ok(frame) = serde_json::from_str::<Frame<'_>>(&text) else { continue };
        match frame.op {
            "HEARTBEAT" => {
                let _ = socket.send(Message::text(r#"{"op":"HEARTBEAT_ACK"}"#)).await;
            }
            "DISPATCH" => {
                let at = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                let seq = frame.s.unwrap_or(0);
                if seq <= last_seq {
                    tally.disorders.fetch_add(1, Ordering::Relaxed);
                }
                last_seq = seq;
                let number = frame.d.and_then(|d| d.user_id).and_then(|id| join_number(prefix, id));
                if frame.t == Some("MEMBER_JOIN")
                    && let Some(number) = number.filter(|n| (1..=joins).contains(n))
                {
                    if std::mem::replace(&mut seen[number], true) {
                        tally.disorders.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    tally.last_arrival[number].fetch_max(at, Ordering::AcqRel);
                    tally.reached[number].fetch_add(1, Ordering::AcqRel);
                    tally.received.fetch_add(1, Ordering::Relaxed);
                    count += 1;
                    if count == joins {
                        tally.complete.fetch_add(1, Ordering::AcqRel);
                    }
                }
            }
            _ => {}
        }
    }
}

#[expect(clippy::cast_precision_loss, reason = "microseconds of a run, far below 2^52")]
fn report(
    tally: &Tally,
    sent: &[Option<u64>],
    sessions: u64,
    (idle_rss, busy_rss): (Option<f64>, Option<f64>),
) -> anyhow::Result<(bool, serde_json::Value)> {
    let mut delivery = Histogram::<u64>::new(3)?;
    // A join counts as committed when the service said so (201), or when any session heard of
    // it (its answer was lost, not the join): each must have reached every session.
    let (mut committed, mut lost) = (0_u64, 0_u64);
    for (number, at) in sent.iter().enumerate().skip(1) {
        let reached = tally.reached[number].load(Ordering::Acquire);
        if at.is_none() && reached == 0 {
            continue;
        }
        committed += 1;
        lost += sessions.saturating_sub(reached);
        if let Some(at) = at
            && reached > 0
        {
            let last = tally.last_arrival[number].load(Ordering::Acquire);
            delivery.record(last.saturating_sub(*at).max(1))?;
        }
    }
    let expected = committed * sessions;
    let received = tally.received.load(Ordering::Acquire);
    let disorders = tally.disorders.load(Ordering::Acquire);
    let dropped = tally.dropped.load(Ordering::Acquire);
    let ms = |quantile: f64| delivery.value_at_quantile(quantile) as f64 / 1000.0;
    let refused = sent.iter().skip(1).filter(|at| at.is_none()).count();
    println!(
        "{committed} joins ({refused} refused or unanswered) fanned out to {sessions} sessions: \
         {received} of {expected} deliveries, {lost} lost, {disorders} out of order or twice, \
         {dropped} sessions dropped"
    );
    println!(
        "request-to-last-delivery: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        delivery.max() as f64 / 1000.0
    );
    if let Some(rss) = busy_rss {
        println!("server resident memory after the stream: {rss:.1} MiB");
    }
    let json = serde_json::json!({
        "scenario": "gateway", "sessions": sessions, "joins": committed, "lost": lost,
        "deliveries": received, "expected": expected, "disorders": disorders, "dropped": dropped,
        "p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": delivery.max() as f64 / 1000.0,
        "idle_rss_mib": idle_rss, "busy_rss_mib": busy_rss,
    });
    Ok((lost == 0 && disorders == 0 && dropped == 0, json))
}
