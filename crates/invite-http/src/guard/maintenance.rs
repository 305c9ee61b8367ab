//! Maintenance mode (contract section 6): writes answer 503 `MAINTENANCE`, reads and previews
//! go on.
//!
//! The switch is set at start from `INVITE_MAINTENANCE` (when set), or at run time through
//! `/admin/maintenance`; each instance's view of it is `invite_runtime::maintenance`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use chrono::{DateTime, Utc};
use invite_runtime::door::Door;
use invite_runtime::maintenance::Maintenance;
use invite_store::repo::MaintenanceState;

use crate::api::error::ApiError;

pub(crate) use invite_core::maintenance::MAX_MESSAGE_LEN;

/// The longest clients are asked to wait, and what they are asked when the window has no
/// planned end: a window of hours must not make clients sleep for hours, nor miss an early end.
const MAX_RETRY_AFTER: u64 = 60;

/// The refusal of a write during `state`'s window at `now`: `Retry-After` is the seconds until
/// the planned end, at most `MAX_RETRY_AFTER`.
pub(crate) fn refusal(state: &MaintenanceState, now: DateTime<Utc>) -> ApiError {
    let retry_after = state.ends_at.map_or(MAX_RETRY_AFTER, |ends_at| {
        let left = (ends_at - now).num_milliseconds().max(0);
        u64::try_from((left + 999) / 1000).unwrap_or(1).clamp(1, MAX_RETRY_AFTER)
    });
    ApiError::Maintenance { message: state.message.clone(), retry_after }
}

/// Whether a method changes something (the methods maintenance refuses).
fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Route middleware: refuses writes during maintenance, before anything else is read (no token
/// check, no database).
pub(crate) async fn refuse_writes<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    // The operator's own switch is never refused.
    if is_write(req.method())
        && !req.path().starts_with("/admin/")
        && let Some(maintenance) = req.app_data::<web::Data<Maintenance>>()
        && let Some(door) = req.app_data::<web::Data<Door>>()
        && let Some(window) = maintenance.active(door.now())
    {
        let response = refusal(&window, door.now()).error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn retry_after_counts_down_to_the_planned_end_at_most_a_minute() {
        let now = Utc::now();
        let state = |ends_at| MaintenanceState {
            enabled: true,
            message: Some("Upgrading".into()),
            ends_at,
            since: now,
        };
        let seconds = |error| match error {
            ApiError::Maintenance { retry_after, message } => {
                assert_eq!(message.as_deref(), Some("Upgrading"));
                retry_after
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(seconds(refusal(&state(None), now)), 60);
        assert_eq!(seconds(refusal(&state(Some(now + TimeDelta::milliseconds(40_500))), now)), 41);
        assert_eq!(seconds(refusal(&state(Some(now + TimeDelta::milliseconds(60_000))), now)), 60);
        assert_eq!(seconds(refusal(&state(Some(now + TimeDelta::milliseconds(60_001))), now)), 60);
        assert_eq!(seconds(refusal(&state(Some(now + TimeDelta::days(1_500))), now)), 60);
        assert_eq!(seconds(refusal(&state(Some(now + TimeDelta::milliseconds(10))), now)), 1);
        let maintenance = Maintenance::default();
        maintenance.update(Some(state(Some(now + TimeDelta::seconds(5)))));
        assert!(maintenance.active(now).is_some());
        assert!(maintenance.active(now + TimeDelta::seconds(5)).is_none(), "over by itself");
    }
}
