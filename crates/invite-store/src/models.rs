//! What the store hands out: the rows of the data model, with stored names parsed into the
//! core's types. The `*Row` structs mirror the tables one to one and stay private.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use invite_core::audit::{AuditAction, TargetType};
use invite_core::invite::InviteKind;
use invite_core::permissions::Permissions;
use invite_core::redeem::{InviteStatus, InvitesPause};
use invite_core::server::ServerFeature;
use uuid::Uuid;

use crate::error::StoreError;
use crate::schema::{audit_entries, bans, channels, invites, join_requests, members, servers};
use crate::sql_types::{Id, Json, Ts};

/// A stored value no longer parses: the database holds something this version never writes.
pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database(diesel::result::Error::DeserializationError(
        format!("unexpected {what} {value:?} in the database").into(),
    ))
}

/// A community server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its id.
    pub id: Uuid,
    /// 1-100 characters.
    pub name: String,
    /// An http(s) URL.
    pub icon_url: Option<String>,
    /// The owner, who has every permission and cannot be removed.
    pub owner_id: Uuid,
    /// What every member may do.
    pub default_permissions: Permissions,
    /// Its features, sorted.
    pub features: Vec<ServerFeature>,
    /// The code of its active vanity invite.
    pub vanity_code: Option<String>,
    /// Whether, and until when, its invites are paused.
    pub invites_paused: Option<InvitesPause>,
    /// How many members it has, maintained with every join and removal.
    pub member_count: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = servers)]
pub(crate) struct ServerRow {
    pub(crate) id: Id,
    pub(crate) name: String,
    pub(crate) icon_url: Option<String>,
    pub(crate) owner_id: Id,
    pub(crate) default_permissions: i64,
    pub(crate) features: Json,
    pub(crate) invites_paused_until: Option<Ts>,
    pub(crate) invites_paused_indefinitely: bool,
    pub(crate) member_count: i64,
    pub(crate) created_at: Ts,
    pub(crate) updated_at: Ts,
}

impl ServerRow {
    pub(crate) fn pause(&self) -> Option<InvitesPause> {
        InvitesPause::from_columns(
            self.invites_paused_until.map(Into::into),
            self.invites_paused_indefinitely,
        )
    }

    pub(crate) fn into_server(self, vanity_code: Option<String>) -> Result<Server, StoreError> {
        let default_permissions = Permissions::from_bits(self.default_permissions)
            .ok_or_else(|| corrupt("permissions", &self.default_permissions.to_string()))?;
        let invites_paused = self.pause();
        // Names a later version may add are skipped rather than failing every read.
        let mut features: Vec<ServerFeature> = self
            .features
            .0
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|name| ServerFeature::parse(name.as_str()?).ok())
            .collect();
        features.sort_unstable();
        Ok(Server {
            id: self.id.0,
            name: self.name,
            icon_url: self.icon_url,
            owner_id: self.owner_id.0,
            default_permissions,
            features,
            vanity_code,
            invites_paused,
            member_count: self.member_count,
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

/// Features as stored: a JSON array of names.
pub(crate) fn features_json(features: &[ServerFeature]) -> Json {
    Json(features.iter().map(|feature| feature.as_str()).collect())
}

/// A channel of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// Its id.
    pub id: Uuid,
    /// Its server.
    pub server_id: Uuid,
    /// 1-100 characters.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = channels)]
pub(crate) struct ChannelRow {
    pub(crate) id: Id,
    pub(crate) server_id: Id,
    pub(crate) name: String,
    pub(crate) created_at: Ts,
}

impl From<ChannelRow> for Channel {
    fn from(row: ChannelRow) -> Self {
        Self {
            id: row.id.0,
            server_id: row.server_id.0,
            name: row.name,
            created_at: row.created_at.0,
        }
    }
}

invite_core::invite_struct! {
    /// An invite, random or vanity, active or not.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Invite {
        kind: InviteKind,
        /// When it last changed.
        pub updated_at: DateTime<Utc>,
        /// When it was revoked.
        pub revoked_at: Option<DateTime<Utc>>,
        /// What a join through it grants, as far as `granted_by` still holds it then
        /// (`invite_core::grant::granted_on_join`).
        pub grant_permissions: Permissions,
        /// Who set `grant_permissions` last: the creator, or the editor of a PATCH that named
        /// them (`None` for an invite that never granted anything).
        pub granted_by: Option<Uuid>,
        /// The only users who may accept it (`None`: anyone). Shown to those who may list
        /// invites, never in a preview.
        pub allowed_user_ids: Option<Vec<Uuid>>,
        /// Whether accepting it files a join request instead of joining.
        pub requires_approval: bool,
    }
}

impl Invite {
    /// What the core's decisions look at.
    pub fn status(&self) -> InviteStatus {
        InviteStatus {
            revoked: self.revoked_at.is_some(),
            expires_at: self.expires_at,
            max_uses: self.max_uses,
            uses: self.uses,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = invites)]
pub(crate) struct InviteRow {
    pub(crate) id: Id,
    pub(crate) server_id: Id,
    pub(crate) channel_id: Option<Id>,
    pub(crate) code: Option<String>,
    pub(crate) kind: String,
    pub(crate) created_by: Option<Id>,
    pub(crate) max_uses: Option<i64>,
    pub(crate) uses: i64,
    pub(crate) max_age: i64,
    pub(crate) expires_at: Option<Ts>,
    pub(crate) temporary: bool,
    pub(crate) created_at: Ts,
    pub(crate) updated_at: Ts,
    pub(crate) version: i64,
    pub(crate) revoked_at: Option<Ts>,
    pub(crate) grant_permissions: i64,
    pub(crate) granted_by: Option<Id>,
    pub(crate) allowed_user_ids: Option<Json>,
    pub(crate) requires_approval: bool,
}

/// `allowed_user_ids` as stored: a JSON array of ids as text (see the migration
/// `invite_grants_allowed_users`).
pub(crate) fn allowed_users_json(users: Option<&[Uuid]>) -> Option<Json> {
    users.map(|users| {
        Json(users.iter().map(|id| serde_json::Value::String(id.to_string())).collect())
    })
}

/// An invite as `INVITE_CREATE` and `INVITE_UPDATE` carry it: with what it grants, without
/// whom it is for, since `INVITE_UPDATE` goes to every member and the list is only for those
/// who may list invites.
impl From<&Invite> for invite_core::event::InviteData {
    fn from(invite: &Invite) -> Self {
        invite_core::invite_from!(invite.clone() => Self {
            grant_permissions: invite.grant_permissions,
            requires_approval: invite.requires_approval,
        })
    }
}

impl TryFrom<InviteRow> for Invite {
    type Error = StoreError;

    fn try_from(row: InviteRow) -> Result<Self, StoreError> {
        let kind = InviteKind::parse(&row.kind).ok_or_else(|| corrupt("invite kind", &row.kind))?;
        Ok(Self {
            id: row.id.0,
            server_id: row.server_id.0,
            channel_id: row.channel_id.map(Into::into),
            code: row.code,
            kind,
            created_by: row.created_by.map(Into::into),
            max_uses: row.max_uses,
            uses: row.uses,
            max_age: row.max_age,
            expires_at: row.expires_at.map(Into::into),
            temporary: row.temporary,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
            version: row.version,
            revoked_at: row.revoked_at.map(Into::into),
            grant_permissions: Permissions::from_bits(row.grant_permissions)
                .ok_or_else(|| corrupt("permissions", &row.grant_permissions.to_string()))?,
            granted_by: row.granted_by.map(Into::into),
            allowed_user_ids: row.allowed_user_ids.map(allowed_users).transpose()?,
            requires_approval: row.requires_approval,
        })
    }
}

/// The stored `allowed_user_ids` array read back.
fn allowed_users(json: Json) -> Result<Vec<Uuid>, StoreError> {
    let text = json.0.to_string();
    serde_json::from_value(json.0).map_err(|_| corrupt("allowed_user_ids", &text))
}

pub use invite_core::server::JoinSource;

pub use invite_core::approval::{JoinRequest as StoredJoinRequest, JoinRequestStatus};

/// A join request's row (see the migration `join_requests`).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = join_requests)]
pub(crate) struct JoinRequestRow {
    pub(crate) id: Id,
    pub(crate) server_id: Id,
    pub(crate) invite_id: Id,
    pub(crate) user_id: Id,
    pub(crate) status: String,
    pub(crate) created_at: Ts,
    pub(crate) decided_at: Option<Ts>,
    pub(crate) decided_by: Option<Id>,
}

impl TryFrom<JoinRequestRow> for StoredJoinRequest {
    type Error = StoreError;

    fn try_from(row: JoinRequestRow) -> Result<Self, StoreError> {
        let status = JoinRequestStatus::parse(&row.status)
            .ok_or_else(|| corrupt("join request status", &row.status))?;
        Ok(Self {
            id: row.id.0,
            server_id: row.server_id.0,
            invite_id: row.invite_id.0,
            user_id: row.user_id.0,
            status,
            created_at: row.created_at.0,
            decided_at: row.decided_at.map(Into::into),
            decided_by: row.decided_by.map(Into::into),
        })
    }
}

/// A member of a server, with how they joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The server.
    pub server_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// The user's name, if a token ever carried one.
    pub username: Option<String>,
    /// Extra permissions on top of the server's defaults.
    pub permissions: Permissions,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// Whether the membership ends with their last gateway connection.
    pub temporary: bool,
    /// How they joined.
    pub source: JoinSource,
    /// The invite they joined with.
    pub joined_via_invite_id: Option<Uuid>,
    /// That invite's code at the time.
    pub joined_via_code: Option<String>,
    /// Who created that invite.
    pub inviter_id: Option<Uuid>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = members)]
pub(crate) struct MemberRow {
    pub(crate) server_id: Id,
    pub(crate) user_id: Id,
    pub(crate) permissions: i64,
    pub(crate) joined_at: Ts,
    pub(crate) temporary: bool,
    pub(crate) source: String,
    pub(crate) joined_via_invite_id: Option<Id>,
    pub(crate) joined_via_code: Option<String>,
    pub(crate) inviter_id: Option<Id>,
}

impl MemberRow {
    pub(crate) fn into_member(self, username: Option<String>) -> Result<Member, StoreError> {
        let source =
            JoinSource::parse(&self.source).ok_or_else(|| corrupt("join source", &self.source))?;
        let permissions = Permissions::from_bits(self.permissions)
            .ok_or_else(|| corrupt("permissions", &self.permissions.to_string()))?;
        Ok(Member {
            server_id: self.server_id.0,
            user_id: self.user_id.0,
            username,
            permissions,
            joined_at: self.joined_at.0,
            temporary: self.temporary,
            source,
            joined_via_invite_id: self.joined_via_invite_id.map(Into::into),
            joined_via_code: self.joined_via_code,
            inviter_id: self.inviter_id.map(Into::into),
        })
    }
}

pub use invite_core::server::Ban;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = bans)]
pub(crate) struct BanRow {
    pub(crate) server_id: Id,
    pub(crate) user_id: Id,
    pub(crate) reason: Option<String>,
    pub(crate) banned_by: Id,
    pub(crate) created_at: Ts,
}

impl From<BanRow> for Ban {
    fn from(row: BanRow) -> Self {
        Self {
            server_id: row.server_id.0,
            user_id: row.user_id.0,
            reason: row.reason,
            banned_by: row.banned_by.0,
            created_at: row.created_at.0,
        }
    }
}

/// An entry of a server's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id.
    pub id: Uuid,
    /// The server.
    pub server_id: Uuid,
    /// Who did it; `None` for what the service did by itself (a raid's pause).
    pub actor_id: Option<Uuid>,
    /// What was done.
    pub action: AuditAction,
    /// What `target_id` names.
    pub target_type: TargetType,
    /// What it was done to.
    pub target_id: Option<Uuid>,
    /// Action-specific details.
    pub details: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_entries)]
pub(crate) struct AuditRow {
    pub(crate) id: Id,
    pub(crate) server_id: Id,
    pub(crate) actor_id: Option<Id>,
    pub(crate) action: String,
    pub(crate) target_type: String,
    pub(crate) target_id: Option<Id>,
    pub(crate) details: Json,
    pub(crate) created_at: Ts,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        let action =
            AuditAction::parse(&row.action).ok_or_else(|| corrupt("audit action", &row.action))?;
        Ok(Self {
            id: row.id.0,
            server_id: row.server_id.0,
            actor_id: row.actor_id.map(Into::into),
            action,
            target_type: action.target_type(),
            target_id: row.target_id.map(Into::into),
            details: row.details.0,
            created_at: row.created_at.0,
        })
    }
}

/// What a preview shows: the invite and the public face of its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The invite.
    pub invite: Invite,
    /// The server's name.
    pub server_name: String,
    /// The server's icon.
    pub server_icon_url: Option<String>,
    /// The server's member count.
    pub member_count: i64,
    /// The server's pause.
    pub invites_paused: Option<InvitesPause>,
    /// The channel the invite points at.
    pub channel: Option<(Uuid, String)>,
    /// The username of the invite's creator, when known.
    pub inviter_name: Option<String>,
    /// The server's members with a live gateway session when read.
    pub presence_count: i64,
}
