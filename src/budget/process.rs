//! The counts of this process alone: with `CAPMONSTER_BUDGET=process`, where there is no shared
//! file, and after the file proved unusable.
//!
//! Bounds: the table holds at least [`MIN_TRACKED`] tasks. When it reaches [`HIGH_WATER`] it
//! forgets tasks idle for [`IDLE_EXPIRY`], then, if still full, the longest-idle ones down to
//! `MIN_TRACKED`.

use std::collections::HashMap;
use std::time::Instant;

use crate::budget::admission::{Admission, IDLE_EXPIRY};
use crate::budget::key::KeyDigest;

/// The table always keeps at least this many of the most recently used tasks.
pub const MIN_TRACKED: usize = 100_000;
/// The size at which the table is pruned.
pub const HIGH_WATER: usize = 120_000;

struct Entry {
    sent: u32,
    last_used: Instant,
}

/// Requests sent per task, in this process.
#[derive(Default)]
pub(crate) struct Table {
    tasks: HashMap<(KeyDigest, i64), Entry>,
}

impl Table {
    /// Counts one request for the task, unless all are spent.
    pub fn take(&mut self, key: KeyDigest, task_id: i64, now: Instant) -> Admission {
        if self.tasks.len() >= HIGH_WATER && !self.tasks.contains_key(&(key, task_id)) {
            prune(&mut self.tasks, now);
        }
        let entry = self.tasks.entry((key, task_id)).or_insert(Entry { sent: 0, last_used: now });
        entry.last_used = now;
        let admission = Admission::after(entry.sent);
        if let Admission::Granted { nth } = admission {
            entry.sent = nth;
        }
        admission
    }

    /// Requests counted so far for the task (0 when unknown or forgotten).
    pub fn sent(&self, key: KeyDigest, task_id: i64) -> u32 {
        self.tasks.get(&(key, task_id)).map_or(0, |entry| entry.sent)
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
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

    #[test]
    fn the_table_is_bounded_and_keeps_recent_tasks() {
        let mut table = Table::default();
        let key = KeyDigest::of("k", "u");
        for task in 0..(HIGH_WATER as i64 + 10) {
            assert!(table.take(key, task, Instant::now()).is_granted());
        }
        assert!(table.len() <= HIGH_WATER, "{}", table.len());
        assert!(table.len() >= MIN_TRACKED, "{}", table.len());
        assert_eq!(table.sent(key, HIGH_WATER as i64 + 9), 1, "the newest task is kept");
    }
}
