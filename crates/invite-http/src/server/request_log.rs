//! What happens around every request, in one middleware:
//!
//! - **The request id**: taken from `x-request-id` when the caller (or a proxy in front) sent a
//!   sane one, a new UUID (version 7) otherwise; echoed in the response and carried by the request's
//!   tracing span, so one id ties the client's report to every log line.
//! - **The log line**: one per request, with its status and duration.
//! - **The metrics**: the request's count and duration, by route pattern, method and status.
//! - **The arrival time**: the request's database deadline counts from it.
//!
//! `tracing-actix-web` does the span and the log line, but its request id is a UUID of its own
//! (an incoming id is not taken, nor echoed), and the metrics by route and the arrival time
//! would still need a middleware of their own.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;
use uuid::Uuid;

use invite_runtime::metrics::Metrics;

/// The header carrying the id both ways.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn incoming(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    // Anything else could forge log lines or bloat them.
    let sane = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    sane.then(|| value.to_owned())
}

/// The middleware (`actix_web::middleware::from_fn(request_log::middleware)`).
pub(crate) async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = incoming(&req).unwrap_or_else(|| Uuid::now_v7().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    // The request's database deadline counts from here.
    let mut response =
        invite_runtime::db::since_arrival(started, next.call(req).instrument(span.clone())).await?;
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    span.in_scope(|| tracing::info!(status, elapsed_ms = elapsed * 1000.0, "request finished"));
    let request = response.request();
    if let Some(metrics) = request.app_data::<web::Data<Metrics>>() {
        let route = request.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        metrics.observe_request(&route, request.method().as_str(), status, elapsed);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}
