use invite_http::guard::auth::{Authenticator, Claims};
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

/// An HS256 token with this header and these claims as they are, signed with the server's
/// secret: for what the library's own types would not write.
fn signed(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    use base64::Engine;
    use hmac::Mac;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let message =
        format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    format!("{message}.{}", b64(&mac.finalize().into_bytes()))
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

    // Tokens signed with the right secret that still say no: not valid yet (`nbf`), a header
    // parameter marked critical (RFC 7515 section 4.1.11), and the owner's own id written
    // another way. Each is 401 and changes nothing.
    fn signed_tokens_that_say_no_are_401_and_change_nothing(app: &TestApp) {
        let (owner, server) = app.owned_server();
        let path = format!("/servers/{}", server["id"].as_str().unwrap());
        let now = chrono::Utc::now().timestamp();
        let jwt = json!({"alg": "HS256", "typ": "JWT"});
        let claims = |sub: String| json!({"sub": sub, "exp": now + 600});
        let canonical = owner.id.hyphenated().to_string();
        // The construction is sound: the canonical form, signed the same way, is the owner.
        let good = as_user(signed(&jwt, &claims(canonical.clone())));
        app.get(&path, &good).assert_status(200);

        let mut early = claims(canonical.clone());
        early["nbf"] = json!(now + 3600);
        let mut critical = jwt.clone();
        critical["crit"] = json!(["exp"]);
        let mut refused = vec![
            (signed(&jwt, &early), "The token is not valid yet (nbf)"),
            (
                signed(&critical, &claims(canonical.clone())),
                "The token marks header parameters critical that this service does not understand",
            ),
        ];
        let not_canonical = "The token's sub must be a user id: a UUID, lower-case and hyphenated";
        for spelling in [
            canonical.to_uppercase(),
            format!("{{{canonical}}}"),
            format!("urn:uuid:{canonical}"),
            owner.id.simple().to_string(),
        ] {
            refused.push((signed(&jwt, &claims(spelling)), not_canonical));
        }
        for (token, message) in refused {
            let user = as_user(token);
            app.patch(&path, &user, json!({"name": "Renamed"})).assert_error(401, "UNAUTHORIZED", message);
            app.get(&path, &user).assert_error(401, "UNAUTHORIZED", message);
        }
        let unchanged = app.get(&path, &owner);
        assert_eq!(unchanged.body["name"], server["name"], "{}", unchanged.text);
        // A `nbf` already past is no obstacle.
        let mut started = claims(canonical);
        started["nbf"] = json!(now - 5);
        app.get(&path, &as_user(signed(&jwt, &started))).assert_status(200);
    }
}
