//! One error type for every handler, rendered as `{"error": message, "code": CODE}`.
//!
//! Each variant has its status spelled out; there is no catch-all arm. A 500 answers with an
//! opaque body and logs the cause; a 503 carries `Retry-After`.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use invite_core::{ErrorCode, Problem};
use invite_store::StoreError;
use serde::Serialize;

use crate::rate_limit::Limited;

/// Seconds a client is asked to wait after a 503 before retrying.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// The human-readable message.
    #[schema(value_type = String)]
    pub error: &'a str,
    /// The machine-readable code.
    #[schema(schema_with = error_code_schema)]
    pub code: ErrorCode,
}

/// Every code the service answers with, as a string enum.
fn error_code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
        .description(Some("The machine-readable code"))
        .build()
}

/// A failure as a handler reports it.
#[derive(Debug)]
pub enum ApiError {
    /// A refusal the core's catalogue describes: its status, code and message are sent as is.
    Problem(Problem),
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
        /// Seconds until the planned end (60 when there is none).
        retry_after: u64,
    },
    /// A bug or a broken dependency: 500 with an opaque body; the cause goes to the log.
    Internal(String),
}

impl ApiError {
    /// A problem with its catalogue status and message.
    pub fn of(code: ErrorCode) -> Self {
        Self::Problem(Problem::of(code))
    }

    /// A problem with a specific message.
    pub fn with_message(
        code: ErrorCode,
        message: impl Into<std::borrow::Cow<'static, str>>,
    ) -> Self {
        Self::Problem(Problem::with_message(code, message))
    }

    /// An internal error with its cause, for the log.
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The machine code the response will carry.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Problem(problem) => problem.code,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Overloaded => ErrorCode::Overloaded,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Maintenance { .. } => ErrorCode::Maintenance,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// Seconds a client should wait before retrying, for the answers that say "retry".
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Unavailable(_) => Some(RETRY_AFTER_SECONDS),
            Self::Overloaded => Some(OVERLOADED_RETRY_AFTER_SECONDS),
            // Whole seconds, rounded up: retrying at the header's word never meets the limit.
            Self::RateLimited(limited) => Some(
                limited.retry_after.as_secs() + u64::from(limited.retry_after.subsec_nanos() > 0),
            ),
            Self::Maintenance { retry_after, .. } => Some(*retry_after),
            Self::Problem(_) | Self::Internal(_) => None,
        }
    }
}

/// Seconds a client is asked to wait after 503 `OVERLOADED`: the queue it met drains in less
/// than `INVITE_DB_QUEUE_TIMEOUT`.
pub const OVERLOADED_RETRY_AFTER_SECONDS: u64 = 1;

/// The body of a 429: the usual two fields, and Discord's `retry_after` and `global`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RateLimitedBody<'a> {
    /// The human-readable message.
    #[schema(value_type = String)]
    pub error: &'a str,
    /// `RATE_LIMITED`.
    #[schema(value_type = String, example = "RATE_LIMITED")]
    pub code: ErrorCode,
    /// Seconds to wait, to the millisecond.
    pub retry_after: f64,
    /// Whether the limit is global rather than this bucket's (always `false`: every bucket is
    /// per user or per address).
    pub global: bool,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Problem(problem) => problem.fmt(f),
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

impl From<StoreError> for ApiError {
    /// Store failures handlers did not translate themselves: refusals pass through, an
    /// unavailable database is a 503, and anything else (including a `NotFound` or a conflict
    /// the handler did not expect) is a bug, so a 500.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Refused(problem) => Self::Problem(problem),
            StoreError::Unavailable(cause) => Self::Unavailable(cause),
            StoreError::NotFound | StoreError::Conflict(_) | StoreError::Database(_) => {
                Self::internal(error)
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Problem(problem) => {
                StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
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
                error: message,
                code: self.code(),
                retry_after: (limited.retry_after.as_secs_f64() * 1000.0).ceil() / 1000.0,
                global: false,
            });
        }
        response.json(ErrorBody { error: message, code: self.code() })
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

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
        let (status, body, retry) = render(ApiError::of(ErrorCode::InviteExpired)).await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            serde_json::json!({"error": "This invite has expired", "code": "INVITE_EXPIRED"})
        );
        assert_eq!(retry, None);
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
        let error = ApiError::from(StoreError::NotFound);
        let (status, body, _) = render(error).await;
        assert_eq!(status, 500);
        assert_eq!(
            body,
            serde_json::json!({"error": "Internal server error", "code": "INTERNAL_ERROR"})
        );
    }
}
