//! What the service answers, field for field as it sends it (contract section 5).
//!
//! Every type serializes back to exactly the JSON it was read from (the tests check it against
//! the real service), so they can also be stored or forwarded as is. Unknown fields are ignored:
//! a newer service may add some.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::headers::RateLimit;
use crate::permissions::Permissions;

string_enum! {
    /// Whether an invite has a random code or is the server's vanity URL.
    pub enum InviteKind {
        /// A random 8-character code.
        Random => "random",
        /// The server's vanity code: never expires, unlimited uses, not in invite lists.
        Vanity => "vanity",
    }
}

string_enum! {
    /// A feature the platform grants a server.
    pub enum ServerFeature {
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
    pub enum AuditAction {
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
    }
}

string_enum! {
    /// What an audit entry's `target_id` names.
    pub enum TargetType {
        /// An invite id.
        Invite => "invite",
        /// A user id.
        User => "user",
        /// The server itself.
        Server => "server",
    }
}

/// An invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// Its id.
    pub id: Uuid,
    /// Its server.
    pub server_id: Uuid,
    /// The channel it points at.
    pub channel_id: Option<Uuid>,
    /// The code (`null` only for a vanity invite whose code another server has since claimed).
    pub code: Option<String>,
    /// `random` or `vanity`.
    pub kind: InviteKind,
    /// The link to share.
    pub url: Option<String>,
    /// Who created it.
    pub created_by: Option<Uuid>,
    /// Uses allowed (`None`: unlimited).
    pub max_uses: Option<i64>,
    /// Uses made.
    pub uses: i64,
    /// Lifetime in seconds (0: never expires).
    pub max_age: i64,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether joining makes a temporary member.
    pub temporary: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its version (1 at creation, +1 on every change, uses included); give it to
    /// [`Call::if_match`](crate::Call::if_match) to make an edit conditional.
    pub version: i64,
}

/// A channel as a preview shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRef {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
}

/// What anyone may see of an invite before accepting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Who created the invite (`None` for a vanity URL).
    pub inviter_id: Option<Uuid>,
    /// Whether joining makes a temporary member.
    pub temporary: bool,
    /// Whether the server's invites are paused right now.
    pub invites_paused: bool,
    /// With [`Client::preview_with_counts`](crate::Client::preview_with_counts): the member count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_member_count: Option<i64>,
    /// With [`Client::preview_with_counts`](crate::Client::preview_with_counts): members
    /// connected right now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_presence_count: Option<i64>,
    /// The preview bucket's rate-limit state, from the response headers (not part of the body).
    #[serde(skip)]
    pub rate_limit: Option<RateLimit>,
}

/// Until when a server's invites are paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitesPause {
    /// Until this time.
    Until(DateTime<Utc>),
    /// Until someone resumes them (`"indefinitely"` on the wire).
    Indefinitely,
}

impl Serialize for InvitesPause {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Until(until) => until.serialize(serializer),
            Self::Indefinitely => serializer.serialize_str("indefinitely"),
        }
    }
}

impl<'de> Deserialize<'de> for InvitesPause {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == "indefinitely" {
            return Ok(Self::Indefinitely);
        }
        DateTime::parse_from_rfc3339(&text)
            .map(|until| Self::Until(until.with_timezone(&Utc)))
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "expected an RFC 3339 time or \"indefinitely\", found {text:?}"
                ))
            })
    }
}

/// A server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its icon.
    pub icon_url: Option<String>,
    /// Its owner.
    pub owner_id: Uuid,
    /// What every member may do.
    pub default_permissions: Permissions,
    /// Its features.
    pub features: Vec<ServerFeature>,
    /// Its vanity code.
    pub vanity_code: Option<String>,
    /// Until when invites are paused (`None`: they are not).
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
pub struct JoinedVia {
    /// `owner`, `invite` or `vanity`.
    pub source: JoinSource,
    /// The invite.
    pub invite_id: Option<Uuid>,
    /// Its code at the time.
    pub invite_code: Option<String>,
    /// Who created it.
    pub inviter_id: Option<Uuid>,
}

/// A member of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The server.
    pub server_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// The user's name, when a token carried one.
    pub username: Option<String>,
    /// Extra permissions on top of the server's defaults.
    pub permissions: Permissions,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// Whether the membership is temporary.
    pub temporary: bool,
    /// How they joined.
    pub joined_via: JoinedVia,
}

/// A ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
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

/// A channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// An audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its id.
    pub id: Uuid,
    /// The server.
    pub server_id: Uuid,
    /// Who did it.
    pub actor_id: Uuid,
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

/// A successful accept: the caller is now a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// Always `"Joined server"`.
    pub message: String,
    /// The server joined.
    pub server_id: Uuid,
    /// Whether this is the stored answer to an earlier request with the same idempotency key
    /// (`Idempotent-Replayed: true`): the join happened then, not now. Not part of the body.
    #[serde(skip)]
    pub replayed: bool,
    /// The accept bucket's rate-limit state, from the response headers (not part of the body).
    #[serde(skip)]
    pub rate_limit: Option<RateLimit>,
}

/// A server's vanity URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VanityUrl {
    /// The code, `None` when none is set.
    pub code: Option<String>,
    /// Joins through it.
    pub uses: i64,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_pause_is_a_time_or_indefinitely() {
        let until = Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap();
        for (json, pause) in [
            (r#""indefinitely""#, InvitesPause::Indefinitely),
            (r#""2030-01-02T03:04:05Z""#, InvitesPause::Until(until)),
        ] {
            assert_eq!(serde_json::from_str::<InvitesPause>(json).unwrap(), pause);
            assert_eq!(serde_json::to_string(&pause).unwrap(), json);
        }
        assert!(serde_json::from_str::<InvitesPause>(r#""tomorrow""#).is_err());
    }

    #[test]
    fn unknown_enum_values_and_fields_do_not_break_decoding() {
        let json = r#"{"source": "gateway", "invite_id": null, "invite_code": null,
                       "inviter_id": null, "new_field": 1}"#;
        let via: JoinedVia = serde_json::from_str(json).unwrap();
        assert_eq!(via.source, JoinSource::Other("gateway".to_owned()));
    }
}
