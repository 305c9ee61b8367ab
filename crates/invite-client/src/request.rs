//! Request bodies and list parameters. Fields left at `None` are left out of the body, so the
//! service applies its defaults.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use uuid::Uuid;

use crate::model::ServerFeature;
use crate::permissions::Permissions;

/// One field of an update, where leaving a value alone and clearing it are different things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// Left out of the body: the value stays as it is.
    #[default]
    Unchanged,
    /// Sent as `null`: no icon, unlimited uses.
    Clear,
    /// Sent as the new value.
    Set(T),
}

impl<T> Patch<T> {
    /// Whether the field is left out of the body.
    pub fn is_unchanged(&self) -> bool {
        matches!(self, Self::Unchanged)
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // Only reached when a field forgot `skip_serializing_if`; `null` would clear it.
            Self::Unchanged | Self::Clear => serializer.serialize_none(),
            Self::Set(value) => value.serialize(serializer),
        }
    }
}

/// The body of an invite creation (server- or channel-scoped). `CreateInvite::default()` makes
/// a permanent invite with unlimited uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateInvite {
    /// Joins allowed, 1..=1,000,000; `None` is unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<i64>,
    /// Lifetime in hours, 1..=720. Not together with `max_age`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_hours: Option<i64>,
    /// Lifetime in seconds, 0..=2,592,000 (0: never). Not together with `expires_in_hours`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// The channel the invite points at (a channel of the server). For a channel-scoped
    /// creation the path names it already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Uuid>,
    /// Whether joining makes a temporary member (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporary: Option<bool>,
    /// `Some(false)` returns an equal active invite of the caller's, if there is one, instead of
    /// creating another (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
}

/// The body of an invite edit: only what is set changes. A new lifetime counts from now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpdateInvite {
    /// A new use limit (not below the uses already made); `Clear` makes it unlimited.
    #[serde(skip_serializing_if = "Patch::is_unchanged")]
    pub max_uses: Patch<i64>,
    /// A new lifetime in hours, 1..=720. Not together with `max_age`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_hours: Option<i64>,
    /// A new lifetime in seconds; 0 removes the expiry. Not together with `expires_in_hours`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
}

/// The body of a server creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateServer {
    /// Its name, 1-100 characters.
    pub name: String,
    /// Its icon, an `http` or `https` URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    /// What every member may do; the service's default is [`Permissions::DEFAULT_MEMBER`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_permissions: Option<Permissions>,
}

impl CreateServer {
    /// A server with this name and the service's defaults.
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into(), icon_url: None, default_permissions: None }
    }
}

/// The body of a server edit: only what is set changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpdateServer {
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new icon, or `Clear` for none.
    #[serde(skip_serializing_if = "Patch::is_unchanged")]
    pub icon_url: Patch<String>,
    /// New default permissions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_permissions: Option<Permissions>,
    /// The new set of features (only the owner may change them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<ServerFeature>>,
}

/// Which of a server's invites to list: newest first, revoked ones left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListInvites {
    /// Only invites to this channel.
    pub channel_id: Option<Uuid>,
    /// Page size, 1-1000 (default 1000).
    pub limit: Option<u32>,
    /// Only invites older than this one (the last id of the previous page).
    pub before: Option<Uuid>,
}

/// A page of a list that runs newest first (channel invites, the audit log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageBefore {
    /// Page size (the audit log: 1-100, default 50; invites: 1-1000, default 1000).
    pub limit: Option<u32>,
    /// Only entries older than this one (the last id of the previous page).
    pub before: Option<Uuid>,
}

/// A page of a list ordered by user id (members).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageAfter {
    /// Page size, 1-1000 (default 100).
    pub limit: Option<u32>,
    /// Only users after this user id (the last one of the previous page).
    pub after: Option<Uuid>,
}

/// `PATCH /servers/{id}/members/{user_id}`.
#[derive(Debug, Serialize)]
pub(crate) struct UpdateMemberBody {
    pub(crate) permissions: Permissions,
}

/// `PUT /servers/{id}/bans/{user_id}`.
#[derive(Debug, Serialize)]
pub(crate) struct BanBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'a str>,
}

/// `POST /servers/{id}/channels`.
#[derive(Debug, Serialize)]
pub(crate) struct CreateChannelBody<'a> {
    pub(crate) name: &'a str,
}

/// `PUT /servers/{id}/invites-pause`.
#[derive(Debug, Serialize)]
pub(crate) struct PauseBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) until: Option<DateTime<Utc>>,
}

/// `PATCH /servers/{id}/vanity-url`: `code` is always sent, `null` releasing it.
#[derive(Debug, Serialize)]
pub(crate) struct VanityBody<'a> {
    pub(crate) code: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn left_out_null_and_set_are_three_bodies() {
        let body = |update: &UpdateInvite| serde_json::to_value(update).unwrap();
        assert_eq!(body(&UpdateInvite::default()), json!({}));
        let clear = UpdateInvite { max_uses: Patch::Clear, ..Default::default() };
        assert_eq!(body(&clear), json!({ "max_uses": null }));
        let set = UpdateInvite { max_uses: Patch::Set(5), max_age: Some(0), ..Default::default() };
        assert_eq!(body(&set), json!({ "max_uses": 5, "max_age": 0 }));
    }

    #[test]
    fn defaults_leave_every_field_to_the_service() {
        assert_eq!(serde_json::to_value(CreateInvite::default()).unwrap(), json!({}));
        assert_eq!(
            serde_json::to_value(CreateServer::named("Rust")).unwrap(),
            json!({"name": "Rust"})
        );
        let update = UpdateServer {
            icon_url: Patch::Clear,
            features: Some(vec![ServerFeature::VanityUrl]),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(update).unwrap(),
            json!({ "icon_url": null, "features": ["VANITY_URL"] })
        );
        assert_eq!(serde_json::to_value(VanityBody { code: None }).unwrap(), json!({"code": null}));
    }
}
