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

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::error::Error;
use crate::api::schedule::Schedule;
use crate::cancel::Cancel;
use crate::client::Client;
use crate::wait::engine::Engine;
use crate::wait::inbox::Inbox;
pub use crate::wait::inbox::{Finished, Next};
use crate::wait::Polling;

/// A set of waits on one client. `Send + Sync`: add and take from any thread.
pub struct Waiter {
    engine: Arc<Engine>,
    inbox: Arc<Inbox>,
}

impl Waiter {
    /// A waiter on `client`. It keeps the client alive as long as it needs it.
    pub fn new(client: &Arc<Client>) -> Result<Waiter, Error> {
        Ok(Waiter { engine: Engine::of(client), inbox: Arc::new(Inbox::new()?) })
    }

    /// Queues a wait for `task_id` on `schedule`, its time counted from now. The arguments are
    /// checked first (`CM_ERR_INVALID_ARGUMENT`, nothing queued); refused after `shutdown`.
    pub fn add(&self, task_id: i64, schedule: &Schedule, cancel: Option<Arc<Cancel>>, tag: u64) -> Result<(), Error> {
        let polling = Polling::start(self.engine.client(), task_id, schedule, Instant::now())?;
        self.inbox.expect_one()?;
        let added = self.engine.add(&self.inbox, polling, tag, cancel);
        if added.is_err() {
            self.inbox.expect_one_less();
        }
        added
    }

    /// Takes one finished wait, waiting up to `timeout` for one (zero: not at all).
    pub fn next(&self, timeout: Duration) -> Next {
        self.inbox.take(timeout)
    }

    /// Waits added and not yet taken by `next`.
    pub fn pending(&self) -> u64 {
        self.inbox.pending()
    }

    /// A file descriptor readable while a finished wait is queued; `None` where the platform
    /// has none.
    pub fn fd(&self) -> Option<i32> {
        self.inbox.fd()
    }

    /// Cancels every wait (each comes out of `next` with `CM_ERR_CANCELLED`) and refuses new
    /// ones. Idempotent.
    pub fn shutdown(&self) {
        self.inbox.shut_down();
        self.engine.cancel_waits_of(&self.inbox);
        self.inbox.wake_takers();
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
