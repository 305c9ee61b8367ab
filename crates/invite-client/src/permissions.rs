//! Permission bits, as the contract numbers them (Together's layout).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

bitflags::bitflags! {
    /// A set of permissions: an integer on the wire.
    ///
    /// Bits this version does not name are kept as they were received, so a server and its
    /// permissions survive a round trip through an older client unchanged.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Permissions: i64 {
        /// See channels.
        const VIEW_CHANNEL = 1 << 0;
        /// Send messages.
        const SEND_MESSAGES = 1 << 1;
        /// Delete or pin other members' messages.
        const MANAGE_MESSAGES = 1 << 2;
        /// Upload files.
        const ATTACH_FILES = 1 << 3;
        /// React to messages.
        const ADD_REACTIONS = 1 << 4;
        /// Join voice channels.
        const CONNECT_VOICE = 1 << 5;
        /// Speak in voice channels.
        const SPEAK = 1 << 6;
        /// Mute others in voice channels.
        const MUTE_MEMBERS = 1 << 7;
        /// Remove members from the server.
        const KICK_MEMBERS = 1 << 8;
        /// Ban members and lift bans.
        const BAN_MEMBERS = 1 << 9;
        /// Create and edit channels.
        const MANAGE_CHANNELS = 1 << 10;
        /// Manage roles.
        const MANAGE_ROLES = 1 << 11;
        /// Edit the server, pause invites, manage the vanity URL and others' invites.
        const MANAGE_SERVER = 1 << 12;
        /// Every permission.
        const ADMINISTRATOR = 1 << 13;
        /// Create, list and revoke one's own invites.
        const CREATE_INVITES = 1 << 14;
    }
}

impl Permissions {
    /// What every member of a new server may do unless its creator says otherwise.
    pub const DEFAULT_MEMBER: Self = Self::VIEW_CHANNEL
        .union(Self::SEND_MESSAGES)
        .union(Self::ADD_REACTIONS)
        .union(Self::CONNECT_VOICE)
        .union(Self::SPEAK);
}

impl Serialize for Permissions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.bits())
    }
}

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i64::deserialize(deserializer).map(Self::from_bits_retain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_match_the_contract_and_unknown_ones_survive() {
        assert_eq!(Permissions::DEFAULT_MEMBER.bits(), 1 | 2 | 16 | 32 | 64);
        assert_eq!(Permissions::CREATE_INVITES.bits(), 16384);
        let future: Permissions = serde_json::from_str(&(1_i64 << 40 | 1).to_string()).unwrap();
        assert!(future.contains(Permissions::VIEW_CHANNEL));
        assert_eq!(serde_json::to_string(&future).unwrap(), (1_i64 << 40 | 1).to_string());
    }
}
