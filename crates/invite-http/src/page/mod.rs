//! The invite page (contract section 8): what a person sees when they open an invite link,
//! `GET /invite/{code}` and the short `GET /{code}`, rendered on the server, and the form that
//! accepts it, `POST /invite/{code}`.
//!
//! - The page is read from the preview cache, like the JSON preview: a cached invite costs no
//!   database work unless the visitor is signed in (whose membership and ban are then looked
//!   up, to say "already a member" or "banned" to them alone; the public page never tells of a
//!   ban).
//! - Every state has its own words and status, and every refusal of the service (rate limits,
//!   the database away) is a page too: HTML, never the API's JSON.
//! - During maintenance the page still shows the invite, with its link-unfurling card (a link
//!   shared then must not look dead in every chat it was pasted into), and says when joining
//!   is back in place of the form; a form posted then is refused with the 503 page.
//! - The join never trusts the cached state: the form runs the API's own accept operation
//!   (`invite_runtime::accept::redeem`).
//! - The session is the platform's: a bearer token in the cookie `INVITE_SESSION_COOKIE`. Without
//!   one, the page links to `INVITE_LOGIN_URL?next=<the page>`.

mod csrf;
pub(crate) mod view;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use invite_core::code::CodeRef;
use invite_core::redeem::{PreviewRefused, RedemptionRefused};
use invite_store::repo::{Actor, Keyed, MaintenanceState, Redemption};
use maud::Markup;

use std::sync::Arc;

use invite_runtime::door::Door;
use invite_runtime::maintenance::Maintenance;
use invite_runtime::metrics::Metrics;
use invite_runtime::preview_cache::{CachedPreview, PreviewCache};
use view::{Action, Card, Failure, Head};

use crate::api::error::ApiError;
use crate::api::wire::Links;
use crate::guard::auth::Authenticator;
use crate::guard::client_addr::TrustedProxies;
use crate::guard::limiter::Limiter;

/// The page's settings (contract section 7).
#[derive(Debug, Clone)]
pub(crate) struct PageSettings {
    /// The cookie holding the platform's bearer token (`INVITE_SESSION_COOKIE`).
    pub session_cookie: String,
    /// Where people sign in; `next=` is added (`INVITE_LOGIN_URL`).
    pub login_url: Option<String>,
    /// The link into the app after a join, with `{server_id}` and `{code}` (`INVITE_APP_URL`).
    pub app_url: Option<String>,
    /// The pages' Content-Security-Policy, made once.
    csp: String,
}

impl PageSettings {
    /// The settings, with the policy they imply.
    pub(crate) fn new(
        session_cookie: String,
        login_url: Option<String>,
        app_url: Option<String>,
    ) -> Self {
        let csp = content_security_policy(login_url.as_deref());
        Self { session_cookie, login_url, app_url, csp }
    }
}

impl Default for PageSettings {
    fn default() -> Self {
        Self::new("session".into(), None, None)
    }
}

/// What the page works with: the parts of the service a visit and a join use.
#[derive(Debug, Clone)]
pub(crate) struct PageContext {
    /// The page's settings.
    pub settings: Arc<PageSettings>,
    /// The way into the database.
    pub door: Door,
    /// Previews by code.
    pub previews: Arc<PreviewCache>,
    /// The rate limits.
    pub limiter: Arc<Limiter>,
    /// Whose forwarding headers name the client (and the origin it saw).
    pub proxies: Arc<TrustedProxies>,
    /// This instance's view of the maintenance switch.
    pub maintenance: Arc<Maintenance>,
    /// Verifies the session cookie's token.
    pub auth: Arc<Authenticator>,
    /// The links invites are shared by.
    pub links: Arc<Links>,
    /// Counts joins.
    pub metrics: Arc<Metrics>,
    /// Counts the invite's previews and refusals.
    pub analytics: Arc<invite_runtime::analytics::Analytics>,
}

impl PageContext {
    /// What `work` reads of the visitor `user_id` in the server `server_id`; the service's
    /// refusal, as a page, when the database cannot answer.
    async fn read_visitor<T, E, F>(
        &self,
        server_id: uuid::Uuid,
        user_id: uuid::Uuid,
        work: F,
    ) -> Result<T, Failure>
    where
        T: Send + 'static,
        E: Into<invite_ops::OpError>,
        F: FnOnce(&mut invite_store::DbConnection, uuid::Uuid, uuid::Uuid) -> Result<T, E>
            + Send
            + 'static,
    {
        self.door
            .read(move |conn| work(conn, server_id, user_id))
            .await
            .map_err(|error| refusal(&error.into()))
    }
}

/// Registers `/invite/{code}`, the link the service hands out. Call before the API's routes:
/// the router tries routes in order, matching each dynamic one with a regular expression, and
/// the page is the path a crowd follows (tried after every API route, it would pay for every
/// one of their expressions); no API route starts with `/invite/`.
pub(crate) fn configure_links(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/invite/{code}")
            .route(web::get().to(show))
            .route(web::post().to(accept))
            .default_service(web::to(|| crate::api::extract::method_not_allowed(&["GET", "POST"]))),
    );
}

/// Registers `/{code}` (vanity links). Call after every other route: it takes any single
/// segment no other route took, so the routes' own words stay routes.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{code}")
            .route(web::get().to(show))
            .default_service(web::to(|| crate::api::extract::method_not_allowed(&["GET"]))),
    );
}

/// A rendered page and its status.
struct Page {
    status: StatusCode,
    title: String,
    body: Markup,
    card: Option<Card>,
    /// Seconds to wait, for `Retry-After` and the page's own refresh.
    retry_after: Option<u64>,
    /// Whether shared caches may keep it (the anonymous valid page), and for how long.
    public_for: Option<u64>,
}

impl Page {
    fn new(status: StatusCode, title: String, body: Markup) -> Self {
        Self { status, title, body, card: None, retry_after: None, public_for: None }
    }

    fn failure(failure: &Failure, now: DateTime<Utc>) -> Self {
        let (status, retry_after) = match failure {
            Failure::NotFound | Failure::Revoked => (StatusCode::NOT_FOUND, None),
            Failure::Expired(_) | Failure::UsedUp => (StatusCode::GONE, None),
            Failure::Paused { .. }
            | Failure::Banned { .. }
            | Failure::NotForYou
            | Failure::Forged => (StatusCode::FORBIDDEN, None),
            Failure::SignInNeeded => (StatusCode::UNAUTHORIZED, None),
            Failure::RateLimited { retry_after } => {
                (StatusCode::TOO_MANY_REQUESTS, Some(*retry_after))
            }
            Failure::Maintenance { retry_after, .. } | Failure::Unavailable { retry_after } => {
                (StatusCode::SERVICE_UNAVAILABLE, Some(*retry_after))
            }
        };
        let (title, body) = failure.render(now);
        Self { retry_after, ..Self::new(status, title, body) }
    }

    fn respond(self, state: &PageContext) -> HttpResponse {
        let html = view::document(&Head { title: self.title, card: self.card }, &self.body);
        let mut response = HttpResponse::build(self.status);
        response
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CONTENT_SECURITY_POLICY, state.settings.csp.clone()))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            // Nothing of the page's address leaves for other sites; the page's own form posts
            // keep their `Origin` (under `no-referrer` a browser sends `Origin: null`).
            .insert_header((header::REFERRER_POLICY, "same-origin"))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .insert_header((header::VARY, "Cookie"))
            .insert_header((
                header::CACHE_CONTROL,
                match self.public_for {
                    Some(seconds) => format!("public, max-age={seconds}"),
                    None => "private, no-store".to_owned(),
                },
            ));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
            // The page reloads itself when the service may be back: the `Refresh` header,
            // which browsers honour as they do `<meta http-equiv="refresh">` (HTML defines the
            // pragma as the header). The element itself is what axe-core flags as a timing a
            // person cannot adjust (WCAG 2.2.1); the page also offers "Try again now".
            if self.status == StatusCode::SERVICE_UNAVAILABLE {
                response.insert_header(("refresh", seconds.to_string()));
            }
        }
        response.body(html)
    }
}

/// The form token for `session` and `code` at `now`, for tests.
#[cfg(feature = "testing")]
pub(crate) fn form_token(session: &str, code: &str, now: DateTime<Utc>) -> String {
    csrf::token(session, code, now)
}

/// No script at all; the inline stylesheet by its hash; images from the web (icons are
/// http(s) URLs); forms only to this service and the login page; never in a frame.
fn content_security_policy(login_url: Option<&str>) -> String {
    let login = login_url
        .and_then(|url| url::Url::parse(url).ok())
        .map(|url| url.origin())
        .filter(url::Origin::is_tuple)
        .map(|origin| format!(" {}", origin.ascii_serialization()))
        .unwrap_or_default();
    format!(
        "default-src 'none'; style-src {}; img-src http: https:; form-action 'self'{login}; \
         frame-ancestors 'none'; base-uri 'none'",
        view::style_hash()
    )
}

/// The signed-in visitor: the bearer token of the session cookie, verified as the API verifies
/// an `Authorization` header. A bad or expired token is the same as none.
fn visitor(req: &HttpRequest, state: &PageContext) -> Option<(Actor, String)> {
    // As sent, not percent-decoded: a bearer token has no `%` in it.
    let token = req.cookie_raw(&state.settings.session_cookie)?.value().to_owned();
    if token.is_empty() {
        return None;
    }
    state.auth.verify(&token).ok().map(|actor| (actor, token))
}

/// Where the sign-in link goes, coming back to the page of `code`.
fn sign_in(state: &PageContext, code: &str) -> Action {
    match &state.settings.login_url {
        Some(login) => {
            let next = state.links.invite_url(code);
            let url = match url::Url::parse_with_params(login, [("next", next.as_str())]) {
                Ok(url) => url.to_string(),
                Err(_) => login.clone(),
            };
            Action::SignIn { url }
        }
        None => Action::SignInElsewhere,
    }
}

/// A refusal of the service itself, as a page.
fn refusal(error: &ApiError) -> Failure {
    let retry_after = error.retry_after().unwrap_or(5);
    match error {
        ApiError::RateLimited(_) => Failure::RateLimited { retry_after },
        ApiError::Maintenance { message, .. } => {
            Failure::Maintenance { message: message.clone(), retry_after: unhurried(retry_after) }
        }
        ApiError::Preview(refused) => preview_failure(*refused, None),
        _ => Failure::Unavailable { retry_after: unhurried(retry_after) },
    }
}

/// How long a person's page waits before it reloads itself: 15 to 30 seconds, spread over
/// that range, and not before `retry_after` if that comes sooner. An API client is asked to
/// wait `retry_after` and backs off on its own; a page left open reloads for as long as the
/// trouble lasts, and the pages of everyone who met the trouble at once would otherwise all
/// come back at once, every 2 seconds. Never more than 30: the trouble may end early, and a
/// person looking at the page should see it soon.
fn unhurried(retry_after: u64) -> u64 {
    spread_reload(retry_after, fastrand::u64(0..16))
}

/// [`unhurried`] for a given spread (0 to 15).
fn spread_reload(retry_after: u64, spread: u64) -> u64 {
    retry_after.max(15 + spread).min(30)
}

/// A refusal of the preview rules, as a page.
fn preview_failure(refused: PreviewRefused, expires_at: Option<DateTime<Utc>>) -> Failure {
    match refused {
        PreviewRefused::NotFound => Failure::NotFound,
        PreviewRefused::Revoked => Failure::Revoked,
        PreviewRefused::Expired => Failure::Expired(expires_at),
        PreviewRefused::MaxedOut => Failure::UsedUp,
    }
}

/// `GET /invite/{code}` and `GET /{code}`.
async fn show(
    state: web::Data<PageContext>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let now = state.door.now();
    let page = match render(&state, &req, &path, now).await {
        Ok(page) => page,
        Err(failure) => Page::failure(&failure, now),
    };
    page.respond(&state)
}

async fn render(
    state: &PageContext,
    req: &HttpRequest,
    path: &str,
    now: DateTime<Utc>,
) -> Result<Page, Failure> {
    let addr = state.limiter.client(req);
    state.limiter.limit(req, |limits| limits.preview(addr)).map_err(|error| refusal(&error))?;
    let unknown = || {
        state
            .limiter
            .limit(req, |limits| limits.unknown_code(addr))
            .map_err(|error| refusal(&error))?;
        Err(Failure::NotFound)
    };
    // A code of a few KB, with `../` or NUL, is no code: the not-found page (a whole target
    // over 8 KiB never gets here: it is 414, see `refusals`). It charges nothing:
    // it cannot find an invite, and browsers ask for `/favicon.ico` on every visit.
    let Some(code) = CodeRef::parse(path) else { return Err(Failure::NotFound) };
    let found = invite_runtime::preview_cache::lookup(&state.door, &state.previews, &code)
        .await
        .map_err(|error| refusal(&error.into()))?;
    let Some(found) = found else { return unknown() };
    let visitor = visitor(req, state);
    let standing = match &visitor {
        Some((actor, _)) => {
            let user_id = actor.user_id;
            let standing = state
                .read_visitor(found.server_id, user_id, invite_ops::members::visitor_standing)
                .await?;
            Some((standing, found.allows(user_id)))
        }
        None => None,
    };
    let verdict = invite_ops::invites::preview_verdict(
        Some(&found.status),
        found.invites_paused,
        standing,
        now,
    );
    if verdict.shown.is_ok() {
        state.analytics.previewed(found.invite_id, found.server_id);
    }
    if let Err(reason) = verdict.join {
        return refused_page(state, reason, Some(&found), &code);
    }
    // Someone who asked to join already sees their request, not the form again (only on an
    // invite that requires approval: no other visit pays for the read).
    if let (true, Some((actor, _))) = (found.requires_approval, &visitor) {
        let pending = state
            .read_visitor(found.server_id, actor.user_id, invite_ops::join_requests::pending_for)
            .await?;
        if pending.is_some() {
            return Ok(requested_page(&found.server_name));
        }
    }
    let session = visitor.as_ref().map(|(_, token)| token.as_str());
    Ok(valid(state, &found, &code, session, state.maintenance.active(now).as_ref(), now))
}

/// The page of an invite that can be accepted; during `maintenance`, the same page with the
/// maintenance notice in place of the form.
fn valid(
    state: &PageContext,
    found: &CachedPreview,
    code: &CodeRef,
    session: Option<&str>,
    maintenance: Option<&MaintenanceState>,
    now: DateTime<Utc>,
) -> Page {
    let member_count = state.previews.member_count(found);
    let action = match (maintenance, session) {
        (Some(window), _) => {
            Action::Maintenance { message: window.message.clone(), until: window.ends_at }
        }
        (None, Some(session)) => Action::Form {
            action: format!("/invite/{}", code.as_str()),
            csrf: csrf::token(session, code.as_str(), now),
        },
        (None, None) => sign_in(state, code.as_str()),
    };
    let body = view::invite(
        &view::Invite {
            server_name: &found.server_name,
            icon_url: found.server_icon_url.as_deref(),
            member_count,
            presence_count: found.presence_count,
            channel: found.channel.as_ref().map(|(_, name)| &**name),
            inviter: found.inviter_name.as_deref(),
            expires_at: found.expires_at(),
            spots_left: found.status.max_uses.map(|max| (max - found.status.uses).max(0)),
            temporary: found.temporary,
            requires_approval: found.requires_approval,
        },
        &action,
        now,
    );
    let card = Card {
        title: format!("Join {}", found.server_name),
        description: view::members(member_count),
        url: state.links.invite_url(code.as_str()),
        image: view::safe_icon(found.server_icon_url.as_deref()).map(str::to_owned),
    };
    let mut page = Page::new(StatusCode::OK, format!("Join {}", found.server_name), body);
    page.card = Some(card);
    // A signed-in visitor's page holds their form token: never in a shared cache. A page
    // saying "maintenance" is kept no longer than the window lasts.
    let ttl = state.previews.ttl().as_secs();
    let window_left = maintenance
        .and_then(|window| window.ends_at)
        .map(|ends_at| u64::try_from((ends_at - now).num_seconds()).unwrap_or(0));
    page.public_for = session.is_none().then(|| window_left.map_or(ttl, |left| ttl.min(left)));
    page
}

/// "You're already in": the page of a member (status 200, the way in).
fn already_member(state: &PageContext, found: &CachedPreview, code: &str) -> Page {
    let open = view::open_url(state.settings.app_url.as_deref(), found.server_id, code);
    let name = found.server_name.to_string();
    let body = view::joined(&name, open.as_deref(), true);
    Page::new(StatusCode::OK, format!("You're already in {name}"), body)
}

/// `POST /invite/{code}`: the form's join.
async fn accept(
    state: web::Data<PageContext>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let now = state.door.now();
    match join(&state, &req, &path, &body, now).await {
        Ok(Joined::Page(page)) => page.respond(&state),
        Ok(Joined::SignIn(url)) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(failure) => Page::failure(&failure, now).respond(&state),
    }
}

enum Joined {
    Page(Page),
    SignIn(String),
}

async fn join(
    state: &PageContext,
    req: &HttpRequest,
    path: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Joined, Failure> {
    // Nothing can be joined during maintenance: whatever was posted, the answer is the 503
    // page, before anything is read (as the API refuses writes).
    if let Some(maintenance) = state.maintenance.active(now) {
        return Err(refusal(&crate::guard::maintenance::refusal(&maintenance, now)));
    }
    if !csrf::same_origin(
        req,
        state.links.public_url(),
        state.proxies.forwarded_origin(req).as_deref(),
    ) {
        return Err(Failure::Forged);
    }
    let Some(code) = CodeRef::parse(path) else { return Err(Failure::NotFound) };
    let Some((actor, session)) = visitor(req, state) else {
        return match sign_in(state, code.as_str()) {
            Action::SignIn { url } => Ok(Joined::SignIn(url)),
            _ => Err(Failure::SignInNeeded),
        };
    };
    let token = csrf_field(body).ok_or(Failure::Forged)?;
    if !csrf::verify(&session, code.as_str(), &token, now) {
        return Err(Failure::Forged);
    }
    let user_id = actor.user_id;
    state.limiter.limit(req, |limits| limits.accept(user_id)).map_err(|error| refusal(&error))?;
    // What the pages say of the server, read before the join: from the cache the visitor's
    // page just filled (the join's own event empties it). The join decides on its own.
    let found = invite_runtime::preview_cache::lookup(&state.door, &state.previews, &code)
        .await
        .ok()
        .flatten();
    let outcome = invite_runtime::accept::redeem(
        &state.door,
        (&state.metrics, &state.analytics),
        actor,
        code.clone(),
        None,
    )
    .await
    .map_err(|failure| refusal(&ApiError::from(failure)))?;
    let Keyed::Fresh(redemption) = outcome else {
        // No Idempotency-Key was given, so nothing is replayed.
        return Err(Failure::Unavailable { retry_after: 1 });
    };
    match redemption {
        Redemption::Joined(joined) => {
            let name = found
                .as_ref()
                .map_or_else(|| "the server".to_owned(), |found| found.server_name.to_string());
            let server_id = joined.member.server_id;
            let open = view::open_url(state.settings.app_url.as_deref(), server_id, code.as_str());
            let body = view::joined(&name, open.as_deref(), false);
            Ok(Joined::Page(Page::new(StatusCode::OK, format!("You joined {name}"), body)))
        }
        // The invite requires approval: the request is filed (or was pending already), and
        // the page says so; posting again shows the same pending request.
        Redemption::Filed(_) => {
            let name = found
                .as_ref()
                .map_or_else(|| "the server".to_owned(), |found| found.server_name.to_string());
            Ok(Joined::Page(requested_page(&name)))
        }
        // Anyone signed in can compute a form token for any code: a code that does not exist
        // charges the scanning bucket here as on every other route.
        Redemption::Refused(RedemptionRefused::NotFound) => Err(refusal(
            &state.limiter.unknown_code(req, ApiError::Preview(PreviewRefused::NotFound)),
        )),
        Redemption::Refused(reason) => {
            refused_page(state, reason, found.as_deref(), &code).map(Joined::Page)
        }
    }
}

/// "Your request to join was sent", for the server named `name`.
fn requested_page(name: &str) -> Page {
    Page::new(StatusCode::OK, "Your request to join was sent".to_owned(), view::requested(name))
}

/// The page of an invite the join refuses for `reason`: the way in for a member, the failure's
/// page otherwise. `found` is what the pages say of the invite's server, when it is known.
fn refused_page(
    state: &PageContext,
    reason: RedemptionRefused,
    found: Option<&CachedPreview>,
    code: &CodeRef,
) -> Result<Page, Failure> {
    let name = found.map_or_else(|| "the server".to_owned(), |found| found.server_name.to_string());
    Err(match reason {
        RedemptionRefused::NotFound => Failure::NotFound,
        RedemptionRefused::Revoked => Failure::Revoked,
        RedemptionRefused::Expired => Failure::Expired(found.and_then(CachedPreview::expires_at)),
        RedemptionRefused::MaxedOut => Failure::UsedUp,
        RedemptionRefused::Paused => Failure::Paused {
            server_name: name,
            until: found
                .and_then(|found| found.invites_paused)
                .and_then(invite_core::redeem::InvitesPause::until),
        },
        RedemptionRefused::Banned => Failure::Banned { server_name: name },
        RedemptionRefused::NotForYou => Failure::NotForYou,
        RedemptionRefused::AlreadyMember => {
            return Ok(match found {
                Some(found) => already_member(state, found, code.as_str()),
                None => Page::new(
                    StatusCode::OK,
                    "You're already in".into(),
                    view::joined(&name, None, true),
                ),
            });
        }
    })
}

/// The form's CSRF token, from its `application/x-www-form-urlencoded` body.
fn csrf_field(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::spread_reload;

    #[test]
    fn pages_reload_after_15_to_30_seconds() {
        for spread in 0..16 {
            for retry_after in [0, 1, 2, 15, 20, 29, 60, 96_874_954] {
                let reload = spread_reload(retry_after, spread);
                assert!((15..=30).contains(&reload), "{retry_after} {spread}: {reload}");
                assert!(reload >= retry_after.min(30), "{retry_after} {spread}: {reload}");
            }
        }
        assert_eq!(spread_reload(2, 0), 15);
        assert_eq!(spread_reload(2, 15), 30);
        assert_eq!(spread_reload(20, 0), 20);
        assert_eq!(spread_reload(60, 3), 30);
    }
}
