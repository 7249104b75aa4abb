//! The engine's event loop: when the client's engine is the event loop (`Client::set_engine`),
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
//! loop after the waits in flight end. A client's proxy (HTTP CONNECT, inside TLS for
//! `https://`; SOCKS5, SOCKS4) is used here as on the threads.
//!
//! A waiter's solve (`Waiter::add_solve`) sends its createTask here too, as a future of the
//! client's createTask rules on the same link, then hands the created task's wait to the
//! engine; its cancel and the waiter's shutdown reach it in flight as they reach a poll.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::api::error::{Code, Error};
use crate::client::link::Events;
use crate::client::{Bounds, CallStats};
use crate::net::events::EventChannel;
use crate::wait::engine::{panic_error, panicked, Pending, Shared};
use crate::wait::inbox::Inbox;
use crate::wait::waiter::Solve;

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

/// What the loop is handed: a due wait, or a solve whose task is to be created.
pub(crate) enum Work {
    Poll { id: u64, pending: Pending },
    Solve { solve: Solve, inbox: Arc<Inbox> },
}

/// Work handed to the loop, with the channel of the settings it is sent with.
pub(crate) struct Job {
    shared: Arc<Shared>,
    work: Work,
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
    /// Hands work to the loop, started on first use; gives it back when the client's waits
    /// are not for the event loop (turned off) or the loop could not start.
    // The work comes back by value: boxing it would cost every poll that falls back an allocation.
    #[allow(clippy::result_large_err)]
    pub fn submit(&mut self, shared: &Arc<Shared>, work: Work) -> Result<(), Work> {
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
                    return Err(work);
                }
            },
        };
        if self.jobs.is_none() && self.start().is_err() {
            return Err(work);
        }
        let Some(jobs) = &self.jobs else { return Err(work) };
        jobs.send(Job { shared: Arc::clone(shared), work, channel }).map_err(|failed| failed.0.work)
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
/// tasks in flight end. The tasks are detached (a `JoinSet` entry per poll cost a few percent
/// of the loop's CPU); a count of them, kept by each task's guard even if it panics, says when
/// the last one ended.
fn run(runtime: tokio::runtime::Runtime, mut jobs: UnboundedReceiver<Job>) {
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let running = Rc::new(Running { count: Cell::new(0), ended: tokio::sync::Notify::new() });
        // Bounded by the engine's life: ends when the engine drops its sender.
        while let Some(job) = jobs.recv().await {
            running.count.set(running.count.get() + 1);
            let guard = InFlight(Rc::clone(&running));
            tokio::task::spawn_local(async move {
                let _guard = guard;
                job.run().await;
            });
        }
        // `notify_one` keeps a wake given before this waits: none is lost.
        while running.count.get() > 0 {
            running.ended.notified().await;
        }
    });
}

/// The loop's jobs in flight.
struct Running {
    count: Cell<usize>,
    ended: tokio::sync::Notify,
}

/// Counts a job in flight until its task ends (or unwinds).
struct InFlight(Rc<Running>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let count = self.0.count.get() - 1;
        self.0.count.set(count);
        if count == 0 {
            self.0.ended.notify_one();
        }
    }
}

impl Job {
    async fn run(self) {
        let Job { shared, work, channel } = self;
        match work {
            Work::Poll { id, pending } => poll(&shared, id, pending, &channel).await,
            Work::Solve { solve, inbox } => create(&shared, solve, &inbox, &channel).await,
        }
    }
}

/// One poll of the wait on the loop, then its outcome delivered or its next timer set.
async fn poll(shared: &Shared, id: u64, mut pending: Pending, channel: &EventChannel) {
    let told = crate::budget::guard::stops_told();
    let outcome = if pending.cancelled() {
        Some(pending.polling.cancelled())
    } else {
        let (polling, cancels) = pending.polling_and_cancels();
        let cancels = cancels.as_slice();
        let link = Events(channel);
        // A panic must not kill the loop and lose the wait: it ends the wait instead.
        match (CatchUnwind(Box::pin(polling.step_on(shared.client(), &link, cancels)))).await {
            Ok(outcome) => outcome,
            Err(panic) => panicked(panic.as_ref()),
        }
    };
    shared.after_poll(id, pending, outcome, told);
}

/// A solve's createTask on the loop (the client's rules, as a blocking createTask runs them),
/// then its wait handed to the engine, or its failure to the inbox.
async fn create(shared: &Shared, solve: Solve, inbox: &Arc<Inbox>, channel: &EventChannel) {
    if solve.cancelled(inbox) {
        solve.not_sent(inbox);
        return;
    }
    let tokens = [&inbox.stop, solve.cancel.as_ref().unwrap_or(&inbox.stop)];
    let cancels = &tokens[..if solve.cancel.is_some() { 2 } else { 1 }];
    let mut stats = CallStats::default();
    let bounds = Bounds { deadline: None, cancels };
    let link = Events(channel);
    let sent =
        shared.client().create_task_on(&link, &solve.task_json, solve.callback_url.as_deref(), bounds, &mut stats);
    // A panic must not kill the loop and lose the solve: it ends the solve instead.
    let result = CatchUnwind(Box::pin(sent)).await.unwrap_or_else(|panic| Err(panic_error(panic.as_ref())));
    let report = stats.report(result);
    solve.created(shared, inbox, report);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::schedule::DEFAULT;
    use crate::cancel::Cancel;
    use crate::client::{Client, Engine};
    use crate::wait::polling::Polling;
    use std::time::Instant;

    /// What a wait or a solve costs on the loop while it queues for a permit is its future's
    /// size: 100,000 of them queue at once in a large waiter. The exchange (hyper's request,
    /// HTTP/2's connection setup) is boxed only while a request is in flight, so the queued
    /// future stays small (about 1 KiB today; 17 KiB when the exchange was inline).
    #[test]
    fn a_queued_poll_and_a_queued_solve_are_small_futures() {
        const MOST: usize = 2048;
        let client = Client::new("key").unwrap();
        client.set_base_url("https://127.0.0.1:9").unwrap();
        client.set_engine(Engine::EventLoop);
        let channel = client.event_channel().expect("the event loop").unwrap();
        let link = Events(&channel);
        let cancel = Arc::new(Cancel::new());
        let cancels = [&cancel];

        let mut polling = Polling::start(&client, 1, &DEFAULT, Instant::now()).unwrap();
        let poll = polling.step_on(&client, &link, &cancels);
        assert!(std::mem::size_of_val(&poll) <= MOST, "a poll's future: {} bytes", std::mem::size_of_val(&poll));

        let mut stats = CallStats::default();
        let bounds = Bounds { deadline: None, cancels: &cancels };
        let create = client.create_task_on(&link, "{}", None, bounds, &mut stats);
        assert!(
            std::mem::size_of_val(&create) <= MOST,
            "a createTask's future: {} bytes",
            std::mem::size_of_val(&create)
        );
    }
}
