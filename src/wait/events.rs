//! The engine's event loop: when the client's event loop is on (`Client::set_event_loop`),
//! a due wait is handed by the engine's one timer thread to this loop, which sends its poll as
//! a future on hyper's client (`net/events/`) and puts the wait back in the engine's table.
//! So requests in flight cost a future each (a few KiB), not a thread.
//!
//! Threads of one engine on the event loop: the timer thread (the engine's leader), the loop's
//! thread (a current-thread tokio runtime) and at most one resolver thread (hyper resolves
//! host names with getaddrinfo on tokio's blocking pool, capped here at one thread). Three at
//! most, whatever the number of waits.
//!
//! What stays the same as on the threads: each poll is `Polling::step_on`, the same rules as a
//! blocking call (budget and guard admission, classification, retries, back-off, counters,
//! logs); cancels reach a request in flight through its tokens (its future is dropped, which
//! resets its HTTP/2 stream or closes its HTTP/1.1 connection); the engine's drop joins the
//! loop after the waits in flight end.
//!
//! Not on the event loop yet: a client with a proxy (its waits keep the engine's threads).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::api::error::{Code, Error};
use crate::client::link::Events;
use crate::net::events::EventChannel;
use crate::wait::engine::{panicked, Pending, Shared};

/// Completions the loop takes from its port at a time on Windows (tokio's default: 1,024).
/// Under Wine, a socket whose poll has completed stays in the server's poll set until the loop
/// has taken the completion and read the socket: on each turn of Wine's (single-threaded)
/// server it is peeked again and every pending poll is walked for it
/// (`server/sock.c`: `sock_poll_event`, `sock_get_poll_events`), so a turn costs ready sockets
/// × open sockets, and the loop needs a few turns per completion. In batches of 16 the loop
/// reads ready sockets sooner and keeps that product small: 500 connections answering at once
/// took 1.8-2.5 s there instead of 18-30 s (docs/engine.md, Windows). On Windows itself it
/// costs one `GetQueuedCompletionStatusEx` call per 16 events instead of per 1,024.
#[cfg(windows)]
const WINDOWS_IO_EVENTS_PER_TICK: usize = 16;

/// A due wait handed to the loop, with the channel of the settings it is sent with.
pub(crate) struct Job {
    shared: Arc<Shared>,
    id: u64,
    pending: Pending,
    channel: Arc<EventChannel>,
}

/// The running loop of one engine, and the channel of the client's settings now.
#[derive(Default)]
pub(crate) struct EventLoop {
    /// Jobs queue here without bound: at most the engine's waits, each queued once at a time.
    jobs: Option<UnboundedSender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// (settings version, channel): rebuilt when a setting changes.
    channel: Option<(u64, Arc<EventChannel>)>,
}

impl EventLoop {
    /// Hands a due wait to the loop, started on first use; gives it back when the client's
    /// waits are not for the event loop (turned off, a proxy) or the loop could not start.
    // The wait comes back by value: boxing it would cost every poll that falls back an allocation.
    #[allow(clippy::result_large_err)]
    pub fn submit(&mut self, shared: &Arc<Shared>, id: u64, pending: Pending) -> Result<(), Pending> {
        let client = shared.client();
        let version = client.settings_version();
        let channel = match &self.channel {
            Some((built, channel)) if *built == version => Arc::clone(channel),
            _ => match client.event_channel() {
                Some(Ok(channel)) => {
                    let channel = Arc::new(channel);
                    self.channel = Some((version, Arc::clone(&channel)));
                    channel
                }
                // The blocking path reports what is wrong, as it does today.
                Some(Err(_)) | None => {
                    self.channel = None;
                    return Err(pending);
                }
            },
        };
        if self.jobs.is_none() && self.start().is_err() {
            return Err(pending);
        }
        let Some(jobs) = &self.jobs else { return Err(pending) };
        jobs.send(Job { shared: Arc::clone(shared), id, pending, channel }).map_err(|failed| failed.0.pending)
    }

    fn start(&mut self) -> Result<(), Error> {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder
            .thread_name("capmonster-events")
            .enable_io()
            .enable_time()
            // Host names are resolved on the blocking pool: one thread is enough (a new
            // connection is rare), and it leaves when idle.
            .max_blocking_threads(1)
            .thread_keep_alive(std::time::Duration::from_secs(10));
        #[cfg(windows)]
        builder.max_io_events_per_tick(WINDOWS_IO_EVENTS_PER_TICK);
        let runtime = builder
            .build()
            .map_err(|error| Error::new(Code::Internal, format!("could not start the event loop: {error}")))?;
        let (sender, receiver) = unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("capmonster-events".to_owned())
            .spawn(move || run(runtime, receiver))
            .map_err(|error| Error::new(Code::Internal, format!("could not start the event loop's thread: {error}")))?;
        self.jobs = Some(sender);
        self.thread = Some(thread);
        Ok(())
    }

    /// Stops taking jobs; the loop ends once the waits in flight have ended. Returns its
    /// thread to join (without the engine's lock).
    pub fn stop(&mut self) -> Option<JoinHandle<()>> {
        self.jobs = None;
        self.channel = None;
        self.thread.take()
    }
}

/// The loop's thread: runs each job as a task until the engine stops sending, then until the
/// tasks in flight end. Tasks are reaped as they end, so the set holds the waits in flight.
fn run(runtime: tokio::runtime::Runtime, mut jobs: UnboundedReceiver<Job>) {
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let mut running = tokio::task::JoinSet::new();
        // Bounded by the engine's life: ends when the engine drops its sender.
        loop {
            tokio::select! {
                job = jobs.recv() => match job {
                    Some(job) => { running.spawn_local(job.run()); }
                    None => break,
                },
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        while running.join_next().await.is_some() {}
    });
}

impl Job {
    /// One poll of the wait on the loop, then its outcome delivered or its next timer set.
    async fn run(self) {
        let Job { shared, id, mut pending, channel } = self;
        let told = crate::budget::guard::stops_told();
        let outcome = if pending.cancelled() {
            Some(pending.polling.cancelled())
        } else {
            let (polling, cancels) = pending.polling_and_cancels();
            let cancels = cancels.as_slice();
            let link = Events(&channel);
            // A panic must not kill the loop and lose the wait: it ends the wait instead.
            match (CatchUnwind(Box::pin(polling.step_on(shared.client(), &link, cancels)))).await {
                Ok(outcome) => outcome,
                Err(panic) => panicked(panic.as_ref()),
            }
        };
        shared.after_poll(id, pending, outcome, told);
    }
}

/// A future whose panic is caught and returned, as `catch_unwind` does for a closure.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
