//! What the budget has to say: why it is not (or no longer) shared between processes, or what
//! was repaired in the shared file. Said once to each reader (each client), in the report of
//! its next call ([`Budget::untold`](super::Budget::untold); a getTaskResult's also through
//! [`Budget::take`](super::Budget::take)), so that it reaches a report of every client rather
//! than whichever call happened to come first in the process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The latest notices of one budget, in order. With a file: at most three, one about the
/// settings, one from opening the file, and one when the file fails later or a forked child
/// cannot reopen it (the budget then stops using the file, so nothing more can go wrong). With
/// Redis, two more for every outage (it stopped answering, it answers again): only the last
/// [`KEPT`] are kept, and a reader that was told none of them for that long hears those.
#[derive(Default)]
pub(crate) struct Notices {
    said: Mutex<Said>,
    /// Notices ever said, read without the lock on every request.
    count: AtomicUsize,
}

/// The notices kept: the last [`KEPT`] of `total`.
#[derive(Default)]
struct Said {
    kept: std::collections::VecDeque<String>,
    total: usize,
}

/// Most notices kept (a bound for a Redis that comes and goes all day).
const KEPT: usize = 16;

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

/// The notice of an outage of the Redis store: the machine's file stands in until it answers.
#[cfg(feature = "redis")]
pub(crate) fn redis_unreachable(shown: &str, why: &str) -> String {
    format!(
        "the request budget and the account guard could not reach Redis at {shown} ({why}): they count in this machine's file until it answers again, so hosts meanwhile count apart"
    )
}

/// The notice of the end of an outage of the Redis store.
#[cfg(feature = "redis")]
pub(crate) fn redis_back(shown: &str) -> String {
    format!("Redis at {shown} answers again: the request budget and the account guard count there again, shared by every host")
}

/// How many of a budget's notices one reader (a client) was told.
#[derive(Default, Debug)]
pub struct NoticesTold(AtomicUsize);

impl Notices {
    pub fn add(&self, notice: String) {
        let mut said = self.said();
        if said.kept.len() == KEPT {
            said.kept.pop_front();
        }
        said.kept.push_back(notice);
        said.total += 1;
        self.count.store(said.total, Ordering::Release);
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
        let said = self.said();
        // Notices said after `count` wait for the reader's next call; the oldest may be gone.
        let first_kept = said.total - said.kept.len();
        let (from, to) = (before.max(first_kept) - first_kept, count.min(said.total) - first_kept);
        Some(said.kept.range(from..to).map(String::as_str).collect::<Vec<_>>().join("; "))
    }

    fn said(&self) -> MutexGuard<'_, Said> {
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
        for n in 0..100 {
            notices.add(n.to_string());
        }
        let told = notices.untold(&first).unwrap();
        assert!(told.starts_with("84; 85") && told.ends_with("; 99"), "only the last {KEPT}: {told}");
        assert_eq!(notices.untold(&first), None);
    }
}
