//! Below the handlers: malformed, slow and oversized HTTP, written byte by byte on a raw
//! connection. Every refusal is the JSON error body, whoever makes it; a slow body cannot hold a
//! connection; HEAD works wherever GET does.

use std::io::Write;
use std::time::{Duration, Instant};

use invite_store::Backend;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, both_backends};

fn app() -> TestApp {
    TestApp::spawn_args(Backend::Sqlite, &["--body-timeout", "1s"])
}

#[test]
fn malformed_heads_are_refused_in_json() {
    let app = app();
    let cases: [(&str, &[u8], u16, &str); 8] = [
        ("no Host", b"GET /healthz HTTP/1.1\r\n\r\n", 400, "MALFORMED_REQUEST"),
        ("an HTTP/1.0 garbled header", b"GET /healthz HTTP/1.0\r\nX\x00: y\r\n\r\n", 400, "MALFORMED_REQUEST"),
        ("a length that is no number", b"POST /servers HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "MALFORMED_REQUEST"),
        ("two lengths", b"POST /servers HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "MALFORMED_REQUEST"),
        (
            "a length and a transfer encoding",
            b"POST /servers HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            400,
            "MALFORMED_REQUEST",
        ),
        ("a control byte in a header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\x01b\r\n\r\n", 400, "MALFORMED_REQUEST"),
        ("no request line at all", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "MALFORMED_REQUEST"),
        ("a request line of garbage", b"GARBAGE\r\n\r\n", 400, "MALFORMED_REQUEST"),
    ];
    for (what, request, status, code) in cases {
        let response = app.raw_tcp(request);
        assert_eq!(response.status, status, "{what}: {}", response.text);
        response.assert_json_error(status, code);
    }
}

#[test]
fn oversized_heads_are_refused_in_json() {
    let app = app();
    let mut many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for n in 0..200 {
        many.extend(format!("X-Header-{n}: {n}\r\n").bytes());
    }
    many.extend(b"\r\n");
    app.raw_tcp(&many).assert_json_error(431, "HEADERS_TOO_LARGE");

    let long_path = format!("GET /invites/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(64 * 1024));
    app.raw_tcp(long_path.as_bytes()).assert_json_error(414, "URI_TOO_LONG");
    // Shorter, but still over 8 KiB: the same answer.
    let longer = format!("GET /invites/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9 * 1024));
    app.raw_tcp(longer.as_bytes()).assert_json_error(414, "URI_TOO_LONG");
    // Whatever the route: one segment (which the invite page's short link would take), a query,
    // the page's own path.
    let filler = "a".repeat(9 * 1024);
    for target in [
        format!("/healthz?{filler}"),
        format!("/{filler}"),
        format!("/invite/{filler}"),
        format!("/invites/abcd2345?with_counts=true&{filler}"),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n");
        let response = app.raw_tcp(request.as_bytes());
        assert_eq!(response.status, 414, "{}: {}", &target[..20], response.text);
        response.assert_json_error(414, "URI_TOO_LONG");
    }
    // An ordinary request on the same service is still answered.
    app.raw_tcp(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .assert_status_is(200);
}

#[test]
fn a_slow_request_line_is_cut_off_with_408() {
    let app = app();
    let started = Instant::now();
    let response = app.raw_tcp(b"GET /heal");
    response.assert_json_error(408, "REQUEST_TIMEOUT");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

#[test]
fn a_body_that_never_arrives_is_cut_off_and_its_connection_closed() {
    let app = app();
    let user = app.user();
    let started = Instant::now();
    let request = format!(
        "POST /invites/abcdefgh/accept HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{{",
        user.token
    );
    // `raw_tcp` reads until the service closes the connection: it must, within the timeout.
    let response = app.raw_tcp(request.as_bytes());
    response.assert_json_error(408, "REQUEST_TIMEOUT");
    assert_eq!(response.header("connection"), Some("close"));
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(4), "{took:?}");
}

#[test]
fn many_slow_bodies_do_not_hold_the_service() {
    let app = app();
    let user = app.user();
    let address = app.base.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /servers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{{",
        user.token
    );
    let mut slow: Vec<_> = (0..200)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            stream.write_all(head.as_bytes()).unwrap();
            stream
        })
        .collect();
    // Meanwhile, everyone else is served.
    app.post("/servers", &user, json!({"name": "not held up"})).assert_status(201);
    std::thread::sleep(Duration::from_secs(2));
    // Each slow connection has been answered 408 and closed by now.
    for stream in &mut slow {
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut received = Vec::new();
        std::io::Read::read_to_end(stream, &mut received).unwrap();
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    }
}

both_backends! {
    fn head_works_wherever_get_does(app: &TestApp) {
        let (_, _, invite) = app.server_with_invite(json!({}));
        for path in ["/healthz".to_owned(), format!("/invites/{}", invite["code"].as_str().unwrap())] {
            let get = app.request(Method::GET, &path, None, None);
            let head = app.request(Method::HEAD, &path, None, None);
            assert_eq!(head.status, 200, "{path}");
            assert!(head.text.is_empty(), "no body for HEAD");
            assert_eq!(head.header("content-type"), get.header("content-type"));
            assert_eq!(head.header("content-length"), Some(get.text.len().to_string().as_str()));
        }
        // A route without GET: 405, naming what it takes.
        let refused = app.request(Method::HEAD, "/servers", None, None);
        assert_eq!(refused.status, 405);
        let openapi = app.request(Method::POST, "/openapi.json", None, None);
        openapi.assert_code(405, "METHOD_NOT_ALLOWED");
        assert_eq!(openapi.header("allow"), Some("GET, HEAD"));
        let allow = app.request(Method::DELETE, "/healthz", None, None);
        assert_eq!(allow.header("allow"), Some("GET, HEAD"));
    }

    fn json_must_be_utf8(app: &TestApp) {
        let owner = app.user();
        let sent = app.raw(|client, base| {
            client.post(format!("{base}/servers")).bearer_auth(&owner.token)
                .header("content-type", "application/json; charset=utf-16")
                .body(r#"{"name": "x"}"#)
        });
        sent.assert_error(415, "UNSUPPORTED_MEDIA_TYPE", "JSON bodies must be encoded in UTF-8");
        let explicit = app.raw(|client, base| {
            client.post(format!("{base}/servers")).bearer_auth(&owner.token)
                .header("content-type", "application/json; charset=UTF-8")
                .body(r#"{"name": "x"}"#)
        });
        explicit.assert_status(201);
    }

    fn names_are_bounded_as_sent(app: &TestApp) {
        let owner = app.user();
        let padded = format!("\t{}", "a".repeat(100));
        app.post("/servers", &owner, json!({"name": padded}))
            .assert_error(400, "VALIDATION_ERROR", "name must be between 1 and 100 characters");
        let server = app.post("/servers", &owner, json!({"name": format!(" {} ", "a".repeat(98))}));
        server.assert_status(201);
        assert_eq!(server.body["name"], "a".repeat(98));
    }

    fn long_usernames_are_not_remembered(app: &TestApp) {
        let long = app.user_named(Some(&"n".repeat(15_000)));
        let server = app.create_server(&long);
        let members = app.get(&format!("/servers/{}/members", server["id"].as_str().unwrap()), &long);
        members.assert_status(200);
        assert_eq!(members.body[0]["username"], serde_json::Value::Null, "{}", members.text);
    }
}

#[test]
fn one_address_holds_a_bounded_number_of_connections() {
    let app = TestApp::spawn_args(Backend::Sqlite, &["--max-connections-per-address", "3"]);
    let address = app.base.trim_start_matches("http://").to_owned();
    let held: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(&address).unwrap()).collect();
    // Give the service a moment to take them in.
    std::thread::sleep(Duration::from_millis(200));
    app.raw_tcp(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .assert_json_error(429, "TOO_MANY_CONNECTIONS");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    app.raw_tcp(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .assert_status_is(200);
}
