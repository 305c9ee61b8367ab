//! This instance's gateway: its id, settings and sessions.

use std::time::Duration;

use uuid::Uuid;

use super::hub::Hub;

/// The gateway's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewaySettings {
    /// The heartbeat interval `HELLO` announces.
    pub heartbeat: Duration,
    /// Sessions one user may hold on all instances together.
    pub max_per_user: u32,
    /// Frames a session may have waiting.
    pub queue: usize,
    /// How long a temporary member may be without a session.
    pub temporary_grace: Duration,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(30),
            max_per_user: 10,
            queue: 1024,
            temporary_grace: Duration::from_mins(1),
        }
    }
}

/// This instance's gateway: its sessions and settings.
#[derive(Debug)]
pub struct Gateway {
    /// The instance, as session rows name it.
    pub instance_id: Uuid,
    /// The settings.
    pub settings: GatewaySettings,
    /// The sessions.
    pub hub: Hub,
}

impl Gateway {
    /// A gateway with no sessions.
    pub fn new(settings: GatewaySettings) -> Self {
        Self { instance_id: Uuid::now_v7(), settings, hub: Hub::new(settings.queue) }
    }

    /// How long a session row stays live without renewal, and how often it is renewed: short
    /// enough that a crashed instance's sessions lapse well within the grace period.
    pub fn session_ttl(&self) -> (Duration, Duration) {
        let renew = (self.settings.temporary_grace / 4).min(Duration::from_secs(10));
        (renew * 3, renew)
    }
}

impl Default for Gateway {
    fn default() -> Self {
        Self::new(GatewaySettings::default())
    }
}
