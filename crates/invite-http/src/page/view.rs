//! The invite page's HTML (contract section 8), written with `maud`: the templates are Rust the
//! compiler checks, and every string interpolated into them is escaped. Server names are
//! wrapped in `<bdi>`, so right-to-left marks in a name cannot reorder the sentence around it.
//! Titles (`<title>`, `og:title`, `twitter:title`) are plain text, where no element can isolate
//! anything: their bidirectional controls are removed instead (see [`without_bidi_controls`]).
//!
//! No script anywhere: the page works without JavaScript, and the Content-Security-Policy
//! forbids it. The one stylesheet is inline and allowed by its hash ([`style_hash`]).

use std::sync::LazyLock;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use num_format::{Locale, ToFormattedString};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The page's whole stylesheet: light and dark schemes, one column from 360 px up. The colours
/// keep a contrast of at least 4.5:1 for text in both schemes.
pub(crate) const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#f2f3f5;--card:#fff;--text:#1e1f22;--muted:#4e5058;\
--accent:#4752c4;--link:#3843b0;--border:#dcdde1}\
@media (prefers-color-scheme:dark){:root{--bg:#1e1f22;--card:#2b2d31;--text:#f2f3f5;\
--muted:#b5bac1;--link:#a5adf8;--border:#3f4147}}\
*{box-sizing:border-box}html,body{margin:0}\
body{font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;background:var(--bg);\
color:var(--text);min-height:100vh;display:flex;align-items:center;justify-content:center;\
padding:16px}\
main{background:var(--card);border:1px solid var(--border);border-radius:12px;\
padding:32px 20px;width:100%;max-width:480px;text-align:center;overflow-wrap:anywhere}\
.icon{width:96px;height:96px;border-radius:24px;object-fit:cover;display:flex;\
align-items:center;justify-content:center;margin:0 auto 16px;background:var(--accent);\
color:#fff;font-size:36px;font-weight:700}\
.lead{color:var(--muted);margin:0 0 4px;font-size:.875rem}\
h1{font-size:1.5rem;line-height:1.25;margin:0 0 12px}\
ul{list-style:none;padding:0;margin:0 0 24px;color:var(--muted)}li{margin:2px 0}\
p{margin:0 0 16px}.muted{color:var(--muted);font-size:.875rem}\
.button{display:block;width:100%;padding:12px 16px;border:0;border-radius:8px;\
background:var(--accent);color:#fff;font:inherit;font-weight:600;text-decoration:none;\
cursor:pointer}\
.button:focus-visible,a:focus-visible{outline:3px solid var(--text);outline-offset:2px}\
a{color:var(--link)}\
.notice{border:1px solid var(--border);border-radius:8px;padding:12px 16px}\
.notice p{margin:0 0 8px}.notice p:last-child{margin:0}\
@media (min-width:768px){main{padding:48px 40px}h1{font-size:1.75rem}}";

/// `'sha256-...'` of [`STYLE`], for the Content-Security-Policy's `style-src`.
pub(crate) fn style_hash() -> &'static str {
    static HASH: LazyLock<String> = LazyLock::new(|| {
        let digest = Sha256::digest(STYLE.as_bytes());
        format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
    });
    &HASH
}

/// What the `<head>` says: the title, and the link-unfurling card of a valid invite.
pub(crate) struct Head {
    /// The document's title.
    pub title: String,
    /// Open Graph and Twitter card tags, for a valid invite.
    pub card: Option<Card>,
}

/// The card another chat app shows for a pasted link.
pub(crate) struct Card {
    /// "Join <server>".
    pub title: String,
    /// "<n> members".
    pub description: String,
    /// The page's address.
    pub url: String,
    /// The server's icon.
    pub image: Option<String>,
}

/// A whole document around `body`.
pub(crate) fn document(head: &Head, body: &Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (without_bidi_controls(&head.title)) }
                @if let Some(card) = &head.card {
                    meta name="description" content=(card.description);
                    meta property="og:type" content="website";
                    meta property="og:site_name" content="Invite";
                    meta property="og:title" content=(without_bidi_controls(&card.title));
                    meta property="og:description" content=(card.description);
                    meta property="og:url" content=(card.url);
                    @if let Some(image) = &card.image {
                        meta property="og:image" content=(image);
                    }
                    meta name="twitter:card" content="summary";
                    meta name="twitter:title" content=(without_bidi_controls(&card.title));
                    meta name="twitter:description" content=(card.description);
                    @if let Some(image) = &card.image {
                        meta name="twitter:image" content=(image);
                    }
                }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main { (body) }
            }
        }
    }
    .into_string()
}

/// `text` without Unicode's bidirectional controls (the `Bidi_Control` property: the embeddings,
/// overrides and isolates, and the implicit marks), so that a name holding U+202E cannot turn
/// "Join <name>" around in a browser tab or a card another app draws. Titles leave the page
/// for places that may not support isolates (U+2068 ... U+2069) or may show them as boxes:
/// removing the controls works everywhere, and a name's own right-to-left letters still read
/// right to left.
pub(crate) fn without_bidi_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let is_control = |c: char| matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if text.contains(is_control) {
        text.chars().filter(|c| !is_control(*c)).collect::<String>().into()
    } else {
        text.into()
    }
}

/// An icon URL fit for an attribute: http(s) only. The core refuses any other scheme when the
/// icon is set; this holds even for a row written some other way.
pub(crate) fn safe_icon(url: Option<&str>) -> Option<&str> {
    url.filter(|url| {
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        lower.starts_with("https://") || lower.starts_with("http://")
    })
}

/// The server's icon, or its initials on the accent colour.
fn icon(name: &str, url: Option<&str>) -> Markup {
    html! {
        @if let Some(url) = safe_icon(url) {
            img.icon src=(url) alt="" width="96" height="96" referrerpolicy="no-referrer";
        } @else {
            div.icon aria-hidden="true" { (initials(name)) }
        }
    }
}

/// Up to two initials of a name's words.
pub(crate) fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|word| word.chars().find(|c| c.is_alphanumeric()))
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

/// "in 3 hours", "2 days ago": how far `at` is from `now`, rounded as people say it (the
/// thresholds of moment.js: 45 seconds make a minute, 45 minutes an hour, 22 hours a day).
/// Written here because no crate says these words: `chrono-humanize` says "now" and "a minute
/// ago" and turns days into months, `timeago` rounds down and has no future tense.
pub(crate) fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    let magnitude = seconds.unsigned_abs();
    let rounded = |unit: u64| (magnitude + unit / 2) / unit;
    let (count, unit) = match magnitude {
        0..45 => (magnitude, "second"),
        45..2_700 => (rounded(60), "minute"),
        2_700..79_200 => (rounded(3_600), "hour"),
        _ => (rounded(86_400), "day"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if seconds >= 0 {
        format!("in {count} {unit}{plural}")
    } else {
        format!("{count} {unit}{plural} ago")
    }
}

/// A moment: relative words, with the exact time in `<time datetime>`.
fn moment(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M UTC")) {
            (relative(at, now))
        }
    }
}

/// "1 member", "12,345 members".
pub(crate) fn members(count: i64) -> String {
    format!("{} member{}", grouped(count), if count == 1 { "" } else { "s" })
}

/// A count with its thousands grouped: `12,345`.
fn grouped(count: i64) -> String {
    count.to_formatted_string(&Locale::en)
}

/// What the valid page shows of an invite.
pub(crate) struct Invite<'a> {
    /// The server's name.
    pub server_name: &'a str,
    /// Its icon.
    pub icon_url: Option<&'a str>,
    /// Its member count.
    pub member_count: i64,
    /// Its members online (with a live gateway session).
    pub presence_count: i64,
    /// The channel the invite names.
    pub channel: Option<&'a str>,
    /// Who made the invite, by name when known.
    pub inviter: Option<&'a str>,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Joins left, when capped.
    pub spots_left: Option<i64>,
    /// Whether joining makes a temporary member.
    pub temporary: bool,
    /// Whether accepting asks a moderator first (join approval).
    pub requires_approval: bool,
}

/// How the person can accept.
pub(crate) enum Action {
    /// Signed in: the form, with its CSRF token.
    Form {
        /// Where it posts.
        action: String,
        /// The token.
        csrf: String,
    },
    /// Not signed in: a link to the login page, which comes back here.
    SignIn {
        /// The login URL with `next=`.
        url: String,
    },
    /// Not signed in, and no login page is configured.
    SignInElsewhere,
    /// Maintenance: nothing can be joined until it is over.
    Maintenance {
        /// The operator's message.
        message: Option<String>,
        /// When it should be over, if announced.
        until: Option<DateTime<Utc>>,
    },
}

/// The valid invite.
pub(crate) fn invite(invite: &Invite<'_>, action: &Action, now: DateTime<Utc>) -> Markup {
    html! {
        (icon(invite.server_name, invite.icon_url))
        p.lead {
            @if let Some(inviter) = invite.inviter {
                bdi { (inviter) } " invited you to join"
            } @else {
                "You've been invited to join"
            }
        }
        h1 { bdi { (invite.server_name) } }
        ul {
            li {
                (members(invite.member_count))
                @if invite.presence_count > 0 { ", " (grouped(invite.presence_count)) " online" }
            }
            @if let Some(channel) = invite.channel {
                li { "Opens in #" bdi { (channel) } }
            }
            @if let Some(left) = invite.spots_left {
                li { (left) " of its uses left" }
            }
            @if let Some(expires_at) = invite.expires_at {
                li { "Expires " (moment(expires_at, now)) }
            }
            @if invite.temporary {
                li { "Temporary membership: you leave when you disconnect, unless given a role" }
            }
            @if invite.requires_approval {
                li { "A moderator approves each request to join" }
            }
        }
        @match action {
            Action::Form { action, csrf } => {
                form method="post" action=(action) {
                    input type="hidden" name="csrf" value=(csrf);
                    button.button type="submit" {
                        @if invite.requires_approval { "Ask to join" } @else { "Accept invite" }
                    }
                }
            }
            Action::SignIn { url } => {
                a.button href=(url) { "Sign in to accept" }
            }
            Action::SignInElsewhere => {
                p.muted { "Sign in to your chat app, then open this link again to accept." }
            }
            Action::Maintenance { message, until } => {
                div.notice role="status" {
                    p { strong { "Down for maintenance" } }
                    @if let Some(message) = message {
                        p { (message) }
                    }
                    p {
                        @if let Some(until) = until {
                            "You can accept this invite again " (moment(*until, now)) "."
                        } @else {
                            "You can accept this invite again once it is over."
                        }
                    }
                    p.muted { "See the " a href="/status" { "service status" } "." }
                }
            }
        }
    }
}

/// "You joined" (or "You're already in"), with the link into the app when one is configured.
pub(crate) fn joined(server_name: &str, open: Option<&str>, already: bool) -> Markup {
    html! {
        h1 {
            @if already { "You're already in " } @else { "You joined " }
            bdi { (server_name) }
        }
        @if let Some(open) = open {
            a.button href=(open) { "Open " bdi { (server_name) } }
        } @else {
            p { "Open your chat app to see it." }
        }
    }
}

/// "Your request to join was sent": the invite requires approval, and the person's request is
/// pending (filed now, or before: the page says the same).
pub(crate) fn requested(server_name: &str) -> Markup {
    html! {
        h1 { "Your request to join was sent" }
        p { "A moderator of " bdi { (server_name) } " will look at it. You'll be let in once they approve it." }
        p.muted { "You can close this page; opening the link again shows your request." }
    }
}

/// Why the page cannot offer the invite, in plain words, with what to do next.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// No invite has the code (or it could not be one).
    NotFound,
    /// Revoked by whoever could.
    Revoked,
    /// Past its expiry.
    Expired(Option<DateTime<Utc>>),
    /// Every use taken.
    UsedUp,
    /// The server's invites are paused (until when, if set).
    Paused {
        /// The server.
        server_name: String,
        /// Until when.
        until: Option<DateTime<Utc>>,
    },
    /// The signed-in person is banned from the server.
    Banned {
        /// The server.
        server_name: String,
    },
    /// The invite names the users who may accept it, and the signed-in person is not one of
    /// them. Shown only to someone signed in (a visitor nobody signed in as sees the invite);
    /// the list itself is never shown.
    NotForYou,
    /// Too many requests from this address or person.
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Maintenance mode.
    Maintenance {
        /// The operator's message.
        message: Option<String>,
        /// Seconds until it should be over.
        retry_after: u64,
    },
    /// The database cannot be reached, or the instance is overloaded.
    Unavailable {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// A post that did not come from the invite page (CSRF), or a stale form.
    Forged,
    /// Signing in is needed and no login page is configured.
    SignInNeeded,
}

impl Failure {
    /// The words of the failure: the title, the heading and the body.
    #[expect(clippy::too_many_lines, reason = "one arm per failure's page, side by side")]
    pub(crate) fn render(&self, now: DateTime<Utc>) -> (String, Markup) {
        let status_link = html! { a href="/status" { "service status" } };
        let again = html! { a href="" { "Try again now" } };
        match self {
            Self::NotFound => (
                "Invite not found".into(),
                html! {
                    h1 { "Invite not found" }
                    p { "This invite link doesn't lead anywhere. Check that it was copied whole: codes are case-sensitive." }
                    p.muted { "If it still doesn't work, ask whoever shared it for a new link." }
                },
            ),
            Self::Revoked => (
                "Invite revoked".into(),
                html! {
                    h1 { "This invite was revoked" }
                    p { "Whoever could manage it has turned it off." }
                    p.muted { "Ask the person who shared it for a new link." }
                },
            ),
            Self::Expired(at) => (
                "Invite expired".into(),
                html! {
                    h1 { "This invite has expired" }
                    @if let Some(at) = at {
                        p { "It stopped working " (moment(*at, now)) "." }
                    }
                    p.muted { "Ask the person who shared it for a new link." }
                },
            ),
            Self::UsedUp => (
                "Invite used up".into(),
                html! {
                    h1 { "This invite has been used up" }
                    p { "It allowed a set number of people to join, and all of them have." }
                    p.muted { "Ask the person who shared it for a new link." }
                },
            ),
            Self::Paused { server_name, until } => (
                "Invites paused".into(),
                html! {
                    h1 { "Joining " bdi { (server_name) } " is paused" }
                    // A pause with an end is set by a moderator or by raid protection (too
                    // many joins at once); the words fit both.
                    @if let Some(until) = until {
                        p { "Invites to this server are paused for a while, until " (moment(*until, now)) "." }
                    } @else {
                        p { "Its moderators have paused new members for now." }
                    }
                    p.muted { "Try this link again later." }
                },
            ),
            Self::Banned { server_name } => (
                "You can't join".into(),
                html! {
                    h1 { "You can't join " bdi { (server_name) } }
                    p { "You have been banned from this server." }
                },
            ),
            Self::NotForYou => (
                "This invite is for someone else".into(),
                html! {
                    h1 { "This invite is for someone else" }
                    p { "It was made for particular people, and your account is not one of them." }
                    p.muted { "If you think it was meant for you, ask whoever shared it to add you or send you your own link." }
                },
            ),
            Self::RateLimited { retry_after } => (
                "Too many requests".into(),
                html! {
                    h1 { "Too many requests" }
                    p { "Please wait " (seconds(*retry_after)) " and try again." }
                },
            ),
            Self::Maintenance { message, retry_after } => (
                "Down for maintenance".into(),
                html! {
                    h1 { "Down for maintenance" }
                    @if let Some(message) = message {
                        p { (message) }
                    }
                    p { "Joining is back soon. This page tries again by itself in " (seconds(*retry_after)) "." }
                    p.muted { (again) " or see the " (status_link) "." }
                },
            ),
            Self::Unavailable { retry_after } => (
                "Temporarily unavailable".into(),
                html! {
                    h1 { "We can't open invites right now" }
                    p { "Our service is having trouble. This page tries again by itself in " (seconds(*retry_after)) "." }
                    p.muted { (again) " or see the " (status_link) "." }
                },
            ),
            Self::Forged => (
                "Request refused".into(),
                html! {
                    h1 { "This request was refused" }
                    p { "It did not come from the invite page, or the page was open too long. Nothing was changed." }
                    p.muted { "Go back to the invite link and accept from there." }
                },
            ),
            Self::SignInNeeded => (
                "Sign in needed".into(),
                html! {
                    h1 { "Sign in to accept" }
                    p { "Sign in to your chat app, then open the invite link again." }
                },
            ),
        }
    }
}

/// "1 second", "30 seconds".
fn seconds(count: u64) -> String {
    format!("{count} second{}", if count == 1 { "" } else { "s" })
}

/// The link into the app after a join: `template` with `{server_id}` and `{code}` filled in.
pub(crate) fn open_url(template: Option<&str>, server_id: Uuid, code: &str) -> Option<String> {
    template.map(|template| {
        template.replace("{server_id}", &server_id.to_string()).replace("{code}", code)
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn names_are_text_and_icons_are_http_only() {
        let body = invite(
            &Invite {
                server_name: "<script>alert(1)</script>",
                icon_url: Some("javascript:alert(1)"),
                member_count: 1,
                presence_count: 0,
                channel: None,
                inviter: Some("\"><img src=x>"),
                expires_at: None,
                spots_left: None,
                temporary: false,
                requires_approval: false,
            },
            &Action::SignInElsewhere,
            Utc::now(),
        )
        .into_string();
        assert!(!body.contains("<script>"), "{body}");
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{body}");
        assert!(!body.contains("<img src=x>"), "{body}");
        assert!(!body.contains("javascript:"), "{body}");
        assert_eq!(safe_icon(Some("HTTPS://cdn.example/a.png")), Some("HTTPS://cdn.example/a.png"));
        assert_eq!(safe_icon(Some("data:image/png;base64,AAAA")), None);
    }

    #[test]
    fn words_for_counts_times_and_initials() {
        assert_eq!(members(1), "1 member");
        assert_eq!(members(12_345), "12,345 members");
        assert_eq!(members(100_000), "100,000 members");
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        assert_eq!(relative(now + chrono::Duration::hours(3), now), "in 3 hours");
        assert_eq!(relative(now - chrono::Duration::days(2), now), "2 days ago");
        assert_eq!(relative(now + chrono::Duration::seconds(1), now), "in 1 second");
        assert_eq!(relative(now + chrono::Duration::seconds(7_199), now), "in 2 hours");
        assert_eq!(relative(now - chrono::Duration::seconds(61), now), "1 minute ago");
        assert_eq!(initials("rust  lang club"), "RL");
        assert_eq!(initials("<script>"), "S");
        assert_eq!(initials(""), "");
    }

    #[test]
    fn titles_lose_their_bidi_controls_and_keep_their_letters() {
        let name = "\u{202e}lived\u{202c} \u{2067}x\u{2069}\u{200f}\u{061c} שלום";
        assert_eq!(without_bidi_controls(name), "lived x שלום");
        assert!(matches!(without_bidi_controls("plain"), std::borrow::Cow::Borrowed("plain")));
        let card = Card {
            title: format!("Join {name}"),
            description: "1 member".into(),
            url: "https://chat.example/invite/x".into(),
            image: None,
        };
        let page = document(&Head { title: format!("Join {name}"), card: Some(card) }, &html! {});
        assert!(page.contains("<title>Join lived x שלום</title>"), "{page}");
        assert!(page.contains("og:title\" content=\"Join lived x שלום\""), "{page}");
        assert!(page.contains("twitter:title\" content=\"Join lived x שלום\""), "{page}");
        assert!(!page.contains('\u{202e}'), "{page}");
    }

    #[test]
    fn the_style_hash_is_the_styles() {
        assert!(style_hash().starts_with("'sha256-") && style_hash().ends_with("='"));
        let page = document(&Head { title: "t".into(), card: None }, &html! { h1 { "x" } });
        assert!(page.contains(STYLE));
        assert!(page.len() < 20 * 1024);
    }
}
