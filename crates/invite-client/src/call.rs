//! One call of an endpoint: built by a [`Client`] method, adjusted, then awaited.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use backon::Retryable;
use invite_api::RateLimit;
use reqwest::Method;
use reqwest::header::{self, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::client::{Client, RetryEvent};
use crate::error::ClientError;
use crate::headers::ResponseHeaders;
use crate::request::{PageAfter, PageBefore};
use crate::retry::{RetryPolicy, is_replayable, should_retry};

/// Turns a successful response's headers and body into the call's result.
pub(crate) type Decoder<T> = fn(&ResponseHeaders, &[u8]) -> Result<T, serde_json::Error>;

/// Which token a call carries.
#[derive(Debug, Clone)]
enum Token {
    /// The client's.
    Client,
    /// This one.
    Given(String),
    /// None.
    Without,
}

/// A call of one endpoint, not yet sent.
///
/// `.await` it for the typed result ([`Call::send`]), or [`Call::send_full`] for the result with
/// what the response headers said. Before that, the call can be adjusted: [`Call::token`],
/// [`Call::idempotency_key`], [`Call::if_match`], [`Call::retry_policy`].
#[must_use = "a call does nothing until it is awaited"]
pub struct Call<T> {
    client: Client,
    method: Method,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Result<Vec<u8>, serde_json::Error>>,
    token: Token,
    idempotency_key: Option<String>,
    if_match: Option<i64>,
    retry: Option<RetryPolicy>,
    decode: Decoder<T>,
}

impl<T> std::fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("method", &self.method)
            .field("url", &self.client.url(&self.segments, &self.query).as_str())
            .field("idempotency_key", &self.idempotency_key)
            .field("if_match", &self.if_match)
            .finish_non_exhaustive()
    }
}

/// A successful call's result with what the response said besides its body.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Response<T> {
    /// The result.
    pub value: T,
    /// The HTTP status (201 or 200 for an invite creation with `unique: false`, say).
    pub status: u16,
    /// Whether the service answered with the stored response of an earlier request with the
    /// same idempotency key (`Idempotent-Replayed: true`).
    pub replayed: bool,
    /// The rate-limit headers, when the endpoint is limited.
    pub rate_limit: Option<RateLimit>,
    /// The invite version in the `ETag`, for responses carrying one invite.
    pub version: Option<i64>,
    /// The `Idempotency-Key` the call sent (the same on every attempt), if any.
    pub idempotency_key: Option<String>,
    /// Attempts made, the successful one included.
    pub attempts: u32,
}

impl<T> Call<T> {
    pub(crate) fn new(
        client: &Client,
        method: Method,
        segments: Vec<String>,
        decode: Decoder<T>,
    ) -> Self {
        Self {
            client: client.clone(),
            method,
            segments,
            query: Vec::new(),
            body: None,
            token: Token::Client,
            idempotency_key: None,
            if_match: None,
            retry: None,
            decode,
        }
    }

    /// Sends `body` as JSON.
    pub(crate) fn json(mut self, body: &impl Serialize) -> Self {
        self.body = Some(serde_json::to_vec(body));
        self
    }

    /// Adds a query parameter when `value` is there.
    pub(crate) fn query(mut self, name: &'static str, value: Option<impl ToString>) -> Self {
        if let Some(value) = value {
            self.query.push((name, value.to_string()));
        }
        self
    }

    /// Asks for one page of a list that runs newest first.
    pub(crate) fn page_before(self, page: PageBefore) -> Self {
        self.query("limit", page.limit).query("before", page.before)
    }

    /// Asks for one page of a list ordered by user id.
    pub(crate) fn page_after(self, page: PageAfter) -> Self {
        self.query("limit", page.limit).query("after", page.after)
    }

    /// Calls as the user of this bearer token instead of the client's.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Token::Given(token.into());
        self
    }

    /// Calls without a token, whatever the client has.
    pub fn without_token(mut self) -> Self {
        self.token = Token::Without;
        self
    }

    /// The `Idempotency-Key` to send on every attempt, instead of a fresh random one.
    ///
    /// Every `POST` carries a key anyway (a new UUID per call, unless given here): give your own
    /// to make a call retried across restarts of your program, or across your own retries, land
    /// once. On a `PATCH` (which the service does not deduplicate), a key also tells the client
    /// that repeating the request is harmless, so it is retried after a lost connection.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Makes the change conditional on the invite's version (`If-Match: "<version>"`): the
    /// service refuses with 412 `PRECONDITION_FAILED` if the invite has changed since. The
    /// service checks it on invite edits and revocations.
    pub fn if_match(mut self, version: i64) -> Self {
        self.if_match = Some(version);
        self
    }

    /// Retries this call with `policy` instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
}

impl<T: Send + 'static> Call<T> {
    /// Sends the call (retrying as its policy allows) and returns the typed result.
    pub async fn send(self) -> Result<T, ClientError> {
        self.send_full().await.map(|response| response.value)
    }

    /// Sends the call and returns the result with what the response headers said.
    pub async fn send_full(self) -> Result<Response<T>, ClientError> {
        let Self {
            client,
            method,
            segments,
            query,
            body,
            token,
            idempotency_key,
            if_match,
            retry,
            decode,
        } = self;
        let body = body.transpose().map_err(ClientError::Encode)?;
        let url = client.url(&segments, &query);
        let policy = retry.unwrap_or(client.retry);
        // The key is drawn once per call and sent on every attempt: that pairing is what makes
        // repeating a POST safe.
        let idempotency_key = idempotency_key
            .or_else(|| (method == Method::POST).then(|| Uuid::new_v4().to_string()));
        let replayable = is_replayable(&method, idempotency_key.is_some());
        let token = match token {
            Token::Client => client.token.clone(),
            Token::Given(token) => Some(Arc::from(token)),
            Token::Without => None,
        };
        let started = Instant::now();
        let attempts = AtomicU32::new(0);

        let attempt = {
            let (client, method, url, body) = (&client, &method, &url, &body);
            let (token, key, attempts) = (&token, &idempotency_key, &attempts);
            move || async move {
                attempts.fetch_add(1, Ordering::Relaxed);
                let timeout = policy.attempt_timeout(client.shared.timeout, started.elapsed());
                let mut request =
                    client.shared.http.request(method.clone(), url.clone()).timeout(timeout);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                if let Some(key) = key {
                    request = request.header("idempotency-key", key.as_str());
                }
                if let Some(version) = if_match {
                    request = request.header(header::IF_MATCH, format!("\"{version}\""));
                }
                if let Some(body) = body {
                    request = request
                        .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
                        .body(body.clone());
                }
                let response = request.send().await.map_err(ClientError::Transport)?;
                let status = response.status().as_u16();
                let headers = ResponseHeaders::read(response.headers());
                let bytes = response.bytes().await.map_err(ClientError::Transport)?;
                if !(200..300).contains(&status) {
                    return Err(ClientError::from_response(status, &headers, &bytes));
                }
                let value = decode(&headers, &bytes)
                    .map_err(|source| ClientError::Decode { status, source })?;
                Ok((value, status, headers))
            }
        };

        let (value, status, headers) = attempt
            .retry(policy.backoff())
            .when(|error| should_retry(error, replayable))
            .adjust(|error, backoff| {
                policy.next_delay(backoff, error.retry_after(), started.elapsed())
            })
            .notify(|error, delay| {
                if let Some(hook) = &client.shared.on_retry {
                    let attempt = attempts.load(Ordering::Relaxed);
                    hook(&RetryEvent { attempt, error, delay });
                }
            })
            .await?;
        Ok(Response {
            value,
            status,
            replayed: headers.replayed,
            rate_limit: headers.rate_limit,
            version: headers.version,
            idempotency_key,
            attempts: attempts.load(Ordering::Relaxed),
        })
    }
}

impl<T: Send + 'static> IntoFuture for Call<T> {
    type Output = Result<T, ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// A JSON body.
pub(crate) fn json<T: DeserializeOwned>(
    _: &ResponseHeaders,
    body: &[u8],
) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

/// No body (204).
#[expect(clippy::unnecessary_wraps, reason = "every decoder has the same signature")]
pub(crate) fn nothing(_: &ResponseHeaders, _: &[u8]) -> Result<(), serde_json::Error> {
    Ok(())
}
