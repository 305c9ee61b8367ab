//! The JSON API: its routes, the extractors that refuse malformed requests, the one error type,
//! the store's rows as wire bodies, `Idempotency-Key`, the OpenAPI document and its Swagger UI.

pub(crate) mod docs;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod idempotency;
pub(crate) mod openapi;
pub mod routes;
pub(crate) mod wire;
