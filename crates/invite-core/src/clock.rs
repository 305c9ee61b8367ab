//! Time, injected: the decision functions take `now` as an argument, and the layers above get it
//! from a [`Clock`] so tests can move time (expiry, cooldowns) without sleeping.

use std::sync::Mutex;

use chrono::{DateTime, Duration, DurationRound, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time, truncated to microseconds: PostgreSQL keeps no finer precision, and
    /// both backends must compare times identically.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_to_micros(Utc::now())
    }
}

/// A clock that stands still until moved: for tests of expiry and cooldowns.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(truncate_to_micros(start)))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = truncate_to_micros(*now + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The system clock shifted by an adjustable offset: real time keeps flowing (tokens, timeouts)
/// while a test jumps ahead by days (cooldowns, expiry).
#[derive(Debug, Default)]
pub struct OffsetClock(Mutex<Duration>);

impl OffsetClock {
    /// A clock showing the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut offset = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *offset += by;
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        truncate_to_micros(Utc::now() + offset)
    }
}

/// Drops the nanoseconds below a microsecond.
pub fn truncate_to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    // Only fails for durations that overflow, which a 1 µs step cannot.
    time.duration_trunc(Duration::microseconds(1)).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Timelike};

    use super::*;

    #[test]
    fn system_time_has_microsecond_precision() {
        assert_eq!(SystemClock.now().nanosecond() % 1000, 0);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start =
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::nanoseconds(1500);
        let clock = ManualClock::new(start);
        assert_eq!(
            clock.now(),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::microseconds(1)
        );
        clock.advance(Duration::days(30));
        assert_eq!(clock.now().date_naive().to_string(), "2026-01-31");
    }

    #[test]
    fn offset_clock_runs_with_the_system_clock_plus_its_offset() {
        let clock = OffsetClock::new();
        let before = SystemClock.now();
        clock.advance(Duration::days(31));
        let shifted = clock.now();
        assert!(shifted >= before + Duration::days(31));
        assert!(shifted < SystemClock.now() + Duration::days(31) + Duration::seconds(5));
    }
}
