//! Servers, their members, bans, channels and audit log.

use chrono::{DateTime, Utc};
use invite_core::permissions::Permissions;
use invite_core::redeem::InvitesPause;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

string_enum! {
    /// A feature the platform grants a server.
    pub enum ServerFeature: invite_core::server::ServerFeature {
        /// The server may set a vanity code.
        VanityUrl => "VANITY_URL",
    }
}

string_enum! {
    /// How a member joined.
    pub enum JoinSource {
        /// They created the server.
        Owner => "owner",
        /// With a random invite.
        Invite => "invite",
        /// With the vanity URL.
        Vanity => "vanity",
    }
}

string_enum! {
    /// An action recorded in a server's audit log.
    pub enum AuditAction: invite_core::audit::AuditAction {
        /// An invite was created (details: `code`, `max_uses`).
        InviteCreate => "InviteCreate",
        /// An invite's limits were edited.
        InviteUpdate => "InviteUpdate",
        /// An invite was revoked.
        InviteRevoke => "InviteRevoke",
        /// The vanity code was set, changed or released.
        VanityUpdate => "VanityUpdate",
        /// Invites were paused.
        InvitesPause => "InvitesPause",
        /// Invites were resumed.
        InvitesResume => "InvitesResume",
        /// Someone joined with an invite (details: `code`).
        MemberJoin => "MemberJoin",
        /// A member was removed by a moderator.
        MemberKick => "MemberKick",
        /// A user was banned.
        MemberBan => "MemberBan",
        /// A ban was lifted.
        MemberUnban => "MemberUnban",
        /// A temporary member's last gateway session had been gone for the grace period.
        MemberRemoveTemporary => "MemberRemoveTemporary",
        /// A join request was approved (details: `request_id`, `invite_id`, `code`).
        JoinRequestApprove => "JoinRequestApprove",
        /// A join request was denied (details: `request_id`, `invite_id`, and `reason: "ban"`
        /// when a ban denied it).
        JoinRequestDeny => "JoinRequestDeny",
    }
}

string_enum! {
    /// What an audit entry's `target_id` names.
    pub enum TargetType: invite_core::audit::TargetType {
        /// An invite id.
        Invite => "invite",
        /// A user id.
        User => "user",
        /// The server itself.
        Server => "server",
    }
}

/// Permission bits as a response carries them: bits this version does not name are kept, so a
/// newer service's permissions survive a round trip unchanged. (A request's are refused instead,
/// by [`Permissions`]' own `Deserialize`: the service must not store bits it cannot check.)
pub(crate) fn any_permissions<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Permissions, D::Error> {
    i64::deserialize(deserializer).map(Permissions::from_bits_retain)
}

/// A server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Server {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its icon.
    pub icon_url: Option<String>,
    /// Its owner.
    pub owner_id: Uuid,
    /// What every member may do (permission bits).
    #[serde(deserialize_with = "any_permissions")]
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub default_permissions: Permissions,
    /// Its features (`VANITY_URL`).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub features: Vec<ServerFeature>,
    /// Its vanity code.
    pub vanity_code: Option<String>,
    /// Until when invites are paused: an RFC 3339 time, `"indefinitely"`, or `null`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub invites_paused_until: Option<InvitesPause>,
    /// Its member count.
    pub member_count: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// How a member joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinedVia {
    /// `owner`, `invite` or `vanity`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "invite"))]
    pub source: JoinSource,
    /// The invite.
    pub invite_id: Option<Uuid>,
    /// Its code at the time.
    pub invite_code: Option<String>,
    /// Who created it.
    pub inviter_id: Option<Uuid>,
}

/// A member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The server.
    pub server_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// The user's name, when a token carried one.
    pub username: Option<String>,
    /// Extra permissions on top of the server's defaults (bits).
    #[serde(deserialize_with = "any_permissions")]
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub permissions: Permissions,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// Whether the membership is temporary.
    pub temporary: bool,
    /// How they joined.
    pub joined_via: JoinedVia,
}

/// A channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Channel {
    /// Its id.
    pub id: Uuid,
    /// Its server.
    pub server_id: Uuid,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A server's raid protection (`GET`/`PUT /servers/{id}/raid-protection`): `{"enabled": false}`
/// when it is off, else `enabled: true` with its three settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RaidProtection {
    /// Whether joins are counted and a raid pauses the invites.
    pub enabled: bool,
    /// How many joins within the window pause the invites (2-10000); absent when off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joins: Option<i64>,
    /// The window, in seconds (10-86400); absent when off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<i64>,
    /// How long the invites pause, in seconds (60-604800); absent when off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_seconds: Option<i64>,
}

/// An audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Its id.
    pub id: Uuid,
    /// The server.
    pub server_id: Uuid,
    /// Who did it; `null` for what the service did by itself (a raid's pause).
    pub actor_id: Option<Uuid>,
    /// What was done (`InviteCreate`, `MemberJoin`, ...).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "InviteCreate"))]
    pub action: AuditAction,
    /// What `target_id` names: `invite`, `user` or `server`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "invite"))]
    pub target_type: TargetType,
    /// What it was done to.
    pub target_id: Option<Uuid>,
    /// Action-specific details.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use invite_core::audit;

    use super::*;

    #[test]
    fn every_name_the_service_has_is_known() {
        for action in audit::AuditAction::ALL {
            let wire = AuditAction::from(action);
            assert!(wire.is_known() && wire.as_str() == action.as_str(), "{wire}");
            let target = TargetType::from(action.target_type());
            assert!(target.is_known() && target.as_str() == action.target_type().as_str());
        }
        for feature in invite_core::server::ServerFeature::ALL {
            assert!(ServerFeature::from(feature).is_known(), "{}", feature.as_str());
        }
    }

    #[test]
    fn unknown_names_and_fields_do_not_break_decoding() {
        let json = r#"{"source": "gateway", "invite_id": null, "invite_code": null,
                       "inviter_id": null, "new_field": 1}"#;
        let via: JoinedVia = serde_json::from_str(json).unwrap();
        assert_eq!(via.source, JoinSource::Other("gateway".to_owned()));
        assert_eq!(serde_json::to_value(&via.source).unwrap(), "gateway");
    }

    #[test]
    fn unknown_permission_bits_survive_a_response_but_not_a_request() {
        let bits = 1_i64 << 40 | 1;
        let json = serde_json::json!({
            "server_id": Uuid::nil(), "user_id": Uuid::nil(), "username": null,
            "permissions": bits, "joined_at": "2030-01-02T03:04:05Z", "temporary": false,
            "joined_via": {"source": "owner", "invite_id": null, "invite_code": null,
                           "inviter_id": null},
        });
        let member: Member = serde_json::from_value(json.clone()).unwrap();
        assert!(member.permissions.contains(Permissions::VIEW_CHANNEL));
        assert_eq!(serde_json::to_value(&member).unwrap(), json);
        let request = serde_json::json!({ "permissions": bits });
        assert!(serde_json::from_value::<crate::UpdateMemberRequest>(request).is_err());
    }
}
