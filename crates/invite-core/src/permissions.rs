//! Permission bits (Together's layout, plus `MANAGE_SERVER` on the bit Together leaves unused)
//! and the checks each endpoint needs.

use bitflags::bitflags;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::problem::{ErrorCode, Problem};

bitflags! {
    /// A set of permissions, an `i64` on the wire and in the database.
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
        /// Edit the server, pause invites, manage the vanity URL and others' invites. New here:
        /// Together leaves bit 12 unused.
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

    /// Parses bits from the wire, refusing negative values and bits no permission uses: storing
    /// them would silently grant whatever a later version assigns to those bits.
    pub fn parse_bits(bits: i64) -> Result<Self, Problem> {
        Self::from_bits(bits).ok_or_else(|| {
            Problem::validation(format!(
                "permissions must be a combination of the known permission bits (0 to {})",
                Self::all().bits()
            ))
        })
    }
}

impl Serialize for Permissions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.bits())
    }
}

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bits = crate::wire::integer(deserializer)?;
        Self::parse_bits(bits).map_err(|problem| serde::de::Error::custom(problem.message))
    }
}

/// Where the caller stands in a server: what the permission checks are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The caller.
    pub user_id: Uuid,
    /// Whether the caller owns the server.
    pub is_owner: bool,
    /// The server's `default_permissions`, which every member has.
    pub default_permissions: Permissions,
    /// The member's extra permissions.
    pub member_permissions: Permissions,
}

impl Standing {
    /// `default | member`; the owner and any `ADMINISTRATOR` have every permission.
    pub fn effective(&self) -> Permissions {
        let granted = self.default_permissions | self.member_permissions;
        if self.is_owner || granted.contains(Permissions::ADMINISTRATOR) {
            Permissions::all()
        } else {
            granted
        }
    }

    /// Whether the caller has every permission in `needed`.
    pub fn has(&self, needed: Permissions) -> bool {
        self.effective().contains(needed)
    }

    /// Checks one requirement, answering with its message when it is not met.
    pub fn require(&self, requirement: Requirement) -> Result<(), Problem> {
        let met = match requirement.permission() {
            Some(needed) => self.has(needed),
            None => self.is_owner,
        };
        if met { Ok(()) } else { Err(requirement.problem()) }
    }

    /// Whether the caller may see the server's invites (list them, and reach one to edit or
    /// revoke it): `CREATE_INVITES`, or `MANAGE_SERVER`, which lets a moderator manage everyone's
    /// invites. A member with neither is told about `CREATE_INVITES` (Together's wording).
    pub fn may_see_invites(&self) -> Result<(), Problem> {
        if self.has(Permissions::MANAGE_SERVER) {
            Ok(())
        } else {
            self.require(Requirement::CreateInvites)
        }
    }

    /// Whether the caller may see and decide the server's join requests: `KICK_MEMBERS` (who
    /// may remove someone may keep them out) or `MANAGE_SERVER`.
    pub fn may_decide_join_requests(&self) -> Result<(), Problem> {
        if self.has(Permissions::KICK_MEMBERS) || self.has(Permissions::MANAGE_SERVER) {
            Ok(())
        } else {
            Err(Problem::with_message(
                ErrorCode::MissingPermission,
                "You need the Kick Members or Manage Server permission",
            ))
        }
    }

    /// Whether the caller may remove `target` from a server owned by `owner`: oneself (leaving),
    /// or anyone with `KICK_MEMBERS`; never the owner, since a server without its owner could
    /// never be managed again.
    pub fn may_remove(&self, target: Uuid, owner: Uuid) -> Result<Departure, Problem> {
        let departure = if target == self.user_id {
            Departure::Leave
        } else {
            self.require(Requirement::KickMembers)?;
            Departure::Kick
        };
        if target == owner {
            let message = match departure {
                Departure::Leave => "The server owner cannot leave their own server",
                Departure::Kick => "The server owner cannot be removed from their server",
            };
            return Err(Problem::with_message(ErrorCode::OwnerImmune, message));
        }
        Ok(departure)
    }

    /// Whether the caller may ban `target` from a server owned by `owner`: `BAN_MEMBERS`, and
    /// never the owner.
    pub fn may_ban(&self, target: Uuid, owner: Uuid) -> Result<(), Problem> {
        self.require(Requirement::BanMembers)?;
        if target == owner {
            return Err(Problem::with_message(
                ErrorCode::OwnerImmune,
                "The server owner cannot be banned",
            ));
        }
        Ok(())
    }

    /// Whether the caller may revoke or edit an invite created by `created_by`: `MANAGE_SERVER`
    /// covers every invite; without it, one's own invites need `CREATE_INVITES`.
    pub fn may_manage_invite(
        &self,
        created_by: Option<Uuid>,
        action: InviteAction,
    ) -> Result<(), Problem> {
        if self.has(Permissions::MANAGE_SERVER) {
            Ok(())
        } else if created_by == Some(self.user_id) {
            self.require(Requirement::CreateInvites)
        } else {
            Err(Problem::with_message(ErrorCode::MissingPermission, action.others_message()))
        }
    }
}

/// How a member leaves a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// On their own.
    Leave,
    /// Removed by a moderator.
    Kick,
}

/// Whether `actor` may revoke, by its code, an invite created by `created_by`, holding
/// `standing` in its server (`None` when not a member): its creator always may (taking one's own
/// link down is always allowed, even after leaving), a member needs `MANAGE_SERVER`. Anyone
/// else is told the invite is not found, exactly as for a code that does not exist: a
/// different answer would tell a stranger which guessed codes are real.
pub fn may_revoke_by_code(
    actor: Uuid,
    created_by: Option<Uuid>,
    standing: Option<&Standing>,
) -> Result<(), Problem> {
    if created_by == Some(actor) {
        return Ok(());
    }
    match standing {
        None => Err(Problem::of(ErrorCode::InviteNotFound)),
        Some(standing) if standing.has(Permissions::MANAGE_SERVER) => Ok(()),
        Some(_) => Err(Problem::with_message(
            ErrorCode::MissingPermission,
            InviteAction::Revoke.others_message(),
        )),
    }
}

/// What an endpoint needs from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Create and list invites.
    CreateInvites,
    /// Edit the server, pause invites, manage the vanity URL, list who joined with an invite.
    ManageServer,
    /// Set members' permissions, read the audit log.
    Administrator,
    /// Remove other members.
    KickMembers,
    /// Ban and unban, list bans.
    BanMembers,
    /// Create channels.
    ManageChannels,
    /// Change the server's features: only its owner.
    Owner,
}

impl Requirement {
    /// The permission the requirement checks; `None` for `Owner`, which no bit grants.
    pub const fn permission(self) -> Option<Permissions> {
        match self {
            Self::CreateInvites => Some(Permissions::CREATE_INVITES),
            Self::ManageServer => Some(Permissions::MANAGE_SERVER),
            Self::Administrator => Some(Permissions::ADMINISTRATOR),
            Self::KickMembers => Some(Permissions::KICK_MEMBERS),
            Self::BanMembers => Some(Permissions::BAN_MEMBERS),
            Self::ManageChannels => Some(Permissions::MANAGE_CHANNELS),
            Self::Owner => None,
        }
    }

    /// The 403 the caller gets when the requirement is not met.
    pub fn problem(self) -> Problem {
        let message = match self {
            Self::CreateInvites => "You need the Create Invites permission",
            Self::ManageServer => "You need the Manage Server permission",
            Self::Administrator => "You need the Administrator permission",
            Self::KickMembers => "You need the Kick Members permission",
            Self::BanMembers => "You need the Ban Members permission",
            Self::ManageChannels => "You need the Manage Channels permission",
            Self::Owner => return Problem::of(ErrorCode::OwnerOnly),
        };
        Problem::with_message(ErrorCode::MissingPermission, message)
    }
}

/// What is being done to someone else's invite, for the wording of the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteAction {
    /// `DELETE`.
    Revoke,
    /// `PATCH`.
    Edit,
}

impl InviteAction {
    const fn others_message(self) -> &'static str {
        match self {
            Self::Revoke => "You need the Manage Server permission to revoke this invite",
            Self::Edit => "You need the Manage Server permission to edit this invite",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{member, owner};

    #[test]
    fn seeing_invites_takes_create_invites_or_manage_server() {
        assert!(member(Permissions::CREATE_INVITES).may_see_invites().is_ok());
        assert!(member(Permissions::MANAGE_SERVER).may_see_invites().is_ok());
        let refused = member(Permissions::empty()).may_see_invites().unwrap_err();
        assert_eq!(refused.message, "You need the Create Invites permission");
    }

    #[test]
    fn nobody_removes_or_bans_the_owner() {
        let (me, them, the_owner) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(9));
        let plain = member(Permissions::empty());
        assert_eq!(plain.may_remove(me, the_owner), Ok(Departure::Leave));
        assert_eq!(
            plain.may_remove(them, the_owner).unwrap_err().code,
            ErrorCode::MissingPermission
        );
        let kicker = member(Permissions::KICK_MEMBERS);
        assert_eq!(kicker.may_remove(them, the_owner), Ok(Departure::Kick));
        let immune = kicker.may_remove(the_owner, the_owner).unwrap_err();
        assert_eq!(
            (immune.code, immune.message.as_ref()),
            (ErrorCode::OwnerImmune, "The server owner cannot be removed from their server")
        );
        let leaving_owner = Standing { user_id: the_owner, ..owner() };
        assert_eq!(
            leaving_owner.may_remove(the_owner, the_owner).unwrap_err().message,
            "The server owner cannot leave their own server"
        );
        // Without the permission, the permission is what the caller hears first.
        assert_eq!(
            plain.may_ban(the_owner, the_owner).unwrap_err().code,
            ErrorCode::MissingPermission
        );
        assert_eq!(
            member(Permissions::BAN_MEMBERS).may_ban(the_owner, the_owner).unwrap_err().code,
            ErrorCode::OwnerImmune
        );
        assert!(member(Permissions::BAN_MEMBERS).may_ban(them, the_owner).is_ok());
    }

    #[test]
    fn a_creator_revokes_their_own_code_even_as_a_stranger() {
        let (me, them) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(may_revoke_by_code(me, Some(me), None).is_ok());
        assert!(
            may_revoke_by_code(me, Some(them), Some(&member(Permissions::MANAGE_SERVER))).is_ok()
        );
        assert_eq!(
            may_revoke_by_code(me, Some(them), Some(&member(Permissions::CREATE_INVITES)))
                .unwrap_err()
                .message,
            "You need the Manage Server permission to revoke this invite"
        );
        // A stranger hears what a code that does not exist would answer.
        assert_eq!(
            may_revoke_by_code(me, Some(them), None),
            Err(Problem::of(ErrorCode::InviteNotFound))
        );
        assert_eq!(may_revoke_by_code(me, None, None), Err(Problem::of(ErrorCode::InviteNotFound)));
        assert_eq!(
            may_revoke_by_code(me, None, Some(&member(Permissions::CREATE_INVITES)))
                .unwrap_err()
                .code,
            ErrorCode::MissingPermission
        );
    }

    #[test]
    fn bit_values_follow_the_contract() {
        let expected = [
            (Permissions::VIEW_CHANNEL, 1 << 0),
            (Permissions::SEND_MESSAGES, 1 << 1),
            (Permissions::MANAGE_MESSAGES, 1 << 2),
            (Permissions::ATTACH_FILES, 1 << 3),
            (Permissions::ADD_REACTIONS, 1 << 4),
            (Permissions::CONNECT_VOICE, 1 << 5),
            (Permissions::SPEAK, 1 << 6),
            (Permissions::MUTE_MEMBERS, 1 << 7),
            (Permissions::KICK_MEMBERS, 1 << 8),
            (Permissions::BAN_MEMBERS, 1 << 9),
            (Permissions::MANAGE_CHANNELS, 1 << 10),
            (Permissions::MANAGE_ROLES, 1 << 11),
            (Permissions::MANAGE_SERVER, 1 << 12),
            (Permissions::ADMINISTRATOR, 1 << 13),
            (Permissions::CREATE_INVITES, 1 << 14),
        ];
        for (permission, bits) in expected {
            assert_eq!(permission.bits(), bits, "{permission:?}");
        }
        assert_eq!(Permissions::DEFAULT_MEMBER.bits(), 1 | 2 | 16 | 32 | 64);
        assert_eq!(Permissions::all().bits(), (1 << 15) - 1);
    }

    #[test]
    fn wire_form_is_an_integer_and_unknown_bits_are_refused() {
        let json = serde_json::to_string(&Permissions::CREATE_INVITES).unwrap();
        assert_eq!(json, "16384");
        let parsed: Permissions = serde_json::from_str("16385").unwrap();
        assert_eq!(parsed, Permissions::CREATE_INVITES | Permissions::VIEW_CHANNEL);
        for bad in ["32768", "-1", "1.5", "\"1\""] {
            assert!(serde_json::from_str::<Permissions>(bad).is_err(), "{bad}");
        }
        let problem = Permissions::parse_bits(1 << 20).unwrap_err();
        assert_eq!(problem.code, ErrorCode::ValidationError);
        assert_eq!(
            problem.message,
            "permissions must be a combination of the known permission bits (0 to 32767)"
        );
    }

    #[test]
    fn effective_is_default_or_member_bits() {
        let standing = member(Permissions::CREATE_INVITES);
        assert_eq!(standing.effective(), Permissions::DEFAULT_MEMBER | Permissions::CREATE_INVITES);
        assert!(standing.has(Permissions::CREATE_INVITES));
        assert!(!standing.has(Permissions::MANAGE_SERVER));
    }

    #[test]
    fn owner_and_administrator_have_everything() {
        let owner = Standing { is_owner: true, ..member(Permissions::empty()) };
        assert_eq!(owner.effective(), Permissions::all());
        let admin = member(Permissions::ADMINISTRATOR);
        assert_eq!(admin.effective(), Permissions::all());
        let admin_by_default = Standing {
            default_permissions: Permissions::ADMINISTRATOR,
            ..member(Permissions::empty())
        };
        assert_eq!(admin_by_default.effective(), Permissions::all());
    }

    #[test]
    fn each_requirement_has_its_message() {
        let nobody = member(Permissions::empty());
        let expected = [
            (
                Requirement::CreateInvites,
                "MISSING_PERMISSION",
                "You need the Create Invites permission",
            ),
            (
                Requirement::ManageServer,
                "MISSING_PERMISSION",
                "You need the Manage Server permission",
            ),
            (
                Requirement::Administrator,
                "MISSING_PERMISSION",
                "You need the Administrator permission",
            ),
            (
                Requirement::KickMembers,
                "MISSING_PERMISSION",
                "You need the Kick Members permission",
            ),
            (Requirement::BanMembers, "MISSING_PERMISSION", "You need the Ban Members permission"),
            (
                Requirement::ManageChannels,
                "MISSING_PERMISSION",
                "You need the Manage Channels permission",
            ),
            (Requirement::Owner, "OWNER_ONLY", "Only the server owner can do this"),
        ];
        for (requirement, code, message) in expected {
            let problem = nobody.require(requirement).unwrap_err();
            assert_eq!(problem.code.as_str(), code);
            assert_eq!(problem.message, message);
        }
    }

    #[test]
    fn requirements_pass_with_the_bit_and_only_the_owner_passes_owner() {
        for requirement in [
            Requirement::CreateInvites,
            Requirement::ManageServer,
            Requirement::KickMembers,
            Requirement::BanMembers,
            Requirement::ManageChannels,
        ] {
            let bit = requirement.permission().unwrap();
            assert_eq!(member(bit).require(requirement), Ok(()));
        }
        let admin = member(Permissions::ADMINISTRATOR);
        assert_eq!(admin.require(Requirement::Administrator), Ok(()));
        assert!(admin.require(Requirement::Owner).is_err());
        let owner = Standing { is_owner: true, ..member(Permissions::empty()) };
        assert_eq!(owner.require(Requirement::Owner), Ok(()));
    }

    #[test]
    fn own_invites_need_create_invites_others_need_manage_server() {
        let me = Uuid::from_u128(1);
        let someone = Some(Uuid::from_u128(2));
        let creator = member(Permissions::CREATE_INVITES);
        assert_eq!(creator.may_manage_invite(Some(me), InviteAction::Revoke), Ok(()));
        let refused = creator.may_manage_invite(someone, InviteAction::Revoke).unwrap_err();
        assert_eq!(refused.code, ErrorCode::MissingPermission);
        assert_eq!(refused.message, "You need the Manage Server permission to revoke this invite");
        let refused = creator.may_manage_invite(None, InviteAction::Edit).unwrap_err();
        assert_eq!(refused.message, "You need the Manage Server permission to edit this invite");

        let without_bit = member(Permissions::empty());
        let refused = without_bit.may_manage_invite(Some(me), InviteAction::Revoke).unwrap_err();
        assert_eq!(refused.message, "You need the Create Invites permission");

        let manager = member(Permissions::MANAGE_SERVER);
        assert_eq!(manager.may_manage_invite(someone, InviteAction::Revoke), Ok(()));
        assert_eq!(manager.may_manage_invite(Some(me), InviteAction::Revoke), Ok(()));
        assert_eq!(manager.may_manage_invite(None, InviteAction::Edit), Ok(()));
    }
}
