//! `GET /status`: what people are told to check when invites fail, in JSON and in HTML.

use std::time::Duration;

use invite_store::{DatabaseUrl, DbPool, PoolConfig};
use reqwest::Method;

use crate::helpers::{TestApp, both_backends};

both_backends! {
    fn a_healthy_service_is_operational(app: &TestApp) {
        let status = app.request(Method::GET, "/status", None, None);
        status.assert_status(200);
        assert_eq!(status.body["status"], "operational", "{}", status.text);
        assert!(status.body["since"].as_str().unwrap().ends_with('Z'));
        let names: Vec<_> = status.body["components"].as_array().unwrap().iter()
            .map(|component| (component["name"].as_str().unwrap().to_owned(), component["status"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(names, [("database".to_owned(), "operational".to_owned()), ("writes".to_owned(), "operational".to_owned())]);
        assert_eq!(status.body["maintenance"], serde_json::Value::Null);
        assert_eq!(status.header("cache-control"), Some("no-store"));
    }

    fn a_browser_gets_a_page(app: &TestApp) {
        let page = app.raw(|client, base| {
            client.get(format!("{base}/status"))
                .header("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        });
        page.assert_status(200);
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(page.text.contains("<h1 class=\"operational\">All systems operational</h1>"), "{}", page.text);
        assert!(!page.text.contains("<script"), "no script");
        // As strict as the invite page: nothing runs, only its own stylesheet applies, and no
        // other site may frame it.
        let policy = page.header("content-security-policy").expect("a policy");
        let style = page.text.split("<style>").nth(1).unwrap().split("</style>").next().unwrap();
        assert_eq!(
            policy,
            format!(
                "default-src 'none'; style-src {}; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
                crate::docs::csp_hash(style)
            )
        );
        assert_eq!(page.text.matches("<style").count(), 1);
        assert!(!page.text.contains("style="), "{}", page.text);
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
    }
}

#[test]
fn a_database_away_is_an_outage() {
    let mut config =
        PoolConfig::new(DatabaseUrl::parse("postgres://postgres@127.0.0.1:1/none").unwrap());
    config.checkout_timeout = Duration::from_millis(300);
    let app =
        TestApp::spawn_on(DbPool::new(&config), None, invite_http::server::random::os_random());
    let user = app.user();
    // A few requests find the database away; then the service knows, and says so.
    for _ in 0..3 {
        app.request(Method::POST, "/invites/abcdefgh/accept", Some(&user), None)
            .assert_code(503, "SERVICE_UNAVAILABLE");
    }
    let status = app.request(Method::GET, "/status", None, None);
    assert_eq!(status.body["status"], "outage", "{}", status.text);
    assert_eq!(status.body["components"][0]["status"], "outage");
    // Meanwhile a request needing the database is answered at once, not after a timeout.
    let started = std::time::Instant::now();
    app.request(Method::POST, "/invites/abcdefgh/accept", Some(&user), None)
        .assert_code(503, "SERVICE_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_millis(200), "{:?}", started.elapsed());
    let page =
        app.raw(|client, base| client.get(format!("{base}/status")).header("accept", "text/html"));
    assert!(page.text.contains("Outage"), "{}", page.text);
}
