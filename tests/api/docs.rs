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
    let served: BTreeSet<(String, String)> = invite_http::routes::table()
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
