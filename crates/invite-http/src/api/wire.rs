//! The store's rows as the API shows them: the one place a row becomes one of [`invite_api`]'s
//! response bodies (what a client may see of it, at the time of asking).

use chrono::{DateTime, Utc};
use invite_store::models::{AuditEntry, Channel, Invite, Member, Server};
use invite_store::repo::MaintenanceState;

use invite_runtime::preview_cache::CachedPreview;

/// The public base URL invite links are built on.
#[derive(Debug, Clone)]
pub(crate) struct Links {
    public_url: String,
}

impl Links {
    /// Links on `public_url`, given without a trailing slash.
    pub(crate) fn new(public_url: String) -> Self {
        Self { public_url }
    }

    /// The public base URL, without a trailing slash.
    pub(crate) fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The link people open to preview and accept an invite.
    pub(crate) fn invite_url(&self, code: &str) -> String {
        invite_url(&self.public_url, code)
    }
}

/// The link to an invite on the public base URL `base`.
pub(crate) fn invite_url(base: &str, code: &str) -> String {
    format!("{base}/invite/{code}")
}

/// The invite, with its link on the public base URL `base`.
pub(crate) fn invite(invite: &Invite, base: &str) -> invite_api::Invite {
    let url = invite.code.as_deref().map(|code| invite_url(base, code));
    invite_api::Invite::new(invite.into(), url, invite.allowed_user_ids.clone())
}

/// The preview of the invite with `code` at `now`, showing `member_count` members.
pub(crate) fn preview(
    code: &str,
    preview: &CachedPreview,
    member_count: i64,
    now: DateTime<Utc>,
) -> invite_api::Preview {
    invite_api::Preview {
        code: code.to_owned(),
        server_id: preview.server_id,
        server_name: preview.server_name.to_string(),
        server_icon_url: preview.server_icon_url.as_deref().map(str::to_owned),
        member_count,
        expires_at: preview.expires_at(),
        channel: preview
            .channel
            .as_ref()
            .map(|(id, name)| invite_api::ChannelRef { id: *id, name: name.to_string() }),
        inviter_id: preview.inviter_id,
        temporary: preview.temporary,
        invites_paused: preview.invites_paused.is_some_and(|pause| pause.is_active(now)),
        requires_approval: preview.requires_approval,
        approximate_member_count: None,
        approximate_presence_count: None,
        rate_limit: None,
    }
}

/// The server at `now` (a pause that has ended shows as none).
pub(crate) fn server(server: Server, now: DateTime<Utc>) -> invite_api::Server {
    invite_api::Server {
        id: server.id,
        name: server.name,
        icon_url: server.icon_url,
        owner_id: server.owner_id,
        default_permissions: server.default_permissions,
        features: server.features.into_iter().map(Into::into).collect(),
        vanity_code: server.vanity_code,
        invites_paused_until: server.invites_paused.filter(|pause| pause.is_active(now)),
        member_count: server.member_count,
        created_at: server.created_at,
        updated_at: server.updated_at,
    }
}

/// A member, with how they joined.
pub(crate) fn member(member: Member) -> invite_api::Member {
    invite_api::Member {
        server_id: member.server_id,
        user_id: member.user_id,
        username: member.username,
        permissions: member.permissions,
        joined_at: member.joined_at,
        temporary: member.temporary,
        joined_via: invite_api::JoinedVia {
            source: member.source.as_str().into(),
            invite_id: member.joined_via_invite_id,
            invite_code: member.joined_via_code,
            inviter_id: member.inviter_id,
        },
    }
}

/// A channel.
pub(crate) fn channel(channel: Channel) -> invite_api::Channel {
    invite_api::Channel {
        id: channel.id,
        server_id: channel.server_id,
        name: channel.name,
        created_at: channel.created_at,
    }
}

/// What an undo did, as `{"revoked": true, "removed", "kept"}`.
pub(crate) fn raid_protection(
    protection: Option<invite_core::raid::RaidProtection>,
) -> invite_api::RaidProtection {
    invite_api::RaidProtection {
        enabled: protection.is_some(),
        joins: protection.map(invite_core::raid::RaidProtection::joins),
        window_seconds: protection.map(invite_core::raid::RaidProtection::window_seconds),
        pause_seconds: protection.map(invite_core::raid::RaidProtection::pause_seconds),
    }
}

pub(crate) fn invite_undone(undone: &invite_ops::invites::Undone) -> invite_api::InviteUndone {
    invite_api::InviteUndone { revoked: true, removed: undone.removed, kept: undone.kept }
}

/// A server's vanity URL: its vanity invite's code and uses, or none.
pub(crate) fn vanity_url(invite: Option<Invite>) -> invite_api::VanityUrl {
    match invite {
        Some(invite) => invite_api::VanityUrl { code: invite.code, uses: invite.uses },
        None => invite_api::VanityUrl { code: None, uses: 0 },
    }
}

/// An audit log entry.
pub(crate) fn audit_entry(entry: AuditEntry) -> invite_api::AuditEntry {
    invite_api::AuditEntry {
        id: entry.id,
        server_id: entry.server_id,
        actor_id: entry.actor_id,
        action: entry.action.into(),
        target_type: entry.target_type.into(),
        target_id: entry.target_id,
        details: entry.details,
        created_at: entry.created_at,
    }
}

/// The maintenance switch at `now` (`None`: it was never set).
pub(crate) fn maintenance(
    state: Option<&MaintenanceState>,
    now: DateTime<Utc>,
) -> invite_api::Maintenance {
    invite_api::Maintenance {
        active: state.is_some_and(|state| state.is_active(now)),
        enabled: state.is_some_and(|state| state.enabled),
        message: state.and_then(|state| state.message.clone()),
        until: state.and_then(|state| state.ends_at),
        since: state.map(|state| state.since),
    }
}
