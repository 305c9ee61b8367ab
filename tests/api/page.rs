//! The invite page (contract section 8), as a browser gets it over HTTP: every state's status
//! and words, escaping, the headers, the short link, the form's join, its CSRF refusals and the
//! login redirect. The same pages in a real browser are in `tests/browser`.

use invite_store::Backend;
use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::json;

use crate::helpers::{TestApp, TestResponse, TestUser, on_both_backends, server_id};

const LOGIN: &str = "https://login.example/signin";
/// The test servers' `INVITE_PUBLIC_URL`: the origin of the page people open.
const PUBLIC: &str = "https://chat.example";
const ADMIN: &str = "admin-token-admin-token-admin-token-0";
const APP: &str = "https://chat.example/channels/{server_id}?via={code}";

fn page_app(backend: Backend) -> TestApp {
    TestApp::spawn_args(backend, &["--login-url", LOGIN, "--app-url", APP])
}

/// A client that does not follow redirects, so a 303 is seen as it is.
fn browser() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `GET path` as a browser sends it, with the session cookie of `user` if any.
fn open(app: &TestApp, path: &str, user: Option<&TestUser>) -> TestResponse {
    app.raw(|_, base| {
        let mut request = browser()
            .get(format!("{base}{path}"))
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
        if let Some(user) = user {
            request = request.header("cookie", format!("theme=dark; session={}", user.token));
        }
        request
    })
}

/// The invite's page at both its links (`/invite/{code}` and the short `/{code}`), opened by
/// a visitor who is not signed in, each checked to be a page showing `words`.
fn both_links(app: &TestApp, code: &str, words: &[&str]) -> [TestResponse; 2] {
    [format!("/invite/{code}"), format!("/{code}")].map(|path| {
        let page = open(app, &path, None);
        assert_page(&page, 200, words);
        page
    })
}

/// `POST /invite/{code}` as the page's form sends it.
fn submit(
    app: &TestApp,
    code: &str,
    user: Option<&TestUser>,
    origin: &str,
    csrf: &str,
) -> TestResponse {
    submit_with(app, code, user, &[("origin", origin)], csrf)
}

/// `POST /invite/{code}` with these headers (the origin among them).
fn submit_with(
    app: &TestApp,
    code: &str,
    user: Option<&TestUser>,
    headers: &[(&str, &str)],
    csrf: &str,
) -> TestResponse {
    app.raw(|_, base| {
        let mut request = browser()
            .post(format!("{base}/invite/{code}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={}", csrf.replace(':', "%3A")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(user) = user {
            request = request.header("cookie", format!("session={}", user.token));
        }
        request
    })
}

#[track_caller]
fn assert_page(response: &TestResponse, status: u16, words: &[&str]) {
    assert_eq!(response.status, status, "{}", response.text);
    assert_eq!(response.header("content-type"), Some("text/html; charset=utf-8"));
    for words in words {
        assert!(response.text.contains(words), "{words:?} missing from {}", response.text);
    }
    assert!(!response.text.contains("<script"), "{}", response.text);
    let csp = response.header("content-security-policy").unwrap();
    for directive in ["default-src 'none'", "style-src 'sha256-", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("referrer-policy"), Some("same-origin"));
    assert!(response.text.len() < 20 * 1024, "{} bytes", response.text.len());
}

/// The form's CSRF token on a page.
fn csrf_of(page: &TestResponse) -> String {
    let at = page.text.find("name=\"csrf\" value=\"").expect("a form") + 19;
    page.text[at..].split('"').next().unwrap().to_owned()
}

fn code_of(invite: &serde_json::Value) -> &str {
    invite["code"].as_str().unwrap()
}

fn a_valid_invite_reads_without_script(backend: Backend) {
    let app = page_app(backend);
    let owner = app.user_named(Some("Alice"));
    let server = app
        .post("/servers", &owner, json!({"name": "<script>alert(1)</script> \u{202e}evil"}))
        .body;
    let invite = app.create_invite(&server, &owner, json!({"max_uses": 5, "max_age": 3600}));
    let code = code_of(&invite);
    for page in both_links(
        &app,
        code,
        &[
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "<bdi>",
            "Alice</bdi> invited you to join",
            "1 member",
            "5 of its uses left",
            "Expires <time datetime=",
            "in 1 hour",
            "Sign in to accept",
            "https://login.example/signin?next=https%3A%2F%2Fchat.example%2Finvite%2F",
            "property=\"og:title\" content=\"Join &lt;script&gt;",
            "name=\"twitter:card\" content=\"summary\"",
        ],
    ) {
        // The titles hold the name without its bidirectional controls: U+202E cannot turn
        // "Join <name>" around in a tab or in another app's card. The body isolates it.
        let head = &page.text[..page.text.find("</head>").unwrap()];
        assert!(!head.contains('\u{202e}'), "{head}");
        let title = "Join &lt;script&gt;alert(1)&lt;/script&gt; evil";
        for tag in [
            format!("<title>{title}</title>"),
            format!("property=\"og:title\" content=\"{title}\""),
            format!("name=\"twitter:title\" content=\"{title}\""),
        ] {
            assert!(head.contains(&tag), "{tag} missing from {head}");
        }
        assert!(
            page.text.contains("<bdi>&lt;script&gt;alert(1)&lt;/script&gt; \u{202e}evil</bdi>")
        );
        // A stranger's page may be kept by shared caches as long as the preview cache keeps it.
        assert_eq!(page.header("cache-control"), Some("public, max-age=30"));
        assert!(!page.text.contains("<form"), "no form without a session");
    }
    // The routes' own words stay routes.
    app.request(Method::GET, "/healthz", None, None).assert_status(200);
    assert!(app.request(Method::GET, "/openapi.json", None, None).body["openapi"].is_string());
    // An icon becomes the card's image.
    app.patch(
        &format!("/servers/{}", server_id(&server)),
        &owner,
        json!({"icon_url": "https://cdn.example/icon.png"}),
    )
    .assert_status(200);
    let page = open(&app, &format!("/invite/{code}"), None);
    assert_page(
        &page,
        200,
        &[
            "property=\"og:image\" content=\"https://cdn.example/icon.png\"",
            "referrerpolicy=\"no-referrer\"",
        ],
    );
}

fn every_failure_has_its_own_page(backend: Backend) {
    let app = page_app(backend);
    let (owner, server) = app.owned_server();
    let server_path = format!("/servers/{}", server_id(&server));
    // Not found, and codes that cannot be codes: the not-found page, never JSON or a 500.
    let long = "a".repeat(4 * 1024);
    for path in ["/invite/zzzzzzzz", "/zzzzzzzz", "/invite/..%2F..%2Fetc", "/invite/ab%00cd"] {
        assert_page(&open(&app, path, None), 404, &["Invite not found", "case-sensitive"]);
    }
    assert_page(&open(&app, &format!("/invite/{long}"), None), 404, &["Invite not found"]);
    // A whole target over 8 KiB is no link anyone was given: 414 in JSON, as on every route.
    let longer = "a".repeat(9 * 1024);
    for path in [format!("/invite/{longer}"), format!("/{longer}")] {
        let refused = open(&app, &path, None);
        refused.assert_code(414, "URI_TOO_LONG");
    }
    // Revoked.
    let revoked = app.create_invite(&server, &owner, json!({}));
    app.delete(&format!("{server_path}/invites/{}", revoked["id"].as_str().unwrap()), &owner)
        .assert_status(204);
    assert_page(&open(&app, &format!("/invite/{}", code_of(&revoked)), None), 404, &["revoked"]);
    // Used up.
    let single = app.create_invite(&server, &owner, json!({"max_uses": 1}));
    let first = app.user();
    app.accept(&single, &first).assert_status(201);
    assert_page(&open(&app, &format!("/invite/{}", code_of(&single)), None), 410, &["used up"]);
    // The one who used it up is told what the join would tell them: already a member.
    let theirs = open(&app, &format!("/invite/{}", code_of(&single)), Some(&first));
    assert_page(&theirs, 200, &["You're already in"]);
    // Expired, saying when.
    let short = app.create_invite(&server, &owner, json!({"max_age": 60}));
    app.clock.advance(chrono::Duration::seconds(61));
    assert_page(
        &open(&app, &format!("/invite/{}", code_of(&short)), None),
        410,
        &["has expired", "It stopped working <time datetime=", " ago</time>"],
    );
    // Paused, until when.
    let open_invite = app.create_invite(&server, &owner, json!({}));
    let until =
        (invite_core::clock::Clock::now(&*app.clock) + chrono::Duration::hours(2)).to_rfc3339();
    app.put(&format!("{server_path}/invites-pause"), &owner, json!({"until": until}))
        .assert_status(204);
    let paused = open(&app, &format!("/invite/{}", code_of(&open_invite)), None);
    assert_page(&paused, 403, &["is paused", "until <time datetime=", "in 2 hours"]);
    assert_eq!(paused.header("cache-control"), Some("private, no-store"));
}

fn the_form_joins_and_refuses_forgeries(backend: Backend) {
    let app = page_app(backend);
    let (owner, server, invite) = app.server_with_invite(json!({"max_uses": 10}));
    let code = code_of(&invite);
    let visitor = app.user();
    let page = open(&app, &format!("/invite/{code}"), Some(&visitor));
    assert_page(&page, 200, &["<form method=\"post\" action=\"/invite/", "Accept invite"]);
    // It holds the visitor's form token: never in a shared cache.
    assert_eq!(page.header("cache-control"), Some("private, no-store"));
    let csrf = csrf_of(&page);
    // Forgeries change nothing: another site's origin, no token, a token of someone else's
    // session, a token for another code.
    let elsewhere = app.user();
    let theirs = csrf_of(&open(&app, &format!("/invite/{code}"), Some(&elsewhere)));
    let other_invite = app.create_invite(&server, &owner, json!({}));
    let other_code =
        csrf_of(&open(&app, &format!("/invite/{}", code_of(&other_invite)), Some(&visitor)));
    for (origin, token) in [
        ("https://evil.example", csrf.as_str()),
        (PUBLIC, ""),
        (PUBLIC, theirs.as_str()),
        (PUBLIC, other_code.as_str()),
    ] {
        let refused = submit(&app, code, Some(&visitor), origin, token);
        assert_page(&refused, 403, &["This request was refused", "Nothing was changed"]);
    }
    assert_eq!(app.uses(&invite), 0);
    // No session: off to sign in, coming back here.
    let anonymous = submit(&app, code, None, PUBLIC, &csrf);
    assert_eq!(anonymous.status, 303, "{}", anonymous.text);
    let location = anonymous.header("location").unwrap();
    assert!(
        location.starts_with(
            "https://login.example/signin?next=https%3A%2F%2Fchat.example%2Finvite%2F"
        ),
        "{location}"
    );
    // The real post joins, through the same operation as the API.
    let joined = submit(&app, code, Some(&visitor), PUBLIC, &csrf);
    let open_link = format!("https://chat.example/channels/{}?via={code}", server_id(&server));
    assert_page(&joined, 200, &["You joined", &open_link.replace('&', "&amp;")]);
    assert_eq!(app.uses(&invite), 1);
    let members = app.get(&format!("/servers/{}/members", server_id(&server)), &owner);
    assert!(members.text.contains(&visitor.id.to_string()), "{}", members.text);
    // Again: already a member, on the page and through the form, and still one use.
    assert_page(
        &open(&app, &format!("/invite/{code}"), Some(&visitor)),
        200,
        &["You're already in"],
    );
    assert_page(&submit(&app, code, Some(&visitor), PUBLIC, &csrf), 200, &["You're already in"]);
    assert_eq!(app.uses(&invite), 1);
    // A ban is shown to the banned person alone.
    let banned = app.member(&server, &owner);
    app.put(&format!("/servers/{}/bans/{}", server_id(&server), banned.id), &owner, json!({}))
        .assert_status(204);
    assert_page(
        &open(&app, &format!("/invite/{code}"), Some(&banned)),
        403,
        &["You can't join", "banned"],
    );
    let public = open(&app, &format!("/invite/{code}"), None);
    assert_page(&public, 200, &["Sign in to accept"]);
    assert!(!public.text.contains("banned"));
}

fn an_invite_for_named_users_says_so_to_anyone_else_and_never_shows_the_list(backend: Backend) {
    let app = page_app(backend);
    let (listed, stranger) = (app.user(), app.user());
    let (_, _, invite) = app.server_with_invite(json!({"allowed_user_ids": [listed.id]}));
    let code = code_of(&invite);
    let path = format!("/invite/{code}");
    // Signed in as someone else: the state in words, and a 403, whatever the link.
    let refused = open(&app, &path, Some(&stranger));
    assert_page(&refused, 403, &["This invite is for someone else"]);
    assert!(!refused.text.contains("<form"), "{}", refused.text);
    // The one it is for gets the form; a visitor nobody signed in as, the page to sign in.
    assert_page(&open(&app, &path, Some(&listed)), 200, &["Accept invite"]);
    let public = open(&app, &path, None);
    assert_page(&public, 200, &["Sign in to accept"]);
    // Nobody is shown the list, nor told there is one.
    for page in [&refused, &public] {
        assert!(!page.text.contains(&listed.id.to_string()), "{}", page.text);
    }
    assert!(!public.text.contains("someone else"));
    // A post through the form from someone else is refused the same way, and joins nobody.
    let csrf = csrf_of(&open(&app, &path, Some(&listed)));
    let csrf_stranger = app.page_form_token(&stranger.token, code);
    assert_page(
        &submit(&app, code, Some(&stranger), PUBLIC, &csrf_stranger),
        403,
        &["This invite is for someone else"],
    );
    assert_eq!(app.uses(&invite), 0);
    assert_page(&submit(&app, code, Some(&listed), PUBLIC, &csrf), 200, &["You joined"]);
    assert_eq!(app.uses(&invite), 1);
}

fn an_approval_invite_s_form_files_a_request_and_the_page_shows_it_again(backend: Backend) {
    let app = page_app(backend);
    let (owner, server, invite) = app.server_with_invite(json!({"requires_approval": true}));
    let code = code_of(&invite);
    let path = format!("/invite/{code}");
    let visitor = app.user();
    // Whoever looks is told a moderator decides; the form asks to join.
    assert_page(&open(&app, &path, None), 200, &["A moderator approves each request to join"]);
    let page = open(&app, &path, Some(&visitor));
    assert_page(&page, 200, &["A moderator approves each request to join", "Ask to join"]);
    let csrf = csrf_of(&page);
    let sent = submit(&app, code, Some(&visitor), PUBLIC, &csrf);
    assert_page(&sent, 200, &["Your request to join was sent"]);
    assert_eq!(app.uses(&invite), 0);
    let requests = app.get(&format!("/servers/{}/join-requests", server_id(&server)), &owner);
    assert_eq!(requests.body.as_array().unwrap().len(), 1, "{}", requests.text);
    assert_eq!(requests.body[0]["user_id"], json!(visitor.id));
    // The pending request shows again, on the page and through the form, and stays one.
    let again = open(&app, &path, Some(&visitor));
    assert_page(&again, 200, &["Your request to join was sent"]);
    assert!(!again.text.contains("<form"), "{}", again.text);
    assert_page(
        &submit(&app, code, Some(&visitor), PUBLIC, &csrf),
        200,
        &["Your request to join was sent"],
    );
    let requests = app.get(&format!("/servers/{}/join-requests", server_id(&server)), &owner);
    assert_eq!(requests.body.as_array().unwrap().len(), 1);
    // Approved: the visitor is in.
    let approve = format!(
        "/servers/{}/join-requests/{}/approve",
        server_id(&server),
        requests.body[0]["id"].as_str().unwrap()
    );
    app.post(&approve, &owner, json!({})).assert_status(200);
    assert_page(&open(&app, &path, Some(&visitor)), 200, &["You're already in"]);
}

fn a_vanity_code_is_a_short_link_and_routes_stay_routes(backend: Backend) {
    let app = page_app(backend);
    let (owner, server) = app.owned_server();
    let path = format!("/servers/{}", server_id(&server));
    app.patch(&path, &owner, json!({"features": ["VANITY_URL"]})).assert_status(200);
    app.patch(&format!("{path}/vanity-url"), &owner, json!({"code": "join-us"})).assert_status(200);
    for link in ["/join-us", "/invite/join-us"] {
        assert_page(&open(&app, link, None), 200, &["Test server", "Sign in to accept"]);
    }
    // No vanity code can hide a route's page.
    app.patch(&format!("{path}/vanity-url"), &owner, json!({"code": "status"})).assert_error(
        400,
        "VALIDATION_ERROR",
        "this vanity code is reserved",
    );
    assert!(open(&app, "/status", None).text.contains("operational"));
    // Anything else of one segment is the not-found page, charging nothing (`/favicon.ico`).
    assert_page(&open(&app, "/favicon.ico", None), 404, &["Invite not found"]);
}

fn the_origin_is_the_public_urls_unless_a_trusted_proxy_names_another(backend: Backend) {
    let forged = [("origin", "http://forged.example"), ("x-forwarded-host", "forged.example")];
    // Straight from the client: `Host` and `X-Forwarded-Host` are its own words.
    let app = page_app(backend);
    let (_, _, invite) = app.server_with_invite(json!({}));
    let code = code_of(&invite);
    let visitor = app.user();
    let csrf = csrf_of(&open(&app, &format!("/invite/{code}"), Some(&visitor)));
    for headers in [&forged[..], &[("origin", app.base.as_str())]] {
        let refused = submit_with(&app, code, Some(&visitor), headers, &csrf);
        assert_page(&refused, 403, &["This request was refused", "Nothing was changed"]);
    }
    assert_eq!(app.uses(&invite), 0, "nothing joined");
    // Through a trusted proxy: the host it forwarded for is this service's.
    let app = TestApp::spawn_args(backend, &["--trusted-proxies", "127.0.0.1/32"]);
    let (_, _, invite) = app.server_with_invite(json!({}));
    let code = code_of(&invite);
    let csrf = csrf_of(&open(&app, &format!("/invite/{code}"), Some(&visitor)));
    let elsewhere =
        [("origin", "http://elsewhere.example"), ("x-forwarded-host", "forged.example")];
    let refused = submit_with(&app, code, Some(&visitor), &elsewhere, &csrf);
    assert_page(&refused, 403, &["This request was refused"]);
    assert_eq!(app.uses(&invite), 0);
    let joined = submit_with(&app, code, Some(&visitor), &forged, &csrf);
    assert_page(&joined, 200, &["You joined"]);
    assert_eq!(app.uses(&invite), 1);
}

fn during_maintenance_the_page_shows_the_invite_and_a_post_waits(backend: Backend) {
    let app = TestApp::spawn_args(backend, &["--login-url", LOGIN, "--admin-token", ADMIN]);
    let (_, _, invite) = app.server_with_invite(json!({}));
    let code = code_of(&invite);
    let visitor = app.user();
    let csrf = csrf_of(&open(&app, &format!("/invite/{code}"), Some(&visitor)));
    let maintenance = |method: Method, body: Option<serde_json::Value>| {
        app.raw(|client, base| {
            let request =
                client.request(method, format!("{base}/admin/maintenance")).bearer_auth(ADMIN);
            match body {
                Some(body) => request.json(&body),
                None => request,
            }
        })
    };
    let until = "2030-01-01T00:00:00Z";
    let message = "Moving to a bigger database";
    maintenance(Method::PUT, Some(json!({"message": message, "until": until}))).assert_status(200);
    // Every link still shows its invite, with its card, and when joining is back.
    for page in both_links(
        &app,
        code,
        &[
            "<h1><bdi>Test server</bdi></h1>",
            "property=\"og:title\" content=\"Join Test server\"",
            "name=\"twitter:title\" content=\"Join Test server\"",
            "property=\"og:description\" content=\"1 member\"",
            "Down for maintenance",
            message,
            "You can accept this invite again <time datetime=\"2030-01-01T00:00:00+00:00\"",
            "href=\"/status\"",
        ],
    ) {
        assert!(!page.text.contains("<form"), "{}", page.text);
        assert!(!page.text.contains("Sign in to accept"), "{}", page.text);
        assert_eq!(page.header("refresh"), None);
    }
    let signed_in = open(&app, &format!("/invite/{code}"), Some(&visitor));
    assert_page(&signed_in, 200, &["Down for maintenance", message]);
    assert!(!signed_in.text.contains("<form"), "{}", signed_in.text);
    assert_eq!(signed_in.header("cache-control"), Some("private, no-store"));
    // A form rendered before the window is refused while it lasts, joining nobody; the page
    // asks for a retry within a minute and reloads itself after 15 to 30 seconds.
    let posted = submit(&app, code, Some(&visitor), PUBLIC, &csrf);
    assert_page(
        &posted,
        503,
        &["Down for maintenance", message, "tries again by itself", "Try again now"],
    );
    let retry_after: u64 = posted.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let refresh: u64 = posted.header("refresh").unwrap().parse().unwrap();
    assert!((15..=30).contains(&refresh), "{refresh}");
    assert_eq!(app.uses(&invite), 0);
    // Once it is over, the same form joins.
    maintenance(Method::DELETE, None).assert_status(204);
    assert_page(&submit(&app, code, Some(&visitor), PUBLIC, &csrf), 200, &["You joined"]);
    assert_eq!(app.uses(&invite), 1);
}

on_both_backends!(
    an_invite_for_named_users_says_so_to_anyone_else_and_never_shows_the_list,
    an_approval_invite_s_form_files_a_request_and_the_page_shows_it_again,
    a_vanity_code_is_a_short_link_and_routes_stay_routes,
    a_valid_invite_reads_without_script,
    every_failure_has_its_own_page,
    the_form_joins_and_refuses_forgeries,
    the_origin_is_the_public_urls_unless_a_trusted_proxy_names_another,
    during_maintenance_the_page_shows_the_invite_and_a_post_waits,
);

#[test]
fn rate_limits_are_pages_that_retry() {
    let app = TestApp::spawn_args(
        Backend::Sqlite,
        &["--rate-limits", "on", "--rate-limit-preview", "2/60s", "--admin-token", ADMIN],
    );
    let (_, _, invite) = app.server_with_invite(json!({}));
    let path = format!("/invite/{}", code_of(&invite));
    assert_page(&open(&app, &path, None), 200, &["Sign in"]);
    assert_page(&open(&app, &path, None), 200, &["Sign in"]);
    let limited = open(&app, &path, None);
    assert_page(&limited, 429, &["Too many requests", "try again"]);
    assert!(limited.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
}

#[test]
fn the_database_away_is_a_page_that_retries() {
    let mut config = invite_store::PoolConfig::new(
        invite_store::DatabaseUrl::parse("postgres://postgres@127.0.0.1:1/none").unwrap(),
    );
    config.checkout_timeout = std::time::Duration::from_secs(1);
    let app = TestApp::spawn_on(
        invite_store::DbPool::new(&config),
        None,
        invite_http::server::random::os_random(),
    );
    let down = open(&app, "/invite/abcd2345", None);
    assert_page(&down, 503, &["can't open invites right now", "Try again now", "/status"]);
    assert_eq!(down.header("refresh"), down.header("retry-after"));
    // People's pages reload after 15 to 30 seconds, not at the API's 2.
    let refresh: u64 = down.header("refresh").unwrap().parse().unwrap();
    assert!((15..=30).contains(&refresh), "{refresh}");
    assert!(down.text.contains(&format!("by itself in {refresh} seconds")), "{}", down.text);
}
