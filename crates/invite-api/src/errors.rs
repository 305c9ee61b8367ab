//! The bodies of error responses.

use std::borrow::Cow;

use invite_core::ErrorCode;
use serde::{Deserialize, Serialize};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody<'a> {
    /// The human-readable message.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub error: Cow<'a, str>,
    /// The machine-readable code.
    #[cfg_attr(feature = "openapi", schema(schema_with = error_code_schema))]
    pub code: ErrorCode,
}

impl<'a> ErrorBody<'a> {
    /// The body for `code`, with `error` as its message.
    pub fn new(error: impl Into<Cow<'a, str>>, code: ErrorCode) -> Self {
        Self { error: error.into(), code }
    }
}

/// Every code the service answers with, as a string enum.
#[cfg(feature = "openapi")]
fn error_code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
        .description(Some("The machine-readable code"))
        .build()
}

/// The body of a 429: the usual two fields, and Discord's `retry_after` and `global`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RateLimitedBody<'a> {
    /// The human-readable message.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub error: Cow<'a, str>,
    /// `RATE_LIMITED`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "RATE_LIMITED"))]
    pub code: ErrorCode,
    /// Seconds to wait, to the millisecond.
    pub retry_after: f64,
    /// Whether the limit is global rather than this bucket's (always `false`: every bucket is
    /// per user or per address).
    pub global: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn error_bodies_are_the_two_fields_and_the_429_s_four() {
        let body = ErrorBody::new("This invite has expired", ErrorCode::InviteExpired);
        let json = json!({"error": "This invite has expired", "code": "INVITE_EXPIRED"});
        assert_eq!(serde_json::to_value(&body).unwrap(), json);
        assert_eq!(serde_json::from_value::<ErrorBody<'_>>(json).unwrap(), body);

        let limited = RateLimitedBody {
            error: "You are being rate limited".into(),
            code: ErrorCode::RateLimited,
            retry_after: 1.5,
            global: false,
        };
        let json = json!({"error": "You are being rate limited", "code": "RATE_LIMITED",
                          "retry_after": 1.5, "global": false});
        assert_eq!(serde_json::to_value(&limited).unwrap(), json);
        assert_eq!(serde_json::from_value::<RateLimitedBody<'_>>(json).unwrap(), limited);
    }
}
