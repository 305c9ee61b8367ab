//! Request extraction that answers every malformed request with the JSON error body: bodies,
//! path ids, query strings, `If-Match`, unknown routes and wrong methods.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::{Payload, ServiceResponse};
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::header::{self, EntityTag, HeaderMap};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::web::{PathConfig, QueryConfig};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use invite_core::{ErrorCode, Problem};
use serde::de::DeserializeOwned;

use crate::api::error::{ApiError, ErrorBody};
use crate::guard::body::read_limited;

/// A JSON request body. An absent or empty body, or a JSON `null`, is read as `{}`, so endpoints
/// whose fields are all optional accept a bare `POST`; a non-empty body must be `application/json` (415
/// otherwise), at most 16 KiB (413) and valid for the type (400 `INVALID_JSON`, with serde's
/// message naming the field).
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json(req.headers());
        let utf8 = declares_utf8(req.headers());
        let mut payload = payload.take();
        Box::pin(async move {
            let body = read_limited(&mut payload, ErrorCode::InvalidJson).await?;
            let text: &[u8] =
                if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
                    b"{}"
                } else if !is_json {
                    return Err(ApiError::of(ErrorCode::UnsupportedMediaType));
                } else if !utf8 {
                    // JSON is UTF-8 (RFC 8259); reading UTF-16 as UTF-8 would garble it silently.
                    return Err(ApiError::with_message(
                        ErrorCode::UnsupportedMediaType,
                        "JSON bodies must be encoded in UTF-8",
                    ));
                } else if body.trim_ascii_start().first() == Some(&b'{') {
                    &body
                } else {
                    // serde would read a struct from an array of its fields in order; every body of
                    // this API is an object, and `[1, 2]` is more likely a mistake than a shorthand.
                    return Err(ApiError::with_message(
                        ErrorCode::InvalidJson,
                        "The body must be a JSON object",
                    ));
                };
            serde_json::from_slice(text).map(JsonBody).map_err(|error| {
                ApiError::with_message(
                    ErrorCode::InvalidJson,
                    format!("Invalid JSON body: {error}"),
                )
            })
        })
    }
}

/// Whether the content type's `charset`, if any, is UTF-8.
fn declares_utf8(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    content_type.split(';').skip(1).all(|parameter| match parameter.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    })
}

/// `application/json`, any `application/*+json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Path segments that fail to parse (a malformed UUID) answer 400 `INVALID_ID`.
pub(crate) fn path_config() -> PathConfig {
    PathConfig::default().error_handler(|error: PathError, _req| {
        let message = match &error {
            PathError::Deserialize(cause) => format!("Invalid id in the path: {cause}"),
            _ => ErrorCode::InvalidId.default_message().to_owned(),
        };
        ApiError::with_message(ErrorCode::InvalidId, message).into()
    })
}

/// Query strings that fail to parse answer 400 `INVALID_QUERY` with serde's message.
pub(crate) fn query_config() -> QueryConfig {
    QueryConfig::default().error_handler(|error: QueryPayloadError, _req| {
        let message = match &error {
            QueryPayloadError::Deserialize(cause) => format!("Invalid query string: {cause}"),
            _ => ErrorCode::InvalidQuery.default_message().to_owned(),
        };
        ApiError::with_message(ErrorCode::InvalidQuery, message).into()
    })
}

/// The version an `If-Match` header asks for: `"3"`, `3` and `W/"3"` all mean version 3; `*`
/// or no header means any. This service's entity tags are always versions, so anything else is
/// answered as malformed (400) rather than as a tag that merely does not match (412).
///
/// The tag is read by actix-web's [`EntityTag`]; the header is not read as the typed
/// [`IfMatch`](header::IfMatch), which skips the items of a list it cannot read (`"3", x` would
/// ask for version 3) and reads a bare `3` as an empty list, where this service answers the
/// first as malformed and takes the second as version 3.
pub(crate) fn if_match(req: &HttpRequest) -> Result<Option<i64>, Problem> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(None);
    }
    let tag = raw.parse::<EntityTag>();
    let version = tag.as_ref().map_or(raw, EntityTag::tag);
    let is_version =
        (1..=18).contains(&version.len()) && version.bytes().all(|b| b.is_ascii_digit());
    match version.parse::<i64>() {
        Ok(version) if is_version => Ok(Some(version)),
        _ => Err(Problem::with_message(
            ErrorCode::ValidationError,
            "If-Match must name a version, such as \"3\", or be *",
        )),
    }
}

/// The `ETag` of an invite version.
pub(crate) fn etag(version: i64) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{version}\""))
}

/// The answer for a path no route matches.
pub(crate) async fn not_found() -> HttpResponse {
    ApiError::of(ErrorCode::NotFound).error_response()
}

/// The answer for a route that exists, with a method it does not take.
pub(crate) async fn method_not_allowed(allowed: impl AsRef<[&'static str]>) -> HttpResponse {
    let mut response = ApiError::of(ErrorCode::MethodNotAllowed).error_response();
    // HEAD works wherever GET does (see `startup::head_as_get`).
    let mut methods = allowed.as_ref().to_vec();
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    if let Ok(value) = header::HeaderValue::from_str(&methods.join(", ")) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The code of a refusal made below the handlers, by its status.
pub(crate) fn refusal_code(status: u16) -> ErrorCode {
    match status {
        400 => ErrorCode::MalformedRequest,
        401..=403 | 406 | 407 | 409..=412 | 416..=430 | 432..=499 => ErrorCode::ValidationError,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        408 => ErrorCode::RequestTimeout,
        413 => ErrorCode::PayloadTooLarge,
        414 => ErrorCode::UriTooLong,
        415 => ErrorCode::UnsupportedMediaType,
        431 => ErrorCode::HeadersTooLarge,
        503 => ErrorCode::ServiceUnavailable,
        _ => ErrorCode::InternalError,
    }
}

/// Last line of defence: an error response produced outside the handlers (by actix itself)
/// that is not JSON gets the JSON body its status calls for.
#[expect(clippy::unnecessary_wraps, reason = "actix-web's error handlers return a `Result`")]
pub(crate) fn json_error_bodies<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        // JSON bodies, and the invite page's HTML, say what went wrong already.
        .is_some_and(|value| {
            value.starts_with("application/json") || value.starts_with("text/html")
        });
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let code = refusal_code(status.as_u16());
    let (req, _) = res.into_parts();
    let response = if code == ErrorCode::ValidationError {
        // The status actix chose (411, ...) says more than a generic 400 would, and its reason
        // phrase is the most precise message there is.
        let message = status.canonical_reason().unwrap_or("The request was refused");
        HttpResponse::build(status).json(ErrorBody::new(message, code))
    } else {
        ApiError::of(code).error_response()
    };
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, response).map_into_right_body()))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    /// What `If-Match: value` says.
    fn if_match_of(value: &str) -> Result<Option<i64>, Problem> {
        if_match(&TestRequest::default().insert_header((header::IF_MATCH, value)).to_http_request())
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(if_match_of("\"3\"").unwrap(), Some(3));
        assert_eq!(if_match_of("3").unwrap(), Some(3));
        assert_eq!(if_match_of("W/\"4\"").unwrap(), Some(4));
        assert_eq!(if_match_of("*").unwrap(), None);
        for malformed in ["", "null", "\"3", "W/3", "3\"\"", "1 2", "\"abc\"", "\"-1\""] {
            assert_eq!(
                if_match_of(malformed).unwrap_err().code,
                ErrorCode::ValidationError,
                "{malformed}"
            );
        }
        assert_eq!(if_match(&TestRequest::default().to_http_request()).unwrap(), None);
    }

    #[test]
    fn if_match_names_one_version_or_is_malformed() {
        assert_eq!(if_match_of(" W/\"12\" ").unwrap(), Some(12));
        // Lists, whole or with an item the typed header would skip, are not one version.
        for malformed in ["\"3\", \"4\"", "\"3\", x", "x, \"3\"", "*, \"3\"", "W/\"\"", "\"\""] {
            assert_eq!(
                if_match_of(malformed).unwrap_err().code,
                ErrorCode::ValidationError,
                "{malformed}"
            );
        }
    }

    /// A request's headers with this `Content-Type`.
    fn content_type(value: &str) -> HeaderMap {
        TestRequest::default()
            .insert_header((header::CONTENT_TYPE, value))
            .to_http_request()
            .headers()
            .clone()
    }

    #[test]
    fn json_content_types() {
        let check = |value: &str| is_json(&content_type(value));
        assert!(check("application/json"));
        assert!(check("application/json; charset=utf-8"));
        assert!(check("Application/JSON"));
        assert!(check("application/merge-patch+json"));
        assert!(!check("text/plain"));
        assert!(!check("application/x-www-form-urlencoded"));
        assert!(!is_json(TestRequest::default().to_http_request().headers()));
    }

    #[test]
    fn charsets_other_than_utf8_are_refused() {
        let check = |value: &str| declares_utf8(&content_type(value));
        assert!(check("application/json"));
        assert!(check("application/json; charset=utf-8"));
        assert!(check("application/json;charset=\"UTF-8\""));
        assert!(!check("application/json; charset=utf-16"));
        assert!(!check("application/json; charset=iso-8859-1"));
    }
}
