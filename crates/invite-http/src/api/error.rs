//! One error type for every handler, rendered as `{"error": message, "code": CODE}`.
//!
//! Each variant has its status spelled out; there is no catch-all arm. A 500 answers with an
//! opaque body and logs the cause; a 503 carries `Retry-After`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use invite_core::redeem::{PREVIEW_REFUSED_MESSAGE, PreviewRefused};
use invite_core::{ErrorCode, Problem};
use invite_ops::OpError;
use invite_store::StoreError;

use invite_runtime::db::Failure;
use invite_runtime::rate_limit::Limited;

// The bodies every error renders: wire types, defined with the API's others.
pub(crate) use invite_api::{ErrorBody, RateLimitedBody};

/// Seconds a client is asked to wait after a 503 before retrying.
pub(crate) const RETRY_AFTER_SECONDS: u64 = 2;

/// The HTTP status of each code: the one place a refusal becomes a status. A preview's
/// refusals are the exception the contract makes (404 whatever the reason, see
/// [`ApiError::Preview`]).
pub(crate) const fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::ValidationError
        | ErrorCode::InvalidJson
        | ErrorCode::InvalidId
        | ErrorCode::InvalidQuery
        | ErrorCode::UnknownChannel
        | ErrorCode::InviteExpired
        | ErrorCode::InviteMaxedOut
        | ErrorCode::MaxInvitesReached
        | ErrorCode::VanityInvite
        | ErrorCode::MalformedRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::MissingPermission
        | ErrorCode::OwnerImmune
        | ErrorCode::MissingFeature
        | ErrorCode::OwnerOnly
        | ErrorCode::Banned
        | ErrorCode::InviteNotForYou
        | ErrorCode::InvitesPaused => StatusCode::FORBIDDEN,
        ErrorCode::NotFound
        | ErrorCode::ServerNotFound
        | ErrorCode::ChannelNotFound
        | ErrorCode::MemberNotFound
        | ErrorCode::BanNotFound
        | ErrorCode::WebhookNotFound
        | ErrorCode::InviteNotFound
        | ErrorCode::InviteRevoked
        | ErrorCode::JoinRequestNotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::AlreadyMember
        | ErrorCode::VanityTaken
        | ErrorCode::IdempotencyInFlight
        | ErrorCode::JoinRequestNotPending => StatusCode::CONFLICT,
        ErrorCode::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UriTooLong => StatusCode::URI_TOO_LONG,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::RateLimited | ErrorCode::TooManyConnections | ErrorCode::TooManyJoinRequests => {
            StatusCode::TOO_MANY_REQUESTS
        }
        ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ErrorCode::CodeSpaceExhausted | ErrorCode::InternalError => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        ErrorCode::Maintenance | ErrorCode::ServiceUnavailable | ErrorCode::Overloaded => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// A failure as a handler reports it.
#[derive(Debug)]
pub enum ApiError {
    /// A refusal of the rules: its code's status, its code and message.
    Problem(Problem),
    /// An invite that cannot be previewed: 404 "Invite not found or has expired" with the
    /// reason's code, whatever the reason (a preview tells a stranger no more than that).
    Preview(PreviewRefused),
    /// The database is unreachable, overloaded or timed out: 503 with `Retry-After`.
    Unavailable(String),
    /// More work waits for the database than it can serve in time: 503 `OVERLOADED`, refused
    /// at once, with `Retry-After`.
    Overloaded,
    /// A rate-limit bucket is empty: 429 with `Retry-After` and the body's `retry_after`.
    RateLimited(Limited),
    /// Writes are refused during maintenance: 503 `MAINTENANCE` with the operator's message and
    /// `Retry-After` until the planned end.
    Maintenance {
        /// The operator's message, if any.
        message: Option<String>,
        /// Seconds until the planned end, at most 60 (60 when there is none).
        retry_after: u64,
    },
    /// A bug or a broken dependency: 500 with an opaque body; the cause goes to the log.
    Internal(String),
}

impl ApiError {
    /// A problem with its catalogue status and message.
    pub(crate) fn of(code: ErrorCode) -> Self {
        Self::Problem(Problem::of(code))
    }

    /// A problem with a specific message.
    pub(crate) fn with_message(
        code: ErrorCode,
        message: impl Into<std::borrow::Cow<'static, str>>,
    ) -> Self {
        Self::Problem(Problem::with_message(code, message))
    }

    /// An internal error with its cause, for the log.
    pub(crate) fn internal(cause: impl fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The machine code the response will carry.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::Problem(problem) => problem.code,
            Self::Preview(refused) => refused.code(),
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Overloaded => ErrorCode::Overloaded,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Maintenance { .. } => ErrorCode::Maintenance,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// Seconds a client should wait before retrying, for the answers that say "retry".
    pub(crate) fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Unavailable(_) => Some(RETRY_AFTER_SECONDS),
            Self::Overloaded => Some(OVERLOADED_RETRY_AFTER_SECONDS),
            // Whole seconds, rounded up: retrying at the header's word never meets the limit.
            Self::RateLimited(limited) => Some(
                limited.retry_after.as_secs() + u64::from(limited.retry_after.subsec_nanos() > 0),
            ),
            Self::Maintenance { retry_after, .. } => Some(*retry_after),
            Self::Problem(_) | Self::Preview(_) | Self::Internal(_) => None,
        }
    }
}

/// Seconds a client is asked to wait after 503 `OVERLOADED`: a queue is only refused once it
/// is as long as a request's deadline (2 s by default), so a second is about when the work it
/// met is half done; retrying sooner would only meet the same queue.
pub(crate) const OVERLOADED_RETRY_AFTER_SECONDS: u64 = 1;

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Problem(problem) => problem.fmt(f),
            Self::Preview(refused) => write!(f, "preview refused: {}", refused.code()),
            Self::Unavailable(cause) => write!(f, "database unavailable: {cause}"),
            Self::Overloaded => f.write_str("overloaded"),
            Self::RateLimited(limited) => {
                write!(f, "rate limited ({})", limited.state.bucket.name())
            }
            Self::Maintenance { .. } => f.write_str("maintenance"),
            Self::Internal(cause) => write!(f, "internal error: {cause}"),
        }
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self::Problem(problem)
    }
}

impl From<OpError> for ApiError {
    /// An operation's failure: a refusal passes through with its code, an unreachable database
    /// is a 503, and a bug is a 500.
    fn from(error: OpError) -> Self {
        match error {
            OpError::Refused(problem) => Self::Problem(problem),
            OpError::Unavailable(cause) => Self::Unavailable(cause),
            OpError::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<Failure> for ApiError {
    /// The way into the database's failures: overload is refused at once with its own code;
    /// anything else is the operation's.
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Overloaded => Self::Overloaded,
            Failure::Op(error) => error.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    /// A store failure, read as the operations layer reads it.
    fn from(error: StoreError) -> Self {
        OpError::from(error).into()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Problem(problem) => status_of(problem.code),
            Self::Preview(_) => StatusCode::NOT_FOUND,
            Self::Unavailable(_) | Self::Overloaded | Self::Maintenance { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            Self::Problem(problem) => problem.message.as_ref(),
            Self::Preview(_) => PREVIEW_REFUSED_MESSAGE,
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "answering 503: database unavailable");
                ErrorCode::ServiceUnavailable.default_message()
            }
            Self::Maintenance { message: Some(message), .. } => message.as_str(),
            Self::Internal(cause) => {
                tracing::error!(%cause, "answering 500");
                ErrorCode::InternalError.default_message()
            }
            Self::Overloaded | Self::RateLimited(_) | Self::Maintenance { message: None, .. } => {
                self.code().default_message()
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds.max(1))));
        }
        if self.code() == ErrorCode::Unauthorized {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Self::RateLimited(limited) = self {
            return response.json(RateLimitedBody {
                error: message.into(),
                code: self.code(),
                retry_after: (limited.retry_after.as_secs_f64() * 1000.0).ceil() / 1000.0,
                global: false,
            });
        }
        response.json(ErrorBody::new(message, self.code()))
    }
}

/// Shorthand for handler results.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Implements `FromRequest` for an extractor that is ready at once, with nothing to wait for:
/// `$extract`, a function of the request and its payload, makes it or refuses the request.
macro_rules! ready_extractor {
    ($extractor:ty, $extract:path) => {
        impl actix_web::FromRequest for $extractor {
            type Error = $crate::api::error::ApiError;
            type Future = std::future::Ready<Result<Self, Self::Error>>;

            fn from_request(
                req: &actix_web::HttpRequest,
                payload: &mut actix_web::dev::Payload,
            ) -> Self::Future {
                std::future::ready($extract(req, payload))
            }
        }
    };
}

pub(crate) use ready_extractor;

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use serde_json::json;

    use super::*;

    async fn render(error: ApiError) -> (u16, serde_json::Value, Option<String>) {
        let response = error.error_response();
        let status = response.status().as_u16();
        let retry =
            response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
        let body = to_bytes(response.into_body()).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap(), retry)
    }

    #[actix_web::test]
    async fn problems_keep_their_status_code_and_message() {
        let rendered = render(ApiError::of(ErrorCode::InviteExpired)).await;
        let body = json!({"error": "This invite has expired", "code": "INVITE_EXPIRED"});
        assert_eq!(rendered, (400, body, None));
    }

    #[test]
    fn contract_statuses() {
        let expected = [
            (ErrorCode::InviteNotFound, 404),
            (ErrorCode::InviteRevoked, 404),
            (ErrorCode::AlreadyMember, 409),
            (ErrorCode::Banned, 403),
            (ErrorCode::InviteNotForYou, 403),
            (ErrorCode::OwnerOnly, 403),
            (ErrorCode::InvitesPaused, 403),
            (ErrorCode::InviteExpired, 400),
            (ErrorCode::InviteMaxedOut, 400),
            (ErrorCode::ServerNotFound, 404),
            (ErrorCode::MaxInvitesReached, 400),
            (ErrorCode::UnknownChannel, 400),
            (ErrorCode::CodeSpaceExhausted, 500),
            (ErrorCode::VanityTaken, 409),
            (ErrorCode::PreconditionFailed, 412),
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::ServiceUnavailable, 503),
            (ErrorCode::Maintenance, 503),
            (ErrorCode::Overloaded, 503),
            (ErrorCode::PayloadTooLarge, 413),
            (ErrorCode::IdempotencyKeyReused, 422),
            (ErrorCode::IdempotencyInFlight, 409),
        ];
        for (code, status) in expected {
            assert_eq!(status_of(code).as_u16(), status, "{code}");
        }
    }

    #[actix_web::test]
    async fn a_preview_refusal_is_404_whatever_its_reason() {
        let (status, body, _) = render(ApiError::Preview(PreviewRefused::Expired)).await;
        let expected =
            json!({"error": "Invite not found or has expired", "code": "INVITE_EXPIRED"});
        assert_eq!((status, body), (404, expected));
    }

    #[actix_web::test]
    async fn unavailable_is_503_with_retry_after_and_no_cause() {
        let error =
            ApiError::from(StoreError::Unavailable("timed out waiting for connection".into()));
        let (status, body, retry) = render(error).await;
        assert_eq!((status, retry.as_deref()), (503, Some("2")));
        assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
        assert!(!body.to_string().contains("timed out"));
    }

    #[actix_web::test]
    async fn internal_errors_never_leak_their_cause() {
        let error = ApiError::from(StoreError::NotFound(invite_store::Entity::Row));
        let (status, body, _) = render(error).await;
        let expected = json!({"error": "Internal server error", "code": "INTERNAL_ERROR"});
        assert_eq!((status, body), (500, expected));
    }
}
