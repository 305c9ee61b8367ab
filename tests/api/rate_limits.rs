//! Rate limits (contract section 6): the four buckets, Discord's headers on every limited
//! response, the 429 body, per-address keys that spoofed headers cannot move, and scanning on
//! every route that looks a code up.

use invite_store::Backend;
use serde_json::json;

use crate::helpers::{TestApp, TestResponse, TestUser, on_both_backends, server_id};

fn limited(backend: Backend, args: &[&str]) -> TestApp {
    let mut all = vec!["--rate-limits", "on"];
    all.extend(args);
    TestApp::spawn_args(backend, &all)
}

/// The `X-RateLimit-*` headers: limit, remaining, bucket, and the seconds until full.
#[track_caller]
fn bucket(response: &TestResponse) -> (u32, u32, String, f64) {
    let get = |name: &str| {
        response.header(name).unwrap_or_else(|| panic!("no {name}: {:?}", response.headers))
    };
    (
        get("x-ratelimit-limit").parse().unwrap(),
        get("x-ratelimit-remaining").parse().unwrap(),
        get("x-ratelimit-bucket").to_owned(),
        get("x-ratelimit-reset-after").parse().unwrap(),
    )
}

#[track_caller]
fn assert_rate_limited(response: &TestResponse, bucket_name: &str, most_seconds: f64) {
    response.assert_code(429, "RATE_LIMITED");
    assert_eq!(response.body["global"], false, "{}", response.text);
    let wait = response.body["retry_after"].as_f64().expect("retry_after is a number");
    assert!(wait > 0.0 && wait <= most_seconds, "retry_after {wait}");
    // Whole seconds, rounded up from the body's.
    let header: f64 = response.header("retry-after").unwrap().parse().unwrap();
    assert!(header >= 1.0 && header >= wait && header < wait + 1.0, "{header}");
    let (_, remaining, name, _) = bucket(response);
    assert_eq!((remaining, name.as_str()), (0, bucket_name));
}

fn accepts_are_limited_per_user(backend: Backend) {
    let app = limited(backend, &["--rate-limit-accept", "2/60s"]);
    let (owner, server, invite) = app.server_with_invite(json!({}));
    let guest = app.user();
    let joined = app.accept(&invite, &guest);
    joined.assert_status(201);
    let (limit, remaining, name, reset) = bucket(&joined);
    assert_eq!((limit, remaining, name.as_str()), (2, 1, "accept"));
    assert!((29.0..=30.0).contains(&reset), "one of two spent refills in 30 s: {reset}");
    // A refusal is limited too, and says so.
    let again = app.accept(&invite, &guest);
    again.assert_code(409, "ALREADY_MEMBER");
    assert_eq!(bucket(&again).1, 0);
    let other = app.create_invite(&server, &owner, json!({}));
    let refused = app.accept(&other, &guest);
    assert_rate_limited(&refused, "accept", 30.0);
    assert_eq!(app.uses(&other), 0, "a refused accept changes nothing");
    // Another user has a bucket of their own.
    app.accept(&other, &app.user()).assert_status(201);
    let metrics = app.request(reqwest::Method::GET, "/metrics", None, None).text;
    assert!(
        metrics.contains("invite_rate_limited_total{bucket=\"accept\"} 1"),
        "{}",
        metrics.lines().filter(|l| l.contains("rate_limited")).collect::<Vec<_>>().join("\n")
    );
}

fn creates_are_limited_per_user_and_server(backend: Backend) {
    let app = limited(backend, &["--rate-limit-create", "2/60s"]);
    let owner = app.user();
    let (first, second) = (app.create_server(&owner), app.create_server(&owner));
    let path = format!("/servers/{}/invites", server_id(&first));
    let created = app.post(&path, &owner, json!({}));
    created.assert_status(201);
    assert_eq!(bucket(&created).2, "create");
    app.post(&path, &owner, json!({})).assert_status(201);
    assert_rate_limited(&app.post(&path, &owner, json!({})), "create", 30.0);
    // The channel-scoped path shares the server's bucket.
    let channel = app.post(
        &format!("/servers/{}/channels", server_id(&first)),
        &owner,
        json!({"name": "general"}),
    );
    let channel_path = format!("/channels/{}/invites", channel.body["id"].as_str().unwrap());
    assert_rate_limited(&app.post(&channel_path, &owner, json!({})), "create", 30.0);
    // Another server is another bucket.
    app.post(&format!("/servers/{}/invites", server_id(&second)), &owner, json!({}))
        .assert_status(201);
    let listed = app.get(&path, &owner);
    assert_eq!(listed.body.as_array().unwrap().len(), 2, "the refused creates made nothing");
}

fn preview_as(app: &TestApp, code: &str, forwarded_for: Option<&str>) -> TestResponse {
    app.raw(|client, base| {
        let request = client.get(format!("{base}/invites/{code}"));
        match forwarded_for {
            Some(address) => request.header("x-forwarded-for", address),
            None => request,
        }
    })
}

/// The code of a new server's invite, for the tests that only look it up.
fn invite_code(app: &TestApp) -> String {
    let (_, _, invite) = app.server_with_invite(json!({}));
    invite["code"].as_str().unwrap().to_owned()
}

fn previews_are_limited_per_address_whatever_untrusted_headers_say(backend: Backend) {
    let app = limited(backend, &["--rate-limit-preview", "3/60s"]);
    let code = invite_code(&app);
    for n in 0..3 {
        let preview = preview_as(&app, &code, Some(&format!("198.51.100.{n}")));
        preview.assert_status(200);
        assert_eq!(bucket(&preview).1, 2 - n);
    }
    // The socket's peer is the client: the header is anybody's to write.
    assert_rate_limited(&preview_as(&app, &code, Some("203.0.113.99")), "preview", 20.0);
}

fn a_trusted_proxy_names_the_client(backend: Backend) {
    let app = limited(
        backend,
        &["--rate-limit-preview", "2/60s", "--trusted-proxies", "127.0.0.0/8,::1/128"],
    );
    let code = invite_code(&app);
    for _ in 0..2 {
        preview_as(&app, &code, Some("198.51.100.7")).assert_status(200);
    }
    assert_rate_limited(&preview_as(&app, &code, Some("198.51.100.7")), "preview", 30.0);
    // Another client behind the same proxy, and one the client tried to hide behind a
    // forged entry (the proxy appends the real one), each have their own bucket.
    preview_as(&app, &code, Some("198.51.100.8")).assert_status(200);
    preview_as(&app, &code, Some("198.51.100.7, 198.51.100.9")).assert_status(200);
}

fn scanning_for_codes_is_stopped_known_codes_included(backend: Backend) {
    let app = limited(
        backend,
        &["--rate-limit-unknown-code", "3/60s", "--trusted-proxies", "127.0.0.1/32"],
    );
    let code = invite_code(&app);
    let scanner = Some("198.51.100.66");
    preview_as(&app, &code, scanner).assert_status(200);
    for (n, guess) in (0..).zip(["Zz9Zz9Zz", "nope-nope", "Yy8Yy8Yy"]) {
        let miss = preview_as(&app, guess, scanner);
        miss.assert_code(404, "INVITE_NOT_FOUND");
        let (limit, remaining, name, _) = bucket(&miss);
        assert_eq!((limit, remaining, name.as_str()), (3, 2 - n, "unknown-code"));
    }
    // The bucket is empty: even a code that exists is not answered any more.
    assert_rate_limited(&preview_as(&app, &code, scanner), "unknown-code", 20.0);
    assert_rate_limited(&preview_as(&app, "Xx7Xx7Xx", scanner), "unknown-code", 20.0);
    // Someone else previews as usual.
    preview_as(&app, &code, Some("198.51.100.67")).assert_status(200);
}

/// One lookup of `code` through `route`, by `user`, from the client `address` behind the
/// trusted proxy the test client is.
fn look_up(app: &TestApp, route: &str, code: &str, user: &TestUser, address: &str) -> TestResponse {
    app.raw(|client, base| {
        let request = match route {
            "preview" => client.get(format!("{base}/invites/{code}")),
            "page" => client.get(format!("{base}/invite/{code}")),
            "short link" => client.get(format!("{base}/{code}")),
            "accept" => {
                client.post(format!("{base}/invites/{code}/accept")).bearer_auth(&user.token)
            }
            "form" => client
                .post(format!("{base}/invite/{code}"))
                .header("origin", "https://chat.example")
                .header("cookie", format!("session={}", user.token))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("csrf={}", app.page_form_token(&user.token, code))),
            "revoke" => client.delete(format!("{base}/invites/{code}")).bearer_auth(&user.token),
            other => unreachable!("{other}"),
        };
        request.header("x-forwarded-for", address)
    })
}

fn every_lookup_of_an_unknown_code_charges_the_scanning_bucket(backend: Backend) {
    let app = limited(
        backend,
        &["--rate-limit-unknown-code", "2/60s", "--trusted-proxies", "127.0.0.1/32"],
    );
    let (owner, _, invite) = app.server_with_invite(json!({}));
    let real = invite["code"].as_str().unwrap();
    let routes = ["preview", "page", "short link", "accept", "form", "revoke"];
    for (n, route) in (0..).zip(routes) {
        // Each route from an address of its own, by a user of its own: a bucket of its own.
        let (address, user) = (format!("198.51.100.{n}"), app.user());
        // A stranger's revoke of a real code is a miss like any other.
        let first = if route == "revoke" { real } else { "Zz9Zz9Zz" };
        for (remaining, code) in [(1, first), (0, "Yy8Yy8Yy")] {
            let miss = look_up(&app, route, code, &user, &address);
            assert_eq!(miss.status, 404, "{route} {code}: {}", miss.text);
            let (limit, left, name, _) = bucket(&miss);
            assert_eq!((limit, left, name.as_str()), (2, remaining, "unknown-code"), "{route}");
        }
        let refused = look_up(&app, route, "Xx7Xx7Xx", &user, &address);
        if route == "page" || route == "short link" || route == "form" {
            // The page's own 429: HTML, with the same headers.
            assert_eq!(refused.status, 429, "{route}: {}", refused.text);
            assert!(refused.text.contains("Too many requests"), "{route}: {}", refused.text);
            assert!(refused.header("retry-after").is_some(), "{route}");
            assert_eq!(bucket(&refused).2, "unknown-code", "{route}");
        } else {
            assert_rate_limited(&refused, "unknown-code", 30.0);
        }
    }
    // The revoke that was refused took nothing down.
    app.request(reqwest::Method::GET, &format!("/invites/{real}"), None, None).assert_status(200);
    assert_eq!(app.uses(&invite), 0);
    // A member's revoke of a real code charges nothing, and works.
    let revoked = look_up(&app, "revoke", real, &owner, "198.51.100.99");
    revoked.assert_status(204);
    assert_eq!(revoked.header("x-ratelimit-bucket"), None);
}

fn a_trusted_proxy_is_believed_in_its_own_header_only(backend: Backend) {
    let proxied = |app: &TestApp, code: &str, x_forwarded_for: &str, forwarded: &str| {
        app.raw(|client, base| {
            client
                .get(format!("{base}/invites/{code}"))
                .header("x-forwarded-for", x_forwarded_for)
                .header("forwarded", forwarded)
        })
    };
    // The proxy writes X-Forwarded-For (the default) and passes the client's Forwarded on:
    // a new Forwarded each time is no new bucket.
    let app =
        limited(backend, &["--rate-limit-preview", "2/60s", "--trusted-proxies", "127.0.0.1/32"]);
    let code = invite_code(&app);
    for n in 0..2 {
        proxied(&app, &code, "198.51.100.7", &format!("for=203.0.113.{n}")).assert_status(200);
    }
    assert_rate_limited(&proxied(&app, &code, "198.51.100.7", "for=203.0.113.9"), "preview", 30.0);
    proxied(&app, &code, "198.51.100.8", "for=203.0.113.9").assert_status(200);
    // Told to read Forwarded, the service ignores X-Forwarded-For instead.
    let app = limited(
        backend,
        &[
            "--rate-limit-preview",
            "2/60s",
            "--trusted-proxies",
            "127.0.0.1/32",
            "--client-address-header",
            "forwarded",
        ],
    );
    let code = invite_code(&app);
    for n in 0..2 {
        proxied(&app, &code, &format!("203.0.113.{n}"), "for=198.51.100.7").assert_status(200);
    }
    assert_rate_limited(&proxied(&app, &code, "203.0.113.9", "for=198.51.100.7"), "preview", 30.0);
    proxied(&app, &code, "203.0.113.9", "for=198.51.100.8").assert_status(200);
}

fn with_limits_off_nothing_is_limited(backend: Backend) {
    let app = TestApp::spawn_args(backend, &["--rate-limit-accept", "1/60s"]);
    let (_, _, invite) = app.server_with_invite(json!({}));
    for _ in 0..3 {
        let joined = app.accept(&invite, &app.user());
        joined.assert_status(201);
        assert_eq!(joined.header("x-ratelimit-limit"), None);
    }
}

on_both_backends!(
    accepts_are_limited_per_user,
    creates_are_limited_per_user_and_server,
    previews_are_limited_per_address_whatever_untrusted_headers_say,
    a_trusted_proxy_names_the_client,
    scanning_for_codes_is_stopped_known_codes_included,
    every_lookup_of_an_unknown_code_charges_the_scanning_bucket,
    a_trusted_proxy_is_believed_in_its_own_header_only,
    with_limits_off_nothing_is_limited,
);
