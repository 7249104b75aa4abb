//! Connection handling: the accept loop, HTTP/1.1 request reading (httparse heads,
//! Content-Length bodies, keep-alive), response writing and the scripted connection faults.
//!
//! A task per connection on the emulator's own tokio runtime ([`WORKER_THREADS`] threads),
//! with non-blocking sockets: thousands of open connections cost sockets and small tasks, not
//! threads. At most [`MAX_CONNECTIONS`] at once by default. Everything a connection can make
//! the server hold is bounded: head, body, idle time, pauses and write stalls.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::time;

use crate::api::Service;
use crate::exchange::{Outcome, Request, Response};
use crate::script::{Fault, OVERSIZE_PREFIX, OVERSIZE_SUFFIX};

/// Largest request head (request line + headers); beyond it the answer is 431.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest request body; beyond it the answer is 413 (the real API takes images ≤ 50 KB).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Most connections served at once by default ([`crate::Config::max_connections`]); further
/// ones are accepted and closed at once. Above the library's largest default cap of
/// connections (4,096, on the event loop), so that a client left at its defaults never meets
/// this limit; a test of more sets its own.
pub const MAX_CONNECTIONS: usize = 8192;
/// The most [`crate::Config::max_connections`] may raise it to. Each connection is a socket
/// and a small task (a few KiB), not a thread, so what bounds it in practice is the process's
/// limit of open files (`RLIMIT_NOFILE`); a million is far above what a benchmark opens.
pub const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;
/// Threads of the emulator's runtime, which run the accept loop and every connection. Two:
/// the service's work per request is short (a lock held briefly), so more threads would only
/// take CPU from the client measured beside it on a small machine.
pub const WORKER_THREADS: usize = 2;
/// How long accept waits after an error (typically EMFILE) instead of spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// A connection silent this long (between or inside requests) is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A client that doesn't read for this long loses its connection (bounds oversize bodies).
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most headers in one request; more is answered 431 like an oversized head.
pub(crate) const MAX_HEADERS: usize = 100;
/// Bytes read from the socket per call.
const READ_CHUNK: usize = 8 * 1024;
/// When closing, how long to keep draining what the client still sends, so the kernel
/// sends FIN rather than RST and the client reliably reads everything written before.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(1);
/// ... and at most this many bytes drained.
const LINGER_BYTES: usize = 1024 * 1024;
/// Bytes the garbage fault writes: what a client connecting to an SSH port would see.
const GARBAGE: &[u8] = b"SSH-2.0-garbage\r\n";
/// What the truncate fault sends of the 1000 bytes it announces.
const TRUNCATED_BODY: &[u8] = br#"{"errorId":0,"status":"ready","solution":{"text":"ans"#;
/// Padding written per call by the oversize fault; the body is never built in one buffer.
static PAD: [u8; 64 * 1024] = [b'x'; 64 * 1024];

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn head_bytes(
    status: u16,
    content_type: &str,
    length: u64,
    keep_alive: bool,
    allow: Option<&str>,
    extra_headers: &[(String, String)],
) -> Vec<u8> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: {connection}\r\n",
        reason(status)
    );
    if let Some(allow) = allow {
        head.push_str(&format!("Allow: {allow}\r\n"));
    }
    for (name, value) in extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Connections the kernel may hold complete but not yet accepted (capped by
/// `net.core.somaxconn`). std listens with 128: a client opening thousands of connections at
/// once (a benchmark's goroutine per wait) then sees SYNs dropped and retried a second later,
/// which would be measured as the client's lateness.
pub const LISTEN_BACKLOG: i32 = 4096;

/// Raises the listen queue of a listening socket to [`LISTEN_BACKLOG`]: on Linux and the
/// BSDs, listen(2) on a listening socket changes its backlog. Best effort: on failure the
/// socket keeps std's queue.
pub(crate) fn widen_backlog(listener: &StdTcpListener) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: listen(2) on a descriptor the listener owns for the duration of the call.
        unsafe {
            libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG);
        }
    }
    #[cfg(not(unix))]
    let _ = listener;
}

/// The listening side, shared by the accept loop and the connection tasks.
pub(crate) struct Server {
    pub service: Arc<Service>,
    /// Connections being served now (≤ `max_connections`).
    open: AtomicUsize,
    /// Most connections served at once, 1..=[`MAX_CONNECTIONS_LIMIT`].
    max_connections: usize,
}

/// One admitted connection's place among the open ones, given back when its task ends (or is
/// dropped with the runtime).
struct OpenConnection(Arc<Server>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    pub(crate) fn new(service: Arc<Service>, max_connections: usize) -> Server {
        Server { service, open: AtomicUsize::new(0), max_connections: max_connections.clamp(1, MAX_CONNECTIONS_LIMIT) }
    }

    /// Takes a place for a new connection; `None` when at the limit.
    fn admit(self: &Arc<Self>) -> Option<OpenConnection> {
        let before = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| (open < self.max_connections).then_some(open + 1))
            .ok()?;
        self.service.note_open_connections(before + 1);
        Some(OpenConnection(Arc::clone(self)))
    }
}

/// Builds the emulator's runtime and starts the accept loop on it. Dropping (or shutting
/// down) the runtime stops the server: the listener and every connection task are dropped,
/// which closes their sockets.
pub(crate) fn start(listener: StdTcpListener, server: Arc<Server>) -> io::Result<Runtime> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        // Nothing here calls spawn_blocking; the pool is kept to its minimum anyway.
        .max_blocking_threads(1)
        .thread_name("capmonster-emulator")
        .enable_io()
        .enable_time()
        .build()?;
    listen(
        &runtime,
        listener,
        server,
        |_| {},
        |server, stream| async move {
            serve_connection(&server, stream).await;
        },
    )?;
    Ok(runtime)
}

/// Starts accepting on `listener` in `runtime` (both listeners, plain and TLS; see
/// [`accept_loop`]).
pub(crate) fn listen<Fut>(
    runtime: &Runtime,
    listener: StdTcpListener,
    server: Arc<Server>,
    count: impl Fn(&Server) + Send + 'static,
    serve: impl Fn(Arc<Server>, TcpStream) -> Fut + Send + 'static,
) -> io::Result<()>
where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    listener.set_nonblocking(true)?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(listener)?
    };
    runtime.spawn(accept_loop(listener, server, count, serve));
    Ok(())
}

/// Accepts connections until the runtime stops: each is counted (`count` adds a listener's
/// own count), admitted under the shared connection limit (over it, accepted and closed at
/// once) and served by `serve` as a task of its own, which holds its place until it ends.
async fn accept_loop<Fut>(
    listener: TcpListener,
    server: Arc<Server>,
    count: impl Fn(&Server),
    serve: impl Fn(Arc<Server>, TcpStream) -> Fut,
) where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        server.service.count_connection();
        count(&server);
        let Some(place) = server.admit() else {
            drop(stream);
            continue;
        };
        let served = serve(Arc::clone(&server), stream);
        tokio::spawn(async move {
            served.await;
            drop(place);
        });
    }
}

/// Serves requests on one connection until either side closes it.
async fn serve_connection(server: &Server, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Bytes read but not yet used: the start of a pipelined next request. Bounded by the
    // head and body limits plus one read chunk.
    let mut pending = Vec::new();
    loop {
        let request = match read_request(&mut stream, &mut pending).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(reject) => {
                let body = format!("{}\n", reject.message);
                let mut out =
                    head_bytes(reject.status, "text/plain; charset=utf-8", body.len() as u64, false, None, &[]);
                out.extend_from_slice(body.as_bytes());
                let _ = write_all(&mut stream, &out).await;
                close_gracefully(&mut stream).await;
                return;
            }
        };
        let reply = server.service.handle(&request);
        if server.service.verbose() {
            let what = match &reply.outcome {
                Outcome::Respond(r) => r.status.to_string(),
                Outcome::Fault(f) => format!("fault {f:?}"),
            };
            // Method and path only: keys travel in the body and are never logged.
            eprintln!("capmonster-emulator: {} {} -> {what}", request.method, request.path);
        }
        if !reply.delay.is_zero() && !pause(&stream, reply.delay).await {
            return; // the client hung up while we waited
        }
        match reply.outcome {
            Outcome::Fault(fault) => {
                run_fault(&mut stream, fault).await;
                close_gracefully(&mut stream).await;
                return;
            }
            Outcome::Respond(mut response) => {
                response.stamp_now();
                let head_only = request.method == "HEAD";
                if write_response(&mut stream, &response, request.keep_alive, head_only).await.is_err() {
                    return;
                }
                if !request.keep_alive || reply.close_after {
                    close_gracefully(&mut stream).await;
                    return;
                }
            }
        }
    }
}

/// Why a request can't be served; answered with this status, then the connection closes
/// (the request boundary is lost, so the connection can't be reused).
#[derive(Debug)]
struct Reject {
    status: u16,
    message: String,
}

fn reject(status: u16, message: impl Into<String>) -> Reject {
    Reject { status, message: message.into() }
}

/// The parts of a parsed head the server needs, owned.
#[derive(Debug)]
struct Head {
    len: usize,
    method: String,
    path: String,
    content_length: usize,
    keep_alive: bool,
    expect_continue: bool,
}

/// Parses the head at the start of `buf`: `Ok(None)` if more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Reject> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD_BYTES => return Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => {
            return Err(reject(
                431,
                format!("request head larger than {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} headers"),
            ))
        }
        Err(e) => return Err(reject(400, format!("malformed request: {e}"))),
    };
    let method = parsed.method.unwrap_or("").to_owned();
    let http11 = parsed.version == Some(1);
    let mut content_length: Option<usize> = None;
    let mut close = false;
    let mut expect_continue = false;
    for header in parsed.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<usize>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| reject(400, "invalid Content-Length"))?;
            if content_length.is_some_and(|old| old != n) {
                return Err(reject(400, "conflicting Content-Length headers"));
            }
            content_length = Some(n);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(reject(411, "chunked request bodies are not supported: send Content-Length"));
        } else if header.name.eq_ignore_ascii_case("connection") {
            close |= value.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"));
        } else if header.name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY_BYTES {
        return Err(reject(413, format!("request body larger than {MAX_BODY_BYTES} bytes")));
    }
    // Accept absolute-form targets too ("http://host/createTask"), as sent through proxies.
    let target = parsed.path.unwrap_or("/");
    let target = match target.strip_prefix("http://").or_else(|| target.strip_prefix("https://")) {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let path = target.split('?').next().unwrap_or("/").to_owned();
    Ok(Some(Head { len, method, path, content_length, keep_alive: http11 && !close, expect_continue }))
}

/// Reads one request. `Ok(None)`: the connection ended (closed, reset, idle or slow).
async fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Result<Option<Request>, Reject> {
    let head = loop {
        if !pending.is_empty() {
            if let Some(head) = parse_head(pending)? {
                break head;
            }
        }
        if !read_more(stream, pending).await {
            return Ok(None);
        }
    };
    let total = head.len + head.content_length;
    // Clients that ask (curl does for large bodies) wait for this before sending the body.
    let wants_continue = head.expect_continue && pending.len() < total;
    if wants_continue && write_all(stream, b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err() {
        return Ok(None);
    }
    pending.reserve(total.saturating_sub(pending.len()));
    while pending.len() < total {
        if !read_more(stream, pending).await {
            return Ok(None);
        }
    }
    let body = pending[head.len..total].to_vec();
    pending.drain(..total);
    Ok(Some(Request { method: head.method, path: head.path, body, keep_alive: head.keep_alive }))
}

/// Appends what the socket has to `pending`; false on EOF, error, or [`IDLE_TIMEOUT`]
/// without a byte.
async fn read_more(stream: &TcpStream, pending: &mut Vec<u8>) -> bool {
    let deadline = time::Instant::now() + IDLE_TIMEOUT;
    loop {
        match time::timeout_at(deadline, stream.readable()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return false,
        }
        match read_ready(stream, |bytes| pending.extend_from_slice(bytes)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(_) => return false,
        }
    }
}

/// One non-blocking read, handed to `take`. The chunk lives on the stack of this plain
/// function, never across an await, so an idle connection's task holds no read buffer.
fn read_ready(stream: &TcpStream, take: impl FnOnce(&[u8])) -> io::Result<usize> {
    let mut chunk = [0u8; READ_CHUNK];
    let n = stream.try_read(&mut chunk)?;
    take(&chunk[..n]);
    Ok(n)
}

/// Writes all of `bytes`; a client that takes none of them for [`WRITE_TIMEOUT`] loses the
/// connection (bounds oversize bodies and stalled readers).
async fn write_all(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    match time::timeout(WRITE_TIMEOUT, stream.write_all(bytes)).await {
        Ok(written) => written,
        Err(_) => Err(ErrorKind::TimedOut.into()),
    }
}

async fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let length = response.body.len() as u64;
    let mut out = head_bytes(
        response.status,
        &response.content_type,
        length,
        keep_alive,
        response.allow,
        &response.extra_headers,
    );
    if !head_only {
        out.extend_from_slice(&response.body);
    }
    write_all(stream, &out).await
}

/// Waits `total` without reading, ending early (false) if the client hangs up, so stalled
/// tests don't leave tasks and sockets behind. If the client already sent more bytes (a
/// pipelined request) a hang-up can't be seen without consuming them, so it just sleeps.
/// tokio's timer has 1 ms steps: a 10 ms delay takes 10 to 11 ms.
async fn pause(stream: &TcpStream, total: Duration) -> bool {
    let sleep = time::sleep(total);
    tokio::pin!(sleep);
    let mut probe = [0u8; 1];
    tokio::select! {
        () = &mut sleep => true,
        peeked = stream.peek(&mut probe) => match peeked {
            Ok(0) | Err(_) => false,
            Ok(_) => {
                sleep.await;
                true
            }
        },
    }
}

async fn run_fault(stream: &mut TcpStream, fault: Fault) {
    const JSON: &str = "application/json; charset=utf-8";
    // Write errors mean the client left; nothing more to do either way.
    let _ = match fault {
        Fault::Close => Ok(()),
        Fault::Stall(duration) => {
            pause(stream, duration).await;
            Ok(())
        }
        Fault::Truncate => {
            let mut out = head_bytes(200, JSON, 1000, true, None, &[]);
            out.extend_from_slice(TRUNCATED_BODY);
            write_all(stream, &out).await
        }
        Fault::Oversize(bytes) => write_oversize(stream, bytes).await,
        Fault::Garbage => write_all(stream, GARBAGE).await,
    };
}

/// `{"errorId":0,"status":"processing","pad":"xxx…"}` of exactly `bytes` bytes (the step
/// guarantees at least the frame's length), written piece by piece.
async fn write_oversize(stream: &mut TcpStream, bytes: u64) -> io::Result<()> {
    write_all(stream, &head_bytes(200, "application/json; charset=utf-8", bytes, false, None, &[])).await?;
    write_all(stream, OVERSIZE_PREFIX.as_bytes()).await?;
    let frame = (OVERSIZE_PREFIX.len() + OVERSIZE_SUFFIX.len()) as u64;
    let mut left = bytes.saturating_sub(frame);
    while left > 0 {
        let n = left.min(PAD.len() as u64) as usize;
        write_all(stream, &PAD[..n]).await?;
        left -= n as u64;
    }
    write_all(stream, OVERSIZE_SUFFIX.as_bytes()).await
}

/// Sends FIN, then drains what the client still sends for a moment (bounded by
/// [`LINGER_TIME`] and [`LINGER_BYTES`]): closing with unread input would send RST, which
/// can destroy the answer before the client reads it.
async fn close_gracefully(stream: &mut TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let _ = time::timeout(LINGER_TIME, drain(stream)).await;
}

/// Reads and drops the client's bytes until EOF, an error or [`LINGER_BYTES`].
async fn drain(stream: &TcpStream) {
    let mut drained = 0;
    while drained < LINGER_BYTES {
        if stream.readable().await.is_err() {
            return;
        }
        match read_ready(stream, |_| {}) {
            Ok(0) => return,
            Ok(n) => drained += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(_) => return,
        }
    }
}

/// The address a local client connects to for a listener bound to `bound` (a wildcard
/// address becomes the loopback one).
pub(crate) fn connect_address(bound: SocketAddr) -> SocketAddr {
    let mut addr = bound;
    if addr.ip().is_unspecified() {
        addr.set_ip(match bound {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads() {
        let head = parse_head(b"POST /getBalance?x=1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}").unwrap().unwrap();
        assert_eq!((head.method.as_str(), head.path.as_str(), head.content_length), ("POST", "/getBalance", 2));
        assert!(head.keep_alive);
        let head = parse_head(b"POST http://h:1/createTask HTTP/1.1\r\nConnection: Close\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.path, "/createTask");
        assert!(!head.keep_alive);
        assert!(!parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap().keep_alive);
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
    }

    #[test]
    fn rejects_bad_heads() {
        let status = |raw: &[u8]| parse_head(raw).unwrap_err().status;
        assert_eq!(status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"), 413);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
        assert_eq!(status(b"SSH-2.0-x\r\n\r\n"), 400);
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_HEAD_BYTES + 1, b'a');
        assert_eq!(status(&huge), 431);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X{i}: 1\r\n")).collect();
        assert_eq!(status(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), 431);
    }
}
