//! `GET /status`: the page people are told to check when invites fail. JSON for programs, a
//! small HTML page for browsers (by the `Accept` header), both computed from what this instance
//! observes: its view of the database (answering, shedding or failing lately, unreachable) and
//! the maintenance switch.

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use invite_api::{Component, Level, Status, Window};
use sha2::{Digest as _, Sha256};

use invite_runtime::db::DbState;
use invite_runtime::door::Door;
use invite_runtime::maintenance::Maintenance;

/// When the process started serving.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Started(pub(crate) Instant);

routes![status];

/// The page's headline for each status.
fn words(level: Level) -> &'static str {
    match level {
        Level::Operational => "All systems operational",
        Level::Degraded => "Degraded performance",
        Level::Maintenance => "Under maintenance",
        Level::Outage => "Outage",
    }
}

fn wall_clock(at: Instant, now: Instant, wall_now: DateTime<Utc>) -> DateTime<Utc> {
    let ago = now.saturating_duration_since(at);
    wall_now - chrono::TimeDelta::from_std(ago).unwrap_or_default()
}

fn document(door: &Door, maintenance: &Maintenance, started: Started) -> Status {
    let (now, wall_now) = (Instant::now(), door.now());
    let health = door.health();
    let (database, description) = match health.state {
        DbState::Healthy => (Level::Operational, "The database answers"),
        DbState::Degraded { shedding: true } => {
            (Level::Degraded, "Busy: some requests were refused to keep the rest fast")
        }
        DbState::Degraded { shedding: false } => {
            (Level::Degraded, "Some requests failed to reach the database lately")
        }
        DbState::Unreachable => (Level::Outage, "The database cannot be reached"),
    };
    let database = Component {
        name: "database".to_owned(),
        status: database,
        since: wall_clock(health.since, now, wall_now),
        description: description.to_owned(),
    };
    let switch = maintenance.current();
    let active = switch.as_ref().filter(|window| window.is_active(wall_now));
    let writes = match (active, &switch) {
        (Some(window), _) => Component {
            name: "writes".to_owned(),
            status: Level::Maintenance,
            since: window.since,
            description: "Invites can be previewed; creating and accepting them waits".to_owned(),
        },
        (None, Some(window)) => Component {
            name: "writes".to_owned(),
            status: Level::Operational,
            // A window that ran out ended at its planned end.
            since: match window.ends_at {
                Some(ends_at) if window.enabled => ends_at,
                _ => window.since,
            },
            description: "Invites can be created and accepted".to_owned(),
        },
        (None, None) => Component {
            name: "writes".to_owned(),
            status: Level::Operational,
            since: wall_clock(started.0, now, wall_now),
            description: "Invites can be created and accepted".to_owned(),
        },
    };
    // The worst component tells; when all is well, the latest change does.
    let worst = if writes.status == Level::Maintenance && database.status != Level::Outage {
        &writes
    } else if database.status != Level::Operational || database.since >= writes.since {
        &database
    } else {
        &writes
    };
    let (status, since) = (worst.status, worst.since);
    Status {
        status,
        since,
        components: vec![database, writes],
        maintenance: active.map(|window| Window {
            message: window.message.clone(),
            until: window.ends_at,
            since: window.since,
        }),
    }
}

/// Whether the client asked for HTML (a browser) rather than JSON.
fn wants_html(req: &HttpRequest) -> bool {
    let accept =
        req.headers().get(header::ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or("");
    accept.contains("text/html") && !accept.contains("application/json")
}

/// The service's status: `operational`, `degraded`, `maintenance` or `outage`, since when, each
/// component, and the maintenance message. JSON, or HTML for a browser.
#[utoipa::path(get, path = "/status", tag = "operations", responses(
    (status = 200, description = "The status (also as `text/html` when the `Accept` header prefers it)", body = Status),
))]
pub(crate) async fn status(
    door: web::Data<Door>,
    maintenance: web::Data<Maintenance>,
    started: web::Data<Started>,
    req: HttpRequest,
) -> HttpResponse {
    let document = document(&door, &maintenance, **started);
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    response.insert_header((header::VARY, "Accept"));
    if wants_html(&req) {
        response
            .insert_header((header::CONTENT_SECURITY_POLICY, content_security_policy()))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .content_type("text/html; charset=utf-8")
            .body(html(&document))
    } else {
        response.json(document)
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(at: DateTime<Utc>) -> String {
    let exact = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!("<time datetime=\"{exact}\">{}</time>", at.format("%Y-%m-%d %H:%M UTC"))
}

/// The page's only stylesheet, inline: the Content-Security-Policy allows it by its hash.
const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;\
padding:0 1rem}.operational{color:#176f2c}.degraded{color:#8a5a00}.maintenance{color:#1f4fa8}\
.outage{color:#a01919}@media (prefers-color-scheme:dark){body{background:#111;color:#eee}\
.operational{color:#6fd08c}.degraded{color:#f0c060}.maintenance{color:#8fb4ff}\
.outage{color:#ff8080}}";

/// The HTML page's policy, as strict as the invite page's: no script, the stylesheet by its
/// hash, nothing else loaded, no form, never in a frame (where another site could dress it up
/// as its own).
fn content_security_policy() -> &'static str {
    static POLICY: LazyLock<String> = LazyLock::new(|| {
        let digest = Sha256::digest(STYLE.as_bytes());
        format!(
            "default-src 'none'; style-src 'sha256-{}'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    });
    &POLICY
}

/// The same document for people: plain words, no script, refreshed every 30 seconds.
fn html(document: &Status) -> String {
    let mut page = String::with_capacity(2048);
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"30\"><title>{words}: invite service status</title>\
         <style>{STYLE}</style></head><body><h1 class=\"{level}\">{words}</h1><p>Since {since}.</p>",
        words = words(document.status),
        level = level_name(document.status),
        since = time(document.since),
    );
    if let Some(window) = &document.maintenance {
        page.push_str("<h2>Maintenance</h2>");
        if let Some(message) = &window.message {
            let _ = write!(page, "<p>{}</p>", escape(message));
        }
        match window.until {
            Some(until) => {
                let _ = write!(page, "<p>Planned to end at {}.</p>", time(until));
            }
            None => page.push_str("<p>No end time was announced.</p>"),
        }
    }
    page.push_str("<h2>Components</h2><ul>");
    for component in &document.components {
        let _ = write!(
            page,
            "<li><strong>{}</strong>: <span class=\"{}\">{}</span> since {}. {}.</li>",
            component.name,
            level_name(component.status),
            level_name(component.status),
            time(component.since),
            component.description,
        );
    }
    page.push_str("</ul></body></html>");
    page
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Operational => "operational",
        Level::Degraded => "degraded",
        Level::Maintenance => "maintenance",
        Level::Outage => "outage",
    }
}
