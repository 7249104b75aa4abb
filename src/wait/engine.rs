//! The engine that runs a client's waiters: one timer heap of next polls, and at most
//! `max_connections` worker threads that each send one request at a time.
//!
//! A pending wait is a [`Polling`] in a table (about 300 bytes with its timer), not a thread:
//! threads are spent only on requests in flight. The workers take turns as leader
//! (leader/follower): the leader sleeps until the earliest timer, takes that wait, hands
//! leadership to an idle worker (or starts one, up to the client's cap) and sends the request;
//! the others sleep until called. So one thread watches the clock, and a due wait waits for a
//! thread only when all of them are busy.
//!
//! Cancels: a wait's own token and its waiter's stop token reach it wherever it is. Asleep,
//! the engine watches its token (`Watcher`) and ends it at once; in flight, the socket watches
//! both tokens (`inflight`) and the request fails at once.
//!
//! Threads: at most the client's `max_connections`. A worker is started only when no worker
//! leads, none is idle and none is starting; when the cap is lowered, workers beyond it retire
//! as soon as they are idle. With the client's event loop on (`events.rs`), a due wait is
//! handed to the loop instead of polled on the worker, which goes on leading: one worker is
//! then all the engine keeps, and the others retire as idle ones do.
//!
//! A key stop: when the account guard stops this client's key (an answer heard by any client
//! of the process), every sleeping wait is due at once; its poll is answered by the guard, with
//! no request, and the wait ends with that answer (`StopListener`).
//!
//! Lifetime: an [`Engine`] lives while any waiter of its client does; the last one's drop
//! stops and joins the workers (retired ones included). Workers hold the client, so freeing
//! the client first is safe.
//! Lock order: engine, then a token's, an inbox's or the gate's lock; never the other way. The
//! event loop's lock (`Shared::events`) is taken without the engine's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::api::error::{Code, Error};
use crate::budget::guard::listen::{Listening, StopListener};
use crate::budget::guard::policy::Stop;
use crate::budget::KeyDigest;
use crate::cancel::{Cancel, Watcher};
use crate::client::Client;
use crate::wait::events::{EventLoop, Work};
use crate::wait::inbox::{Finished, Inbox};
use crate::wait::waiter::Solve;
use crate::wait::Polling;

/// A wait in the engine's table.
pub(crate) struct Pending {
    pub polling: Polling,
    tag: u64,
    pub inbox: Arc<Inbox>,
    pub cancel: Option<Arc<Cancel>>,
    /// The registration with `cancel`, to forget when the wait ends.
    watch: Option<u64>,
}

/// A wait's cancels, as a request's bounds take them: its waiter's stop, and its own token if
/// it has one.
pub(crate) struct Cancels<'a> {
    tokens: [&'a Arc<Cancel>; 2],
    count: usize,
}

impl<'a> Cancels<'a> {
    pub fn as_slice(&self) -> &[&'a Arc<Cancel>] {
        &self.tokens[..self.count]
    }
}

/// The outcome of a poll that panicked: the wait ends with it, and the thread or the event
/// loop that ran it goes on.
pub(crate) fn panicked(
    panic: &(dyn std::any::Any + Send),
) -> Option<crate::client::Report<crate::api::answer::TaskState>> {
    Some(crate::client::CallStats::default().report(Err(panic_error(panic))))
}

/// The error a call that panicked ends with.
pub(crate) fn panic_error(panic: &(dyn std::any::Any + Send)) -> Error {
    let message = format!(
        "internal error (a bug in libcapmonster, please report it): {}",
        crate::api::error::panic_message(panic)
    );
    Error::new(Code::Internal, message)
}

impl Pending {
    /// The wait's polling, to poll, and its cancels.
    pub fn polling_and_cancels(&mut self) -> (&mut Polling, Cancels<'_>) {
        let Pending { polling, inbox, cancel, .. } = self;
        let cancels = match cancel {
            Some(cancel) => Cancels { tokens: [&inbox.stop, cancel], count: 2 },
            None => Cancels { tokens: [&inbox.stop, &inbox.stop], count: 1 },
        };
        (polling, cancels)
    }

    pub fn cancelled(&self) -> bool {
        self.inbox.stop.is_triggered() || self.cancel.as_ref().is_some_and(|cancel| cancel.is_triggered())
    }

    /// Hands the outcome to the waiter's inbox. Call without the engine lock.
    fn finish(mut self, report: crate::client::Report<crate::api::answer::TaskState>) {
        if let (Some(cancel), Some(key)) = (&self.cancel, self.watch) {
            cancel.unwatch(key);
        }
        self.polling.end(&report);
        self.inbox.deliver(Finished { tag: self.tag, task_id: self.polling.task_id(), report });
    }

    fn finish_cancelled(self) {
        let report = self.polling.cancelled();
        self.finish(report);
    }
}

struct State {
    /// Waits asleep until their timer; a wait in flight is held by its worker instead.
    waits: HashMap<u64, Pending>,
    /// (wake time, wait id), earliest first. Entries of waits that ended early stay until
    /// they come up or the heap is compacted (see `schedule`).
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    workers: Vec<JoinHandle<()>>,
    /// Workers that left because the cap was lowered, joined later (bounded: pruned of the
    /// finished ones at every retirement, so at most the number of workers ever over the cap).
    retired: Vec<JoinHandle<()>>,
    /// Workers started that have not yet taken the lock: each will lead if no one else does.
    starting: usize,
    /// Whether a worker is sleeping until the earliest timer.
    leader: bool,
    idle_followers: usize,
    stopping: bool,
    /// Whether the last due wait went to the event loop: then one worker (the timer thread)
    /// is all the engine needs.
    on_event_loop: bool,
}

/// Tables this big are shrunk once they are three-quarters empty, after a burst of waits.
const SHRINK_ABOVE: usize = 1024;

impl State {
    /// Gives memory back after a burst: 100,000 waits that ended should not keep their table.
    fn shrink_if_sparse(&mut self) {
        if self.waits.capacity() > SHRINK_ABOVE && self.waits.len() < self.waits.capacity() / 4 {
            self.waits.shrink_to(self.waits.len() * 2);
        }
        if self.timers.capacity() > SHRINK_ABOVE && self.timers.len() < self.timers.capacity() / 4 {
            self.timers.shrink_to(self.timers.len() * 2);
        }
    }
}

pub(crate) struct Shared {
    client: Arc<Client>,
    state: Mutex<State>,
    /// The event loop, when the client's waits go there (see `events.rs`). Lock order:
    /// the engine's lock is never held while this one is taken.
    events: Mutex<EventLoop>,
    leader_wake: Condvar,
    follower_wake: Condvar,
    next_id: AtomicU64,
    /// Set once at creation: lets a worker hand itself to `Cancel::watch`.
    this: Weak<Shared>,
}

/// The engine of one client's waiters. Dropping it stops and joins its workers.
pub(crate) struct Engine {
    shared: Arc<Shared>,
    /// The engine's registration with the account guard, for as long as it lives.
    _listening: Listening,
}

impl Engine {
    /// The client's engine, started if no waiter of the client is alive.
    pub fn of(client: &Arc<Client>) -> Arc<Engine> {
        let mut slot = client.engine.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(engine) = slot.upgrade() {
            return engine;
        }
        let shared = Arc::new_cyclic(|this| Shared {
            client: Arc::clone(client),
            state: Mutex::new(State {
                waits: HashMap::new(),
                timers: BinaryHeap::new(),
                workers: Vec::new(),
                retired: Vec::new(),
                starting: 0,
                leader: false,
                idle_followers: 0,
                stopping: false,
                on_event_loop: false,
            }),
            events: Mutex::new(EventLoop::default()),
            leader_wake: Condvar::new(),
            follower_wake: Condvar::new(),
            next_id: AtomicU64::new(1),
            this: this.clone(),
        });
        let listener: Weak<dyn StopListener> = Arc::downgrade(&shared) as Weak<Shared>;
        let engine = Arc::new(Engine { shared, _listening: crate::budget::guard::listen(listener) });
        *slot = Arc::downgrade(&engine);
        engine
    }

    /// The client whose waits this engine drives.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// What the engine's waits are added to, from a thread or from the event loop.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Queues a wait; never blocks on the network. The wait reports to `inbox`.
    pub fn add(
        &self,
        inbox: &Arc<Inbox>,
        polling: Polling,
        tag: u64,
        cancel: Option<Arc<Cancel>>,
    ) -> Result<(), Error> {
        self.shared.add(inbox, polling, tag, cancel)
    }

    /// Hands a solve to the client's event loop for its createTask; gives it back when the
    /// client's calls are not for the loop (off, a proxy) or the loop could not start.
    // The solve comes back by value, as a poll that falls back does.
    #[allow(clippy::result_large_err)]
    pub fn submit_solve(&self, inbox: &Arc<Inbox>, solve: Solve) -> Result<(), Solve> {
        if !self.shared.client.event_loop() {
            return Err(solve);
        }
        let work = Work::Solve { solve, inbox: Arc::clone(inbox) };
        match self.shared.events.lock().unwrap_or_else(PoisonError::into_inner).submit(&self.shared, work) {
            Ok(()) => Ok(()),
            Err(Work::Solve { solve, .. }) => Err(solve),
            // `submit` gives back what it was handed; were it a wait, it would go to the table.
            Err(Work::Poll { id, pending }) => {
                self.shared.after_poll(id, pending, None, crate::budget::guard::stops_told());
                Ok(())
            }
        }
    }

    /// Ends every sleeping wait of `inbox` as cancelled (its waits in flight are stopped by
    /// the inbox's stop token and end by themselves).
    pub fn cancel_waits_of(&self, inbox: &Arc<Inbox>) {
        let ended: Vec<Pending> = {
            let mut state = self.shared.lock();
            let ids: Vec<u64> = state
                .waits
                .iter()
                .filter(|(_, pending)| Arc::ptr_eq(&pending.inbox, inbox))
                .map(|(id, _)| *id)
                .collect();
            let ended = ids.iter().filter_map(|id| state.waits.remove(id)).collect();
            state.shrink_if_sparse();
            ended
        };
        for pending in ended {
            pending.finish_cancelled();
        }
    }

    /// Wakes the idle workers, so that those beyond a lowered cap retire.
    pub fn cap_changed(&self) {
        let _state = self.shared.lock();
        self.shared.leader_wake.notify_all();
        self.shared.follower_wake.notify_all();
    }

    /// Worker threads running now (retired ones not counted).
    pub fn workers(&self) -> usize {
        self.shared.lock().workers.len()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let workers = {
            let mut state = self.shared.lock();
            state.stopping = true;
            let mut workers = std::mem::take(&mut state.workers);
            workers.append(&mut state.retired);
            workers
        };
        self.shared.leader_wake.notify_all();
        self.shared.follower_wake.notify_all();
        for worker in workers {
            // A worker never panics outside catch_unwind; a join error has nothing to report.
            let _ = worker.join();
        }
        // The event loop ends once its waits in flight have ended (their inboxes stopped them).
        let event_loop = self.shared.events.lock().unwrap_or_else(PoisonError::into_inner).stop();
        if let Some(thread) = event_loop {
            let _ = thread.join();
        }
        // Waits left (none when every waiter shut down first) end with their inboxes.
        let left: Vec<Pending> = self.shared.lock().waits.drain().map(|(_, pending)| pending).collect();
        for pending in left {
            pending.finish_cancelled();
        }
    }
}

/// A sleeping wait's token triggered: end it now. (One in flight ends through its socket.)
impl Watcher for Shared {
    fn cancelled(&self, id: u64) {
        let pending = self.lock().waits.remove(&id);
        if let Some(pending) = pending {
            pending.finish_cancelled();
        }
    }
}

/// The guard stopped a key: if it is this client's, every sleeping wait is due now. Its poll
/// is answered by the guard (no request) and ends it; a poll the guard lets out after all (the
/// stop was ended meanwhile) is one early poll, within the wait's budget.
impl StopListener for Shared {
    fn key_stopped(&self, key: KeyDigest) {
        if self.client.digest() != key {
            return;
        }
        let mut state = self.lock();
        if state.waits.is_empty() || state.stopping {
            return;
        }
        let now = Instant::now();
        for pending in state.waits.values_mut() {
            pending.polling.poll_now(now);
        }
        // Rebuilt rather than pushed to: no stale entries, bounded as `schedule` bounds it.
        state.timers = state.waits.iter().map(|(id, pending)| Reverse((pending.polling.wake_at(), *id))).collect();
        if state.leader {
            self.leader_wake.notify_one();
        } else {
            self.find_leader(&mut state);
        }
    }
}

impl Shared {
    /// [`Engine::add`]; also called by the event loop for a solve whose task it created.
    pub(crate) fn add(
        &self,
        inbox: &Arc<Inbox>,
        polling: Polling,
        tag: u64,
        cancel: Option<Arc<Cancel>>,
    ) -> Result<(), Error> {
        let shared = self;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let mut pending = Pending { polling, tag, inbox: Arc::clone(inbox), cancel, watch: None };
        if let Some(cancel) = &pending.cancel {
            match cancel.watch(shared.this.clone() as Weak<dyn Watcher>, id) {
                Some(key) => pending.watch = Some(key),
                None => {
                    pending.finish_cancelled();
                    return Ok(());
                }
            }
        }
        // Added while its key is stopped (after the stop woke the waits asleep): due now too.
        if crate::budget::guard::key_stopped_here(shared.client.digest()) {
            pending.polling.poll_now(Instant::now());
        }
        let mut state = shared.lock();
        // A solve created on the event loop after the engine began to stop: it ends here.
        if state.stopping {
            drop(state);
            pending.finish_cancelled();
            return Ok(());
        }
        if state.workers.is_empty() {
            if let Err(error) = shared.spawn_worker(&mut state) {
                drop(state);
                if let (Some(cancel), Some(key)) = (&pending.cancel, pending.watch) {
                    cancel.unwatch(key);
                }
                return Err(error);
            }
        }
        // A trigger between the watch and now found no wait to end: look again.
        if pending.cancelled() {
            drop(state);
            pending.finish_cancelled();
            return Ok(());
        }
        let wake_at = pending.polling.wake_at();
        state.waits.insert(id, pending);
        shared.schedule(&mut state, id, wake_at);
        shared.find_leader(&mut state);
        Ok(())
    }

    /// The client whose waits this engine drives.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The most worker threads wanted now: one while due waits go to the event loop.
    fn worker_cap(&self, state: &State) -> usize {
        if state.on_event_loop {
            1
        } else {
            self.client.max_connections() as usize
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics under this lock; a poisoned table is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets a wait's timer, waking the leader when it is the new earliest. (Without a leader,
    /// a worker calling this leads next; `add` calls `find_leader`.)
    fn schedule(&self, state: &mut State, id: u64, wake_at: Instant) {
        // Entries of waits that ended early pile up only until they come up; bound them.
        if state.timers.len() >= 1024 && state.timers.len() > 2 * state.waits.len() {
            state.timers = state.waits.iter().map(|(id, pending)| Reverse((pending.polling.wake_at(), *id))).collect();
        } else {
            state.timers.push(Reverse((wake_at, id)));
        }
        let earliest = state.timers.peek().is_some_and(|Reverse((_, top))| *top == id);
        if earliest && state.leader {
            self.leader_wake.notify_one();
        }
    }

    /// Makes sure some worker watches the timers: an idle one is called, or one is started
    /// while the client's cap allows.
    fn find_leader(&self, state: &mut State) {
        if state.leader || state.starting > 0 || state.stopping {
            return;
        }
        if state.idle_followers > 0 {
            self.follower_wake.notify_one();
        } else if state.workers.len() < self.worker_cap(state) {
            // Without a new worker the busy ones take the timers when they are done.
            let _ = self.spawn_worker(state);
        }
    }

    fn spawn_worker(&self, state: &mut State) -> Result<(), Error> {
        let shared = self.this.upgrade().ok_or_else(|| Error::new(Code::Internal, "the waiter's engine is gone"))?;
        let worker = std::thread::Builder::new()
            .name("capmonster-wait".to_owned())
            .spawn(move || shared.work())
            .map_err(|error| Error::new(Code::Internal, format!("could not start a waiter thread: {error}")))?;
        state.workers.push(worker);
        state.starting += 1;
        Ok(())
    }

    /// Takes this worker off the list because the cap went below the number of workers; the
    /// handle waits in `retired` for a join. Someone else must lead now.
    fn retire(&self, state: &mut State) {
        let me = std::thread::current().id();
        if let Some(index) = state.workers.iter().position(|worker| worker.thread().id() == me) {
            let handle = state.workers.swap_remove(index);
            // Bounded: joining the finished ones keeps `retired` to the workers still exiting.
            let (finished, running): (Vec<_>, Vec<_>) =
                std::mem::take(&mut state.retired).into_iter().partition(|worker| worker.is_finished());
            state.retired = running;
            state.retired.push(handle);
            for worker in finished {
                let _ = worker.join();
            }
        }
        self.find_leader(state);
    }

    /// A worker: takes due waits and polls them, leading or following in between.
    fn work(&self) {
        let mut state = self.lock();
        state.starting -= 1;
        // Bounded by the engine's life: it ends when `stopping` is set, or when the cap
        // drops below the number of workers.
        loop {
            if state.stopping {
                return;
            }
            let now = Instant::now();
            match state.timers.peek().map(|Reverse(timer)| *timer) {
                Some((at, id)) if at <= now => {
                    state.timers.pop();
                    let Some(mut pending) = state.waits.remove(&id) else { continue };
                    state.shrink_if_sparse();
                    if self.client.event_loop() {
                        // Handed to the event loop, this thread goes on leading.
                        drop(state);
                        let handed = self.hand_to_event_loop(id, pending);
                        state = self.lock();
                        state.on_event_loop = handed.is_ok();
                        match handed {
                            Ok(()) => continue,
                            Err(back) => pending = back,
                        }
                    } else {
                        state.on_event_loop = false;
                    }
                    // Someone must watch the other timers while this one is busy.
                    if !state.timers.is_empty() {
                        self.find_leader(&mut state);
                    }
                    drop(state);
                    self.poll(id, pending);
                    state = self.lock();
                }
                next => {
                    if state.workers.len() > self.worker_cap(&state) {
                        self.retire(&mut state);
                        return;
                    }
                    if state.leader {
                        state.idle_followers += 1;
                        state = self.follower_wake.wait(state).unwrap_or_else(PoisonError::into_inner);
                        state.idle_followers -= 1;
                    } else {
                        state.leader = true;
                        state = match next {
                            Some((at, _)) => {
                                self.leader_wake.wait_timeout(state, at - now).unwrap_or_else(PoisonError::into_inner).0
                            }
                            None => self.leader_wake.wait(state).unwrap_or_else(PoisonError::into_inner),
                        };
                        state.leader = false;
                    }
                }
            }
        }
    }

    /// One turn of a wait: a poll, then its outcome delivered or its next timer set.
    fn poll(&self, id: u64, mut pending: Pending) {
        let told = crate::budget::guard::stops_told();
        let outcome = if pending.cancelled() {
            Some(pending.polling.cancelled())
        } else {
            let (polling, cancels) = pending.polling_and_cancels();
            let cancels = cancels.as_slice();
            let client = &self.client;
            // A panic must not kill the worker and lose the wait: it ends the wait instead.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| polling.step(client, cancels)))
                .unwrap_or_else(|panic| panicked(panic.as_ref()))
        };
        self.after_poll(id, pending, outcome, told);
    }

    /// Hands a due wait to the event loop; gives it back when it must go on the threads.
    // The wait comes back by value: boxing it would cost every poll that falls back an allocation.
    #[allow(clippy::result_large_err)]
    fn hand_to_event_loop(&self, id: u64, pending: Pending) -> Result<(), Pending> {
        let Some(shared) = self.this.upgrade() else { return Err(pending) };
        match self.events.lock().unwrap_or_else(PoisonError::into_inner).submit(&shared, Work::Poll { id, pending }) {
            Ok(()) => Ok(()),
            Err(Work::Poll { pending, .. }) => Err(pending),
            // `submit` gives back what it was handed; were it a solve, it would end here.
            Err(Work::Solve { solve, inbox }) => {
                solve.failed(&inbox, Error::new(Code::Internal, "the solve could not be handed to the event loop"));
                Ok(())
            }
        }
    }

    /// After a poll (on a worker or on the event loop): the wait's outcome delivered, or its
    /// next timer set. `told`: the guard's count of key stops before the poll.
    pub(crate) fn after_poll(
        &self,
        id: u64,
        mut pending: Pending,
        outcome: Option<crate::client::Report<crate::api::answer::TaskState>>,
        told: u64,
    ) {
        match outcome {
            Some(report) => pending.finish(report),
            None => {
                let mut state = self.lock();
                // Checked under the lock: a trigger after this finds the wait in the table.
                if state.stopping || pending.cancelled() {
                    drop(state);
                    pending.finish_cancelled();
                    return;
                }
                // A stop of this key told while this poll was out (it missed the table): due at
                // once. (The store is read only when some key stop was told meanwhile.)
                let guard = crate::budget::guard::global();
                if crate::budget::guard::stops_told() != told && guard.stop(self.client.digest(), Stop::Key).is_some() {
                    pending.polling.poll_now(Instant::now());
                }
                let wake_at = pending.polling.wake_at();
                state.waits.insert(id, pending);
                self.schedule(&mut state, id, wake_at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pending wait's share of the engine: its entry in the table (with the hash table's
    /// control byte and spare capacity up to 8/7) and its timer (up to twice over while the
    /// heap holds stale entries). The budget of the contract is 1 KiB.
    #[test]
    fn a_pending_wait_costs_far_less_than_a_kibibyte() {
        let entry = std::mem::size_of::<(u64, Pending)>() + 1;
        let timer = std::mem::size_of::<Reverse<(Instant, u64)>>();
        let worst = entry * 8 / 7 * 2 + timer * 2 * 2;
        assert!(worst <= 1024, "{worst} bytes (entry {entry}, timer {timer})");
        assert!(std::mem::size_of::<Pending>() <= 256, "{}", std::mem::size_of::<Pending>());
        eprintln!("Pending: {} bytes, worst share {worst} bytes", std::mem::size_of::<Pending>());
    }
}
