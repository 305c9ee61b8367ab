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
pub mod repo;
pub mod schema;
pub mod sql_types;
#[cfg(feature = "testing")]
pub mod testing;

pub use connection::{Backend, DbConnection, write_transaction};
pub use error::{Constraint, Entity, StoreError, StoreResult};
pub use pool::{DatabaseUrl, DbPool, PoolConfig};
