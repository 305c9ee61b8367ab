//! Every malformed request gets the JSON error body, never text/plain.

use serde_json::json;

use crate::helpers::{TestApp, both_backends, server_id};

both_backends! {
    fn malformed_requests_get_json_errors(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let invites = format!("{}/servers/{}/invites", app.base, server_id(&server));

        let bad_json = app.raw(|c, _| c.post(&invites).bearer_auth(&owner.token).header("content-type", "application/json").body("{\"max_uses\": "));
        bad_json.assert_code(400, "INVALID_JSON");

        let unknown_field = app.raw(|c, _| c.post(&invites).bearer_auth(&owner.token).json(&json!({"max_uses": 1, "colour": "red"})));
        unknown_field.assert_code(400, "INVALID_JSON");
        assert!(unknown_field.body["error"].as_str().unwrap().contains("unknown field `colour`"), "{}", unknown_field.text);

        let array = app.raw(|c, _| c.post(&invites).bearer_auth(&owner.token).json(&json!([5, null])));
        array.assert_error(400, "INVALID_JSON", "The body must be a JSON object");
        let null_body = app.raw(|c, _| c.post(&invites).bearer_auth(&owner.token).json(&json!(null)));
        null_body.assert_status(201);
        let integral_float = app.raw(|c, _| c.post(&invites).bearer_auth(&owner.token).json(&json!({"max_uses": 3.0})));
        assert_eq!((integral_float.status, integral_float.body["max_uses"].clone()), (201, json!(3)));
        let wrong_type = app.raw(|c, _| c.post(&invites).bearer_auth(&owner.token).json(&json!({"max_uses": "ten"})));
        wrong_type.assert_code(400, "INVALID_JSON");

        let form = app.raw(|c, _| c.post(&invites).bearer_auth(&owner.token).header("content-type", "application/x-www-form-urlencoded").body("max_uses=1"));
        form.assert_error(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json");
        let no_type = app.raw(|c, _| c.post(&invites).bearer_auth(&owner.token).body("{\"max_uses\": 1}"));
        no_type.assert_code(415, "UNSUPPORTED_MEDIA_TYPE");

        let huge = json!({"max_uses": 1, "pad": "x".repeat(17 * 1024)});
        let too_large = app.raw(|c, _| c.post(&invites).bearer_auth(&owner.token).json(&huge));
        too_large.assert_error(413, "PAYLOAD_TOO_LARGE", "The request body is larger than 16 KiB");
        // Streamed, with no length declared up front: counted as it arrives.
        let body = serde_json::to_vec(&huge).unwrap();
        let streamed = app.raw(|c, _| c.post(&invites).bearer_auth(&owner.token).header("content-type", "application/json").body(reqwest::blocking::Body::new(std::io::Cursor::new(body))));
        streamed.assert_error(413, "PAYLOAD_TOO_LARGE", "The request body is larger than 16 KiB");
        // An endpoint that reads no body refuses one over the limit all the same.
        let accept = format!("{}/invites/abcdefgh/accept", app.base);
        let oversized = app.raw(|c, _| c.post(&accept).bearer_auth(&owner.token).json(&huge));
        oversized.assert_error(413, "PAYLOAD_TOO_LARGE", "The request body is larger than 16 KiB");

        let bad_uuid = app.get("/servers/not-a-uuid/invites", &owner);
        bad_uuid.assert_code(400, "INVALID_ID");
        let bad_uuid = app.delete(&format!("/servers/{}/invites/123", server_id(&server)), &owner);
        bad_uuid.assert_code(400, "INVALID_ID");

        let bad_query = app.get(&format!("/servers/{}/invites?limit=lots", server_id(&server)), &owner);
        bad_query.assert_code(400, "INVALID_QUERY");
        let out_of_range = app.get(&format!("/servers/{}/invites?limit=0", server_id(&server)), &owner);
        out_of_range.assert_error(400, "INVALID_QUERY", "limit must be between 1 and 1000");

        app.get("/no/such/route", &owner).assert_error(404, "NOT_FOUND", "No such route");
        let wrong_method = app.raw(|c, base| c.put(format!("{base}/servers")).bearer_auth(&owner.token));
        wrong_method.assert_error(405, "METHOD_NOT_ALLOWED", "This method is not allowed on this route");
        let wrong_method = app.raw(|c, base| c.patch(format!("{base}/invites/abcdefgh/accept")));
        wrong_method.assert_code(405, "METHOD_NOT_ALLOWED");

        // Only the two well-formed creates reached the database.
        let listed = app.get(&format!("/servers/{}/invites", server_id(&server)), &owner);
        assert_eq!(listed.body.as_array().unwrap().len(), 2);
    }

    fn every_response_carries_a_request_id(app: &TestApp) {
        let owner = app.user();
        let generated = app.get("/healthz", &owner);
        assert!(generated.header("x-request-id").is_some_and(|id| id.len() >= 32));
        let echoed = app.raw(|c, base| c.get(format!("{base}/no/such")).header("x-request-id", "trace-123"));
        assert_eq!(echoed.header("x-request-id"), Some("trace-123"));
        let unsafe_id = app.raw(|c, base| c.get(format!("{base}/healthz")).header("x-request-id", "a b\tc"));
        assert_ne!(unsafe_id.header("x-request-id"), Some("a b\tc"));
    }
}
