//! What the routes share: resources that answer 405 in JSON, and the paging queries.

use actix_web::{Resource, web};
use serde::Deserialize;
use uuid::Uuid;

use crate::extract::method_not_allowed;

/// A resource whose other methods answer 405 in JSON, with the `Allow` header listing `allowed`.
pub(super) fn resource(path: &str, allowed: &'static [&'static str]) -> Resource {
    web::resource(path).default_service(web::to(move || method_not_allowed(allowed)))
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
