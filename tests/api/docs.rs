//! The OpenAPI document describes every route the app serves, and Swagger UI is served offline.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::TestApp;

fn document(app: &TestApp) -> Value {
    let response = app.request(reqwest::Method::GET, "/openapi.json", None, None);
    assert_eq!(response.status, 200, "{}", response.text);
    response.body
}

#[test]
fn every_route_is_documented_and_every_documented_route_is_served() {
    let app = TestApp::spawn(invite_store::Backend::Sqlite);
    let doc = document(&app);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| *key != "parameters")
                .map(move |method| (path.clone(), method.to_uppercase()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = invite_http::api::routes::table()
        .into_iter()
        .map(|(path, method)| (path.to_owned(), method.to_owned()))
        .collect();
    assert_eq!(served, documented);
    assert!(served.len() >= 29, "{served:?}");
}

#[test]
fn every_operation_documents_its_errors_with_the_error_body() {
    let app = TestApp::spawn(invite_store::Backend::Sqlite);
    let doc = document(&app);
    let codes = doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(codes, invite_core::ErrorCode::ALL.len());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            for status in ["400", "413", "500", "503"] {
                assert!(responses.contains_key(status), "{method} {path} lacks {status}");
            }
            if operation.get("security").is_some() {
                assert!(responses.contains_key("401"), "{method} {path} lacks 401");
            }
            if operation.get("requestBody").is_some() {
                assert!(responses.contains_key("415"), "{method} {path}");
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    // A 429 adds Discord's `retry_after` and `global` to the usual two fields.
                    let expected = if status == "429" {
                        "#/components/schemas/RateLimitedBody"
                    } else {
                        "#/components/schemas/ErrorBody"
                    };
                    if path != "/readyz" {
                        assert_eq!(schema, expected, "{method} {path} {status}");
                    }
                }
            }
        }
    }
}

/// The name rule is written out in each request type's annotation (utoipa takes only a literal
/// there): every copy must be the same pattern.
#[test]
fn every_name_field_publishes_the_same_pattern() {
    let app = TestApp::spawn(invite_store::Backend::Sqlite);
    let doc = document(&app);
    let schemas = &doc["components"]["schemas"];
    let patterns: BTreeSet<&str> =
        ["CreateServerRequest", "UpdateServerRequest", "CreateChannelRequest"]
            .iter()
            .map(|name| schemas[name]["properties"]["name"]["pattern"].as_str().unwrap())
            .collect();
    assert_eq!(patterns.len(), 1, "{patterns:?}");
    let icon_patterns: BTreeSet<&str> = ["CreateServerRequest", "UpdateServerRequest"]
        .iter()
        .map(|name| schemas[name]["properties"]["icon_url"]["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(icon_patterns.len(), 1, "{icon_patterns:?}");
}

#[test]
fn swagger_ui_is_served_from_the_binary() {
    let app = TestApp::spawn(invite_store::Backend::Sqlite);
    let page = app.raw(|c, base| c.get(format!("{base}/docs")));
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("swagger-ui"), "{}", &page.text[..page.text.len().min(300)]);
    let script = app.raw(|c, base| c.get(format!("{base}/docs/swagger-ui-bundle.js")));
    assert_eq!(script.status, 200);
    assert!(script.text.len() > 100_000);
}

/// A registration naming no event type is refused (`events: []`), and the schema says so.
#[test]
fn webhook_events_publish_their_minimum() {
    let app = TestApp::spawn(invite_store::Backend::Sqlite);
    let doc = document(&app);
    let events = &doc["components"]["schemas"]["CreateWebhookRequest"]["properties"]["events"];
    assert_eq!(events["minItems"], 1, "{events}");
    assert_eq!(events["items"]["type"], "string", "{events}");
}

/// `'sha256-...'` of `text`, as a Content-Security-Policy names an inline stylesheet.
pub(crate) fn csp_hash(text: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
}

/// Swagger UI runs script: its pages say which (its own files, from this origin), and that no
/// other site may frame them. What it writes inline (one stylesheet, the logo's colours) is
/// allowed by its hash, not by `'unsafe-inline'`.
#[test]
fn swagger_ui_runs_under_a_content_security_policy() {
    let app = TestApp::spawn(invite_store::Backend::Sqlite);
    let redirect = app.raw_tcp(b"GET /docs HTTP/1.1\r\nHost: docs\r\nConnection: close\r\n\r\n");
    assert_eq!(redirect.status, 307, "{}", redirect.text);
    assert_eq!(redirect.header("location"), Some("/docs/"));
    let policy = redirect.header("content-security-policy").expect("a policy").to_owned();
    assert_eq!(redirect.header("x-frame-options"), Some("DENY"));

    let index = app.raw(|c, base| c.get(format!("{base}/docs/")));
    assert_eq!(index.status, 200, "{}", index.text);
    assert_eq!(index.header("content-security-policy"), Some(policy.as_str()));
    assert_eq!(index.header("x-frame-options"), Some("DENY"));
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    for expected in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(directives.contains(&expected), "{expected} in {policy}");
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{policy}");
    // Every script and stylesheet of the index is a file, which 'self' allows.
    assert_eq!(index.text.matches("<script").count(), index.text.matches("<script src=").count());
    assert!(index.text.matches("<script src=").count() >= 3, "{}", index.text);
    assert!(!index.text.contains("<style") && !index.text.contains("style="), "{}", index.text);

    // The one stylesheet the UI writes inline is allowed by its hash.
    let preset = app.raw(|c, base| c.get(format!("{base}/docs/swagger-ui-standalone-preset.js")));
    assert_eq!(preset.header("content-security-policy"), Some(policy.as_str()));
    let marker = "createElement(\"style\",null,\"";
    let inline: Vec<&str> = preset
        .text
        .match_indices(marker)
        .map(|(at, _)| preset.text[at + marker.len()..].split('"').next().unwrap())
        .collect();
    assert_eq!(inline.len(), 1, "{inline:?}");
    let style_src = directives.iter().find(|d| d.starts_with("style-src ")).unwrap();
    assert_eq!(*style_src, format!("style-src 'self' {}", csp_hash(inline[0])));

    // Swagger UI asks no validator elsewhere for a badge (an image the policy would refuse).
    let initializer = app.raw(|c, base| c.get(format!("{base}/docs/swagger-initializer.js")));
    assert_eq!(initializer.header("content-security-policy"), Some(policy.as_str()));
    assert!(initializer.text.contains("\"validatorUrl\": \"none\""), "{}", initializer.text);
}

#[test]
fn invites_publish_what_they_grant_and_whom_they_are_for() {
    let app = TestApp::spawn(invite_store::Backend::Sqlite);
    let doc = document(&app);
    let schemas = &doc["components"]["schemas"];
    for schema in ["CreateInviteRequest", "UpdateInviteRequest", "Invite"] {
        let properties = schemas[schema]["properties"].as_object().unwrap();
        for field in ["grant_permissions", "allowed_user_ids"] {
            assert!(properties.contains_key(field), "{schema} lacks {field}");
        }
    }
    // The preview never shows the list.
    let preview = schemas["Preview"]["properties"].as_object().unwrap();
    assert!(!preview.contains_key("allowed_user_ids"));
    let codes = schemas["ErrorBody"]["properties"]["code"]["enum"].as_array().unwrap();
    assert!(codes.contains(&Value::from("INVITE_NOT_FOR_YOU")));
    let accept = &doc["paths"]["/invites/{code}/accept"]["post"]["responses"]["403"];
    assert!(accept["description"].as_str().unwrap().contains("INVITE_NOT_FOR_YOU"), "{accept}");
}
