//! A waiter: a set of waits the library drives on its own threads, and the queue their
//! outcomes come out of.
//!
//! `add` queues a wait (checked as [`wait`](crate::wait::wait) checks it) and returns at once;
//! the client's engine (`engine.rs`) polls it on its schedule; `next` hands each finished wait
//! to exactly one caller, from any number of threads. On Linux an eventfd is readable exactly
//! while a finished wait is queued, so a C program can put the waiter in its poll/epoll loop.
//!
//! `add_solve` queues a whole solve: the createTask is sent, then the task's wait joins the
//! engine like any other; the solve comes out of `next` once, with the wait's outcome or the
//! createTask's failure. With the client's event loop on (`events.rs`) the createTask is a
//! future on that loop, like the polls; otherwise a thread of the waiter's own sends it (so
//! that a program's event loop never needs a thread of its own for it).
//!
//! Bounds: a pending wait costs about 300 bytes; a solve waiting for its createTask holds its
//! task JSON; the queue holds only finished waits not yet taken. The createTask threads (off
//! the event loop) are at most the client's `max_connections` (a call beyond that would only
//! wait for a connection), started as solves arrive and ended by shutdown. `shutdown` (and drop) cancels every wait and
//! solve; each still comes out of `next`.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::api::answer::TaskState;
use crate::api::error::{Code, Error};
use crate::api::schedule::Schedule;
use crate::cancel::{Cancel, Watcher};
use crate::client::{CallOptions, Client, Report};
use crate::wait::engine::{Engine, Shared};
use crate::wait::inbox::Inbox;
pub use crate::wait::inbox::{Finished, Next};
use crate::wait::{check_schedule, Polling};

/// A set of waits on one client. `Send + Sync`: add and take from any thread.
pub struct Waiter {
    engine: Arc<Engine>,
    inbox: Arc<Inbox>,
    creates: Arc<Creates>,
}

impl Waiter {
    /// A waiter on `client`. It keeps the client alive as long as it needs it.
    pub fn new(client: &Arc<Client>) -> Result<Waiter, Error> {
        let (engine, inbox) = (Engine::of(client), Arc::new(Inbox::new()?));
        let creates = Arc::new(Creates {
            client: Arc::clone(client),
            engine: Arc::clone(&engine),
            inbox: Arc::clone(&inbox),
            queue: Mutex::new(CreateQueue::default()),
            wake: Condvar::new(),
        });
        Ok(Waiter { engine, inbox, creates })
    }

    /// Queues a solve: `task_json` created (as [`Client::create_task`] does, `cancel` stopping
    /// it too), then its wait on `schedule`, the time counted from the creation. Returns at
    /// once; the solve comes out of `next` with `tag`: the wait's outcome, or the createTask's
    /// failure (task id 0). The schedule is checked first (`CM_ERR_INVALID_ARGUMENT`, nothing
    /// queued), the task when it is sent; refused after `shutdown`.
    pub fn add_solve(
        &self,
        task_json: &str,
        callback_url: Option<&str>,
        schedule: &Schedule,
        cancel: Option<Arc<Cancel>>,
        tag: u64,
    ) -> Result<(), Error> {
        check_schedule(schedule)?;
        self.inbox.expect_one()?;
        let solve = Solve {
            task_json: task_json.to_owned(),
            callback_url: callback_url.map(str::to_owned),
            schedule: *schedule,
            cancel,
            tag,
        };
        // On the event loop when the client's calls go there; else on the waiter's threads.
        let added = match self.engine.submit_solve(&self.inbox, solve) {
            Ok(()) => Ok(()),
            Err(solve) => self.creates.add(solve),
        };
        if added.is_err() {
            self.inbox.expect_one_less();
        }
        added
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
        self.creates.stop();
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
        // Quick: their createTask requests are cancelled, their queued solves come out
        // cancelled without a request.
        self.creates.join();
    }
}

/// A solve of `add_solve` waiting for its createTask.
pub(crate) struct Solve {
    pub task_json: String,
    pub callback_url: Option<String>,
    schedule: Schedule,
    pub cancel: Option<Arc<Cancel>>,
    tag: u64,
}

impl Solve {
    /// Whether its cancel or its waiter's shutdown came before its createTask was sent.
    pub fn cancelled(&self, inbox: &Inbox) -> bool {
        inbox.stop.is_triggered() || self.cancel.as_ref().is_some_and(|cancel| cancel.is_triggered())
    }

    /// Ends a solve cancelled before its createTask was sent.
    pub fn not_sent(self, inbox: &Inbox) {
        self.failed(inbox, Error::new(Code::Cancelled, "the solve was cancelled before its createTask was sent"));
    }

    /// Ends a solve with `error`, no request sent.
    pub fn failed(self, inbox: &Inbox, error: Error) {
        let report = Report { result: Err(error), requests: 0, http_status: None, notice: None };
        inbox.deliver(Finished { tag: self.tag, task_id: 0, report });
    }

    /// After its createTask (on a thread or on the event loop): the task's wait handed to the
    /// engine, or the failure delivered.
    pub fn created(self, engine: &Shared, inbox: &Arc<Inbox>, created: Report<i64>) {
        let Report { result, requests, http_status, mut notice } = created;
        let (task_id, error) = match result {
            Ok(task_id) => {
                // Told once per client: it goes with the solve's outcome, whichever report
                // that is.
                if let Some(notice) = notice.take() {
                    inbox.note(self.tag, notice);
                }
                let polling = Polling::start(engine.client(), task_id, &self.schedule, Instant::now());
                match polling.and_then(|polling| engine.add(inbox, polling, self.tag, self.cancel)) {
                    Ok(()) => return,
                    Err(error) => (task_id, error),
                }
            }
            Err(error) => (0, error),
        };
        let report: Report<TaskState> = Report { result: Err(error), requests, http_status, notice };
        inbox.deliver(Finished { tag: self.tag, task_id, report });
    }
}

#[derive(Default)]
struct CreateQueue {
    /// Solves added and not yet taken by a thread: each was counted in the inbox's pending.
    solves: VecDeque<Solve>,
    /// At most the client's `max_connections` (read when one is started).
    threads: Vec<JoinHandle<()>>,
    /// Threads asleep, waiting for a solve.
    idle: usize,
    stopping: bool,
}

/// The createTask calls of a waiter's solves and the threads that send them.
struct Creates {
    client: Arc<Client>,
    engine: Arc<Engine>,
    inbox: Arc<Inbox>,
    queue: Mutex<CreateQueue>,
    wake: Condvar,
}

impl Creates {
    fn lock(&self) -> MutexGuard<'_, CreateQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a solve and starts a thread for it if every thread is busy and the cap allows.
    fn add(self: &Arc<Self>, solve: Solve) -> Result<(), Error> {
        let mut queue = self.lock();
        if queue.stopping {
            return Err(Error::new(Code::Cancelled, "the waiter is shut down: no wait can be added"));
        }
        queue.solves.push_back(solve);
        let cap = self.client.max_connections().max(1) as usize;
        if queue.solves.len() > queue.idle && queue.threads.len() < cap {
            let creates = Arc::clone(self);
            let started =
                std::thread::Builder::new().name("capmonster-create".to_owned()).spawn(move || creates.work());
            match started {
                Ok(thread) => queue.threads.push(thread),
                // Another thread will take it; with none, it is refused.
                Err(error) if queue.threads.is_empty() => {
                    queue.solves.pop_back();
                    return Err(Error::new(Code::Internal, format!("could not start a thread: {error}")));
                }
                Err(_) => {}
            }
        }
        // A busy thread takes it when done: no wake-up (a system call) unless one sleeps.
        let wake = queue.idle > 0;
        drop(queue);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// A thread's life: takes solves until the waiter stops and none is left.
    fn work(&self) {
        loop {
            let solve = {
                let mut queue = self.lock();
                loop {
                    if let Some(solve) = queue.solves.pop_front() {
                        break solve;
                    }
                    if queue.stopping {
                        return;
                    }
                    queue.idle += 1;
                    queue = self.wake.wait(queue).unwrap_or_else(PoisonError::into_inner);
                    queue.idle -= 1;
                }
            };
            self.create(solve);
        }
    }

    /// Sends the solve's createTask, then hands its wait to the engine (or its failure to the
    /// inbox).
    fn create(&self, solve: Solve) {
        let stop = &self.inbox.stop;
        if solve.cancelled(&self.inbox) {
            solve.not_sent(&self.inbox);
            return;
        }
        // One token for the call that either the solve's cancel or the waiter's shutdown
        // triggers.
        let token = Arc::new(Cancel::new());
        let forward: Arc<dyn Watcher> = Arc::new(Forward(Arc::clone(&token)));
        let mut watches = Vec::with_capacity(2);
        for source in std::iter::once(stop).chain(solve.cancel.as_ref()) {
            match source.watch(Arc::downgrade(&forward), 0) {
                Some(key) => watches.push((source, key)),
                None => token.trigger(),
            }
        }
        let options = CallOptions { timeout: None, cancel: Some(Arc::clone(&token)) };
        let created = self.client.create_task_with(&solve.task_json, solve.callback_url.as_deref(), &options);
        for (source, key) in watches {
            source.unwatch(key);
        }
        solve.created(self.engine.shared(), &self.inbox, created);
    }

    /// Refuses new solves; the threads end once the queued ones are out (cancelled: the
    /// inbox's stop is triggered first).
    fn stop(&self) {
        self.lock().stopping = true;
        self.wake.notify_all();
    }

    fn join(&self) {
        let threads = std::mem::take(&mut self.lock().threads);
        for thread in threads {
            // A panic there was the thread's own; nothing is left to free.
            let _ = thread.join();
        }
    }
}

/// Triggers a call's token when the solve's cancel or the waiter's stop triggers.
struct Forward(Arc<Cancel>);

impl Watcher for Forward {
    fn cancelled(&self, _token: u64) {
        self.0.trigger();
    }
}
