//! Invites, their previews, joins and the vanity URL.
//!
//! Field names follow the contract (and Together's names where the two share a field); ids are
//! strings, times RFC 3339 with `Z`.

use chrono::{DateTime, Utc};
use invite_core::event::InviteData;
use invite_core::permissions::Permissions;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::headers::RateLimit;

pub use invite_core::approval::{JoinRequest, JoinRequestStatus};

string_enum! {
    /// Whether an invite has a random code or is the server's vanity URL.
    pub enum InviteKind: invite_core::invite::InviteKind {
        /// A random 8-character code.
        Random => "random",
        /// The server's vanity code: never expires, unlimited uses, not in invite lists.
        Vanity => "vanity",
    }
}

invite_core::invite_struct! {
    /// An invite.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Invite {
        #[cfg_attr(feature = "openapi", schema(value_type = String, example = "random"))]
        kind: InviteKind,
        /// The link to share.
        pub url: Option<String>,
        /// Permission bits whoever joins through it gets as their member permissions (as far
        /// as whoever set them still holds them at the join).
        #[serde(default, deserialize_with = "crate::servers::any_permissions")]
        #[cfg_attr(feature = "openapi", schema(value_type = i64))]
        pub grant_permissions: Permissions,
        /// The only users who may accept it; `null`, anyone. Shown only to those who may list
        /// invites (never in a preview or on the invite page).
        #[serde(default)]
        pub allowed_user_ids: Option<Vec<Uuid>>,
        /// Whether accepting it files a join request for a moderator to decide, instead of
        /// joining.
        #[serde(default)]
        pub requires_approval: bool,
    }
}

impl Invite {
    /// The invite `invite` as the API shows it, with its link `url` and whom it is for,
    /// `allowed_user_ids` (which the event payload leaves out).
    pub fn new(
        invite: InviteData,
        url: Option<String>,
        allowed_user_ids: Option<Vec<Uuid>>,
    ) -> Self {
        let (grant_permissions, requires_approval) =
            (invite.grant_permissions, invite.requires_approval);
        invite_core::invite_from!(invite => Self {
            url,
            grant_permissions,
            allowed_user_ids,
            requires_approval,
        })
    }
}

/// A channel as a preview shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelRef {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
}

/// What anyone may see of an invite before accepting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preview {
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
    /// Whether accepting files a join request for a moderator to decide, instead of joining
    /// at once (a person deciding to click wants to know they will wait). Read as false from a
    /// service that predates join approval.
    #[serde(default)]
    pub requires_approval: bool,
    /// With `?with_counts=true`: the member count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_member_count: Option<i64>,
    /// With `?with_counts=true`: members connected right now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_presence_count: Option<i64>,
    /// Not part of the body: the preview bucket's state, from the same response's
    /// `X-RateLimit-*` headers, for a client to fill in.
    #[serde(skip)]
    pub rate_limit: Option<RateLimit>,
}

/// The answer to a successful accept (Together's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Joined {
    /// Always `"Joined server"`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "Joined server"))]
    pub message: String,
    /// The server joined.
    pub server_id: Uuid,
    /// Not part of the body: whether the same response said `Idempotent-Replayed: true`, that
    /// is, the answer is the stored one of an earlier request with the same idempotency key (the
    /// join happened then, not now). For a client to fill in.
    #[serde(skip)]
    pub replayed: bool,
    /// Not part of the body: the accept bucket's state, from the same response's
    /// `X-RateLimit-*` headers, for a client to fill in.
    #[serde(skip)]
    pub rate_limit: Option<RateLimit>,
}

impl Joined {
    /// The message of every join.
    pub const MESSAGE: &'static str = "Joined server";

    /// The answer to a join of `server_id`.
    pub fn new(server_id: Uuid) -> Self {
        Self { message: Self::MESSAGE.to_owned(), server_id, replayed: false, rate_limit: None }
    }
}

/// The answer to an accept of an invite that requires approval (202): the caller's join
/// request, filed now or pending since an earlier accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinRequestFiled {
    /// Always `"Join request filed"`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "Join request filed"))]
    pub message: String,
    /// The request.
    pub request: JoinRequest,
    /// Not part of the body: whether the same response said `Idempotent-Replayed: true`. For
    /// a client to fill in.
    #[serde(skip)]
    pub replayed: bool,
    /// Not part of the body: the accept bucket's state, from the same response's
    /// `X-RateLimit-*` headers, for a client to fill in.
    #[serde(skip)]
    pub rate_limit: Option<RateLimit>,
}

impl JoinRequestFiled {
    /// The message of every filing.
    pub const MESSAGE: &'static str = "Join request filed";

    /// The answer to an accept that filed (or found pending) `request`.
    pub fn new(request: JoinRequest) -> Self {
        Self { message: Self::MESSAGE.to_owned(), request, replayed: false, rate_limit: None }
    }
}

/// The answer to undoing an invite (`POST /servers/{id}/invites/{invite_id}/undo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InviteUndone {
    /// Always `true`: the invite is revoked, by this undo or before it.
    pub revoked: bool,
    /// Members removed by this undo (0 when it is repeated).
    pub removed: u64,
    /// Members who joined through the invite (since `since`) and stay: the owner, and those
    /// whose permissions were set after they joined.
    pub kept: u64,
}

/// The vanity URL of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VanityUrl {
    /// The code, `null` when none is set.
    pub code: Option<String>,
    /// Joins through it.
    pub uses: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_the_service_has_is_known() {
        use invite_core::invite::InviteKind as Rule;
        for kind in [Rule::Random, Rule::Vanity] {
            let wire = InviteKind::from(kind);
            assert!(wire.is_known() && wire.as_str() == kind.as_str(), "{wire}");
        }
        assert_eq!(InviteKind::from("gift"), InviteKind::Other("gift".to_owned()));
    }
}
