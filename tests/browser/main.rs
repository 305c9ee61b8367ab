//! The invite page in a real browser (contract section 8): Debian's `chromium`, headless, driven
//! through `chromium-driver` (`WebDriver`) with `fantoccini`. Every state is rendered and read as
//! a person reads it (the heading, the counts, the button, the words of each failure), at 360 px
//! and at 1280 px without horizontal scrolling, and checked by axe-core for serious or critical
//! accessibility violations. The form is submitted with a session cookie, and a forged post
//! from another origin is refused. Screenshots of every state are kept in
//! `target/screenshots/` for people to look at.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`) and
//! axe-core (`npm install --prefix target/axe axe-core@4`); `bash .ci/test` installs both. When
//! either is missing the test fails and says so: a skipped browser test would let a broken
//! page pass.
#![expect(
    clippy::unwrap_used,
    reason = "tests panic to fail; allow-unwrap-in-tests misses helpers and macro-declared tests"
)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::cookies::Cookie;
use fantoccini::{Client, ClientBuilder, Locator};
use invite_http::server::random::os_random;
use invite_http::testing::TestServer;
use invite_store::testing::TestDatabase;
use serde_json::{Value, json};
use uuid::Uuid;

const LOGIN: &str = "https://login.example/signin";
const APP: &str = "https://chat.example/channels/{server_id}";
const ADMIN: &str = "admin-token-admin-token-admin-token-0";

/// The repository's root: where `target/` is.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A program by name: `$variable` if set, else found on the `PATH`.
fn program(variable: &str, name: &str) -> PathBuf {
    if let Ok(path) = std::env::var(variable) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "\nThe browser tests need {name}, which is not on the PATH.\n\
                 On Debian: apt-get install chromium chromium-driver (or run `bash .ci/test`, \
                 which installs what is missing), or set {variable} to its path.\n"
            )
        })
}

/// axe-core's script, from its npm package.
fn axe_source() -> String {
    let path = std::env::var("INVITE_AXE_JS")
        .map_or_else(|_| root().join("target/axe/node_modules/axe-core/axe.min.js"), PathBuf::from);
    std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "\nThe browser tests need axe-core at {}: {error}\n\
             Install it with `npm install --prefix target/axe axe-core@4` (or run \
             `bash .ci/test`), or set INVITE_AXE_JS to axe.min.js.\n",
            path.display()
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// chromium-driver on a port of its own, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        let binary = program("INVITE_CHROMEDRIVER", "chromedriver");
        let port = free_port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let chromium = program("INVITE_CHROMIUM", "chromium");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--hide-scrollbars", "--force-device-scale-factor=1", "--window-size=1280,800"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

/// The service, with its API spoken to over HTTP for the fixtures.
struct Service {
    server: TestServer,
    http: reqwest::Client,
    // Dropped after the server: fields drop in declaration order.
    _db: Option<TestDatabase>,
}

impl Service {
    fn start(args: &[&str]) -> Self {
        let db = TestDatabase::sqlite();
        let server = TestServer::start(db.pool().clone(), os_random(), args);
        Self { server, http: reqwest::Client::new(), _db: Some(db) }
    }

    /// A service whose database is a port nothing listens on.
    fn without_database() -> Self {
        let mut config = invite_store::PoolConfig::new(
            invite_store::DatabaseUrl::parse("postgres://postgres@127.0.0.1:1/none").unwrap(),
        );
        config.checkout_timeout = Duration::from_secs(1);
        let server = TestServer::start(invite_store::DbPool::new(&config), os_random(), &[]);
        Self { server, http: reqwest::Client::new(), _db: None }
    }

    fn user(&self, name: &str) -> (Uuid, String) {
        let id = Uuid::now_v7();
        (id, self.server.token(id, Some(name)))
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Value) -> Value {
        let mut request =
            self.http.request(method, format!("{}{path}", self.server.base)).bearer_auth(token);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn invite(&self, server: &str, owner: &str, body: Value) -> String {
        let invite = self
            .call(reqwest::Method::POST, &format!("/servers/{server}/invites"), owner, body)
            .await;
        invite["code"].as_str().unwrap().to_owned()
    }

    async fn accept(&self, code: &str, token: &str) {
        self.call(reqwest::Method::POST, &format!("/invites/{code}/accept"), token, json!(null))
            .await;
    }
}

/// What a person sees of a page, checked and kept.
struct Look<'a> {
    client: &'a Client,
    axe: &'a str,
    screenshots: PathBuf,
}

impl Look<'_> {
    /// Signs in as `token` (the session cookie on the service's host), or out.
    async fn session(&self, base: &str, token: Option<&str>) {
        self.client.goto(&format!("{base}/healthz")).await.unwrap();
        let _ = self.client.delete_cookie("session").await;
        if let Some(token) = token {
            let mut cookie = Cookie::new("session", token.to_owned());
            cookie.set_path("/");
            cookie.set_domain("127.0.0.1");
            // What browsers give a cookie that names no SameSite (fantoccini's default, None,
            // would need Secure).
            cookie.set_same_site(Some(cookie::SameSite::Lax));
            self.client.add_cookie(cookie).await.unwrap();
        }
    }

    /// Opens `url` and checks the state called `name`: its heading, its words, no horizontal
    /// scroll at 360 and 1280 px, no serious accessibility violation; keeps screenshots.
    async fn check(&self, name: &str, url: &str, heading: &str, words: &[&str]) {
        self.inspect(name, Some(url), heading, words).await;
    }

    /// [`Self::check`] of the page the browser is on (one a form post led to, which cannot be
    /// opened again by its address): at each width the same page is laid out anew.
    async fn check_here(&self, name: &str, heading: &str, words: &[&str]) {
        self.inspect(name, None, heading, words).await;
    }

    async fn inspect(&self, name: &str, url: Option<&str>, heading: &str, words: &[&str]) {
        for width in [360, 1280] {
            self.client.set_window_size(width, 800).await.unwrap();
            if let Some(url) = url {
                self.client.goto(url).await.unwrap();
            }
            let h1 = self.client.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
            assert!(h1.contains(heading), "{name}: heading {h1:?}, wanted {heading:?}");
            let text = self.client.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
            for words in words {
                assert!(text.contains(words), "{name}: {words:?} not in {text:?}");
            }
            let overflow = self
                .client
                .execute("return document.documentElement.scrollWidth - window.innerWidth;", vec![])
                .await
                .unwrap();
            assert!(overflow.as_i64().unwrap() <= 0, "{name} scrolls sideways at {width} px");
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(self.screenshots.join(format!("{name}-{width}.png")), png).unwrap();
        }
        // axe-core is loaded into the page by WebDriver (the page's own CSP allows no script).
        self.client.execute(&format!("{};return true;", self.axe), vec![]).await.unwrap();
        let violations = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document).then(r => done(r.violations\
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                   .map(v => v.id + ': ' + v.help)));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(violations, json!([]), "{name}: axe-core found serious violations");
        println!("{name}: heading {heading:?}, 360 and 1280 px, axe-core: 0 serious or critical");
    }
}

/// A page on another origin (another port of the same host) that posts the accept form to the
/// service on load: what a forger would send.
fn forger(target: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let body = format!(
                "<!doctype html><html lang=\"en\"><title>Win a prize</title>\
                 <form method=\"post\" action=\"{target}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"9999999999.{}\"></form>\
                 <script>document.forms[0].submit()</script></html>",
                "0".repeat(64)
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// The fixtures: one server with an invite in every state, a paused server, and the people.
struct Fixtures {
    alice: String,
    server_id: String,
    valid: String,
    revoked: String,
    used_up: String,
    expired: String,
    paused: String,
    member: String,
    banned: String,
    /// An invite for named users (dave alone), and someone signed in who is not named.
    for_someone: String,
    stranger: String,
}

async fn fixtures(service: &Service) -> Fixtures {
    let (_, alice) = service.user("alice");
    let post = reqwest::Method::POST;
    let server =
        service.call(post.clone(), "/servers", &alice, json!({"name": "Rust Lang Club"})).await;
    let server_id = server["id"].as_str().unwrap().to_owned();
    let valid = service.invite(&server_id, &alice, json!({"max_uses": 10, "max_age": 86400})).await;
    let revoked = service.invite(&server_id, &alice, json!({})).await;
    service
        .call(reqwest::Method::DELETE, &format!("/invites/{revoked}"), &alice, json!(null))
        .await;
    let used_up = service.invite(&server_id, &alice, json!({"max_uses": 1})).await;
    service.accept(&used_up, &service.user("carol").1).await;
    let expired = service.invite(&server_id, &alice, json!({"max_age": 60})).await;
    let (member_id, member) = service.user("dave");
    service.accept(&valid, &member).await;
    let for_someone =
        service.invite(&server_id, &alice, json!({"allowed_user_ids": [member_id]})).await;
    let (_, stranger) = service.user("frank");
    let (banned_id, banned) = service.user("eve");
    service.accept(&service.invite(&server_id, &alice, json!({})).await, &banned).await;
    let ban = format!("/servers/{server_id}/bans/{banned_id}");
    service.call(reqwest::Method::PUT, &ban, &alice, json!({"reason": "spam"})).await;
    let quiet = service.call(post, "/servers", &alice, json!({"name": "Quiet Corner"})).await;
    let quiet_id = quiet["id"].as_str().unwrap().to_owned();
    let paused = service.invite(&quiet_id, &alice, json!({})).await;
    let until = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let pause = format!("/servers/{quiet_id}/invites-pause");
    service.call(reqwest::Method::PUT, &pause, &alice, json!({"until": until})).await;
    // Two minutes on: the invite of 60 seconds has expired.
    service.server.clock.advance(chrono::Duration::seconds(120));
    Fixtures {
        alice,
        server_id,
        valid,
        revoked,
        used_up,
        expired,
        paused,
        member,
        banned,
        for_someone,
        stranger,
    }
}

/// Every state of an invite, as strangers, members and the banned see it.
async fn every_state(look: &Look<'_>, base: &str, f: &Fixtures) {
    let page = |code: &str| format!("{base}/invite/{code}");
    look.session(base, None).await;
    let valid_words = [
        "alice invited you to join",
        "3 members",
        "9 of its uses left",
        "Expires in",
        "Sign in to accept",
    ];
    look.check("valid", &page(&f.valid), "Rust Lang Club", &valid_words).await;
    look.check(
        "short-link",
        &format!("{base}/{}", f.valid),
        "Rust Lang Club",
        &["Sign in to accept"],
    )
    .await;
    look.check("not-found", &page("nosuch99"), "Invite not found", &["case-sensitive"]).await;
    look.check("revoked", &page(&f.revoked), "This invite was revoked", &["new link"]).await;
    look.check(
        "expired",
        &page(&f.expired),
        "This invite has expired",
        &["It stopped working", "minute", "ago"],
    )
    .await;
    look.check("used-up", &page(&f.used_up), "This invite has been used up", &["new link"]).await;
    look.check(
        "paused",
        &page(&f.paused),
        "Joining Quiet Corner is paused",
        &["until", "in 2 hours"],
    )
    .await;
    look.session(base, Some(&f.banned)).await;
    look.check("banned", &page(&f.valid), "You can't join Rust Lang Club", &["banned"]).await;
    look.session(base, Some(&f.stranger)).await;
    look.check(
        "not-for-you",
        &page(&f.for_someone),
        "This invite is for someone else",
        &["your account is not one of them"],
    )
    .await;
    look.session(base, Some(&f.member)).await;
    look.check(
        "already-member",
        &page(&f.valid),
        "You're already in Rust Lang Club",
        &["Open Rust Lang Club"],
    )
    .await;
}

async fn members(service: &Service, f: &Fixtures) -> String {
    let path = format!("/servers/{}/members", f.server_id);
    service.call(reqwest::Method::GET, &path, &f.alice, json!(null)).await.to_string()
}

/// The page's heading once it contains `words`: after a click or a script's submit the browser
/// navigates on its own time, and the page before it (whose elements go stale) may still be
/// there for a moment.
async fn heading_once(client: &Client, words: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(h1) = client.find(Locator::Css("h1")).await
            && let Ok(text) = h1.text().await
            && text.contains(words)
        {
            return text;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no heading with {words:?} came");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The join through the form, as a person clicks it; then a forged post from another origin
/// with a victim's cookie, refused, joining nobody.
async fn the_form(look: &Look<'_>, service: &Service, f: &Fixtures) {
    let client = look.client;
    let base = &service.server.base;
    let page = format!("{base}/invite/{}", f.valid);
    let (visitor_id, visitor) = service.user("frank");
    look.session(base, Some(&visitor)).await;
    look.check("signed-in", &page, "Rust Lang Club", &["Accept invite"]).await;
    client.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    assert_eq!(heading_once(client, "joined").await, "You joined Rust Lang Club");
    let open = client.find(Locator::Css("a.button")).await.unwrap().attr("href").await.unwrap();
    let expected = format!("https://chat.example/channels/{}", f.server_id);
    assert_eq!(open.as_deref(), Some(expected.as_str()));
    let png = client.screenshot().await.unwrap();
    std::fs::write(look.screenshots.join("joined-1280.png"), png).unwrap();
    assert!(members(service, f).await.contains(&visitor_id.to_string()));

    let (victim_id, victim) = service.user("grace");
    look.session(base, Some(&victim)).await;
    client.goto(&forger(page)).await.unwrap();
    assert_eq!(heading_once(client, "refused").await, "This request was refused");
    let png = client.screenshot().await.unwrap();
    std::fs::write(look.screenshots.join("forged-1280.png"), png).unwrap();
    assert!(!members(service, f).await.contains(&victim_id.to_string()));
}

/// The service's own trouble: maintenance (the invite shown without its form, and a form
/// posted meanwhile), a rate limit, the database away.
async fn trouble(look: &Look<'_>, service: &Service, f: &Fixtures) {
    let base = &service.server.base;
    let page = format!("{base}/invite/{}", f.valid);
    // A form on screen when the window starts.
    let (_, visitor) = service.user("heidi");
    look.session(base, Some(&visitor)).await;
    look.client.set_window_size(1280, 800).await.unwrap();
    look.client.goto(&page).await.unwrap();
    let until = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let response = service
        .http
        .put(format!("{base}/admin/maintenance"))
        .bearer_auth(ADMIN)
        .json(&json!({"message": "Moving to a bigger database", "until": until}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let client = look.client;
    client.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    heading_once(client, "Down for maintenance").await;
    let words = ["Moving to a bigger database", "tries again by itself", "service status"];
    look.check_here("maintenance-post", "Down for maintenance", &words).await;
    // The invite itself is still shown, with when joining is back instead of the form.
    look.session(base, None).await;
    let words = [
        "Down for maintenance",
        "Moving to a bigger database",
        "You can accept this invite again in 2 hours",
        "service status",
    ];
    look.check("maintenance", &page, "Rust Lang Club", &words).await;
    let forms = client.find_all(Locator::Css("form")).await.unwrap();
    assert!(forms.is_empty(), "no form during maintenance");

    let limited = Service::start(&["--rate-limits", "on", "--rate-limit-preview", "1/60s"]);
    let (_, owner) = limited.user("alice");
    let server =
        limited.call(reqwest::Method::POST, "/servers", &owner, json!({"name": "Busy"})).await;
    let code = limited.invite(server["id"].as_str().unwrap(), &owner, json!({})).await;
    let page = format!("{}/invite/{code}", limited.server.base);
    // The one preview of the minute, spent before the browser comes.
    limited.http.get(&page).send().await.unwrap();
    look.check("rate-limited", &page, "Too many requests", &["try again"]).await;

    let away = Service::without_database();
    let page = format!("{}/invite/abcd2345", away.server.base);
    let words = ["tries again by itself", "service status"];
    look.check("database-away", &page, "We can't open invites right now", &words).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invite_page_in_chromium() {
    let axe = axe_source();
    let driver = Driver::start();
    let client = browser(&driver).await;
    let screenshots = root().join("target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let look = Look { client: &client, axe: &axe, screenshots: screenshots.clone() };
    let service = Service::start(&["--login-url", LOGIN, "--app-url", APP, "--admin-token", ADMIN]);
    let fixtures = fixtures(&service).await;
    every_state(&look, &service.server.base, &fixtures).await;
    the_form(&look, &service, &fixtures).await;
    trouble(&look, &service, &fixtures).await;
    client.close().await.unwrap();
    println!("screenshots in {}", screenshots.display());
}
