//! What the gateway's sockets work with: the parts of the service a session uses.

use std::sync::Arc;

use invite_core::clock::Clock;
use invite_runtime::door::Door;
use invite_runtime::events::EventBus;
use invite_runtime::gateway::Gateway;
use invite_runtime::metrics::Metrics;

use crate::guard::auth::Authenticator;

/// The parts a gateway session uses, built once at start-up.
#[derive(Debug, Clone)]
pub(crate) struct GatewayContext {
    /// Verifies the session's token.
    pub(crate) auth: Arc<Authenticator>,
    /// The service's clock.
    pub(crate) clock: Arc<dyn Clock>,
    /// The way into the database.
    pub(crate) door: Door,
    /// The outbox's reader, woken for new sessions.
    pub(crate) events: Arc<EventBus>,
    /// This instance's sessions and settings.
    pub(crate) gateway: Arc<Gateway>,
    /// The gateway's series.
    pub(crate) metrics: Arc<Metrics>,
}
