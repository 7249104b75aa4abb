//! The inbox of a waiter: where the engine delivers finished waits and `Waiter::next` takes
//! them, with the count of waits pending and, on Linux, an eventfd readable exactly while a
//! finished wait is queued. Shared by the waiter and the engine, so that neither needs the
//! other's type to hand a wait over.
//!
//! Bounds: the queue holds only finished waits not yet taken (each was added, and counted in
//! `pending`, first).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::api::answer::TaskState;
use crate::api::error::{Code, Error};
use crate::cancel::Cancel;
use crate::client::Report;

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
    /// Takers blocked in `take` (at most the threads calling it): a delivery with none skips
    /// the wake-up's system call, as a program watching the eventfd takes with timeout 0.
    takers_waiting: usize,
    /// The budget's notices that a solve's createTask carried, by tag, for the report of its
    /// wait (a wait's report is made by the engine). Bounded: a client is told each notice
    /// once, so at most a few solves at a time have one.
    notices: Vec<(u64, String)>,
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
    pub fn new() -> Result<Inbox, Error> {
        Ok(Inbox {
            queue: Mutex::new(Queue::default()),
            arrived: Condvar::new(),
            stop: Arc::new(Cancel::new()),
            signal: Signal::new()?,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a wait about to be added; refused once shut down.
    pub fn expect_one(&self) -> Result<(), Error> {
        let mut queue = self.lock();
        if queue.shut_down {
            return Err(Error::new(Code::Cancelled, "the waiter is shut down: no wait can be added"));
        }
        queue.pending += 1;
        Ok(())
    }

    /// Takes back `expect_one` for a wait the engine refused.
    pub fn expect_one_less(&self) {
        self.lock().pending -= 1;
        // A taker may be waiting for this wait to drain a shut-down waiter.
        self.arrived.notify_all();
    }

    /// Takes one finished wait, waiting up to `timeout` for one (zero: not at all).
    pub fn take(&self, timeout: Duration) -> Next {
        let deadline = Instant::now().checked_add(timeout);
        let mut queue = self.lock();
        // Bounded by the deadline: each turn takes a wait, returns, or sleeps until then.
        loop {
            if let Some(mut finished) = queue.finished.pop_front() {
                queue.pending -= 1;
                if let Some(at) = queue.notices.iter().position(|(tag, _)| *tag == finished.tag) {
                    let (_, notice) = queue.notices.swap_remove(at);
                    let report = &mut finished.report;
                    report.notice = Some(match report.notice.take() {
                        Some(later) => format!("{notice}; {later}"),
                        None => notice,
                    });
                }
                if queue.finished.is_empty() {
                    self.signal.clear();
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
            queue.takers_waiting += 1;
            queue = self.arrived.wait_timeout(queue, left).unwrap_or_else(PoisonError::into_inner).0;
            queue.takers_waiting -= 1;
        }
    }

    /// Keeps a solve's createTask notice for the report its wait will deliver with `tag`.
    pub fn note(&self, tag: u64, notice: String) {
        self.lock().notices.push((tag, notice));
    }

    /// Waits added and not yet taken.
    pub fn pending(&self) -> u64 {
        self.lock().pending
    }

    /// The eventfd, where the platform has one.
    pub fn fd(&self) -> Option<i32> {
        self.signal.fd()
    }

    /// Refuses new waits and stops the requests in flight.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.stop.trigger();
    }

    /// Wakes every taker, so that they see a shutdown.
    pub fn wake_takers(&self) {
        self.arrived.notify_all();
    }

    pub fn deliver(&self, finished: Finished) {
        let mut queue = self.lock();
        if queue.finished.is_empty() {
            self.signal.raise();
        }
        queue.finished.push_back(finished);
        // Read under the lock: a taker counted itself before it began to wait, so none misses it.
        let wake = queue.takers_waiting > 0;
        drop(queue);
        if wake {
            self.arrived.notify_one();
        }
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
