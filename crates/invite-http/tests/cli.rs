//! The `invite-server` binary as a user runs it: clear errors, the commands, the demo, and a
//! graceful stop on SIGTERM.
#![expect(
    clippy::unwrap_used,
    reason = "tests panic to fail; allow-unwrap-in-tests misses helpers and macro-declared tests"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use invite_http::guard::auth::Authenticator;

const SECRET: &str = "cli-test-secret-cli-test-secret-0123";

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_invite-server"));
    for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("INVITE_")) {
        command.env_remove(key);
    }
    command.env("INVITE_LOG", "warn");
    command
}

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    binary().args(args).envs(envs.iter().copied()).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("invites.db").display())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A read URL (issue 30) over SQLite, which has no standby: refused before anything is
/// touched, saying why and what to do.
#[test]
fn a_read_url_over_sqlite_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        &["serve", "--database-url", &sqlite_url(&dir)],
        &[
            ("INVITE_JWT_SECRET", SECRET),
            ("INVITE_DATABASE_READ_URL", "postgres://postgres@127.0.0.1:5432/standby"),
        ],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(
            "INVITE_DATABASE_READ_URL needs PostgreSQL: INVITE_DATABASE_URL is a SQLite file"
        ),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
    assert!(!dir.path().join("invites.db").exists(), "the database was touched");
}

#[test]
fn a_missing_secret_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["serve", "--database-url", &sqlite_url(&dir)], &[]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("set INVITE_JWT_SECRET (at least 32 bytes) or INVITE_JWT_PUBLIC_KEY_FILE"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");

    let short = run(&["serve"], &[("INVITE_JWT_SECRET", "short")]);
    assert!(
        stderr(&short).contains("INVITE_JWT_SECRET must be at least 32 bytes (got 5)"),
        "{}",
        stderr(&short)
    );
}

#[test]
fn a_bad_url_and_an_unreachable_database_are_clear_errors() {
    let bad = run(&["serve", "--database-url", "mysql://x"], &[("INVITE_JWT_SECRET", SECRET)]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("unsupported database URL"), "{}", stderr(&bad));

    let started = Instant::now();
    let unreachable = run(
        &[
            "serve",
            "--database-url",
            "postgres://postgres:hunter2@127.0.0.1:1/none",
            "--db-timeout",
            "1s",
        ],
        &[("INVITE_JWT_SECRET", SECRET)],
    );
    assert!(!unreachable.status.success());
    let message = stderr(&unreachable);
    assert!(message.contains("cannot reach the database"), "{message}");
    assert!(!message.contains("hunter2"), "the password must not be printed: {message}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn token_prints_a_token_the_secret_verifies() {
    let user = uuid::Uuid::now_v7();
    let output = run(
        &["token", "--user", &user.to_string(), "--username", "ann", "--ttl", "10m"],
        &[("INVITE_JWT_SECRET", SECRET)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let token = String::from_utf8(output.stdout).unwrap();
    let actor =
        Authenticator::from_secret(SECRET.as_bytes()).unwrap().verify(token.trim()).unwrap();
    assert_eq!((actor.user_id, actor.username.as_deref()), (user, Some("ann")));
}

#[test]
fn check_reports_pending_migrations_until_migrate_runs() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let envs = [("INVITE_JWT_SECRET", SECRET), ("INVITE_DATABASE_URL", url.as_str())];
    let before = run(&["check"], &envs);
    assert!(!before.status.success());
    assert!(
        String::from_utf8_lossy(&before.stdout).contains("migrations: pending"),
        "{}",
        String::from_utf8_lossy(&before.stdout)
    );

    let migrate = run(&["migrate"], &envs);
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    let migrations =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/sqlite"))
            .unwrap()
            .count();
    let applied = String::from_utf8_lossy(&migrate.stdout).into_owned();
    assert!(applied.contains(&format!("applied {migrations} migration(s)")), "{applied}");
    let after = run(&["check"], &envs);
    assert!(after.status.success(), "{}{}", String::from_utf8_lossy(&after.stdout), stderr(&after));
    assert!(String::from_utf8_lossy(&run(&["migrate"], &envs).stdout).contains("up to date"));
}

/// Reads stdout until `marker` appears; returns what was read.
fn read_until(child: &mut Child, marker: &str) -> String {
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    while !seen.contains(marker) {
        let line =
            receiver.recv_timeout(Duration::from_mins(1)).expect("the server printed nothing more");
        seen.push_str(&line);
        seen.push('\n');
    }
    seen
}

fn wait_ready(base: &str) {
    let client = reqwest::blocking::Client::new();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().is_ok_and(|r| r.status().is_success()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{base} never became healthy");
}

#[test]
fn the_demo_prints_what_a_new_user_needs_and_it_works() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = binary()
        .args(["demo", "--database-url", &sqlite_url(&dir), "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let printed = read_until(&mut child, "Ctrl-C stops the demo");
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base);
    let value = |prefix: &str| {
        printed.lines().find_map(|l| l.strip_prefix(prefix)).unwrap().trim().to_owned()
    };
    let guest = value("GUEST=");
    // The page link comes first, and opens the invite page.
    let link = value("Invite link (open it in a browser):");
    assert!(printed.trim_start().starts_with("Invite link"), "{printed}");
    let code = link.rsplit('/').next().unwrap().to_owned();
    let client = reqwest::blocking::Client::new();
    let page = client.get(&link).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().unwrap().contains("alice</bdi> invited you to join"));
    let preview = client.get(format!("{base}/invites/{code}")).send().unwrap();
    assert_eq!(preview.status().as_u16(), 200);
    let accepted =
        client.post(format!("{base}/invites/{code}/accept")).bearer_auth(&guest).send().unwrap();
    assert_eq!(accepted.status().as_u16(), 201);
    assert!(printed.contains(&format!(
        "curl -s -X POST -H \"Authorization: Bearer $GUEST\" {base}/invites/{code}/accept"
    )));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = binary()
        .args([
            "serve",
            "--database-url",
            &sqlite_url(&dir),
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--shutdown-timeout",
            "5s",
        ])
        .env("INVITE_JWT_SECRET", SECRET)
        .spawn()
        .unwrap();
    wait_ready(&format!("http://127.0.0.1:{port}"));
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn malformed_settings_stop_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let cases = [
        ("INVITE_RATE_LIMIT_ACCEPT", "ten per second", "must be <count>/<period>"),
        ("INVITE_RATE_LIMIT_PREVIEW", "0/10s", "must be <count>/<period>"),
        ("INVITE_RATE_LIMITS", "maybe", "must be on or off"),
        ("INVITE_TRUSTED_PROXIES", "10.0.0.0/33", "must be comma-separated CIDRs"),
        ("INVITE_ADMIN_TOKEN", "too-short", "must be at least 32 bytes, got \"9 bytes\""),
        ("INVITE_MAINTENANCE_UNTIL", "tomorrow", "must be an RFC 3339 time"),
        ("INVITE_MAINTENANCE", "sometimes", "must be on or off"),
        ("INVITE_DB_QUEUE_TIMEOUT", "a little", "INVITE_DB_QUEUE_TIMEOUT"),
        ("INVITE_LOGIN_URL", "javascript:alert(1)", "must be an http:// or https:// URL"),
        ("INVITE_SESSION_COOKIE", "my session", "must be a cookie name"),
        ("INVITE_APP_URL", "not a url", "must be a URL"),
    ];
    for (variable, value, expected) in cases {
        let output = run(
            &["serve"],
            &[("INVITE_JWT_SECRET", SECRET), ("INVITE_DATABASE_URL", &url), (variable, value)],
        );
        assert!(!output.status.success(), "{variable}={value} was accepted");
        let message = stderr(&output);
        assert!(message.contains(variable) && message.contains(expected), "{variable}: {message}");
        assert!(!message.contains("panicked"), "{message}");
        // The admin token itself never reaches the message.
        assert!(variable != "INVITE_ADMIN_TOKEN" || !message.contains(value), "{message}");
    }
    // Nothing was started: not even the database file was made.
    assert!(!dir.path().join("invites.db").exists());
}
