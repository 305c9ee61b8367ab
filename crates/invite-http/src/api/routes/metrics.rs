//! `GET /metrics`: Prometheus text.

use actix_web::{HttpResponse, web};

use invite_runtime::door::Door;
use invite_runtime::metrics::Metrics;

routes![metrics];

/// The Prometheus text exposition of the service's metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"),
))]
pub(crate) async fn metrics(door: web::Data<Door>, metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render(door.pool(), door.lag()))
}
