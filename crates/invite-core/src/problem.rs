//! The catalogue of every machine-readable error the service answers with.
//!
//! Each [`ErrorCode`] carries its usual message here, in one place: the rules say why they refuse,
//! in the contract's words. Which HTTP status answers a code is the HTTP layer's business alone
//! (`invite_http::api::error::status_of`): this crate knows nothing of HTTP.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A machine-readable error code, serialized in `SCREAMING_SNAKE_CASE` (`"INVITE_EXPIRED"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(strum::VariantArray, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// A field of a well-formed request breaks a rule (range, length, format).
    ValidationError,
    /// The body is not JSON, has an unknown field or a value of the wrong type.
    InvalidJson,
    /// A path segment that must be a UUID is not one.
    InvalidId,
    /// A query-string parameter is malformed or out of range.
    InvalidQuery,
    /// The request has a body with a content type other than `application/json`.
    UnsupportedMediaType,
    /// The body is larger than the service accepts.
    PayloadTooLarge,
    /// No route matches the path.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The bearer token is missing, malformed, expired or signed with another key.
    Unauthorized,
    /// The server does not exist or the caller is not a member (the two are indistinguishable).
    ServerNotFound,
    /// The channel does not exist, or belongs to a server the caller is not in.
    ChannelNotFound,
    /// A create request names a channel that is not a channel of the server.
    UnknownChannel,
    /// The member does not exist in this server.
    MemberNotFound,
    /// The user is not banned from this server.
    BanNotFound,
    /// No webhook has this id in this server.
    WebhookNotFound,
    /// No invite has this code or id (in this server).
    InviteNotFound,
    /// The invite existed but was revoked.
    InviteRevoked,
    /// The caller lacks a permission the action needs.
    MissingPermission,
    /// The server lacks a feature the action needs (e.g. `VANITY_URL`).
    MissingFeature,
    /// Only the server owner may do this.
    OwnerOnly,
    /// The owner cannot leave, be kicked or be banned from their own server.
    OwnerImmune,
    /// The caller already belongs to the server.
    AlreadyMember,
    /// The caller is banned from the server.
    Banned,
    /// The invite names the users who may accept it, and the caller is not one of them.
    InviteNotForYou,
    /// The server has paused invites.
    InvitesPaused,
    /// The invite's expiry time has passed.
    InviteExpired,
    /// The invite has been used as many times as it allows.
    InviteMaxedOut,
    /// No join request has this id in this server (or among the caller's own).
    JoinRequestNotFound,
    /// The join request was approved, denied or withdrawn already.
    JoinRequestNotPending,
    /// The server holds the most pending join requests it may.
    TooManyJoinRequests,
    /// The server already holds the maximum number of active invites.
    MaxInvitesReached,
    /// Every attempt to draw an unused invite code collided.
    CodeSpaceExhausted,
    /// The vanity code belongs to another server or is cooling down after its release.
    VanityTaken,
    /// Vanity invites are managed through the vanity-url endpoints, not the invite ones.
    VanityInvite,
    /// `If-Match` names a version other than the current one.
    PreconditionFailed,
    /// The `Idempotency-Key` was used for another request (method, path or body).
    IdempotencyKeyReused,
    /// A request with the same `Idempotency-Key` is still being processed.
    IdempotencyInFlight,
    /// The HTTP request itself is malformed (headers, framing), below any endpoint.
    MalformedRequest,
    /// The request (its head or its body) did not arrive in time.
    RequestTimeout,
    /// The request's target (path and query) is longer than the service reads.
    UriTooLong,
    /// The request's headers are too many or too large.
    HeadersTooLarge,
    /// Too many requests; retry after the time given.
    RateLimited,
    /// The client's address holds too many connections open at once.
    TooManyConnections,
    /// More work is waiting for the database than it can serve in time; retry shortly.
    Overloaded,
    /// The service is in maintenance mode and refuses writes.
    Maintenance,
    /// A dependency (the database) is unavailable; retry later.
    ServiceUnavailable,
    /// An unexpected failure; the cause is in the service's log, never in the response.
    InternalError,
}

impl ErrorCode {
    /// Every code, in declaration order, for exhaustive checks (documentation, tests, the
    /// OpenAPI description). Derived from the enum, so no code can be left out.
    pub const ALL: &'static [Self] = <Self as strum::VariantArray>::VARIANTS;

    /// The code as it appears on the wire (`"INVITE_EXPIRED"`), the same as its serde name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The message this code is answered with when nothing more specific applies.
    pub const fn default_message(self) -> &'static str {
        match self {
            Self::ValidationError => "The request is invalid",
            Self::InvalidJson => "The request body is not valid JSON for this endpoint",
            Self::InvalidId => "The id in the path is not a valid UUID",
            Self::InvalidQuery => "The query string is invalid",
            Self::UnsupportedMediaType => "Content-Type must be application/json",
            Self::PayloadTooLarge => "The request body is larger than 16 KiB",
            Self::NotFound => "No such route",
            Self::MethodNotAllowed => "This method is not allowed on this route",
            Self::Unauthorized => "A valid bearer token is required",
            Self::ServerNotFound => "Server not found",
            Self::ChannelNotFound => "Channel not found",
            Self::UnknownChannel => "Unknown channel",
            Self::MemberNotFound => "Member not found",
            Self::BanNotFound => "Ban not found",
            Self::WebhookNotFound => "Webhook not found",
            Self::InviteNotFound | Self::InviteRevoked => "Invite not found",
            Self::MissingPermission => "You lack the permission this action needs",
            Self::MissingFeature => "This server lacks the feature this action needs",
            Self::OwnerOnly => "Only the server owner can do this",
            Self::OwnerImmune => "The server owner cannot be removed from their server",
            Self::AlreadyMember => "Already a member of this server",
            Self::Banned => "You are banned from this server",
            Self::InviteNotForYou => "This invite is for someone else",
            Self::InvitesPaused => "Invites to this server are paused",
            Self::InviteExpired => "This invite has expired",
            Self::InviteMaxedOut => "This invite has reached its maximum uses",
            Self::JoinRequestNotFound => "Join request not found",
            Self::JoinRequestNotPending => "This join request was already decided or withdrawn",
            Self::TooManyJoinRequests => {
                "This server has too many pending join requests, please try again later"
            }
            Self::MaxInvitesReached => "Maximum number of active invites reached (1000)",
            Self::CodeSpaceExhausted => "Could not generate a unique invite code, please try again",
            Self::VanityTaken => "This vanity code is not available",
            Self::VanityInvite => {
                "Vanity invites are managed through /servers/{server_id}/vanity-url"
            }
            Self::PreconditionFailed => "The invite has changed since the version in If-Match",
            Self::IdempotencyKeyReused => {
                "This Idempotency-Key was used for another request (method, path or body)"
            }
            Self::IdempotencyInFlight => {
                "A request with this Idempotency-Key is still being processed, retry shortly"
            }
            Self::MalformedRequest => "The HTTP request is malformed",
            Self::RequestTimeout => "The request did not arrive in time",
            Self::UriTooLong => "The request's path and query are too long",
            Self::HeadersTooLarge => "The request's headers are too many or too large",
            Self::RateLimited => "You are being rate limited",
            Self::TooManyConnections => "Too many connections from this address at once",
            Self::Overloaded => "The service is overloaded, please retry shortly",
            Self::Maintenance => "The service is in maintenance mode, please retry later",
            Self::ServiceUnavailable => "The service is temporarily unavailable, please retry",
            Self::InternalError => "Internal server error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal, as the rules give it: its machine code and the contract's words for it.
///
/// Every refusal of this crate turns into one; the HTTP layer picks the status for the code and
/// renders `{"error": message, "code": code}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The machine-readable code.
    pub code: ErrorCode,
    /// The human-readable message.
    pub message: Cow<'static, str>,
}

impl Problem {
    /// The code with its usual message.
    pub const fn of(code: ErrorCode) -> Self {
        Self { code, message: Cow::Borrowed(code.default_message()) }
    }

    /// The code with a specific message.
    pub fn with_message(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self { code, message: message.into() }
    }

    /// A `VALIDATION_ERROR` with the given message.
    pub fn validation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::with_message(ErrorCode::ValidationError, message)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde_names() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str(), "{code:?}");
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), code);
        }
    }

    /// The names clients match on: a renamed variant must not rename its code on the wire.
    #[test]
    fn the_catalogue_is_the_contract_s() {
        let names: Vec<_> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(
            names.join(" "),
            "VALIDATION_ERROR INVALID_JSON INVALID_ID INVALID_QUERY UNSUPPORTED_MEDIA_TYPE \
             PAYLOAD_TOO_LARGE NOT_FOUND METHOD_NOT_ALLOWED UNAUTHORIZED SERVER_NOT_FOUND \
             CHANNEL_NOT_FOUND UNKNOWN_CHANNEL MEMBER_NOT_FOUND BAN_NOT_FOUND WEBHOOK_NOT_FOUND \
             INVITE_NOT_FOUND INVITE_REVOKED MISSING_PERMISSION MISSING_FEATURE OWNER_ONLY \
             OWNER_IMMUNE ALREADY_MEMBER BANNED INVITE_NOT_FOR_YOU INVITES_PAUSED INVITE_EXPIRED INVITE_MAXED_OUT \
             JOIN_REQUEST_NOT_FOUND JOIN_REQUEST_NOT_PENDING TOO_MANY_JOIN_REQUESTS \
             MAX_INVITES_REACHED CODE_SPACE_EXHAUSTED VANITY_TAKEN VANITY_INVITE \
             PRECONDITION_FAILED IDEMPOTENCY_KEY_REUSED IDEMPOTENCY_IN_FLIGHT MALFORMED_REQUEST \
             REQUEST_TIMEOUT URI_TOO_LONG HEADERS_TOO_LARGE RATE_LIMITED TOO_MANY_CONNECTIONS \
             OVERLOADED MAINTENANCE SERVICE_UNAVAILABLE INTERNAL_ERROR"
        );
    }

    #[test]
    fn every_code_is_listed_once() {
        let mut names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn contract_messages() {
        let expected = [
            (ErrorCode::InviteNotFound, "Invite not found"),
            (ErrorCode::InviteRevoked, "Invite not found"),
            (ErrorCode::AlreadyMember, "Already a member of this server"),
            (ErrorCode::Banned, "You are banned from this server"),
            (ErrorCode::InviteNotForYou, "This invite is for someone else"),
            (ErrorCode::InvitesPaused, "Invites to this server are paused"),
            (ErrorCode::InviteExpired, "This invite has expired"),
            (ErrorCode::InviteMaxedOut, "This invite has reached its maximum uses"),
            (ErrorCode::ServerNotFound, "Server not found"),
            (ErrorCode::MaxInvitesReached, "Maximum number of active invites reached (1000)"),
            (ErrorCode::UnknownChannel, "Unknown channel"),
        ];
        for (code, message) in expected {
            assert_eq!(Problem::of(code).message, message, "{code}");
        }
    }

    #[test]
    fn a_specific_message_keeps_the_code() {
        let problem = Problem::validation("max_uses must be greater than 0");
        assert_eq!(problem.code, ErrorCode::ValidationError);
        assert_eq!(problem.to_string(), "VALIDATION_ERROR: max_uses must be greater than 0");
    }
}
