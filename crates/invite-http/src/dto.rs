//! The JSON shapes of responses. Field names follow the contract (and Together's names where the
//! two share a field); ids are strings, times RFC 3339 with `Z`.

use chrono::{DateTime, Utc};
use invite_core::permissions::Permissions;
use invite_core::redeem::InvitesPause;
use invite_store::models::{AuditEntry, Ban, Channel, Invite, Member, Server};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::preview_cache::CachedPreview;
use crate::state::AppState;

/// An invite.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteDto {
    /// Its id.
    pub id: Uuid,
    /// Its server.
    pub server_id: Uuid,
    /// The channel it points at.
    pub channel_id: Option<Uuid>,
    /// The code.
    pub code: Option<String>,
    /// `random` or `vanity`.
    #[schema(value_type = String, example = "random")]
    pub kind: &'static str,
    /// The link to share.
    pub url: Option<String>,
    /// Who created it.
    pub created_by: Option<Uuid>,
    /// Uses allowed (`null`: unlimited).
    pub max_uses: Option<i64>,
    /// Uses made.
    pub uses: i64,
    /// Lifetime in seconds (0: never expires).
    pub max_age: i64,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether it makes temporary members.
    pub temporary: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its version, also sent as the `ETag`.
    pub version: i64,
}

impl InviteDto {
    /// The invite as the API shows it.
    pub fn new(invite: &Invite, state: &AppState) -> Self {
        Self::with_base(invite, &state.public_url)
    }

    /// The invite, with its link on the public base URL `base`.
    pub fn with_base(invite: &Invite, base: &str) -> Self {
        Self {
            id: invite.id,
            server_id: invite.server_id,
            channel_id: invite.channel_id,
            code: invite.code.clone(),
            kind: invite.kind.as_str(),
            url: invite.code.as_deref().map(|code| crate::state::invite_url(base, code)),
            created_by: invite.created_by,
            max_uses: invite.max_uses,
            uses: invite.uses,
            max_age: invite.max_age,
            expires_at: invite.expires_at,
            temporary: invite.temporary,
            created_at: invite.created_at,
            version: invite.version,
        }
    }
}

/// A channel as a preview shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelRef {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
}

/// What anyone may see of an invite before accepting it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewDto {
    /// The code.
    pub code: String,
    /// The server.
    pub server_id: Uuid,
    /// Its name.
    pub server_name: String,
    /// Its icon.
    pub server_icon_url: Option<String>,
    /// Its member count.
    pub member_count: i64,
    /// When the invite expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// The channel the invite points at.
    pub channel: Option<ChannelRef>,
    /// Who created the invite (`null` for a vanity URL).
    pub inviter_id: Option<Uuid>,
    /// Whether joining makes a temporary member.
    pub temporary: bool,
    /// Whether the server's invites are paused right now.
    pub invites_paused: bool,
    /// With `?with_counts=true`: the member count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_member_count: Option<i64>,
    /// With `?with_counts=true`: members connected right now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_presence_count: Option<i64>,
}

impl PreviewDto {
    /// The preview of the invite with `code` at `now`, showing `member_count` members.
    pub fn new(code: &str, preview: &CachedPreview, member_count: i64, now: DateTime<Utc>) -> Self {
        Self {
            code: code.to_owned(),
            server_id: preview.server_id,
            server_name: preview.server_name.to_string(),
            server_icon_url: preview.server_icon_url.as_deref().map(str::to_owned),
            member_count,
            expires_at: preview.expires_at(),
            channel: preview
                .channel
                .as_ref()
                .map(|(id, name)| ChannelRef { id: *id, name: name.to_string() }),
            inviter_id: preview.inviter_id,
            temporary: preview.temporary,
            invites_paused: preview.invites_paused.is_some_and(|pause| pause.is_active(now)),
            approximate_member_count: None,
            approximate_presence_count: None,
        }
    }
}

/// A server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerDto {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its icon.
    pub icon_url: Option<String>,
    /// Its owner.
    pub owner_id: Uuid,
    /// What every member may do (permission bits).
    #[schema(value_type = i64)]
    pub default_permissions: Permissions,
    /// Its features (`VANITY_URL`).
    #[schema(value_type = Vec<String>)]
    pub features: Vec<&'static str>,
    /// Its vanity code.
    pub vanity_code: Option<String>,
    /// Until when invites are paused: an RFC 3339 time, `"indefinitely"`, or `null`.
    #[schema(value_type = Option<String>)]
    pub invites_paused_until: Option<InvitesPause>,
    /// Its member count.
    pub member_count: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl ServerDto {
    /// The server at `now` (a pause that has ended shows as none).
    pub fn new(server: Server, now: DateTime<Utc>) -> Self {
        Self {
            id: server.id,
            name: server.name,
            icon_url: server.icon_url,
            owner_id: server.owner_id,
            default_permissions: server.default_permissions,
            features: server.features.iter().map(|feature| feature.as_str()).collect(),
            vanity_code: server.vanity_code,
            invites_paused_until: server.invites_paused.filter(|pause| pause.is_active(now)),
            member_count: server.member_count,
            created_at: server.created_at,
            updated_at: server.updated_at,
        }
    }
}

/// How a member joined.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinedVia {
    /// `owner`, `invite` or `vanity`.
    #[schema(value_type = String, example = "invite")]
    pub source: &'static str,
    /// The invite.
    pub invite_id: Option<Uuid>,
    /// Its code at the time.
    pub invite_code: Option<String>,
    /// Who created it.
    pub inviter_id: Option<Uuid>,
}

/// A member.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberDto {
    /// The server.
    pub server_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// The user's name, when a token carried one.
    pub username: Option<String>,
    /// Extra permissions on top of the server's defaults (bits).
    #[schema(value_type = i64)]
    pub permissions: Permissions,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// Whether the membership is temporary.
    pub temporary: bool,
    /// How they joined.
    pub joined_via: JoinedVia,
}

impl From<Member> for MemberDto {
    fn from(member: Member) -> Self {
        Self {
            server_id: member.server_id,
            user_id: member.user_id,
            username: member.username,
            permissions: member.permissions,
            joined_at: member.joined_at,
            temporary: member.temporary,
            joined_via: JoinedVia {
                source: member.source.as_str(),
                invite_id: member.joined_via_invite_id,
                invite_code: member.joined_via_code,
                inviter_id: member.inviter_id,
            },
        }
    }
}

/// A ban.
#[derive(Debug, Serialize, ToSchema)]
pub struct BanDto {
    /// The server.
    pub server_id: Uuid,
    /// The banned user.
    pub user_id: Uuid,
    /// Why.
    pub reason: Option<String>,
    /// Who banned them.
    pub banned_by: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<Ban> for BanDto {
    fn from(ban: Ban) -> Self {
        Self {
            server_id: ban.server_id,
            user_id: ban.user_id,
            reason: ban.reason,
            banned_by: ban.banned_by,
            created_at: ban.created_at,
        }
    }
}

/// A channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelDto {
    /// Its id.
    pub id: Uuid,
    /// Its server.
    pub server_id: Uuid,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<Channel> for ChannelDto {
    fn from(channel: Channel) -> Self {
        Self {
            id: channel.id,
            server_id: channel.server_id,
            name: channel.name,
            created_at: channel.created_at,
        }
    }
}

/// An audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryDto {
    /// Its id.
    pub id: Uuid,
    /// The server.
    pub server_id: Uuid,
    /// Who did it.
    pub actor_id: Uuid,
    /// What was done (`InviteCreate`, `MemberJoin`, ...).
    #[schema(value_type = String, example = "InviteCreate")]
    pub action: invite_core::audit::AuditAction,
    /// What `target_id` names: `invite`, `user` or `server`.
    #[schema(value_type = String, example = "invite")]
    pub target_type: invite_core::audit::TargetType,
    /// What it was done to.
    pub target_id: Option<Uuid>,
    /// Action-specific details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditEntryDto {
    fn from(entry: AuditEntry) -> Self {
        Self {
            id: entry.id,
            server_id: entry.server_id,
            actor_id: entry.actor_id,
            action: entry.action,
            target_type: entry.target_type,
            target_id: entry.target_id,
            details: entry.details,
            created_at: entry.created_at,
        }
    }
}

/// The answer to a successful accept (Together's shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinedDto {
    /// Always `"Joined server"`.
    #[schema(value_type = String, example = "Joined server")]
    pub message: &'static str,
    /// The server joined.
    pub server_id: Uuid,
}

/// The vanity URL of a server.
#[derive(Debug, Serialize, ToSchema)]
pub struct VanityDto {
    /// The code, `null` when none is set.
    pub code: Option<String>,
    /// Joins through it.
    pub uses: i64,
}
