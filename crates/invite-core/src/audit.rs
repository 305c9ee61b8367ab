//! The audit log's vocabulary: which actions are recorded and what they point at.

use serde::Serialize;

/// An action recorded in a server's audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum AuditAction {
    /// An invite was created (details: `code`, `max_uses`).
    InviteCreate,
    /// An invite's limits were edited (details: the new values).
    InviteUpdate,
    /// An invite was revoked.
    InviteRevoke,
    /// The vanity code was set, changed or released (details: `old_code`, `new_code`).
    VanityUpdate,
    /// Invites were paused (details: `until`, or null for indefinitely).
    InvitesPause,
    /// Invites were resumed.
    InvitesResume,
    /// Someone joined with an invite (details: `code`).
    MemberJoin,
    /// A member was removed by a moderator.
    MemberKick,
    /// A user was banned (details: `reason`).
    MemberBan,
    /// A ban was lifted.
    MemberUnban,
    /// A temporary member was removed: their last gateway session had been gone for the grace
    /// period (details: `reason`, `temporary`; the actor is the member).
    MemberRemoveTemporary,
    /// A moderator approved a join request: the user joined through its invite (details:
    /// `request_id`, `invite_id`, `code`; the target is the user).
    JoinRequestApprove,
    /// A moderator denied a join request (details: `request_id`, `invite_id`; the target is
    /// the user).
    JoinRequestDeny,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [Self; 13] = [
        Self::InviteCreate,
        Self::InviteUpdate,
        Self::InviteRevoke,
        Self::VanityUpdate,
        Self::InvitesPause,
        Self::InvitesResume,
        Self::MemberJoin,
        Self::MemberKick,
        Self::MemberBan,
        Self::MemberUnban,
        Self::MemberRemoveTemporary,
        Self::JoinRequestApprove,
        Self::JoinRequestDeny,
    ];

    /// The stored and serialized name (`"InviteCreate"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InviteCreate => "InviteCreate",
            Self::InviteUpdate => "InviteUpdate",
            Self::InviteRevoke => "InviteRevoke",
            Self::VanityUpdate => "VanityUpdate",
            Self::InvitesPause => "InvitesPause",
            Self::InvitesResume => "InvitesResume",
            Self::MemberJoin => "MemberJoin",
            Self::MemberKick => "MemberKick",
            Self::MemberBan => "MemberBan",
            Self::MemberUnban => "MemberUnban",
            Self::MemberRemoveTemporary => "MemberRemoveTemporary",
            Self::JoinRequestApprove => "JoinRequestApprove",
            Self::JoinRequestDeny => "JoinRequestDeny",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == name)
    }

    /// What kind of thing the entry's `target_id` is.
    pub const fn target_type(self) -> TargetType {
        match self {
            Self::InviteCreate | Self::InviteUpdate | Self::InviteRevoke | Self::VanityUpdate => {
                TargetType::Invite
            }
            Self::InvitesPause | Self::InvitesResume => TargetType::Server,
            Self::MemberJoin
            | Self::MemberKick
            | Self::MemberBan
            | Self::MemberUnban
            | Self::MemberRemoveTemporary
            | Self::JoinRequestApprove
            | Self::JoinRequestDeny => TargetType::User,
        }
    }
}

/// What an audit entry's `target_id` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// An invite id.
    Invite,
    /// A user id.
    User,
    /// The server itself.
    Server,
}

impl TargetType {
    /// The stored and serialized name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::User => "user",
            Self::Server => "server",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
            assert_eq!(serde_json::to_value(action).unwrap(), action.as_str());
            let target = action.target_type();
            assert_eq!(serde_json::to_value(target).unwrap(), target.as_str());
        }
        assert_eq!(AuditAction::parse("Nope"), None);
    }
}
