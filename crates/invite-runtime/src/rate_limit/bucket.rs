//! The buckets, and where a request stands with one: what the host's `X-RateLimit-*` headers
//! and 429s say.

use std::time::Duration;

/// The buckets, named as `X-RateLimit-Bucket` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Accepting invites.
    Accept,
    /// Creating invites.
    Create,
    /// Previewing invites (the JSON preview and the invite page).
    Preview,
    /// Looking up codes that do not exist.
    UnknownCode,
}

impl Bucket {
    /// Every bucket.
    pub const ALL: [Self; 4] = [Self::Accept, Self::Create, Self::Preview, Self::UnknownCode];

    /// The name in headers and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Create => "create",
            Self::Preview => "preview",
            Self::UnknownCode => "unknown-code",
        }
    }
}

/// Where a request stands with its bucket: what `X-RateLimit-*` says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketState {
    /// The bucket.
    pub bucket: Bucket,
    /// Its size.
    pub limit: u32,
    /// Requests left before it refuses.
    pub remaining: u32,
    /// Until it is full again.
    pub reset_after: Duration,
}

/// A refusal: the bucket's state, and when a request would be let through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    /// The bucket that refused.
    pub state: BucketState,
    /// How long to wait.
    pub retry_after: Duration,
}
