//! The routes of the API, one file per resource. Every resource answers a method it does not
//! take with a JSON 405, and every unknown path with a JSON 404.

mod bans;
mod channels;
mod health;
mod invites;
mod members;
mod servers;
mod vanity;

use actix_web::{Resource, web};
use invite_core::ErrorCode;
use invite_core::permissions::Standing;
use invite_store::repo::ServerRepository;
use invite_store::{DbConnection, StoreResult};
use serde::Deserialize;
use uuid::Uuid;

use crate::extract::method_not_allowed;

/// Registers every route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    servers::configure(cfg);
    members::configure(cfg);
    bans::configure(cfg);
    channels::configure(cfg);
    vanity::configure(cfg);
    invites::configure(cfg);
}

/// A resource whose other methods answer 405 in JSON.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// The caller's standing in a server they belong to; 404 `SERVER_NOT_FOUND` otherwise, so a
/// stranger cannot tell a private server from a missing one.
fn member_standing(
    conn: &mut DbConnection,
    server_id: Uuid,
    user_id: Uuid,
) -> StoreResult<Standing> {
    conn.standing(server_id, user_id)?
        .ok_or_else(|| invite_core::Problem::of(ErrorCode::ServerNotFound).into())
}

/// `?limit=&before=` for lists newest first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BeforeQuery {
    limit: Option<i64>,
    before: Option<Uuid>,
}

/// `?limit=&after=` for lists by user id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AfterQuery {
    limit: Option<i64>,
    after: Option<Uuid>,
}
