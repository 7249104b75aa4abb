//! Plain TCP connections for the pool, with fewer system calls than ureq's own.
//!
//! ureq's TCP transport sets SO_SNDTIMEO / SO_RCVTIMEO before every write and read (a global
//! timeout leaves a different remaining time each time) and probes a pooled connection with
//! three calls (blocking off, a 1-byte read, blocking on), twice per request: about 10 system
//! calls per call against libcurl's 5 (bench/). This transport keeps the socket non-blocking and
//! waits with poll(2) only when an operation would block, as curl does, and probes with a
//! single `recv(MSG_PEEK | MSG_DONTWAIT)`: 5 calls per request (probe, send, poll, recv, probe).
//! Proxies keep ureq's own connectors; TLS wraps this transport as it wraps ureq's.
//!
//! Each socket is registered for shutdown (ureq's `register_shutdown`, which `inflight` also
//! hears) before it connects, so a cancel shuts it down and the poll below returns at once.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle, Transport,
};
use ureq::Timeout;

/// Opens plain TCP connections unless an earlier link (a SOCKS proxy) already made one.
#[derive(Debug, Default)]
pub(crate) struct LeanTcpConnector;

impl<In: Transport> Connector<In> for LeanTcpConnector {
    type Out = Either<In, LeanTcp>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(chained) = chained {
            return Ok(Some(Either::A(chained)));
        }
        let stream = connect_any(details)?;
        stream.set_nodelay(details.config.no_delay())?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(LeanTcp { stream, buffers })))
    }
}

/// Why one address did not connect.
enum Failed {
    /// This address: the next one may do.
    Address(ureq::Error),
    /// The attempt: its socket could not be registered (it was cancelled).
    Attempt(ureq::Error),
}

/// Tries the resolved addresses in order within the connect timeout; each but the last gets
/// half of the time left, so one unreachable address cannot use it all.
fn connect_any(details: &ConnectionDetails) -> Result<Arc<TcpStream>, ureq::Error> {
    let (addrs, timeout) = (&details.addrs[..], details.timeout);
    let deadline = deadline(timeout)?;
    let mut last_error = None;
    for (index, addr) in addrs.iter().enumerate() {
        let last = index + 1 == addrs.len();
        let attempt_deadline = match deadline {
            None => None,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ureq::Error::Timeout(timeout.reason));
                }
                Some(Instant::now() + if last { left } else { (left / 2).max(Duration::from_millis(10)) })
            }
        };
        match connect_one(details, addr, attempt_deadline, timeout.reason) {
            Ok(stream) => return Ok(stream),
            Err(Failed::Attempt(error)) => return Err(error),
            Err(Failed::Address(error @ ureq::Error::Timeout(_))) if last => return Err(error),
            Err(Failed::Address(error)) => last_error = Some(error),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::ConnectionRefused, "no address to connect to").into()))
}

/// Connects without blocking, the socket registered for shutdown first (ureq's own
/// `Agent::shutdown`, and the attempt's cancels): a shutdown ends a pending connect at once.
fn connect_one(
    details: &ConnectionDetails,
    addr: &SocketAddr,
    deadline: Option<Instant>,
    reason: Timeout,
) -> Result<Arc<TcpStream>, Failed> {
    let address = |error: io::Error| Failed::Address(error.into());
    let socket = Socket::new(Domain::for_address(*addr), Type::STREAM, Some(Protocol::TCP)).map_err(address)?;
    socket.set_nonblocking(true).map_err(address)?;
    let stream = Arc::new(TcpStream::from(socket));
    (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>).map_err(Failed::Attempt)?;
    match SockRef::from(&*stream).connect(&(*addr).into()) {
        Ok(()) => return Ok(stream),
        Err(error) if connect_in_progress(&error) => {}
        Err(error) => return Err(address(error)),
    }
    wait_until_ready(&stream, libc::POLLOUT, deadline, reason).map_err(Failed::Address)?;
    match stream.take_error().map_err(address)? {
        Some(error) => Err(address(error)),
        None => Ok(stream),
    }
}

fn connect_in_progress(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::WouldBlock || error.raw_os_error() == Some(libc::EINPROGRESS)
}

/// Waits until `stream` is ready for `events` (POLLIN / POLLOUT) or the deadline passes.
fn wait_until_ready(
    stream: &TcpStream,
    events: libc::c_short,
    deadline: Option<Instant>,
    reason: Timeout,
) -> Result<(), ureq::Error> {
    let mut poll_fd = libc::pollfd { fd: stream.as_raw_fd(), events, revents: 0 };
    // Bounded by the deadline: each turn returns or waits for what is left of it.
    loop {
        let wait_ms = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ureq::Error::Timeout(reason));
                }
                // Rounded up, so a wait never ends just before its deadline.
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        // SAFETY: one valid pollfd for the duration of the call.
        match unsafe { libc::poll(&mut poll_fd, 1, wait_ms) } {
            // Ready, or in error or hung up: the operation that follows tells which.
            ready if ready > 0 => return Ok(()),
            0 => continue, // the loop checks the deadline
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error.into());
                }
            }
        }
    }
}

/// When an operation must be done by, or None for no limit; an exhausted timeout is an error.
fn deadline(timeout: NextTimeout) -> Result<Option<Instant>, ureq::Error> {
    if timeout.after.is_not_happening() {
        return Ok(None);
    }
    if timeout.after.is_zero() {
        return Err(ureq::Error::Timeout(timeout.reason));
    }
    Ok(Some(Instant::now() + *timeout.after))
}

/// A non-blocking TCP connection.
pub(crate) struct LeanTcp {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
}

impl fmt::Debug for LeanTcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeanTcp").field("peer", &self.stream.peer_addr().ok()).finish()
    }
}

impl LeanTcp {
    fn wait(&self, events: libc::c_short, deadline: Option<Instant>, reason: Timeout) -> Result<(), ureq::Error> {
        wait_until_ready(&self.stream, events, deadline, reason)
    }
}

impl Transport for LeanTcp {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let deadline = deadline(timeout)?;
        let mut sent = 0;
        while sent < amount {
            let written = (&*self.stream).write(&self.buffers.output()[sent..amount]);
            match written {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => sent += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(libc::POLLOUT, deadline, timeout.reason)?
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let deadline = deadline(timeout)?;
        loop {
            // Wait first: ureq asks for input after sending, when the answer is not there yet.
            self.wait(libc::POLLIN, deadline, timeout.reason)?;
            let read = (&*self.stream).read(self.buffers.input_append_buf());
            match read {
                Ok(amount) => {
                    self.buffers.input_appended(amount);
                    return Ok(amount > 0);
                }
                Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Open means: no end of stream, no error and no unasked-for bytes waiting.
    fn is_open(&mut self) -> bool {
        let mut byte = 0u8;
        // SAFETY: a valid one-byte buffer; MSG_DONTWAIT never blocks.
        let peeked = unsafe {
            libc::recv(self.stream.as_raw_fd(), (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT)
        };
        peeked < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }
}
