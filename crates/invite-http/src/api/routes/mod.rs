//! The routes of the API, one file per resource. Every resource answers a method it does not
//! take with a JSON 405, and every unknown path with a JSON 404.
//!
//! Each route is declared once, by its handler's `#[utoipa::path(method, path = ...)]`: each
//! module names its handlers with `routes!`, and both the router and the OpenAPI document
//! are built from that list, so no route can be served undocumented or documented unserved.

/// Names a module's handlers, each annotated with `#[utoipa::path]`, in the order the router
/// tries them. Generates the module's [`Module`]: its routes, taken from each annotation's
/// method and path, and its part of the OpenAPI document.
macro_rules! routes {
    ($($handler:ident),+ $(,)?) => {
        /// This module's part of the OpenAPI document.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($handler),+))]
        struct Api;

        /// This module's handlers, with the method and path each declares.
        pub(super) const MODULE: super::common::Module = super::common::Module {
            endpoints: || {
                pastey::paste! {
                    vec![$(super::common::Endpoint::of::<[<__path_ $handler>]>(|| actix_web::web::to($handler))),+]
                }
            },
            document: <Api as utoipa::OpenApi>::openapi,
        };
    };
}

pub(crate) mod admin;
pub(crate) mod bans;
pub(crate) mod channels;
mod common;
pub(crate) mod health;
pub(crate) mod invites;
pub(crate) mod join_requests;
pub(crate) mod members;
pub(crate) mod metrics;
pub(crate) mod servers;
pub(crate) mod stats;
pub(crate) mod status;
pub(crate) mod vanity;
pub(crate) mod webhooks;

use std::sync::{Arc, OnceLock};

use actix_web::http::Method;
use actix_web::web;
use utoipa::openapi::path::HttpMethod;

use crate::api::extract::method_not_allowed;
use common::{Endpoint, Module};

/// The route modules, in the order the router tries their routes. First: the router tries
/// routes in order, each dynamic one with a regular expression, and previews and accepts are
/// what a crowd sends; no other route starts with `/invites/`.
static MODULES: [Module; 13] = [
    invites::MODULE,
    health::MODULE,
    status::MODULE,
    admin::MODULE,
    metrics::MODULE,
    servers::MODULE,
    members::MODULE,
    bans::MODULE,
    channels::MODULE,
    vanity::MODULE,
    webhooks::MODULE,
    join_requests::MODULE,
    stats::MODULE,
];

/// Registers every route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    // One resource per path, in the order its first handler comes: the handlers of a path
    // share its 405, which lists them all.
    let mut resources: Vec<(String, Vec<Endpoint>)> = Vec::new();
    for endpoint in MODULES.iter().flat_map(|module| (module.endpoints)()) {
        match resources.iter_mut().find(|(path, _)| *path == endpoint.path) {
            Some((_, endpoints)) => endpoints.push(endpoint),
            None => resources.push((endpoint.path.clone(), vec![endpoint])),
        }
    }
    for (path, endpoints) in resources {
        let allowed: Arc<[&'static str]> = endpoints
            .iter()
            .flat_map(|endpoint| endpoint.methods.iter().map(|method| method_of(method).1))
            .collect();
        let mut resource = web::resource(path)
            .default_service(web::to(move || method_not_allowed(Arc::clone(&allowed))));
        for endpoint in endpoints {
            for method in &endpoint.methods {
                resource = resource.route(
                    (endpoint.route)()
                        .method(method_of(method).0)
                        // Refuses writes during maintenance; reads pass.
                        .wrap(actix_web::middleware::from_fn(
                            crate::guard::maintenance::refuse_writes,
                        )),
                );
            }
        }
        cfg.service(resource);
    }
    // A WebSocket: not part of the OpenAPI document, so not in `table`.
    crate::gateway::configure(cfg);
}

/// Every route the API serves, as `(path, method)`, for checks against the documentation.
/// The documentation's own routes (`/openapi.json`, `/docs`) are not part of the API.
pub fn table() -> Vec<(&'static str, &'static str)> {
    static TABLE: OnceLock<Vec<(String, &'static str)>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            MODULES
                .iter()
                .flat_map(|module| (module.endpoints)())
                .flat_map(|Endpoint { path, methods, .. }| {
                    methods.into_iter().map(move |method| (path.clone(), method_of(&method).1))
                })
                .collect()
        })
        .iter()
        .map(|(path, method)| (path.as_str(), *method))
        .collect()
}

/// Each module's part of the OpenAPI document.
pub(crate) fn documents() -> impl Iterator<Item = utoipa::openapi::OpenApi> {
    MODULES.iter().map(|module| (module.document)())
}

/// The method actix routes by, and its name for the `Allow` header.
fn method_of(method: &HttpMethod) -> (Method, &'static str) {
    match method {
        HttpMethod::Get => (Method::GET, "GET"),
        HttpMethod::Post => (Method::POST, "POST"),
        HttpMethod::Put => (Method::PUT, "PUT"),
        HttpMethod::Delete => (Method::DELETE, "DELETE"),
        HttpMethod::Options => (Method::OPTIONS, "OPTIONS"),
        HttpMethod::Head => (Method::HEAD, "HEAD"),
        HttpMethod::Patch => (Method::PATCH, "PATCH"),
        HttpMethod::Trace => (Method::TRACE, "TRACE"),
    }
}
