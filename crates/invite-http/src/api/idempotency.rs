//! `Idempotency-Key` on POST requests (contract section 6, Stripe's semantics).
//!
//! - The same key from the same user within 24 hours replays the first response (status, body,
//!   `ETag`), marked `Idempotent-Replayed: true`, without doing the work again.
//! - The same key on another request (method, path or body) is 422 `IDEMPOTENCY_KEY_REUSED`.
//! - A request whose twin is still running on this instance is 409 `IDEMPOTENCY_IN_FLIGHT`;
//!   a twin running on another instance meets the record's primary key when it tries to
//!   commit, rolls back, and replays the winner's response.
//! - The record commits in the transaction of the change (on PostgreSQL, the accept's single
//!   statement), so a crash between the commit and the response cannot make a retry do the
//!   work twice or answer differently.
//! - Only responses that changed something (or found it done, `unique: false`) are recorded. A
//!   refusal changed nothing, and answers that say "retry" (429, 503) must not be replayed: a
//!   retry with the same key is decided afresh.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use invite_core::{ErrorCode, Problem};
use invite_runtime::idempotency::{Claimed, InFlight};
use invite_store::repo::{IdempotencyClaim, Keyed, RecordedResponse};
use sha2::{Digest, Sha256};

use crate::api::error::{ApiError, ready_extractor};
use crate::guard::auth::AuthUser;
use crate::guard::body::BufferedBody;

/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";

/// The response header marking a replay.
pub(crate) const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Longest key accepted, in bytes.
pub(crate) const MAX_KEY_LEN: usize = 255;

/// The request's `Idempotency-Key`, checked and claimed, or `None` without one. Extract it
/// after [`AuthUser`]: keys are per user.
#[derive(Debug)]
pub(crate) struct IdempotencyKey(Option<Claimed>);

impl IdempotencyKey {
    /// The claim to hand to the store.
    pub(crate) fn claim(&self) -> Option<IdempotencyClaim> {
        self.0.as_ref().map(|claimed| claimed.claim().clone())
    }
}

ready_extractor!(IdempotencyKey, claim);

fn claim(req: &HttpRequest, payload: &mut Payload) -> Result<IdempotencyKey, ApiError> {
    let Some(value) = req.headers().get(HEADER) else { return Ok(IdempotencyKey(None)) };
    let key = value
        .to_str()
        .ok()
        .filter(|key| (1..=MAX_KEY_LEN).contains(&key.len()))
        .filter(|key| key.bytes().all(|byte| (b' '..=b'~').contains(&byte)))
        .ok_or_else(|| {
            ApiError::from(Problem::validation(
                "Idempotency-Key must be 1 to 255 printable ASCII characters",
            ))
        })?;
    let AuthUser(actor) = AuthUser::from_request(req, payload).into_inner()?;
    let in_flight = req
        .app_data::<web::Data<InFlight>>()
        .ok_or_else(|| ApiError::internal("the in-flight registry is not registered"))?;
    let claim = IdempotencyClaim {
        user_id: actor.user_id,
        key: key.to_owned(),
        fingerprint: fingerprint(req),
    };
    in_flight
        .claim(claim)
        .map(|claimed| IdempotencyKey(Some(claimed)))
        .ok_or_else(|| ApiError::of(ErrorCode::IdempotencyInFlight))
}

/// What makes two requests the same: method, path with query, and body, hashed.
fn fingerprint(req: &HttpRequest) -> String {
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update(b" ");
    hasher.update(req.uri().path_and_query().map_or("", |target| target.as_str()));
    hasher.update(b"\n");
    if let Some(BufferedBody(body)) = req.extensions().get::<BufferedBody>() {
        hasher.update(body);
    }
    hex::encode(hasher.finalize())
}

/// A JSON response as it is sent and recorded.
pub(crate) fn render(
    status: StatusCode,
    body: &impl serde::Serialize,
    etag: Option<i64>,
) -> RecordedResponse {
    RecordedResponse {
        status: status.as_u16(),
        // Serializing the service's own DTOs cannot fail.
        body: serde_json::to_string(body).unwrap_or_default(),
        etag: etag.map(|version| format!("\"{version}\"")),
    }
}

/// The HTTP response for a recorded (or just rendered) one.
pub(crate) fn respond(answer: Keyed<RecordedResponse>) -> HttpResponse {
    let (response, replayed) = match answer {
        Keyed::Fresh(response) => (response, false),
        Keyed::Replay(response) => (response, true),
    };
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut builder = HttpResponse::build(status);
    builder.content_type(HeaderValue::from_static("application/json"));
    if let Some(etag) = response.etag.and_then(|etag| HeaderValue::from_str(&etag).ok()) {
        builder.insert_header((actix_web::http::header::ETAG, etag));
    }
    if replayed {
        builder.insert_header((REPLAYED, HeaderValue::from_static("true")));
    }
    builder.body(response.body)
}

#[cfg(test)]
mod tests {
    use actix_web::http::Method;
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_fingerprint_covers_method_path_and_body() {
        let request = |method: actix_web::http::Method, path: &str, body: &'static [u8]| {
            let req = TestRequest::default().method(method).uri(path).to_http_request();
            req.extensions_mut().insert(BufferedBody(actix_web::web::Bytes::from_static(body)));
            fingerprint(&req)
        };
        let base = request(Method::POST, "/servers/1/invites", b"{}");
        assert_eq!(base, request(Method::POST, "/servers/1/invites", b"{}"));
        assert_ne!(base, request(Method::PUT, "/servers/1/invites", b"{}"));
        assert_ne!(base, request(Method::POST, "/servers/2/invites", b"{}"));
        assert_ne!(base, request(Method::POST, "/servers/1/invites?x=1", b"{}"));
        assert_ne!(base, request(Method::POST, "/servers/1/invites", b"{\"max_uses\":1}"));
        assert_eq!(base.len(), 64);
    }
}
