//! Liveness and readiness.

use actix_web::{HttpResponse, web};
use invite_core::ErrorCode;
use invite_store::migrations::migration_status;
use serde_json::json;

use invite_runtime::door::Door;
use invite_runtime::maintenance::Maintenance;

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the server is stopping: responses then close their connections, and `/readyz`
/// says so.
#[derive(Debug, Default)]
pub(crate) struct Draining(AtomicBool);

impl Draining {
    /// The server is stopping.
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the server is stopping.
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

routes![healthz, readyz];

/// 200 while the process runs: nothing is checked, so a slow database never gets a healthy
/// process restarted.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process runs", body = Object, example = json!({"status": "ok"}))))]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 when the database answers and every migration is applied, with the maintenance switch
/// (maintenance keeps an instance ready: reads go on); otherwise 503 naming the check that
/// failed, or saying the instance is stopping, so a load balancer sends traffic elsewhere.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready: the database answers and every migration is applied", body = Object),
    (status = 503, description = "Not ready; `checks` names the failed check", body = Object,
        headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
))]
pub(crate) async fn readyz(
    door: web::Data<Door>,
    maintenance: web::Data<Maintenance>,
    draining: web::Data<Draining>,
) -> HttpResponse {
    // The database itself, not the circuit's last conclusion: a load balancer puts the instance
    // back in rotation as soon as the database answers again.
    let checked =
        door.check_health(|conn| Ok::<_, invite_ops::OpError>(migration_status(conn))).await;
    // Causes go to the log; the body names the failed check only.
    let (database, migrations) = match checked {
        Err(error) => {
            tracing::warn!(%error, "readiness: database unavailable");
            ("unavailable".to_owned(), "unknown".to_owned())
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: migration state unreadable");
            ("ok".to_owned(), "unreadable".to_owned())
        }
        Ok(Ok(status)) if status.pending.is_empty() => ("ok".to_owned(), "ok".to_owned()),
        Ok(Ok(status)) => ("ok".to_owned(), format!("pending: {}", status.pending.join(", "))),
    };
    let checks = json!({ "database": database, "migrations": migrations });
    // Maintenance refuses writes but serves reads: the instance stays in rotation, and says so.
    let maintenance = crate::api::wire::maintenance(maintenance.current().as_ref(), door.now());
    let draining = draining.is_set();
    if database == "ok" && migrations == "ok" && !draining {
        HttpResponse::Ok().json(json!({
            "status": "ready",
            "checks": checks,
            "maintenance": maintenance,
        }))
    } else if draining {
        // Stopping: a load balancer should send new requests elsewhere.
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", crate::api::error::RETRY_AFTER_SECONDS.to_string()))
            .json(json!({
                "error": "Not ready: the instance is shutting down",
                "code": ErrorCode::ServiceUnavailable,
                "status": "stopping",
                "checks": checks,
            }))
    } else {
        let failed = if database == "ok" { "migrations" } else { "database" };
        let body = json!({
            "error": format!("Not ready: the {failed} check failed"),
            "code": ErrorCode::ServiceUnavailable,
            "status": "unavailable",
            "checks": checks,
        });
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", crate::api::error::RETRY_AFTER_SECONDS.to_string()))
            .json(body)
    }
}
