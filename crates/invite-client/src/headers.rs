//! What the response headers say besides the body: rate limits, `Retry-After`, replays, versions.

use std::time::Duration;

use chrono::{DateTime, Utc};
use invite_api::RateLimit;
use reqwest::header::{self, HeaderMap};

/// A rate-limit bucket's state from the `X-RateLimit-*` headers; `None` unless the limit, the
/// remaining count and the reset delay are all there and well-formed.
pub(crate) fn rate_limit(headers: &HeaderMap) -> Option<RateLimit> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let limit = text("x-ratelimit-limit")?.trim().parse().ok()?;
    let remaining = text("x-ratelimit-remaining")?.trim().parse().ok()?;
    let reset_after = seconds(text("x-ratelimit-reset-after")?)?;
    let bucket = text("x-ratelimit-bucket").map(|bucket| bucket.trim().to_owned());
    Some(RateLimit { limit, remaining, reset_after, bucket })
}

/// A non-negative, finite number of seconds, possibly with a fraction.
fn seconds(text: &str) -> Option<Duration> {
    let seconds: f64 = text.trim().parse().ok()?;
    if seconds.is_finite() { Duration::try_from_secs_f64(seconds).ok() } else { None }
}

/// `Retry-After`: seconds (an integer, or leniently a fraction), or an HTTP date, which is
/// counted from `now`; a date in the past means no wait.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Some(delay) = seconds(value) {
        return Some(delay);
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

/// What the client reads from every response's headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResponseHeaders {
    /// `Retry-After`.
    pub(crate) retry_after: Option<Duration>,
    /// `X-RateLimit-*`.
    pub(crate) rate_limit: Option<RateLimit>,
    /// `Idempotent-Replayed: true`: the service answered with a stored response.
    pub(crate) replayed: bool,
    /// The version in the `ETag` (`"3"`, or weak `W/"3"`).
    pub(crate) version: Option<i64>,
}

impl ResponseHeaders {
    pub(crate) fn read(headers: &HeaderMap) -> Self {
        let replayed = headers
            .get("idempotent-replayed")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
        let version =
            headers.get(header::ETAG).and_then(|value| value.to_str().ok()).and_then(|tag| {
                let tag = tag.trim();
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
            });
        Self {
            retry_after: retry_after(headers, Utc::now()),
            rate_limit: rate_limit(headers),
            replayed,
            version,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn rate_limit_headers_are_read_with_fractional_reset() {
        let map = headers(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset-After", "2.250"),
            ("X-RateLimit-Bucket", "accept"),
        ]);
        assert_eq!(
            rate_limit(&map),
            Some(RateLimit {
                limit: 10,
                remaining: 0,
                reset_after: Duration::from_millis(2250),
                bucket: Some("accept".to_owned()),
            })
        );
    }

    #[test]
    fn partial_or_malformed_rate_limit_headers_are_none() {
        assert_eq!(rate_limit(&headers(&[("X-RateLimit-Limit", "10")])), None);
        let map = headers(&[
            ("X-RateLimit-Limit", "10"),
            ("X-RateLimit-Remaining", "-1"),
            ("X-RateLimit-Reset-After", "1"),
        ]);
        assert_eq!(rate_limit(&map), None);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 28, 0).unwrap();
        let read = |value: &str| retry_after(&headers(&[("Retry-After", value)]), now);
        assert_eq!(read("1"), Some(Duration::from_secs(1)));
        assert_eq!(read(" 120 "), Some(Duration::from_mins(2)));
        assert_eq!(read("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(read("Wed, 21 Oct 2015 07:28:30 GMT"), Some(Duration::from_secs(30)));
        assert_eq!(read("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(read("-3"), None);
        assert_eq!(read("soon"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn replays_and_versions() {
        let read =
            ResponseHeaders::read(&headers(&[("Idempotent-Replayed", "True"), ("ETag", "\"7\"")]));
        assert!(read.replayed);
        assert_eq!(read.version, Some(7));
        assert_eq!(ResponseHeaders::read(&headers(&[("ETag", "W/\"3\"")])).version, Some(3));
        let plain = ResponseHeaders::read(&headers(&[("Idempotent-Replayed", "false")]));
        assert_eq!(plain, ResponseHeaders::default());
    }
}
