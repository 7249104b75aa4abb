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
//! ([`Gate::acquire_async`]), their wakers in a queue beside it, oldest first. A permit given
//! back wakes one of each kind when there is one: the one that does not get it queues again
//! (its place kept), and the uncontended path makes no system call and allocates nothing.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::cancel::{Cancel, Watcher};

/// The default cap of a client's connections.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 64;

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
}

impl Slots {
    /// Where `ticket` is (or would be) in the queue of wakers.
    fn find(&self, ticket: u64) -> Result<usize, usize> {
        self.wakers.binary_search_by_key(&ticket, |(queued, _)| *queued)
    }
}

#[derive(Debug)]
pub(crate) struct Gate {
    slots: Mutex<Slots>,
    freed: Condvar,
}

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
        self.gate.release();
    }
}

/// An event-loop request's right to a connection; returned on drop.
pub(crate) struct OwnedPermit {
    gate: Arc<Gate>,
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        self.gate.release();
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
        if slots.used < slots.max {
            slots.used += 1;
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
        let passed_on = {
            let mut slots = self.gate.lock();
            match slots.find(ticket) {
                Ok(place) => {
                    slots.wakers.remove(place);
                    None
                }
                // Woken for a permit it will not take: the next in line gets the wake-up.
                Err(_) if slots.used < slots.max => slots.wakers.pop_front().map(|(_, waker)| waker),
                Err(_) => None,
            }
        };
        if let Some(waker) = passed_on {
            waker.wake();
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
        let slots = Slots { max: max.max(1), used: 0, queued: 0, wakers: VecDeque::new(), next_ticket: 0 };
        Arc::new(Gate { slots: Mutex::new(slots), freed: Condvar::new() })
    }

    /// Gives a permit back: wakes one blocking queuer and one queued future, if any.
    fn release(&self) {
        let (anyone_queued, waker) = {
            let mut slots = self.lock();
            slots.used -= 1;
            (slots.queued > 0, slots.wakers.pop_front().map(|(_, waker)| waker))
        };
        if anyone_queued {
            self.freed.notify_one();
        }
        if let Some(waker) = waker {
            waker.wake();
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
        // A raised cap may let several queued futures go: each looks again.
        wakers.into_iter().for_each(Waker::wake);
    }

    /// A permit for the event loop if one is free now.
    pub fn try_acquire_owned(self: &Arc<Self>) -> Option<OwnedPermit> {
        let mut slots = self.lock();
        (slots.used < slots.max).then(|| {
            slots.used += 1;
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
        loop {
            if cancels.iter().any(|cancel| cancel.is_triggered()) {
                return Err(Refused::Cancelled);
            }
            if slots.used < slots.max {
                slots.used += 1;
                return Ok(Permit { gate: self, queued: true });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Refused::Deadline);
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
}
