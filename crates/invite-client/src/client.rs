//! The client: where the service is, who calls it, and how calls retry.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::error::ClientError;
use crate::retry::RetryPolicy;

/// What [`ClientBuilder::on_retry`] is told before each wait.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// Why it failed.
    pub error: &'a ClientError,
    /// How long the client waits before the next attempt.
    pub delay: Duration,
}

type RetryHook = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

/// What every clone of a client shares.
pub(crate) struct Shared {
    pub(crate) http: reqwest::Client,
    pub(crate) base: Url,
    /// The longest one attempt may take.
    pub(crate) timeout: Duration,
    pub(crate) on_retry: Option<RetryHook>,
}

/// A client of the invite service's API.
///
/// Cheap to clone (the connection pool is shared); [`Client::with_token`] makes a client for
/// another user from the same pool. Every endpoint is a method returning a
/// [`Call`](crate::Call): await it for the typed result, or adjust it first (another token, an
/// idempotency key, `If-Match`, a retry policy).
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    pub(crate) token: Option<Arc<str>>,
    pub(crate) retry: RetryPolicy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a credential: say whether there is one, never what it is.
        f.debug_struct("Client")
            .field("base_url", &self.shared.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("retry", &self.retry)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the service at `base_url` (`http://host:port`, or with a path prefix such as
    /// `http://host/invites/`), without a token, with the default [`RetryPolicy`].
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::builder(base_url).build()
    }

    /// A builder for the settings [`Client::new`] leaves at their defaults.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            token: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            http: None,
            on_retry: None,
        }
    }

    /// The same client, calling as the user of this bearer token (a JWT the service accepts).
    #[must_use]
    pub fn with_token(mut self, token: impl AsRef<str>) -> Self {
        self.token = Some(Arc::from(token.as_ref()));
        self
    }

    /// The same client, calling without a token (previews need none).
    #[must_use]
    pub fn without_token(mut self) -> Self {
        self.token = None;
        self
    }

    /// The same client with another retry policy.
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The service's base URL.
    pub fn base_url(&self) -> &Url {
        &self.shared.base
    }

    /// The retry policy calls use unless told otherwise.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// The URL of an endpoint: the base, the path's segments (each percent-encoded: a code
    /// cannot reach another route), and the query.
    pub(crate) fn url(&self, segments: &[String], query: &[(&'static str, String)]) -> Url {
        let mut url = self.shared.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }
}

/// Builds a [`Client`].
#[must_use]
pub struct ClientBuilder {
    base_url: String,
    token: Option<String>,
    retry: RetryPolicy,
    timeout: Duration,
    connect_timeout: Duration,
    http: Option<reqwest::Client>,
    on_retry: Option<RetryHook>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The bearer token calls carry unless told otherwise.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The longest one attempt may take, from sending to the end of the body (default 30 s).
    /// The policy's deadline may cut it shorter.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest making a connection may take (default 5 s). Ignored with
    /// [`ClientBuilder::http_client`], whose own setting applies.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// A `reqwest` client of the caller's (proxies, TLS, a shared pool) instead of a new one.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Called before each wait between attempts: for logs and metrics.
    pub fn on_retry(mut self, hook: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(hook));
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidBaseUrl {
            url: self.base_url.clone(),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(&self.base_url).map_err(|error| invalid(&error.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("the scheme must be http or https"));
        }
        base.set_query(None);
        base.set_fragment(None);
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .user_agent(concat!("invite-client/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(ClientError::Transport)?,
        };
        Ok(Client {
            shared: Arc::new(Shared { http, base, timeout: self.timeout, on_retry: self.on_retry }),
            token: self.token.map(Arc::from),
            retry: self.retry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str, segments: &[&str]) -> String {
        let client = Client::new(base).unwrap();
        let segments: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
        client.url(&segments, &[("limit", "5".to_owned())]).to_string()
    }

    #[test]
    fn paths_go_under_the_base_and_segments_are_encoded() {
        assert_eq!(url("http://h:1", &["invites", "abc"]), "http://h:1/invites/abc?limit=5");
        assert_eq!(url("http://h/api/", &["servers"]), "http://h/api/servers?limit=5");
        assert_eq!(url("http://h/api?x=1#f", &["servers"]), "http://h/api/servers?limit=5");
        assert_eq!(
            url("http://h", &["invites", "../servers?x", "accept"]),
            "http://h/invites/..%2Fservers%3Fx/accept?limit=5"
        );
    }

    #[test]
    fn only_http_base_urls() {
        for bad in ["ftp://h/", "mailto:someone@example.com", "not a url"] {
            assert!(matches!(Client::new(bad), Err(ClientError::InvalidBaseUrl { .. })), "{bad}");
        }
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let client = Client::new("http://h").unwrap().with_token("secret-token");
        assert!(!format!("{client:?}").contains("secret-token"));
        let builder = Client::builder("http://h").token("secret-token");
        assert!(!format!("{builder:?}").contains("secret-token"));
    }
}
