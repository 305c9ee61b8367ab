//! The events the service publishes (contract sections 9 and 10): what changed, and who may hear
//! of it. Every change writes its events to the outbox in its own transaction; the gateway, the
//! webhooks, the events endpoint and every instance's preview cache read them from there.

use serde::{Deserialize, Serialize};

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(strum::VariantArray, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// An invite was created (payload: the invite).
    InviteCreate,
    /// An invite's limits or uses changed (payload: the invite).
    InviteUpdate,
    /// An invite was revoked (payload: `server_id`, `invite_id`, `code`).
    InviteDelete,
    /// Someone joined (payload: the member, `code`, the server's `member_count`).
    MemberJoin,
    /// A member's permissions changed (payload: the member).
    MemberUpdate,
    /// A member left or was removed (payload: `user_id`, `reason`: `leave`, `kick`, `ban` or
    /// `temporary`).
    MemberRemove,
    /// A user was banned (payload: `user_id`, `reason`).
    BanAdd,
    /// A ban was lifted (payload: `user_id`).
    BanRemove,
    /// The server's invites were paused (payload: `until`, null for indefinitely).
    InvitesPause,
    /// The server's invites were resumed.
    InvitesResume,
    /// The vanity code was set, changed or released (payload: `code`, `previous_code`).
    VanityUpdate,
    /// The server's name, icon, default permissions or features changed (payload: the
    /// server).
    ServerUpdate,
    /// A channel was created (payload: the channel).
    ChannelCreate,
}

impl EventType {
    /// Every type, in declaration order (derived from the enum: none can be left out).
    pub const ALL: &'static [Self] = <Self as strum::VariantArray>::VARIANTS;

    /// The wire and stored name (`"INVITE_CREATE"`), the same as its serde name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Parses a stored or requested name.
    pub fn parse(name: &str) -> Option<Self> {
        name.parse().ok()
    }

    /// Who may hear of it: a new invite carries its code, which only members allowed to list
    /// invites may see (Together sends every code to every member); everything else goes to
    /// every member.
    pub const fn audience(self) -> Audience {
        match self {
            Self::InviteCreate => Audience::InviteManagers,
            _ => Audience::Members,
        }
    }
}

/// Who may receive an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Every member of the server.
    Members,
    /// Members allowed to list invites (`CREATE_INVITES` or `MANAGE_SERVER`).
    InviteManagers,
}

impl Audience {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Members => "members",
            Self::InviteManagers => "invite_managers",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Members, Self::InviteManagers].into_iter().find(|a| a.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for &kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(serde_json::from_value::<EventType>(kind.as_str().into()).unwrap(), kind);
        }
        assert_eq!(EventType::parse("invite_create"), None);
        let names: Vec<_> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(
            names.join(" "),
            "INVITE_CREATE INVITE_UPDATE INVITE_DELETE MEMBER_JOIN MEMBER_UPDATE MEMBER_REMOVE \
             BAN_ADD BAN_REMOVE INVITES_PAUSE INVITES_RESUME VANITY_UPDATE SERVER_UPDATE \
             CHANNEL_CREATE"
        );
        assert_eq!(EventType::InviteCreate.audience(), Audience::InviteManagers);
        assert_eq!(EventType::InviteDelete.audience(), Audience::Members);
        assert_eq!(Audience::parse("invite_managers"), Some(Audience::InviteManagers));
    }
}
