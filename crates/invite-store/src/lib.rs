#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod batch;
pub mod connection;
mod error;
pub mod invariants;
pub mod migrations;
pub mod models;
pub mod pool;
mod prepared;
pub mod replication;
pub mod repo;
pub mod schema;
pub mod sql_types;
#[cfg(feature = "testing")]
pub mod testing;

pub use connection::{Backend, DbConnection, write_transaction};
pub use error::{Availability, Constraint, Entity, Fact, StoreError, StoreResult};
pub use pool::{CONNECTION_LIFETIME, DatabaseUrl, DbPool, PoolConfig};

/// diesel's error type, which transactions of the store's callers convert from (see
/// [`write_transaction`]), without a dependency on diesel of their own.
pub mod diesel_error {
    pub use diesel::result::Error;
}
