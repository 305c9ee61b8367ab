//! The API's documentation for people: Swagger UI at `/docs/`, its files compiled into the
//! binary (`utoipa-swagger-ui`'s `vendored` feature), reading `/openapi.json`.
//!
//! Served here rather than through the crate's own actix service so that every answer carries
//! a Content-Security-Policy: the UI runs script, and the page must run only the UI's.

use std::sync::{Arc, LazyLock};

use actix_web::http::header;
use actix_web::{HttpResponse, HttpResponseBuilder, web};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use utoipa_swagger_ui::Config;

use crate::api::error::ApiError;

/// The one inline stylesheet Swagger UI writes: the colours of the logo in its top bar, an SVG
/// with a `<style>` of its own (in `swagger-ui-standalone-preset.js`).
const LOGO_STYLE: &str = ".logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}";

/// Swagger UI's files only. Its index page loads every script and stylesheet from files of its
/// own (no inline script, so no `'unsafe-inline'` and no hash for scripts), the logo's
/// stylesheet is allowed by its hash; its icons are `data:` images in its stylesheet; it
/// fetches the document, and "Try it out" calls the API, on this origin. Never in a frame,
/// where a page of someone else's could dress the API's own buttons up as its own.
pub(crate) fn content_security_policy() -> &'static str {
    static POLICY: LazyLock<String> = LazyLock::new(|| {
        let logo = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(LOGO_STYLE));
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self' 'sha256-{logo}'; \
             img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        )
    });
    &POLICY
}

/// Registers `/docs` (a redirect to `/docs/`) and `/docs/{file}`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    // No validator: Swagger UI would send the document's address to swagger.io's, from the
    // reader's browser, and the policy allows no image from there.
    let config = Config::from("/openapi.json").validator_url("none");
    cfg.app_data(web::Data::new(config))
        .route("/docs", web::get().to(index_redirect))
        .route("/docs/{file:.*}", web::get().to(file));
}

/// The headers every answer under `/docs` carries.
fn guarded(mut response: HttpResponseBuilder) -> HttpResponseBuilder {
    response
        .insert_header((header::CONTENT_SECURITY_POLICY, content_security_policy()))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    response
}

async fn index_redirect() -> HttpResponse {
    guarded(HttpResponse::TemporaryRedirect()).insert_header((header::LOCATION, "/docs/")).finish()
}

async fn file(path: web::Path<String>, config: web::Data<Config<'static>>) -> HttpResponse {
    let config: Arc<Config<'static>> = config.into_inner();
    match utoipa_swagger_ui::serve(&path.into_inner(), config) {
        Ok(Some(file)) => {
            let mut response = guarded(HttpResponse::Ok());
            if file.gzpipped {
                response.insert_header((header::CONTENT_ENCODING, "gzip"));
            }
            response.content_type(file.content_type).body(file.bytes.into_owned())
        }
        Ok(None) => crate::api::extract::not_found().await,
        Err(error) => actix_web::ResponseError::error_response(&ApiError::internal(format!(
            "Swagger UI's files cannot be served: {error}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash allows the stylesheet the vendored Swagger UI writes, as it writes it: another
    /// version of the UI with another logo fails here rather than in a reader's browser.
    #[test]
    fn the_logo_style_is_the_one_swagger_ui_writes() {
        let config = Arc::new(Config::from("/openapi.json"));
        let preset = utoipa_swagger_ui::serve("swagger-ui-standalone-preset.js", config)
            .unwrap()
            .expect("the vendored files hold the preset");
        assert!(!preset.gzpipped);
        let script = String::from_utf8(preset.bytes.into_owned()).unwrap();
        assert!(script.contains(&format!("createElement(\"style\",null,\"{LOGO_STYLE}\")")));
        assert_eq!(script.matches("createElement(\"style\"").count(), 1, "one inline stylesheet");
        assert!(
            content_security_policy()
                .contains("style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='")
        );
    }
}
