//! The optional TLS listener ([`crate::Config::tls`]): HTTP/2 and HTTP/1.1 over TLS, chosen by
//! ALPN (`h2` first, then `http/1.1`; a client offering neither gets HTTP/1.1), served by hyper
//! on the emulator's runtime: a task per connection, and on HTTP/2 a task per stream. Every
//! request goes to the same [`Service`] as on the plain listener, with the same answer delay,
//! the same `--stamp-ready` stamp (taken just before the answer is handed to hyper), the same
//! counters and the same connection cap (the two listeners share it).
//!
//! Scripted connection faults cannot be played byte for byte inside TLS. Here a fault step
//! (after its delay, and for `stall` after its duration) ends the request without an answer:
//! on HTTP/2 the request's stream is reset (`RST_STREAM` with `INTERNAL_ERROR`) and the
//! connection's other streams go on; on HTTP/1.1 the connection is closed. A step's
//! `close_after` closes an HTTP/1.1 connection after the answer (sent with `Connection: close`)
//! and is ignored on HTTP/2, whose other streams must go on.
//!
//! Bounds: as the plain listener (head ≤ [`MAX_HEAD_BYTES`] as HTTP/2's header list, body ≤
//! [`MAX_BODY_BYTES`] answered 413, ≤ 100 headers on HTTP/1.1), ≤ [`H2_MAX_CONCURRENT_STREAMS`]
//! streams per connection, a handshake within [`HANDSHAKE_TIMEOUT`], and a connection with no
//! request in flight for [`IDLE_TIMEOUT`] is closed (on HTTP/2 with GOAWAY).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::TcpListener as StdTcpListener;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE};
use hyper::server::conn::{http1, http2};
use hyper::{StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::time::{self, Instant};
use tokio_rustls::TlsAcceptor;

use crate::exchange::{Outcome, Request, Response};
use crate::http::{listen, Server, IDLE_TIMEOUT, LINGER_TIME, MAX_BODY_BYTES, MAX_HEADERS, MAX_HEAD_BYTES};
use crate::script::Fault;

/// Streams one HTTP/2 connection may carry at once. nginx allows 128; the library opens another
/// connection when every one is full and bounds its requests in flight at 16,384. 256 keeps
/// that bound to 64 connections (handshakes are the costly part of a connection), while a
/// benchmark's 2,000 in flight still spread over 8 connections: a connection's framing and
/// encryption run on one task, so fewer than a few would leave one of the [`WORKER_THREADS`]
/// idle. Each stream in flight costs a small task and its answer (a few KiB at most).
///
/// [`WORKER_THREADS`]: crate::WORKER_THREADS
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 256;
/// Bytes every client may send on one HTTP/2 connection before the emulator acknowledges them
/// (the connection's flow-control window; a stream's stays at the protocol's 64 KiB). The
/// protocol's 64 KiB would hold back a full connection's requests (256 of a few hundred bytes
/// each) for a window update; 1 MiB is what 256 streams of 4 KiB need.
pub const H2_CONNECTION_WINDOW: u32 = 1024 * 1024;
/// A TLS handshake not done within this is dropped (a client that connects and says nothing).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The protocols offered by ALPN, the preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The TLS listener's certificate chain and private key, as PEM text (`CERTIFICATE` blocks,
/// the server's first, then a `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block).
/// Checked when made: the key must parse and match the certificate. Its `Debug` output shows
/// neither.
#[derive(Clone, PartialEq)]
pub struct TlsIdentity {
    cert_chain_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let certificates = CertificateDer::pem_slice_iter(&self.cert_chain_pem).count();
        f.debug_struct("TlsIdentity").field("certificates", &certificates).finish_non_exhaustive()
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl TlsIdentity {
    /// An identity from PEM text; an error says what is missing or wrong.
    pub fn from_pem(cert_chain_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> io::Result<TlsIdentity> {
        TlsIdentity { cert_chain_pem: cert_chain_pem.into(), key_pem: key_pem.into() }
            .checked("the certificate chain", "the private key")
    }

    /// An identity from a certificate chain file and a key file; an error names the file.
    pub fn from_files(cert_chain: &Path, key: &Path) -> io::Result<TlsIdentity> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
        };
        TlsIdentity { cert_chain_pem: read(cert_chain)?, key_pem: read(key)? }
            .checked(&cert_chain.display().to_string(), &key.display().to_string())
    }

    /// The identity if its certificates and key parse and match; an error names the part
    /// (`cert_chain`, `key`: what the caller calls them) that is wrong.
    fn checked(self, cert_chain: &str, key: &str) -> io::Result<TlsIdentity> {
        self.certificates().map_err(|m| invalid(format!("{cert_chain}: {m}")))?;
        self.key().map_err(|m| invalid(format!("{key}: {m}")))?;
        self.server_config().map_err(|m| invalid(format!("{cert_chain} and {key}: {m}")))?;
        Ok(self)
    }

    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, String> {
        let chain = CertificateDer::pem_slice_iter(&self.cert_chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("bad PEM: {e}"))?;
        if chain.is_empty() {
            return Err("no certificate (a PEM CERTIFICATE block)".into());
        }
        Ok(chain)
    }

    fn key(&self) -> Result<PrivateKeyDer<'static>, String> {
        PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| format!("no private key (a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block): {e}"))
    }

    /// rustls's server settings: ring (the library's provider), TLS 1.2 and 1.3, ALPN.
    fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(self.certificates()?, self.key()?)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

/// Starts the TLS accept loop on the emulator's runtime.
pub(crate) fn start(
    runtime: &Runtime,
    listener: StdTcpListener,
    server: Arc<Server>,
    identity: &TlsIdentity,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(identity.server_config().map_err(invalid)?));
    let count_tls = |server: &Server| server.service.count_tls_connection();
    listen(runtime, listener, server, count_tls, move |server, stream| {
        serve_connection(server, acceptor.clone(), stream)
    })
}

/// Whether a connection is idle: requests in flight, and when the last one began or ended.
struct Activity {
    in_flight: AtomicUsize,
    born: Instant,
    /// Milliseconds after `born` of the last request's start or end.
    last_ms: AtomicU64,
}

/// One request in flight on a connection; its end (or its cancellation) is activity too.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    fn new() -> Activity {
        Activity { in_flight: AtomicUsize::new(0), born: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    fn touch(&self) {
        self.last_ms.store(self.born.elapsed().as_millis() as u64, Ordering::SeqCst);
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.touch();
        Busy(Arc::clone(self))
    }

    /// Returns once the connection has had no request in flight for [`IDLE_TIMEOUT`]. A
    /// request held long (a scripted delay) keeps its connection open.
    async fn idle(&self) {
        loop {
            let deadline = self.born + Duration::from_millis(self.last_ms.load(Ordering::SeqCst)) + IDLE_TIMEOUT;
            if Instant::now() < deadline {
                time::sleep_until(deadline).await;
            } else if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            } else {
                time::sleep(IDLE_TIMEOUT).await;
            }
        }
    }
}

/// Serves one TLS connection with the protocol its handshake chose.
async fn serve_connection(server: Arc<Server>, acceptor: TlsAcceptor, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(Ok(tls)) = time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await else {
        return;
    };
    let is_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |request| answer(Arc::clone(&server), Arc::clone(&activity), request))
    };
    let io = TokioIo::new(tls);
    if is_h2 {
        let connection = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
            .max_header_list_size(MAX_HEAD_BYTES as u32)
            .initial_connection_window_size(H2_CONNECTION_WINDOW)
            .serve_connection(io, service);
        drive(connection, &activity, |c| c.graceful_shutdown()).await;
    } else {
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            // A head trickled in more slowly than this loses its connection, as on the plain
            // listener.
            .header_read_timeout(IDLE_TIMEOUT)
            .max_headers(MAX_HEADERS)
            .max_header_size(MAX_HEAD_BYTES)
            .serve_connection(io, service);
        drive(connection, &activity, |c| c.graceful_shutdown()).await;
    }
}

/// Runs a connection until it ends or goes idle; an idle one is shut down gracefully (within
/// [`LINGER_TIME`]) or dropped, which closes its socket.
async fn drive<C: Future>(connection: C, activity: &Activity, shut_down: impl FnOnce(Pin<&mut C>)) {
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        () = activity.idle() => {}
    }
    shut_down(connection.as_mut());
    let _ = time::timeout(LINGER_TIME, connection).await;
}

/// A scripted fault, given to hyper as the service's error: it resets the HTTP/2 stream or
/// closes the HTTP/1.1 connection without an answer.
#[derive(Debug)]
struct FaultPlayed(Fault);

impl fmt::Display for FaultPlayed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scripted fault {:?}", self.0)
    }
}

impl std::error::Error for FaultPlayed {}

/// The client went away or sent its body too slowly; nothing to answer.
#[derive(Debug)]
struct BodyLost;

impl fmt::Display for BodyLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request body not received")
    }
}

impl std::error::Error for BodyLost {}

type Answer = hyper::Response<Full<Bytes>>;

async fn answer(
    server: Arc<Server>,
    activity: Arc<Activity>,
    request: hyper::Request<Incoming>,
) -> Result<Answer, Box<dyn std::error::Error + Send + Sync>> {
    let _busy = activity.begin();
    let is_h2 = request.version() == Version::HTTP_2;
    server.service.count_tls_request(is_h2);
    let (parts, body) = request.into_parts();
    if body.size_hint().lower() > MAX_BODY_BYTES as u64 {
        return Ok(text_answer(413, &format!("request body larger than {MAX_BODY_BYTES} bytes")));
    }
    // A body that stops coming for the idle time loses its request, as on the plain listener.
    let body = match time::timeout(IDLE_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes().to_vec(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return Ok(text_answer(413, &format!("request body larger than {MAX_BODY_BYTES} bytes")))
        }
        Ok(Err(_)) | Err(_) => return Err(BodyLost.into()),
    };
    let request =
        Request { method: parts.method.as_str().to_owned(), path: parts.uri.path().to_owned(), body, keep_alive: true };
    let reply = server.service.handle(&request);
    if server.service.verbose() {
        let what = match &reply.outcome {
            Outcome::Respond(r) => r.status.to_string(),
            Outcome::Fault(f) => format!("fault {f:?}"),
        };
        let protocol = if is_h2 { "HTTP/2" } else { "HTTP/1.1 over TLS" };
        // Method and path only: keys travel in the body and are never logged.
        eprintln!("capmonster-emulator: {} {} ({protocol}) -> {what}", request.method, request.path);
    }
    // A client that resets its stream or closes its connection meanwhile drops this future.
    if !reply.delay.is_zero() {
        time::sleep(reply.delay).await;
    }
    match reply.outcome {
        Outcome::Fault(fault) => {
            if let Fault::Stall(duration) = fault {
                time::sleep(duration).await;
            }
            Err(FaultPlayed(fault).into())
        }
        Outcome::Respond(mut response) => {
            response.stamp_now();
            Ok(to_answer(response, reply.close_after && !is_h2))
        }
    }
}

fn text_answer(status: u16, message: &str) -> Answer {
    to_answer(Response::new(status, "text/plain; charset=utf-8", format!("{message}\n").into_bytes()), false)
}

/// hyper's form of an answer. Content-Length comes from the body; scripted headers that hyper
/// must own (framing, connection) or that are not valid HTTP/2 headers are left out.
fn to_answer(response: Response, close: bool) -> Answer {
    let mut answer = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *answer.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = answer.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&response.content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    if let Some(allow) = response.allow {
        headers.insert(ALLOW, HeaderValue::from_static(allow));
    }
    for (name, value) in &response.extra_headers {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) else {
            continue;
        };
        let owned_by_hyper = ["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"];
        if !owned_by_hyper.contains(&name.as_str()) {
            headers.append(name, value);
        }
    }
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    answer
}
