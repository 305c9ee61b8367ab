//! Two servers for the client to talk to: the real service, started in-process on port 0 over a
//! database of its own (as the service's black-box tests do), and a scripted HTTP server that
//! answers what a test tells it to, for the failures the real one cannot be made to produce.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use invite_client::{Client, CreateServer, RetryPolicy};
use invite_core::clock::OffsetClock;
use invite_http::server::random::os_random;
use invite_http::testing::TestServer;
use invite_store::testing::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// Declares async tests once and runs each on SQLite and on PostgreSQL, as `sqlite::name` and
/// `postgres::name`, each against a server of its own.
macro_rules! both_backends {
    ($(async fn $name:ident($app:ident: &TestApp) $body:block)*) => {
        $(async fn $name($app: &$crate::support::TestApp) $body)*

        $crate::support::both_backends!(@on postgres Postgres $($name)*);
        $crate::support::both_backends!(@on sqlite Sqlite $($name)*);
    };
    // The module of one backend's tests.
    (@on $module:ident $backend:ident $($name:ident)*) => {
        mod $module {
            $(#[tokio::test]
            async fn $name() {
                let app = $crate::support::TestApp::spawn(invite_store::Backend::$backend);
                super::$name(&app).await;
            })*
        }
    };
}
pub(crate) use both_backends;

/// The body creating a server named `name` with the icon at `icon_url`, and the default
/// permissions.
pub(crate) fn with_icon(name: &str, icon_url: &str) -> CreateServer {
    CreateServer { icon_url: Some(icon_url.to_owned()), ..CreateServer::named(name) }
}

/// A user and their token.
#[derive(Debug, Clone)]
pub(crate) struct TestUser {
    pub(crate) id: Uuid,
    pub(crate) token: String,
}

/// The real service, on port 0, over a database of its own.
pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) clock: Arc<OffsetClock>,
    // Stopped before the database is dropped: fields drop in declaration order.
    server: TestServer,
    _db: TestDatabase,
}

impl TestApp {
    pub(crate) fn spawn(backend: invite_store::Backend) -> Self {
        let db = TestDatabase::new(backend);
        // Analytics written and folded often, so a test sees them soon.
        let args = ["--analytics-flush-interval", "100ms"];
        let server = TestServer::start(db.pool().clone(), os_random(), &args);
        Self { base: server.base.clone(), clock: server.clock.clone(), server, _db: db }
    }

    pub(crate) fn user(&self) -> TestUser {
        self.user_named(None)
    }

    pub(crate) fn user_named(&self, username: Option<&str>) -> TestUser {
        let id = Uuid::now_v7();
        TestUser { id, token: self.server.token(id, username) }
    }

    /// A client of this service calling as `user`.
    pub(crate) fn client(&self, user: &TestUser) -> Client {
        self.anonymous().with_token(&user.token)
    }

    /// A client of this service without a token.
    pub(crate) fn anonymous(&self) -> Client {
        Client::new(&self.base).unwrap()
    }
}

/// What the scripted server does with one connection.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Reads the request and writes this raw HTTP response, then closes.
    Respond(String),
    /// Reads the request and closes the connection without a word.
    Close,
    /// Reads the request and never answers (the connection stays open).
    Hang,
}

/// A request as the scripted server received it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    pub(crate) target: String,
    /// Names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    pub(crate) at: Instant,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// An HTTP server answering one connection per step of its script; once the script is done it
/// answers 418, so an extra attempt shows in the test.
pub(crate) struct Scripted {
    pub(crate) base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Scripted {
    pub(crate) async fn start(steps: Vec<Step>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            let mut steps = steps.into_iter();
            // Connections left hanging stay open until the server is dropped.
            let mut hanging = Vec::new();
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let Some(request) = read_request(&mut socket).await else { continue };
                recorded.lock().unwrap().push(request);
                match steps.next() {
                    Some(Step::Respond(raw)) => {
                        let _ = socket.write_all(raw.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    }
                    Some(Step::Close) => drop(socket),
                    Some(Step::Hang) => hanging.push(socket),
                    None => {
                        let raw =
                            respond(418, &[], r#"{"error": "script exhausted", "code": "TEST"}"#);
                        let _ = socket.write_all(raw.as_bytes()).await;
                    }
                }
            }
        });
        Self { base, requests, task }
    }

    /// Every request received so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// A client of this server with a token, quick retries and no jitter (delays exact).
    pub(crate) fn client(&self, policy: RetryPolicy) -> Client {
        Client::builder(&self.base).token("scripted-token").retry_policy(policy).build().unwrap()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request: its head, then as many body bytes as `Content-Length` says.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
    Some(Recorded { method, target, headers, body, at: Instant::now() })
}

/// A raw HTTP/1.1 response with a JSON body; the connection closes after it.
pub(crate) fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> String {
    let mut raw = format!(
        "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        raw.push_str(name);
        raw.push_str(": ");
        raw.push_str(value);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    raw
}

/// The service's error body as a response.
pub(crate) fn error(status: u16, code: &str, message: &str, headers: &[(&str, &str)]) -> Step {
    let body = serde_json::json!({ "error": message, "code": code }).to_string();
    Step::Respond(respond(status, headers, &body))
}

/// Quick retries with exact delays: 10 ms, doubling, 5 s cap, 5 attempts, no deadline.
pub(crate) fn quick() -> RetryPolicy {
    RetryPolicy::default()
        .with_base_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_secs(5))
        .with_max_attempts(5)
        .with_deadline(None)
        .without_jitter()
}
