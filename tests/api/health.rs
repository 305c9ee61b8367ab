use serde_json::json;

use crate::helpers::{TestApp, both_backends, server_id};

both_backends! {
    fn health_and_readiness(app: &TestApp) {
        let anyone = app.user();
        let health = app.get("/healthz", &anyone);
        assert_eq!((health.status, health.body.clone()), (200, json!({"status": "ok"})));
        let ready = app.get("/readyz", &anyone);
        assert_eq!(ready.status, 200, "{}", ready.text);
        assert_eq!(ready.body["checks"], json!({"database": "ok", "migrations": "ok"}));
    }

    fn readiness_fails_while_migrations_are_missing(app: &TestApp) {
        invite_store::migrations::revert_all_migrations(&mut app.conn()).unwrap();
        let ready = app.request(reqwest::Method::GET, "/readyz", None, None);
        assert_eq!(ready.status, 503, "{}", ready.text);
        assert_eq!(ready.body["checks"]["database"], "ok");
        assert!(ready.body["checks"]["migrations"].as_str().unwrap().starts_with("pending: "), "{}", ready.text);
        assert_eq!(ready.body["error"], "Not ready: the migrations check failed");
        invite_store::migrations::run_pending_migrations(&mut app.conn()).unwrap();
        assert_eq!(app.request(reqwest::Method::GET, "/readyz", None, None).status, 200);
    }

    fn metrics_count_requests_by_route_and_accepts_by_outcome(app: &TestApp) {
        let (_, server, invite) = app.server_with_invite(json!({"max_uses": 1}));
        app.accept(&invite, &app.user()).assert_status(201);
        app.accept(&invite, &app.user()).assert_status(400);
        let metrics = app.request(reqwest::Method::GET, "/metrics", None, None);
        assert_eq!(metrics.status, 200);
        assert!(metrics.header("content-type").unwrap().starts_with("text/plain"));
        let text = metrics.text;
        for line in [
            r#"invite_http_requests_total{method="POST",route="/invites/{code}/accept",status="201"} 1"#,
            r#"invite_http_requests_total{method="POST",route="/invites/{code}/accept",status="400"} 1"#,
            r#"invite_http_requests_total{method="POST",route="/servers",status="201"} 1"#,
            r#"invite_accept_outcomes_total{outcome="joined"} 1"#,
            r#"invite_accept_outcomes_total{outcome="maxed_out"} 1"#,
            r#"invite_accept_outcomes_total{outcome="banned"} 0"#,
            "invite_db_pool_max_connections 8",
            // Its value belongs to the process, which other tests share (see audit.rs).
            "invite_audit_write_failures_total ",
        ] {
            assert!(text.contains(line), "missing {line}:\n{text}");
        }
        assert!(text.contains(r#"invite_http_request_duration_seconds_count{method="POST",route="/invites/{code}/accept"} 2"#), "{text}");
        // Concrete ids never become labels.
        assert!(!text.contains(server_id(&server)), "{text}");
    }
}
