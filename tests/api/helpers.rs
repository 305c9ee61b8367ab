//! `TestApp`: the real server, on port 0, over a database of its own, spoken to over HTTP.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use invite_core::clock::OffsetClock;
use invite_http::server::random::{RandomFactory, os_random};
use invite_http::testing::TestServer;
use invite_store::testing::TestDatabase;
use invite_store::{DbConnection, DbPool};
use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use uuid::Uuid;

pub(crate) use invite_http::testing::SECRET;

/// Declares tests once and runs each on SQLite and on PostgreSQL, as `sqlite::name` and
/// `postgres::name`. After a `;`, the names of tests taking a [`invite_store::Backend`], for
/// tests that start their application with settings of their own.
macro_rules! both_backends {
    ($(fn $name:ident($app:ident: &TestApp) $body:block)* $(; $($by_backend:ident),+ $(,)?)?) => {
        $(fn $name($app: &TestApp) $body)*

        mod postgres {
            $(#[test] fn $name() {
                super::$name(&$crate::helpers::TestApp::spawn(invite_store::Backend::Postgres))
            })*
            $($(#[test] fn $by_backend() { super::$by_backend(invite_store::Backend::Postgres) })+)?
        }

        mod sqlite {
            $(#[test] fn $name() {
                super::$name(&$crate::helpers::TestApp::spawn(invite_store::Backend::Sqlite))
            })*
            $($(#[test] fn $by_backend() { super::$by_backend(invite_store::Backend::Sqlite) })+)?
        }
    };
}
pub(crate) use both_backends;

/// Runs tests taking a [`invite_store::Backend`] on SQLite and on PostgreSQL.
pub(crate) use invite_store::on_both_backends;

/// A user with a token.
#[derive(Debug, Clone)]
pub(crate) struct TestUser {
    pub(crate) id: Uuid,
    pub(crate) token: String,
}

/// What the server answered.
#[derive(Debug)]
pub(crate) struct TestResponse {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl TestResponse {
    /// Asserts an error response: status, code and message.
    #[track_caller]
    pub(crate) fn assert_error(&self, status: u16, code: &str, message: &str) {
        assert_eq!(
            (self.status, self.body["code"].as_str(), self.body["error"].as_str()),
            (status, Some(code), Some(message)),
            "{}",
            self.text
        );
        self.assert_json();
    }

    /// Asserts an error response with the code, whatever the message.
    #[track_caller]
    pub(crate) fn assert_code(&self, status: u16, code: &str) {
        assert_error_body((self.status, &self.body, &self.text), status, code);
        self.assert_json();
    }

    #[track_caller]
    pub(crate) fn assert_status(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.text);
    }

    #[track_caller]
    pub(crate) fn assert_json(&self) {
        let content_type =
            self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "content-type {content_type:?}: {}",
            self.text
        );
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A response read off a raw connection.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    /// Header lines, names lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl RawResponse {
    fn parse(received: &[u8]) -> Self {
        let text = String::from_utf8_lossy(received).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let body = serde_json::from_str(body).unwrap_or(Value::Null);
        Self { status, headers, body, text: text.clone() }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    #[track_caller]
    pub(crate) fn assert_status_is(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.text);
    }

    /// Asserts a JSON error with this status and code.
    #[track_caller]
    pub(crate) fn assert_json_error(&self, status: u16, code: &str) {
        assert_error_body((self.status, &self.body, &self.text), status, code);
        assert_eq!(self.header("content-type"), Some("application/json"), "{}", self.text);
    }
}

/// Asserts that an answer, `(status, body, text)`, is an error with this status and code,
/// whatever its message.
#[track_caller]
fn assert_error_body((status, body, text): (u16, &Value, &str), expected: u16, code: &str) {
    assert_eq!((status, body["code"].as_str()), (expected, Some(code)), "{text}");
    assert!(body["error"].is_string(), "{text}");
}

pub(crate) struct TestApp {
    pub(crate) base: String,
    pub(crate) clock: Arc<OffsetClock>,
    client: Client,
    // Stopped before the database is dropped: fields drop in declaration order.
    server: TestServer,
    /// `None` for an app pointed at a database that is not there.
    db: Option<TestDatabase>,
}

impl TestApp {
    pub(crate) fn spawn(backend: invite_store::Backend) -> Self {
        Self::spawn_with(TestDatabase::new(backend), os_random())
    }

    /// The real application with these extra command-line settings (rate limits are off unless
    /// they turn them on: most tests send bursts).
    pub(crate) fn spawn_args(backend: invite_store::Backend, args: &[&str]) -> Self {
        let db = TestDatabase::new(backend);
        let pool = db.pool().clone();
        Self::spawn_full(pool, Some(db), os_random(), args)
    }

    /// The real application, with the given database and random source, on port 0.
    pub(crate) fn spawn_with(db: TestDatabase, random: RandomFactory) -> Self {
        let pool = db.pool().clone();
        Self::spawn_on(pool, Some(db), random)
    }

    /// The real application over `db`, with these extra command-line settings.
    pub(crate) fn spawn_on_db(db: TestDatabase, args: &[&str]) -> Self {
        let pool = db.pool().clone();
        Self::spawn_full(pool, Some(db), os_random(), args)
    }

    /// The application over `pool`, which may point at a database that refuses connections.
    pub(crate) fn spawn_on(pool: DbPool, db: Option<TestDatabase>, random: RandomFactory) -> Self {
        Self::spawn_full(pool, db, random, &[])
    }

    fn spawn_full(
        pool: DbPool,
        db: Option<TestDatabase>,
        random: RandomFactory,
        args: &[&str],
    ) -> Self {
        let server = TestServer::start(pool, random, args);
        // Idle connections are dropped well before the server's keep-alive (5 s) closes them:
        // a request sent on a connection the server is closing fails as an incomplete message,
        // which a test that waits a few seconds between requests (webhook retries) would hit.
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        Self { base: server.base.clone(), clock: server.clock.clone(), client, server, db }
    }

    /// Stops this instance gracefully and starts another over the same database, with these
    /// settings: a deploy, as the database sees it.
    pub(crate) fn restart(self, args: &[&str]) -> TestApp {
        let TestApp { server, db, client, .. } = self;
        // Its idle keep-alive connections closed first, so the stop is not kept waiting.
        drop(client);
        drop(server);
        let db = db.expect("this app has a database");
        let pool = db.pool().clone();
        Self::spawn_full(pool, Some(db), os_random(), args)
    }

    /// A second instance of the service over the same database, as another process sharing it
    /// would be (a pool of its own), with these settings.
    pub(crate) fn second_instance(&self, args: &[&str]) -> TestApp {
        let db = self.db.as_ref().expect("this app has a database");
        let pool = DbPool::new(&invite_store::PoolConfig::new(db.url().clone()));
        Self::spawn_full(pool, None, os_random(), args)
    }

    /// Sends `request` as raw bytes on a connection of its own and returns everything the
    /// service sent back until it closed the connection (or 15 s passed).
    pub(crate) fn raw_tcp(&self, request: &[u8]) -> RawResponse {
        use std::io::{Read, Write};
        let address = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        stream.write_all(request).unwrap();
        let mut received = Vec::new();
        let _ = stream.read_to_end(&mut received);
        RawResponse::parse(&received)
    }

    pub(crate) fn user(&self) -> TestUser {
        self.user_named(None)
    }

    pub(crate) fn user_named(&self, username: Option<&str>) -> TestUser {
        let id = Uuid::now_v7();
        TestUser { id, token: self.server.token(id, username) }
    }

    /// The invite page's form token for `session` and `code`, as the page would make it now.
    pub(crate) fn page_form_token(&self, session: &str, code: &str) -> String {
        self.server.page_form_token(session, code)
    }

    /// A token for `user` that expires after `ttl`.
    pub(crate) fn token_for(&self, user: Uuid, ttl: Duration) -> String {
        self.server.auth.mint_for(user, None, ttl).expect("test servers can mint")
    }

    /// A connection of the test's own, to check what the database holds.
    pub(crate) fn conn(&self) -> DbConnection {
        self.db.as_ref().expect("this app has a database").connect()
    }

    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        user: Option<&TestUser>,
        body: Option<&Value>,
    ) -> TestResponse {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(user) = user {
            request = request.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::read(request.send().unwrap())
    }

    /// A request built by hand, for malformed input.
    pub(crate) fn raw(
        &self,
        build: impl FnOnce(&Client, &str) -> reqwest::blocking::RequestBuilder,
    ) -> TestResponse {
        Self::read(build(&self.client, &self.base).send().unwrap())
    }

    fn read(response: reqwest::blocking::Response) -> TestResponse {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        TestResponse { status, headers, body, text }
    }

    pub(crate) fn get(&self, path: &str, user: &TestUser) -> TestResponse {
        self.request(Method::GET, path, Some(user), None)
    }

    pub(crate) fn post(&self, path: &str, user: &TestUser, body: Value) -> TestResponse {
        self.request(Method::POST, path, Some(user), Some(&body))
    }

    pub(crate) fn patch(&self, path: &str, user: &TestUser, body: Value) -> TestResponse {
        self.request(Method::PATCH, path, Some(user), Some(&body))
    }

    pub(crate) fn put(&self, path: &str, user: &TestUser, body: Value) -> TestResponse {
        self.request(Method::PUT, path, Some(user), Some(&body))
    }

    pub(crate) fn delete(&self, path: &str, user: &TestUser) -> TestResponse {
        self.request(Method::DELETE, path, Some(user), None)
    }

    /// The invite's `uses`, as the database holds it.
    pub(crate) fn uses(&self, invite: &Value) -> i64 {
        let id = invite["id"].as_str().unwrap().parse().unwrap();
        self.conn().find_invite(id).unwrap().unwrap().uses
    }

    /// `POST /servers`; returns the server.
    pub(crate) fn create_server(&self, owner: &TestUser) -> Value {
        let response = self.post("/servers", owner, json!({ "name": "Test server" }));
        response.assert_status(201);
        response.body
    }

    /// `POST /servers/{id}/invites`; returns the invite.
    pub(crate) fn create_invite(&self, server: &Value, creator: &TestUser, body: Value) -> Value {
        let response = self.post(
            &format!("/servers/{}/invites", server["id"].as_str().unwrap()),
            creator,
            body,
        );
        response.assert_status(201);
        response.body
    }

    /// A new user and the server they own: where most tests start.
    pub(crate) fn owned_server(&self) -> (TestUser, Value) {
        let owner = self.user();
        let server = self.create_server(&owner);
        (owner, server)
    }

    /// A new user, the server they own, and an invite of theirs made with `body`.
    pub(crate) fn server_with_invite(&self, body: Value) -> (TestUser, Value, Value) {
        let (owner, server) = self.owned_server();
        let invite = self.create_invite(&server, &owner, body);
        (owner, server, invite)
    }

    pub(crate) fn accept(&self, invite: &Value, user: &TestUser) -> TestResponse {
        self.request(
            Method::POST,
            &format!("/invites/{}/accept", invite["code"].as_str().unwrap()),
            Some(user),
            None,
        )
    }

    /// A new user who joined the server through a fresh invite of its owner.
    pub(crate) fn member(&self, server: &Value, owner: &TestUser) -> TestUser {
        let invite = self.create_invite(server, owner, json!({}));
        let user = self.user();
        self.accept(&invite, &user).assert_status(201);
        user
    }

    /// A new member given extra `permissions` by the owner.
    pub(crate) fn member_with(
        &self,
        server: &Value,
        owner: &TestUser,
        permissions: i64,
    ) -> TestUser {
        let user = self.member(server, owner);
        self.grant(server, owner, &user, permissions);
        user
    }

    /// The JSON array `GET path` answers `user` with, asserting the 200.
    pub(crate) fn list(&self, path: &str, user: &TestUser) -> Vec<Value> {
        let response = self.get(path, user);
        response.assert_status(200);
        response.body.as_array().unwrap().clone()
    }

    /// The server's events, oldest first (up to 1000), as `reader` sees them.
    pub(crate) fn events(&self, server: &Value, reader: &TestUser) -> Vec<Value> {
        self.list(&format!("/servers/{}/events?limit=1000", server_id(server)), reader)
    }

    /// The server's audit log, newest first (up to 100), as `reader` sees it.
    pub(crate) fn audit_log(&self, server: &Value, reader: &TestUser) -> Vec<Value> {
        self.list(&format!("/servers/{}/audit-log?limit=100", server_id(server)), reader)
    }

    /// Gives `user` extra permissions, as the owner.
    pub(crate) fn grant(
        &self,
        server: &Value,
        owner: &TestUser,
        user: &TestUser,
        permissions: i64,
    ) {
        let path = format!("/servers/{}/members/{}", server["id"].as_str().unwrap(), user.id);
        self.patch(&path, owner, json!({ "permissions": permissions })).assert_status(200);
    }
}

pub(crate) fn server_id(server: &Value) -> &str {
    server["id"].as_str().unwrap()
}

/// Permission bits, as the contract numbers them.
pub(crate) mod bits {
    pub(crate) const KICK_MEMBERS: i64 = 1 << 8;
    pub(crate) const BAN_MEMBERS: i64 = 1 << 9;
    pub(crate) const MANAGE_CHANNELS: i64 = 1 << 10;
    pub(crate) const MANAGE_SERVER: i64 = 1 << 12;
    pub(crate) const ADMINISTRATOR: i64 = 1 << 13;
    pub(crate) const CREATE_INVITES: i64 = 1 << 14;
}

/// Sends `send(item)` for every item at once, each from a thread of its own, all released
/// together; the answers (status and body) in the items' order.
pub(crate) fn at_once<T: Sync>(
    items: &[T],
    send: impl Fn(&T) -> TestResponse + Sync,
) -> Vec<(u16, Value)> {
    let barrier = Barrier::new(items.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .iter()
            .map(|item| {
                let (barrier, send) = (&barrier, &send);
                scope.spawn(move || {
                    barrier.wait();
                    let response = send(item);
                    (response.status, response.body)
                })
            })
            .collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    })
}

/// How long until `done` holds, polled every 10 ms; fails the test after 10 s. For what the
/// service does after answering (another instance following, a log written after a delivery).
pub(crate) fn until(mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "never happened");
        std::thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}
