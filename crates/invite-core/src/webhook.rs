//! The rules of webhooks (contract section 9): what a registration may ask for, which addresses
//! a delivery may reach, and the signature receivers check.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::{Host, ParseError, Url};

use crate::event::EventType;
use crate::problem::{ErrorCode, Problem};

/// Most webhooks a server may have.
pub const MAX_WEBHOOKS: i64 = 10;

/// Longest webhook URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// One attempt at delivering one event, as the delivery log keeps and shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// The event's `seq`.
    pub event_seq: i64,
    /// The event's type.
    pub event_type: String,
    /// 1 for the first attempt at this event.
    pub attempt: i32,
    /// The receiver's status; `null` when it did not answer.
    pub status: Option<i32>,
    /// Why it failed; `null` when delivered.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The body of `POST /servers/{id}/webhooks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub events: Option<Vec<String>>,
}

/// A webhook's host, as the delivery client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    /// A name (in its ASCII, lower-case form), resolved at every connection.
    Name(String),
    /// An address, connected to without resolving: written in whatever form the URL used
    /// (`2130706433`, `0x7f.1` and `127。0。0。1` are all `127.0.0.1`).
    Address(IpAddr),
}

/// A webhook URL parsed as the delivery client parses it: the WHATWG URL Standard, through the
/// `url` crate that `reqwest` itself uses. The host judged is then the host connected to; a
/// parser of its own would read `http://2130706433/` as a name while the client dials
/// 127.0.0.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: Url,
    host: TargetHost,
    port: u16,
}

impl WebhookUrl {
    /// Parses `raw`: http or https, a host, no credentials.
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        let url = Url::parse(raw).map_err(|error| {
            Problem::validation(match error {
                ParseError::EmptyHost => "url must name a host",
                ParseError::InvalidPort => "url's port must be at most 65535",
                ParseError::IdnaError
                | ParseError::InvalidIpv4Address
                | ParseError::InvalidIpv6Address
                | ParseError::InvalidDomainCharacter => "url's host is not a valid name or address",
                _ => "url must be an http:// or https:// URL",
            })
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Problem::validation("url must be an http:// or https:// URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Problem::validation("url must not carry credentials"));
        }
        let host = match url.host() {
            Some(Host::Domain(name)) => TargetHost::Name(name.to_owned()),
            Some(Host::Ipv4(addr)) => TargetHost::Address(IpAddr::V4(addr)),
            Some(Host::Ipv6(addr)) => TargetHost::Address(IpAddr::V6(addr)),
            None => return Err(Problem::validation("url must name a host")),
        };
        // http and https always have a default port.
        let port = url.port_or_known_default().unwrap_or(80);
        Ok(Self { url, host, port })
    }

    /// The URL as parsed: what a delivery posts to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Its host.
    pub fn host(&self) -> &TargetHost {
        &self.host
    }

    /// Its port, the scheme's default when left out.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A registration that passed the rules: the URL, where it points, and the types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The URL, as given (without surrounding whitespace).
    pub url: String,
    /// The URL as a delivery reads it.
    pub endpoint: WebhookUrl,
    /// The types delivered.
    pub events: Vec<EventType>,
}

impl CreateWebhookRequest {
    /// Checks the URL ([`WebhookUrl::parse`], at most 2048 bytes) and the event types (known, at
    /// least one when given). Where the host points is checked when it is resolved, at
    /// registration and at every delivery ([`is_public`]).
    pub fn validate(&self) -> Result<WebhookTarget, Problem> {
        let url = self.url.trim();
        // The URL Standard would quietly drop tabs and newlines inside; a URL holding any is
        // refused instead, so that what is stored and shown is what is posted to.
        if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Problem::validation("url must be an http:// or https:// URL"));
        }
        let endpoint = WebhookUrl::parse(url)?;
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
        Ok(WebhookTarget { url: url.to_owned(), endpoint, events })
    }
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

/// Whether a delivery may reach `addr`. A webhook is a request the service makes on someone's
/// behalf: aimed inside the network it runs in, it would reach what no one outside should.
///
/// Refused: every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries (through
/// `iprfc`'s pinned snapshot of both: this network, private, shared (carrier-grade NAT),
/// loopback, link-local, IETF protocol assignments, documentation, benchmarking, reserved
/// (`240.0.0.0/4`), broadcast, unique-local, the IPv4-IPv6 translation prefixes (NAT64), 6to4,
/// Teredo, discard-only...), then multicast, and IPv6 outside `2000::/3`, the only block the
/// IANA IPv6 Address Space registry allocates as global unicast (which also covers site-local
/// `fec0::/10`, deprecated and in neither special-purpose registry). A few blocks the
/// registries call globally reachable (anycast relays, AS112) are refused with the rest: no
/// one receives webhooks there. An IPv4-mapped or IPv4-compatible IPv6 address is judged by
/// the IPv4 address it carries.
pub fn is_public(addr: IpAddr) -> bool {
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    };
    let outside_global_unicast =
        matches!(addr, IpAddr::V6(v6) if v6.segments()[0] & 0xe000 != 0x2000);
    !(iprfc::RFC6890.contains(&addr) || addr.is_multicast() || outside_global_unicast)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> CreateWebhookRequest {
        CreateWebhookRequest { url: url.to_owned(), events: None }
    }

    fn endpoint(url: &str) -> (TargetHost, u16) {
        let target = request(url).validate().unwrap();
        (target.endpoint.host().clone(), target.endpoint.port())
    }

    fn address(text: &str) -> TargetHost {
        TargetHost::Address(text.parse().unwrap())
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        let target = request(" https://Example.com/hooks?x=1 ").validate().unwrap();
        assert_eq!(target.url, "https://Example.com/hooks?x=1");
        assert_eq!(target.endpoint.url().as_str(), "https://example.com/hooks?x=1");
        assert_eq!(target.events, EventType::ALL.to_vec());
        assert_eq!(
            endpoint("https://Example.com/hooks"),
            (TargetHost::Name("example.com".into()), 443)
        );
        assert_eq!(endpoint("http://[::1]:8080/x"), (address("::1"), 8080));
        assert_eq!(
            endpoint("http://bücher.example/"),
            (TargetHost::Name("xn--bcher-kva.example".into()), 80)
        );
        for (bad, message) in [
            ("ftp://example.com", "url must be an http:// or https:// URL"),
            ("example.com", "url must be an http:// or https:// URL"),
            ("javascript:alert(1)", "url must be an http:// or https:// URL"),
            ("https://exa mple.com", "url must be an http:// or https:// URL"),
            ("https://exa\tmple.com", "url must be an http:// or https:// URL"),
            ("https://", "url must name a host"),
            ("https://user:pw@example.com/", "url must not carry credentials"),
            ("https://user@example.com/", "url must not carry credentials"),
            ("https://:pw@example.com/", "url must not carry credentials"),
            ("https://example.com:99999/", "url's port must be at most 65535"),
            ("http://1.2.3.4.5/", "url's host is not a valid name or address"),
            ("http://[::1/", "url's host is not a valid name or address"),
            ("http://exa<mple.com/", "url's host is not a valid name or address"),
        ] {
            let refused = request(bad).validate().unwrap_err();
            assert_eq!(refused.code, ErrorCode::ValidationError, "{bad}");
            assert_eq!(refused.message, message, "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(request(&long).validate().is_err());
    }

    /// The host is read as the HTTP client reads it: every spelling of an IPv4 address the URL
    /// Standard accepts is that address, not a name to resolve.
    #[test]
    fn addresses_in_other_spellings_are_addresses() {
        let loopback = address("127.0.0.1");
        for spelling in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://127\u{3002}0\u{3002}0\u{3002}1/",
            "http://127\u{ff0e}0\u{ff0e}0\u{ff0e}1/",
            "http://\u{ff11}\u{ff12}\u{ff17}.0.0.1/",
            "http://127.0.0.1./",
            "http://[::ffff:127.0.0.1]/",
        ] {
            let (host, _) = endpoint(spelling);
            let TargetHost::Address(ip) = host else { panic!("{spelling}: {host:?}") };
            assert!(!is_public(ip), "{spelling}");
            if !spelling.contains('[') {
                assert_eq!(TargetHost::Address(ip), loopback, "{spelling}");
            }
        }
        assert_eq!(endpoint("http://0xa9.0xfe.0xa9.0xfe/").0, address("169.254.169.254"));
        assert_eq!(endpoint("http://0/").0, address("0.0.0.0"));
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

    fn refused(text: &str) -> bool {
        !is_public(text.parse().unwrap())
    }

    /// Every block refused, at both of its edges, with the public addresses just outside it
    /// where there are any.
    #[test]
    fn only_public_addresses_are_reached() {
        let blocks: &[(&str, &str, &[&str])] = &[
            // IPv4, IANA IPv4 Special-Purpose Address Registry.
            ("0.0.0.0", "0.255.255.255", &["1.0.0.0"]),
            ("10.0.0.0", "10.255.255.255", &["9.255.255.255", "11.0.0.0"]),
            ("100.64.0.0", "100.127.255.255", &["100.63.255.255", "100.128.0.0"]),
            ("127.0.0.0", "127.255.255.255", &["126.255.255.255", "128.0.0.0"]),
            ("169.254.0.0", "169.254.255.255", &["169.253.255.255", "169.255.0.0"]),
            ("172.16.0.0", "172.31.255.255", &["172.15.255.255", "172.32.0.0"]),
            ("192.0.0.0", "192.0.0.255", &["191.255.255.255", "192.0.1.0"]),
            ("192.0.2.0", "192.0.2.255", &["192.0.1.255", "192.0.3.0"]),
            ("192.31.196.0", "192.31.196.255", &["192.31.195.255", "192.31.197.0"]),
            ("192.52.193.0", "192.52.193.255", &["192.52.192.255", "192.52.194.0"]),
            ("192.88.99.0", "192.88.99.255", &["192.88.98.255", "192.88.100.0"]),
            ("192.168.0.0", "192.168.255.255", &["192.167.255.255", "192.169.0.0"]),
            ("192.175.48.0", "192.175.48.255", &["192.175.47.255", "192.175.49.0"]),
            ("198.18.0.0", "198.19.255.255", &["198.17.255.255", "198.20.0.0"]),
            ("198.51.100.0", "198.51.100.255", &["198.51.99.255", "198.51.101.0"]),
            ("203.0.113.0", "203.0.113.255", &["203.0.112.255", "203.0.114.0"]),
            // Multicast, then reserved and broadcast, up to the top.
            ("224.0.0.0", "239.255.255.255", &["223.255.255.255"]),
            ("240.0.0.0", "255.255.255.255", &[]),
            // IPv6, IANA IPv6 Special-Purpose Address Registry; `::/96` (IPv4-compatible)
            // and `::ffff:0:0/96` (IPv4-mapped) are judged by the IPv4 address they carry.
            ("::", "::", &[]),
            ("::1", "::1", &[]),
            ("::ffff:0.0.0.0", "::ffff:0.255.255.255", &["::ffff:1.0.0.0"]),
            ("::ffff:127.0.0.0", "::ffff:127.255.255.255", &["::ffff:128.0.0.0"]),
            ("::ffff:10.0.0.0", "::ffff:10.255.255.255", &["::ffff:11.0.0.0"]),
            ("::127.0.0.0", "::127.255.255.255", &["::128.0.0.0"]),
            ("::169.254.169.254", "::169.254.169.254", &[]),
            ("64:ff9b::", "64:ff9b::ffff:ffff", &[]),
            ("64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", &[]),
            ("100::", "100::1:ffff:ffff:ffff:ffff", &[]),
            (
                "2001::",
                "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
                &["2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::"],
            ),
            (
                "2001:db8::",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                &["2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"],
            ),
            ("2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &["2003::"]),
            (
                "2620:4f:8000::",
                "2620:4f:8000:ffff:ffff:ffff:ffff:ffff",
                &["2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", "2620:4f:8001::"],
            ),
            (
                "3fff::",
                "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
                &["3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"],
            ),
            // Outside 2000::/3: the rest of ::/3 that carries no IPv4 address, 4000:: up to
            // unique-local, link-local, site-local and multicast.
            ("::1:0:0:0", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &["2000::"]),
            (
                "4000::",
                "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                &["3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
            ),
            ("5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &[]),
            ("fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &[]),
            ("fe00::", "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &[]),
            ("fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &[]),
            ("fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &[]),
            ("ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &[]),
        ];
        for (first, last, outside) in blocks {
            assert!(refused(first), "{first}");
            assert!(refused(last), "{last}");
            for public in *outside {
                assert!(!refused(public), "{public} is outside {first}-{last}");
            }
        }
        for public in
            ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "2a00:1450::1", "::ffff:8.8.8.8"]
        {
            assert!(!refused(public), "{public}");
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
