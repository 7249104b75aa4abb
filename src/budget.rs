//! The process-wide request budget: at most 120 getTaskResult requests per task.
//!
//! The service may lock an account that asks more than 120 times about one task, so every
//! attempt to send a getTaskResult request, from any client object and any thread, first takes
//! a unit here; the 121st is refused before it is sent. Tasks are keyed by a digest of the
//! client key (the key itself is not kept) and the task id.
//!
//! Bounds: the table holds at least [`MIN_TRACKED`](crate::budget::MIN_TRACKED) tasks. When it reaches [`HIGH_WATER`](crate::budget::HIGH_WATER) it
//! forgets tasks idle for [`IDLE_EXPIRY`](crate::budget::IDLE_EXPIRY) (longer than the service keeps a result and than a
//! ban lasts), then, if still full, the longest-idle ones down to [`MIN_TRACKED`](crate::budget::MIN_TRACKED). The lock is
//! held only to count, never across a request.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// The service's documented limit of getTaskResult requests per task.
pub const REQUESTS_PER_TASK: u32 = 120;
/// A task not asked about for this long is forgotten first when the table is full.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// The table always keeps at least this many of the most recently used tasks.
pub const MIN_TRACKED: usize = 100_000;
/// The size at which the table is pruned.
pub const HIGH_WATER: usize = 120_000;

/// The digest of a client key that the budget is kept under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyDigest(u64);

impl KeyDigest {
    pub fn of(client_key: &str) -> Self {
        // SipHash with fixed keys: stable within the process, which is all the table needs.
        let mut hasher = DefaultHasher::new();
        client_key.hash(&mut hasher);
        KeyDigest(hasher.finish())
    }
}

struct Entry {
    sent: u32,
    last_used: Instant,
}

/// The per-task counters. One process-wide instance ([`global`]); tests make their own.
#[derive(Default)]
pub struct Budget {
    tasks: Mutex<HashMap<(KeyDigest, i64), Entry>>,
}

/// The budget shared by every client in the process.
pub fn global() -> &'static Budget {
    static GLOBAL: LazyLock<Budget> = LazyLock::new(Budget::default);
    &GLOBAL
}

impl Budget {
    /// Takes one request for the task; `Err(sent)` when all [`REQUESTS_PER_TASK`] are spent.
    pub fn take(&self, key: KeyDigest, task_id: i64) -> Result<u32, u32> {
        // A poisoned lock only means another thread panicked while counting; the counts stay valid.
        let mut tasks = self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if tasks.len() >= HIGH_WATER && !tasks.contains_key(&(key, task_id)) {
            prune(&mut tasks, now);
        }
        let entry = tasks.entry((key, task_id)).or_insert(Entry { sent: 0, last_used: now });
        entry.last_used = now;
        if entry.sent >= REQUESTS_PER_TASK {
            return Err(entry.sent);
        }
        entry.sent += 1;
        Ok(entry.sent)
    }

    /// Requests counted so far for the task (0 when unknown or forgotten).
    pub fn sent(&self, key: KeyDigest, task_id: i64) -> u32 {
        let tasks = self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tasks.get(&(key, task_id)).map_or(0, |entry| entry.sent)
    }

    pub fn tracked(&self) -> usize {
        self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }
}

/// Drops idle tasks, then the longest-idle ones down to [`MIN_TRACKED`]. Linear, but runs
/// once per `HIGH_WATER - MIN_TRACKED` new tasks at most, so its cost per request is small.
fn prune(tasks: &mut HashMap<(KeyDigest, i64), Entry>, now: Instant) {
    tasks.retain(|_, entry| now.duration_since(entry.last_used) < IDLE_EXPIRY);
    if tasks.len() < HIGH_WATER {
        return;
    }
    let mut ages: Vec<Instant> = tasks.values().map(|entry| entry.last_used).collect();
    let evict = tasks.len() - MIN_TRACKED;
    let (_, &mut cutoff, _) = ages.select_nth_unstable(evict);
    // Evicts everything idle longer than the cut-off (ties may keep a few more).
    tasks.retain(|_, entry| entry.last_used >= cutoff);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_121st_request_is_refused() {
        let budget = Budget::default();
        let key = KeyDigest::of("k");
        for n in 1..=REQUESTS_PER_TASK {
            assert_eq!(budget.take(key, 5), Ok(n));
        }
        assert_eq!(budget.take(key, 5), Err(REQUESTS_PER_TASK));
        assert_eq!(budget.take(key, 6), Ok(1), "other tasks are counted apart");
        assert_eq!(budget.take(KeyDigest::of("other key"), 5), Ok(1), "other accounts are counted apart");
    }

    #[test]
    fn concurrent_takers_never_exceed_the_limit() {
        let budget = Arc::new(Budget::default());
        let key = KeyDigest::of("k");
        let granted: u32 = (0..16)
            .map(|_| {
                let budget = Arc::clone(&budget);
                std::thread::spawn(move || (0..50).filter(|_| budget.take(key, 9).is_ok()).count() as u32)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(granted, REQUESTS_PER_TASK);
    }

    #[test]
    fn the_table_is_bounded_and_keeps_recent_tasks() {
        let budget = Budget::default();
        let key = KeyDigest::of("k");
        for task in 0..(HIGH_WATER as i64 + 10) {
            budget.take(key, task).unwrap();
        }
        assert!(budget.tracked() <= HIGH_WATER, "{}", budget.tracked());
        assert!(budget.tracked() >= MIN_TRACKED, "{}", budget.tracked());
        assert_eq!(budget.sent(key, HIGH_WATER as i64 + 9), 1, "the newest task is kept");
    }
}
