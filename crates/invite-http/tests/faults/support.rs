//! What the fault tests share: the real binary started and killed, a TCP proxy that can cut the
//! database away, users with tokens, and the invariant check.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use invite_http::guard::auth::Authenticator;
use invite_http::testing::SECRET;
use invite_store::DbConnection;
use serde_json::{Value, json};
use uuid::Uuid;

/// The `invite-server` binary, running.
pub(crate) struct Service {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
}

impl Service {
    /// Starts the binary on `database_url` (port 0, two workers, rate limits off, JSON logs)
    /// with `settings` on top, and waits until it listens.
    pub(crate) fn start(database_url: &str, settings: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_invite-server"));
        // Nothing of the developer's own environment leaks in.
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("INVITE_")) {
            command.env_remove(name);
        }
        command
            .env("INVITE_DATABASE_URL", database_url)
            .env("INVITE_JWT_SECRET", SECRET)
            .env("INVITE_BIND", "127.0.0.1:0")
            .env("INVITE_WORKERS", "2")
            .env("INVITE_RATE_LIMITS", "off")
            .env("INVITE_LOG_FORMAT", "json")
            .env("INVITE_LOG", "warn,invite_http::cli=info")
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent
                    && let Ok(log) = serde_json::from_str::<Value>(&line)
                    && log["message"] == "listening"
                    && let Some(address) = log["address"].as_str()
                {
                    sent = sender.send(Ok(address.to_owned())).is_ok();
                } else if !sent && line.contains("error") {
                    let _ = sender.send(Err(line.clone()));
                }
                // Keep draining, so the service never blocks on a full pipe.
            }
        });
        let address = receiver
            .recv_timeout(Duration::from_mins(1))
            .expect("the service said where it listens")
            .unwrap_or_else(|line| panic!("the service did not start: {line}"));
        Self { child, base: format!("http://{address}") }
    }

    /// The process's id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to finish anything.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM.
    pub(crate) fn terminate(&self) {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to end by itself; its exit status.
    pub(crate) fn wait(mut self, most: Duration) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < most, "the service did not stop within {most:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tokens the service accepts.
pub(crate) fn token(user: Uuid) -> String {
    Authenticator::from_secret(SECRET.as_bytes())
        .unwrap()
        .mint_for(user, None, Duration::from_hours(1))
        .unwrap()
}

/// A blocking client with a short timeout: a hang fails the test instead of stalling it.
pub(crate) fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// The JSON body of the answer to `request`, which the service must answer.
pub(crate) fn json_of(request: reqwest::blocking::RequestBuilder) -> Value {
    request.send().unwrap().json().unwrap()
}

/// A server with `invites` invites of `max_uses` each, created through the API: the server's
/// id, and the codes.
pub(crate) fn seed(base: &str, invites: usize, max_uses: u32) -> (Uuid, Vec<String>) {
    let client = client();
    let owner = token(Uuid::now_v7());
    let server = json_of(
        client.post(format!("{base}/servers")).bearer_auth(&owner).json(&json!({"name": "Faults"})),
    );
    let server_id = server["id"].as_str().unwrap();
    let codes = (0..invites)
        .map(|_| {
            let invite = json_of(
                client
                    .post(format!("{base}/servers/{server_id}/invites"))
                    .bearer_auth(&owner)
                    .json(&json!({"max_uses": max_uses})),
            );
            invite["code"].as_str().unwrap().to_owned()
        })
        .collect();
    (server_id.parse().unwrap(), codes)
}

/// The server's members who joined with an invite (everyone but the owner), by user id.
pub(crate) fn members(conn: &mut DbConnection, server: Uuid) -> std::collections::HashSet<Uuid> {
    let page = invite_core::server::PageLimit::parse(Some(1000), 1000, 1000).unwrap();
    let mut all = std::collections::HashSet::new();
    let mut after = None;
    loop {
        let batch = conn.list_members(server, after, page).unwrap();
        let Some(last) = batch.last() else { return all };
        after = Some(last.user_id);
        all.extend(
            batch
                .iter()
                .filter(|member| member.joined_via_invite_id.is_some())
                .map(|member| member.user_id),
        );
    }
}

/// Asserts every invariant of `invite_store::invariants` holds.
pub(crate) fn assert_invariants(conn: &mut DbConnection) {
    for (name, violations) in invite_store::invariants::violations(conn).unwrap() {
        assert_eq!(violations, 0, "invariant broken: {name}");
    }
}

/// A TCP proxy between the service and PostgreSQL that can break the line three ways:
/// - [`Proxy::cut`]: every connection through it is closed at once, and new ones are closed as
///   soon as they arrive, until [`Proxy::restore`];
/// - [`Proxy::reset`]: every connection through it is reset (RST) at once; new ones go through;
/// - [`Proxy::blackhole`]: nothing passes either way, on open connections or new ones, and
///   nothing is closed either (a network that drops packets), until [`Proxy::restore`].
pub(crate) struct Proxy {
    /// Where it listens.
    pub(crate) port: u16,
    cut: Arc<AtomicBool>,
    breaks: tokio::sync::watch::Sender<Break>,
    paused: tokio::sync::watch::Sender<bool>,
    _runtime: tokio::runtime::Runtime,
}

/// How the proxy last broke its open connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    None,
    /// Closed (FIN), the count telling one break from the next.
    Close(u64),
    /// Reset (RST).
    Reset(u64),
}

/// Copies `from` to `to` until either closes, holding every byte while the line is paused.
async fn pump(
    from: &mut tokio::net::tcp::ReadHalf<'_>,
    to: &mut tokio::net::tcp::WriteHalf<'_>,
    mut paused: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        if paused.wait_for(|paused| !paused).await.is_err() {
            return;
        }
        let Ok(read) = from.read(&mut buffer).await else { return };
        if read == 0 {
            return;
        }
        // Read just before the pause: held until it ends, as a dropped packet is re-sent.
        if paused.wait_for(|paused| !paused).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    pub(crate) fn start(upstream: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let (breaks, _) = tokio::sync::watch::channel(Break::None);
        let (paused, _) = tokio::sync::watch::channel(false);
        let (upstream, is_cut, breaks_tx, paused_tx) =
            (upstream.to_owned(), cut.clone(), breaks.clone(), paused.clone());
        runtime.spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if is_cut.load(Ordering::Acquire) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut broken = breaks_tx.subscribe();
                let paused = paused_tx.subscribe();
                tokio::spawn(async move {
                    // A connection opened into a blackhole waits, unanswered, like the others.
                    if paused.clone().wait_for(|paused| !paused).await.is_err() {
                        return;
                    }
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    broken.mark_unchanged();
                    let how = {
                        let (mut client_read, mut client_write) = client.split();
                        let (mut server_read, mut server_write) = server.split();
                        tokio::select! {
                            () = pump(&mut client_read, &mut server_write, paused.clone()) => Break::None,
                            () = pump(&mut server_read, &mut client_write, paused.clone()) => Break::None,
                            _ = broken.changed() => *broken.borrow(),
                        }
                    };
                    if let Break::Reset(_) = how {
                        let _ = client.set_zero_linger();
                        let _ = server.set_zero_linger();
                    }
                    // Both sockets drop here: each side sees its peer close (or reset),
                    // mid-statement or not.
                });
            }
        });
        Self { port, cut, breaks, paused, _runtime: runtime }
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub(crate) fn cut(&self) {
        self.cut.store(true, Ordering::Release);
        self.breaks.send_modify(|last| *last = Break::Close(Self::count(*last) + 1));
    }

    /// Resets every connection through the proxy; new ones go through.
    pub(crate) fn reset(&self) {
        self.breaks.send_modify(|last| *last = Break::Reset(Self::count(*last) + 1));
    }

    /// Lets nothing through, and closes nothing, until restored.
    pub(crate) fn blackhole(&self) {
        self.paused.send_replace(true);
    }

    /// Lets connections through again (after a cut or a blackhole).
    pub(crate) fn restore(&self) {
        self.cut.store(false, Ordering::Release);
        self.paused.send_replace(false);
    }

    /// An outage of the line: `fault` ([`Proxy::cut`] or [`Proxy::blackhole`]) for `lasting`,
    /// then restored; when it began and when it ended, as `clock` reads them.
    pub(crate) fn outage(
        &self,
        fault: fn(&Self),
        lasting: Duration,
        clock: impl Fn() -> Duration,
    ) -> (Duration, Duration) {
        let began = clock();
        fault(self);
        std::thread::sleep(lasting);
        let ended = clock();
        self.restore();
        (began, ended)
    }

    fn count(last: Break) -> u64 {
        match last {
            Break::None => 0,
            Break::Close(count) | Break::Reset(count) => count,
        }
    }
}
