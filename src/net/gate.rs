//! The cap on a client's connections: at most `max` requests in flight at once.
//!
//! Every request, from a blocking call, a waiter's worker or the event loop (HTTP/1.1), takes a
//! permit before it is sent and gives it back when its answer is read or it fails. The pool
//! keeps at most `max` idle connections and ureq takes a pooled one before opening another, so
//! the client never holds more than `max` connections. A caller beyond the cap queues here,
//! within its deadline, and a cancel wakes it at once (the gate watches the caller's tokens
//! while it queues).
//!
//! Blocking callers queue on a condition variable; the event loop's requests queue as futures
//! ([`Gate::acquire_async`]), their wakers in a queue beside it, oldest first. The uncontended
//! path makes no system call and allocates nothing. A permit given back while others queue is
//! handed to a queuer (no newcomer can take it in between), of the same path when it has
//! one: its connection has just gone idle in that path's pool, where the next request of the
//! path finds it, whereas the other path would have to close a connection and open one. But
//! while both paths queue, a path holding half the permits or more hands its permits to the
//! other: so neither starves, and both busy, they settle at half the cap each, each on its
//! own connections, with none closed and reopened for the other.
//!
//! The gate also counts the connections open, of both paths: each holds a [`ConnSlot`] from
//! before it connects until it closes, at most `max` at once. ureq's pool and the event loop's
//! (hyper's) are two pools, so a path that must open a connection at the cap makes room: it
//! asks an idle connection ([`Shed`]) to close, the other path's first. One that holds a
//! request permit and finds none to reuse can always find one in time, since requests in flight
//! are at most `max` too: if every connection is open and its request has none, one connection
//! carries no request. The event loop's first connection takes the place of an idle one of the
//! blocking pool, if there is one, so that a waiter starting on a client that made a blocking
//! call does not double its sockets. But a loop connect at the cap closes none while the loop
//! has a connection for each of its permits: one of them is on its way back to its pool.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::cancel::{Cancel, Watcher};

#[derive(Debug)]
struct Slots {
    max: u32,
    used: u32,
    /// Callers waiting for a permit: a permit given back wakes one only when there is one (a
    /// wake-up is a system call, which the uncontended path never makes).
    queued: u32,
    /// The event loop's requests waiting for a permit: (ticket, waker), in ticket order, so
    /// the oldest first. Bounded by the event loop's requests waiting at once (each is here at
    /// most once; its own permits bound them).
    wakers: VecDeque<(u64, Waker)>,
    next_ticket: u64,
    /// Permits handed to a path's queuers and not yet taken, by [`Side`] (counted in `used`).
    handed: [u32; 2],
    /// Of `used`, each path's ([`Side`]), handed ones included.
    used_by: [u32; 2],
    /// Connections open (or connecting), both paths.
    open: u32,
    /// Of them, the event loop's.
    open_events: u32,
    /// The most the event loop may open, `1..=max`: its channel's allowance of HTTP/1.1
    /// requests in flight, which grows with the server's round trip (`net/events/admission.rs`).
    events_allowed: u32,
    /// Connections that may be asked to close, by [`Side`]: both paths' open ones, and
    /// blocking ones shed but not yet dropped by ureq's pool. Kept apart so that the event
    /// loop, which closes only blocking ones, never walks its own thousands. A list is pruned
    /// of closed ones when it reaches twice the cap (plus [`PRUNE_SLACK`]), so each insert
    /// costs O(1) amortized and a list holds at most 2 x `max` + [`PRUNE_SLACK`] entries.
    connections: [Vec<Weak<dyn Shed>>; 2],
}

/// Entries a list of connections may hold beyond twice the cap before it is pruned.
const PRUNE_SLACK: usize = 16;

/// Whom a permit given back wakes.
enum Wake {
    Nobody,
    Blocking,
    Future(Waker),
}

impl Slots {
    /// A permit given back by a request of `side`: handed to a queuer (see the module docs),
    /// or free.
    fn give_back(&mut self, side: Side) -> Wake {
        self.used_by[side as usize] -= 1;
        let blocking = self.queued > self.handed[Side::Blocking as usize];
        let events = !self.wakers.is_empty();
        let to = match (blocking, events) {
            (false, false) => {
                self.used -= 1;
                return Wake::Nobody;
            }
            (true, false) => Side::Blocking,
            (false, true) => Side::Events,
            (true, true) if self.used_by[side as usize] >= self.max.div_ceil(2) => side.other(),
            (true, true) => side,
        };
        self.used_by[to as usize] += 1;
        self.handed[to as usize] += 1;
        match to {
            Side::Blocking => Wake::Blocking,
            Side::Events => match self.wakers.pop_front() {
                Some((_, waker)) => Wake::Future(waker),
                None => Wake::Nobody,
            },
        }
    }

    /// A queuer of `side` left without the permit handed to its path: the permits handed
    /// beyond the path's queuers go back.
    fn surplus(&mut self, side: Side, waiting: u32) -> Vec<Wake> {
        let mut wakes = Vec::new();
        // Bounded by the handed permits, each given back once.
        while self.handed[side as usize] > waiting {
            self.handed[side as usize] -= 1;
            wakes.push(self.give_back(side));
        }
        wakes
    }

    /// Where `ticket` is (or would be) in the queue of wakers.
    fn find(&self, ticket: u64) -> Result<usize, usize> {
        self.wakers.binary_search_by_key(&ticket, |(queued, _)| *queued)
    }
}

#[derive(Debug)]
pub(crate) struct Gate {
    slots: Mutex<Slots>,
    freed: Condvar,
    /// Where blocking connects wait for a connection slot.
    closed: Condvar,
    /// Where the event loop's connects wait for a connection slot: each slot given back, and
    /// each blocking connection going idle (one the loop may close), wakes one.
    slot_freed: tokio::sync::Notify,
    /// Connects waiting for a slot now, by [`Side`], read without the lock by a connection
    /// going idle, so that neither path's requests pay a lock or a wake-up for it when no
    /// connect waits.
    slot_waiters: [AtomicU32; 2],
}

/// Which path a request or connection is on (which pool its connection is in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Blocking = 0,
    Events = 1,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Blocking => Side::Events,
            Side::Events => Side::Blocking,
        }
    }
}

/// A connection the gate may ask to close, so that another opens within the cap.
pub(crate) trait Shed: Send + Sync {
    /// Closes the connection if it carries no request now (the event loop's: as soon as its
    /// loop sees the ask), and says whether it will; `false` when it is busy or already closing.
    fn shed(&self) -> bool;
}

/// A connection's place under the cap, from before it connects until it closes.
pub(crate) struct ConnSlot {
    gate: Arc<Gate>,
    side: Side,
    released: AtomicBool,
}

impl ConnSlot {
    /// Lists the connection as one the gate may ask to close.
    pub fn register(&self, connection: Weak<dyn Shed>) {
        let mut slots = self.gate.lock();
        let bound = 2 * slots.max as usize + PRUNE_SLACK;
        let known = &mut slots.connections[self.side as usize];
        if known.len() >= bound {
            known.retain(|known| known.strong_count() > 0);
        }
        known.push(connection);
    }

    /// Whether the place was given back (the connection is closed).
    pub fn released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    /// Gives the place back (once): the connection is closed, or its socket is.
    pub fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        {
            let mut slots = self.gate.lock();
            slots.open -= 1;
            if self.side == Side::Events {
                slots.open_events -= 1;
            }
        }
        self.gate.closed.notify_one();
        self.gate.slot_freed.notify_one();
    }

    /// The connection carries no request any more: connects waiting at the cap that may close
    /// it look again (blocking ones close either path's; the event loop's only blocking ones).
    /// Cheap when none waits (two atomic loads).
    pub fn idle_now(&self) {
        let gate = &self.gate;
        if gate.slot_waiters[Side::Blocking as usize].load(Ordering::Relaxed) > 0 {
            // The lock orders this with a waiter between its look and its wait.
            drop(gate.lock());
            gate.closed.notify_all();
        }
        if self.side == Side::Blocking && gate.slot_waiters[Side::Events as usize].load(Ordering::Relaxed) > 0 {
            gate.slot_freed.notify_one();
        }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.release();
    }
}

/// How often a blocking connect waiting at the cap asks again for a connection to close (a busy
/// one asked in vain may be idle by then; an idle one going idle wakes it sooner).
const ASK_AGAIN: Duration = Duration::from_millis(100);

/// Why no permit was granted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Deadline,
    Cancelled,
}

/// One request's right to a connection; returned on drop.
pub(crate) struct Permit<'a> {
    gate: &'a Gate,
    queued: bool,
}

impl Permit<'_> {
    /// Whether the caller had to wait for it (its time left is then smaller).
    pub fn queued(&self) -> bool {
        self.queued
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.gate.release(Side::Blocking);
    }
}

/// An event-loop request's right to a connection; returned on drop.
pub(crate) struct OwnedPermit {
    gate: Arc<Gate>,
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        self.gate.release(Side::Events);
    }
}

/// The future of [`Gate::acquire_async`]: a permit once one is free. Dropped before (a deadline
/// or a cancel won the race), it leaves the queue, and passes on a wake-up it was given.
pub(crate) struct Acquire<'a> {
    gate: &'a Arc<Gate>,
    /// Its place in the queue once it had to wait.
    ticket: Option<u64>,
    done: bool,
}

impl Future for Acquire<'_> {
    type Output = OwnedPermit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OwnedPermit> {
        let gate = self.gate;
        let mut slots = gate.lock();
        let handed = self.ticket.is_some() && slots.handed[Side::Events as usize] > 0;
        if handed || slots.used < slots.max {
            if handed {
                slots.handed[Side::Events as usize] -= 1;
            } else {
                slots.used += 1;
                slots.used_by[Side::Events as usize] += 1;
            }
            if let Some(Ok(place)) = self.ticket.map(|ticket| slots.find(ticket)) {
                slots.wakers.remove(place);
            }
            self.done = true;
            return Poll::Ready(OwnedPermit { gate: Arc::clone(gate) });
        }
        let ticket = match self.ticket {
            Some(ticket) => ticket,
            None => {
                slots.next_ticket += 1;
                self.ticket = Some(slots.next_ticket);
                slots.next_ticket
            }
        };
        // Woken and beaten to the permit, it queues again in its own place.
        match slots.find(ticket) {
            Ok(place) if slots.wakers[place].1.will_wake(cx.waker()) => {}
            Ok(place) => slots.wakers[place].1 = cx.waker().clone(),
            Err(place) => slots.wakers.insert(place, (ticket, cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.filter(|_| !self.done) else { return };
        let wakes = {
            let mut slots = self.gate.lock();
            match slots.find(ticket) {
                Ok(place) => {
                    slots.wakers.remove(place);
                    Vec::new()
                }
                // Woken for a permit it will not take: the permit goes on.
                Err(_) if slots.handed[Side::Events as usize] > 0 => slots.surplus(Side::Events, 0),
                Err(_) => Vec::new(),
            }
        };
        self.gate.wake(wakes);
    }
}

/// What a blocking connect waiting for a slot is stopped by: registered as its shutdown
/// handle (which the attempt's cancels and ureq's own shutdown reach), it wakes the wait.
pub(crate) struct SlotWait {
    gate: Weak<Gate>,
    stopped: AtomicBool,
}

impl SlotWait {
    pub fn new(gate: &Arc<Gate>) -> SlotWait {
        SlotWait { gate: Arc::downgrade(gate), stopped: AtomicBool::new(false) }
    }

    /// Stops the wait at once.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        if let Some(gate) = self.gate.upgrade() {
            // The lock orders this with a waiter between its check and its wait.
            let _slots = gate.lock();
            gate.closed.notify_all();
        }
    }
}

impl Watcher for Gate {
    fn cancelled(&self, _token: u64) {
        // The lock orders this with a queuer between its check and its wait.
        let _slots = self.lock();
        self.freed.notify_all();
    }
}

impl Gate {
    pub fn new(max: u32) -> Arc<Gate> {
        let slots = Slots {
            max: max.max(1),
            used: 0,
            queued: 0,
            wakers: VecDeque::new(),
            next_ticket: 0,
            handed: [0; 2],
            used_by: [0; 2],
            open: 0,
            open_events: 0,
            events_allowed: u32::MAX,
            connections: [Vec::new(), Vec::new()],
        };
        Arc::new(Gate {
            slots: Mutex::new(slots),
            freed: Condvar::new(),
            closed: Condvar::new(),
            slot_freed: tokio::sync::Notify::new(),
            slot_waiters: [0.into(), 0.into()],
        })
    }

    /// A connection slot if one is free now. The event loop's first one takes the place of
    /// an idle blocking connection when there is one (see the module docs).
    fn try_open(self: &Arc<Self>, side: Side) -> Option<ConnSlot> {
        let mut slots = self.lock();
        if side == Side::Events && slots.open_events >= slots.events_allowed {
            return None;
        }
        let first_on_loop = side == Side::Events && slots.open_events == 0 && slots.open > 0;
        // The loop's HTTP/1.1 requests hold permits (`used_by`), each busy connection carries
        // one, and the request connecting has none yet: with as many loop connections as
        // permits, one is idle or on its way back to hyper's pool (a finished request gives its
        // permit to the next before its connection is back). That one will serve the request;
        // closing the other path's for it would make that path close one of the loop's in turn.
        let own_coming = side == Side::Events
            && slots.used_by[Side::Events as usize] > 0
            && slots.open_events >= slots.used_by[Side::Events as usize];
        if slots.open >= slots.max || first_on_loop {
            drop(slots);
            if own_coming || (!self.shed_one(side) && !first_on_loop) {
                return None;
            }
            slots = self.lock();
            if slots.open >= slots.max {
                return None;
            }
        }
        slots.open += 1;
        if side == Side::Events {
            slots.open_events += 1;
        }
        Some(ConnSlot { gate: Arc::clone(self), side, released: AtomicBool::new(false) })
    }

    /// Asks one idle connection to close, the other path's first; whether one will. The event
    /// loop never closes its own: hyper's pool starts a connect while it waits for a pooled
    /// connection to come back, and takes whichever comes first, so an idle connection of the
    /// loop is the one its request is about to get back; closing it would only churn. Its
    /// connect waits for a slot instead, and is dropped when the pool wins.
    fn shed_one(&self, side: Side) -> bool {
        // Upgraded under the lock, asked outside it (a blocking one gives its slot back at once).
        let known: Vec<Arc<dyn Shed>> = {
            let slots = self.lock();
            let own = match side {
                Side::Blocking => &slots.connections[Side::Blocking as usize][..],
                Side::Events => &[][..],
            };
            slots.connections[side.other() as usize].iter().chain(own).filter_map(Weak::upgrade).collect()
        };
        known.iter().any(|connection| connection.shed())
    }

    /// A connection slot for a blocking connect if one is free now (or made free at once).
    pub fn try_open_blocking(self: &Arc<Self>) -> Option<ConnSlot> {
        self.try_open(Side::Blocking)
    }

    /// A connection slot for a blocking connect, waiting until `deadline` (`None`: none) or
    /// until `stopped` says the attempt was cancelled (its [`SlotWait`] wakes the wait).
    pub fn open_blocking(self: &Arc<Self>, deadline: Option<Instant>, stopped: &SlotWait) -> Result<ConnSlot, Refused> {
        if let Some(slot) = self.try_open(Side::Blocking) {
            return Ok(slot);
        }
        let waiters = &self.slot_waiters[Side::Blocking as usize];
        waiters.fetch_add(1, Ordering::Relaxed);
        let outcome = self.wait_for_slot(deadline, stopped);
        waiters.fetch_sub(1, Ordering::Relaxed);
        outcome
    }

    fn wait_for_slot(self: &Arc<Self>, deadline: Option<Instant>, stopped: &SlotWait) -> Result<ConnSlot, Refused> {
        // Bounded by the deadline (or the cancel): each turn waits at most ASK_AGAIN.
        loop {
            if stopped.stopped.load(Ordering::Acquire) {
                return Err(Refused::Cancelled);
            }
            if let Some(slot) = self.try_open(Side::Blocking) {
                return Ok(slot);
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(deadline) if now >= deadline => return Err(Refused::Deadline),
                Some(deadline) => (deadline - now).min(ASK_AGAIN),
                None => ASK_AGAIN,
            };
            let slots = self.lock();
            if slots.open < slots.max || stopped.stopped.load(Ordering::Acquire) {
                continue;
            }
            drop(self.closed.wait_timeout(slots, wait).unwrap_or_else(PoisonError::into_inner));
        }
    }

    /// Sets how many connections the event loop may open (`1..=max` in effect); connects
    /// waiting for a slot look again.
    pub fn allow_events(&self, allowed: u32) {
        self.lock().events_allowed = allowed.max(1);
        self.slot_freed.notify_waiters();
    }

    /// A connection slot for the event loop's connect, waiting until `deadline`, or until
    /// `unneeded` ends (the request that started the connect has a connection already):
    /// [`Refused::Cancelled`] then.
    pub async fn open_async(
        self: &Arc<Self>,
        deadline: Instant,
        unneeded: impl Future<Output = ()>,
    ) -> Result<ConnSlot, Refused> {
        if let Some(slot) = self.try_open(Side::Events) {
            return Ok(slot);
        }
        let waiters = &self.slot_waiters[Side::Events as usize];
        waiters.fetch_add(1, Ordering::Relaxed);
        /// Counts the connect out of the waiters however the wait ends (a dropped future too).
        struct Waiting<'a>(&'a AtomicU32);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _waiting = Waiting(waiters);
        // No asking again on a timer, unlike a blocking connect: whatever could let this one
        // go wakes it (a slot given back, a blocking connection going idle, a raised cap). So
        // a connect that lost its race to a pooled connection (hyper's pool goes on with it in
        // the background) costs nothing while it waits: at the cap there may be thousands.
        let expiry = tokio::time::sleep_until(deadline.into());
        let mut expiry = std::pin::pin!(expiry);
        let mut unneeded = std::pin::pin!(unneeded);
        // Bounded by the deadline.
        loop {
            // Listening before the look: a slot given back in between is not missed. A wake
            // this connect does not use (it is dropped before it looks) goes to the next one
            // that waits (tokio's `Notify`).
            let freed = self.slot_freed.notified();
            let mut freed = std::pin::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_open(Side::Events) {
                return Ok(slot);
            }
            tokio::select! {
                _ = freed => {}
                _ = &mut expiry => return Err(Refused::Deadline),
                _ = &mut unneeded => return Err(Refused::Cancelled),
            }
        }
    }

    /// Gives a permit of `side` back: to a queuer if any (see the module docs).
    fn release(&self, side: Side) {
        let wake = self.lock().give_back(side);
        self.wake([wake]);
    }

    fn wake(&self, wakes: impl IntoIterator<Item = Wake>) {
        for wake in wakes {
            match wake {
                Wake::Nobody => {}
                Wake::Blocking => self.freed.notify_one(),
                Wake::Future(waker) => waker.wake(),
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn max(&self) -> u32 {
        self.lock().max
    }

    pub fn set_max(&self, max: u32) {
        let wakers: Vec<Waker> = {
            let mut slots = self.lock();
            slots.max = max.max(1);
            slots.wakers.iter().map(|(_, waker)| waker.clone()).collect()
        };
        self.freed.notify_all();
        // A raised cap may let connects waiting for a slot go too.
        self.closed.notify_all();
        self.slot_freed.notify_waiters();
        // A raised cap may let several queued futures go: each looks again.
        wakers.into_iter().for_each(Waker::wake);
    }

    /// A permit for the event loop if one is free now.
    pub fn try_acquire_owned(self: &Arc<Self>) -> Option<OwnedPermit> {
        let mut slots = self.lock();
        (slots.used < slots.max).then(|| {
            slots.used += 1;
            slots.used_by[Side::Events as usize] += 1;
            OwnedPermit { gate: Arc::clone(self) }
        })
    }

    /// A permit for the event loop: ready at once when one is free, else when one is given
    /// back. Deadlines and cancels are the caller's (`select!` it with them): dropping the
    /// future leaves the queue.
    pub fn acquire_async(self: &Arc<Self>) -> Acquire<'_> {
        Acquire { gate: self, ticket: None, done: false }
    }

    /// Requests in flight now.
    pub fn in_use(&self) -> u32 {
        self.lock().used
    }

    /// A permit, waiting for one until `deadline` unless a token in `cancels` triggers.
    pub fn acquire(self: &Arc<Self>, deadline: Instant, cancels: &[&Arc<Cancel>]) -> Result<Permit<'_>, Refused> {
        let mut slots = self.lock();
        if slots.used < slots.max {
            slots.used += 1;
            slots.used_by[Side::Blocking as usize] += 1;
            return Ok(Permit { gate: self, queued: false });
        }
        drop(slots);
        // Contended: watch the tokens so that a trigger wakes this queuer.
        let keys: Vec<Option<u64>> =
            cancels.iter().map(|cancel| cancel.watch(Arc::downgrade(self) as Weak<dyn Watcher>, 0)).collect();
        let outcome = self.queue(deadline, cancels);
        for (cancel, key) in cancels.iter().zip(keys) {
            if let Some(key) = key {
                cancel.unwatch(key);
            }
        }
        outcome
    }

    fn queue(&self, deadline: Instant, cancels: &[&Arc<Cancel>]) -> Result<Permit<'_>, Refused> {
        let mut slots = self.lock();
        // A queuer leaving without its permit gives back any handed to it.
        let leave = |mut slots: MutexGuard<'_, Slots>, refused: Refused| {
            let waiting = slots.queued;
            let wakes = slots.surplus(Side::Blocking, waiting);
            drop(slots);
            self.wake(wakes);
            Err(refused)
        };
        loop {
            if cancels.iter().any(|cancel| cancel.is_triggered()) {
                return leave(slots, Refused::Cancelled);
            }
            if slots.handed[Side::Blocking as usize] > 0 {
                slots.handed[Side::Blocking as usize] -= 1;
                return Ok(Permit { gate: self, queued: true });
            }
            if slots.used < slots.max {
                slots.used += 1;
                slots.used_by[Side::Blocking as usize] += 1;
                return Ok(Permit { gate: self, queued: true });
            }
            let now = Instant::now();
            if now >= deadline {
                return leave(slots, Refused::Deadline);
            }
            slots.queued += 1;
            slots = match self.freed.wait_timeout(slots, deadline - now) {
                Ok((slots, _)) => slots,
                Err(poisoned) => poisoned.into_inner().0,
            };
            slots.queued -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_cap_holds_and_queuers_get_freed_permits() {
        let gate = Gate::new(2);
        let far = Instant::now() + Duration::from_secs(10);
        let a = gate.acquire(far, &[]).unwrap();
        let _b = gate.acquire(far, &[]).unwrap();
        assert_eq!(gate.acquire(Instant::now() + Duration::from_millis(20), &[]).err(), Some(Refused::Deadline));
        std::thread::scope(|scope| {
            let queuer = scope.spawn(|| gate.acquire(far, &[]).map(drop));
            std::thread::sleep(Duration::from_millis(30));
            drop(a);
            assert_eq!(queuer.join().unwrap(), Ok(()));
        });
        assert_eq!(gate.in_use(), 1);
    }

    #[test]
    fn a_cancel_wakes_a_queuer_at_once() {
        let gate = Gate::new(1);
        let _held = gate.acquire(Instant::now(), &[]).unwrap();
        let cancel = Arc::new(Cancel::new());
        std::thread::scope(|scope| {
            let queuer = scope.spawn(|| {
                let start = Instant::now();
                let refused = gate.acquire(start + Duration::from_secs(30), &[&cancel]).err();
                (refused, start.elapsed())
            });
            std::thread::sleep(Duration::from_millis(30));
            cancel.trigger();
            let (refused, waited) = queuer.join().unwrap();
            assert_eq!(refused, Some(Refused::Cancelled));
            assert!(waited < Duration::from_secs(5), "{waited:?}");
        });
        assert_eq!(cancel.watching(), 0);
    }

    fn event_loop() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
    }

    /// `Ok(queued)`, or why no permit came, as the event loop's link asks for one.
    async fn permit_within(gate: &Arc<Gate>, wait: Duration, cancel: &Arc<Cancel>) -> Result<OwnedPermit, Refused> {
        let cancels = [cancel];
        tokio::select! {
            permit = gate.acquire_async() => Ok(permit),
            _ = tokio::time::sleep(wait) => Err(Refused::Deadline),
            _ = crate::net::events::cancelled(&cancels) => Err(Refused::Cancelled),
        }
    }

    #[test]
    fn a_queued_future_gets_a_permit_a_blocking_caller_gives_back() {
        let gate = Gate::new(1);
        let held = gate.acquire(Instant::now(), &[]).unwrap();
        let cancel = Arc::new(Cancel::new());
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                drop(held);
            });
            let start = Instant::now();
            let permit = event_loop().block_on(permit_within(&gate, Duration::from_secs(10), &cancel)).unwrap();
            assert!(start.elapsed() >= Duration::from_millis(40), "{:?}", start.elapsed());
            assert_eq!(gate.in_use(), 1);
            // And a blocking caller queued behind the future gets it back in turn.
            let far = Instant::now() + Duration::from_secs(10);
            let gate = &gate;
            let blocking = scope.spawn(move || gate.acquire(far, &[]).map(|permit| permit.queued()));
            std::thread::sleep(Duration::from_millis(30));
            drop(permit);
            assert_eq!(blocking.join().unwrap(), Ok(true));
        });
        assert_eq!(gate.in_use(), 0);
        assert!(gate.lock().wakers.is_empty());
    }

    #[test]
    fn a_queued_future_keeps_its_deadline_and_its_cancel() {
        let gate = Gate::new(1);
        let _held = gate.acquire(Instant::now(), &[]).unwrap();
        let runtime = event_loop();
        let cancel = Arc::new(Cancel::new());
        let start = Instant::now();
        let refused = runtime.block_on(permit_within(&gate, Duration::from_millis(60), &cancel)).err();
        assert_eq!(refused, Some(Refused::Deadline));
        assert!(start.elapsed() >= Duration::from_millis(55) && start.elapsed() < Duration::from_secs(5));
        assert!(gate.lock().wakers.is_empty(), "a future past its deadline left the queue");
        let trigger = Arc::clone(&cancel);
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            (trigger.trigger(), Instant::now()).1
        });
        let refused = runtime.block_on(permit_within(&gate, Duration::from_secs(30), &cancel)).err();
        let triggered = canceller.join().unwrap();
        assert_eq!(refused, Some(Refused::Cancelled));
        assert!(triggered.elapsed() < Duration::from_secs(1), "{:?}", triggered.elapsed());
        assert!(gate.lock().wakers.is_empty());
        assert_eq!(gate.in_use(), 1);
    }

    #[test]
    fn queued_futures_go_oldest_first_and_a_dropped_one_passes_its_wake_up_on() {
        use std::task::Wake;
        /// Counts its wake-ups.
        struct Count(std::sync::atomic::AtomicU32);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let woken = |count: &Arc<Count>| count.0.load(std::sync::atomic::Ordering::Relaxed);
        let gate = Gate::new(1);
        let held = gate.acquire(Instant::now(), &[]).unwrap();
        let (first, second) = (Arc::new(Count(0.into())), Arc::new(Count(0.into())));
        let (first_waker, second_waker) = (Waker::from(Arc::clone(&first)), Waker::from(Arc::clone(&second)));
        let mut older = Box::pin(gate.acquire_async());
        let mut newer = Box::pin(gate.acquire_async());
        assert!(older.as_mut().poll(&mut Context::from_waker(&first_waker)).is_pending());
        assert!(newer.as_mut().poll(&mut Context::from_waker(&second_waker)).is_pending());
        assert_eq!(gate.lock().wakers.len(), 2);
        drop(held);
        assert_eq!((woken(&first), woken(&second)), (1, 0), "the oldest is woken first");
        // Its deadline came at the same moment: it goes without its permit, and the next in
        // line is woken instead of waiting for a permit that is already free.
        drop(older);
        assert_eq!(woken(&second), 1);
        assert!(matches!(newer.as_mut().poll(&mut Context::from_waker(&second_waker)), Poll::Ready(_)));
        assert!(gate.lock().wakers.is_empty());
        assert_eq!(gate.in_use(), 0, "the permit went back when the future's output was dropped");
    }

    #[test]
    fn a_raised_cap_lets_queued_futures_go() {
        let gate = Gate::new(1);
        let _held = gate.acquire(Instant::now(), &[]).unwrap();
        let cancel = Arc::new(Cancel::new());
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(30));
                gate.set_max(3);
            });
            let both = event_loop().block_on(async {
                tokio::join!(
                    permit_within(&gate, Duration::from_secs(10), &cancel),
                    permit_within(&gate, Duration::from_secs(10), &cancel)
                )
            });
            assert!(both.0.is_ok() && both.1.is_ok());
            assert_eq!(gate.in_use(), 3);
        });
    }

    #[test]
    fn both_paths_queuing_settle_at_half_the_permits_each() {
        let gate = Gate::new(4);
        let mut slots = gate.lock();
        // Blocking calls hold all 4 permits; 3 blocking callers and 3 futures queue.
        (slots.used, slots.used_by, slots.queued) = (4, [4, 0], 3);
        for ticket in 1..=3 {
            slots.wakers.push_back((ticket, Waker::noop().clone()));
        }
        let mut handed_to = Vec::new();
        for _ in 0..4 {
            // Each released permit of a blocking call; a handed one is taken at once.
            let wake = slots.give_back(Side::Blocking);
            handed_to.push(match wake {
                Wake::Blocking => {
                    slots.handed[0] -= 1;
                    slots.queued -= 1;
                    Side::Blocking
                }
                Wake::Future(_) => {
                    slots.handed[1] -= 1;
                    Side::Events
                }
                Wake::Nobody => panic!("a permit went free with queuers"),
            });
        }
        // Blocking held half or more until it had given 2 up; then it keeps its own.
        assert_eq!(handed_to, [Side::Events, Side::Events, Side::Blocking, Side::Blocking]);
        assert_eq!((slots.used, slots.used_by), (4, [2, 2]));
        // An events permit given back with a future queued goes to that future: its path
        // holds less than half.
        assert!(matches!(slots.give_back(Side::Events), Wake::Future(_)));
        assert_eq!(slots.used_by, [2, 2]);
    }

    /// A connection of the test's own: idle or not, it gives its slot back when shed.
    struct Fake {
        idle: bool,
        slot: Mutex<Option<ConnSlot>>,
    }

    impl Shed for Fake {
        fn shed(&self) -> bool {
            self.idle && self.slot.lock().unwrap().take().is_some()
        }
    }

    fn fake(gate: &Arc<Gate>, side: Side, idle: bool) -> Arc<Fake> {
        let slot = match side {
            Side::Blocking => gate.try_open_blocking().unwrap(),
            Side::Events => event_loop().block_on(gate.open_async(Instant::now(), std::future::pending())).unwrap(),
        };
        let connection = Arc::new(Fake { idle, slot: Mutex::new(None) });
        slot.register(Arc::downgrade(&connection) as Weak<dyn Shed>);
        *connection.slot.lock().unwrap() = Some(slot);
        connection
    }

    #[test]
    fn a_connect_at_the_cap_closes_an_idle_connection_of_the_other_path_first() {
        let gate = Gate::new(2);
        let busy_blocking = fake(&gate, Side::Blocking, false);
        let idle_events = fake(&gate, Side::Events, true);
        let _own = gate.try_open_blocking().expect("the idle connection of the loop made room");
        assert!(idle_events.slot.lock().unwrap().is_none(), "it was closed");
        assert!(busy_blocking.slot.lock().unwrap().is_some(), "a busy one is never closed");
        // Nothing idle now: a connect waits, within its deadline and until its cancel.
        let wait = SlotWait::new(&gate);
        let start = Instant::now();
        assert_eq!(gate.open_blocking(Some(start + Duration::from_millis(50)), &wait).err(), Some(Refused::Deadline));
        assert!(start.elapsed() >= Duration::from_millis(45));
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(30));
                wait.stop();
            });
            let start = Instant::now();
            assert_eq!(gate.open_blocking(None, &wait).err(), Some(Refused::Cancelled));
            assert!(start.elapsed() < Duration::from_secs(5));
        });
        // The event loop's first connection takes the place of an idle blocking one, even
        // below the cap.
        let gate = Gate::new(4);
        let idle_blocking = fake(&gate, Side::Blocking, true);
        let first = event_loop().block_on(gate.open_async(Instant::now(), std::future::pending())).unwrap();
        assert!(idle_blocking.slot.lock().unwrap().is_none());
        assert_eq!(gate.lock().open, 1);
        drop(first);
        assert_eq!(gate.lock().open, 0);
    }

    #[test]
    fn a_loop_connect_waits_for_its_own_connection_rather_than_close_a_blocking_one() {
        let gate = Gate::new(2);
        let runtime = event_loop();
        let cancel = Arc::new(Cancel::new());
        let first = runtime.block_on(permit_within(&gate, Duration::from_secs(5), &cancel)).unwrap();
        // The loop's connection of that request, idle now (back to its pool, or on its way),
        // and an idle blocking one: the cap is reached.
        let _loop_connection = fake(&gate, Side::Events, true);
        let idle_blocking = fake(&gate, Side::Blocking, true);
        // The next loop request took the permit the first gave back, before its connection was
        // back in the pool: its connect waits for that connection and closes nothing.
        drop(first);
        let _second = runtime.block_on(permit_within(&gate, Duration::from_secs(5), &cancel)).unwrap();
        let connect =
            runtime.block_on(gate.open_async(Instant::now() + Duration::from_millis(20), std::future::pending()));
        assert_eq!(connect.err(), Some(Refused::Deadline));
        assert!(idle_blocking.slot.lock().unwrap().is_some(), "the blocking connection was closed");
        // Two loop requests on one loop connection: the second has none coming, so its
        // connect makes room.
        let _third = runtime.block_on(permit_within(&gate, Duration::from_secs(5), &cancel)).unwrap();
        let connect = runtime.block_on(gate.open_async(Instant::now(), std::future::pending()));
        assert!(connect.is_ok(), "no room was made");
        assert!(idle_blocking.slot.lock().unwrap().is_none(), "the idle blocking connection stayed open");
    }
}
