//! The rules of webhooks (contract section 9): what a registration may ask for, which addresses
//! a delivery may reach, and the signature receivers check.

use std::net::IpAddr;

use serde::Deserialize;

use crate::event::EventType;
use crate::problem::{ErrorCode, Problem};

/// Most webhooks a server may have.
pub const MAX_WEBHOOKS: i64 = 10;

/// Longest webhook URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// The body of `POST /servers/{id}/webhooks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where events are posted: an `http://` or `https://` URL (private, loopback and
    /// link-local addresses are refused unless the service allows them).
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, example = "https://example.com/hooks/invites")
    )]
    pub url: String,
    /// The event types to deliver (`INVITE_CREATE`, `MEMBER_JOIN`, ...); every type when left
    /// out.
    pub events: Option<Vec<String>>,
}

/// A registration that passed the rules: the URL's parts a delivery needs, and the types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The URL, as given.
    pub url: String,
    /// Its host (a name, or an address literal without brackets).
    pub host: String,
    /// Its port, the scheme's default when left out.
    pub port: u16,
    /// The types delivered.
    pub events: Vec<EventType>,
}

impl CreateWebhookRequest {
    /// Checks the URL (http or https, a host, no credentials, at most 2048 bytes) and the event
    /// types (known, at least one when given). Where the host points is checked when it is
    /// resolved, at registration and at every delivery ([`is_public`]).
    pub fn validate(&self) -> Result<WebhookTarget, Problem> {
        let url = self.url.trim();
        if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Problem::validation("url must be an http:// or https:// URL"));
        }
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(scheme, _)| {
                scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
            })
            .ok_or_else(|| Problem::validation("url must be an http:// or https:// URL"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(Problem::validation("url must not carry credentials"));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| Problem::validation("url must name a host"))?;
        let port = match port {
            Some(port) => port,
            None if scheme.eq_ignore_ascii_case("https") => 443,
            None => 80,
        };
        let events = match &self.events {
            None => EventType::ALL.to_vec(),
            Some(names) if names.is_empty() => {
                return Err(Problem::validation(
                    "events must name at least one event type (or be left out for all)",
                ));
            }
            Some(names) => {
                let mut events = names
                    .iter()
                    .map(|name| {
                        EventType::parse(name).ok_or_else(|| {
                            Problem::validation(format!("unknown event type {name:?}"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                events.sort_by_key(|kind| kind.as_str());
                events.dedup();
                events
            }
        };
        Ok(WebhookTarget { url: url.to_owned(), host, port, events })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` without a host or with a bad port.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = port.map(str::parse).transpose().ok()?;
    Some((host.to_ascii_lowercase(), port))
}

/// Refuses a server already holding [`MAX_WEBHOOKS`].
pub fn check_webhook_count(count: i64) -> Result<(), Problem> {
    if count >= MAX_WEBHOOKS {
        Err(Problem::with_message(
            ErrorCode::ValidationError,
            "Maximum number of webhooks reached (10)",
        ))
    } else {
        Ok(())
    }
}

/// Whether a delivery may reach `addr`: not loopback, private, link-local, unspecified,
/// multicast, shared (carrier-grade NAT), documentation or unique-local space. A webhook is a
/// request the service makes on someone's behalf: aimed inside the network it runs in, it would
/// reach what no one outside should.
pub fn is_public(addr: IpAddr) -> bool {
    match addr.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> CreateWebhookRequest {
        CreateWebhookRequest { url: url.to_owned(), events: None }
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        let target = request("https://Example.com/hooks?x=1").validate().unwrap();
        assert_eq!((target.host.as_str(), target.port), ("example.com", 443));
        assert_eq!(target.events, EventType::ALL.to_vec());
        let target = request("http://[::1]:8080/x").validate().unwrap();
        assert_eq!((target.host.as_str(), target.port), ("::1", 8080));
        for bad in [
            "ftp://example.com",
            "example.com",
            "https://",
            "https://user:pw@example.com/",
            "https://exa mple.com",
            "https://example.com:99999/",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                request(bad).validate().unwrap_err().code,
                ErrorCode::ValidationError,
                "{bad}"
            );
        }
    }

    #[test]
    fn event_types_are_known_names() {
        let named = CreateWebhookRequest {
            url: "https://example.com".into(),
            events: Some(vec!["MEMBER_JOIN".into(), "INVITE_CREATE".into(), "MEMBER_JOIN".into()]),
        };
        assert_eq!(
            named.validate().unwrap().events,
            vec![EventType::InviteCreate, EventType::MemberJoin]
        );
        let unknown = CreateWebhookRequest { events: Some(vec!["JOIN".into()]), ..named.clone() };
        assert_eq!(unknown.validate().unwrap_err().message, "unknown event type \"JOIN\"");
        let none = CreateWebhookRequest { events: Some(Vec::new()), ..named };
        assert!(none.validate().is_err());
    }

    #[test]
    fn only_public_addresses_are_reached() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn ten_webhooks_at_most() {
        assert!(check_webhook_count(9).is_ok());
        assert_eq!(
            check_webhook_count(10).unwrap_err().message,
            "Maximum number of webhooks reached (10)"
        );
    }
}
