//! A cap on the connections one address holds open at once.
//!
//! Every connection costs a file descriptor, and the process has a fixed number of them: one
//! address opening connections it never finishes (each may wait out the head and body
//! deadlines) could otherwise take them all, and with them the service from everyone else. The
//! connections of a trusted proxy are not capped: they carry everybody's requests.

use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;
use invite_core::ErrorCode;

use crate::api::error::ErrorBody;
use crate::guard::client_addr::TrustedProxies;

/// Open connections by address.
#[derive(Debug)]
pub(crate) struct ConnectionLimit {
    open: DashMap<IpAddr, usize>,
    most: usize,
    proxies: Arc<TrustedProxies>,
}

/// One admitted connection; dropping it (with the connection) frees its place.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    limit: Arc<ConnectionLimit>,
    addr: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limit.open.remove_if_mut(&self.addr, |_, open| {
            *open -= 1;
            *open == 0
        });
    }
}

impl ConnectionLimit {
    /// At most `most` connections per address, proxies excepted.
    pub(crate) fn new(most: usize, proxies: Arc<TrustedProxies>) -> Arc<Self> {
        Arc::new(Self { open: DashMap::new(), most: most.max(1), proxies })
    }

    /// A place for a connection from `addr`, or `None` when the address holds its share; a
    /// trusted proxy's connection is admitted holding no place (`Some(None)`).
    #[expect(clippy::option_option, reason = "refused, admitted without a place, or with one")]
    pub(crate) fn admit(self: &Arc<Self>, addr: IpAddr) -> Option<Option<ConnectionSlot>> {
        let addr = addr.to_canonical();
        if self.proxies.is_trusted(addr) {
            return Some(None);
        }
        let mut open = self.open.entry(addr).or_insert(0);
        if *open >= self.most {
            return None;
        }
        *open += 1;
        Some(Some(ConnectionSlot { limit: Arc::clone(self), addr }))
    }
}

/// What a refused connection is told before it is closed.
pub(crate) fn refusal() -> Vec<u8> {
    let code = ErrorCode::TooManyConnections;
    let body =
        serde_json::to_string(&ErrorBody::new(code.default_message(), code)).unwrap_or_default();
    format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_share() {
        let limit = ConnectionLimit::new(2, Arc::default());
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let first = limit.admit(one).unwrap();
        let second = limit.admit(one).unwrap();
        assert!(limit.admit(one).is_none());
        assert!(limit.admit("192.0.2.2".parse().unwrap()).is_some(), "another address");
        drop(first);
        assert!(limit.admit(one).is_some(), "a place was freed");
        drop(second);
        let proxied = ConnectionLimit::new(
            1,
            Arc::new(TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()])),
        );
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let held: Vec<_> = (0..10).map(|_| proxied.admit(proxy).unwrap()).collect();
        assert_eq!(held.len(), 10, "a trusted proxy is not capped");
    }

    #[test]
    fn the_refusal_is_well_formed_json() {
        let refusal = refusal();
        let text = std::str::from_utf8(&refusal).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "TOO_MANY_CONNECTIONS");
    }
}
