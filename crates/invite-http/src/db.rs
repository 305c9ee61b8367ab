//! The one bridge between async handlers and the synchronous store.
//!
//! Every database call goes through [`Db::run`]: the connection checkout and the work run on
//! actix's blocking pool (never on a worker thread, which would stall every request it serves),
//! the request's tracing span follows them there, and a checkout that times out becomes a 503
//! within the checkout timeout of the request's arrival at the bridge.

use std::time::Instant;

use actix_web::web;
use invite_store::{DbConnection, DbPool, StoreResult};

use crate::error::{ApiError, ApiResult};

/// A handle on the pool, cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: DbPool,
}

impl Db {
    /// Wraps a pool.
    pub fn new(pool: DbPool) -> Self {
        Self { pool }
    }

    /// The pool, for health checks and metrics.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Runs `work` with a pooled connection on the blocking pool.
    pub async fn run<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        // The deadline starts now, not when a blocking thread frees up: under load, requests
        // queue for threads, and the promise is a 503 within the checkout timeout, not later.
        let deadline = Instant::now() + self.pool.checkout_timeout();
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        web::block(move || span.in_scope(|| pool.run_by(deadline, work)))
            .await
            .map_err(|error| ApiError::internal(format!("the blocking pool failed: {error}")))?
            .map_err(ApiError::from)
    }
}
