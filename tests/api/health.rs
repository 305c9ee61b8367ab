use serde_json::json;

use crate::helpers::{TestApp, both_backends};

both_backends! {
    fn health_and_readiness(app: &TestApp) {
        let anyone = app.user();
        let health = app.get("/healthz", &anyone);
        assert_eq!((health.status, health.body.clone()), (200, json!({"status": "ok"})));
        let ready = app.get("/readyz", &anyone);
        assert_eq!(ready.status, 200, "{}", ready.text);
        assert_eq!(ready.body["checks"], json!({"database": "ok", "migrations": "ok"}));
    }
}
