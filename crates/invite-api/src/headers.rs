//! What response headers say besides the body, as far as a reader of the body needs it.

use std::time::Duration;

/// A rate-limit bucket's state, from the `X-RateLimit-*` headers (Discord's contract). The
/// service sends them on every response a limit applies to, not only on 429s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests the bucket allows per window (`X-RateLimit-Limit`).
    pub limit: u64,
    /// Requests left in the current window (`X-RateLimit-Remaining`).
    pub remaining: u64,
    /// When the bucket is full again, from the response (`X-RateLimit-Reset-After`, seconds
    /// with a fraction).
    pub reset_after: Duration,
    /// The bucket's name (`X-RateLimit-Bucket`): `accept`, `create`, `preview`, `unknown-code`.
    pub bucket: Option<String>,
}
