//! Building and running the HTTP server on a listener it is handed: the binary binds the
//! configured address, tests bind port 0.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};

use crate::state::AppState;
use utoipa_swagger_ui::SwaggerUi;

use crate::{extract, openapi, request_id, routes};

/// How the server runs.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// Worker threads; `None` is one per core.
    pub workers: Option<usize>,
    /// How long in-flight requests may finish after a stop signal.
    pub shutdown_timeout: Duration,
    /// The database pool's size: more threads waiting for a connection than there are
    /// connections only cost memory, so each worker's blocking pool is sized from it.
    pub db_pool_size: u32,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self { workers: None, shutdown_timeout: Duration::from_secs(30), db_pool_size: 10 }
    }
}

/// Registers the whole application on an actix `App`: state, extractor error handlers, routes,
/// the JSON 404, the JSON safety net for actix's own error responses, and request ids.
pub fn configure_app(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .app_data(extract::path_config())
            .app_data(extract::query_config())
            .configure(routes::configure);
    }
}

/// Starts serving on `listener`. The returned server handles SIGTERM and Ctrl-C itself: it stops
/// accepting, lets in-flight requests finish within the shutdown timeout, then returns, and
/// dropping the state afterwards closes the pool.
pub fn run(
    listener: TcpListener,
    state: AppState,
    options: ServerOptions,
) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    // Built once: the handlers' annotations do not change while the process runs.
    let document = openapi::document();
    let mut server = HttpServer::new(move || {
        App::new()
            .configure(configure_app(state.clone()))
            .route(
                "/openapi.json",
                web::get().to({
                    let document = document.clone();
                    move || std::future::ready(web::Json(document.clone()))
                }),
            )
            // Swagger UI's files are compiled into the binary (`vendored`): no internet needed.
            .service(
                SwaggerUi::new("/docs/{_:.*}")
                    .config(utoipa_swagger_ui::Config::from("/openapi.json")),
            )
            .service(web::redirect("/docs", "/docs/"))
            .default_service(web::to(extract::not_found))
            .wrap(from_fn(extract::refuse_oversized_bodies))
            .wrap(ErrorHandlers::new().default_handler(extract::json_error_bodies))
            .wrap(from_fn(request_id::middleware))
    })
    .shutdown_timeout(options.shutdown_timeout.as_secs())
    .listen(listener)?;
    let workers = options
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
        .max(1);
    let pool_size = usize::try_from(options.db_pool_size).unwrap_or(usize::MAX);
    server = server.workers(workers).worker_max_blocking_threads(pool_size.div_ceil(workers) + 1);
    Ok(server.run())
}
