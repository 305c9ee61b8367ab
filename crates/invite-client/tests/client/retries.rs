//! Retries, against a scripted server: what is sent again, with which key, after how long, and
//! when the client stops.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use invite_client::{ClientError, ErrorCode, Patch, RateLimit, RetryPolicy, UpdateInvite};
use uuid::Uuid;

use crate::support::{Scripted, Step, error, quick, respond};

const SERVER: &str = "0191d8f6-7a2b-7c3d-8e4f-5a6b7c8d9e0f";

fn joined(headers: &[(&str, &str)]) -> Step {
    let body = format!(r#"{{"message": "Joined server", "server_id": "{SERVER}"}}"#);
    Step::Respond(respond(201, headers, &body))
}

fn invite_body() -> String {
    format!(
        r#"{{"id": "0191d8f6-7a2b-7c3d-8e4f-000000000001", "server_id": "{SERVER}", "channel_id": null,
            "code": "AbCdEfGh", "kind": "random", "url": "https://chat.example/invite/AbCdEfGh",
            "created_by": null, "max_uses": 5, "uses": 0, "max_age": 0, "expires_at": null,
            "temporary": false, "created_at": "2026-01-01T00:00:00Z", "version": 2}}"#
    )
}

fn preview_body() -> String {
    format!(
        r#"{{"code": "AbCdEfGh", "server_id": "{SERVER}", "server_name": "Scripted",
            "server_icon_url": null, "member_count": 3, "expires_at": null, "channel": null,
            "inviter_id": null, "temporary": false, "invites_paused": false}}"#
    )
}

fn edit() -> UpdateInvite {
    UpdateInvite { max_uses: Patch::Set(5), ..Default::default() }
}

fn server_id() -> Uuid {
    Uuid::parse_str(SERVER).unwrap()
}

fn keys(server: &Scripted) -> Vec<Option<String>> {
    server.requests().iter().map(|r| r.header("idempotency-key").map(str::to_owned)).collect()
}

#[tokio::test]
async fn a_post_is_retried_with_the_same_idempotency_key_and_the_replay_is_reported() {
    let server = Scripted::start(vec![
        error(503, "MAINTENANCE", "Down for maintenance", &[("retry-after", "1")]),
        Step::Close,
        error(429, "RATE_LIMITED", "You are being rate limited", &[]),
        joined(&[("idempotent-replayed", "true")]),
        joined(&[]),
    ])
    .await;
    let client = server.client(quick());

    let started = Instant::now();
    let accepted = client.accept("AbCdEfGh").send_full().await.unwrap();
    assert_eq!(accepted.value.server_id, server_id());
    assert!(accepted.value.replayed && accepted.replayed);
    assert_eq!(accepted.attempts, 4);
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());

    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    let key = accepted.idempotency_key.unwrap();
    assert_eq!(Uuid::parse_str(&key).unwrap().get_version_num(), 4);
    for request in &requests {
        assert_eq!(
            (request.method.as_str(), request.target.as_str()),
            ("POST", "/invites/AbCdEfGh/accept")
        );
        assert_eq!(request.header("idempotency-key"), Some(key.as_str()));
        assert_eq!(request.header("authorization"), Some("Bearer scripted-token"));
    }
    assert!(
        requests[1].at - requests[0].at >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );

    // The next call is another logical request: another key.
    let second = client.accept("AbCdEfGh").await.unwrap();
    assert!(!second.replayed);
    let fifth = server.requests()[4].header("idempotency-key").unwrap().to_owned();
    assert_ne!(fifth, key);
}

#[tokio::test]
async fn a_key_given_by_the_caller_is_the_one_sent_on_every_attempt() {
    let server = Scripted::start(vec![
        error(409, "IDEMPOTENCY_IN_FLIGHT", "A request with this key is in flight", &[]),
        joined(&[("idempotent-replayed", "true")]),
    ])
    .await;
    let accepted =
        server.client(quick()).accept("AbCdEfGh").idempotency_key("join-42").await.unwrap();
    assert!(accepted.replayed);
    assert_eq!(keys(&server), [Some("join-42".to_owned()), Some("join-42".to_owned())]);
}

#[tokio::test]
async fn retry_after_is_honoured_and_rate_limits_are_read() {
    let rate_headers = [
        ("x-ratelimit-limit", "100"),
        ("x-ratelimit-remaining", "97"),
        ("x-ratelimit-reset-after", "4.5"),
        ("x-ratelimit-bucket", "preview"),
    ];
    let server = Scripted::start(vec![
        unavailable(&[("retry-after", "1")]),
        Step::Respond(respond(200, &rate_headers, &preview_body())),
    ])
    .await;
    let started = Instant::now();
    let preview = server.client(quick()).preview("AbCdEfGh").await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!((preview.server_name.as_str(), preview.member_count), ("Scripted", 3));
    assert_eq!(
        preview.rate_limit,
        Some(RateLimit {
            limit: 100,
            remaining: 97,
            reset_after: Duration::from_millis(4500),
            bucket: Some("preview".to_owned()),
        })
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("idempotency-key"), None, "a GET needs no key");
}

#[tokio::test]
async fn a_429_waits_the_body_s_fractional_retry_after() {
    let body = r#"{"error": "You are being rate limited", "code": "RATE_LIMITED", "retry_after": 1.25, "global": false}"#;
    let server = Scripted::start(vec![Step::Respond(respond(429, &[], body)), joined(&[])]).await;
    let started = Instant::now();
    server.client(quick()).accept("AbCdEfGh").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1250), "{:?}", started.elapsed());
    let requests = server.requests();
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(1250));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (status, code, message) in [
        (400, "INVITE_EXPIRED", "This invite has expired"),
        (401, "UNAUTHORIZED", "A valid bearer token is required"),
        (403, "BANNED", "You are banned from this server"),
        (404, "INVITE_NOT_FOUND", "Invite not found"),
        (409, "ALREADY_MEMBER", "Already a member of this server"),
        (412, "PRECONDITION_FAILED", "The invite has changed"),
        (422, "IDEMPOTENCY_KEY_REUSED", "This key was used with another request"),
        (500, "INTERNAL_ERROR", "Internal server error"),
        (400, "SOMETHING_NEW", "A refusal this client does not know"),
    ] {
        let server = Scripted::start(vec![error(status, code, message, &[]), joined(&[])]).await;
        let result = server.client(quick()).accept("AbCdEfGh").await;
        let Err(ClientError::Api { status: got, code: got_code, message: got_message, .. }) =
            result
        else {
            panic!("{code}: {result:?}");
        };
        assert_eq!((got, got_code.as_str(), got_message.as_str()), (status, code, message));
        assert_eq!(server.requests().len(), 1, "{code} was retried");
    }
}

#[tokio::test]
async fn an_unknown_code_is_kept_as_sent() {
    let server = Scripted::start(vec![error(400, "SOMETHING_NEW", "New refusal", &[])]).await;
    let error = server.client(quick()).preview("AbCdEfGh").await.unwrap_err();
    assert_eq!(error.code(), Some(&ErrorCode::Other("SOMETHING_NEW".to_owned())));
    assert_eq!(error.to_string(), "HTTP 400 SOMETHING_NEW: New refusal");
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_retried_for_a_keyed_post() {
    let server = Scripted::start(vec![Step::Close, Step::Close, joined(&[])]).await;
    let accepted = server.client(quick()).accept("AbCdEfGh").send_full().await.unwrap();
    assert_eq!((accepted.value.server_id, accepted.attempts), (server_id(), 3));
    let keys = keys(&server);
    assert_eq!(keys.len(), 3);
    assert!(keys[0].is_some() && keys.iter().all(|key| *key == keys[0]));
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_not_retried_for_a_patch_without_a_key() {
    let server =
        Scripted::start(vec![Step::Close, Step::Respond(respond(200, &[], &invite_body()))]).await;
    let result = server.client(quick()).update_invite(server_id(), Uuid::now_v7(), &edit()).await;
    assert!(matches!(result, Err(ClientError::Transport(_))), "{result:?}");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.requests()[0].header("idempotency-key"), None);
}

#[tokio::test]
async fn a_patch_with_a_key_is_retried_after_a_lost_connection() {
    let etag = [("etag", "\"2\"")];
    let server =
        Scripted::start(vec![Step::Close, Step::Respond(respond(200, &etag, &invite_body()))])
            .await;
    let invite_id = Uuid::now_v7();
    let edited = server
        .client(quick())
        .update_invite(server_id(), invite_id, &edit())
        .idempotency_key("edit-1")
        .if_match(1)
        .send_full()
        .await
        .unwrap();
    assert_eq!((edited.value.max_uses, edited.version), (Some(5), Some(2)));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.method, "PATCH");
        assert_eq!(request.target, format!("/servers/{SERVER}/invites/{invite_id}"));
        assert_eq!(request.header("if-match"), Some("\"1\""));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&request.body).unwrap(),
            serde_json::json!({"max_uses": 5})
        );
    }
}

#[tokio::test]
async fn an_unkeyed_patch_is_retried_after_maintenance_but_not_after_an_outage() {
    let maintenance = Scripted::start(vec![
        error(503, "MAINTENANCE", "Down for maintenance", &[]),
        Step::Respond(respond(200, &[], &invite_body())),
    ])
    .await;
    maintenance.client(quick()).update_invite(server_id(), Uuid::now_v7(), &edit()).await.unwrap();
    assert_eq!(maintenance.requests().len(), 2);

    // The database may have failed after the change committed: only a replayable request may
    // be sent again.
    let outage = Scripted::start(vec![
        unavailable(&[("retry-after", "1")]),
        Step::Respond(respond(200, &[], &invite_body())),
    ])
    .await;
    let error = outage
        .client(quick())
        .update_invite(server_id(), Uuid::now_v7(), &edit())
        .await
        .unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(503), Some(&ErrorCode::ServiceUnavailable)));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(outage.requests().len(), 1);
}

#[tokio::test]
async fn attempts_stop_at_the_cap() {
    let server = Scripted::start((0..6).map(|_| unavailable(&[])).collect()).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let client = invite_client::Client::builder(&server.base)
        .retry_policy(quick().with_max_attempts(3))
        .on_retry({
            let seen = seen.clone();
            move |event| {
                seen.lock().unwrap().push((event.attempt, event.delay, event.error.status()));
            }
        })
        .build()
        .unwrap();
    let error = client.get_server(server_id()).await.unwrap_err();
    assert_eq!(error.code(), Some(&ErrorCode::ServiceUnavailable));
    assert_eq!(server.requests().len(), 3);
    // Exponential: 10 ms, then 20 ms.
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, Duration::from_millis(10), Some(503)), (2, Duration::from_millis(20), Some(503))]
    );
}

#[tokio::test]
async fn a_wait_longer_than_the_cap_is_not_shortened_but_returned() {
    let body = r#"{"error": "You are being rate limited", "code": "RATE_LIMITED", "retry_after": 119.5, "global": true}"#;
    let headers = [
        ("retry-after", "120"),
        ("x-ratelimit-limit", "10"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset-after", "119.5"),
        ("x-ratelimit-bucket", "accept"),
    ];
    let server =
        Scripted::start(vec![Step::Respond(respond(429, &headers, body)), joined(&[])]).await;
    let started = Instant::now();
    let error = server.client(quick()).accept("AbCdEfGh").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(server.requests().len(), 1);
    let ClientError::Api { status, code, retry_after, global, rate_limit, .. } = error else {
        panic!("{error:?}");
    };
    assert_eq!(
        (status, code, retry_after, global),
        (429, ErrorCode::RateLimited, Some(Duration::from_mins(2)), true)
    );
    let rate_limit = rate_limit.unwrap();
    assert_eq!((rate_limit.remaining, rate_limit.bucket.as_deref()), (0, Some("accept")));
}

#[tokio::test]
async fn the_deadline_bounds_the_whole_call() {
    let unavailable = || error(503, "OVERLOADED", "Overloaded", &[("retry-after", "1")]);
    let server = Scripted::start((0..6).map(|_| unavailable()).collect()).await;
    let policy = quick().with_max_attempts(10).with_deadline(Some(Duration::from_millis(1500)));
    let started = Instant::now();
    let error = server.client(policy).get_server(server_id()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    assert_eq!(error.code(), Some(&ErrorCode::Overloaded));
    // At 0 s and 1 s; the next would start at 2 s, past the deadline.
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_server_that_never_answers_is_cut_off_at_the_deadline() {
    let server = Scripted::start(vec![Step::Hang, Step::Hang]).await;
    let policy = quick().with_deadline(Some(Duration::from_millis(500)));
    let started = Instant::now();
    let error = server.client(policy).get_server(server_id()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(&error, ClientError::Transport(cause) if cause.is_timeout()), "{error:?}");
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_an_unkeyed_patch() {
    // A port nobody listens on: nothing can have been sent, so any request may be retried.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let retries = Arc::new(Mutex::new(0));
    let client = invite_client::Client::builder(&format!("http://127.0.0.1:{port}"))
        .retry_policy(quick().with_max_attempts(3))
        .on_retry({
            let retries = retries.clone();
            move |_| *retries.lock().unwrap() += 1
        })
        .build()
        .unwrap();
    let error = client.update_invite(server_id(), Uuid::now_v7(), &edit()).await.unwrap_err();
    assert!(matches!(&error, ClientError::Transport(cause) if cause.is_connect()), "{error:?}");
    assert_eq!(*retries.lock().unwrap(), 2);
}

#[tokio::test]
async fn an_error_page_that_is_not_the_service_s_is_kept_as_text_and_retried_when_safe() {
    let page = |status| {
        Step::Respond(format!(
            "HTTP/1.1 {status} Proxy\r\ncontent-type: text/html\r\ncontent-length: 10\r\nconnection: close\r\n\r\n<h1>!</h1>"
        ))
    };
    let server = Scripted::start(vec![page(503), page(502), joined(&[])]).await;
    let error = server.client(quick()).get_server(server_id()).await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Status { status: 502, body, .. } if body == "<h1>!</h1>"),
        "{error:?}"
    );
    assert_eq!(error.code(), None);
    // The 503 was retried (a GET), the 502 was final.
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_success_body_of_the_wrong_shape_is_a_decode_error_and_final() {
    let server = Scripted::start(vec![
        Step::Respond(respond(200, &[], r#"{"unexpected": true}"#)),
        Step::Respond(respond(200, &[], &preview_body())),
    ])
    .await;
    let error = server.client(RetryPolicy::default()).preview("AbCdEfGh").await.unwrap_err();
    assert!(matches!(error, ClientError::Decode { status: 200, .. }), "{error:?}");
    assert_eq!(server.requests().len(), 1);
}

/// The service's 503 when its database cannot be reached, with `headers`.
fn unavailable(headers: &[(&str, &str)]) -> Step {
    error(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable", headers)
}
