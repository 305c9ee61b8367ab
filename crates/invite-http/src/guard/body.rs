//! Request bodies are read in full, within a deadline, before any handler runs.
//!
//! Without a deadline, a client that declares `Content-Length: 20` and sends one byte holds its
//! connection (and whatever the handler holds) for as long as it likes; two thousand such
//! clients hold two thousand connections. Bodies here are at most 16 KiB, so reading them up
//! front costs nothing worth saving, bounds every request's life, and gives the idempotency
//! fingerprint the exact bytes.

use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpMessage, ResponseError};
use futures_util::StreamExt;
use invite_core::ErrorCode;

use crate::api::error::ApiError;

/// Largest request body accepted, in bytes.
pub(crate) const BODY_LIMIT: usize = 16 * 1024;

/// Reads `payload` to its end: 413 as soon as it grows past [`BODY_LIMIT`], and `broken` (with
/// the cause) when the stream breaks off. A declared length over the limit is refused before
/// this (by [`buffer`]); a streamed body is counted as it arrives.
pub(crate) async fn read_limited(
    payload: &mut Payload,
    broken: ErrorCode,
) -> Result<BytesMut, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::with_message(broken, format!("could not read the body: {error}"))
        })?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(ApiError::of(ErrorCode::PayloadTooLarge));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The body of the request as it arrived (empty when there was none).
#[derive(Debug, Clone)]
pub(crate) struct BufferedBody(pub Bytes);

/// How long a body may take to arrive, from the end of the request's head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimeout(pub Duration);

/// Reads the body (at most [`BODY_LIMIT`] bytes) within the configured [`BodyTimeout`], then
/// hands it on: 413 when it is declared or turns out larger, 408 when it does not arrive in
/// time. Either refusal closes the connection, whose unread rest could not be trusted as the
/// start of the next request.
pub(crate) async fn buffer<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok());
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        return Ok(refuse(req, &ApiError::of(ErrorCode::PayloadTooLarge)));
    }
    if declared.unwrap_or(0) == 0 && !chunked {
        req.extensions_mut().insert(BufferedBody(Bytes::new()));
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let timeout = req.app_data::<BodyTimeout>().map_or(Duration::from_secs(10), |t| t.0);
    let mut payload = req.take_payload();
    let read = read_limited(&mut payload, ErrorCode::MalformedRequest);
    let body = match tokio::time::timeout(timeout, read).await {
        Ok(Ok(body)) => body.freeze(),
        Ok(Err(error)) => return Ok(refuse(req, &error)),
        Err(_) => {
            return Ok(refuse(
                req,
                &ApiError::with_message(
                    ErrorCode::RequestTimeout,
                    "The request body did not arrive in time",
                ),
            ));
        }
    };
    req.extensions_mut().insert(BufferedBody(body.clone()));
    req.set_payload(body.into());
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

fn refuse<B>(req: ServiceRequest, error: &ApiError) -> ServiceResponse<EitherBody<B>> {
    let mut response = error.error_response();
    response.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
    req.into_response(response).map_into_right_body()
}
