//! Requests that ask for another protocol (`Upgrade: websocket`, or `CONNECT`), and the
//! connections handed over after a `101 Switching Protocols`.
//!
//! actix-http's HTTP/1 dispatcher gives every such request to the service installed with
//! `HttpServiceBuilder::upgrade`, with the connection's socket and its buffers, and stops
//! serving the connection itself. Here each request still goes through the whole application
//! (middleware, routing, the request log, the JSON refusals), as any other request does; then:
//! - a `101` response carrying a [`Takeover`] is written, and the connection is given to the
//!   takeover, which owns it (and its memory) from then on: the gateway's sessions;
//! - any other response is written as the dispatcher would have written it to such a request,
//!   with `Connection: close`, and the connection is closed: a request that asked for another
//!   protocol leaves its connection in no state to carry a next request.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use actix_codec::{AsyncRead, AsyncWrite, Framed};
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::error::PayloadError;
use actix_http::{ConnectionType, HttpMessage as _, Method, Request, Response, StatusCode, h1};
use actix_service::Service;
use actix_web::http::header;
use actix_web::web::BytesMut;
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long a connection whose request was answered without an upgrade is kept open for the
/// client to close it first, so that the answer is not lost to a reset. The dispatcher's
/// `client_disconnect_timeout` (`startup.rs`) is the same.
const LINGER: Duration = Duration::from_secs(1);

/// A connection after its `101` head is written: the socket, and whatever the client sent
/// after its request head (already read from the socket).
pub(crate) struct Upgraded {
    /// The socket.
    pub io: Box<dyn Io>,
    /// Bytes read past the request head, in a buffer of their own size (often none).
    pub read: BytesMut,
}

/// A connection's socket, whatever wraps it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// The application as the upgrade service calls it: a service of requests whose answers and
/// errors are responses, as actix-http asks of an HTTP/1 service.
pub(crate) trait App<B>:
    Service<Request, Response: Into<Response<B>>, Error: Into<Response<BoxBody>>>
{
}

impl<S, B> App<B> for S where
    S: Service<Request, Response: Into<Response<B>>, Error: Into<Response<BoxBody>>>
{
}

/// Put in a `101` response's extensions by a handler that takes the connection over: run with
/// the connection once the response's head is written.
pub(crate) struct Takeover(Box<dyn FnOnce(Upgraded) -> LocalBoxFuture<'static, ()>>);

impl Takeover {
    /// A takeover running `serve`.
    pub(crate) fn new(
        serve: impl FnOnce(Upgraded) -> LocalBoxFuture<'static, ()> + 'static,
    ) -> Self {
        Self(Box::new(serve))
    }
}

/// Put in the extensions of every request that arrives through [`serve`]: only those can be
/// taken over. Any other request asking for an upgrade (one with a chunked body: the dispatcher
/// serves it as an ordinary request) gets the handler's refusal instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Upgradable;

/// Whether a handler may answer this request with a [`Takeover`].
pub(crate) fn is_upgradable(req: &actix_web::HttpRequest) -> bool {
    req.extensions().contains::<Upgradable>()
}

/// The upgrade service: `req` through `app`, then the connection to the response's
/// [`Takeover`], or closed after the response. Never an error: a connection that fails here
/// is a client gone, which the dispatcher would log as a server error.
pub(crate) async fn serve<T, S, B>(
    app: Rc<S>,
    req: Request,
    framed: Framed<T, h1::Codec>,
) -> Result<(), actix_http::Error>
where
    T: Io + 'static,
    S: App<B>,
    B: MessageBody + 'static,
{
    // Boxed and awaited apart: the request's handling is done with, and its memory freed,
    // before a session starts; what stays in the connection's task for the session's life
    // is a pointer to it.
    match Box::pin(upgrade(&app, req, framed)).await {
        Ok(Some((run, upgraded))) => run(upgraded).await,
        Ok(None) => {}
        Err(error) => tracing::debug!(%error, "a connection that asked for an upgrade failed"),
    }
    Ok(())
}

/// A session to run, and the connection it takes over.
type Session = (Box<dyn FnOnce(Upgraded) -> LocalBoxFuture<'static, ()>>, Upgraded);

/// Answers `req`; the [`Takeover`] and its connection, if the answer is one.
async fn upgrade<T, S, B>(
    app: &S,
    req: Request,
    mut framed: Framed<T, h1::Codec>,
) -> io::Result<Option<Session>>
where
    T: Io + 'static,
    S: App<B>,
    B: MessageBody + 'static,
{
    req.extensions_mut().insert(Upgradable);
    // A HEAD request's answer has no body: the dispatcher's codec leaves it out.
    let head = req.method() == Method::HEAD;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok());
    let response = if declared.unwrap_or(0) > 0 {
        with_body(app, req, &mut framed).await
    } else {
        app.call(req).await
    };
    let mut response = match response {
        Ok(response) => response.into().map_into_boxed_body(),
        Err(error) => error.into(),
    };
    let takeover = if response.status() == StatusCode::SWITCHING_PROTOCOLS && !head {
        response.extensions_mut().remove::<Takeover>()
    } else {
        None
    };
    let Some(Takeover(run)) = takeover else {
        // A 101 stays as it was (only its body is left out); anything else closes.
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            response.head_mut().set_connection_type(ConnectionType::Close);
        }
        answer(framed, response).await?;
        return Ok(None);
    };
    send(&mut framed, response).await?;
    let parts = framed.into_parts();
    // The dispatcher's buffers (8 KiB each) are let go here: a session keeps only what it
    // needs between frames. What the client sent early is moved to a buffer of its size.
    let read = if parts.read_buf.is_empty() {
        BytesMut::new()
    } else {
        BytesMut::from(&parts.read_buf[..])
    };
    drop((parts.read_buf, parts.write_buf, parts.codec));
    Ok(Some((run, Upgraded { io: Box::new(parts.io), read })))
}

/// Calls `app` with a request that declares a body. A request asking for an upgrade has no
/// length: its body is whatever follows on the connection, until the client closes it (as
/// the dispatcher has it), and is fed to the request while the application works on it.
async fn with_body<T, S>(
    app: &S,
    mut req: Request,
    framed: &mut Framed<T, h1::Codec>,
) -> Result<S::Response, S::Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Service<Request>,
{
    let (mut body, payload) = h1::Payload::create(false);
    *req.payload() = actix_http::Payload::H1 { payload };
    let call = app.call(req);
    tokio::pin!(call);
    let mut reading = true;
    loop {
        tokio::select! {
            biased;
            response = &mut call => return response,
            read = framed.next(), if reading => match read {
                Some(Ok(h1::Message::Chunk(Some(chunk)))) => body.feed_data(chunk),
                Some(Ok(_)) | None => {
                    body.feed_eof();
                    reading = false;
                }
                Some(Err(_)) => {
                    body.set_error(PayloadError::Incomplete(None));
                    reading = false;
                }
            },
        }
    }
}

/// Writes `response` (a request that asked for an upgrade is answered with `Connection:
/// close`: the rest of the connection was to be the other protocol), then closes the
/// connection once the client has, or after [`LINGER`].
async fn answer<T>(mut framed: Framed<T, h1::Codec>, response: Response<BoxBody>) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    send(&mut framed, response).await?;
    let mut io = framed.into_parts().io;
    io.shutdown().await?;
    let _ = tokio::time::timeout(LINGER, async {
        let mut discard = [0_u8; 1024];
        while matches!(io.read(&mut discard).await, Ok(read) if read > 0) {}
    })
    .await;
    Ok(())
}

/// Writes a response through the connection's HTTP/1 codec, as the dispatcher would have.
async fn send<T>(framed: &mut Framed<T, h1::Codec>, response: Response<BoxBody>) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    type Item = h1::Message<(Response<()>, BodySize)>;
    let (head, mut body) = response.into_parts();
    let size = body.size();
    Pin::new(&mut *framed).write::<Item>(h1::Message::Item((head, size)))?;
    while let Some(chunk) = poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
        let chunk = chunk.map_err(|error| io::Error::other(error.to_string()))?;
        Pin::new(&mut *framed).write::<Item>(h1::Message::Chunk(Some(chunk)))?;
        poll_fn(|cx| Pin::new(&mut *framed).flush::<Item>(cx)).await?;
    }
    Pin::new(&mut *framed).write::<Item>(h1::Message::Chunk(None))?;
    poll_fn(|cx| Pin::new(&mut *framed).flush::<Item>(cx)).await
}

/// The upgrade service's factory for `HttpServiceBuilder::upgrade`: each worker's service
/// calls `app`, a factory of the same application its HTTP/1 service runs.
pub(crate) fn factory<T, F, B>(
    app: F,
) -> impl actix_service::ServiceFactory<
    (Request, Framed<T, h1::Codec>),
    Config = (),
    Response = (),
    Error = actix_http::Error,
    InitError = (),
>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    F: actix_service::ServiceFactory<Request, Config = ()> + 'static,
    F::Service: 'static,
    F::Response: Into<Response<B>>,
    F::Error: Into<Response<BoxBody>>,
    F::InitError: std::fmt::Debug,
    B: MessageBody + 'static,
{
    actix_service::fn_factory(move || {
        let building = app.new_service(());
        async move {
            let app = Rc::new(building.await.map_err(|error| {
                tracing::error!(?error, "cannot build the upgrade service's application");
            })?);
            Ok::<_, ()>(actix_service::fn_service(
                move |(req, framed): (Request, Framed<T, h1::Codec>)| {
                    serve(Rc::clone(&app), req, framed)
                },
            ))
        }
    })
}
