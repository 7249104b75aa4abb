//! HTTP/2 on several connections: the event loop's requests to a server that offers `h2` by
//! ALPN go out as streams of hyper's own HTTP/2 connections (`hyper::client::conn::http2`), each
//! driven as a task on the loop, over the same connector (TLS, counted sockets) as HTTP/1.1.
//!
//! Bounds: at most `max_connections` connections; on each, at most as many streams as the
//! server allows (its `SETTINGS_MAX_CONCURRENT_STREAMS`, read from the connection, capped at
//! [`MAX_STREAMS_PER_CONNECTION`]; [`STREAMS_PER_CONNECTION`] until a server has said). A
//! request takes a stream on the first connection with one free, else opens a connection,
//! else (every connection full and `max_connections` open, which the channel's permits make
//! rare) joins the least loaded one, where h2 queues it until a stream ends. A connection that
//! closes (GOAWAY, reset, or [`IDLE_TIMEOUT`] without a stream) leaves the set; its streams
//! fail as a single request fails.
//!
//! A TLS server that chose HTTP/1.1 instead: the connection is handed to hyper-util's pooled
//! client ([`Handoff`]), which sends the request on it, so no connection is opened twice.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http2;
use hyper::{Request, Response, Uri};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::client::legacy::connect::{Connected, Connection as _};
use hyper_util::rt::TokioExecutor;
use tokio::sync::OnceCell;
use tower_service::Service;

use super::connector::Connector;
use super::connector::Hop;
use super::socket::{mark_busy, Busy};
use super::{failure, IDLE_TIMEOUT};

/// The streams a connection is given before its server says how many it allows (h2's own
/// initial value; nginx allows 128 by default, most servers at least 100).
pub const STREAMS_PER_CONNECTION: usize = 100;

/// The most streams put on one connection whatever its server allows (a server that sets no
/// limit allows any number): bounds what one connection's reset fails at once.
pub const MAX_STREAMS_PER_CONNECTION: usize = 1000;

/// How often an HTTP/2 connection checks whether it has been idle for [`IDLE_TIMEOUT`].
const IDLE_CHECK: Duration = Duration::from_secs(10);

/// A connection as the connector opens it: TLS (or plain TCP) over a counted socket, directly
/// or through the client's proxy.
pub(crate) type Stream = MaybeHttpsStream<Hop>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = Full<Bytes>;

/// The event loop's HTTP/2 connections to one server.
pub(crate) struct Http2Pool {
    shared: Arc<Shared>,
}

struct Shared {
    connector: Connector,
    /// Where a connection on which the server chose HTTP/1.1 waits for hyper-util's client.
    handoff: Arc<Mutex<Option<Stream>>>,
    max_connections: usize,
    /// The streams per connection the last server's SETTINGS allowed (capped), given to new
    /// connections until their own SETTINGS arrive.
    streams_allowed: AtomicUsize,
    /// At most `max_connections`; a linear scan per request (a few dozen in practice).
    connections: Mutex<Vec<Arc<Connection>>>,
    epoch: Instant,
}

/// One HTTP/2 connection of the set, being opened or open.
struct Connection {
    opened: OnceCell<Opened>,
    /// Streams taken on it (in flight, or waiting for it to open); changed under the set's lock
    /// upwards, anywhere downwards.
    streams: AtomicUsize,
    /// The streams its server allows (capped).
    limit: AtomicUsize,
    /// Left the set: closed, or idle too long.
    gone: AtomicBool,
    /// When its last stream ended, in ms since the set's epoch.
    idle_since_ms: AtomicU64,
    /// Its socket as the connector described it: each stream marks it busy through it, so
    /// that the client's gate never closes it to make room while a stream is on it.
    socket: std::sync::OnceLock<Connected>,
}

enum Opened {
    Http2(http2::SendRequest<Body>),
    /// The server chose HTTP/1.1: the connection went to [`Handoff`].
    Http1,
    /// The connection could not be opened: every request that waited for it fails so.
    Failed(String),
}

/// Why a request got no answer from the pool.
pub(crate) enum Unsent {
    /// The server speaks HTTP/1.1 here: send the request with hyper-util's client.
    Http1(Box<Request<Body>>),
    /// It failed, in the blocking path's words.
    Failed(String),
}

/// A stream taken on a connection, counted until dropped (after the answer's body is read).
pub(crate) struct Taken {
    connection: Arc<Connection>,
    shared: Arc<Shared>,
    /// The stream's mark on the connection's socket (`socket.rs`), once the connection is open.
    _busy: Option<Busy>,
}

impl Drop for Taken {
    fn drop(&mut self) {
        if self.connection.streams.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.connection.idle_since_ms.store(self.shared.now_ms(), Ordering::Relaxed);
        }
    }
}

impl Http2Pool {
    pub fn new(connector: Connector, handoff: Arc<Mutex<Option<Stream>>>, max_connections: u32) -> Http2Pool {
        Http2Pool {
            shared: Arc::new(Shared {
                connector,
                handoff,
                max_connections: (max_connections as usize).max(1),
                streams_allowed: AtomicUsize::new(STREAMS_PER_CONNECTION),
                connections: Mutex::new(Vec::new()),
                epoch: Instant::now(),
            }),
        }
    }

    /// The streams per connection the server allows (capped), as last heard.
    pub fn streams_allowed(&self) -> usize {
        self.shared.streams_allowed.load(Ordering::Relaxed)
    }

    /// Sends `request` as a stream of one of the connections, opening one if needed. The
    /// [`Taken`] stream must live until the answer's body is read.
    pub async fn send(&self, mut request: Request<Body>) -> Result<(Response<Incoming>, Taken), Unsent> {
        let uri = request.uri().clone();
        // Twice at most: a request that a closing connection gave back unsent goes to another
        // one, as hyper's pool resends it.
        let mut resent = false;
        loop {
            let mut taken = self.shared.take();
            // Boxed: opening (TLS and the handshake) is the largest state by far, and rare; inline,
            // it would size every request's future (about 15 KiB) for the whole request.
            let open = || Box::pin(self.shared.open(uri.clone(), &taken.connection));
            let opened = taken.connection.opened.get_or_init(open).await;
            let mut sender = match opened {
                Opened::Http2(sender) => {
                    // In the poll that picked the connection: no close to make room comes between.
                    taken._busy = taken.connection.socket.get().and_then(mark_busy);
                    sender.clone()
                }
                Opened::Http1 => return Err(Unsent::Http1(Box::new(request))),
                Opened::Failed(message) => return Err(Unsent::Failed(message.clone())),
            };
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, taken)),
                Err(mut error) => match error.take_message() {
                    Some(unsent) if !resent => {
                        taken.connection.gone.store(true, Ordering::Relaxed);
                        resent = true;
                        request = unsent;
                    }
                    _ => return Err(Unsent::Failed(failure(error.error(), false))),
                },
            }
        }
    }
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Connection>>> {
        self.connections.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A stream on the first connection with one free, else on a new connection, else on the
    /// least loaded one.
    fn take(self: &Arc<Shared>) -> Taken {
        let mut connections = self.lock();
        connections.retain(|connection| connection.usable());
        let free =
            connections.iter().find(|c| c.streams.load(Ordering::Relaxed) < c.limit.load(Ordering::Relaxed)).cloned();
        // Every connection full and max_connections open: the least loaded one, where h2
        // queues the stream.
        let least = || connections.iter().min_by_key(|c| c.streams.load(Ordering::Relaxed)).cloned();
        let joined = free.or_else(|| if connections.len() < self.max_connections { None } else { least() });
        let connection = match joined {
            Some(connection) => connection,
            None => {
                let connection = Arc::new(Connection {
                    opened: OnceCell::new(),
                    streams: AtomicUsize::new(0),
                    limit: AtomicUsize::new(self.streams_allowed.load(Ordering::Relaxed)),
                    gone: AtomicBool::new(false),
                    idle_since_ms: AtomicU64::new(self.now_ms()),
                    socket: std::sync::OnceLock::new(),
                });
                connections.push(Arc::clone(&connection));
                connection
            }
        };
        connection.streams.fetch_add(1, Ordering::Relaxed);
        Taken { connection, shared: Arc::clone(self), _busy: None }
    }

    /// Opens a connection: TLS with ALPN; if the server chose `h2`, hyper's HTTP/2 handshake and
    /// the connection's task on the loop.
    async fn open(self: &Arc<Shared>, uri: Uri, connection: &Arc<Connection>) -> Opened {
        let mut connector = self.connector.clone();
        let stream = match connect(&mut connector, uri).await {
            Ok(stream) => stream,
            Err(error) => return Opened::Failed(failure(error.as_ref(), false)),
        };
        let connected = stream.connected();
        if !connected.is_negotiated_h2() {
            // One at most waits; another is closed (dropped).
            let mut handoff = self.handoff.lock().unwrap_or_else(PoisonError::into_inner);
            if handoff.is_none() {
                *handoff = Some(stream);
            }
            return Opened::Http1;
        }
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder.initial_max_send_streams(self.streams_allowed.load(Ordering::Relaxed));
        let (sender, driven) = match builder.handshake::<_, Body>(stream).await {
            Ok(handshake) => handshake,
            Err(error) => return Opened::Failed(failure(&error, false)),
        };
        let _ = connection.socket.set(connected);
        tokio::spawn(drive(driven, Arc::clone(self), Arc::clone(connection)));
        Opened::Http2(sender)
    }

    /// Ends when `connection` has had no stream for [`IDLE_TIMEOUT`]; it is then gone (under
    /// the set's lock, so no request takes it meanwhile).
    async fn idle(&self, connection: &Connection) {
        let timeout = IDLE_TIMEOUT.as_millis() as u64;
        loop {
            tokio::time::sleep(IDLE_CHECK).await;
            let _connections = self.lock();
            let idle_since = connection.idle_since_ms.load(Ordering::Relaxed);
            if connection.streams.load(Ordering::Relaxed) == 0 && self.now_ms().saturating_sub(idle_since) >= timeout {
                connection.gone.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

impl Connection {
    fn usable(&self) -> bool {
        if self.gone.load(Ordering::Relaxed) {
            return false;
        }
        match self.opened.get() {
            None => true,
            Some(Opened::Http2(sender)) => !sender.is_closed(),
            Some(_) => false,
        }
    }
}

async fn connect(connector: &mut Connector, uri: Uri) -> Result<Stream, BoxError> {
    std::future::poll_fn(|cx| connector.poll_ready(cx)).await?;
    connector.call(uri).await
}

/// Drives an HTTP/2 connection until it closes or idles out, reading the server's stream limit
/// as its SETTINGS arrive. The connection (and its socket) is dropped at the end.
async fn drive(
    driven: http2::Connection<Stream, Body, TokioExecutor>,
    shared: Arc<Shared>,
    connection: Arc<Connection>,
) {
    let mut driven = Box::pin(driven);
    let serve = std::future::poll_fn(|cx: &mut Context<'_>| {
        let polled = driven.as_mut().poll(cx);
        let allowed = driven.current_max_send_streams().clamp(1, MAX_STREAMS_PER_CONNECTION);
        if connection.limit.swap(allowed, Ordering::Relaxed) != allowed {
            shared.streams_allowed.store(allowed, Ordering::Relaxed);
        }
        match polled {
            Poll::Ready(_) => Poll::Ready(()),
            Poll::Pending => Poll::Pending,
        }
    });
    tokio::select! {
        _ = serve => {}
        _ = shared.idle(&connection) => {}
    }
    connection.gone.store(true, Ordering::Relaxed);
}

/// The connector of hyper-util's HTTP/1.1 client: hands over the connection the HTTP/2 pool
/// opened when the server chose HTTP/1.1 (so the first request does not open a second one),
/// then connects as the connector does.
#[derive(Clone)]
pub(crate) struct Handoff {
    connector: Connector,
    waiting: Arc<Mutex<Option<Stream>>>,
}

impl Handoff {
    pub fn new(connector: Connector) -> Handoff {
        Handoff { connector, waiting: Arc::new(Mutex::new(None)) }
    }

    /// Where the HTTP/2 pool leaves a connection for this connector.
    pub fn waiting(&self) -> Arc<Mutex<Option<Stream>>> {
        Arc::clone(&self.waiting)
    }
}

impl Service<Uri> for Handoff {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.connector.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner).take();
        match waiting {
            Some(stream) => Box::pin(std::future::ready(Ok(stream))),
            None => self.connector.call(uri),
        }
    }
}
