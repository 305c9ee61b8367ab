//! Requests about servers, channels, members, bans, pauses and vanity URLs, and the value types
//! they parse into.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::code::VanityCode;
use crate::patch::Patch;
use crate::permissions::Permissions;
use crate::problem::{ErrorCode, Problem};
use crate::redeem::InvitesPause;

/// Longest server or channel name, in characters.
pub const MAX_NAME_LEN: usize = 100;
/// Longest icon URL, in bytes.
pub const MAX_ICON_URL_LEN: usize = 2048;
/// Longest ban reason, in characters.
pub const MAX_BAN_REASON_LEN: usize = 512;

/// A ban: who may not join the server again until it is lifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A server or channel name: 1-100 characters after trimming surrounding whitespace (the two
/// follow the same rule, so they are one type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

/// A server's name.
pub type ServerName = Name;
/// A channel's name.
pub type ChannelName = Name;

impl Name {
    /// Trims and checks the length.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        parse_name(input, "name").map(Self)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, owned.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Whitespace for trimming names: Unicode's, plus the four information separators (U+001C to
/// U+001F) that Python's `\s` (and so most JSON Schema validators) also counts, and U+FEFF,
/// which JavaScript's `\s` (the dialect of the published patterns) counts.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c) || c == '\u{feff}'
}

/// Control characters that are not whitespace (NUL, escape, ...): they have no place in a name
/// or a reason, and PostgreSQL cannot even store NUL. The published patterns exclude exactly
/// these: `\u0000-\u0008\u000E-\u001B\u007F-\u0084\u0086-\u009F`; a name's pattern also
/// asks for one character that is neither space nor control, as [`parse_name`]'s trimming does.
fn is_forbidden_control(c: char) -> bool {
    c.is_control() && !is_space(c)
}

fn parse_name(input: &str, field: &str) -> Result<String, Problem> {
    // The bound holds for what was sent, before trimming, as the published `maxLength` says:
    // `"\t" + 100 letters` is 101 characters, and refused.
    let name = input.trim_matches(is_space);
    if input.chars().count() > MAX_NAME_LEN || name.is_empty() {
        return Err(Problem::validation(format!("{field} must be between 1 and 100 characters")));
    }
    if name.chars().any(is_forbidden_control) {
        return Err(Problem::validation(format!("{field} must not contain control characters")));
    }
    Ok(name.to_owned())
}

/// An icon URL: `http://` or `https://`, a host of letters, digits, dots and hyphens, an
/// optional port, then anything without whitespace or control characters; at most 2048 bytes.
/// Stricter than a URL parser on purpose: the rule is the pattern the OpenAPI document
/// publishes, so clients can check it before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IconUrl(String);

impl IconUrl {
    /// Checks the rule above.
    pub fn parse(input: &str) -> Result<Self, Problem> {
        let refused = || {
            Problem::validation("icon_url must be an http or https URL of at most 2048 characters")
        };
        let rest = input
            .strip_prefix("https://")
            .or_else(|| input.strip_prefix("http://"))
            .filter(|_| input.len() <= MAX_ICON_URL_LEN)
            .ok_or_else(refused)?;
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
        let host_ok = !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        let port_ok = !authority.contains(':')
            || ((1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit()));
        if host_ok && port_ok && !tail.chars().any(|c| is_space(c) || c.is_control()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(refused())
        }
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL, owned.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The names of [`ServerFeature`], for the OpenAPI document.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
pub enum ServerFeatureName {
    /// See [`ServerFeature::VanityUrl`].
    #[cfg_attr(feature = "openapi", schema(rename = "VANITY_URL"))]
    VanityUrl,
}

/// A feature a server can have.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ServerFeature {
    /// The server may set a vanity invite code.
    #[serde(rename = "VANITY_URL")]
    VanityUrl,
}

/// How a member came to be in a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinSource {
    /// Created the server.
    Owner,
    /// Accepted a random invite.
    Invite,
    /// Accepted the vanity invite.
    Vanity,
}

impl JoinSource {
    /// The stored and serialized name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Invite => "invite",
            Self::Vanity => "vanity",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Owner, Self::Invite, Self::Vanity].into_iter().find(|s| s.as_str() == name)
    }
}

impl ServerFeature {
    /// Every feature.
    pub const ALL: [Self; 1] = [Self::VanityUrl];

    /// The wire and stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VanityUrl => "VANITY_URL",
        }
    }

    /// Parses a feature name; unknown names are refused with a message naming the known ones.
    pub fn parse(name: &str) -> Result<Self, Problem> {
        Self::ALL.into_iter().find(|feature| feature.as_str() == name).ok_or_else(|| {
            Problem::validation(format!("unknown server feature {name:?} (known: VANITY_URL)"))
        })
    }

    /// Refuses, with 403 `MISSING_FEATURE`, a server whose `features` lack this one.
    pub fn require_in(self, features: &[Self]) -> Result<(), Problem> {
        if features.contains(&self) {
            Ok(())
        } else {
            Err(Problem::with_message(
                ErrorCode::MissingFeature,
                format!("This server lacks the {} feature", self.as_str()),
            ))
        }
    }

    /// Parses a list of names into a sorted set without duplicates.
    pub fn parse_all(names: &[String]) -> Result<Vec<Self>, Problem> {
        let mut features =
            names.iter().map(|name| Self::parse(name)).collect::<Result<Vec<_>, _>>()?;
        features.sort_unstable();
        features.dedup();
        Ok(features)
    }
}

/// The body of `POST /servers`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateServerRequest {
    /// 1-100 characters, not all spaces.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\u0000-\u0008\u000E-\u001B\u007F-\u0084\u0086-\u009F]*[^\s\u0000-\u0008\u000E-\u001F\u007F-\u009F][^\u0000-\u0008\u000E-\u001B\u007F-\u0084\u0086-\u009F]*$"
        )
    )]
    pub name: String,
    /// An http(s) URL of at most 2048 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 2048,
            pattern = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][^\s\u0000-\u001F\u007F-\u009F]*)?$"
        )
    )]
    pub icon_url: Option<String>,
    /// What every member may do; [`Permissions::DEFAULT_MEMBER`] when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 0, maximum = 32767))]
    pub default_permissions: Option<Permissions>,
}

/// A valid [`CreateServerRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServerSettings {
    /// The name.
    pub name: ServerName,
    /// The icon URL.
    pub icon_url: Option<IconUrl>,
    /// What every member may do.
    pub default_permissions: Permissions,
}

impl CreateServerRequest {
    /// A request for a server with this name, leaving the icon and permissions to the defaults.
    pub fn named(name: impl Into<String>) -> Self {
        Self { name: name.into(), icon_url: None, default_permissions: None }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<NewServerSettings, Problem> {
        Ok(NewServerSettings {
            name: ServerName::parse(&self.name)?,
            icon_url: self.icon_url.as_deref().map(IconUrl::parse).transpose()?,
            default_permissions: self.default_permissions.unwrap_or(Permissions::DEFAULT_MEMBER),
        })
    }
}

/// The body of `PATCH /servers/{id}`: only what is present changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateServerRequest {
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\u0000-\u0008\u000E-\u001B\u007F-\u0084\u0086-\u009F]*[^\s\u0000-\u0008\u000E-\u001F\u007F-\u009F][^\u0000-\u0008\u000E-\u001B\u007F-\u0084\u0086-\u009F]*$"
        )
    )]
    pub name: Option<String>,
    /// A new icon URL; `null` removes the icon.
    #[serde(default, skip_serializing_if = "Patch::is_unchanged")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 2048, pattern = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][^\s\u0000-\u001F\u007F-\u009F]*)?$"))]
    pub icon_url: Patch<String>,
    /// New default permissions.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 0, maximum = 32767))]
    pub default_permissions: Option<Permissions>,
    /// The complete new feature list (owner only); known: `VANITY_URL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<ServerFeatureName>>))]
    pub features: Option<Vec<String>>,
}

/// What a valid [`UpdateServerRequest`] changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerChanges {
    /// New name.
    pub name: Option<ServerName>,
    /// New icon (`Clear` removes it).
    pub icon_url: Patch<IconUrl>,
    /// New default permissions.
    pub default_permissions: Option<Permissions>,
    /// New feature set.
    pub features: Option<Vec<ServerFeature>>,
}

impl UpdateServerRequest {
    /// Checks every present field.
    pub fn validate(&self) -> Result<ServerChanges, Problem> {
        Ok(ServerChanges {
            name: self.name.as_deref().map(ServerName::parse).transpose()?,
            icon_url: self.icon_url.as_ref().try_map(|url| IconUrl::parse(url))?,
            default_permissions: self.default_permissions,
            features: self.features.as_deref().map(ServerFeature::parse_all).transpose()?,
        })
    }
}

/// The body of `POST /servers/{id}/channels`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateChannelRequest {
    /// 1-100 characters, not all spaces.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 100,
            pattern = r"^[^\u0000-\u0008\u000E-\u001B\u007F-\u0084\u0086-\u009F]*[^\s\u0000-\u0008\u000E-\u001F\u007F-\u009F][^\u0000-\u0008\u000E-\u001B\u007F-\u0084\u0086-\u009F]*$"
        )
    )]
    pub name: String,
}

/// The body of `PATCH /servers/{id}/members/{user_id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateMemberRequest {
    /// The member's extra permissions (replacing the previous ones).
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 0, maximum = 32767))]
    pub permissions: Permissions,
}

/// The body of `PUT /servers/{id}/bans/{user_id}`; may be absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    /// Why, for the moderators; at most 512 characters, no control characters but whitespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 512,
            pattern = r"^[^\u0000-\u0008\u000E-\u001B\u007F-\u0084\u0086-\u009F]*$"
        )
    )]
    pub reason: Option<String>,
}

impl BanRequest {
    /// The trimmed reason (an empty one is none), or a refusal when too long.
    pub fn reason(&self) -> Result<Option<String>, Problem> {
        // Bounded as sent, before trimming, like names (see `parse_name`).
        if self.reason.as_deref().is_some_and(|r| r.chars().count() > MAX_BAN_REASON_LEN) {
            return Err(Problem::validation("reason must be at most 512 characters"));
        }
        let Some(reason) = self.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        if reason.chars().any(is_forbidden_control) {
            return Err(Problem::validation("reason must not contain control characters"));
        }
        Ok(Some(reason.to_owned()))
    }
}

/// The body of `PUT /servers/{id}/invites-pause`; may be absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// When invites work again (RFC 3339); absent pauses them until resumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl PauseRequest {
    /// The pause to store; an end time must lie in the future.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<InvitesPause, Problem> {
        match self.until {
            None => Ok(InvitesPause::Indefinitely),
            Some(until) if until > now => Ok(InvitesPause::Until(until)),
            Some(_) => Err(Problem::validation("until must be in the future")),
        }
    }
}

/// The body of `PATCH /servers/{id}/vanity-url`: `{"code": "..."}` sets, `{"code": null}`
/// releases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VanityRequest {
    /// The new code (3-32 of `a-z`, `0-9`, `-`; upper case is lowered), `null` to release;
    /// must be present.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, required, min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$"))]
    pub code: Patch<String>,
}

impl VanityRequest {
    /// The code to claim (`Some`) or a release (`None`).
    pub fn validate(&self) -> Result<Option<VanityCode>, Problem> {
        match &self.code {
            Patch::Unchanged => {
                Err(Problem::validation("code is required (a vanity code, or null to release it)"))
            }
            Patch::Clear => Ok(None),
            Patch::Set(code) => Ok(Some(VanityCode::parse(code)?)),
        }
    }
}

/// A page size from a `?limit=` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(i64);

impl PageLimit {
    /// `limit` within `1..=max`, `default` when absent; out of range is 400 `INVALID_QUERY`.
    pub fn parse(limit: Option<i64>, default: i64, max: i64) -> Result<Self, Problem> {
        match limit {
            None => Ok(Self(default)),
            Some(limit) if (1..=max).contains(&limit) => Ok(Self(limit)),
            Some(_) => Err(Problem::with_message(
                crate::problem::ErrorCode::InvalidQuery,
                format!("limit must be between 1 and {max}"),
            )),
        }
    }

    /// The size.
    pub const fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ServerName::parse("  Rust  ").unwrap().as_str(), "Rust");
        assert_eq!(ServerName::parse(&"é".repeat(100)).unwrap().as_str().chars().count(), 100);
        assert_eq!(ServerName::parse("\u{1c}Rust\u{3000}").unwrap().as_str(), "Rust");
        let padded = format!("\t{}", "a".repeat(100));
        for bad in ["", "   ", "\u{1f}\u{1c}", &"x".repeat(101), &padded] {
            let problem = ServerName::parse(bad).unwrap_err();
            assert_eq!(problem.message.as_ref(), "name must be between 1 and 100 characters");
        }
        assert_eq!(ChannelName::parse("general").unwrap().into_inner(), "general");
        assert!(ChannelName::parse("").is_err());
        assert_eq!(ServerName::parse("\u{feff}Rust\u{85}").unwrap().as_str(), "Rust");
        assert_eq!(ServerName::parse("two\nlines").unwrap().as_str(), "two\nlines");
        for bad in ["a\0b", "\u{1b}[31mred", "x\u{7f}", "\u{9f}"] {
            let problem = ChannelName::parse(bad).unwrap_err();
            assert_eq!(
                problem.message.as_ref(),
                "name must not contain control characters",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn icon_urls_must_be_http() {
        assert!(IconUrl::parse("https://cdn.example.com/icon.png").is_ok());
        assert!(IconUrl::parse("http://localhost:8080/i.png").is_ok());
        for bad in [
            "ftp://example.com/x",
            "javascript:alert(1)",
            "not a url",
            "https://",
            "https://e.com/a\0b",
            "https://e.com/\u{85}",
            &format!("https://e.com/{}", "a".repeat(2048)),
        ] {
            let problem = IconUrl::parse(bad).unwrap_err();
            assert_eq!(
                problem.message, "icon_url must be an http or https URL of at most 2048 characters",
                "{bad}"
            );
        }
    }

    #[test]
    fn server_create_defaults_and_checks() {
        let request: CreateServerRequest = serde_json::from_str(r#"{"name": "Rust"}"#).unwrap();
        let settings = request.validate().unwrap();
        assert_eq!(settings.default_permissions, Permissions::DEFAULT_MEMBER);
        assert_eq!(settings.icon_url, None);
        let request: CreateServerRequest =
            serde_json::from_str(r#"{"name": "Rust", "default_permissions": 16385}"#).unwrap();
        assert_eq!(
            request.validate().unwrap().default_permissions,
            Permissions::VIEW_CHANNEL | Permissions::CREATE_INVITES
        );
        assert!(
            serde_json::from_str::<CreateServerRequest>(r#"{"name": "x", "owner": 1}"#).is_err()
        );
        assert!(serde_json::from_str::<CreateServerRequest>(r"{}").is_err());
    }

    #[test]
    fn server_update_tells_null_from_absent_and_checks_features() {
        let request: UpdateServerRequest = serde_json::from_str(r#"{"icon_url": null}"#).unwrap();
        assert_eq!(request.validate().unwrap().icon_url, Patch::Clear);
        let request: UpdateServerRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(request.validate().unwrap(), ServerChanges::default());
        let request: UpdateServerRequest =
            serde_json::from_str(r#"{"features": ["VANITY_URL", "VANITY_URL"]}"#).unwrap();
        assert_eq!(request.validate().unwrap().features, Some(vec![ServerFeature::VanityUrl]));
        let request: UpdateServerRequest =
            serde_json::from_str(r#"{"features": ["BANNER"]}"#).unwrap();
        assert_eq!(
            request.validate().unwrap_err().message,
            "unknown server feature \"BANNER\" (known: VANITY_URL)"
        );
    }

    #[test]
    fn ban_reasons_are_trimmed_and_bounded() {
        let ban = |reason: &str| BanRequest { reason: Some(reason.to_owned()) };
        assert_eq!(ban("  spam ").reason().unwrap(), Some("spam".to_owned()));
        assert_eq!(ban("   ").reason().unwrap(), None);
        assert_eq!(BanRequest::default().reason().unwrap(), None);
        assert_eq!(
            ban(&"x".repeat(513)).reason().unwrap_err().message,
            "reason must be at most 512 characters"
        );
        assert_eq!(ban("line one\nline two").reason().unwrap(), Some("line one\nline two".into()));
        assert_eq!(
            ban("nul\0").reason().unwrap_err().message,
            "reason must not contain control characters"
        );
    }

    #[test]
    fn pauses_end_in_the_future_or_never() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        assert_eq!(PauseRequest::default().validate(now), Ok(InvitesPause::Indefinitely));
        let later = now + Duration::hours(1);
        assert_eq!(
            PauseRequest { until: Some(later) }.validate(now),
            Ok(InvitesPause::Until(later))
        );
        let problem = PauseRequest { until: Some(now) }.validate(now).unwrap_err();
        assert_eq!(problem.message, "until must be in the future");
    }

    #[test]
    fn vanity_requests_need_a_code_or_null() {
        let parse = |json| serde_json::from_str::<VanityRequest>(json).unwrap().validate();
        assert_eq!(parse(r#"{"code": "Rust-Lang"}"#).unwrap().unwrap().as_str(), "rust-lang");
        assert_eq!(parse(r#"{"code": null}"#), Ok(None));
        assert_eq!(
            parse("{}").unwrap_err().message,
            "code is required (a vanity code, or null to release it)"
        );
        assert_eq!(
            parse(r#"{"code": "a"}"#).unwrap_err().message,
            "vanity code must be between 3 and 32 characters"
        );
    }

    #[test]
    fn page_limits() {
        assert_eq!(PageLimit::parse(None, 100, 1000).unwrap().get(), 100);
        assert_eq!(PageLimit::parse(Some(1000), 100, 1000).unwrap().get(), 1000);
        for bad in [0, -1, 1001] {
            let problem = PageLimit::parse(Some(bad), 100, 1000).unwrap_err();
            assert_eq!(problem.code.as_str(), "INVALID_QUERY");
            assert_eq!(problem.message, "limit must be between 1 and 1000");
        }
    }
}
