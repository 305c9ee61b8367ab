//! What the routes share: the caller every signed-in handler acts as, the module and handler
//! records `routes!` builds, the paging queries, and the parameters and refusals their
//! annotations repeat.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, Route, web};
use invite_ops::{Ctx, OpError, OpResult, Outcome};
use invite_runtime::door::Door;
use invite_store::DbConnection;
use invite_store::repo::Actor;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::HttpMethod;
use uuid::Uuid;

use crate::api::error::{ApiError, ApiResult, ready_extractor};
use crate::guard::auth::AuthUser;

/// The signed-in caller and the door their work goes through: what a handler acting for a user
/// starts with. The operation's `Ctx` (who, and now) is made when the work is handed to the
/// door, after every extractor has run and the body has arrived.
pub(crate) struct Caller {
    door: web::Data<Door>,
    actor: Actor,
}

ready_extractor!(Caller, caller);

/// The caller of a request: the door, and the user its token names.
fn caller(req: &HttpRequest, payload: &mut Payload) -> Result<Caller, ApiError> {
    let door = app_data(req)?;
    let AuthUser(actor) = AuthUser::from_request(req, payload).into_inner()?;
    Ok(Caller { door, actor })
}

/// A part of the service the app was built with, for extractors made of several.
pub(crate) fn app_data<T: 'static>(req: &HttpRequest) -> Result<web::Data<T>, ApiError> {
    req.app_data::<web::Data<T>>().cloned().ok_or_else(|| {
        ApiError::internal(format!("{} is not registered", std::any::type_name::<T>()))
    })
}

impl Caller {
    /// The caller's user id.
    pub(crate) fn user_id(&self) -> Uuid {
        self.actor.user_id
    }

    /// The door, for work that is neither one read nor one change.
    pub(crate) fn door(&self) -> &Door {
        &self.door
    }

    /// Who acts, and now.
    pub(crate) fn ctx(&self) -> Ctx {
        self.door.ctx(self.actor.clone())
    }

    /// Runs a query (an operation that changes nothing) as the caller.
    pub(crate) async fn read<T, E, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: FnOnce(&mut DbConnection, &Ctx) -> Result<T, E> + Send + 'static,
    {
        let ctx = self.ctx();
        Ok(self.door.read(move |conn| work(conn, &ctx)).await?)
    }

    /// Runs a query as the caller whose answer may be stale by up to the standby's bound
    /// (`Door::read_stale`): for lists a user only looks at, never for what decides a change.
    pub(crate) async fn read_stale<T, E, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        E: Into<OpError>,
        F: Fn(&mut DbConnection, &Ctx) -> Result<T, E> + Send + Sync + 'static,
    {
        let ctx = self.ctx();
        Ok(self.door.read_stale(move |conn| work(conn, &ctx)).await?)
    }

    /// Runs a change as the caller; its events are settled before its value returns.
    pub(crate) async fn change<T, F>(&self, work: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &Ctx) -> OpResult<Outcome<T>> + Send + 'static,
    {
        let ctx = self.ctx();
        Ok(self.door.change(move |conn| work(conn, &ctx)).await?)
    }

    /// Runs a change as the caller whose answer shows nothing of it: `204 No Content`.
    pub(crate) async fn change_then_no_content<T, F>(&self, work: F) -> ApiResult<HttpResponse>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &Ctx) -> OpResult<Outcome<T>> + Send + 'static,
    {
        self.change(work).await?;
        Ok(HttpResponse::NoContent().finish())
    }
}

/// `200` with `items` as one JSON array, each as `show` puts it on the wire.
pub(crate) fn json_list<T, U: Serialize>(
    items: impl IntoIterator<Item = T>,
    show: impl FnMut(T) -> U,
) -> HttpResponse {
    HttpResponse::Ok().json(items.into_iter().map(show).collect::<Vec<_>>())
}

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

impl BeforeQuery {
    /// The page as the operations take it: `(limit, before)`.
    pub(super) fn page(self) -> (Option<i64>, Option<Uuid>) {
        (self.limit, self.before)
    }
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

impl AfterQuery {
    /// The page as the operations take it: `(limit, after)`.
    pub(super) fn page(self) -> (Option<i64>, Option<Uuid>) {
        (self.limit, self.after)
    }
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

/// The refusals of a create or an edit of an invite that may grant permissions.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 403,
    description = "`MISSING_PERMISSION` (the permission the action needs, or a bit `grant_permissions` grants that the caller lacks) or `OWNER_ONLY` (granting `ADMINISTRATOR`)"
)]
pub(crate) struct GrantRefused(
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

/// The refusal of an invite that is not one of the server's, or of a server the caller is not
/// in.
#[derive(utoipa::IntoResponses)]
#[response(status = 404, description = "`SERVER_NOT_FOUND` or `INVITE_NOT_FOUND`")]
pub(crate) struct InviteNotFound(
    #[expect(dead_code, reason = "documents the body; `ApiError` writes it")]
    invite_api::ErrorBody<'static>,
);

/// The refusals of what needs a permission on one of a server's invites, revoked ones too.
#[derive(utoipa::IntoResponses)]
#[expect(dead_code, reason = "documents the bodies; `ApiError` writes them")]
pub(crate) enum InviteRefusals {
    /// The caller lacks the permission.
    #[response(status = 403, description = "`MISSING_PERMISSION`")]
    MissingPermission(invite_api::ErrorBody<'static>),
    /// No such invite in a server the caller is in.
    #[response(
        status = 404,
        description = "`SERVER_NOT_FOUND`, or `INVITE_NOT_FOUND` (unknown, or another server's)"
    )]
    NotFound(invite_api::ErrorBody<'static>),
}

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
