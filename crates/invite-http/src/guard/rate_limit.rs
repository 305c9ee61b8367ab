//! The rate limits' side of HTTP: where a request stands with its bucket is recorded in the
//! request's extensions, and the [`headers`] middleware then puts `X-RateLimit-*` on whatever
//! the response is (Discord's headers), a 429 or not. The buckets themselves are
//! `invite_runtime::rate_limit`.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use invite_runtime::rate_limit::BucketState;

/// Records where the request stands with `state`'s bucket, for the headers of its response.
pub(crate) fn record(req: &HttpRequest, state: BucketState) {
    req.extensions_mut().insert(state);
}

/// Puts `X-RateLimit-Limit`, `-Remaining`, `-Reset-After` (seconds, to the millisecond) and
/// `-Bucket` on every response whose request met a bucket.
pub(crate) async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let state = response.request().extensions().get::<BucketState>().copied();
    if let Some(state) = state {
        let headers = response.headers_mut();
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        put("x-ratelimit-limit", state.limit.to_string());
        put("x-ratelimit-remaining", state.remaining.to_string());
        put("x-ratelimit-reset-after", seconds(state.reset_after));
        put("x-ratelimit-bucket", state.bucket.name().to_owned());
    }
    Ok(response)
}

/// Seconds with millisecond precision, as Discord writes them (`1.250`).
pub(crate) fn seconds(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}
