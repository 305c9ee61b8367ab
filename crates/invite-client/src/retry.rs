//! When a failed call is tried again, and after how long.
//!
//! **What is retried.** A call is tried again only when trying cannot do the work twice:
//! - 429 `RATE_LIMITED`, and 503 `OVERLOADED` or `MAINTENANCE`: the service refused before doing
//!   anything, so every request may be retried;
//! - 409 `IDEMPOTENCY_IN_FLIGHT`: the first request with this key is still running; asking again
//!   later returns its stored answer;
//! - any other 503 (`SERVICE_UNAVAILABLE`, or a 503 from a proxy), a connection closed before the
//!   answer, a timeout, a body cut short: the request may have done its work, so only requests
//!   that are safe to repeat are retried: `GET`, `HEAD`, `PUT` and `DELETE`, and `POST` or `PATCH`
//!   carrying an `Idempotency-Key` (every `POST` of this client does, the same key on each
//!   attempt, so the service answers a repeat with the first answer);
//! - a connection that could not be made at all: nothing was sent, so every request is retried.
//!
//! Every other error is final, including every other 4xx: asking again would get the same answer.
//!
//! **How long to wait.** Exponential backoff with jitter from `backon`: the n-th retry waits
//! `base_delay * 2^(n-1)`, plus up to as much again at random, never more than `max_delay`. When
//! the service says how long to wait (`Retry-After`, or a 429 body's `retry_after`), the client
//! waits the longer of that and its own backoff: `max(backoff, retry_after)`.
//!
//! **When it gives up.** After `max_attempts` attempts in all; when the next wait would end past
//! the `deadline` (counted from the call's start, which also bounds each attempt's timeout); and
//! when the service asks for a wait longer than `max_delay`. In that last case the client does not
//! shorten the wait to `max_delay`: coming back before the time the service named is a wasted
//! attempt (another 429, another 503) that also counts against the caller's rate limit. It returns
//! the error at once instead, with [`ClientError::retry_after`] saying when to come back.

use std::time::Duration;

use backon::ExponentialBuilder;
use reqwest::Method;

use crate::error::{ClientError, ErrorCode};

/// How a call retries: attempts, delays and a deadline. See the module documentation of the
/// crate's README ("Retries") for what is retried.
///
/// The default: 5 attempts, 200 ms base delay doubling with jitter, at most 30 s per wait, and the
/// whole call (attempts and waits) within 60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    deadline: Option<Duration>,
    jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            deadline: Some(Duration::from_mins(1)),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    #[must_use]
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// Attempts in all, the first included (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The first retry's delay before jitter; each later one doubles it.
    #[must_use]
    pub fn with_base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest wait between two attempts, and the longest `Retry-After` the client honours:
    /// asked to wait longer, it gives up and returns the error.
    #[must_use]
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The longest the whole call may take, attempts and waits included; `None` for no limit
    /// beyond the attempts.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Waits exactly the exponential delays, with no random part (for tests; jitter is what
    /// keeps many clients from coming back at the same instant).
    #[must_use]
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The first retry's delay before jitter.
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// The longest wait between two attempts.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The longest the whole call may take.
    pub fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The backoff schedule: one delay per retry.
    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        let retries = usize::try_from(self.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        let builder = ExponentialBuilder::new()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(retries);
        if self.jitter { builder.with_jitter() } else { builder }
    }

    /// The wait before the next attempt, or `None` to give up. `backoff` is the schedule's next
    /// delay (`None` once the attempts are used up), `retry_after` what the service asked for,
    /// `elapsed` the time since the call started.
    pub(crate) fn next_delay(
        &self,
        backoff: Option<Duration>,
        retry_after: Option<Duration>,
        elapsed: Duration,
    ) -> Option<Duration> {
        // Jitter may take the schedule's delay past the cap; backon computes in `f32`, whose
        // noise (200.000003 ms) the rounding to microseconds removes.
        let backoff = round_to_micros(backoff?).min(self.max_delay);
        let delay = match retry_after {
            Some(asked) if asked > self.max_delay => return None,
            Some(asked) => backoff.max(asked),
            None => backoff,
        };
        match self.deadline {
            Some(deadline) if elapsed.saturating_add(delay) >= deadline => None,
            _ => Some(delay),
        }
    }

    /// How long the next attempt may take: the client's timeout, within the deadline.
    pub(crate) fn attempt_timeout(&self, timeout: Duration, elapsed: Duration) -> Duration {
        match self.deadline {
            Some(deadline) => {
                timeout.min(deadline.saturating_sub(elapsed)).max(Duration::from_millis(1))
            }
            None => timeout,
        }
    }
}

fn round_to_micros(delay: Duration) -> Duration {
    let micros = delay.as_nanos().saturating_add(500) / 1000;
    Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

/// Whether a request may be sent twice without doing its work twice: the methods HTTP defines
/// as idempotent, and any request carrying an `Idempotency-Key`.
pub(crate) fn is_replayable(method: &Method, has_idempotency_key: bool) -> bool {
    has_idempotency_key
        || [Method::GET, Method::HEAD, Method::PUT, Method::DELETE, Method::OPTIONS]
            .contains(method)
}

/// Whether the error is worth another attempt (see the module documentation).
pub(crate) fn should_retry(error: &ClientError, replayable: bool) -> bool {
    match error {
        ClientError::Api { status: 429, .. }
        | ClientError::Status { status: 429, .. }
        | ClientError::Api { status: 409, code: ErrorCode::IdempotencyInFlight, .. } => true,
        ClientError::Api { status: 503, code, .. } => {
            replayable || matches!(code, ErrorCode::Overloaded | ErrorCode::Maintenance)
        }
        ClientError::Status { status: 503, .. } => replayable,
        // A request that could not even be built (a header value with a line break) fails
        // the same way every time; nothing was sent when the connection could not be made.
        ClientError::Transport(error) => !error.is_builder() && (error.is_connect() || replayable),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn api(status: u16, code: &str) -> ClientError {
        ClientError::Api {
            status,
            code: ErrorCode::from(code),
            message: String::new(),
            retry_after: None,
            global: false,
            rate_limit: None,
        }
    }

    #[test]
    fn the_schedule_doubles_up_to_the_cap_and_stops_after_the_attempts() {
        let policy = RetryPolicy::default()
            .with_max_attempts(5)
            .with_base_delay(100 * MS)
            .with_max_delay(300 * MS)
            .without_jitter();
        let mut schedule = backon::BackoffBuilder::build(policy.backoff());
        let delays: Vec<_> =
            std::iter::from_fn(|| policy.next_delay(schedule.next(), None, Duration::ZERO))
                .collect();
        assert_eq!(delays, [100 * MS, 200 * MS, 300 * MS, 300 * MS]);
        let once = RetryPolicy::none();
        assert_eq!(backon::BackoffBuilder::build(once.backoff()).count(), 0);
    }

    #[test]
    fn jitter_stays_between_the_delay_and_the_cap() {
        let policy = RetryPolicy::default()
            .with_max_attempts(6)
            .with_base_delay(100 * MS)
            .with_max_delay(250 * MS)
            .with_deadline(None);
        for _ in 0..50 {
            let mut schedule = backon::BackoffBuilder::build(policy.backoff());
            let mut floor = 100 * MS;
            for _ in 0..5 {
                let delay = policy.next_delay(schedule.next(), None, Duration::ZERO).unwrap();
                assert!(delay >= floor.min(250 * MS) && delay <= 250 * MS, "{delay:?}");
                floor *= 2;
            }
            assert_eq!(policy.next_delay(schedule.next(), None, Duration::ZERO), None);
        }
    }

    #[test]
    fn retry_after_lengthens_the_wait_but_never_shortens_it() {
        let policy = RetryPolicy::default().with_max_delay(Duration::from_secs(10));
        let second = Duration::from_secs(1);
        assert_eq!(policy.next_delay(Some(100 * MS), Some(second), Duration::ZERO), Some(second));
        assert_eq!(
            policy.next_delay(Some(3 * second), Some(second), Duration::ZERO),
            Some(3 * second)
        );
    }

    #[test]
    fn a_retry_after_beyond_the_cap_gives_up() {
        let policy = RetryPolicy::default().with_max_delay(Duration::from_secs(10));
        assert_eq!(
            policy.next_delay(Some(100 * MS), Some(Duration::from_secs(11)), Duration::ZERO),
            None
        );
    }

    #[test]
    fn the_deadline_stops_a_wait_that_would_end_past_it() {
        let policy = RetryPolicy::default().with_deadline(Some(Duration::from_secs(2)));
        let elapsed = Duration::from_millis(1500);
        assert_eq!(policy.next_delay(Some(400 * MS), None, elapsed), Some(400 * MS));
        assert_eq!(policy.next_delay(Some(500 * MS), None, elapsed), None);
        assert_eq!(policy.attempt_timeout(Duration::from_secs(30), elapsed), 500 * MS);
        assert_eq!(policy.attempt_timeout(Duration::from_millis(100), elapsed), 100 * MS);
        let unbounded = policy.with_deadline(None);
        assert_eq!(unbounded.attempt_timeout(Duration::from_secs(30), elapsed), 30 * 1000 * MS);
    }

    #[test]
    fn what_is_retried() {
        for (error, unkeyed_post, replayable) in [
            (api(429, "RATE_LIMITED"), true, true),
            (api(503, "MAINTENANCE"), true, true),
            (api(503, "OVERLOADED"), true, true),
            (api(503, "SERVICE_UNAVAILABLE"), false, true),
            (api(409, "IDEMPOTENCY_IN_FLIGHT"), true, true),
            (api(409, "ALREADY_MEMBER"), false, false),
            (api(400, "INVITE_EXPIRED"), false, false),
            (api(404, "INVITE_NOT_FOUND"), false, false),
            (api(412, "PRECONDITION_FAILED"), false, false),
            (api(422, "IDEMPOTENCY_KEY_REUSED"), false, false),
            (api(500, "INTERNAL_ERROR"), false, false),
            (
                ClientError::Status { status: 503, body: String::new(), retry_after: None },
                false,
                true,
            ),
            (
                ClientError::Status { status: 502, body: String::new(), retry_after: None },
                false,
                false,
            ),
        ] {
            assert_eq!(should_retry(&error, false), unkeyed_post, "{error}");
            assert_eq!(should_retry(&error, true), replayable, "{error}");
        }
    }

    #[test]
    fn a_request_that_cannot_be_built_is_not_retried() {
        let unbuildable = reqwest::Client::new()
            .get("http://127.0.0.1/")
            .header("idempotency-key", "two\nlines")
            .build()
            .unwrap_err();
        assert!(!should_retry(&ClientError::Transport(unbuildable), true));
    }

    #[test]
    fn which_requests_are_replayable() {
        assert!(is_replayable(&Method::GET, false));
        assert!(is_replayable(&Method::PUT, false));
        assert!(is_replayable(&Method::DELETE, false));
        assert!(!is_replayable(&Method::POST, false));
        assert!(!is_replayable(&Method::PATCH, false));
        assert!(is_replayable(&Method::POST, true));
        assert!(is_replayable(&Method::PATCH, true));
    }
}
