//! Memory of the rate limits under a flood of distinct keys: a million client addresses and a
//! million users each make one request, as a scan from a botnet or a viral wave of new users
//! would. Prints the resident memory before, after the flood, and after idle keys are dropped
//! (their buckets refill within one period; the service drops them every 5 s).
//!
//! `cargo bench -p invite-http --bench rate_limit_memory`
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark whose set-up fails has nothing to measure: it stops with the cause"
)]

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use invite_runtime::rate_limit::Rate;
use invite_runtime::rate_limit::{AddrKey, RateLimits, Rates};

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn main() {
    const KEYS: u32 = 1_000_000;
    // The default buckets' periods, shortened tenfold so the bench does not wait 10 s.
    let rate = |count: u32, millis: u64| Rate {
        count: NonZeroU32::new(count).unwrap(),
        period: Duration::from_millis(millis),
    };
    let limits = RateLimits::new(
        Rates {
            accept: rate(10, 1000),
            create: rate(20, 6000),
            preview: rate(100, 1000),
            unknown_code: rate(20, 6000),
        },
        Arc::default(),
    );
    let before = rss_mb();
    let started = Instant::now();
    for n in 0..KEYS {
        let addr = IpAddr::from((0x0a00_0000 + n).to_be_bytes());
        let _ = limits.preview(AddrKey::from(addr));
        let _ = limits.accept(uuid::Uuid::from_u128(u128::from(n) + 1));
    }
    let flooded = rss_mb();
    println!(
        "{} distinct addresses and {} distinct users in {:.2?}: {} keys",
        KEYS,
        KEYS,
        started.elapsed(),
        limits.keys()
    );
    std::thread::sleep(Duration::from_millis(1100));
    let forgetting = Instant::now();
    let left = limits.forget_idle();
    let after = rss_mb();
    println!(
        "resident memory: {before:.1} MB before, {flooded:.1} MB after the flood \
         ({:.0} bytes a key), {after:.1} MB once idle keys were dropped ({left} keys left, \
         the pass took {:.2?})",
        (flooded - before) * 1024.0 * 1024.0 / f64::from(2 * KEYS),
        forgetting.elapsed()
    );
}
