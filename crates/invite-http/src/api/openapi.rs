//! The OpenAPI document, generated from the handlers' annotations, and the responses every
//! operation shares, added in one place so no operation can forget one.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The whole API: what `Frame` says, the paths of every route module, and the responses
/// every operation shares.
pub(crate) struct ApiDoc;

impl OpenApi for ApiDoc {
    fn openapi() -> Document {
        let mut document = Frame::openapi();
        for part in crate::api::routes::documents() {
            document.merge(part);
        }
        // After the merge: the shared responses are added to every path.
        BearerAuth.modify(&mut document);
        SharedResponses.modify(&mut document);
        document
    }
}

/// What the API says of itself, beside its paths.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Invite service",
        description = "Invite links for chat servers: create, preview, accept. Every error is \
                       `{\"error\": message, \"code\": CODE}`.",
    ),
    components(schemas(invite_api::ErrorBody, invite_api::RateLimitedBody)),
    tags(
        (name = "invites", description = "Invites: create, list, edit, revoke, preview, accept"),
        (name = "servers", description = "Servers, channels, the invite pause and the audit log"),
        (name = "members", description = "Members and bans"),
        (name = "events", description = "The server's events: webhooks, and the events endpoint"),
        (name = "operations", description = "Health, readiness, status, metrics and maintenance"),
    ),
)]
struct Frame;

/// The document as served at `/openapi.json`: utoipa's, plus what its types cannot say.
pub(crate) fn document() -> serde_json::Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    // `max_age` and `expires_in_hours` are two spellings of one setting: never both.
    // (`null` counts as left out.)
    for request in ["CreateInviteRequest", "UpdateInviteRequest"] {
        if let Some(schema) = document.pointer_mut(&format!("/components/schemas/{request}")) {
            schema["not"] = serde_json::json!({
                "required": ["max_age", "expires_in_hours"],
                "properties": { "max_age": { "type": "number" }, "expires_in_hours": { "type": "number" } },
            });
        }
    }
    // Optional parameters are left out, never sent as `null`: a query string or header has no
    // null, and utoipa marks every `Option` nullable.
    if let Some(paths) = document.get_mut("paths").and_then(|paths| paths.as_object_mut()) {
        let parameters = paths
            .values_mut()
            .filter_map(|item| item.as_object_mut())
            .flat_map(|item| item.values_mut())
            .filter_map(|operation| operation.get_mut("parameters")?.as_array_mut())
            .flatten();
        for parameter in parameters {
            if let Some(types) =
                parameter.pointer_mut("/schema/type").and_then(|t| t.as_array_mut())
            {
                types.retain(|kind| kind != "null");
                if let [single] = types.as_slice() {
                    let single = single.clone();
                    parameter["schema"]["type"] = single;
                }
            }
        }
    }
    document
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("HS256 (Together's tokens) or the configured public key"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("INVITE_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

/// Responses any operation can give: malformed input (400), a declared body over 16 KiB (413),
/// a failure (500), an unavailable database (503); with a token, 401; with a body, 415.
struct SharedResponses;

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
    )
}

fn add_shared(operation: &mut Operation) {
    // A 409 of the operation's own gains the idempotency meaning instead of being replaced.
    let keyed = operation.parameters.iter().flatten().any(|parameter| {
        matches!(parameter, utoipa::openapi::RefOr::T(parameter) if parameter.name == "Idempotency-Key")
    });
    if keyed
        && let Some(utoipa::openapi::RefOr::T(response)) =
            operation.responses.responses.get_mut("409")
    {
        response.description = format!(
            "{}; or `IDEMPOTENCY_IN_FLIGHT`: a request with the same key is still running",
            response.description
        );
    }
    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, response: ResponseBuilder| {
        responses.entry(status.to_owned()).or_insert_with(|| response.build().into());
    };
    add(
        "400",
        error_response(
            "Malformed input: `INVALID_ID`, `INVALID_QUERY`, `INVALID_JSON`, `VALIDATION_ERROR`",
        ),
    );
    add("408", error_response("`REQUEST_TIMEOUT`: the request did not arrive in time"));
    add("413", error_response("`PAYLOAD_TOO_LARGE`: the body is over 16 KiB"));
    add("500", error_response("`INTERNAL_ERROR`; the cause is in the service's log"));
    add(
        "503",
        error_response(
            "Retry after `Retry-After` seconds: `SERVICE_UNAVAILABLE` (the database is away), \
             `OVERLOADED` (more work waits than can be served in time), or, for writes, \
             `MAINTENANCE` (with the operator's message)",
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .description(Some(
                    "Seconds to wait; during maintenance, until the planned end, at most 60",
                ))
                .build(),
        ),
    );
    if keyed {
        add(
            "422",
            error_response("`IDEMPOTENCY_KEY_REUSED`: the key was used for another request"),
        );
        let in_flight = "`IDEMPOTENCY_IN_FLIGHT`: a request with the same key is still running";
        add("409", error_response(in_flight));
    }
    if operation.security.as_ref().is_some_and(|security| !security.is_empty()) {
        add("401", error_response("`UNAUTHORIZED`: missing, invalid or expired bearer token"));
    }
    if operation.request_body.is_some() {
        add(
            "415",
            error_response("`UNSUPPORTED_MEDIA_TYPE`: a body that is not `application/json`"),
        );
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut Document) {
        for item in openapi.paths.paths.values_mut() {
            operations(item).for_each(add_shared);
        }
    }
}
