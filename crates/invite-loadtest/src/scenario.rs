//! The scenarios, and the loop that drives one at a given concurrency for a given time.

// Counts and latencies become f64 only to print rates and milliseconds; none comes near 2^52.
#![allow(clippy::cast_precision_loss)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use invite_http::auth::Authenticator;
use serde::Serialize;
use uuid::Uuid;

use crate::ids;

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
    /// Invite creation by the owners of the seeded servers, at random.
    Create,
    /// 90% previews, 8% accepts, 2% creates.
    Mixed,
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
}

/// One request's kind.
#[derive(Debug, Clone)]
enum Request {
    Preview(String),
    Accept(String),
    Create(u64),
}

impl Target {
    fn token(&self, user: Uuid) -> String {
        self.auth.mint_for(user, None, Duration::from_hours(1)).unwrap_or_default()
    }

    /// Sends one request; the status, or 0 for a transport failure.
    async fn send(&self, request: &Request) -> u16 {
        let builder = match request {
            Request::Preview(code) => self.client.get(format!("{}/invites/{code}", self.base)),
            Request::Accept(code) => self
                .client
                .post(format!("{}/invites/{code}/accept", self.base))
                .bearer_auth(self.token(Uuid::now_v7())),
            Request::Create(server) => self
                .client
                .post(format!("{}/servers/{}/invites", self.base, ids::server(*server)))
                .bearer_auth(self.token(ids::owner(*server)))
                .header("content-type", "application/json")
                .body(r#"{"max_uses": 10}"#),
        };
        match builder.send().await {
            // Reading the body to its end keeps the connection reusable.
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                status
            }
            Err(_) => 0,
        }
    }

    fn random_invite(&self) -> String {
        ids::distinct_code(fastrand::u64(1..=self.invites))
    }

    fn next(&self, scenario: Scenario, sub: Option<&str>) -> Request {
        match scenario {
            Scenario::AcceptDistinct => Request::Accept(self.random_invite()),
            Scenario::AcceptHot => Request::Accept(ids::HOT_CODE.to_owned()),
            Scenario::Preview => Request::Preview(self.random_invite()),
            Scenario::PreviewBigServer => Request::Preview(sub.unwrap_or(ids::BIG_CODE).to_owned()),
            Scenario::Create => Request::Create(fastrand::u64(1..=self.servers)),
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
    /// Requests per second.
    pub(crate) throughput: f64,
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
}

impl Report {
    fn new(
        scenario: String,
        label: &str,
        load: Load,
        seconds: f64,
        histogram: &Histogram<u64>,
        statuses: BTreeMap<u16, u64>,
    ) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let requests = histogram.len();
        Self {
            scenario,
            label: label.to_owned(),
            concurrency: load.concurrency,
            target_rate: load.rate,
            seconds,
            requests,
            throughput: requests as f64 / seconds,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
            statuses,
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
) -> (f64, Histogram<u64>, BTreeMap<u16, u64>) {
    let started = Instant::now();
    let measure_from = started + load.warmup;
    let stop_at = measure_from + load.duration;
    // Each worker holds its share of the rate by sending at a fixed interval.
    let interval =
        load.rate.map(|rate| Duration::from_secs_f64(load.concurrency as f64 / rate.max(0.001)));
    let workers: Vec<_> = (0..load.concurrency)
        .map(|worker| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut histogram = histogram();
                let mut statuses = BTreeMap::new();
                let mut next_send = Instant::now();
                if let Some(interval) = interval {
                    // Spread the workers over one interval instead of sending in bursts.
                    next_send += interval.mul_f64(worker as f64 / load.concurrency as f64);
                }
                loop {
                    // Held at a rate, latency counts from when the request was due, as pgbench's
                    // `--rate` does: a request sent late because the previous one was slow
                    // waited too, and leaving that out would hide the tail.
                    let sent = match interval {
                        Some(interval) => {
                            let due = next_send;
                            tokio::time::sleep_until(due.into()).await;
                            next_send += interval;
                            due
                        }
                        None => Instant::now(),
                    };
                    if sent >= stop_at {
                        break;
                    }
                    let request = target.next(scenario, sub);
                    let status = target.send(&request).await;
                    if sent >= measure_from {
                        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        let _ = histogram.record(micros.max(1));
                        *statuses.entry(status).or_insert(0) += 1;
                    }
                }
                (histogram, statuses)
            })
        })
        .collect();
    let mut merged = histogram();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for worker in workers {
        if let Ok((histogram, counts)) = worker.await {
            let _ = merged.add(&histogram);
            for (status, count) in counts {
                *statuses.entry(status).or_insert(0) += count;
            }
        }
    }
    let measured =
        (Instant::now().min(stop_at + Duration::from_mins(1)) - measure_from).as_secs_f64();
    (measured.max(f64::EPSILON), merged, statuses)
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
        let (seconds, histogram, statuses) = drive(target, scenario, sub, load).await;
        reports.push(Report::new(scenario_name, label, load, seconds, &histogram, statuses));
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
        .bearer_auth(target.token(owner))
        .header("content-type", "application/json")
        .body(format!(r#"{{"max_uses": {CAPPED_USES}}}"#))
        .send()
        .await
        .context("creating the capped invite")?;
    if created.status().as_u16() != 201 {
        bail!("creating the capped invite answered {}", created.status());
    }
    let invite: serde_json::Value = created.json().await?;
    let code = invite["code"].as_str().context("the invite has a code")?.to_owned();
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..load.concurrency)
        .map(|_| {
            let (target, code, sent) = (target.clone(), code.clone(), sent.clone());
            tokio::spawn(async move {
                let mut histogram = histogram();
                let mut statuses = BTreeMap::new();
                while sent.fetch_add(1, Ordering::Relaxed) < CAPPED_USERS {
                    let at = Instant::now();
                    let status = target.send(&Request::Accept(code.clone())).await;
                    let _ = histogram
                        .record(u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX).max(1));
                    *statuses.entry(status).or_insert(0) += 1;
                }
                (histogram, statuses)
            })
        })
        .collect();
    let mut merged = histogram();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for worker in workers {
        let (histogram, counts) = worker.await?;
        let _ = merged.add(&histogram);
        for (status, count) in counts {
            *statuses.entry(status).or_insert(0) += count;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = Report::new("accept-capped".to_owned(), label, load, seconds, &merged, statuses);
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
