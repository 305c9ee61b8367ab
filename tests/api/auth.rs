use invite_http::auth::{Authenticator, Claims};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{SECRET, TestApp, TestUser, both_backends};

/// An HS256 token over `claims`, signed with `secret` by the library the server uses.
fn token(claims: serde_json::Value, secret: &str) -> String {
    let claims: Claims = serde_json::from_value(claims).unwrap();
    Authenticator::from_secret(secret.as_bytes()).unwrap().mint(&claims).unwrap()
}

fn as_user(token: String) -> TestUser {
    TestUser { id: Uuid::nil(), token }
}

both_backends! {
    fn missing_malformed_forged_and_expired_tokens_are_401(app: &TestApp) {
        let missing = app.request(reqwest::Method::POST, "/servers", None, Some(&json!({"name": "x"})));
        missing.assert_error(401, "UNAUTHORIZED", "An Authorization: Bearer <token> header is required");
        assert_eq!(missing.header("www-authenticate"), Some("Bearer"));

        let basic = app.raw(|client, base| client.post(format!("{base}/servers")).header("authorization", "Basic dXNlcjpwYXNz"));
        basic.assert_error(401, "UNAUTHORIZED", "The Authorization header must be Bearer <token>");

        let now = chrono::Utc::now().timestamp();
        let forged = as_user(token(json!({"sub": Uuid::now_v7(), "exp": now + 600}), "some-other-secret-some-other-secret"));
        app.post("/servers", &forged, json!({"name": "x"})).assert_error(401, "UNAUTHORIZED", "The token's signature is invalid");

        let expired = as_user(token(json!({"sub": Uuid::now_v7(), "exp": now - 5}), SECRET));
        app.post("/servers", &expired, json!({"name": "x"})).assert_error(401, "UNAUTHORIZED", "The token has expired");

        let refresh = as_user(token(json!({"sub": Uuid::now_v7(), "exp": now + 600, "token_type": "refresh"}), SECRET));
        app.post("/servers", &refresh, json!({"name": "x"})).assert_error(401, "UNAUTHORIZED", "Only access tokens are accepted");

        let garbage = as_user("not-a-jwt".to_owned());
        app.post("/servers", &garbage, json!({"name": "x"})).assert_code(401, "UNAUTHORIZED");
    }

    fn alg_none_is_refused(app: &TestApp) {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let claims = json!({"sub": Uuid::now_v7(), "exp": chrono::Utc::now().timestamp() + 600});
        let unsigned = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
        app.post("/servers", &as_user(unsigned), json!({"name": "x"})).assert_code(401, "UNAUTHORIZED");
    }

    fn a_together_style_token_works_and_its_username_is_remembered(app: &TestApp) {
        let id = Uuid::now_v7();
        let now = chrono::Utc::now().timestamp();
        let together = as_user(token(json!({"sub": id, "exp": now + 600, "iat": now, "username": "rustacean", "token_type": "access"}), SECRET));
        let server = app.post("/servers", &together, json!({"name": "Mine"}));
        server.assert_status(201);
        assert_eq!(server.body["owner_id"], json!(id));
        let members = app.get(&format!("/servers/{}/members", server.body["id"].as_str().unwrap()), &together);
        assert_eq!(members.body[0]["username"], "rustacean");

        // A name that cannot be shown (or stored: NUL) is not remembered; the request works.
        let odd = as_user(token(json!({"sub": Uuid::now_v7(), "exp": now + 600, "username": "a\u{0}b"}), SECRET));
        let server = app.post("/servers", &odd, json!({"name": "Odd"}));
        server.assert_status(201);
        let members = app.get(&format!("/servers/{}/members", server.body["id"].as_str().unwrap()), &odd);
        assert_eq!(members.body[0]["username"], json!(null));
    }
}
