//! `TestApp`: the real server, on port 0, over a database of its own, spoken to over HTTP.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use invite_core::clock::OffsetClock;
use invite_http::auth::Authenticator;
use invite_http::db::Db;
use invite_http::startup::{self, ServerOptions};
use invite_http::state::{AppState, RandomFactory, os_random};
use invite_store::testing::TestDatabase;
use invite_store::{DbConnection, DbPool};
use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use uuid::Uuid;

pub(crate) const SECRET: &str = "test-secret-test-secret-test-secret!";

/// Declares tests once and runs each on SQLite and on PostgreSQL, as `sqlite::name` and
/// `postgres::name`.
macro_rules! both_backends {
    ($(fn $name:ident($app:ident: &TestApp) $body:block)*) => {
        $(fn $name($app: &TestApp) $body)*

        mod postgres {
            $(#[test] fn $name() {
                super::$name(&$crate::helpers::TestApp::spawn(invite_store::Backend::Postgres))
            })*
        }

        mod sqlite {
            $(#[test] fn $name() {
                super::$name(&$crate::helpers::TestApp::spawn(invite_store::Backend::Sqlite))
            })*
        }
    };
}
pub(crate) use both_backends;

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
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (status, Some(code)),
            "{}",
            self.text
        );
        assert!(self.body["error"].is_string(), "{}", self.text);
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

pub(crate) struct TestApp {
    pub(crate) base: String,
    /// `None` for an app pointed at a database that is not there.
    db: Option<TestDatabase>,
    pub(crate) clock: Arc<OffsetClock>,
    auth: Authenticator,
    client: Client,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestApp {
    pub(crate) fn spawn(backend: invite_store::Backend) -> Self {
        Self::spawn_with(TestDatabase::new(backend), os_random())
    }

    /// The real application, with the given database and random source, on port 0.
    pub(crate) fn spawn_with(db: TestDatabase, random: RandomFactory) -> Self {
        let pool = db.pool().clone();
        Self::spawn_on(pool, Some(db), random)
    }

    /// The application over `pool`, which may point at a database that refuses connections.
    pub(crate) fn spawn_on(pool: DbPool, db: Option<TestDatabase>, random: RandomFactory) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let auth = Authenticator::from_secret(SECRET.as_bytes()).unwrap();
        let clock = Arc::new(OffsetClock::new());
        let state = AppState {
            db: Db::new(pool),
            auth: Arc::new(auth.clone()),
            clock: clock.clone(),
            random,
            public_url: "https://chat.example".to_owned(),
            metrics: Arc::default(),
            // As in production: the tests see the cache's invalidation at work.
            previews: Arc::new(invite_http::preview_cache::PreviewCache::new(
                10_000,
                Duration::from_secs(30),
            )),
        };
        let options = ServerOptions {
            workers: Some(2),
            shutdown_timeout: Duration::from_secs(5),
            db_pool_size: 8,
        };
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = startup::run(listener, state, options).unwrap();
                sender.send(server.handle()).unwrap();
                server.await.unwrap();
            });
        });
        let handle = receiver.recv().unwrap();
        let client = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { base, db, clock, auth, client, handle, thread: Some(thread) }
    }

    pub(crate) fn user(&self) -> TestUser {
        self.user_named(None)
    }

    pub(crate) fn user_named(&self, username: Option<&str>) -> TestUser {
        let id = Uuid::now_v7();
        let token =
            self.auth.mint_for(id, username.map(str::to_owned), Duration::from_hours(1)).unwrap();
        TestUser { id, token }
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

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server (and release its connections) before the database is dropped.
        let handle = self.handle.clone();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(handle.stop(true));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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
