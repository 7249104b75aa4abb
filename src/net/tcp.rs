//! Plain TCP connections for the pool, with fewer system calls than ureq's own.
//!
//! ureq's TCP transport sets SO_SNDTIMEO / SO_RCVTIMEO before every write and read (a global
//! timeout leaves a different remaining time each time) and probes a pooled connection with
//! three calls (blocking off, a 1-byte read, blocking on), twice per request: about 10 system
//! calls per call against libcurl's 5 (bench/). This transport keeps the socket non-blocking and
//! waits with poll(2) only when an operation would block, as curl does, and probes with a
//! single `recv(MSG_PEEK)` on the non-blocking socket. ureq probes twice per request: when the
//! connection goes back to the pool and when it is taken again. The first comes right after the
//! answer was read and is answered without a call; the second sees anything that came since
//! (an end of stream, bytes nobody asked for). So 4 calls per request (probe, send, poll, recv).
//! Proxies keep ureq's own connectors; TLS wraps this transport as it wraps ureq's.
//!
//! Each socket is registered for shutdown (ureq's `register_shutdown`, which `inflight` also
//! hears) before it connects, so a cancel shuts it down and the poll below returns at once.
//!
//! Each socket holds a connection slot of the client's gate (`gate.rs`) from before it connects
//! until it closes, and may be shed: the gate closes an idle one (in ureq's pool, carrying no
//! request) when the event loop must open a connection at the cap. Its state says which it
//! is: busy from its connect and from the probe that takes it out of the pool, idle from the
//! probe that puts it back, shed once the gate closed it; a shed socket answers the next
//! probe "closed", without a system call, and ureq drops it.
//!
//! Windows: the wait is `select` (see [`poll_one`] for why not `WSAPoll`), in slices of
//! [`WINDOWS_SLICE_MS`] that check the socket's shut-down flag, since Windows does not promise
//! that a `shutdown` from another thread wakes a wait on the socket.

use std::fmt;
use std::io::{self, Read, Write};
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Type};

use crate::net::gate::{ConnSlot, Gate, Refused, Shed, SlotWait};
use crate::net::wire::Wire;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle, Transport,
};
use ureq::Timeout;

/// Opens plain TCP connections unless an earlier link (a SOCKS proxy) already made one; its
/// sockets count the bytes they carry in the client's [`Wire`] and hold a slot of its gate.
#[derive(Debug)]
pub(crate) struct LeanTcpConnector {
    pub wire: Arc<Wire>,
    pub gate: Arc<Gate>,
}

impl<In: Transport> Connector<In> for LeanTcpConnector {
    type Out = Either<Slotted<In>, LeanTcp>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        OWN_SOCKET.with(|own| own.set(false));
        if let Some(chained) = chained {
            // ureq's SOCKS connector made it (before this link could wait for room): it holds a
            // slot all the same, so that the cap counts it.
            let slot = open_slot(&self.gate, details)?;
            return Ok(Some(Either::A(Slotted::new(chained, slot))));
        }
        let slot = open_slot(&self.gate, details)?;
        let stream = connect_any(details)?;
        let _ = stream.slot.set(slot);
        let _ = stream.wire.set(Arc::clone(&self.wire));
        OWN_SOCKET.with(|own| own.set(true));
        if let Some(slot) = stream.slot.get() {
            slot.register(Arc::downgrade(&stream) as Weak<dyn Shed>);
        }
        stream.stream.set_nodelay(details.config.no_delay())?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        let wire = Arc::clone(&self.wire);
        Ok(Some(Either::B(LeanTcp { stream, buffers, read_since_probe: false, wire })))
    }
}

/// A connection an earlier link of the chain made (a SOCKS proxy's), with its slot of the gate.
/// Like the library's own sockets it is idle while it lies in ureq's pool (ureq's probes say
/// when it goes back and when it is taken out), and the gate may shed it then: its slot is
/// given back at once and ureq's next probe finds it closed, so ureq drops (closes) it. Its
/// socket is not the library's to close from another thread, so until that probe it stays open,
/// unused: the only way the client's sockets exceed the cap, by such connections, for a while.
pub(crate) struct Slotted<In> {
    inner: In,
    mark: Arc<SlottedMark>,
}

/// What the gate knows of a [`Slotted`] connection.
struct SlottedMark {
    /// `BUSY`, `IDLE` or `SHED`, as a [`Socket`]'s.
    state: AtomicU8,
    slot: ConnSlot,
}

impl<In: Transport> Slotted<In> {
    fn new(inner: In, slot: ConnSlot) -> Slotted<In> {
        let mark = Arc::new(SlottedMark { state: AtomicU8::new(BUSY), slot });
        mark.slot.register(Arc::downgrade(&mark) as Weak<dyn Shed>);
        Slotted { inner, mark }
    }
}

impl Shed for SlottedMark {
    fn shed(&self) -> bool {
        if self.state.compare_exchange(IDLE, SHED, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        self.slot.release();
        true
    }
}

impl<In: fmt::Debug> fmt::Debug for Slotted<In> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slotted").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<In: Transport> Transport for Slotted<In> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.inner.transmit_output(amount, timeout)
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.inner.maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.inner.await_input(timeout)
    }

    /// As [`LeanTcp`]'s: ureq asks when the connection goes back to its pool (idle from then)
    /// and when it takes it out (busy from then, unless the gate shed it meanwhile).
    fn is_open(&mut self) -> bool {
        let state = &self.mark.state;
        let returning = match state.load(Ordering::Acquire) {
            BUSY => true,
            IDLE => match state.compare_exchange(IDLE, BUSY, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => false,
                Err(_) => return false,
            },
            _ => return false,
        };
        let open = self.inner.is_open();
        if open && returning {
            state.store(IDLE, Ordering::Release);
            self.mark.slot.idle_now();
        }
        open
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

thread_local! {
    /// Whether the connection this thread's connector chain is making now is on a socket of
    /// this transport, which counts its own close in the [`Wire`] (when the gate closes it,
    /// not when ureq's pool drops it later). Set by every run of the chain, so never stale.
    static OWN_SOCKET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the connection the chain just made is on a socket that counts its own close.
pub(crate) fn counts_own_close() -> bool {
    OWN_SOCKET.with(std::cell::Cell::get)
}

/// A connection slot of the client's gate, waiting for one (within the connect's timeout, and
/// until the attempt is cancelled) when the cap's connections are all open.
fn open_slot(gate: &Arc<Gate>, details: &ConnectionDetails) -> Result<ConnSlot, ureq::Error> {
    let timeout = details.timeout;
    let deadline = deadline(timeout)?;
    if let Some(slot) = gate.try_open_blocking() {
        return Ok(slot);
    }
    // Registered as a shutdown handle, so that the attempt's cancels reach the wait.
    let wait = Arc::new(SlotWait::new(gate));
    (details.register_shutdown)(Arc::downgrade(&wait) as Weak<dyn ShutdownHandle>)?;
    gate.open_blocking(deadline, &wait).map_err(|refused| match refused {
        Refused::Deadline => ureq::Error::Timeout(timeout.reason),
        Refused::Cancelled => crate::net::inflight::cancelled_error(),
    })
}

impl ShutdownHandle for SlotWait {
    fn shutdown(&self) {
        self.stop();
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
fn connect_any(details: &ConnectionDetails) -> Result<Arc<Socket>, ureq::Error> {
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
) -> Result<Arc<Socket>, Failed> {
    let address = |error: io::Error| Failed::Address(error.into());
    let socket =
        socket2::Socket::new(Domain::for_address(*addr), Type::STREAM, Some(Protocol::TCP)).map_err(address)?;
    socket.set_nonblocking(true).map_err(address)?;
    let stream = Arc::new(Socket {
        stream: ManuallyDrop::new(TcpStream::from(socket)),
        shut: AtomicBool::new(false),
        state: AtomicU8::new(BUSY),
        closed: Mutex::new(false),
        slot: std::sync::OnceLock::new(),
        wire: std::sync::OnceLock::new(),
    });
    (details.register_shutdown)(Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>).map_err(Failed::Attempt)?;
    match SockRef::from(&*stream.stream).connect(&(*addr).into()) {
        Ok(()) => return Ok(stream),
        Err(error) if connect_in_progress(&error) => {}
        Err(error) => return Err(address(error)),
    }
    wait_until_ready(&stream, Ready::Connected, deadline, reason).map_err(Failed::Address)?;
    match stream.stream.take_error().map_err(address)? {
        Some(error) => Err(address(error)),
        None => Ok(stream),
    }
}

/// Unix says EINPROGRESS; Windows says WSAEWOULDBLOCK, which std reads as `WouldBlock`.
fn connect_in_progress(error: &io::Error) -> bool {
    #[cfg(unix)]
    if error.raw_os_error() == Some(libc::EINPROGRESS) {
        return true;
    }
    error.kind() == io::ErrorKind::WouldBlock
}

/// A socket and whether it was shut down (the handle registered with ureq and `inflight`).
pub(crate) struct Socket {
    /// Closed early when the gate sheds the socket (`closed` then says so), else on drop.
    stream: ManuallyDrop<TcpStream>,
    /// Set by `shutdown`: the Windows wait checks it between slices.
    shut: AtomicBool,
    /// [`BUSY`], [`IDLE`] or [`SHED`] (see the module docs).
    state: AtomicU8,
    /// Whether the gate closed the socket: a shutdown must not touch its descriptor then
    /// (the number may belong to another file by now).
    closed: Mutex<bool>,
    /// Its place under the client's cap, set once it connected.
    slot: std::sync::OnceLock<ConnSlot>,
    /// Where its close is counted, set once it connected.
    wire: std::sync::OnceLock<Arc<Wire>>,
}

/// Carrying a request (or connecting): only its attempt's thread touches the socket.
const BUSY: u8 = 0;
/// In ureq's pool: the gate may shed it.
const IDLE: u8 = 1;
/// Closed by the gate; its descriptor is gone.
const SHED: u8 = 2;

impl ShutdownHandle for Socket {
    fn shutdown(&self) {
        self.shut.store(true, Ordering::Release);
        let closed = self.closed.lock().unwrap_or_else(PoisonError::into_inner);
        if !*closed {
            // An error means the socket is already closed or shut down (as in ureq's own handle).
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Shed for Socket {
    fn shed(&self) -> bool {
        if self.state.compare_exchange(IDLE, SHED, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        // Idle in the pool: no thread uses the descriptor, and the next probe will not.
        let mut closed = self.closed.lock().unwrap_or_else(PoisonError::into_inner);
        *closed = true;
        close_now(&self.stream);
        drop(closed);
        if let Some(wire) = self.wire.get() {
            wire.count_closed();
        }
        if let Some(slot) = self.slot.get() {
            slot.release();
        }
        true
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if !*self.closed.get_mut().unwrap_or_else(PoisonError::into_inner) {
            // SAFETY: dropped once, here; never closed before (`closed` says so).
            unsafe { ManuallyDrop::drop(&mut self.stream) };
            if let Some(wire) = self.wire.get() {
                wire.count_closed();
            }
        }
    }
}

/// Closes a socket's descriptor now; the `TcpStream` must not be dropped after.
#[cfg(unix)]
fn close_now(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is this socket's own, closed once (the caller marks it closed).
    unsafe { libc::close(stream.as_raw_fd()) };
}

#[cfg(windows)]
fn close_now(stream: &TcpStream) {
    use std::os::windows::io::AsRawSocket;
    // SAFETY: the socket is this stream's own, closed once (the caller marks it closed).
    unsafe { windows_sys::Win32::Networking::WinSock::closesocket(stream.as_raw_socket() as _) };
}

/// What a wait waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ready {
    Read,
    Write,
    /// The end of a non-blocking connect, successful or not.
    Connected,
}

/// Waits until `socket` is ready or the deadline passes.
fn wait_until_ready(
    socket: &Socket,
    ready: Ready,
    deadline: Option<Instant>,
    reason: Timeout,
) -> Result<(), ureq::Error> {
    // Bounded by the deadline: each turn returns or waits for what is left of it (on Windows,
    // for a slice of it, and ends once the socket was shut down).
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
        match poll_one(&socket.stream, ready, wait_ms) {
            // Ready, or in error or hung up: the operation that follows tells which.
            Ok(true) => return Ok(()),
            Ok(false) if socket.shut.load(Ordering::Acquire) => {
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the connection was shut down").into())
            }
            Ok(false) => continue, // the loop checks the deadline
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// One poll(2) of one socket: `Ok(true)` when ready (or in error), `Ok(false)` when the time
/// (`-1`: none) ran out.
#[cfg(unix)]
fn poll_one(stream: &TcpStream, ready: Ready, wait_ms: i32) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let events = if ready == Ready::Read { libc::POLLIN } else { libc::POLLOUT };
    let mut poll_fd = libc::pollfd { fd: stream.as_raw_fd(), events, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    match unsafe { libc::poll(&mut poll_fd, 1, wait_ms) } {
        ready if ready > 0 => Ok(true),
        0 => Ok(false),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The longest single wait on Windows: how late a cancel may be noticed if the `shutdown`
/// did not wake the wait by itself.
#[cfg(windows)]
const WINDOWS_SLICE_MS: i32 = 50;

/// The Windows poll: `select` on one socket, for at most [`WINDOWS_SLICE_MS`]. Not `WSAPoll`:
/// before Windows 10 2004 it never reports a failed connect (the wait would last until the
/// connect timeout); `select` reports it in the exception set, on every Windows since 95.
#[cfg(windows)]
fn poll_one(stream: &TcpStream, ready: Ready, wait_ms: i32) -> io::Result<bool> {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{select, WSAGetLastError, FD_SET, SOCKET, SOCKET_ERROR, TIMEVAL};
    let socket = stream.as_raw_socket() as SOCKET;
    let one = || {
        let mut set = FD_SET { fd_count: 1, fd_array: [0; 64] };
        set.fd_array[0] = socket;
        set
    };
    let (mut wanted, mut failed) = (one(), one());
    let wait_ms = if wait_ms < 0 { WINDOWS_SLICE_MS } else { wait_ms.min(WINDOWS_SLICE_MS) };
    let timeout = TIMEVAL { tv_sec: wait_ms / 1000, tv_usec: (wait_ms % 1000) * 1000 };
    let none = std::ptr::null_mut();
    let (read, write, error) = match ready {
        Ready::Read => (&mut wanted as *mut FD_SET, none, none),
        Ready::Write => (none, &mut wanted as *mut FD_SET, none),
        // Only a connect asks for the exception set: on a connected socket it would report
        // urgent data, which nothing here reads, and the wait would spin.
        Ready::Connected => (none, &mut wanted as *mut FD_SET, &mut failed as *mut FD_SET),
    };
    // SAFETY: the sets and the timeout outlive the call; the first argument is ignored.
    match unsafe { select(0, read, write, error, &timeout) } {
        SOCKET_ERROR => Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() })),
        0 => Ok(false),
        _ => Ok(true),
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
    stream: Arc<Socket>,
    buffers: LazyBuffers,
    /// Bytes were read since the last probe: the next probe is ureq's on the way back to the
    /// pool, a moment after the answer's last bytes (see the module docs).
    read_since_probe: bool,
    wire: Arc<Wire>,
}

impl fmt::Debug for LeanTcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A shed socket's descriptor is closed: not asked.
        let peer = (self.stream.state.load(Ordering::Acquire) != SHED).then(|| self.stream.stream.peer_addr().ok());
        f.debug_struct("LeanTcp").field("peer", &peer.flatten()).finish()
    }
}

impl LeanTcp {
    fn wait(&self, ready: Ready, deadline: Option<Instant>, reason: Timeout) -> Result<(), ureq::Error> {
        wait_until_ready(&self.stream, ready, deadline, reason)
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
            let written = (&*self.stream.stream).write(&self.buffers.output()[sent..amount]);
            match written {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => {
                    sent += n;
                    self.wire.count_sent(n);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(Ready::Write, deadline, timeout.reason)?
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
            self.wait(Ready::Read, deadline, timeout.reason)?;
            let read = (&*self.stream.stream).read(self.buffers.input_append_buf());
            match read {
                Ok(amount) => {
                    self.buffers.input_appended(amount);
                    self.wire.count_received(amount);
                    self.read_since_probe = amount > 0;
                    return Ok(amount > 0);
                }
                Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Open means: no end of stream, no error and no unasked-for bytes waiting. ureq asks when
    /// the connection goes back to its pool (it is idle from then) and when it takes it out
    /// (busy from then, unless the gate shed it meanwhile).
    fn is_open(&mut self) -> bool {
        let socket = &self.stream;
        let returning = match socket.state.load(Ordering::Acquire) {
            BUSY => true,
            // Taken out of the pool, unless the gate is shedding it right now.
            IDLE => match socket.state.compare_exchange(IDLE, BUSY, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => false,
                Err(_) => return false,
            },
            _ => return false,
        };
        let open = std::mem::take(&mut self.read_since_probe) || {
            // One recv(MSG_PEEK): the socket is non-blocking, so "would block" means alive and idle.
            let mut byte = [0u8; 1];
            matches!(socket.stream.peek(&mut byte), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
        };
        if open && returning {
            socket.state.store(IDLE, Ordering::Release);
            if let Some(slot) = socket.slot.get() {
                slot.idle_now();
            }
        }
        open
    }
}
