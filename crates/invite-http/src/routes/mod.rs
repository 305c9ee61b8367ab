//! The routes of the API, one file per resource. Every resource answers a method it does not
//! take with a JSON 405, and every unknown path with a JSON 404.
//!
//! Each module declares its routes once with `routes!`: the same declaration registers them
//! on the app and lists them in [`table`], which the tests compare with `/openapi.json` so that
//! no route goes undocumented.

/// Declares a module's routes: `"/path" => { GET: handler, POST: other }`. Generates the
/// module's `configure` and its `ROUTES` listing.
macro_rules! routes {
    ($($path:literal => { $($method:ident: $handler:path),+ $(,)? }),+ $(,)?) => {
        pub(super) fn configure(cfg: &mut actix_web::web::ServiceConfig) {
            $(
                cfg.service(
                    super::common::resource($path, &[$(stringify!($method)),+])
                        $(.route(
                            actix_web::web::method(actix_web::http::Method::$method)
                                .to($handler)
                                // Refuses writes during maintenance; reads pass.
                                .wrap(actix_web::middleware::from_fn(
                                    crate::maintenance::refuse_writes,
                                )),
                        ))+
                );
            )+
        }

        pub(super) const ROUTES: &[(&str, &[&str])] = &[$(($path, &[$(stringify!($method)),+])),+];
    };
}

pub(crate) mod admin;
pub(crate) mod bans;
pub(crate) mod channels;
mod common;
pub(crate) mod health;
pub(crate) mod invites;
pub(crate) mod members;
pub(crate) mod metrics;
pub(crate) mod servers;
pub(crate) mod status;
pub(crate) mod vanity;
pub(crate) mod webhooks;

use actix_web::web;

/// Registers every route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    // First: the router tries routes in order, each dynamic one with a regular expression, and
    // previews and accepts are what a crowd sends; no other route starts with `/invites/`.
    invites::configure(cfg);
    health::configure(cfg);
    status::configure(cfg);
    admin::configure(cfg);
    metrics::configure(cfg);
    servers::configure(cfg);
    members::configure(cfg);
    bans::configure(cfg);
    channels::configure(cfg);
    vanity::configure(cfg);
    webhooks::configure(cfg);
    // A WebSocket: not part of the OpenAPI document, so not in `table`.
    crate::gateway::configure(cfg);
}

/// Every route the API serves, as `(path, method)`, for checks against the documentation.
/// The documentation's own routes (`/openapi.json`, `/docs`) are not part of the API.
pub fn table() -> Vec<(&'static str, &'static str)> {
    [
        health::ROUTES,
        status::ROUTES,
        admin::ROUTES,
        metrics::ROUTES,
        servers::ROUTES,
        members::ROUTES,
        bans::ROUTES,
        channels::ROUTES,
        vanity::ROUTES,
        webhooks::ROUTES,
        invites::ROUTES,
    ]
    .into_iter()
    .flatten()
    .flat_map(|(path, methods)| methods.iter().map(move |method| (*path, *method)))
    .collect()
}
