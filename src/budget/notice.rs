//! What the budget has to say: why it is not (or no longer) shared between processes, or what
//! was repaired in the shared file. Said once to each reader (each client), in the report of
//! its next call ([`Budget::untold`](super::Budget::untold); a getTaskResult's also through
//! [`Budget::take`](super::Budget::take)), so that it reaches a report of every client rather
//! than whichever call happened to come first in the process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Every notice of one budget, in order. At most three: one about the settings, one from opening
/// the file, and one when the file fails later or a forked child cannot reopen it (the budget
/// then stops using the file, so nothing more can go wrong).
#[derive(Default)]
pub(crate) struct Notices {
    said: Mutex<Vec<String>>,
    /// `said.len()`, read without the lock on every request.
    count: AtomicUsize,
}

/// The notice of a budget that is not shared: said plainly, since the guard and the budget of
/// 120 requests per task then hold in this process only.
pub(crate) fn not_shared(why: &str) -> String {
    format!("the request budget and the account guard are not shared with other processes: {why}; this process counts alone")
}

/// The notice of a budget whose file failed after it was shared.
pub(crate) fn no_longer_shared(why: &str) -> String {
    format!(
        "the request budget and the account guard are no longer shared with other processes: {why}; this process counts alone from now on"
    )
}

/// How many of a budget's notices one reader (a client) was told.
#[derive(Default, Debug)]
pub struct NoticesTold(AtomicUsize);

impl Notices {
    pub fn add(&self, notice: String) {
        let mut said = self.said();
        said.push(notice);
        self.count.store(said.len(), Ordering::Release);
    }

    /// The notices `told` was not told yet, joined, and marks them told: each reaches one
    /// caller only, even when several threads share the reader. Two atomic loads, and no lock,
    /// when there is nothing new.
    #[inline]
    pub fn untold(&self, told: &NoticesTold) -> Option<String> {
        let count = self.count.load(Ordering::Acquire);
        if told.0.load(Ordering::Relaxed) >= count {
            return None;
        }
        self.tell(told, count)
    }

    #[cold]
    fn tell(&self, told: &NoticesTold, count: usize) -> Option<String> {
        let before = told.0.fetch_max(count, Ordering::Relaxed);
        if before >= count {
            return None;
        }
        Some(self.said()[before..count].join("; "))
    }

    fn said(&self) -> MutexGuard<'_, Vec<String>> {
        // A poisoned lock only means another thread panicked while adding; the notices stay.
        self.said.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reader_is_told_each_notice_once() {
        let notices = Notices::default();
        let (first, second) = (NoticesTold::default(), NoticesTold::default());
        assert_eq!(notices.untold(&first), None);
        notices.add("a".into());
        notices.add("b".into());
        assert_eq!(notices.untold(&first).as_deref(), Some("a; b"));
        assert_eq!(notices.untold(&first), None, "told once");
        notices.add("c".into());
        assert_eq!(notices.untold(&first).as_deref(), Some("c"), "a new notice is told too");
        assert_eq!(notices.untold(&second).as_deref(), Some("a; b; c"), "every reader is told");
    }
}
