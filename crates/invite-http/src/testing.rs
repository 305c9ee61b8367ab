//! The real service, started in a thread of its own on port 0, for black-box tests (this
//! crate's, the workspace's, the client's). Enabled by the `testing` feature.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use clap::Parser as _;
use invite_core::clock::OffsetClock;
use invite_store::DbPool;

use crate::guard::auth::Authenticator;
use crate::server::config::Cli;
use crate::server::random::RandomFactory;
use crate::server::startup;

/// The HS256 secret test servers verify tokens with.
pub const SECRET: &str = "test-secret-test-secret-test-secret!";

/// A running service.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The service's clock, which tests may move forward.
    pub clock: Arc<OffsetClock>,
    /// Mints tokens the service accepts.
    pub auth: Authenticator,
    handle: ServerHandle,
    gateway: Arc<invite_runtime::gateway::Gateway>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("base", &self.base).finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts the service over `pool` with `random` codes and these command-line settings on top
    /// of the tests' defaults: rate limits off (tests send bursts) and shedding only what cannot
    /// be served within the database deadline (debug builds are far slower than release ones),
    /// unless `args` sets them; two workers; 5 s to stop.
    ///
    /// # Panics
    /// When the settings are invalid or the service cannot start: a test cannot go on then.
    pub fn start(pool: DbPool, random: RandomFactory, args: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("a bound port"));
        let auth = Authenticator::from_secret(SECRET.as_bytes()).expect("a valid secret");
        let clock = Arc::new(OffsetClock::new());
        let mut argv = vec!["invite-server", "--jwt-secret", SECRET];
        if !args.contains(&"--rate-limits") {
            argv.extend(["--rate-limits", "off"]);
        }
        argv.extend(args);
        let config = Cli::try_parse_from(argv).expect("valid test settings").config;
        let (mut service, mut options) = startup::prepare(
            &config,
            pool,
            auth.clone(),
            "https://chat.example".to_owned(),
            clock.clone(),
        )
        .expect("the service starts");
        service.random = random;
        options.workers = Some(2);
        options.shutdown_timeout = Duration::from_secs(5);
        let gateway = Arc::clone(&service.gateway);
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let (door, deliverer) = (service.door.clone(), Arc::clone(&service.deliverer));
                let analytics = Arc::clone(&service.analytics);
                let server = startup::run(listener, service, options).expect("the server runs");
                sender.send(server.handle()).expect("the test waits for the handle");
                let _ = server.await;
                invite_runtime::webhooks::release_leases(&door, &deliverer).await;
                invite_runtime::analytics::finish(&door, &analytics).await;
            });
        });
        let handle = receiver.recv().expect("the server started");
        Self { base, clock, auth, handle, gateway, thread: Some(thread) }
    }

    /// The token the invite page's form would carry for `session` and `code` now: for a post
    /// of a code no page offers a form for (one that does not exist), which anyone holding a
    /// session can compute.
    pub fn page_form_token(&self, session: &str, code: &str) -> String {
        crate::page::form_token(session, code, invite_core::clock::Clock::now(&*self.clock))
    }

    /// A token for `user`, valid for an hour.
    ///
    /// # Panics
    /// Never: test servers hold a secret.
    pub fn token(&self, user: uuid::Uuid, username: Option<&str>) -> String {
        self.auth
            .mint_for(user, username.map(str::to_owned), Duration::from_hours(1))
            .expect("test servers can mint")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Stop the server (and release its connections) before a test drops its database. The
        // test's own runtime may be the current thread's: block on the stop from another one.
        // Gateway sessions are told to resume elsewhere, as a SIGTERM tells them.
        self.gateway.hub.close_all(invite_runtime::gateway::protocol::CloseCode::Restarting);
        let handle = self.handle.clone();
        let stopped = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build()
            {
                runtime.block_on(handle.stop(true));
            }
        })
        .join();
        drop(stopped);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
