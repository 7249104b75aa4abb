//! The cap on a client's connections: at most `max` requests in flight at once.
//!
//! Every request, from a blocking call or a waiter's worker, takes a permit before it is sent
//! and gives it back when its answer is read or it fails. The pool keeps at most `max` idle
//! connections and ureq takes a pooled one before opening another, so the client never holds
//! more than `max` connections. A caller beyond the cap queues here, within its deadline, and
//! a cancel wakes it at once (the gate watches the caller's tokens while it queues).

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
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
        let anyone_queued = {
            let mut slots = self.gate.lock();
            slots.used -= 1;
            slots.queued > 0
        };
        if anyone_queued {
            self.gate.freed.notify_one();
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
        Arc::new(Gate { slots: Mutex::new(Slots { max: max.max(1), used: 0, queued: 0 }), freed: Condvar::new() })
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn max(&self) -> u32 {
        self.lock().max
    }

    pub fn set_max(&self, max: u32) {
        self.lock().max = max.max(1);
        self.freed.notify_all();
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
}
