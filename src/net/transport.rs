//! One HTTP exchange with the service over a client's connection pool (ureq), and what a
//! failed exchange means: the code, the message, and whether it may be resent.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::TlsConfig;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, NextTimeout, RustlsConnector, SocksConnector,
    Transport,
};
use ureq::{Agent, Proxy};

use crate::api::error::{Code, Error};
use crate::net::endpoint::{BaseUrl, ProxyUrl};
use crate::net::gate::Gate;
use crate::net::inflight::Interruptible;
use crate::net::resolve::CachingResolver;
use crate::net::tcp::LeanTcpConnector;
use crate::net::trust::{self, Trust};
pub(crate) use crate::net::wire::Wire;

/// The largest answer body read; a bigger one is `CM_ERR_BAD_RESPONSE` and is not read further.
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;
/// The largest response head accepted.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What every request says it is (`User-Agent`), on the blocking path and the event loop.
pub const USER_AGENT: &str = concat!("libcapmonster/", env!("CARGO_PKG_VERSION"));

/// The API methods this library calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    GetTaskResult,
    CreateTask,
    GetBalance,
    ReportIncorrectImage,
    ReportIncorrectToken,
    /// A GET of the getUserAgent page (its own URL, no key, plain text).
    GetUserAgent,
}

impl Method {
    pub(crate) const ALL: [Method; 6] = [
        Method::GetTaskResult,
        Method::CreateTask,
        Method::GetBalance,
        Method::ReportIncorrectImage,
        Method::ReportIncorrectToken,
        Method::GetUserAgent,
    ];

    /// The method's place in [`Method::ALL`] (and in per-method tables).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Where the method is sent: the API's URL of its name, or the getUserAgent page's own.
    pub fn url(self, base_url: &BaseUrl, user_agent_url: &BaseUrl) -> String {
        match self {
            Method::GetUserAgent => user_agent_url.as_str().to_owned(),
            _ => base_url.method_url(self.name()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::GetTaskResult => "getTaskResult",
            Method::CreateTask => "createTask",
            Method::GetBalance => "getBalance",
            Method::ReportIncorrectImage => "reportIncorrectImageCaptcha",
            Method::ReportIncorrectToken => "reportIncorrectTokenCaptcha",
            Method::GetUserAgent => "getUserAgent",
        }
    }

    /// The message of a call cancelled while its request was in flight.
    pub fn cancelled_in_flight(self) -> String {
        let consequence = match self {
            Method::CreateTask => "; the task may have been created and charged",
            _ => "",
        };
        format!(
            "{} was cancelled while its request was in flight (the connection was dropped){consequence}",
            self.name()
        )
    }

    /// Whether a request that died on a reused connection may be sent again. Never createTask
    /// (a duplicate would be a second paid task) nor a report (the service may have counted it).
    pub fn retry_on_stale_connection(self) -> bool {
        matches!(self, Method::GetTaskResult | Method::GetBalance | Method::GetUserAgent)
    }
}

// Per-method tables are indexed by `Method::index`: ALL must list the methods in declaration order.
const _: () = {
    let mut index = 0;
    while index < Method::ALL.len() {
        assert!(Method::ALL[index] as usize == index, "Method::ALL is out of declaration order");
        index += 1;
    }
};

/// What requests are sent with: rebuilt when a setting changes, shared by in-flight calls.
pub(crate) struct Channel {
    agent: Agent,
    /// The method URLs, built once.
    urls: [String; Method::ALL.len()],
    pub request_timeout: Duration,
    /// The proxy in use, for scrubbing its credentials from messages.
    pub proxy: Option<ProxyUrl>,
}

impl Channel {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        base_url: &BaseUrl,
        user_agent_url: &BaseUrl,
        request_timeout: Duration,
        proxy: Option<ProxyUrl>,
        trust: &Trust,
        wire: &Arc<Wire>,
        gate: &Arc<Gate>,
        max_connections: u32,
    ) -> Result<Channel, Error> {
        let ureq_proxy = proxy
            .as_ref()
            .map(|url| Proxy::new(url.as_str()))
            .transpose()
            .map_err(|_| Error::invalid_argument("the proxy URL is not one this library can use"))?;
        let config = Agent::config_builder()
            .http_status_as_error(false)
            // A redirect would re-post the key elsewhere: a 3xx is returned as an answer.
            .max_redirects(0)
            // The pool may keep every connection the cap allows (ureq's default of 3 would
            // make a busy program's threads reopen connections), and no more.
            .max_idle_connections(max_connections as usize)
            .max_idle_connections_per_host(max_connections as usize)
            .max_response_header_size(MAX_HEADER_BYTES)
            .user_agent(USER_AGENT)
            .timeout_global(Some(request_timeout))
            .proxy(ureq_proxy)
            .tls_config(TlsConfig::builder().root_certs(trust.roots()).build())
            .build();
        let observer = ConnectionObserver { wire: Arc::clone(wire) };
        // ureq's default chain, with the lean TCP transport in place of ureq's own.
        // Interruptible: every connection is claimed by the attempt using it, for its cancels.
        let connector = Interruptible(
            ().chain(Opening)
                .chain(SocksConnector::default())
                .chain(ConnectProxyConnector::default())
                .chain(LeanTcpConnector { wire: Arc::clone(wire), gate: Arc::clone(gate) })
                .chain(RustlsConnector::default())
                .chain(observer),
        );
        let agent = Agent::with_parts(config, connector, CachingResolver::default());
        Ok(Channel {
            agent,
            urls: Method::ALL.map(|method| method.url(base_url, user_agent_url)),
            request_timeout,
            proxy,
        })
    }

    /// Sends `body` to `method` once and reads the answer: (HTTP status, body bytes). The
    /// getUserAgent page is a GET, without a body.
    pub fn attempt(&self, method: Method, body: &str, timeout: Duration) -> Result<(u16, Vec<u8>), AttemptFailure> {
        let url = &self.urls[method.index()];
        OPENED_CONNECTION.with(|opened| opened.set(false));
        // The agent's own timeout is the request timeout; a per-request configuration (a copy of
        // the agent's) is made only when a wait's deadline is nearer.
        let nearer = (timeout < self.request_timeout).then_some(timeout);
        let sent = if method == Method::GetUserAgent {
            let request = self.agent.get(url);
            let request = match nearer {
                Some(timeout) => request.config().timeout_global(Some(timeout)).build(),
                None => request,
            };
            request.header("Accept", "text/plain").call()
        } else {
            let request = self.agent.post(url);
            let request = match nearer {
                Some(timeout) => request.config().timeout_global(Some(timeout)).build(),
                None => request,
            };
            request.content_type("application/json").send(body)
        };
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => {
                let reused = !OPENED_CONNECTION.with(Cell::get);
                return Err(AttemptFailure {
                    stale_connection: reused && is_disconnect(&error),
                    error: transport_error(method, error, timeout, false),
                    http_status: None,
                });
            }
        };
        let status = response.status().as_u16();
        match response.body_mut().with_config().limit(MAX_BODY_BYTES).read_to_vec() {
            Ok(answer) => Ok((status, answer)),
            Err(error) => Err(AttemptFailure {
                error: transport_error(method, error, timeout, true),
                stale_connection: false,
                http_status: Some(status),
            }),
        }
    }
}

/// Whether the last request of this thread (its last [`Channel::attempt`]) opened a new
/// connection rather than reusing a pooled one.
pub fn last_attempt_opened_connection() -> bool {
    OPENED_CONNECTION.with(Cell::get)
}

thread_local! {
    /// Set when the current thread's request had to open a new connection: ureq does not say
    /// whether a request went out on a pooled connection, but it opens new ones on the
    /// calling thread, through the connector chain.
    static OPENED_CONNECTION: Cell<bool> = const { Cell::new(false) };
}

/// The first link of the connector chain: the attempt is opening a connection (ureq runs the
/// chain only when its pool has none to give), so its log line says "new" even when the
/// connect fails.
#[derive(Debug)]
struct Opening;

impl Connector<()> for Opening {
    type Out = ();

    fn connect(&self, _details: &ConnectionDetails, _chained: Option<()>) -> Result<Option<()>, ureq::Error> {
        OPENED_CONNECTION.with(|opened| opened.set(true));
        Ok(None)
    }
}

/// The last link of the connector chain: counts new connections, marks them fresh, and
/// wraps them in [`CoalescedWrites`], which counts their close.
#[derive(Debug)]
struct ConnectionObserver {
    wire: Arc<Wire>,
}

impl<In: Transport> Connector<In> for ConnectionObserver {
    type Out = Box<dyn Transport>;

    fn connect(&self, _details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        if chained.is_some() {
            self.wire.count_opened();
            OPENED_CONNECTION.with(|opened| opened.set(true));
        }
        Ok(chained.map(|inner| {
            let wire = Arc::clone(&self.wire);
            // A socket of `tcp.rs` counts its own close; a proxy's (SOCKS) is counted here.
            let wire = (!crate::net::tcp::counts_own_close()).then_some(wire);
            Box::new(CoalescedWrites { inner: Box::new(inner), pending: Vec::new(), wire }) as Box<dyn Transport>
        }))
    }
}

/// The most request bytes held back before they are sent anyway.
const COALESCE_LIMIT: usize = 64 * 1024;

/// Holds back what ureq writes (the request head, then the body) until it waits for the
/// answer, so a request leaves in one write and one TCP segment instead of two. The benchmark
/// showed the split costing as much time per call as everything else together (bench/).
/// Every connection of the pool is one of these, so it is also where the close of a
/// connection on a proxy's socket is counted ([`Wire`]); the sockets of `tcp.rs` count their
/// own close (which may come before ureq's pool drops them: the gate may close an idle one),
/// and the bytes.
#[derive(Debug)]
struct CoalescedWrites {
    inner: Box<dyn Transport>,
    /// Bytes written by ureq and not sent yet (at most COALESCE_LIMIT).
    pending: Vec<u8>,
    /// Where the close is counted, when the socket does not count it.
    wire: Option<Arc<Wire>>,
}

impl Drop for CoalescedWrites {
    /// The pool drops a connection when it closes it: the server closed it, it idled out, the
    /// pool was full, or the pool itself went with a setting's change.
    fn drop(&mut self) {
        if let Some(wire) = &self.wire {
            wire.count_closed();
        }
    }
}

impl CoalescedWrites {
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let mut sent = 0;
        while sent < self.pending.len() {
            let output = self.inner.buffers().output();
            let amount = output.len().min(self.pending.len() - sent);
            output[..amount].copy_from_slice(&self.pending[sent..sent + amount]);
            self.inner.transmit_output(amount, timeout)?;
            sent += amount;
        }
        self.pending.clear();
        Ok(())
    }
}

impl Transport for CoalescedWrites {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if self.pending.is_empty() && amount >= COALESCE_LIMIT {
            return self.inner.transmit_output(amount, timeout);
        }
        self.pending.extend_from_slice(&self.inner.buffers().output()[..amount]);
        if self.pending.len() >= COALESCE_LIMIT {
            self.flush(timeout)?;
        }
        Ok(())
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.flush(timeout)?;
        self.inner.maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.flush(timeout)?;
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

pub(crate) struct AttemptFailure {
    pub error: Error,
    /// The request died on a reused connection before any byte of an answer: safe to resend.
    pub stale_connection: bool,
    pub http_status: Option<u16>,
}

/// The peer closed or reset the connection.
fn is_disconnect(error: &ureq::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(error, ureq::Error::Io(io) if matches!(io.kind(), UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe))
}

/// Maps a transport failure to a code and one line naming what happened. `answer_started`:
/// the status line had arrived.
fn transport_error(method: Method, error: ureq::Error, timeout: Duration, answer_started: bool) -> Error {
    use std::io::ErrorKind;
    let name = method.name();
    let (code, what) = match &error {
        ureq::Error::Timeout(kind) => (Code::Timeout, format!("timed out after {} ms ({kind})", timeout.as_millis())),
        ureq::Error::Io(io) if matches!(io.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            (Code::Timeout, format!("timed out after {} ms ({io})", timeout.as_millis()))
        }
        ureq::Error::Io(io) if io.kind() == ErrorKind::UnexpectedEof && answer_started => {
            (Code::Network, "the connection closed before the whole answer arrived".to_owned())
        }
        ureq::Error::Io(io) if io.kind() == ErrorKind::UnexpectedEof => {
            (Code::Network, "the server closed the connection without answering".to_owned())
        }
        ureq::Error::Io(io) => match io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(tls) => (Code::Network, trust::tls_failure(tls)),
            None => (Code::Network, format!("network error: {io}")),
        },
        ureq::Error::HostNotFound => (Code::Network, "host not found".to_owned()),
        ureq::Error::ConnectionFailed => (Code::Network, "could not connect".to_owned()),
        ureq::Error::ConnectProxyFailed(why) => (Code::Network, format!("the proxy refused: {why}")),
        ureq::Error::Tls(why) => (Code::Network, format!("TLS failed: {why}")),
        ureq::Error::Rustls(why) => (Code::Network, trust::tls_failure(why)),
        ureq::Error::BodyExceedsLimit(limit) => {
            (Code::BadResponse, format!("the answer is larger than the {limit}-byte limit"))
        }
        ureq::Error::LargeResponseHeader(_, limit) => {
            (Code::BadResponse, format!("the answer's headers are larger than the {limit}-byte limit"))
        }
        ureq::Error::Protocol(why) => (Code::BadResponse, format!("the answer is not valid HTTP: {why}")),
        other => (Code::Network, other.to_string()),
    };
    Error::new(code, format!("{name}: {what}"))
}
