//! The rate limits as a request meets them: the buckets of `invite_runtime::rate_limit` (none
//! when limits are off), charged for the client a request comes from, with where the request
//! stands recorded for its `X-RateLimit-*` headers (see [`crate::guard::rate_limit`]).

use std::sync::Arc;

use actix_web::HttpRequest;
use invite_runtime::rate_limit::{AddrKey, BucketState, Limited, RateLimits};

use crate::api::error::ApiError;
use crate::guard::client_addr::TrustedProxies;

/// The buckets, and whose forwarding headers name the client.
#[derive(Debug)]
pub(crate) struct Limiter {
    limits: Option<Arc<RateLimits>>,
    proxies: Arc<TrustedProxies>,
}

impl Limiter {
    /// Charges `limits` (`None`: limits are off) for the clients `proxies` name.
    pub(crate) fn new(limits: Option<Arc<RateLimits>>, proxies: Arc<TrustedProxies>) -> Self {
        Self { limits, proxies }
    }

    /// Whether limits are on.
    pub(crate) fn enabled(&self) -> bool {
        self.limits.is_some()
    }

    /// The client's address, as a rate-limit key.
    pub(crate) fn client(&self, req: &HttpRequest) -> AddrKey {
        AddrKey::from(self.proxies.client_of(req))
    }

    /// Charges `bucket`'s key for this request, recording where it stands for the response's
    /// `X-RateLimit-*` headers; 429 when the bucket is empty. Nothing when limits are off.
    pub(crate) fn limit(
        &self,
        req: &HttpRequest,
        charge: impl FnOnce(&RateLimits) -> Result<BucketState, Limited>,
    ) -> Result<(), ApiError> {
        let Some(limits) = &self.limits else { return Ok(()) };
        match charge(limits) {
            Ok(state) => {
                crate::guard::rate_limit::record(req, state);
                Ok(())
            }
            Err(limited) => {
                crate::guard::rate_limit::record(req, limited.state);
                Err(ApiError::RateLimited(limited))
            }
        }
    }

    /// What to answer a lookup of a code that does not exist: `not_found`, once the client
    /// address's `unknown-code` bucket is charged for it, or 429 when that bucket is empty.
    pub(crate) fn unknown_code(&self, req: &HttpRequest, not_found: ApiError) -> ApiError {
        let addr = self.client(req);
        match self.limit(req, |limits| limits.unknown_code(addr)) {
            Ok(()) => not_found,
            Err(limited) => limited,
        }
    }

    /// Refuses a lookup by code from an address that has used up its `unknown-code` bucket,
    /// before the lookup costs anything. Nothing when limits are off.
    pub(crate) fn not_scanning(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let Some(limits) = &self.limits else { return Ok(()) };
        let addr = self.client(req);
        limits.not_scanning(addr).map_err(|limited| {
            crate::guard::rate_limit::record(req, limited.state);
            ApiError::RateLimited(limited)
        })
    }
}
