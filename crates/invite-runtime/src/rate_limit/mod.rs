//! Rate limits (contract section 6): keyed GCRA buckets from `governor`, one per kind of work.
//!
//! | bucket | key | default |
//! |---|---|---|
//! | `accept` | user | 10 per 10 s |
//! | `create` | user and server | 20 per 60 s |
//! | `preview` | client address | 100 per 10 s |
//! | `unknown-code` | client address | 20 per 60 s, charged only by codes that do not exist |
//!
//! Every lookup by code charges `unknown-code` when the code does not exist: the JSON preview,
//! the invite page and its form, the API's accept, and the API's revoke by code (whose answer
//! to a stranger is the same "not found", so it counts as one). Once an address has used up
//! its `unknown-code` bucket, every preview and revoke by code from it is refused until the
//! bucket refills, known codes included: otherwise the answer to the next guess would still
//! say whether it exists, and scanning would go on.
//!
//! Each charge answers with its bucket's state ([`BucketState`]), for the host to put on the
//! response as `X-RateLimit-*` headers, a 429 or not. Limits are per instance (see the README
//! on sizing them for N).
//!
//! Memory stays bounded: [`RateLimits::forget_idle`] (run every few seconds) drops every key
//! whose bucket is full again, which is all a bucket of an idle key can be.

use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use crate::metrics::Metrics;

pub(crate) mod bucket;
pub use bucket::{Bucket, BucketState, Limited};

/// A rate: `count` requests per `period`, with bursts of up to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period, and the largest burst.
    pub count: std::num::NonZeroU32,
    /// The period.
    pub period: Duration,
}

impl Rate {
    /// Parses `10/10s`, `20/1m`, `5/s`.
    pub fn parse(text: &str) -> Option<Self> {
        let (count, period) = text.trim().split_once('/')?;
        let count = count.trim().parse().ok()?;
        let period = period.trim();
        // `5/s` reads as five a second.
        let period = if period.starts_with(|c: char| c.is_ascii_alphabetic()) {
            humantime::parse_duration(&format!("1{period}")).ok()?
        } else {
            humantime::parse_duration(period).ok()?
        };
        (!period.is_zero()).then_some(Self { count, period })
    }
}

/// The rate of each bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// `accept`, per user.
    pub accept: Rate,
    /// `create`, per user and server.
    pub create: Rate,
    /// `preview`, per client address.
    pub preview: Rate,
    /// `unknown-code`, per client address.
    pub unknown_code: Rate,
}

/// An address as a rate-limit key: an IPv4 address, or the /64 an IPv6 address is in (one
/// host usually holds a whole /64, so per-address limits on IPv6 would not limit anyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrKey(u128);

impl From<IpAddr> for AddrKey {
    fn from(addr: IpAddr) -> Self {
        match addr.to_canonical() {
            IpAddr::V4(v4) => Self(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => Self((u128::from(v6) >> 64) | (1 << 127)),
        }
    }
}

type Keyed<K> = RateLimiter<K, DashMapStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// One bucket kind: a keyed limiter and its rate.
struct Limiter<K: Hash + Eq + Clone> {
    bucket: Bucket,
    rate: Rate,
    keyed: Keyed<K>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(bucket: Bucket, rate: Rate) -> Self {
        // GCRA: one cell every period/count, bursts up to count.
        let interval = rate.period / rate.count.get();
        let quota = Quota::with_period(interval.max(Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(rate.count);
        Self { bucket, rate, keyed: RateLimiter::dashmap(quota).with_middleware() }
    }

    fn state(&self, remaining: u32) -> BucketState {
        let spent = self.rate.count.get().saturating_sub(remaining);
        BucketState {
            bucket: self.bucket,
            limit: self.rate.count.get(),
            remaining,
            reset_after: self.rate.period / self.rate.count.get() * spent,
        }
    }

    fn check(&self, key: &K) -> Result<BucketState, Limited> {
        match self.keyed.check_key(key) {
            Ok(snapshot) => Ok(self.state(snapshot.remaining_burst_capacity())),
            Err(not_until) => {
                let retry_after = not_until.wait_time_from(DefaultClock::default().now());
                Err(Limited { state: self.state(0), retry_after })
            }
        }
    }

    fn forget_idle(&self) -> usize {
        self.keyed.retain_recent();
        self.keyed.shrink_to_fit();
        self.keyed.len()
    }
}

/// Every bucket of this instance.
pub struct RateLimits {
    accept: Limiter<Uuid>,
    create: Limiter<(Uuid, Uuid)>,
    preview: Limiter<AddrKey>,
    unknown_code: Limiter<AddrKey>,
    /// Addresses that used up `unknown-code`, and until when every preview of theirs is refused.
    scanners: DashMap<AddrKey, Instant>,
    metrics: std::sync::Arc<Metrics>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("keys", &self.keys()).finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Buckets at these rates, counting refusals in `metrics`.
    pub fn new(rates: Rates, metrics: std::sync::Arc<Metrics>) -> Self {
        Self {
            accept: Limiter::new(Bucket::Accept, rates.accept),
            create: Limiter::new(Bucket::Create, rates.create),
            preview: Limiter::new(Bucket::Preview, rates.preview),
            unknown_code: Limiter::new(Bucket::UnknownCode, rates.unknown_code),
            scanners: DashMap::new(),
            metrics,
        }
    }

    fn counted(&self, result: Result<BucketState, Limited>) -> Result<BucketState, Limited> {
        if let Err(limited) = &result {
            self.metrics.observe_rate_limited(limited.state.bucket.name());
        }
        result
    }

    /// Charges an accept by `user`.
    pub fn accept(&self, user: Uuid) -> Result<BucketState, Limited> {
        self.counted(self.accept.check(&user))
    }

    /// Charges an invite creation by `user` in `server`.
    pub fn create(&self, user: Uuid, server: Uuid) -> Result<BucketState, Limited> {
        self.counted(self.create.check(&(user, server)))
    }

    /// Charges a preview from `addr`, refused outright while the address is marked as scanning.
    pub fn preview(&self, addr: AddrKey) -> Result<BucketState, Limited> {
        self.not_scanning(addr)?;
        self.counted(self.preview.check(&addr))
    }

    /// Refuses `addr` while it is marked as scanning (see [`Self::unknown_code`]), charging
    /// nothing: what a lookup by code checks before it costs the database anything.
    pub fn not_scanning(&self, addr: AddrKey) -> Result<(), Limited> {
        if let Some(until) = self.scanners.get(&addr).map(|until| *until) {
            let now = Instant::now();
            if until > now {
                let limited =
                    Limited { state: self.unknown_code.state(0), retry_after: until - now };
                self.metrics.observe_rate_limited(limited.state.bucket.name());
                return Err(limited);
            }
            self.scanners.remove_if(&addr, |_, until| *until <= now);
        }
        Ok(())
    }

    /// Charges a lookup of a code that does not exist. When it empties the bucket, the address
    /// is marked: its previews are refused until one lookup's worth has refilled.
    pub fn unknown_code(&self, addr: AddrKey) -> Result<BucketState, Limited> {
        let result = self.unknown_code.check(&addr);
        let refill = match &result {
            Ok(state) if state.remaining == 0 => {
                Some(self.unknown_code.rate.period / self.unknown_code.rate.count.get())
            }
            Ok(_) => None,
            Err(limited) => Some(limited.retry_after),
        };
        if let Some(refill) = refill {
            self.scanners.insert(addr, Instant::now() + refill);
        }
        self.counted(result)
    }

    /// Drops every key whose bucket has refilled (an idle key's bucket looks exactly like a
    /// new one's), and every lapsed scanner mark; returns how many keys are left.
    pub fn forget_idle(&self) -> usize {
        let now = Instant::now();
        self.scanners.retain(|_, until| *until > now);
        self.scanners.shrink_to_fit();
        self.accept.forget_idle()
            + self.create.forget_idle()
            + self.preview.forget_idle()
            + self.unknown_code.forget_idle()
    }

    /// Keys held, for the memory check.
    pub fn keys(&self) -> usize {
        self.accept.keyed.len()
            + self.create.keyed.len()
            + self.preview.keyed.len()
            + self.unknown_code.keyed.len()
            + self.scanners.len()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn rate(count: u32, period: Duration) -> Rate {
        Rate { count: NonZeroU32::new(count).unwrap(), period }
    }

    fn limits(preview: u32, unknown: u32) -> RateLimits {
        let slow = Duration::from_mins(1);
        RateLimits::new(
            Rates {
                accept: rate(2, slow),
                create: rate(2, slow),
                preview: rate(preview, slow),
                unknown_code: rate(unknown, slow),
            },
            std::sync::Arc::default(),
        )
    }

    #[test]
    fn a_bucket_counts_down_then_refuses_with_the_wait() {
        let limits = limits(3, 3);
        let user = Uuid::now_v7();
        let first = limits.accept(user).unwrap();
        assert_eq!((first.limit, first.remaining, first.bucket), (2, 1, Bucket::Accept));
        assert_eq!(first.reset_after, Duration::from_secs(30));
        assert_eq!(limits.accept(user).unwrap().remaining, 0);
        let refused = limits.accept(user).unwrap_err();
        assert_eq!(refused.state.remaining, 0);
        assert!(refused.retry_after > Duration::from_secs(29), "{refused:?}");
        assert!(refused.retry_after <= Duration::from_secs(30), "{refused:?}");
        // Another user, and the same user in another bucket, are not affected.
        assert!(limits.accept(Uuid::now_v7()).is_ok());
        assert!(limits.create(user, Uuid::now_v7()).is_ok());
    }

    #[test]
    fn a_scanner_is_refused_known_codes_too() {
        let limits = limits(100, 2);
        let addr = AddrKey::from("203.0.113.7".parse::<IpAddr>().unwrap());
        assert!(limits.preview(addr).is_ok());
        assert_eq!(limits.unknown_code(addr).unwrap().remaining, 1);
        assert_eq!(limits.unknown_code(addr).unwrap().remaining, 0);
        let refused = limits.preview(addr).unwrap_err();
        assert_eq!(refused.state.bucket, Bucket::UnknownCode);
        assert_eq!(limits.not_scanning(addr).unwrap_err().state.bucket, Bucket::UnknownCode);
        let other = AddrKey::from("203.0.113.8".parse::<IpAddr>().unwrap());
        assert!(limits.not_scanning(other).is_ok(), "another address is not affected");
        assert!(limits.preview(other).is_ok(), "another address is not affected");
    }

    #[test]
    fn ipv6_addresses_share_their_64() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddrKey::from(one), AddrKey::from(same_64));
        assert_ne!(AddrKey::from(one), AddrKey::from(other_64));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(AddrKey::from(mapped), AddrKey::from("192.0.2.1".parse::<IpAddr>().unwrap()));
        assert_ne!(AddrKey::from("0.0.0.1".parse::<IpAddr>().unwrap()), AddrKey::from(one));
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let limits = RateLimits::new(
            Rates {
                accept: rate(5, Duration::from_millis(50)),
                create: rate(5, Duration::from_millis(50)),
                preview: rate(5, Duration::from_millis(50)),
                unknown_code: rate(5, Duration::from_millis(50)),
            },
            std::sync::Arc::default(),
        );
        for n in 0..1000u32 {
            limits.accept(Uuid::now_v7()).unwrap();
            limits.preview(AddrKey::from(IpAddr::from(n.to_be_bytes()))).unwrap();
        }
        assert_eq!(limits.keys(), 2000);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(limits.forget_idle(), 0);
    }
}
