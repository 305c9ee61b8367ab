//! What the routes share: the module and handler records `routes!` builds, the paging
//! queries, and the parameters and refusals their annotations repeat.

use actix_web::Route;
use serde::Deserialize;
use utoipa::openapi::path::HttpMethod;
use uuid::Uuid;

/// `?limit=&before=` for lists newest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct BeforeQuery {
    /// Page size (1-100, default 50).
    #[param(minimum = 1, maximum = 100)]
    pub(super) limit: Option<i64>,
    /// Only entries older than this one (its id).
    pub(super) before: Option<Uuid>,
}

/// `?limit=&after=` for lists by user id.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AfterQuery {
    /// Page size (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(super) limit: Option<i64>,
    /// Only users after this user id.
    pub(super) after: Option<Uuid>,
}

/// A route module, as `routes!` declares it.
pub(crate) struct Module {
    pub(super) endpoints: fn() -> Vec<Endpoint>,
    pub(super) document: fn() -> utoipa::openapi::OpenApi,
}

/// One handler: the path and methods its `#[utoipa::path]` declares, and its route.
pub(crate) struct Endpoint {
    pub(super) path: String,
    pub(super) methods: Vec<HttpMethod>,
    pub(super) route: fn() -> Route,
}

impl Endpoint {
    /// The handler `route` serves, where its annotation `P` says.
    pub(crate) fn of<P: utoipa::Path>(route: fn() -> Route) -> Self {
        Self { path: P::path(), methods: P::methods(), route }
    }
}

/// The `Idempotency-Key` header every POST takes.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct IdempotencyHeader {
    /// Makes retrying the request safe: within 24 hours, the same key from the same user
    /// replays the first response (`Idempotent-Replayed: true`) without doing the work again;
    /// the same key on another request is 422 `IDEMPOTENCY_KEY_REUSED`, and while its twin
    /// still runs, 409 `IDEMPOTENCY_IN_FLIGHT`. 1-255 printable ASCII characters.
    #[serde(rename = "Idempotency-Key")]
    #[param(max_length = 255, pattern = "^[ -~]{1,255}$")]
    #[expect(dead_code, reason = "read from the header by `idempotency::IdempotencyKey`")]
    idempotency_key: Option<String>,
}

/// The `If-Match` header of conditional edits and revocations.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct IfMatchHeader {
    /// Expected version, e.g. `"3"`
    #[param(rename = "If-Match", pattern = r#"^(\*|(W/)?"[0-9]{1,18}"|[0-9]{1,18})$"#)]
    #[expect(dead_code, reason = "read from the header by `extract::if_match`")]
    if_match: Option<String>,
}

/// `{server_id}`, in the path of every server's resource.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ServerPath {
    /// The server
    #[expect(dead_code, reason = "read by each handler's `web::Path`")]
    server_id: uuid::Uuid,
}

/// `{code}`, in the path of an invite named by its code.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct CodePath {
    /// A random code (8 characters, case sensitive) or a vanity code
    #[expect(dead_code, reason = "read by each handler's `web::Path`")]
    code: String,
}

/// The refusal of a caller without the permission an operation needs.
#[derive(utoipa::IntoResponses)]
#[response(status = 403, description = "`MISSING_PERMISSION`")]
pub(crate) struct MissingPermission(
    #[expect(dead_code, reason = "documents the body; `ApiError` writes it")]
    invite_api::ErrorBody<'static>,
);

/// The refusal of a server that does not exist, or whose member the caller is not.
#[derive(utoipa::IntoResponses)]
#[response(status = 404, description = "`SERVER_NOT_FOUND`")]
pub(crate) struct ServerNotFound(
    #[expect(dead_code, reason = "documents the body; `ApiError` writes it")]
    invite_api::ErrorBody<'static>,
);

/// The refusals of the operator's endpoints.
#[derive(utoipa::IntoResponses)]
#[expect(dead_code, reason = "documents the bodies; `ApiError` writes them")]
pub(crate) enum AdminRefusals {
    /// A token that is not the admin token.
    #[response(status = 401, description = "`UNAUTHORIZED`: not the admin token")]
    Unauthorized(invite_api::ErrorBody<'static>),
    /// No admin token is configured: the endpoints do not exist.
    #[response(status = 404, description = "`NOT_FOUND`: no admin token is configured")]
    NotFound(invite_api::ErrorBody<'static>),
}
