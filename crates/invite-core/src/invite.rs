//! Invite requests and the validated settings they turn into.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::approval::parse_requires_approval;
use crate::grant::{parse_allowed_users, parse_grant};
use crate::patch::Patch;
use crate::permissions::Permissions;
use crate::problem::{ErrorCode, Problem};
use crate::redeem::InviteStatus;

/// Most uses an invite may allow.
pub const MAX_USES_LIMIT: i64 = 1_000_000;
/// Longest lifetime in hours `expires_in_hours` accepts (30 days).
pub const MAX_EXPIRES_IN_HOURS: i64 = 720;
/// Longest lifetime in seconds `max_age` accepts (30 days); 0 means never.
pub const MAX_AGE_LIMIT: i64 = 2_592_000;
/// Most active (not revoked, not expired, not used up) random invites a server may hold.
pub const MAX_ACTIVE_INVITES: i64 = 1000;

/// Declares a struct with an invite's fields as the service shows them, in the order the API
/// sends them: the one list behind the event payload ([`crate::event::InviteData`]), the API's
/// invite and the store's. `kind` has the type the declaring crate reads kinds into (a client
/// keeps names it does not know); the struct's own fields follow `kind`, where the API's `url`
/// stands.
#[macro_export]
macro_rules! invite_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(#[$kind_meta:meta])*
            kind: $kind:ty,
            $($(#[$own_meta:meta])* pub $own:ident: $own_ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            /// Its id.
            pub id: ::uuid::Uuid,
            /// Its server.
            pub server_id: ::uuid::Uuid,
            /// The channel it points at.
            pub channel_id: ::core::option::Option<::uuid::Uuid>,
            /// Its code (`null` only for a released vanity invite whose code went elsewhere).
            pub code: ::core::option::Option<::std::string::String>,
            /// `random` or `vanity`.
            $(#[$kind_meta])*
            pub kind: $kind,
            $($(#[$own_meta])* pub $own: $own_ty,)*
            /// Who created it (for a vanity invite, who set the code).
            pub created_by: ::core::option::Option<::uuid::Uuid>,
            /// Uses allowed (`null`: unlimited).
            pub max_uses: ::core::option::Option<i64>,
            /// Uses made.
            pub uses: i64,
            /// Lifetime in seconds (0: never expires).
            pub max_age: i64,
            /// When it stops working.
            pub expires_at: ::core::option::Option<::chrono::DateTime<::chrono::Utc>>,
            /// Whether it makes temporary members.
            pub temporary: bool,
            /// When it was created.
            pub created_at: ::chrono::DateTime<::chrono::Utc>,
            /// Its version, also sent as the `ETag`: one more with every change, uses included.
            pub version: i64,
        }
    };
}

/// Builds a struct declared with [`invite_struct!`] from another one, `$from` (taken by value):
/// the shared fields move across (`kind` through `Into`), and the target's own fields are
/// given as in a struct expression.
#[macro_export]
macro_rules! invite_from {
    ($from:expr => $to:path { $($own:ident $(: $value:expr)?),* $(,)? }) => {{
        let from = $from;
        $to {
            id: from.id,
            server_id: from.server_id,
            channel_id: from.channel_id,
            code: from.code,
            kind: from.kind.into(),
            $($own $(: $value)?,)*
            created_by: from.created_by,
            max_uses: from.max_uses,
            uses: from.uses,
            max_age: from.max_age,
            expires_at: from.expires_at,
            temporary: from.temporary,
            created_at: from.created_at,
            version: from.version,
        }
    }};
}

/// Whether an invite has a random code or is the server's vanity URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InviteKind {
    /// A random 8-character code.
    Random,
    /// The server's vanity code: never expires, unlimited uses, not in invite lists.
    Vanity,
}

impl InviteKind {
    /// The stored and serialized name (`"random"`, `"vanity"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::Vanity => "vanity",
        }
    }

    /// Parses the stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "random" => Some(Self::Random),
            "vanity" => Some(Self::Vanity),
            _ => None,
        }
    }
}

/// The body of `POST /servers/{id}/invites` and `POST /channels/{id}/invites`.
///
/// Unknown fields are refused; an absent or empty body is `{}`: a permanent, unlimited invite.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// How many joins the invite allows, 1..=1,000,000; absent is unlimited.
    #[serde(default, deserialize_with = "crate::wire::optional_integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    pub max_uses: Option<i64>,
    /// Lifetime in hours, 1..=720 (Together's field). Not together with `max_age`.
    #[serde(default, deserialize_with = "crate::wire::optional_integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 720))]
    pub expires_in_hours: Option<i64>,
    /// Lifetime in seconds, 0..=2,592,000, 0 = never (Fluxer's field). Not together with
    /// `expires_in_hours`.
    #[serde(default, deserialize_with = "crate::wire::optional_integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 2_592_000))]
    pub max_age: Option<i64>,
    /// The channel the invite points at; must belong to the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<Uuid>,
    /// Whether joining makes a temporary member. Default false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporary: Option<bool>,
    /// `false` reuses an existing active invite with the same settings. Default true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
    /// Permission bits whoever joins through the invite gets as their member permissions;
    /// default 0. The creator must hold every bit granted, and only the owner may grant
    /// `ADMINISTRATOR`. Held as the JSON value sent, so that a wrong type reaches
    /// [`CreateInviteRequest::validate`] (and its `VALIDATION_ERROR`) instead of failing the
    /// parse of the whole body; [`CreateInviteRequest::granting`] sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<i64>, minimum = 0, maximum = 32767)
    )]
    pub grant_permissions: Option<serde_json::Value>,
    /// The only users who may accept the invite: 1 to 100 distinct user ids; absent, anyone.
    /// Held as the JSON value sent, as `grant_permissions` is; [`CreateInviteRequest::for_users`]
    /// sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Uuid>>))]
    pub allowed_user_ids: Option<serde_json::Value>,
    /// Whether accepting the invite files a join request for a moderator to decide, instead
    /// of joining; default false. Held as the JSON value sent, as `grant_permissions` is;
    /// [`CreateInviteRequest::requiring_approval`] sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub requires_approval: Option<serde_json::Value>,
}

/// `grant_permissions` as a request sends it.
fn grant_value(permissions: Permissions) -> serde_json::Value {
    serde_json::Value::from(permissions.bits())
}

/// `allowed_user_ids` as a request sends it.
fn users_value(users: &[Uuid]) -> serde_json::Value {
    users.iter().map(|id| serde_json::Value::String(id.to_string())).collect()
}

/// A create request that passed every rule, with its expiry computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteSettings {
    /// The channel the invite points at (not yet checked against the server's channels).
    pub channel_id: Option<Uuid>,
    /// Uses allowed; `None` is unlimited.
    pub max_uses: Option<i64>,
    /// Lifetime in seconds; 0 never expires.
    pub max_age: i64,
    /// `created_at + max_age`, or `None` for 0.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether joining makes a temporary member.
    pub temporary: bool,
    /// Whether a new invite must be created even if an equal one exists.
    pub unique: bool,
    /// What a join through the invite grants (before [`crate::grant::granted_on_join`]).
    pub grant_permissions: Permissions,
    /// The only users who may accept it; `None`, anyone.
    pub allowed_user_ids: Option<Vec<Uuid>>,
    /// Whether accepting it files a join request instead of joining.
    pub requires_approval: bool,
}

impl CreateInviteRequest {
    /// Points the request at the channel a channel-scoped path names: the body may repeat that
    /// channel, but not name another.
    pub fn scoped_to_channel(mut self, channel_id: Uuid) -> Result<Self, Problem> {
        if self.channel_id.is_some_and(|id| id != channel_id) {
            return Err(Problem::validation(
                "channel_id in the body must be the channel in the path (or be left out)",
            ));
        }
        self.channel_id = Some(channel_id);
        Ok(self)
    }

    /// This request, making the invite grant `permissions` to whoever joins through it.
    #[must_use]
    pub fn granting(mut self, permissions: Permissions) -> Self {
        self.grant_permissions = Some(grant_value(permissions));
        self
    }

    /// This request, making the invite for `users` only.
    #[must_use]
    pub fn for_users(mut self, users: &[Uuid]) -> Self {
        self.allowed_user_ids = Some(users_value(users));
        self
    }

    /// This request, making accepting the invite file a join request (or not).
    #[must_use]
    pub fn requiring_approval(mut self, requires_approval: bool) -> Self {
        self.requires_approval = Some(serde_json::Value::Bool(requires_approval));
        self
    }

    /// Applies the rules in this order: `max_uses`, both lifetimes given, `expires_in_hours`,
    /// `max_age`, `grant_permissions`, `allowed_user_ids`, `requires_approval`. The first
    /// broken rule is reported.
    /// Whether the creator may grant the bits is the caller's to check
    /// ([`crate::grant::check_grant`]): it depends on where the creator stands.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<InviteSettings, Problem> {
        let max_uses = self.max_uses.map(check_max_uses).transpose()?;
        let max_age = lifetime(self.max_age, self.expires_in_hours)?.unwrap_or(0);
        let grant_permissions =
            self.grant_permissions.as_ref().map(parse_grant).transpose()?.unwrap_or_default();
        let allowed_user_ids =
            self.allowed_user_ids.as_ref().map(parse_allowed_users).transpose()?;
        let requires_approval =
            self.requires_approval.as_ref().map(parse_requires_approval).transpose()?;
        Ok(InviteSettings {
            channel_id: self.channel_id,
            max_uses,
            max_age,
            expires_at: expires_at(now, max_age),
            temporary: self.temporary.unwrap_or(false),
            unique: self.unique.unwrap_or(true),
            grant_permissions,
            allowed_user_ids,
            requires_approval: requires_approval.unwrap_or(false),
        })
    }
}

/// The body of `PATCH /servers/{id}/invites/{invite_id}`: only what is present changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateInviteRequest {
    /// New use limit; `null` makes the invite unlimited. Not below the uses already made.
    #[serde(default, deserialize_with = "crate::wire::patch_integer")]
    #[serde(skip_serializing_if = "Patch::is_unchanged")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000))]
    pub max_uses: Patch<i64>,
    /// New lifetime in hours, counted from now. Not together with `max_age`.
    #[serde(default, deserialize_with = "crate::wire::optional_integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 720))]
    pub expires_in_hours: Option<i64>,
    /// New lifetime in seconds, counted from now; 0 removes the expiry. Not together with
    /// `expires_in_hours`.
    #[serde(default, deserialize_with = "crate::wire::optional_integer")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 2_592_000))]
    pub max_age: Option<i64>,
    /// New permission bits for whoever joins from now on; the editor must hold every bit (only
    /// the owner grants `ADMINISTRATOR`), and becomes the one whose permissions the join
    /// checks. Held as the JSON value sent (see [`CreateInviteRequest::grant_permissions`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<i64>, minimum = 0, maximum = 32767)
    )]
    pub grant_permissions: Option<serde_json::Value>,
    /// The only users who may accept it from now on (1 to 100 distinct ids); `null` opens it to
    /// anyone. Held as the JSON value sent.
    #[serde(default, skip_serializing_if = "Patch::is_unchanged")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Uuid>>))]
    pub allowed_user_ids: Patch<serde_json::Value>,
    /// Whether accepting it files a join request from now on (requests already filed stay
    /// as they are). Held as the JSON value sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub requires_approval: Option<serde_json::Value>,
}

/// What a valid update changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InviteChanges {
    /// The new use limit (`Clear` is unlimited).
    pub max_uses: Patch<i64>,
    /// The new lifetime and expiry, when they change.
    pub lifetime: Option<(i64, Option<DateTime<Utc>>)>,
    /// The new permissions on join, when they change (set by the editor).
    pub grant_permissions: Option<Permissions>,
    /// The new list of who may accept (`Clear`: anyone).
    pub allowed_user_ids: Patch<Vec<Uuid>>,
    /// Whether accepting files a join request, when it changes.
    pub requires_approval: Option<bool>,
}

impl InviteChanges {
    /// Whether the update changes nothing (an empty body).
    pub fn is_empty(&self) -> bool {
        self.max_uses.is_unchanged()
            && self.lifetime.is_none()
            && self.grant_permissions.is_none()
            && self.allowed_user_ids.is_unchanged()
            && self.requires_approval.is_none()
    }
}

impl UpdateInviteRequest {
    /// This update, making the invite grant `permissions` to whoever joins from now on.
    #[must_use]
    pub fn granting(mut self, permissions: Permissions) -> Self {
        self.grant_permissions = Some(grant_value(permissions));
        self
    }

    /// This update, making the invite for `users` only.
    #[must_use]
    pub fn for_users(mut self, users: &[Uuid]) -> Self {
        self.allowed_user_ids = Patch::Set(users_value(users));
        self
    }

    /// This update, opening the invite to anyone.
    #[must_use]
    pub fn for_anyone(mut self) -> Self {
        self.allowed_user_ids = Patch::Clear;
        self
    }

    /// This update, making accepting the invite file a join request (or not) from now on.
    #[must_use]
    pub fn requiring_approval(mut self, requires_approval: bool) -> Self {
        self.requires_approval = Some(serde_json::Value::Bool(requires_approval));
        self
    }

    /// Checks the update against the invite as it is: the same ranges as creation, and a use
    /// limit no lower than the uses already made. Whether the editor may grant the bits is the
    /// caller's to check, as on creation.
    pub fn validate(
        &self,
        current: &InviteStatus,
        now: DateTime<Utc>,
    ) -> Result<InviteChanges, Problem> {
        let max_uses = self.max_uses.try_map(|max_uses| {
            let max_uses = check_max_uses(max_uses)?;
            if max_uses < current.uses {
                return Err(Problem::validation(format!(
                    "max_uses must not be below the invite's current uses ({})",
                    current.uses
                )));
            }
            Ok(max_uses)
        })?;
        let lifetime = lifetime(self.max_age, self.expires_in_hours)?
            .map(|max_age| (max_age, expires_at(now, max_age)));
        let grant_permissions = self.grant_permissions.as_ref().map(parse_grant).transpose()?;
        let allowed_user_ids = self.allowed_user_ids.as_ref().try_map(parse_allowed_users)?;
        let requires_approval =
            self.requires_approval.as_ref().map(parse_requires_approval).transpose()?;
        Ok(InviteChanges {
            max_uses,
            lifetime,
            grant_permissions,
            allowed_user_ids,
            requires_approval,
        })
    }
}

fn check_max_uses(max_uses: i64) -> Result<i64, Problem> {
    if max_uses <= 0 {
        Err(Problem::validation("max_uses must be greater than 0"))
    } else if max_uses > MAX_USES_LIMIT {
        Err(Problem::validation("max_uses must be at most 1000000"))
    } else {
        Ok(max_uses)
    }
}

/// The lifetime in seconds from whichever of the two fields is given; `None` when neither is.
fn lifetime(max_age: Option<i64>, expires_in_hours: Option<i64>) -> Result<Option<i64>, Problem> {
    match (max_age, expires_in_hours) {
        (Some(_), Some(_)) => {
            Err(Problem::validation("Provide either max_age or expires_in_hours, not both"))
        }
        (None, Some(hours)) if (1..=MAX_EXPIRES_IN_HOURS).contains(&hours) => {
            Ok(Some(hours * 3600))
        }
        (None, Some(_)) => Err(Problem::validation("expires_in_hours must be between 1 and 720")),
        (Some(seconds), None) if (0..=MAX_AGE_LIMIT).contains(&seconds) => Ok(Some(seconds)),
        (Some(_), None) => Err(Problem::validation("max_age must be between 0 and 2592000")),
        (None, None) => Ok(None),
    }
}

fn expires_at(now: DateTime<Utc>, max_age: i64) -> Option<DateTime<Utc>> {
    (max_age > 0).then(|| now + Duration::seconds(max_age))
}

/// Whether a server holding `active` active invites may create another: fewer than
/// [`MAX_ACTIVE_INVITES`].
pub const fn has_room_for_invite(active: i64) -> bool {
    active < MAX_ACTIVE_INVITES
}

/// Whether an invite can be edited or revoked through the invite endpoints: a revoked one is
/// no longer there to change (404 `INVITE_NOT_FOUND`), and the vanity invite is changed through
/// the vanity URL only (400 `VANITY_INVITE`).
pub fn check_manageable(kind: InviteKind, revoked: bool) -> Result<(), Problem> {
    if revoked {
        Err(Problem::of(ErrorCode::InviteNotFound))
    } else if kind == InviteKind::Vanity {
        Err(Problem::of(ErrorCode::VanityInvite))
    } else {
        Ok(())
    }
}

/// The refusal for an `If-Match` that names another version than the invite's.
pub fn check_version(expected: Option<i64>, current: i64) -> Result<(), Problem> {
    match expected {
        Some(expected) if expected != current => Err(Problem::of(ErrorCode::PreconditionFailed)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn parse(json: &str) -> Result<CreateInviteRequest, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn message(json: &str) -> String {
        let problem = parse(json).unwrap().validate(now()).unwrap_err();
        assert_eq!(problem.code, ErrorCode::ValidationError);
        problem.message.into_owned()
    }

    #[test]
    fn an_empty_request_is_a_permanent_unlimited_invite() {
        let settings = parse("{}").unwrap().validate(now()).unwrap();
        assert_eq!(
            settings,
            InviteSettings {
                channel_id: None,
                max_uses: None,
                max_age: 0,
                expires_at: None,
                temporary: false,
                unique: true,
                grant_permissions: Permissions::empty(),
                allowed_user_ids: None,
                requires_approval: false,
            }
        );
        assert_eq!(CreateInviteRequest::default().validate(now()).unwrap(), settings);
    }

    #[test]
    fn every_field_is_carried_over() {
        let channel = Uuid::from_u128(7);
        let request = parse(&format!(
            r#"{{"max_uses": 10, "expires_in_hours": 24, "channel_id": "{channel}",
                "temporary": true, "unique": false}}"#
        ))
        .unwrap();
        let settings = request.validate(now()).unwrap();
        assert_eq!(settings.max_uses, Some(10));
        assert_eq!(settings.max_age, 86_400);
        assert_eq!(settings.expires_at, Some(now() + Duration::hours(24)));
        assert_eq!(settings.channel_id, Some(channel));
        assert!(settings.temporary);
        assert!(!settings.unique);
    }

    #[test]
    fn max_age_sets_the_expiry_in_seconds_and_zero_never_expires() {
        let settings = parse(r#"{"max_age": 90}"#).unwrap().validate(now()).unwrap();
        assert_eq!(
            (settings.max_age, settings.expires_at),
            (90, Some(now() + Duration::seconds(90)))
        );
        let settings = parse(r#"{"max_age": 0}"#).unwrap().validate(now()).unwrap();
        assert_eq!((settings.max_age, settings.expires_at), (0, None));
        let settings = parse(r#"{"max_age": 2592000}"#).unwrap().validate(now()).unwrap();
        assert_eq!(settings.expires_at, Some(now() + Duration::days(30)));
    }

    #[test]
    fn bounds_are_inclusive() {
        for ok in [
            r#"{"max_uses": 1}"#,
            r#"{"max_uses": 1000000}"#,
            r#"{"expires_in_hours": 1}"#,
            r#"{"expires_in_hours": 720}"#,
            r#"{"max_age": 0}"#,
            r#"{"max_age": 2592000}"#,
        ] {
            assert!(parse(ok).unwrap().validate(now()).is_ok(), "{ok}");
        }
    }

    /// Each range rule broken, with the contract's message: a creation and an edit check the
    /// same ones.
    const BROKEN_RANGES: [(&str, &str); 9] = [
        (r#"{"max_uses": 0}"#, "max_uses must be greater than 0"),
        (r#"{"max_uses": -5}"#, "max_uses must be greater than 0"),
        (r#"{"max_uses": 1000001}"#, "max_uses must be at most 1000000"),
        (r#"{"expires_in_hours": 0}"#, "expires_in_hours must be between 1 and 720"),
        (r#"{"expires_in_hours": 721}"#, "expires_in_hours must be between 1 and 720"),
        (r#"{"expires_in_hours": -1}"#, "expires_in_hours must be between 1 and 720"),
        (r#"{"max_age": -1}"#, "max_age must be between 0 and 2592000"),
        (r#"{"max_age": 2592001}"#, "max_age must be between 0 and 2592000"),
        (
            r#"{"max_age": 60, "expires_in_hours": 1}"#,
            "Provide either max_age or expires_in_hours, not both",
        ),
    ];

    #[test]
    fn each_rule_has_the_contract_message() {
        for (json, expected) in BROKEN_RANGES {
            assert_eq!(message(json), expected, "{json}");
        }
    }

    #[test]
    fn the_first_broken_rule_is_reported() {
        assert_eq!(
            message(r#"{"max_uses": 0, "max_age": 60, "expires_in_hours": 1}"#),
            "max_uses must be greater than 0"
        );
        assert_eq!(
            message(r#"{"max_age": -1, "expires_in_hours": 0}"#),
            "Provide either max_age or expires_in_hours, not both"
        );
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused_by_deserialization() {
        let error = parse(r#"{"max_uses": 1, "foo": true}"#).unwrap_err();
        assert!(error.to_string().contains("unknown field `foo`"), "{error}");
        assert!(parse(r#"{"max_uses": "ten"}"#).is_err());
        assert!(parse(r#"{"max_uses": 1.5}"#).is_err());
        assert!(parse(r#"{"channel_id": "not-a-uuid"}"#).is_err());
        assert!(parse(r#"{"temporary": 1}"#).is_err());
        assert!(parse("[]").is_err());
        // `null` is the same as leaving the field out.
        assert_eq!(parse(r#"{"max_uses": null}"#).unwrap(), CreateInviteRequest::default());
    }

    #[test]
    fn update_changes_only_what_is_given() {
        let current = InviteStatus { revoked: false, expires_at: None, max_uses: Some(5), uses: 3 };
        let update: UpdateInviteRequest = serde_json::from_str("{}").unwrap();
        let changes = update.validate(&current, now()).unwrap();
        assert!(changes.is_empty());

        let update: UpdateInviteRequest = serde_json::from_str(r#"{"max_uses": null}"#).unwrap();
        assert_eq!(update.validate(&current, now()).unwrap().max_uses, Patch::Clear);

        let update: UpdateInviteRequest =
            serde_json::from_str(r#"{"max_uses": 3, "expires_in_hours": 2}"#).unwrap();
        let changes = update.validate(&current, now()).unwrap();
        assert_eq!(changes.max_uses, Patch::Set(3));
        assert_eq!(changes.lifetime, Some((7200, Some(now() + Duration::hours(2)))));

        let update: UpdateInviteRequest = serde_json::from_str(r#"{"max_age": 0}"#).unwrap();
        assert_eq!(update.validate(&current, now()).unwrap().lifetime, Some((0, None)));
    }

    #[test]
    fn update_refuses_a_limit_below_the_uses_and_the_creation_ranges() {
        let current = InviteStatus { revoked: false, expires_at: None, max_uses: Some(5), uses: 3 };
        let below_uses =
            (r#"{"max_uses": 2}"#, "max_uses must not be below the invite's current uses (3)");
        for (json, expected) in std::iter::once(below_uses).chain(BROKEN_RANGES) {
            let update: UpdateInviteRequest = serde_json::from_str(json).unwrap();
            let problem = update.validate(&current, now()).unwrap_err();
            assert_eq!(problem.message.as_ref(), expected, "{json}");
        }
        assert!(serde_json::from_str::<UpdateInviteRequest>(r#"{"uses": 0}"#).is_err());
    }

    #[test]
    fn active_invite_limit_manageable_invites_and_version_check() {
        assert!(has_room_for_invite(999));
        assert!(!has_room_for_invite(1000));
        assert_eq!(check_manageable(InviteKind::Random, false), Ok(()));
        let code = |kind, revoked| check_manageable(kind, revoked).unwrap_err().code.as_str();
        assert_eq!(code(InviteKind::Random, true), "INVITE_NOT_FOUND");
        assert_eq!(code(InviteKind::Vanity, false), "VANITY_INVITE");
        assert_eq!(code(InviteKind::Vanity, true), "INVITE_NOT_FOUND");
        assert_eq!(check_version(None, 3), Ok(()));
        assert_eq!(check_version(Some(3), 3), Ok(()));
        let problem = check_version(Some(2), 3).unwrap_err();
        assert_eq!(problem.code.as_str(), "PRECONDITION_FAILED");
    }

    #[test]
    fn requires_approval_defaults_to_false_and_a_wrong_type_is_a_validation_error() {
        assert!(!CreateInviteRequest::default().validate(now()).unwrap().requires_approval);
        let settings =
            CreateInviteRequest::default().requiring_approval(true).validate(now()).unwrap();
        assert!(settings.requires_approval);
        assert!(
            !parse(r#"{"requires_approval": null}"#)
                .unwrap()
                .validate(now())
                .unwrap()
                .requires_approval
        );
        for json in [r#"{"requires_approval": "yes"}"#, r#"{"requires_approval": 1}"#] {
            message(json);
        }
        let current = InviteStatus { revoked: false, expires_at: None, max_uses: None, uses: 0 };
        let changes = UpdateInviteRequest::default()
            .requiring_approval(false)
            .validate(&current, now())
            .unwrap();
        assert_eq!(changes.requires_approval, Some(false));
        assert!(!changes.is_empty());
        let update: UpdateInviteRequest =
            serde_json::from_str(r#"{"requires_approval": "yes"}"#).unwrap();
        let problem = update.validate(&current, now()).unwrap_err();
        assert_eq!(problem.code, ErrorCode::ValidationError);
        assert_eq!(problem.message, "requires_approval must be true or false");
    }

    #[test]
    fn grants_and_allowed_users_are_validated_and_wrong_types_are_validation_errors() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let settings = CreateInviteRequest::default()
            .granting(Permissions::KICK_MEMBERS)
            .for_users(&[a, b])
            .validate(now())
            .unwrap();
        assert_eq!(settings.grant_permissions, Permissions::KICK_MEMBERS);
        assert_eq!(settings.allowed_user_ids, Some(vec![a, b]));
        // `null` is the same as leaving them out: grants nothing, open to anyone.
        let open = parse(r#"{"grant_permissions": null, "allowed_user_ids": null}"#).unwrap();
        let settings = open.validate(now()).unwrap();
        assert_eq!(
            (settings.grant_permissions, settings.allowed_user_ids),
            (Permissions::empty(), None)
        );
        for json in [
            r#"{"grant_permissions": "256"}"#,
            r#"{"grant_permissions": 32768}"#,
            r#"{"grant_permissions": -1}"#,
            r#"{"grant_permissions": 1.5}"#,
            r#"{"allowed_user_ids": []}"#,
            r#"{"allowed_user_ids": "x"}"#,
            r#"{"allowed_user_ids": [1]}"#,
            r#"{"allowed_user_ids": ["00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000001"]}"#,
        ] {
            // The body parses; the rule refuses the field.
            message(json);
        }
        let current = InviteStatus { revoked: false, expires_at: None, max_uses: None, uses: 0 };
        let update =
            UpdateInviteRequest::default().granting(Permissions::BAN_MEMBERS).for_users(&[a]);
        let changes = update.validate(&current, now()).unwrap();
        assert_eq!(changes.grant_permissions, Some(Permissions::BAN_MEMBERS));
        assert_eq!(changes.allowed_user_ids, Patch::Set(vec![a]));
        assert!(!changes.is_empty());
        let opened: UpdateInviteRequest =
            serde_json::from_str(r#"{"allowed_user_ids": null}"#).unwrap();
        assert_eq!(opened, UpdateInviteRequest::default().for_anyone());
        assert_eq!(opened.validate(&current, now()).unwrap().allowed_user_ids, Patch::Clear);
        for json in [r#"{"grant_permissions": true}"#, r#"{"allowed_user_ids": []}"#] {
            let update: UpdateInviteRequest = serde_json::from_str(json).unwrap();
            let problem = update.validate(&current, now()).unwrap_err();
            assert_eq!(problem.code, ErrorCode::ValidationError, "{json}");
        }
    }

    #[test]
    fn kinds_round_trip() {
        for kind in [InviteKind::Random, InviteKind::Vanity] {
            assert_eq!(InviteKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(InviteKind::parse("other"), None);
    }

    proptest! {
        #[test]
        fn max_uses_is_accepted_exactly_in_range(max_uses in any::<i64>()) {
            let request = CreateInviteRequest { max_uses: Some(max_uses), ..Default::default() };
            let accepted = request.validate(now()).is_ok();
            prop_assert_eq!(accepted, (1..=MAX_USES_LIMIT).contains(&max_uses));
        }

        #[test]
        fn lifetimes_are_accepted_exactly_in_range(hours in -10_i64..800, seconds in -10_i64..2_600_000) {
            let by_hours = CreateInviteRequest { expires_in_hours: Some(hours), ..Default::default() };
            match by_hours.validate(now()) {
                Ok(settings) => {
                    prop_assert!((1..=720).contains(&hours));
                    prop_assert_eq!(settings.expires_at, Some(now() + Duration::hours(hours)));
                }
                Err(_) => prop_assert!(!(1..=720).contains(&hours)),
            }
            let by_seconds = CreateInviteRequest { max_age: Some(seconds), ..Default::default() };
            prop_assert_eq!(by_seconds.validate(now()).is_ok(), (0..=MAX_AGE_LIMIT).contains(&seconds));
        }
    }
}
