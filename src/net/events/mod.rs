//! The event loop's transport: one exchange with the service as a future, on hyper's client
//! (HTTP/1.1 pool, HTTP/2 when TLS's ALPN offers it) over the same rustls and trusted roots as
//! the blocking path. Used only by the waiters' engine when it runs on an event loop
//! (`src/wait/events.rs`); single blocking calls keep ureq (`transport.rs`).
//!
//! Connections: requests in flight hold a permit of [`EventChannel`]'s admission
//! (`admission.rs`: one at a time over TLS until the protocol is known; on HTTP/1.1 an
//! allowance that grows with the server's round trip up to `max_connections`; on HTTP/2
//! `max_connections` × the streams the server allows per connection), and while they speak
//! HTTP/1.1 one of the client's gate too (`net/gate.rs`), shared with its blocking calls, so
//! that both paths together keep to `max_connections` requests in flight. On HTTP/1.1 a
//! request in flight is a connection, in hyper-util's pool; HTTP/2 opens a new connection when
//! every open one is full, up to `max_connections` (`h2.rs`).

mod admission;
mod cancelled;
mod connector;
mod h2;
mod socket;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, Uri, Version};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;

use admission::{Admission, Admitted};
pub(crate) use cancelled::cancelled;
use h2::STREAMS_PER_CONNECTION;
use h2::{Handoff, Http2Pool, Taken, Unsent};

use crate::api::error::{Code, Error};
use crate::cancel::Cancel;
use crate::net::endpoint::{BaseUrl, ProxyUrl};
use crate::net::gate::{Gate, OwnedPermit, Refused};
use crate::net::transport::{AttemptFailure, Method, MAX_BODY_BYTES, USER_AGENT};
use crate::net::trust::{self, Trust};
use crate::net::wire::Wire;

/// How long an idle pooled connection is kept (a waiter's interval is a few seconds).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// What the engine's requests are sent with while the client's settings stay the same.
pub(crate) struct EventChannel {
    /// HTTP/1.1 (plain, or a TLS server without `h2`): hyper-util's pool.
    client: HyperClient<Handoff, Full<Bytes>>,
    /// HTTP/2: `None` without TLS (no ALPN).
    http2: Option<Http2Pool>,
    /// The TLS server chose HTTP/1.1: every request goes to `client`.
    http1_over_tls: AtomicBool,
    urls: [Uri; Method::ALL.len()],
    pub request_timeout: Duration,
    /// The proxy the connections go through, for messages (its credentials are scrubbed).
    pub proxy: Option<ProxyUrl>,
    /// How many requests go out at once (`admission.rs`).
    admission: Arc<Admission>,
    /// The client's count of requests in flight on the event loop without a gate permit
    /// (HTTP/2 streams; the gate counts the others), for its stats.
    in_flight: Arc<AtomicU32>,
    /// The client's gate: an HTTP/1.1 request holds one of its permits, as a blocking one does.
    gate: Arc<Gate>,
}

/// A request's right to go out on the event loop; counted in flight until dropped.
pub(crate) struct EventPermit {
    _admitted: Admitted,
    /// The gate's permit of an HTTP/1.1 request (`None` for an HTTP/2 stream).
    gate: Option<OwnedPermit>,
    in_flight: Arc<AtomicU32>,
}

impl Drop for EventPermit {
    fn drop(&mut self) {
        if self.gate.is_none() {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl EventChannel {
    /// `None` when the trust has no roots the loop can give rustls (`connector::build`): the
    /// engine then keeps its threads.
    // The client's settings as they are; a struct for one call site would only move them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        base_url: &BaseUrl,
        user_agent_url: &BaseUrl,
        request_timeout: Duration,
        trust: &Trust,
        proxy: Option<ProxyUrl>,
        wire: &Arc<Wire>,
        in_flight: &Arc<AtomicU32>,
        gate: &Arc<Gate>,
        max_connections: u32,
    ) -> Option<Result<EventChannel, Error>> {
        let connector = match connector::build(trust, request_timeout, wire, proxy.as_ref(), gate)? {
            Ok(connector) => connector,
            Err(error) => return Some(Err(error)),
        };
        let handoff = Handoff::new(connector.clone());
        let waiting = handoff.waiting();
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(max_connections as usize)
            .build(handoff);
        let parse = |url: &str| url.parse::<Uri>().map_err(|e| Error::invalid_argument(format!("{url}: {e}")));
        let mut urls = Vec::with_capacity(Method::ALL.len());
        for method in Method::ALL {
            match parse(&method.url(base_url, user_agent_url)) {
                Ok(uri) => urls.push(uri),
                Err(error) => return Some(Err(error)),
            }
        }
        let urls: [Uri; Method::ALL.len()] = urls.try_into().ok()?;
        // Without TLS there is no ALPN, so no HTTP/2: sized for HTTP/1.1 from the start.
        let plain = base_url.as_str().starts_with("http://");
        Some(Ok(EventChannel {
            client,
            http2: (!plain).then(|| Http2Pool::new(connector, waiting, max_connections)),
            http1_over_tls: AtomicBool::new(false),
            urls,
            request_timeout,
            proxy,
            admission: Admission::new(max_connections, plain, gate),
            in_flight: Arc::clone(in_flight),
            gate: Arc::clone(gate),
        }))
    }

    /// The most requests in flight at once now (for messages).
    pub fn max_in_flight(&self) -> u32 {
        self.admission.max_in_flight(self.streams_per_connection())
    }

    /// The streams the HTTP/2 server allows per connection (capped), as last heard.
    fn streams_per_connection(&self) -> u32 {
        let allowed = self.http2.as_ref().map_or(STREAMS_PER_CONNECTION, Http2Pool::streams_allowed);
        allowed as u32
    }

    /// Waits for a permit until `deadline`, or until a token triggers. `bool`: it was queued.
    pub async fn permit(&self, deadline: Instant, cancels: &[&Arc<Cancel>]) -> Result<(EventPermit, bool), Refused> {
        let (admitted, mut queued) = match self.admission.try_admit() {
            Ok(admitted) => (admitted, false),
            Err(_) => tokio::select! {
                admitted = self.admission.admit() => (admitted, true),
                _ = tokio::time::sleep_until(deadline.into()) => return Err(Refused::Deadline),
                _ = cancelled(cancels) => return Err(Refused::Cancelled),
            },
        };
        // HTTP/1.1 (or not known yet): a request in flight is a connection, counted in the
        // client's one cap with its blocking calls.
        let gate = if self.admission.multiplexed() {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            None
        } else {
            Some(match self.gate.try_acquire_owned() {
                Some(permit) => permit,
                None => {
                    queued = true;
                    tokio::select! {
                        permit = self.gate.acquire_async() => permit,
                        _ = tokio::time::sleep_until(deadline.into()) => return Err(Refused::Deadline),
                        _ = cancelled(cancels) => return Err(Refused::Cancelled),
                    }
                }
            })
        };
        Ok((EventPermit { _admitted: admitted, gate, in_flight: Arc::clone(&self.in_flight) }, queued))
    }

    /// Learns the protocol from the first answer (`None`: a failure) and sizes the permits.
    fn size_for(&self, version: Option<Version>) {
        self.admission.size_for(version == Some(Version::HTTP_2), self.streams_per_connection());
    }

    /// Sends `request` on HTTP/2 when the server speaks it, else on hyper-util's HTTP/1.1 pool.
    /// The [`Taken`] HTTP/2 stream must live until the answer's body is read.
    async fn send(&self, request: Request<Full<Bytes>>) -> Result<(Response<Incoming>, Option<Taken>), String> {
        let mut request = request;
        if let Some(http2) = self.http2.as_ref().filter(|_| !self.http1_over_tls.load(Ordering::Relaxed)) {
            match http2.send(request).await {
                Ok((response, taken)) => return Ok((response, Some(taken))),
                Err(Unsent::Failed(message)) => return Err(message),
                Err(Unsent::Http1(unsent)) => {
                    self.http1_over_tls.store(true, Ordering::Relaxed);
                    request = *unsent;
                }
            }
        }
        match self.client.request(request).await {
            Ok(response) => Ok((response, None)),
            Err(error) => Err(failure(&error, false)),
        }
    }

    /// Sends `body` to `method` once and reads the answer within `timeout`, or until a token
    /// triggers (the request future is dropped: on HTTP/2 its stream is reset, on HTTP/1.1 its
    /// connection closed). The failures read as the blocking path's do.
    pub async fn attempt(
        &self,
        method: Method,
        body: &str,
        timeout: Duration,
        cancels: &[&Arc<Cancel>],
    ) -> Result<(u16, Vec<u8>), AttemptFailure> {
        let uri = self.urls[method.index()].clone();
        let builder = hyper::Request::builder().uri(uri).header(hyper::header::USER_AGENT, USER_AGENT);
        let request = if method == Method::GetUserAgent {
            builder.method(hyper::Method::GET).header(hyper::header::ACCEPT, "text/plain").body(Full::default())
        } else {
            builder
                .method(hyper::Method::POST)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        };
        let mut request = request.map_err(|error| AttemptFailure {
            error: Error::new(Code::Internal, format!("{}: {error}", method.name())),
            stale_connection: false,
            http_status: None,
        })?;
        // Marks the connection busy while the request is on it, for the gate (`socket.rs`).
        let capture = hyper_util::client::legacy::connect::capture_connection(&mut request);
        let exchange = async {
            let (sent, _busy) = socket::while_busy(&capture, self.send(request)).await;
            let (response, _stream) = match sent {
                Ok(sent) => sent,
                Err(what) => {
                    self.size_for(None);
                    return Err(AttemptFailure {
                        error: Error::new(Code::Network, format!("{}: {what}", method.name())),
                        stale_connection: false,
                        http_status: None,
                    });
                }
            };
            self.size_for(Some(response.version()));
            let status = response.status().as_u16();
            match Limited::new(response.into_body(), MAX_BODY_BYTES as usize).collect().await {
                Ok(collected) => Ok((status, collected.to_bytes().to_vec())),
                Err(error) => {
                    let (code, what) = if error.is::<http_body_util::LengthLimitError>() {
                        (Code::BadResponse, format!("the answer is larger than the {MAX_BODY_BYTES}-byte limit"))
                    } else {
                        (Code::Network, failure(error.as_ref(), true))
                    };
                    Err(AttemptFailure {
                        error: Error::new(code, format!("{}: {what}", method.name())),
                        stale_connection: false,
                        http_status: Some(status),
                    })
                }
            }
        };
        tokio::select! {
            outcome = tokio::time::timeout(timeout, exchange) => outcome.unwrap_or_else(|_| Err(AttemptFailure {
                error: Error::new(Code::Timeout, format!("{}: timed out after {} ms", method.name(), timeout.as_millis())),
                stale_connection: false,
                http_status: None,
            })),
            _ = cancelled(cancels) => Err(AttemptFailure {
                error: Error::new(Code::Cancelled, method.cancelled_in_flight()),
                stale_connection: false,
                http_status: None,
            }),
        }
    }
}

/// One line for a failed exchange, in the blocking path's words: what closed, what was reset,
/// which certificate was refused. `answer_started`: the status line had arrived.
fn failure(error: &(dyn std::error::Error + 'static), answer_started: bool) -> String {
    use std::io::ErrorKind;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    // Bounded by the error's chain of causes (a handful of links).
    while let Some(cause) = source {
        if let Some(proxy) = cause.downcast_ref::<connector::ProxyFailure>() {
            return proxy.to_string();
        }
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return trust::tls_failure(tls);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return trust::tls_failure(tls);
            }
            // hyper-rustls wraps tokio-rustls' I/O error (which holds rustls') in another, and
            // an I/O error's `source` skips what it wraps.
            if let Some(inner) = io.get_ref().filter(|inner| inner.is::<std::io::Error>()) {
                source = Some(inner);
                continue;
            }
            return match io.kind() {
                ErrorKind::UnexpectedEof if answer_started => {
                    "the connection closed before the whole answer arrived".to_owned()
                }
                ErrorKind::UnexpectedEof => "the server closed the connection without answering".to_owned(),
                ErrorKind::ConnectionRefused => "could not connect".to_owned(),
                _ => format!("network error: {io}"),
            };
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() {
                return if answer_started {
                    "the connection closed before the whole answer arrived".to_owned()
                } else {
                    "the server closed the connection without answering".to_owned()
                };
            }
        }
        source = cause.source();
    }
    format!("network error: {error}")
}
