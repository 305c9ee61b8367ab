//! JSON bodies for the refusals of the HTTP layer itself.
//!
//! actix-http's connection dispatcher answers some requests before any application code sees
//! them: a request line too slow to arrive (408), a malformed head, a bad or duplicated
//! `Content-Length`, `Content-Length` with `Transfer-Encoding`, a control byte in a header (400),
//! too many headers (431), a target longer than the `http` crate parses (400). It answers with
//! an empty body, and offers no hook to change it. The contract wants JSON for every refusal.
//!
//! So each connection's stream is wrapped: a response the dispatcher writes that is a 4xx or
//! 5xx with `content-length: 0` can only be one of those (every response of the application,
//! error or not, has a JSON body), and is replaced on its way out by the same status with the
//! service's JSON error body and `connection: close` (the dispatcher closes the connection after
//! these anyway). The wrapper also measures the request line as it is read, to answer a target
//! too long with 414, which is what it is, rather than the dispatcher's 400 or 431.
//!
//! Responses of the application pass through untouched; the check costs a comparison of the
//! first bytes of each write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use invite_core::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::api::error::{ApiError, ErrorBody};
use crate::api::extract::refusal_code;

/// A request line longer than this is a target too long (414): the service's own paths are far
/// shorter, and a proxy in front usually caps lines at 8 KiB.
pub(crate) const MAX_REQUEST_LINE: usize = 8 * 1024;

/// Answers 414 to a target longer than [`MAX_REQUEST_LINE`] that the connection let through,
/// so that every target over the bound gets the same answer whatever its exact length and
/// whatever route it names: the short link `/{code}` takes every path of one segment, and
/// would otherwise turn `/healthz?<9 KiB>` into the invite page's "not found".
pub(crate) async fn refuse_long_targets<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let target = req.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if target > MAX_REQUEST_LINE {
        let response = ApiError::of(ErrorCode::UriTooLong).error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

/// How much of a response's start is searched for its head.
const HEAD_SEARCH: usize = 1024;

/// A connection's stream, with the dispatcher's empty refusals rewritten as JSON.
#[derive(Debug)]
pub(crate) struct JsonRefusals<T> {
    inner: T,
    /// The connection's place under the per-address cap, freed when the connection closes.
    _slot: Option<crate::server::connections::ConnectionSlot>,
    /// A replacement response, and how much of it is written.
    pending: Vec<u8>,
    written: usize,
    /// Bytes of the current request line read so far, until its end is seen.
    line: usize,
    line_ended: bool,
}

impl<T> JsonRefusals<T> {
    /// Wraps a connection's stream, holding its place under the per-address cap, if any.
    pub(crate) fn new(inner: T, slot: Option<crate::server::connections::ConnectionSlot>) -> Self {
        Self { inner, _slot: slot, pending: Vec::new(), written: 0, line: 0, line_ended: false }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonRefusals<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if !this.line_ended {
            let read = &buf.filled()[before..];
            match read.iter().position(|&byte| byte == b'\n') {
                Some(end) => {
                    this.line += end;
                    this.line_ended = true;
                }
                None => this.line += read.len(),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> JsonRefusals<T> {
    /// Writes what is left of a replacement; ready once it is all out.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonRefusals<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(status) = empty_refusal(buf) {
            this.pending = replacement(status, this.line_ended, this.line);
            this.written = 0;
            // The original is consumed whole; what goes out instead is written from here on,
            // and by flush and shutdown.
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        // A response is going out: what is read next starts a new request.
        this.line = 0;
        this.line_ended = false;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The status of a response head that is a 4xx or 5xx with an empty body.
fn empty_refusal(buf: &[u8]) -> Option<StatusCode> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ").or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?;
    if !matches!(rest.first(), Some(b'4' | b'5')) {
        return None;
    }
    let status = StatusCode::from_bytes(rest.get(..3)?).ok()?;
    let head = &buf[..buf.len().min(HEAD_SEARCH)];
    let end = find(head, b"\r\n\r\n")?;
    let head = &head[..end + 2];
    let empty = head
        .split(|&byte| byte == b'\n')
        .any(|line| line.trim_ascii().eq_ignore_ascii_case(b"content-length: 0"));
    empty.then_some(status)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The JSON refusal for `status`. A request line still unfinished, or longer than
/// [`MAX_REQUEST_LINE`], makes it a 414 whatever the dispatcher said.
fn replacement(status: StatusCode, line_ended: bool, line: usize) -> Vec<u8> {
    // (HTTP/1.1 in the status line is right for a 1.0 client too: RFC 9110 section 6.2.)
    let long_line = line > MAX_REQUEST_LINE || (!line_ended && line > MAX_REQUEST_LINE / 2);
    let status = if long_line && matches!(status.as_u16(), 400 | 431) {
        StatusCode::URI_TOO_LONG
    } else {
        status
    };
    let code = refusal_code(status.as_u16());
    let body =
        serde_json::to_string(&ErrorBody::new(code.default_message(), code)).unwrap_or_default();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        status.as_str(),
        status.canonical_reason().unwrap_or("Error"),
        body.len(),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_refusals_are_recognised() {
        let refusal = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: x\r\n\r\n";
        assert_eq!(empty_refusal(refusal), Some(StatusCode::BAD_REQUEST));
        let timeout = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(empty_refusal(timeout), Some(StatusCode::REQUEST_TIMEOUT));
        let old = b"HTTP/1.0 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(empty_refusal(old), Some(StatusCode::BAD_REQUEST));
        let json = b"HTTP/1.1 404 Not Found\r\ncontent-length: 58\r\ncontent-type: application/json\r\n\r\n{}";
        assert_eq!(empty_refusal(json), None);
        let no_content = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(empty_refusal(no_content), None);
        let longer =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 00\r\nx-content-length: 0\r\n\r\n";
        assert_eq!(empty_refusal(longer), None);
        assert_eq!(empty_refusal(b"HTTP/1.1 4"), None);
    }

    #[test]
    fn replacements_are_json_and_long_lines_are_414() {
        let text = String::from_utf8(replacement(StatusCode::BAD_REQUEST, true, 40)).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "MALFORMED_REQUEST");
        let text = String::from_utf8(replacement(StatusCode::BAD_REQUEST, false, 60_000)).unwrap();
        assert!(text.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{text}");
        assert!(text.contains("\"URI_TOO_LONG\""), "{text}");
        let text = String::from_utf8(replacement(StatusCode::REQUEST_TIMEOUT, false, 3)).unwrap();
        assert!(text.contains("\"REQUEST_TIMEOUT\""), "{text}");
    }
}
