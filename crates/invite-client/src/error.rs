//! What can go wrong with a call, and the service's machine-readable error codes.

use std::time::Duration;

use invite_api::RateLimit;
use serde::Deserialize;

use crate::headers::ResponseHeaders;

invite_api::string_enum! {
    /// The service's machine-readable error code (the `code` of its error body).
    ///
    /// Codes this version does not know arrive as [`ErrorCode::Other`], so a server that learns a
    /// new refusal never breaks a client: match the codes you handle and keep a wildcard arm.
    pub enum ErrorCode: invite_api::ErrorCode {
        /// A field of a well-formed request breaks a rule (range, length, format).
        ValidationError => "VALIDATION_ERROR",
        /// The body is not JSON, has an unknown field or a value of the wrong type.
        InvalidJson => "INVALID_JSON",
        /// A path segment that must be a UUID is not one.
        InvalidId => "INVALID_ID",
        /// A query-string parameter is malformed or out of range (or names no row).
        InvalidQuery => "INVALID_QUERY",
        /// The body's content type is not `application/json`.
        UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
        /// The body is larger than the service accepts (16 KiB).
        PayloadTooLarge => "PAYLOAD_TOO_LARGE",
        /// No route matches the path.
        NotFound => "NOT_FOUND",
        /// The route exists but not for this method.
        MethodNotAllowed => "METHOD_NOT_ALLOWED",
        /// The bearer token is missing, malformed, expired or signed with another key.
        Unauthorized => "UNAUTHORIZED",
        /// The server does not exist or the caller is not a member.
        ServerNotFound => "SERVER_NOT_FOUND",
        /// The channel does not exist, or belongs to a server the caller is not in.
        ChannelNotFound => "CHANNEL_NOT_FOUND",
        /// A create request names a channel that is not a channel of the server.
        UnknownChannel => "UNKNOWN_CHANNEL",
        /// The member does not exist in this server.
        MemberNotFound => "MEMBER_NOT_FOUND",
        /// The user is not banned from this server.
        BanNotFound => "BAN_NOT_FOUND",
        /// No webhook has this id in this server.
        WebhookNotFound => "WEBHOOK_NOT_FOUND",
        /// No invite has this code or id.
        InviteNotFound => "INVITE_NOT_FOUND",
        /// The invite existed but was revoked.
        InviteRevoked => "INVITE_REVOKED",
        /// The caller lacks a permission the action needs.
        MissingPermission => "MISSING_PERMISSION",
        /// The server lacks a feature the action needs (`VANITY_URL`).
        MissingFeature => "MISSING_FEATURE",
        /// Only the server owner may do this.
        OwnerOnly => "OWNER_ONLY",
        /// The owner cannot leave, be kicked or be banned.
        OwnerImmune => "OWNER_IMMUNE",
        /// The caller already belongs to the server.
        AlreadyMember => "ALREADY_MEMBER",
        /// The caller is banned from the server.
        Banned => "BANNED",
        /// The server has paused its invites.
        InvitesPaused => "INVITES_PAUSED",
        /// The invite's expiry time has passed.
        InviteExpired => "INVITE_EXPIRED",
        /// The invite has been used as many times as it allows.
        InviteMaxedOut => "INVITE_MAXED_OUT",
        /// The invite is restricted to named users and the caller is not one of them.
        InviteNotForYou => "INVITE_NOT_FOR_YOU",
        /// No join request has this id in this server (or among the caller's own).
        JoinRequestNotFound => "JOIN_REQUEST_NOT_FOUND",
        /// The join request was approved, denied or withdrawn already.
        JoinRequestNotPending => "JOIN_REQUEST_NOT_PENDING",
        /// The server holds the most pending join requests it may (1000).
        TooManyJoinRequests => "TOO_MANY_JOIN_REQUESTS",
        /// The server already holds the maximum number of active invites.
        MaxInvitesReached => "MAX_INVITES_REACHED",
        /// Every attempt to draw an unused invite code collided.
        CodeSpaceExhausted => "CODE_SPACE_EXHAUSTED",
        /// The vanity code belongs to another server or is cooling down after its release.
        VanityTaken => "VANITY_TAKEN",
        /// Vanity invites are managed through the vanity-url endpoints.
        VanityInvite => "VANITY_INVITE",
        /// `If-Match` names a version other than the current one.
        PreconditionFailed => "PRECONDITION_FAILED",
        /// Too many requests: retry after the time given (429).
        RateLimited => "RATE_LIMITED",
        /// The instance is shedding load: retry after the time given (503).
        Overloaded => "OVERLOADED",
        /// The caller's address holds too many connections at once (429).
        TooManyConnections => "TOO_MANY_CONNECTIONS",
        /// The service is in maintenance mode and refuses writes (503).
        Maintenance => "MAINTENANCE",
        /// A dependency (the database) is unavailable: retry later (503).
        ServiceUnavailable => "SERVICE_UNAVAILABLE",
        /// The same `Idempotency-Key` was used with another method, path or body (422).
        IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
        /// A request with the same `Idempotency-Key` is still being processed (409).
        IdempotencyInFlight => "IDEMPOTENCY_IN_FLIGHT",
        /// The request took too long to arrive (408).
        RequestTimeout => "REQUEST_TIMEOUT",
        /// The HTTP request itself is malformed: headers, framing (400).
        MalformedRequest => "MALFORMED_REQUEST",
        /// The request's path and query are too long (414).
        UriTooLong => "URI_TOO_LONG",
        /// The request's headers are too many or too large (431).
        HeadersTooLarge => "HEADERS_TOO_LARGE",
        /// An unexpected failure on the service's side (500).
        InternalError => "INTERNAL_ERROR",
    }
}

/// A failed call.
///
/// [`ClientError::Api`] is the service's own refusal, with its machine code; the other variants
/// say why no usable answer arrived. When retries were made, the error is the last attempt's.
/// Causes are in [`std::error::Error::source`], not repeated in the message: print the chain
/// (anyhow's `{:#}`, say) for the whole story.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with its JSON error body `{"error": ..., "code": ...}`.
    #[error("HTTP {status} {code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The machine-readable code.
        code: ErrorCode,
        /// The human-readable message.
        message: String,
        /// How long the service asked to wait before retrying: the longer of the
        /// `Retry-After` header and, on a 429, the body's `retry_after`.
        retry_after: Option<Duration>,
        /// Whether a 429 is the service's global limit rather than one bucket's.
        global: bool,
        /// The rate-limit headers of the response, when it had them.
        rate_limit: Option<RateLimit>,
    },
    /// An error status whose body is not the service's JSON error (a proxy's page, say).
    #[error("HTTP {status} without the service's error body: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, as text (cut at 1 KiB).
        body: String,
        /// The `Retry-After` header.
        retry_after: Option<Duration>,
    },
    /// No response: the connection could not be made, was closed before the answer, or timed
    /// out; or the answer's body could not be read.
    #[error(transparent)]
    Transport(reqwest::Error),
    /// A successful status whose body does not have the expected shape.
    #[error("could not decode the HTTP {status} response")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// A request body could not be serialized.
    #[error("could not encode the request body")]
    Encode(#[source] serde_json::Error),
    /// The base URL is not an `http` or `https` URL that paths can be added to.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ClientError {
    /// The service's machine code, for [`ClientError::Api`].
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The service's message, for [`ClientError::Api`].
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Api { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The HTTP status, when a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. }
            | Self::Status { status, .. }
            | Self::Decode { status, .. } => Some(*status),
            Self::Transport(error) => error.status().map(|status| status.as_u16()),
            Self::Encode(_) | Self::InvalidBaseUrl { .. } => None,
        }
    }

    /// How long the service asked to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } | Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The rate-limit state the error response reported.
    pub fn rate_limit(&self) -> Option<&RateLimit> {
        match self {
            Self::Api { rate_limit, .. } => rate_limit.as_ref(),
            _ => None,
        }
    }

    /// The error for a response with an error status.
    pub(crate) fn from_response(status: u16, headers: &ResponseHeaders, body: &[u8]) -> Self {
        /// The service's error body; `retry_after` and `global` come with 429s.
        #[derive(Deserialize)]
        struct ErrorBody {
            error: String,
            code: String,
            #[serde(default)]
            retry_after: Option<f64>,
            #[serde(default)]
            global: Option<bool>,
        }

        let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
            let text = String::from_utf8_lossy(body);
            let body = match text.char_indices().nth(1024) {
                Some((cut, _)) => format!("{}...", &text[..cut]),
                None => text.into_owned(),
            };
            return Self::Status { status, body, retry_after: headers.retry_after };
        };
        let from_body = parsed.retry_after.and_then(|seconds| {
            Duration::try_from_secs_f64(seconds).ok().filter(|_| seconds.is_finite())
        });
        Self::Api {
            status,
            code: ErrorCode::from(parsed.code),
            message: parsed.error,
            // The longer of the two: never come back before either says.
            retry_after: headers.retry_after.max(from_body),
            global: parsed.global.unwrap_or(false),
            rate_limit: headers.rate_limit.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_are_kept() {
        assert_eq!(ErrorCode::from("INVITE_EXPIRED"), ErrorCode::InviteExpired);
        assert_eq!(ErrorCode::InviteExpired.to_string(), "INVITE_EXPIRED");
        let new: ErrorCode = serde_json::from_str(r#""SOMETHING_NEW""#).unwrap();
        assert_eq!(new, ErrorCode::Other("SOMETHING_NEW".to_owned()));
        assert!(!new.is_known());
        assert_eq!(serde_json::to_string(&new).unwrap(), r#""SOMETHING_NEW""#);
        assert_eq!(ErrorCode::from("RATE_LIMITED".to_owned()), ErrorCode::RateLimited);
    }

    #[test]
    fn every_code_the_service_defines_is_known() {
        for &code in invite_api::ErrorCode::ALL {
            let known = ErrorCode::from(code);
            assert!(known.is_known() && known.as_str() == code.as_str(), "{code} is unknown");
        }
    }

    #[test]
    fn a_429_body_gives_the_longer_wait_and_the_global_flag() {
        let headers =
            ResponseHeaders { retry_after: Some(Duration::from_secs(1)), ..Default::default() };
        let body = br#"{"error": "slow down", "code": "RATE_LIMITED", "retry_after": 1.5, "global": true}"#;
        let error = ClientError::from_response(429, &headers, body);
        let ClientError::Api { status, code, message, retry_after, global, rate_limit } = error
        else {
            panic!("{error:?}");
        };
        assert_eq!((status, code, message.as_str()), (429, ErrorCode::RateLimited, "slow down"));
        assert_eq!(
            (retry_after, global, rate_limit),
            (Some(Duration::from_millis(1500)), true, None)
        );

        let headers =
            ResponseHeaders { retry_after: Some(Duration::from_secs(3)), ..Default::default() };
        let error = ClientError::from_response(429, &headers, body);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn a_body_that_is_not_the_service_s_is_kept_as_text() {
        let headers = ResponseHeaders::default();
        let error = ClientError::from_response(502, &headers, b"<html>Bad gateway</html>");
        assert!(
            matches!(&error, ClientError::Status { status: 502, body, retry_after: None } if body == "<html>Bad gateway</html>"),
            "{error:?}"
        );
        assert_eq!(error.code(), None);
        let long = "é".repeat(2000);
        let ClientError::Status { body, .. } =
            ClientError::from_response(500, &headers, long.as_bytes())
        else {
            panic!("not a status error");
        };
        assert_eq!(body.chars().count(), 1024 + 3);
    }

    #[test]
    fn a_negative_or_absurd_body_retry_after_is_ignored() {
        let headers = ResponseHeaders::default();
        for body in [
            br#"{"error": "x", "code": "RATE_LIMITED", "retry_after": -1}"#.as_slice(),
            br#"{"error": "x", "code": "RATE_LIMITED", "retry_after": 1e300}"#.as_slice(),
        ] {
            assert_eq!(ClientError::from_response(429, &headers, body).retry_after(), None);
        }
    }
}
