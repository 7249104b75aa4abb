//! A waiter: a set of waits the library drives on its own threads, and the queue their
//! outcomes come out of.
//!
//! `add` queues a wait (checked as [`wait`](crate::wait::wait) checks it) and returns at once;
//! the client's engine (`engine.rs`) polls it on its schedule; `next` hands each finished wait
//! to exactly one caller, from any number of threads. On Linux an eventfd is readable exactly
//! while a finished wait is queued, so a C program can put the waiter in its poll/epoll loop.
//!
//! Bounds: a pending wait costs about 300 bytes; the queue holds only finished waits not yet
//! taken. `shutdown` (and drop) cancels every wait; each still comes out of `next`.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::api::answer::TaskState;
use crate::api::error::{Code, Error};
use crate::api::schedule::Schedule;
use crate::cancel::Cancel;
use crate::client::{Client, Report};
use crate::wait::engine::Engine;
use crate::wait::Polling;

/// A wait that is over.
#[derive(Debug)]
pub struct Finished {
    /// The caller's tag from `add`.
    pub tag: u64,
    pub task_id: i64,
    /// The wait's outcome, as [`wait`](crate::wait::wait) would have returned it.
    pub report: Report<TaskState>,
}

/// What `next` found.
#[derive(Debug)]
pub enum Next {
    Finished(Finished),
    /// None finished within the time given.
    TimedOut,
    /// The waiter is shut down and every wait has come out.
    ShutDown,
}

#[derive(Default)]
struct Queue {
    finished: VecDeque<Finished>,
    /// Waits added and not yet taken by `next` (running or queued).
    pending: u64,
    shut_down: bool,
}

/// Where a waiter's waits report; shared with the engine.
pub(crate) struct Inbox {
    queue: Mutex<Queue>,
    arrived: Condvar,
    /// Triggered by shutdown: stops the waiter's requests in flight.
    pub stop: Arc<Cancel>,
    signal: Signal,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn deliver(&self, finished: Finished) {
        let mut queue = self.lock();
        if queue.finished.is_empty() {
            self.signal.raise();
        }
        queue.finished.push_back(finished);
        drop(queue);
        self.arrived.notify_one();
    }
}

/// A set of waits on one client. `Send + Sync`: add and take from any thread.
pub struct Waiter {
    engine: Arc<Engine>,
    inbox: Arc<Inbox>,
}

impl Waiter {
    /// A waiter on `client`. It keeps the client alive as long as it needs it.
    pub fn new(client: &Arc<Client>) -> Result<Waiter, Error> {
        let inbox = Arc::new(Inbox {
            queue: Mutex::new(Queue::default()),
            arrived: Condvar::new(),
            stop: Arc::new(Cancel::new()),
            signal: Signal::new()?,
        });
        Ok(Waiter { engine: Engine::of(client), inbox })
    }

    /// Queues a wait for `task_id` on `schedule`, its time counted from now. The arguments are
    /// checked first (`CM_ERR_INVALID_ARGUMENT`, nothing queued); refused after `shutdown`.
    pub fn add(&self, task_id: i64, schedule: &Schedule, cancel: Option<Arc<Cancel>>, tag: u64) -> Result<(), Error> {
        let polling = Polling::start(task_id, schedule, Instant::now())?;
        {
            let mut queue = self.inbox.lock();
            if queue.shut_down {
                return Err(Error::new(Code::Cancelled, "the waiter is shut down: no wait can be added"));
            }
            queue.pending += 1;
        }
        let added = self.engine.add(&self.inbox, polling, tag, cancel);
        if added.is_err() {
            self.inbox.lock().pending -= 1;
            // A taker may be waiting for this wait to drain a shut-down waiter.
            self.inbox.arrived.notify_all();
        }
        added
    }

    /// Takes one finished wait, waiting up to `timeout` for one (zero: not at all).
    pub fn next(&self, timeout: Duration) -> Next {
        let deadline = Instant::now().checked_add(timeout);
        let mut queue = self.inbox.lock();
        // Bounded by the deadline: each turn takes a wait, returns, or sleeps until then.
        loop {
            if let Some(finished) = queue.finished.pop_front() {
                queue.pending -= 1;
                if queue.finished.is_empty() {
                    self.inbox.signal.clear();
                }
                return Next::Finished(finished);
            }
            // After a shutdown only waits still in flight are missing; they end within ms.
            if queue.shut_down && queue.pending == 0 {
                return Next::ShutDown;
            }
            let now = Instant::now();
            let left = match deadline {
                Some(deadline) if deadline <= now => return Next::TimedOut,
                Some(deadline) => deadline - now,
                None => Duration::from_secs(3600),
            };
            queue = self.inbox.arrived.wait_timeout(queue, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Waits added and not yet taken by `next`.
    pub fn pending(&self) -> u64 {
        self.inbox.lock().pending
    }

    /// A file descriptor readable while a finished wait is queued; `None` where the platform
    /// has none.
    pub fn fd(&self) -> Option<i32> {
        self.inbox.signal.fd()
    }

    /// Cancels every wait (each comes out of `next` with `CM_ERR_CANCELLED`) and refuses new
    /// ones. Idempotent.
    pub fn shutdown(&self) {
        self.inbox.lock().shut_down = true;
        self.inbox.stop.trigger();
        self.engine.cancel_waits_of(&self.inbox);
        // Wake takers so that they see the shutdown.
        self.inbox.arrived.notify_all();
    }

    /// The client's engine threads running now (for tests and benchmarks).
    pub fn engine_threads(&self) -> usize {
        self.engine.workers()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// An eventfd whose counter is non-zero exactly while the queue is not empty. Changed only
/// under the queue's lock.
#[cfg(target_os = "linux")]
struct Signal {
    fd: std::os::fd::OwnedFd,
}

#[cfg(target_os = "linux")]
impl Signal {
    fn new() -> Result<Signal, Error> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain system call; the flags are valid.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            let error = std::io::Error::last_os_error();
            return Err(Error::new(Code::Internal, format!("could not create the waiter's eventfd: {error}")));
        }
        // SAFETY: a new descriptor that nothing else owns.
        Ok(Signal { fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) } })
    }

    fn raise(&self) {
        use std::os::fd::AsRawFd;
        let one: u64 = 1;
        // SAFETY: an 8-byte buffer, as eventfd requires. Cannot block (the counter stays ≤ 1).
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    fn clear(&self) {
        use std::os::fd::AsRawFd;
        let mut count: u64 = 0;
        // SAFETY: an 8-byte buffer; non-blocking, so an already-zero counter just fails.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }

    fn fd(&self) -> Option<i32> {
        use std::os::fd::AsRawFd;
        Some(self.fd.as_raw_fd())
    }
}

#[cfg(not(target_os = "linux"))]
struct Signal;

#[cfg(not(target_os = "linux"))]
impl Signal {
    fn new() -> Result<Signal, Error> {
        Ok(Signal)
    }
    fn raise(&self) {}
    fn clear(&self) {}
    fn fd(&self) -> Option<i32> {
        None
    }
}
