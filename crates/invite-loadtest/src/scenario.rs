//! The scenarios, and the loop that drives one at a given concurrency for a given time.

#![expect(
    clippy::cast_precision_loss,
    reason = "counts and latencies become f64 only to print rates and milliseconds; none comes near 2^52"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use invite_api::{CreateInviteRequest, Invite};
use invite_http::auth::Authenticator;
use serde::Serialize;
use uuid::Uuid;

use crate::{cpu, ids};

/// What a scenario sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Scenario {
    /// Each request a new user accepting one of the seeded invites, at random.
    AcceptDistinct,
    /// Each request a new user accepting the same invite (`max_uses` 1,000,000).
    AcceptHot,
    /// 2,000 users race for a fresh invite with `max_uses` 500: exactly 500 must get in.
    AcceptCapped,
    /// Previews of seeded invites, at random.
    Preview,
    /// Previews of the big server's invite, then of the small server's.
    PreviewBigServer,
    /// The invite page (`/invite/{code}`, HTML, as a browser asks) of seeded invites, at
    /// random: to compare with `preview`, the same invites as JSON.
    Page,
    /// Invite creation by the owners of the seeded servers, at random.
    Create,
    /// The invite list of a seeded server (`GET /servers/{id}/invites?limit=50`), by its
    /// owner, at random: a read a standby may serve (`INVITE_DATABASE_READ_URL`).
    ListInvites,
    /// 90% previews, 8% accepts, 2% creates.
    Mixed,
}

impl Scenario {
    /// Whether `status` is the answer this scenario asks for: only these count as served, so
    /// that a service answering errors (a refused token, an unknown user) is not credited with
    /// them.
    pub(crate) fn succeeded(self, status: u16) -> bool {
        match self {
            Self::Preview | Self::PreviewBigServer | Self::Page | Self::ListInvites => {
                status == 200
            }
            Self::AcceptDistinct | Self::AcceptHot | Self::Create => status == 201,
            // Once the invite is used up, its refusal is the answer the race expects.
            Self::AcceptCapped => matches!(status, 201 | 400),
            Self::Mixed => matches!(status, 200 | 201),
        }
    }
}

/// Where the service is and how to talk to it.
#[derive(Clone)]
pub(crate) struct Target {
    /// Base URL, without a trailing slash.
    pub(crate) base: String,
    /// Mints a token per request.
    pub(crate) auth: Arc<Authenticator>,
    /// HTTP client, with a connection per worker.
    pub(crate) client: reqwest::Client,
    /// Seeded servers.
    pub(crate) servers: u64,
    /// Seeded invites.
    pub(crate) invites: u64,
    /// Client addresses to spread requests over, in `X-Forwarded-For` (for a service that
    /// trusts this tool as its proxy); 0 sends none.
    pub(crate) addresses: u32,
    /// The token previews carry, if any (a peer may require one: Together does).
    pub(crate) preview_token: Option<String>,
    /// The next user of the numbered range accepting users come from (see `ids::accepter`);
    /// without it, each accept is a new random user. A peer with a user table needs the range
    /// seeded (`seed-peer`); each user accepts once, so the range must outlast the runs.
    pub(crate) users: Option<Arc<AtomicU64>>,
    /// Where to read the processor time of each run, if anywhere.
    pub(crate) probe: Option<cpu::Probe>,
    /// Where to write a line per answered request, if anywhere (see [`Recorder`]).
    pub(crate) record: Option<Arc<Recorder>>,
}

/// A line per answered request, warm-up included: when it was sent (Unix milliseconds), how
/// long its answer took (milliseconds), the status (0 for no answer), the kind (`preview`,
/// `page`, `accept`, `create`), then an accept's code and user, and a 201 creation's code. A failover test reads it to find the seconds of 503s, and to check that
/// every change the service confirmed is in the database afterwards.
pub(crate) struct Recorder(std::sync::Mutex<std::io::BufWriter<std::fs::File>>);

impl Recorder {
    /// Records into a new file at `path` (an existing one is replaced).
    pub(crate) fn create(path: &std::path::Path) -> anyhow::Result<Self> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self(std::sync::Mutex::new(std::io::BufWriter::new(file))))
    }

    fn line(&self, sent: std::time::SystemTime, latency: Duration, status: u16, what: &str) {
        use std::io::Write;
        let at = sent.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let ms = latency.as_secs_f64() * 1000.0;
        if let Ok(mut file) = self.0.lock() {
            // A line lost to a full disk would show as a missing request; the flush reports it.
            let _ = writeln!(file, "{at} {ms:.1} {status} {what}");
        }
    }

    /// Writes out what is buffered.
    pub(crate) fn flush(&self) -> anyhow::Result<()> {
        use std::io::Write;
        let mut file =
            self.0.lock().map_err(|_| anyhow::anyhow!("the record's lock is poisoned"))?;
        file.flush().context("cannot write the record")
    }
}

/// One request's kind.
#[derive(Debug, Clone)]
enum Request {
    Preview(String),
    Page(String),
    Accept(String),
    /// An accept by a given user with a given `Idempotency-Key`: what a client sends again
    /// after an answer that leaves open whether its join happened.
    AcceptAs {
        code: String,
        user: Uuid,
        key: String,
    },
    Create(u64),
    List(u64),
}

impl Target {
    /// A token with every claim a peer may require: `sub`, `exp`, `iat`, `username` and
    /// `token_type`.
    pub(crate) fn token(&self, user: Uuid, username: String) -> String {
        self.auth.mint_for(user, Some(username), Duration::from_hours(1)).unwrap_or_default()
    }

    /// The next accepting user and their token: the range's next number, or a new random user.
    fn accepter(&self) -> (Uuid, String) {
        if let Some(next) = &self.users {
            let n = next.fetch_add(1, Ordering::Relaxed);
            (ids::accepter(n), self.token(ids::accepter(n), ids::accepter_name(n)))
        } else {
            let user = Uuid::now_v7();
            (user, self.token(user, format!("u{}", user.simple())))
        }
    }

    /// Sends one request; the status, or 0 for a transport failure.
    async fn send(&self, request: &Request) -> u16 {
        let sent = (std::time::SystemTime::now(), Instant::now());
        let mut accepter = None;
        let builder = match request {
            Request::Preview(code) => {
                let builder = self.client.get(format!("{}/invites/{code}", self.base));
                match &self.preview_token {
                    Some(token) => builder.bearer_auth(token),
                    None => builder,
                }
            }
            Request::Page(code) => self
                .client
                .get(format!("{}/invite/{code}", self.base))
                .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
            Request::Accept(code) => {
                let (user, token) = self.accepter();
                accepter = Some(user);
                self.client.post(format!("{}/invites/{code}/accept", self.base)).bearer_auth(token)
            }
            Request::AcceptAs { code, user, key } => {
                accepter = Some(*user);
                self.client
                    .post(format!("{}/invites/{code}/accept", self.base))
                    .bearer_auth(self.token(*user, format!("u{}", user.simple())))
                    .header("idempotency-key", key)
            }
            Request::Create(server) => self
                .client
                .post(format!("{}/servers/{}/invites", self.base, ids::server(*server)))
                .bearer_auth(self.token(ids::owner(*server), ids::owner_name(*server)))
                .json(&CreateInviteRequest { max_uses: Some(10), ..Default::default() }),
            Request::List(server) => self
                .client
                .get(format!("{}/servers/{}/invites?limit=50", self.base, ids::server(*server)))
                .bearer_auth(self.token(ids::owner(*server), ids::owner_name(*server))),
        };
        let builder = if self.addresses > 0 {
            // 10.0.0.0/8 holds 16 million addresses; each request draws one of `addresses`.
            let n = fastrand::u32(0..self.addresses);
            builder.header(
                "x-forwarded-for",
                format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255),
            )
        } else {
            builder
        };
        let (status, body) = match builder.send().await {
            // Reading the body to its end keeps the connection reusable.
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.bytes().await.ok())
            }
            Err(_) => (0, None),
        };
        if let Some(record) = &self.record {
            let what = match (request, status) {
                (Request::Preview(_), _) => "preview".to_owned(),
                (Request::Page(_), _) => "page".to_owned(),
                // The user whatever the answer: a 503 leaves open whether they joined, and the
                // database says which.
                (Request::Accept(code) | Request::AcceptAs { code, .. }, _) => {
                    format!("accept {code} {}", accepter.unwrap_or_default())
                }
                (Request::Create(_), 201) => {
                    let invite = body.and_then(|body| serde_json::from_slice::<Invite>(&body).ok());
                    format!("create {}", invite.and_then(|invite| invite.code).unwrap_or_default())
                }
                (Request::Create(_), _) => "create".to_owned(),
                (Request::List(_), _) => "list".to_owned(),
            };
            record.line(sent.0, sent.1.elapsed(), status, &what);
        }
        status
    }

    fn random_invite(&self) -> String {
        ids::distinct_code(fastrand::u64(1..=self.invites))
    }

    fn next(&self, scenario: Scenario, sub: Option<&str>) -> Request {
        match scenario {
            Scenario::AcceptDistinct => Request::Accept(self.random_invite()),
            Scenario::AcceptHot => Request::Accept(ids::HOT_CODE.to_owned()),
            Scenario::Preview => Request::Preview(self.random_invite()),
            Scenario::Page => Request::Page(self.random_invite()),
            Scenario::PreviewBigServer => Request::Preview(sub.unwrap_or(ids::BIG_CODE).to_owned()),
            Scenario::Create => Request::Create(fastrand::u64(1..=self.servers)),
            Scenario::ListInvites => Request::List(fastrand::u64(1..=self.servers)),
            Scenario::Mixed => match fastrand::u8(0..100) {
                0..90 => Request::Preview(self.random_invite()),
                90..98 => Request::Accept(self.random_invite()),
                _ => Request::Create(fastrand::u64(1..=self.servers)),
            },
            Scenario::AcceptCapped => unreachable!("accept-capped runs a fixed number of requests"),
        }
    }
}

/// How to drive a scenario.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// Requests in flight at once.
    pub(crate) concurrency: usize,
    /// How long to measure.
    pub(crate) duration: Duration,
    /// Unmeasured time before, so caches and connections are warm.
    pub(crate) warmup: Duration,
    /// A total request rate to hold, instead of as fast as possible.
    pub(crate) rate: Option<f64>,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// The scenario (and part, for `preview-big-server`).
    pub(crate) scenario: String,
    /// A label for the backend or setup, given on the command line.
    pub(crate) label: String,
    /// Requests in flight at once.
    pub(crate) concurrency: usize,
    /// The requested rate, if any.
    pub(crate) target_rate: Option<f64>,
    /// Measured seconds.
    pub(crate) seconds: f64,
    /// Requests completed in them.
    pub(crate) requests: u64,
    /// Requests answered as the scenario asks (see [`Scenario::succeeded`]).
    pub(crate) succeeded: u64,
    /// Requests served per second: only the scenario's success statuses count, so that a
    /// service is credited neither with its refusals (503) nor with errors.
    pub(crate) throughput: f64,
    /// Whether the run measured what it claims: at most 1% of its answers were other than the
    /// scenario's success statuses (transport failures included).
    pub(crate) valid: bool,
    /// The processor time each answer cost, when the run was probed.
    pub(crate) cpu: Option<cpu::PerRequest>,
    /// Latency percentiles and maximum, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub(crate) max_ms: f64,
    /// Every status seen, with its count (`0` is a transport failure).
    pub(crate) statuses: BTreeMap<u16, u64>,
    /// Latency of the requests the service admitted (every answer but a 503), p50 and p99.
    pub(crate) admitted_ms: Option<(f64, f64)>,
    /// Latency of the requests it refused at once (503: overloaded, unavailable), p50, p99 and
    /// the maximum.
    pub(crate) refused_ms: Option<(f64, f64, f64)>,
}

/// Latencies by what became of the request.
struct Latencies {
    all: Histogram<u64>,
    admitted: Histogram<u64>,
    refused: Histogram<u64>,
}

impl Latencies {
    fn new() -> Self {
        Self { all: histogram(), admitted: histogram(), refused: histogram() }
    }

    fn record(&mut self, status: u16, micros: u64) {
        let micros = micros.max(1);
        let _ = self.all.record(micros);
        let _ = match status {
            503 => self.refused.record(micros),
            0 => Ok(()),
            _ => self.admitted.record(micros),
        };
    }

    fn add(&mut self, other: &Self) {
        let _ = self.all.add(&other.all);
        let _ = self.admitted.add(&other.admitted);
        let _ = self.refused.add(&other.refused);
    }
}

/// The most answers other than the scenario's success statuses a valid run may have, as a
/// fraction of its answers.
pub(crate) const MOST_OTHER_ANSWERS: f64 = 0.01;

impl Report {
    fn new(
        (scenario, name): (Scenario, String),
        label: &str,
        load: Load,
        seconds: f64,
        latencies: &Latencies,
        statuses: BTreeMap<u16, u64>,
    ) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let histogram = &latencies.all;
        let requests = histogram.len();
        let admitted = &latencies.admitted;
        let refused = &latencies.refused;
        let succeeded: u64 = statuses
            .iter()
            .filter(|(status, _)| scenario.succeeded(**status))
            .map(|(_, count)| count)
            .sum();
        let other = statuses.values().sum::<u64>() - succeeded;
        Self {
            scenario: name,
            label: label.to_owned(),
            concurrency: load.concurrency,
            target_rate: load.rate,
            seconds,
            requests,
            succeeded,
            throughput: succeeded as f64 / seconds,
            valid: succeeded > 0 && other as f64 <= MOST_OTHER_ANSWERS * (succeeded + other) as f64,
            cpu: None,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
            statuses,
            admitted_ms: (!admitted.is_empty()).then(|| {
                (ms(admitted.value_at_quantile(0.50)), ms(admitted.value_at_quantile(0.99)))
            }),
            refused_ms: (!refused.is_empty()).then(|| {
                (
                    ms(refused.value_at_quantile(0.50)),
                    ms(refused.value_at_quantile(0.99)),
                    ms(refused.max()),
                )
            }),
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// Runs `scenario` (one part of it, for `preview-big-server`) with `load`.
async fn drive(
    target: &Target,
    scenario: Scenario,
    sub: Option<&'static str>,
    load: Load,
) -> (f64, Latencies, BTreeMap<u16, u64>) {
    let started = Instant::now();
    let measure_from = started + load.warmup;
    let stop_at = measure_from + load.duration;
    if let Some(rate) = load.rate {
        return open_loop(target, scenario, sub, (rate, load.concurrency), measure_from, stop_at)
            .await;
    }
    // A closed loop: each worker sends its next request when the last one is answered.
    let workers: Vec<_> = (0..load.concurrency)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut latencies = Latencies::new();
                let mut statuses = BTreeMap::new();
                loop {
                    let sent = Instant::now();
                    if sent >= stop_at {
                        break;
                    }
                    let request = target.next(scenario, sub);
                    let status = target.send(&request).await;
                    if sent >= measure_from {
                        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        latencies.record(status, micros);
                        *statuses.entry(status).or_insert(0) += 1;
                    }
                }
                (latencies, statuses)
            })
        })
        .collect();
    let mut merged = Latencies::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for worker in workers {
        if let Ok((latencies, counts)) = worker.await {
            merged.add(&latencies);
            for (status, count) in counts {
                *statuses.entry(status).or_insert(0) += count;
            }
        }
    }
    let measured =
        (Instant::now().min(stop_at + Duration::from_mins(1)) - measure_from).as_secs_f64();
    (measured.max(f64::EPSILON), merged, statuses)
}

/// Sends requests at `rate` a second whatever the answers do (an open loop): each is due at its
/// time, goes out on a task of its own over one of `connections` connections, and its latency
/// counts from when it was due (a wait for a free connection included). A closed loop (each
/// sender waiting for its answer) would slow down with the service and hide its tail; this is
/// how users arrive.
async fn open_loop(
    target: &Target,
    scenario: Scenario,
    sub: Option<&'static str>,
    (rate, connections): (f64, usize),
    measure_from: Instant,
    stop_at: Instant,
) -> (f64, Latencies, BTreeMap<u16, u64>) {
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let connections = Arc::new(tokio::sync::Semaphore::new(connections.max(1)));
    let (sender, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let mut due = Instant::now();
    while due < stop_at {
        tokio::time::sleep_until(due.into()).await;
        // The timer wakes once a millisecond at best: send everything due by now.
        let now = Instant::now();
        while due <= now && due < stop_at {
            let (target, sender, request) =
                (target.clone(), sender.clone(), target.next(scenario, sub));
            let connections = connections.clone();
            let sent = due;
            tokio::spawn(async move {
                let Ok(_connection) = connections.acquire().await else { return };
                let status = target.send(&request).await;
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = sender.send((sent >= measure_from, status, micros));
            });
            due += interval;
        }
    }
    drop(sender);
    let mut latencies = Latencies::new();
    let mut statuses = BTreeMap::new();
    while let Some((measured, status, micros)) = answers.recv().await {
        if measured {
            latencies.record(status, micros);
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    let measured = (stop_at - measure_from).as_secs_f64();
    (measured.max(f64::EPSILON), latencies, statuses)
}

/// Runs a time-based scenario; `preview-big-server` gives two reports, big then small.
pub(crate) async fn run(
    target: &Target,
    scenario: Scenario,
    label: &str,
    load: Load,
) -> anyhow::Result<Vec<Report>> {
    let name = |suffix: &str| {
        let base = serde_json::to_value(scenario)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        format!("{base}{suffix}")
    };
    let parts: Vec<(Option<&'static str>, String)> = match scenario {
        Scenario::AcceptCapped => return Ok(vec![capped(target, label, load).await?]),
        Scenario::PreviewBigServer => {
            vec![(Some(ids::BIG_CODE), name("/big")), (Some(ids::SMALL_CODE), name("/small"))]
        }
        _ => vec![(None, name(""))],
    };
    let mut reports = Vec::new();
    for (sub, scenario_name) in parts {
        // The processor time is read when the measured part starts and once it has ended.
        let before = target.probe.clone().map(|probe| {
            tokio::spawn(async move {
                tokio::time::sleep(load.warmup).await;
                probe.sample()
            })
        });
        let (seconds, latencies, statuses) = drive(target, scenario, sub, load).await;
        let mut report =
            Report::new((scenario, scenario_name), label, load, seconds, &latencies, statuses);
        if let (Some(before), Some(probe)) = (before, &target.probe) {
            let after = probe.sample();
            report.cpu = before.await?.per_request(&after, report.succeeded);
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Users racing for one invite.
const CAPPED_USERS: u64 = 2000;
/// Uses the invite allows.
const CAPPED_USES: u64 = 500;

/// Creates a fresh invite with 500 uses and sends exactly 2,000 accepts, `concurrency` at a time.
async fn capped(target: &Target, label: &str, load: Load) -> anyhow::Result<Report> {
    let owner = ids::owner(ids::CAPPED_SERVER);
    let created = target
        .client
        .post(format!("{}/servers/{}/invites", target.base, ids::server(ids::CAPPED_SERVER)))
        .bearer_auth(target.token(owner, ids::owner_name(ids::CAPPED_SERVER)))
        .json(&CreateInviteRequest {
            max_uses: Some(CAPPED_USES.cast_signed()),
            ..Default::default()
        })
        .send()
        .await
        .context("creating the capped invite")?;
    if created.status().as_u16() != 201 {
        bail!("creating the capped invite answered {}", created.status());
    }
    let invite: Invite = created.json().await?;
    let code = invite.code.context("the invite has a code")?;
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..load.concurrency)
        .map(|_| {
            let (target, code, sent) = (target.clone(), code.clone(), sent.clone());
            tokio::spawn(async move {
                let mut latencies = Latencies::new();
                let mut statuses = BTreeMap::new();
                while sent.fetch_add(1, Ordering::Relaxed) < CAPPED_USERS {
                    let at = Instant::now();
                    // Each user's accept carries an Idempotency-Key, so that it can be sent
                    // again after an answer that leaves open whether it joined (a 503 from a
                    // database that went away mid-commit, no answer at all): the service
                    // replays a join that happened instead of making another user's.
                    let user = Uuid::now_v7();
                    let accept = Request::AcceptAs {
                        code: code.clone(),
                        user,
                        key: Uuid::now_v7().to_string(),
                    };
                    let mut status = target.send(&accept).await;
                    // Shed, unavailable, or unanswered: tried again, as a client would, until
                    // answered: the 2,000 accepts counted are 2,000 definite answers. A user
                    // retrying through an outage can use up their accept bucket (429): they
                    // wait for it to refill (one accept a second), as a client would.
                    while matches!(status, 503 | 0 | 429) {
                        let pause = if status == 429 { 1000 } else { 100 };
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                        status = target.send(&accept).await;
                    }
                    latencies.record(
                        status,
                        u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX),
                    );
                    *statuses.entry(status).or_insert(0) += 1;
                }
                (latencies, statuses)
            })
        })
        .collect();
    let mut merged = Latencies::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for worker in workers {
        let (latencies, counts) = worker.await?;
        merged.add(&latencies);
        for (status, count) in counts {
            *statuses.entry(status).or_insert(0) += count;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = Report::new(
        (Scenario::AcceptCapped, "accept-capped".to_owned()),
        label,
        load,
        seconds,
        &merged,
        statuses,
    );
    let admitted = report.statuses.get(&201).copied().unwrap_or(0);
    let maxed = report.statuses.get(&400).copied().unwrap_or(0);
    if admitted != CAPPED_USES || maxed != CAPPED_USERS - CAPPED_USES {
        bail!(
            "accept-capped admitted {admitted} (expected {CAPPED_USES}) and refused {maxed}: {:?}",
            report.statuses
        );
    }
    Ok(report)
}

impl Report {
    /// Every status with its count, `200:1234 404:5`.
    pub(crate) fn statuses_text(&self) -> String {
        let statuses: Vec<String> =
            self.statuses.iter().map(|(status, count)| format!("{status}:{count}")).collect();
        statuses.join(" ")
    }
}

/// Prints reports as a table, one row per run; a run with too many other answers is marked
/// `INVALID`, since its throughput does not measure the scenario.
pub(crate) fn print_table(reports: &[Report]) {
    println!(
        "{:<24} {:>10} {:>5} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}  statuses",
        "scenario",
        "label",
        "conc",
        "requests",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "svc ms",
        "pg ms"
    );
    for r in reports {
        let cpu = |ms: fn(&cpu::PerRequest) -> f64| {
            r.cpu.as_ref().map_or_else(|| "-".to_owned(), |cpu| format!("{:.3}", ms(cpu)))
        };
        println!(
            "{:<24} {:>10} {:>5} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>7}  {}{}",
            r.scenario,
            r.label,
            r.concurrency,
            r.requests,
            r.throughput,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            cpu(|cpu| cpu.service_ms),
            cpu(|cpu| cpu.postgres_ms),
            r.statuses_text(),
            if r.valid { "" } else { "  INVALID" }
        );
        if let Some((refused_p50, refused_p99, refused_max)) = r.refused_ms {
            let (admitted_p50, admitted_p99) = r.admitted_ms.unwrap_or_default();
            println!(
                "{:<24} admitted p50 {admitted_p50:.2} ms, p99 {admitted_p99:.2} ms; \
                 refused (503) p50 {refused_p50:.2} ms, p99 {refused_p99:.2} ms, max {refused_max:.2} ms",
                ""
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scenario: Scenario, statuses: &[(u16, u64)]) -> Report {
        let mut latencies = Latencies::new();
        for &(status, count) in statuses {
            for _ in 0..count {
                latencies.record(status, 1000);
            }
        }
        let load = Load {
            concurrency: 4,
            duration: Duration::from_secs(10),
            warmup: Duration::ZERO,
            rate: None,
        };
        let name = format!("{scenario:?}");
        Report::new(
            (scenario, name),
            "x",
            load,
            10.0,
            &latencies,
            statuses.iter().copied().collect(),
        )
    }

    #[test]
    fn throughput_counts_only_success_and_errors_beyond_one_percent_invalidate() {
        // Every answer a 401: nothing served, and the run says so.
        let refused = report(Scenario::Preview, &[(401, 5000)]);
        assert_eq!((refused.throughput, refused.valid), (0.0, false));
        // 1% of other answers is tolerated; the throughput leaves them out.
        let tolerated = report(Scenario::AcceptDistinct, &[(201, 990), (404, 5), (0, 5)]);
        assert!(tolerated.valid);
        assert!((tolerated.throughput - 99.0).abs() < 1e-9);
        let beyond = report(Scenario::Create, &[(201, 980), (503, 20)]);
        assert!(!beyond.valid);
        assert_eq!(beyond.statuses_text(), "201:980 503:20");
        // A preview answered 201 or an accept answered 200 is not what the scenario asks.
        assert!(!report(Scenario::Preview, &[(201, 100)]).valid);
        assert!(!report(Scenario::AcceptHot, &[(200, 100)]).valid);
        // The race expects its refusals once the invite is used up.
        assert!(report(Scenario::AcceptCapped, &[(201, 500), (400, 1500)]).valid);
    }
}
