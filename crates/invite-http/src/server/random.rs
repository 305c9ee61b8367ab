//! Where invite codes' randomness comes from.

use std::sync::Arc;

use invite_core::code::{OsRandom, RandomSource};

/// Makes the random source a code reservation draws from; injectable so tests can force
/// collisions.
pub type RandomFactory = Arc<dyn Fn() -> Box<dyn RandomSource + Send> + Send + Sync>;

/// The OS CSPRNG, for production.
pub fn os_random() -> RandomFactory {
    Arc::new(|| Box::new(OsRandom))
}
