//! A cancellation token that sleepers wake on and that interrupts what is watching it.
//!
//! Triggering sets a flag, wakes every sleeper at once through a condition variable, and calls
//! every registered [`Watcher`](crate::cancel::Watcher): a connection with a request in
//! flight is shut down, a waiter finishes a sleeping wait, the connection gate wakes its queue.
//! So a cancel reaches whatever the call is doing within milliseconds, not at its next poll or
//! request timeout.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

/// Something to tell when a token triggers. `cancelled` runs on the triggering thread, with no
/// lock of the token held: it must be quick and must not block on the network.
pub trait Watcher: Send + Sync {
    /// `token` is the number given to [`Cancel::watch`].
    fn cancelled(&self, token: u64);
}

#[derive(Default)]
struct Watchers {
    next_key: u64,
    /// Bounded by what can watch at once: requests in flight, waits pending, gate queuers.
    by_key: HashMap<u64, (Weak<dyn Watcher>, u64)>,
}

#[derive(Default)]
pub struct Cancel {
    triggered: AtomicBool,
    watchers: Mutex<Watchers>,
    wake: Condvar,
}

impl fmt::Debug for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancel").field("triggered", &self.is_triggered()).finish()
    }
}

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Watchers> {
        // Watchers never panic under the lock; a poisoned one still holds a valid table.
        self.watchers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Idempotent; the token stays triggered. Every watcher is called once.
    pub fn trigger(&self) {
        self.triggered.store(true, Ordering::SeqCst);
        // Taking the lock orders this with a sleeper between its flag check and its wait, and
        // with a watcher being registered.
        let watchers = std::mem::take(&mut self.lock().by_key);
        self.wake.notify_all();
        for (watcher, token) in watchers.into_values() {
            if let Some(watcher) = watcher.upgrade() {
                watcher.cancelled(token);
            }
        }
    }

    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }

    /// Registers `watcher` to be told (with `token`) when this token triggers. Returns the key
    /// for [`unwatch`](Cancel::unwatch), or `None` when the token has already triggered (the
    /// watcher is then not kept: act on the cancel now).
    pub fn watch(&self, watcher: Weak<dyn Watcher>, token: u64) -> Option<u64> {
        let mut watchers = self.lock();
        if self.is_triggered() {
            return None;
        }
        let key = watchers.next_key;
        watchers.next_key += 1;
        watchers.by_key.insert(key, (watcher, token));
        Some(key)
    }

    /// Forgets a registration; a key already used by a trigger is ignored.
    pub fn unwatch(&self, key: u64) {
        let mut watchers = self.lock();
        watchers.by_key.remove(&key);
        // Give memory back after a burst (e.g. 100,000 waits on one token that all ended).
        if watchers.by_key.is_empty() && watchers.by_key.capacity() > 64 {
            watchers.by_key = HashMap::new();
        }
    }

    /// Registrations currently held (for tests of the bounds).
    pub fn watching(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Sleeps until `until` or the trigger. Returns true when triggered.
    pub fn sleep_until(&self, until: Instant) -> bool {
        let mut guard = self.lock();
        loop {
            if self.is_triggered() {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            guard = match self.wake.wait_timeout(guard, until - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// Sleeps until `until`, or less when `cancel` triggers. Returns true when cancelled.
pub fn sleep_until(cancel: Option<&Cancel>, until: Instant) -> bool {
    match cancel {
        Some(cancel) => cancel.sleep_until(until),
        None => {
            let now = Instant::now();
            if until > now {
                std::thread::sleep(until - now);
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn trigger_wakes_a_sleeper_at_once() {
        let cancel = Arc::new(Cancel::new());
        let sleeper = {
            let cancel = Arc::clone(&cancel);
            std::thread::spawn(move || {
                let start = Instant::now();
                (cancel.sleep_until(start + Duration::from_secs(30)), start.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        cancel.trigger();
        cancel.trigger();
        let (cancelled, slept) = sleeper.join().unwrap();
        assert!(cancelled);
        assert!(slept < Duration::from_secs(5), "{slept:?}");
        assert!(cancel.sleep_until(Instant::now() + Duration::from_secs(30)), "stays triggered");
    }

    #[test]
    fn sleeps_the_full_time_when_not_triggered() {
        let start = Instant::now();
        assert!(!sleep_until(Some(&Cancel::new()), start + Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[derive(Default)]
    struct Sum(AtomicU64);
    impl Watcher for Sum {
        fn cancelled(&self, token: u64) {
            self.0.fetch_add(token, Ordering::SeqCst);
        }
    }

    #[test]
    fn watchers_are_told_once_and_unwatched_ones_never() {
        let cancel = Cancel::new();
        let sum = Arc::new(Sum::default());
        let weak = || Arc::downgrade(&sum) as Weak<dyn Watcher>;
        let _one = cancel.watch(weak(), 1).unwrap();
        let two = cancel.watch(weak(), 2).unwrap();
        let _four = cancel.watch(weak(), 4).unwrap();
        cancel.unwatch(two);
        assert_eq!(cancel.watching(), 2);
        cancel.trigger();
        cancel.trigger();
        assert_eq!(sum.0.load(Ordering::SeqCst), 5);
        assert_eq!(cancel.watching(), 0);
        assert!(cancel.watch(weak(), 8).is_none(), "a triggered token takes no watcher");
    }
}
