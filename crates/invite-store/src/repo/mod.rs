//! The repositories: everything the HTTP API reads and writes, as synchronous methods of
//! [`DbConnection`], which serves both backends. Each module adds one area's methods in an
//! `impl DbConnection` block of its own; with one connection type there is nothing for a trait
//! per area to abstract over.
//!
//! Every write that changes more than one row runs in one transaction: either all of it is
//! committed or none. What stops a change comes back as a fact or a conflict
//! ([`StoreError::Stopped`](crate::StoreError::Stopped),
//! [`StoreError::Conflict`](crate::StoreError::Conflict)), which the operations layer turns into
//! a refusal, and leaves the database unchanged.

mod actor;
mod audit;
mod cursor;
mod events;
mod filing;
mod gateway;
mod idempotency;
mod invites;
mod join_requests;
mod maintenance;
mod members;
mod redeem;
mod servers;
mod stats;
mod vanity;
mod webhooks;

pub use actor::Actor;
pub use audit::audit_write_failures;
pub use events::{EventHorizon, HorizonSample, StoredEvent};
pub use filing::{Filed, insert_join_request_unchecked};
pub use gateway::{MemberServer, NewSession};
pub use idempotency::{
    IDEMPOTENCY_WINDOW, IdempotencyClaim, JoinResponseTemplate, Keyed, PriorResponse,
    RecordedResponse, answered, keyed, recorded,
};
pub use invites::create_statement_sql;
pub use invites::{CreatedInvite, InviteScope, NewInvite};
pub use join_requests::{Approval, Approved, Decided};
pub use maintenance::MaintenanceState;
pub use members::Removal;
pub use redeem::accept_statement_sql;
pub use redeem::{JoinRequest, Joined, Redemption, redeem_set};
pub use stats::{Folded, PreviewCount, RefusalCount};
pub use webhooks::{AttemptOutcome, Delivery, NewWebhook, Webhook};

#[cfg(doc)]
use crate::connection::DbConnection;
