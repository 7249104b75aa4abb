//! A cancellation token that a waiting thread can sleep on.
//!
//! Triggering sets a flag and wakes every sleeper at once through a condition variable, so a
//! wait returns within milliseconds of the trigger instead of at its next poll.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

#[derive(Default, Debug)]
pub struct Cancel {
    triggered: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Idempotent; the token stays triggered.
    pub fn trigger(&self) {
        self.triggered.store(true, Ordering::SeqCst);
        // Taking the lock orders this with a sleeper between its flag check and its wait.
        let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.wake.notify_all();
    }

    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }

    /// Sleeps until `until` or the trigger. Returns true when triggered.
    pub fn sleep_until(&self, until: Instant) -> bool {
        let mut guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
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
}
