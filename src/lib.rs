//! The invite service as one package: it owns the black-box tests (`tests/`) and the reference
//! integrations (`examples/`), and re-exports the workspace crates for them.

pub use invite_core as core;
pub use invite_http as http;
pub use invite_store as store;
