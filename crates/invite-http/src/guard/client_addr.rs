//! The client's address, for per-address limits: the socket's peer, or, when the peer is a
//! proxy listed in `INVITE_TRUSTED_PROXIES`, the address that proxy says it forwarded for.
//!
//! Only the header the proxy is configured to write is read (`INVITE_CLIENT_ADDRESS_HEADER`:
//! `X-Forwarded-For` by default, or RFC 7239's `Forwarded`); the other one is ignored
//! entirely. A proxy writes one of them and passes the other through as the client sent it,
//! so reading both, or preferring either, would let a client name its own address.
//!
//! The header is read from the right: each proxy appends the address it received the request
//! from, so the rightmost entry that is not a trusted proxy is the first one nobody trusted
//! could have forged. Entries further left were written by the client itself. An entry that
//! is not an address (`unknown`, an obfuscated name, garbage) ends the reading there: who wrote
//! what lies further left cannot be told. A header from a peer that is not trusted changes
//! nothing.
//!
//! The same rule gives the page's form its own origin (see [`TrustedProxies::forwarded_origin`]):
//! the host and scheme a trusted proxy says the request was made to.

use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header::{self, HeaderMap};
use ipnet::IpNet;

/// The header trusted proxies name the client in (`INVITE_CLIENT_ADDRESS_HEADER`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum ClientAddressHeader {
    /// `X-Forwarded-For` (with `X-Forwarded-Host` and `X-Forwarded-Proto` for the origin).
    #[default]
    XForwardedFor,
    /// RFC 7239's `Forwarded` (`for=`, `host=`, `proto=`).
    Forwarded,
}

impl ClientAddressHeader {
    /// Parses the setting's value: `x-forwarded-for` or `forwarded`.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Some(Self::XForwardedFor),
            "forwarded" => Some(Self::Forwarded),
            _ => None,
        }
    }
}

/// Proxies whose forwarding header is believed, and which header that is.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ClientAddressHeader,
}

impl TrustedProxies {
    /// The given networks, naming the client in `X-Forwarded-For`.
    pub(crate) fn new(networks: Vec<IpNet>) -> Self {
        Self { networks, header: ClientAddressHeader::default() }
    }

    /// The same proxies, naming the client in `header` instead.
    #[must_use]
    pub(crate) fn reading(self, header: ClientAddressHeader) -> Self {
        Self { header, ..self }
    }

    /// Whether `addr` is a trusted proxy.
    pub(crate) fn is_trusted(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.networks.iter().any(|net| net.contains(&addr))
    }

    /// The client's address for a request that came from `peer` with `headers`.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        // From the right: the nearest hop first. If every hop is a trusted proxy, the
        // leftmost of them.
        let mut nearest_trusted = None;
        for entry in self.entries(headers).into_iter().rev() {
            let address = match self.header {
                ClientAddressHeader::XForwardedFor => parse_addr(entry),
                ClientAddressHeader::Forwarded => forwarded_for(entry),
            };
            match address {
                Some(address) if self.is_trusted(address) => nearest_trusted = Some(address),
                Some(address) => return address,
                None => break,
            }
        }
        nearest_trusted.unwrap_or(peer)
    }

    /// The client's address for a request.
    pub(crate) fn client_of(&self, req: &HttpRequest) -> IpAddr {
        self.client(peer_of(req), req.headers())
    }

    /// `scheme://host` (lower case) that a trusted proxy says the request was made to: from
    /// the rightmost `X-Forwarded-Host` and `X-Forwarded-Proto` (or the rightmost `Forwarded`
    /// element's `host=` and `proto=`), else the `Host` header over `http`. `None` when the peer
    /// is not a trusted proxy: then none of those headers is believed, since whoever connected
    /// wrote them.
    pub(crate) fn forwarded_origin(&self, req: &HttpRequest) -> Option<String> {
        if !self.is_trusted(peer_of(req)) {
            return None;
        }
        let headers = req.headers();
        let rightmost = |name: &str| list_entries(headers, name).last();
        let (host, proto) = match self.header {
            ClientAddressHeader::XForwardedFor => {
                (rightmost("x-forwarded-host"), rightmost("x-forwarded-proto"))
            }
            ClientAddressHeader::Forwarded => {
                let element = self.entries(headers).pop();
                let pair = |name| element.and_then(|element| forwarded_pair(element, name));
                (pair("host"), pair("proto"))
            }
        };
        let host =
            host.or_else(|| headers.get(header::HOST).and_then(|value| value.to_str().ok()))?;
        let proto = proto.unwrap_or("http");
        Some(format!("{proto}://{host}").to_ascii_lowercase())
    }

    /// The comma-separated entries of the configured header, in order, across all its lines.
    fn entries<'h>(&self, headers: &'h HeaderMap) -> Vec<&'h str> {
        let name = match self.header {
            ClientAddressHeader::XForwardedFor => "x-forwarded-for",
            ClientAddressHeader::Forwarded => header::FORWARDED.as_str(),
        };
        list_entries(headers, name).collect()
    }
}

/// The comma-separated entries of the header `name`, in order, across all its lines.
fn list_entries<'h>(headers: &'h HeaderMap, name: &str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(name)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        // Empty list elements are allowed (RFC 9110, section 5.6.1) and say nothing.
        .filter(|entry| !entry.is_empty())
}

/// The socket's peer, or `0.0.0.0` when it is not known.
fn peer_of(req: &HttpRequest) -> IpAddr {
    req.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |addr| addr.ip())
}

/// The value of the pair `name` of one `Forwarded` element (`for=192.0.2.60;proto=http`),
/// quotes removed.
fn forwarded_pair<'e>(element: &'e str, name: &str) -> Option<&'e str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().trim_matches('"'))
    })
}

/// The `for=` of one `Forwarded` element, if it is an address (obfuscated identifiers and
/// `unknown` are not).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    parse_addr(forwarded_pair(element, "for")?)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or
/// `[2001:db8::1]:4711`.
fn parse_addr(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| text.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(proxies.client(ip("203.0.113.9"), &spoofed), ip("203.0.113.9"));
        assert_eq!(TrustedProxies::default().client(ip("10.0.0.1"), &spoofed), ip("10.0.0.1"));
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap(), "2001:db8::/32".parse().unwrap()])
    }

    #[test]
    fn a_trusted_proxy_names_the_rightmost_untrusted_hop() {
        let proxies = proxies();
        // The client wrote 6.6.6.6 itself; 198.51.100.2 is who reached the first proxy.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.2, 10.1.1.1")]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &chain), ip("198.51.100.2"));
        let with_port = headers(&[("x-forwarded-for", "198.51.100.3:5555")]);
        assert_eq!(proxies.client(ip("::ffff:10.0.0.2"), &with_port), ip("198.51.100.3"));
        // Several lines are one list, in order.
        let lines = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "198.51.100.4")]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &lines), ip("198.51.100.4"));
        // Empty elements say nothing; every hop trusted: the leftmost of them.
        let empty = headers(&[("x-forwarded-for", "198.51.100.5, , 10.1.1.1,")]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &empty), ip("198.51.100.5"));
        let inside = headers(&[("x-forwarded-for", "10.3.3.3, 10.1.1.1")]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &inside), ip("10.3.3.3"));
        // No usable header: the proxy itself.
        let garbage = headers(&[("x-forwarded-for", "not an address")]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &garbage), ip("10.0.0.2"));
        assert_eq!(proxies.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
        // What lies left of an entry that is no address is not read: who wrote it is unknown.
        let hidden = headers(&[("x-forwarded-for", "198.51.100.6, unknown, 10.1.1.1")]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &hidden), ip("10.1.1.1"));
    }

    #[test]
    fn forwarded_is_read_the_same_way_when_configured() {
        let proxies = proxies().reading(ClientAddressHeader::Forwarded);
        let forwarded = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::7]:80\", For=192.0.2.60;proto=http;by=10.0.0.2",
        )]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &forwarded), ip("192.0.2.60"));
        let trusted_last = headers(&[("forwarded", "for=192.0.2.61, for=\"[2001:db8::7]\"")]);
        assert_eq!(proxies.client(ip("10.0.0.2"), &trusted_last), ip("192.0.2.61"));
        // `unknown`, an obfuscated name, an element without `for=`: the reading stops.
        for stop in ["for=unknown", "for=_hidden", "proto=https"] {
            let forwarded = headers(&[("forwarded", &format!("for=192.0.2.62, {stop}"))]);
            assert_eq!(proxies.client(ip("10.0.0.2"), &forwarded), ip("10.0.0.2"), "{stop}");
        }
    }

    #[test]
    fn only_the_configured_header_is_read() {
        // The proxy appends to X-Forwarded-For and passes the client's own Forwarded on.
        let both =
            headers(&[("x-forwarded-for", "198.51.100.7"), ("forwarded", "for=203.0.113.1")]);
        assert_eq!(proxies().client(ip("10.0.0.2"), &both), ip("198.51.100.7"));
        let forwarded = proxies().reading(ClientAddressHeader::Forwarded);
        assert_eq!(forwarded.client(ip("10.0.0.2"), &both), ip("203.0.113.1"));
        // The other header alone names nobody.
        let other = headers(&[("forwarded", "for=203.0.113.1")]);
        assert_eq!(proxies().client(ip("10.0.0.2"), &other), ip("10.0.0.2"));
        let other = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(forwarded.client(ip("10.0.0.2"), &other), ip("10.0.0.2"));
    }

    #[test]
    fn the_setting_names_one_of_two_headers() {
        assert_eq!(
            ClientAddressHeader::parse("X-Forwarded-For"),
            Some(ClientAddressHeader::XForwardedFor)
        );
        assert_eq!(ClientAddressHeader::parse(" forwarded "), Some(ClientAddressHeader::Forwarded));
        assert_eq!(ClientAddressHeader::parse("x-real-ip"), None);
        assert_eq!(ClientAddressHeader::parse(""), None);
    }

    #[test]
    fn a_trusted_proxy_alone_names_the_origin() {
        let request = |peer: &str, pairs: &[(&str, &str)]| {
            let mut request = actix_web::test::TestRequest::get()
                .peer_addr(SocketAddr::new(ip(peer), 4711))
                .insert_header(("host", "10.0.0.9:8080"));
            for pair in pairs {
                request = request.append_header(*pair);
            }
            request.to_http_request()
        };
        let forged = [("x-forwarded-host", "evil.example"), ("x-forwarded-proto", "https")];
        assert_eq!(proxies().forwarded_origin(&request("203.0.113.9", &forged)), None);
        let proxied = [
            ("x-forwarded-host", "evil.example, Invite.Example"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "host=other.example;proto=https"),
        ];
        assert_eq!(
            proxies().forwarded_origin(&request("10.0.0.2", &proxied)).as_deref(),
            Some("https://invite.example")
        );
        assert_eq!(
            proxies().forwarded_origin(&request("10.0.0.2", &[])).as_deref(),
            Some("http://10.0.0.9:8080")
        );
        let forwarded = proxies().reading(ClientAddressHeader::Forwarded);
        assert_eq!(
            forwarded.forwarded_origin(&request("10.0.0.2", &proxied)).as_deref(),
            Some("https://other.example")
        );
        let two = [("forwarded", "host=evil.example, for=192.0.2.1;host=\"invite.example\"")];
        assert_eq!(
            forwarded.forwarded_origin(&request("10.0.0.2", &two)).as_deref(),
            Some("http://invite.example")
        );
    }
}
