//! The Idempotency-Keys whose request is running on this instance: a second request with the
//! same key is refused while the first runs, rather than racing it to the database (contract
//! section 6). What a finished request answered is recorded in the database, with its change.

use std::sync::Arc;

use dashmap::DashMap;
use invite_store::repo::IdempotencyClaim;
use uuid::Uuid;

/// Keys whose request is running on this instance, by user.
#[derive(Debug, Default)]
pub struct InFlight(DashMap<(Uuid, String), ()>);

impl InFlight {
    /// Claims `claim`'s key for as long as the returned guard lives; `None` when a request
    /// with the same user and key runs here already.
    pub fn claim(self: &Arc<Self>, claim: IdempotencyClaim) -> Option<Claimed> {
        match self.0.entry((claim.user_id, claim.key.clone())) {
            dashmap::Entry::Occupied(_) => None,
            dashmap::Entry::Vacant(slot) => {
                slot.insert(());
                Some(Claimed { claim, in_flight: Arc::clone(self) })
            }
        }
    }
}

/// The claim on a key, held while its request runs; dropping it frees the key.
#[derive(Debug)]
pub struct Claimed {
    claim: IdempotencyClaim,
    in_flight: Arc<InFlight>,
}

impl Claimed {
    /// The claim, as the store records it.
    pub fn claim(&self) -> &IdempotencyClaim {
        &self.claim
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        self.in_flight.0.remove(&(self.claim.user_id, std::mem::take(&mut self.claim.key)));
    }
}
