//! The event loop's sockets: hyper's TCP connector wrapped so that every connection it opens,
//! the bytes it carries and its close are counted in the client's [`Wire`], as the blocking
//! path's sockets are (`net/tcp.rs`), and so that at most [`MAX_CONNECTING`] are being set up
//! at once.
//!
//! Each connection holds a slot of the client's gate (`net/gate.rs`) from before it connects
//! until it closes, so that both paths together keep to the cap, and may be shed: when the
//! other path must open a connection at the cap, the gate asks an idle one to close. Idle is
//! known from the requests: each marks its connection busy ([`while_busy`]) in the same poll
//! of the loop that took it from hyper's pool, before the connection's task can write it, and
//! until the request ends; the connection's own task, on the same loop thread, closes it (an
//! end of stream read while idle) only when no request marks it. A connection never used yet
//! (being set up, or pooled by a connect that lost its race) is not shed until the request
//! timeout has passed since it opened.
//!
//! A connect knows the request that started it ([`Want`]): hyper's pool starts one for a
//! request that finds no idle connection, and goes on with it in the background when a pooled
//! connection comes back first. Such a connect gives up while it waits for a slot or its turn
//! to connect, rather than open a connection nobody asked for: at the loop's allowance of
//! connections (`admission.rs`) every request hands its connection to the next, and each
//! hand-over would otherwise leave one such connect behind.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};

use crate::net::gate::{ConnSlot, Gate, Refused, Shed};
use crate::net::wire::Wire;

/// The most connections being set up at once. A burst of thousands of connects overflows a
/// server's listen queue (128 by default for many servers), and each dropped SYN costs a
/// retransmit 1 s, then 3 s later; requests beyond this wait for a connect or for a pooled
/// connection, whichever comes first.
pub const MAX_CONNECTING: usize = 128;

/// hyper's TCP connector, counting the connections it opens and what they carry in the
/// client's [`Wire`] (through [`Metered`]), and setting up at most [`MAX_CONNECTING`] at once.
#[derive(Clone)]
pub(crate) struct Counted {
    inner: HttpConnector,
    wire: Arc<Wire>,
    connecting: Arc<Semaphore>,
    gate: Arc<Gate>,
    /// How long a connect may wait for a slot, and how long a connection never used is left
    /// alone (its setup is bounded by the request that started it).
    request_timeout: Duration,
}

impl Counted {
    pub fn new(inner: HttpConnector, wire: &Arc<Wire>, gate: &Arc<Gate>, request_timeout: Duration) -> Counted {
        Counted {
            inner,
            wire: Arc::clone(wire),
            connecting: Arc::new(Semaphore::new(MAX_CONNECTING)),
            gate: Arc::clone(gate),
            request_timeout,
        }
    }
}

/// What a connect fails with.
type ConnectError = Box<dyn std::error::Error + Send + Sync>;

type Connecting = Pin<Box<dyn Future<Output = Result<TokioIo<Metered>, ConnectError>> + Send>>;

impl tower_service::Service<Uri> for Counted {
    type Response = TokioIo<Metered>;
    type Error = ConnectError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let wire = Arc::clone(&self.wire);
        let permits = Arc::clone(&self.connecting);
        let mut inner = self.inner.clone();
        let (gate, request_timeout) = (Arc::clone(&self.gate), self.request_timeout);
        // Called in the poll of the request that needs a connection now (a resent one too).
        let want = REQUESTING.with(|requesting| requesting.borrow().clone());
        if let Some(want) = &want {
            want.served.store(false, Ordering::Release);
        }
        Box::pin(async move {
            let want = want.as_deref();
            let slot = match gate.open_async(Instant::now() + request_timeout, served(want)).await {
                Ok(slot) => slot,
                Err(Refused::Cancelled) => return Err(unneeded_error()),
                Err(Refused::Deadline) => {
                    return Err(Box::new(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no connection closed within the request timeout to make room under the connection cap",
                    )))
                }
            };
            // Never closed: the semaphore lives as long as this connector.
            let _permit = tokio::select! {
                permit = permits.acquire_owned() => permit.ok(),
                _ = served(want) => return Err(unneeded_error()),
            };
            if want.is_some_and(Want::is_served) {
                return Err(unneeded_error());
            }
            let stream = inner.call(uri).await?.into_inner();
            wire.count_opened();
            let track = Arc::new(Track {
                busy: 0.into(),
                used: false.into(),
                shed: false.into(),
                reader: Mutex::new(None),
                opened: Instant::now(),
                settle: request_timeout,
                slot,
            });
            track.slot.register(Arc::downgrade(&track) as Weak<dyn Shed>);
            Ok(TokioIo::new(Metered { stream: std::mem::ManuallyDrop::new(stream), wire, track }))
        })
    }
}

/// What a connect that gave up fails with: only hyper's background task sees it, as the
/// request it was started for has a connection already.
fn unneeded_error() -> ConnectError {
    Box::new(std::io::Error::other("not needed: its request took a pooled connection"))
}

thread_local! {
    /// The request being polled on this thread ([`while_busy`]), for the connects it starts.
    static REQUESTING: RefCell<Option<Arc<Want>>> = const { RefCell::new(None) };
}

/// Whether a request still waits for a connection: served once it was given one (or ended),
/// unserved again when hyper starts a connect for it once more (a resend).
pub(crate) struct Want {
    served: AtomicBool,
    changed: Notify,
}

impl Want {
    fn is_served(&self) -> bool {
        self.served.load(Ordering::Acquire)
    }

    fn serve(&self) {
        self.served.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Ends once the request is served.
    async fn until_served(&self) {
        // Bounded by the request's life: each turn is a change of its state.
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self.is_served() {
                return;
            }
            changed.await;
        }
    }
}

/// Ends once the request that started a connect is served; never for a connect no request
/// started (`None`).
async fn served(want: Option<&Want>) {
    match want {
        Some(want) => want.until_served().await,
        None => std::future::pending().await,
    }
}

/// The request being polled on this thread, for the connects it starts: set for the poll,
/// and what was there before put back however the poll ends (a panic too).
struct Requesting(Option<Arc<Want>>);

impl Requesting {
    fn now(want: &Arc<Want>) -> Requesting {
        Requesting(REQUESTING.with(|requesting| requesting.replace(Some(Arc::clone(want)))))
    }
}

impl Drop for Requesting {
    fn drop(&mut self) {
        REQUESTING.with(|requesting| *requesting.borrow_mut() = self.0.take());
    }
}

/// Serves the request's [`Want`] however it ends (a dropped future too).
struct Ended(Arc<Want>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.serve();
    }
}

/// An event-loop connection's socket, counting the bytes it carries and its close (its drop,
/// when hyper's pool lets the connection go) in the client's [`Wire`], as the blocking path's
/// sockets do.
pub(crate) struct Metered {
    /// Closed in the drop before the slot is given back.
    stream: std::mem::ManuallyDrop<TcpStream>,
    wire: Arc<Wire>,
    track: Arc<Track>,
}

/// What the gate and the requests know of an event-loop connection.
pub(crate) struct Track {
    /// Requests that took the connection from the pool and have not ended.
    busy: AtomicU32,
    /// A request took it once: it is set up.
    used: AtomicBool,
    /// The gate asked it to close: it does when no request marks it.
    shed: AtomicBool,
    /// The connection task's last read that waited, woken by an ask to close.
    reader: Mutex<Option<Waker>>,
    opened: Instant,
    settle: Duration,
    slot: ConnSlot,
}

impl Track {
    fn wake_reader(&self) {
        let reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

impl Shed for Track {
    fn shed(&self) -> bool {
        let set_up = self.used.load(Ordering::Acquire) || self.opened.elapsed() >= self.settle;
        // Closed already (the handle outlives the connection in requests' captures): no room
        // to make here.
        let gone = self.slot.released();
        if gone || !set_up || self.busy.load(Ordering::Acquire) > 0 || self.shed.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.wake_reader();
        true
    }
}

/// A request's mark on the connection it was given: busy until dropped.
pub(crate) struct Busy(Arc<Track>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            if self.0.shed.load(Ordering::Acquire) {
                self.0.wake_reader();
            } else {
                self.0.slot.idle_now();
            }
        }
    }
}

/// A mark on the connection `connected` describes, busy until dropped, for requests that do not
/// go through hyper-util's pool: an HTTP/2 stream of `h2.rs`'s own connections, taken in the
/// same poll of the loop that picked its connection. `None`: not a connection of `Counted`.
pub(crate) fn mark_busy(connected: &Connected) -> Option<Busy> {
    let mut extras = hyper::http::Extensions::new();
    connected.get_extras(&mut extras);
    let Handle(track) = extras.remove::<Handle>()?;
    track.busy.fetch_add(1, Ordering::AcqRel);
    track.used.store(true, Ordering::Release);
    Some(Busy(track))
}

/// The handle a connection gives the requests it carries (hyper's connection "extras").
#[derive(Clone)]
struct Handle(Arc<Track>);

/// Runs `request` (hyper's client sending one request), marking the connection it is given
/// busy from the poll that took it from the pool (see the module docs); the mark is returned
/// with the answer, for the caller to hold until the answer's body is read. A request hyper
/// sends again on another connection (the first closed before it was written) moves its mark
/// there, in the poll that took the other one.
pub(crate) async fn while_busy<F: Future>(
    capture: &hyper_util::client::legacy::connect::CaptureConnection,
    request: F,
) -> (F::Output, Option<Busy>) {
    let mut request = std::pin::pin!(request);
    let mut mark: Option<Busy> = None;
    let want = Arc::new(Want { served: false.into(), changed: Notify::new() });
    let _ended = Ended(Arc::clone(&want));
    let output = std::future::poll_fn(|cx| {
        let polled = {
            let _requesting = Requesting::now(&want);
            request.as_mut().poll(cx)
        };
        if let Some(connected) = capture.connection_metadata().as_ref() {
            let mut extras = hyper::http::Extensions::new();
            connected.get_extras(&mut extras);
            if let Some(Handle(track)) = extras.remove::<Handle>() {
                if !mark.as_ref().is_some_and(|marked| Arc::ptr_eq(&marked.0, &track)) {
                    track.busy.fetch_add(1, Ordering::AcqRel);
                    track.used.store(true, Ordering::Release);
                    // The earlier connection's mark, if any, goes.
                    mark = Some(Busy(track));
                    want.serve();
                }
            }
        }
        polled
    })
    .await;
    (output, mark)
}

impl Drop for Metered {
    fn drop(&mut self) {
        // SAFETY: dropped once, here, and not used after.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.stream) };
        self.wire.count_closed();
        // After the close: the connection that takes the place never overlaps this one.
        self.track.slot.release();
    }
}

impl Connection for Metered {
    fn connected(&self) -> Connected {
        self.stream.connected().extra(Handle(Arc::clone(&self.track)))
    }
}

impl AsyncRead for Metered {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let track = &self.track;
        if track.shed.load(Ordering::Acquire) && track.busy.load(Ordering::Acquire) == 0 {
            // Asked to close and idle: an end of stream, which closes it (on this loop's thread,
            // so no request can take it from the pool in between).
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut *self.stream).poll_read(cx, buf);
        match polled {
            Poll::Ready(Ok(())) => self.wire.count_received(buf.filled().len().saturating_sub(before)),
            Poll::Pending => {
                let mut reader = self.track.reader.lock().unwrap_or_else(PoisonError::into_inner);
                if !reader.as_ref().is_some_and(|known| known.will_wake(cx.waker())) {
                    *reader = Some(cx.waker().clone());
                }
            }
            Poll::Ready(Err(_)) => {}
        }
        polled
    }
}

impl AsyncWrite for Metered {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut *self.stream).poll_write(cx, bytes);
        if let Poll::Ready(Ok(written)) = polled {
            self.wire.count_sent(written);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut *self.stream).poll_write_vectored(cx, buffers);
        if let Poll::Ready(Ok(written)) = polled {
            self.wire.count_sent(written);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.stream).poll_shutdown(cx)
    }
}
