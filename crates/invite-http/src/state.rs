//! What every handler shares, built once at start-up and passed down explicitly.

use std::sync::Arc;

use invite_core::clock::Clock;
use invite_core::code::{OsRandom, RandomSource};

use crate::auth::Authenticator;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::preview_cache::PreviewCache;

/// Makes the random source a code reservation draws from; injectable so tests can force
/// collisions.
pub type RandomFactory = Arc<dyn Fn() -> Box<dyn RandomSource + Send> + Send + Sync>;

/// The OS CSPRNG, for production.
pub fn os_random() -> RandomFactory {
    Arc::new(|| Box::new(OsRandom))
}

/// The application state.
#[derive(Clone)]
pub struct AppState {
    /// The database, behind the one async bridge.
    pub db: Db,
    /// Token verification.
    pub auth: Arc<Authenticator>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Where random codes come from.
    pub random: RandomFactory,
    /// The public base URL invite links are built on, without a trailing slash.
    pub public_url: String,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Previews by code.
    pub previews: Arc<PreviewCache>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.db)
            .field("auth", &self.auth)
            .field("clock", &self.clock)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The link people open to preview and accept an invite.
    pub fn invite_url(&self, code: &str) -> String {
        format!("{}/invite/{code}", self.public_url)
    }
}
