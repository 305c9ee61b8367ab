//! A gateway session's WebSocket, over the connection the upgrade handed over
//! ([`crate::server::upgrade`]), with buffers that hold nothing while the session waits.
//!
//! Ten thousand sessions are idle most of the time. A buffer kept between frames is kept ten
//! thousand times, so none is: a read lands in a buffer on the stack and only what it brought
//! is copied to the heap (a frame, often less), and the write buffer holds a frame only until
//! the socket has taken it. Between frames a session's socket has no buffer at all.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use actix_codec::{Decoder as _, Encoder as _};
use actix_http::ws::{self, CloseReason, Frame, Item, Message, ProtocolError};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use tokio::io::{AsyncRead as _, AsyncWrite as _, AsyncWriteExt as _, ReadBuf};

use crate::server::upgrade::{Io, Upgraded};

/// The most one read takes from the socket: a client's largest frame fits, with its header.
const READ_CHUNK: usize = 8 * 1024;

/// Control frames carry at most this many bytes (RFC 6455 section 5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// A message from the client, continuations put together.
#[derive(Debug)]
pub(super) enum Incoming {
    /// A text message.
    Text(ByteString),
    /// A binary message (the gateway refuses them unread).
    Binary,
    /// A ping, to be answered with its bytes.
    Ping(Bytes),
    /// A pong.
    Pong,
    /// The client closes, perhaps saying why.
    Close(Option<CloseReason>),
}

/// A message being put together from continuation frames.
#[derive(Debug)]
struct Fragments {
    text: bool,
    parts: BytesMut,
}

/// The server's end of a WebSocket.
pub(super) struct WebSocket {
    io: Box<dyn Io>,
    codec: ws::Codec,
    /// Bytes read and not yet a whole frame; empty and without capacity between frames.
    read: BytesMut,
    /// Bytes encoded and not yet taken by the socket; without capacity once they are.
    write: BytesMut,
    fragments: Option<Fragments>,
    /// Most bytes a client's frame, or message of continuations, may have.
    max_message: usize,
}

impl WebSocket {
    /// The WebSocket over an upgraded connection; frames and messages from the client are
    /// refused above `max_message` bytes.
    pub(super) fn new(upgraded: Upgraded, max_message: usize) -> Self {
        Self {
            io: upgraded.io,
            codec: ws::Codec::new().max_size(max_message),
            read: upgraded.read,
            write: BytesMut::new(),
            fragments: None,
            max_message,
        }
    }

    /// The client's next message; `None` once the connection is closed. A frame over the
    /// size limit is [`ProtocolError::Overflow`]; a message of continuations over it, text that
    /// is not UTF-8, or a failed read is [`ProtocolError::Io`]. Cancel-safe: what was read
    /// stays for the next call.
    pub(super) async fn next(&mut self) -> Option<Result<Incoming, ProtocolError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, ProtocolError>>> {
        loop {
            match self.codec.decode(&mut self.read) {
                Ok(Some(frame)) => {
                    if let Some(message) = self.message(frame).transpose() {
                        return Poll::Ready(Some(message));
                    }
                    continue;
                }
                Ok(None) => {}
                Err(error) => return Poll::Ready(Some(Err(error))),
            }
            if self.read.is_empty() {
                // Nothing is held while the socket has nothing to say.
                self.read = BytesMut::new();
            }
            // Uninitialised: a session is woken for every frame it sends, and each wake-up
            // polls the socket first; clearing 8 KiB each time would cost more than the frame.
            let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut chunk = ReadBuf::uninit(&mut chunk);
            if let Err(error) = ready!(Pin::new(&mut self.io).poll_read(cx, &mut chunk)) {
                return Poll::Ready(Some(Err(ProtocolError::Io(error))));
            }
            if chunk.filled().is_empty() {
                return Poll::Ready(None);
            }
            self.read.extend_from_slice(chunk.filled());
        }
    }

    /// The message a frame completes, if it completes one.
    fn message(&mut self, frame: Frame) -> Result<Option<Incoming>, ProtocolError> {
        let (first, last, bytes) = match frame {
            Frame::Text(bytes) => return text(bytes).map(Some),
            Frame::Binary(_) => return Ok(Some(Incoming::Binary)),
            Frame::Ping(bytes) => return Ok(Some(Incoming::Ping(bytes))),
            Frame::Pong(_) => return Ok(Some(Incoming::Pong)),
            Frame::Close(reason) => return Ok(Some(Incoming::Close(reason))),
            Frame::Continuation(Item::FirstText(bytes)) => (Some(true), false, bytes),
            Frame::Continuation(Item::FirstBinary(bytes)) => (Some(false), false, bytes),
            Frame::Continuation(Item::Continue(bytes)) => (None, false, bytes),
            Frame::Continuation(Item::Last(bytes)) => (None, true, bytes),
        };
        if let Some(text) = first {
            self.fragments = Some(Fragments { text, parts: BytesMut::new() });
        }
        let Some(fragments) = self.fragments.as_mut() else {
            return Err(invalid("a continuation with no first frame"));
        };
        if fragments.parts.len() + bytes.len() > self.max_message {
            self.fragments = None;
            return Err(invalid("a message over the size limit"));
        }
        fragments.parts.extend_from_slice(&bytes);
        if !last {
            return Ok(None);
        }
        match self.fragments.take() {
            Some(Fragments { text: true, parts }) => text(parts.freeze()).map(Some),
            Some(Fragments { text: false, .. }) => Ok(Some(Incoming::Binary)),
            None => Ok(None),
        }
    }

    /// Sends a text frame; an error once the connection is gone. Cancel-safe: a frame
    /// interrupted on its way stays first in line, and goes before the next one.
    pub(super) async fn text(&mut self, text: ByteString) -> Result<(), ProtocolError> {
        self.send(Message::Text(text)).await
    }

    /// Answers a ping.
    pub(super) async fn pong(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        let bytes = &bytes[..bytes.len().min(MAX_CONTROL_PAYLOAD)];
        self.send(Message::Pong(Bytes::copy_from_slice(bytes))).await
    }

    /// Closes the session: a close frame, then the client's answer (or its end of the
    /// connection) is awaited, for at most `patience`, and the connection is closed.
    pub(super) async fn close(mut self, reason: Option<CloseReason>, patience: Duration) {
        let _ = tokio::time::timeout(patience, async {
            if self.send(Message::Close(reason)).await.is_err() {
                return;
            }
            // Closed under a client still sending, the connection would be reset, which can
            // cost the client the close frame before it reads it.
            while let Some(Ok(incoming)) = self.next().await {
                if let Incoming::Close(_) = incoming {
                    break;
                }
            }
            let _ = self.io.shutdown().await;
        })
        .await;
    }

    /// Answers the client's close frame with `reason`, and closes the connection.
    pub(super) async fn answer_close(mut self, reason: Option<CloseReason>, patience: Duration) {
        let _ = tokio::time::timeout(patience, async {
            if self.send(Message::Close(reason)).await.is_ok() {
                let _ = self.io.shutdown().await;
            }
        })
        .await;
    }

    async fn send(&mut self, message: Message) -> Result<(), ProtocolError> {
        self.codec.encode(message, &mut self.write)?;
        std::future::poll_fn(|cx| self.poll_flush(cx)).await.map_err(ProtocolError::Io)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.write.is_empty() {
            let written = ready!(Pin::new(&mut self.io).poll_write(cx, &self.write))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let _ = self.write.split_to(written);
        }
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        // Out: nothing is held until the next frame.
        self.write = BytesMut::new();
        Poll::Ready(Ok(()))
    }
}

/// A text message, if it is UTF-8.
fn text(bytes: Bytes) -> Result<Incoming, ProtocolError> {
    ByteString::try_from(bytes).map(Incoming::Text).map_err(|_| invalid("text that is not UTF-8"))
}

fn invalid(what: &str) -> ProtocolError {
    ProtocolError::Io(io::Error::new(io::ErrorKind::InvalidData, what))
}
