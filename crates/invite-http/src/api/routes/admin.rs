//! Operator endpoints, behind `INVITE_ADMIN_TOKEN` (compared in constant time). Without a
//! configured token they do not exist: 404, as for any unknown path.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use invite_api::MaintenanceRequest;
use invite_core::ErrorCode;
use invite_ops::{OpResult, Outcome};
use invite_store::DbConnection;
use invite_store::repo::MaintenanceState;
use secrecy::ExposeSecret as _;
use subtle::ConstantTimeEq;

use invite_runtime::door::Door;
use invite_runtime::maintenance::{Maintenance, MaintenanceView};
use invite_runtime::metrics::Metrics;
use secrecy::SecretString;

use super::common::app_data;
use crate::api::error::{ApiError, ApiResult, ErrorBody, ready_extractor};
use crate::api::extract::JsonBody;

routes![get_maintenance, start_maintenance, end_maintenance];

/// The operator token of `/admin/*`, if configured (`INVITE_ADMIN_TOKEN`).
#[derive(Debug)]
pub(crate) struct AdminToken(pub(crate) Option<SecretString>);

/// A caller holding the admin token, with what the admin endpoints work with: the door, and
/// this instance's view of the maintenance switch (with its gauge).
pub(crate) struct Admin {
    door: web::Data<Door>,
    here: MaintenanceView,
}

ready_extractor!(Admin, admin);

fn admin(req: &HttpRequest, _: &mut Payload) -> Result<Admin, ApiError> {
    let expected = req
        .app_data::<web::Data<AdminToken>>()
        .and_then(|token| token.0.as_ref())
        .ok_or_else(|| ApiError::of(ErrorCode::NotFound))?;
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().as_bytes())
        .unwrap_or_default();
    if bool::from(given.ct_eq(expected.expose_secret().as_bytes())) {
        let here = MaintenanceView {
            maintenance: app_data::<Maintenance>(req)?.into_inner(),
            metrics: app_data::<Metrics>(req)?.into_inner(),
        };
        Ok(Admin { door: app_data(req)?, here })
    } else {
        Err(ApiError::with_message(
            ErrorCode::Unauthorized,
            "The admin token (Authorization: Bearer <INVITE_ADMIN_TOKEN>) is required",
        ))
    }
}

/// The maintenance switch as this instance sees it.
#[utoipa::path(get, path = "/admin/maintenance", tag = "operations", security(("admin" = [])), responses(
    (status = 200, description = "The switch", body = invite_api::Maintenance),
    super::common::AdminRefusals,
))]
pub(crate) async fn get_maintenance(admin: Admin) -> HttpResponse {
    let now = admin.door.now();
    let current = admin.here.maintenance.current();
    HttpResponse::Ok().json(crate::api::wire::maintenance(current.as_ref(), now))
}

/// Starts (or changes) maintenance on every instance sharing the database: writes answer 503
/// `MAINTENANCE` with the message and `Retry-After`, reads and previews go on.
#[utoipa::path(put, path = "/admin/maintenance", tag = "operations", security(("admin" = [])),
    request_body(content = Option<MaintenanceRequest>, description = "Absent or `{}`: no message, no planned end"), responses(
    (status = 200, description = "Maintenance is on", body = invite_api::Maintenance),
    (status = 400, description = "`VALIDATION_ERROR`: a message over 500 characters or an end in the past", body = ErrorBody),
    super::common::AdminRefusals,
))]
pub(crate) async fn start_maintenance(
    admin: Admin,
    JsonBody(request): JsonBody<MaintenanceRequest>,
) -> ApiResult<HttpResponse> {
    let (switched, now) =
        admin.turn(move |conn, now| invite_ops::maintenance::start(conn, &request, now)).await?;
    Ok(HttpResponse::Ok().json(crate::api::wire::maintenance(Some(&switched), now)))
}

/// Ends maintenance on every instance sharing the database.
#[utoipa::path(delete, path = "/admin/maintenance", tag = "operations", security(("admin" = [])), responses(
    (status = 204, description = "Maintenance is off"),
    super::common::AdminRefusals,
))]
pub(crate) async fn end_maintenance(admin: Admin) -> ApiResult<HttpResponse> {
    admin.turn(invite_ops::maintenance::end).await?;
    Ok(HttpResponse::NoContent().finish())
}

impl Admin {
    /// Turns the switch as `work` does, on every instance sharing the database, and shows it on
    /// this one at once (the others read it from the database); the switch as it now stands,
    /// and the time it was turned.
    async fn turn<F>(&self, work: F) -> ApiResult<(MaintenanceState, DateTime<Utc>)>
    where
        F: FnOnce(&mut DbConnection, DateTime<Utc>) -> OpResult<Outcome<MaintenanceState>>
            + Send
            + 'static,
    {
        let now = self.door.now();
        let switched = self.door.change(move |conn| work(conn, now)).await?;
        self.here.show(Some(switched.clone()), now);
        Ok((switched, now))
    }
}
