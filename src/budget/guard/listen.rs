//! Telling this process's waits that a key was stopped, so that those asleep between polls
//! end at once with the stop's local answer instead of at their next poll.
//!
//! The guard sits below the client and the waits, so it never calls them: they register a
//! [`StopListener`] (weakly) and the guard tells every one when a key stop starts or is
//! renewed by a probe here. Each listener checks the key itself.
//!
//! Bound: one registration per live waiter engine and per blocking wait in progress; each is
//! removed when its [`Listening`] handle drops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::budget::KeyDigest;

/// Something to tell when a key stop starts. `key_stopped` runs on the thread that heard the
/// answer, with no lock of the guard held: it must be quick and must not send a request.
pub trait StopListener: Send + Sync {
    fn key_stopped(&self, key: KeyDigest);
}

#[derive(Default)]
pub(crate) struct Listeners {
    table: Mutex<Table>,
    /// Key stops told so far: a wait whose poll was in flight while one was told looks at
    /// this to know that its next poll is due at once, not after its interval.
    told: AtomicU64,
}

#[derive(Default)]
struct Table {
    next: u64,
    by_id: HashMap<u64, Weak<dyn StopListener>>,
}

/// A registration; dropping it forgets the listener.
pub struct Listening {
    listeners: &'static Listeners,
    id: u64,
}

impl Listeners {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // Nothing panics under this lock; a poisoned table is still consistent.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn listen(&'static self, listener: Weak<dyn StopListener>) -> Listening {
        let mut table = self.lock();
        let id = table.next;
        table.next += 1;
        table.by_id.insert(id, listener);
        Listening { listeners: self, id }
    }

    /// Tells every listener, outside the lock (a listener may register or drop one).
    pub(crate) fn tell(&self, key: KeyDigest) {
        self.told.fetch_add(1, Ordering::AcqRel);
        let listeners: Vec<Arc<dyn StopListener>> = self.lock().by_id.values().filter_map(Weak::upgrade).collect();
        for listener in listeners {
            listener.key_stopped(key);
        }
    }

    /// How many key stops were told so far (any key).
    pub(crate) fn told(&self) -> u64 {
        self.told.load(Ordering::Acquire)
    }

    /// Registrations held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_id.len()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let mut table = self.listeners.lock();
        table.by_id.remove(&self.id);
        // Give memory back after a burst of blocking waits.
        if table.by_id.is_empty() && table.by_id.capacity() > 64 {
            table.by_id = HashMap::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Heard(AtomicU64);
    impl StopListener for Heard {
        fn key_stopped(&self, key: KeyDigest) {
            self.0.store(key.value(), Ordering::Relaxed);
        }
    }

    #[test]
    fn listeners_are_told_while_registered() {
        let listeners: &'static Listeners = Box::leak(Box::default());
        let heard = Arc::new(Heard(AtomicU64::new(0)));
        let listening = listeners.listen(Arc::downgrade(&heard) as Weak<dyn StopListener>);
        let key = KeyDigest::of("k", "u");
        listeners.tell(key);
        assert_eq!((heard.0.load(Ordering::Relaxed), listeners.told()), (key.value(), 1));
        drop(listening);
        assert_eq!(listeners.len(), 0, "a dropped handle forgets its listener");
        heard.0.store(0, Ordering::Relaxed);
        listeners.tell(key);
        assert_eq!(heard.0.load(Ordering::Relaxed), 0);
    }
}
