//! The accept form's defence against cross-site request forgery (contract section 8), in two
//! independent layers, as OWASP's cheat sheet recommends:
//!
//! - **A signed token in the form.** It is an HMAC-SHA256 over the invite's code and an expiry,
//!   keyed by a hash of the person's session token. Another site can make a browser post the
//!   form with its cookie, but cannot read the cookie or the page, so it cannot compute the
//!   token; and every instance can check it without a secret of its own to share.
//! - **The request's origin.** A post must come from this service's own pages: `Sec-Fetch-Site`
//!   (which only browsers set, and scripts cannot) must say `same-origin` when it is sent; from
//!   a client that does not send it, `Origin` (or, failing it, `Referer`) must name the public
//!   URL's origin, or, for a request a trusted proxy forwarded, the host and scheme the proxy
//!   says it was made to. `Host`, `X-Forwarded-Host` and `Forwarded` are whoever connected's
//!   to write: from anyone but a trusted proxy, they are not believed.

use actix_web::HttpRequest;
use actix_web::http::header;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How long a rendered form stays good.
pub(crate) const LIFETIME_SECONDS: i64 = 3_600;

fn mac(session: &str, code: &str, expires: i64) -> Hmac<Sha256> {
    let key = Sha256::new().chain_update(b"invite-page-csrf\0").chain_update(session).finalize();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(code.as_bytes());
    mac.update(b"\0");
    mac.update(expires.to_string().as_bytes());
    mac
}

/// The token for the form that accepts `code`, for the holder of `session`.
pub(crate) fn token(session: &str, code: &str, now: DateTime<Utc>) -> String {
    let expires = now.timestamp() + LIFETIME_SECONDS;
    let tag = mac(session, code, expires).finalize().into_bytes();
    format!("{expires}.{}", hex::encode(tag))
}

/// Whether `token` was made for `session` and `code`, and is still good at `now`.
pub(crate) fn verify(session: &str, code: &str, token: &str, now: DateTime<Utc>) -> bool {
    let Some((expires, tag_hex)) = token.split_once('.') else { return false };
    let Ok(expires) = expires.parse::<i64>() else { return false };
    if expires < now.timestamp() || expires > now.timestamp() + LIFETIME_SECONDS {
        return false;
    }
    let mut tag = [0_u8; 32];
    if hex::decode_to_slice(tag_hex, &mut tag).is_err() {
        return false;
    }
    // Compared in constant time.
    mac(session, code, expires).verify_slice(&tag).is_ok()
}

/// Whether the post comes from this service's own pages (see the module's documentation):
/// `proxied` is the origin a trusted proxy says the request was made to, `None` when it did
/// not come through one.
pub(crate) fn same_origin(req: &HttpRequest, public_url: &str, proxied: Option<&str>) -> bool {
    let header = |name| req.headers().get(name).and_then(|value| value.to_str().ok());
    match header("sec-fetch-site") {
        Some("cross-site" | "same-site") => return false,
        // Only a browser sets `Sec-Fetch-*` (scripts cannot), and it says same-origin only
        // for a post from this service's own page, whatever `Origin` says then.
        Some("same-origin") => return true,
        _ => {}
    }
    let Some(claimed) = header(header::ORIGIN.as_str())
        .filter(|origin| *origin != "null")
        .or_else(|| header(header::REFERER.as_str()))
        .and_then(origin_of)
    else {
        return false;
    };
    proxied.is_some_and(|own| claimed == own)
        || origin_of(public_url).is_some_and(|public| claimed == public)
}

/// `scheme://host[:port]` of a URL, in lower case.
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let origin = parsed.origin();
    origin.is_tuple().then(|| origin.ascii_serialization().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use chrono::Duration;

    use super::*;

    #[test]
    fn a_token_holds_for_its_session_code_and_hour_only() {
        let now = Utc::now();
        let token = token("session-a", "abcd1234", now);
        assert!(verify("session-a", "abcd1234", &token, now));
        assert!(verify("session-a", "abcd1234", &token, now + Duration::minutes(59)));
        assert!(!verify("session-a", "abcd1234", &token, now + Duration::minutes(61)));
        assert!(!verify("session-b", "abcd1234", &token, now));
        assert!(!verify("session-a", "abcd1235", &token, now));
        let (expires, tag) = token.split_once('.').unwrap();
        let later = format!("{}.{tag}", expires.parse::<i64>().unwrap() + 60);
        assert!(!verify("session-a", "abcd1234", &later, now));
        for forged in ["", ".", "1.", "x.y", &format!("{expires}.{}", "0".repeat(64))] {
            assert!(!verify("session-a", "abcd1234", forged, now), "{forged}");
        }
    }

    #[test]
    fn only_this_services_pages_may_post() {
        let public = "https://chat.example";
        let request = |headers: &[(&str, &str)]| {
            let mut request = TestRequest::post()
                .insert_header(("host", "127.0.0.1:8080"))
                .insert_header(("x-forwarded-host", "forged.example"));
            for header in headers {
                request = request.insert_header(*header);
            }
            request.to_http_request()
        };
        let check = |headers: &[(&str, &str)]| same_origin(&request(headers), public, None);
        assert!(check(&[("origin", "https://chat.example")]));
        assert!(check(&[("referer", "https://chat.example/invite/x")]));
        assert!(!check(&[("origin", "https://evil.example")]));
        assert!(!check(&[("origin", "null")]));
        assert!(!check(&[]));
        // Not through a trusted proxy: neither `Host` nor a forwarded host is believed.
        assert!(!check(&[("origin", "http://127.0.0.1:8080")]));
        assert!(!check(&[("origin", "http://forged.example")]));
        // Through one: the origin it names.
        let proxied = Some("https://invite.example");
        let post = request(&[("origin", "https://invite.example")]);
        assert!(same_origin(&post, public, proxied));
        assert!(!same_origin(&request(&[("origin", "https://other.example")]), public, proxied));
        assert!(!check(&[("origin", "https://chat.example"), ("sec-fetch-site", "cross-site")]));
        assert!(!check(&[("origin", "https://chat.example"), ("sec-fetch-site", "same-site")]));
        assert!(check(&[("origin", "null"), ("sec-fetch-site", "same-origin")]));
    }
}
