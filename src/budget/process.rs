//! The counts of this process alone: with `CAPMONSTER_BUDGET=process`, where there is no shared
//! file, and after the file proved unusable.
//!
//! Bounds: the table holds at least [`MIN_TRACKED`] tasks. When it reaches [`HIGH_WATER`] it
//! forgets tasks idle for [`IDLE_EXPIRY`], then, if still full, the longest-idle ones down to
//! `MIN_TRACKED`.

use std::collections::HashMap;
use std::time::Instant;

use crate::budget::admission::{Admission, IDLE_EXPIRY};
use crate::budget::disowned::Disowned;
use crate::budget::key::KeyDigest;

/// The table always keeps at least this many of the most recently used tasks.
pub const MIN_TRACKED: usize = 100_000;
/// The size at which the table is pruned.
pub const HIGH_WATER: usize = 120_000;

struct Entry {
    sent: u32,
    last_used: Instant,
    /// The service's final answer, once it disowned the task.
    disowned: Option<Disowned>,
}

/// Requests sent per task, in this process.
#[derive(Default)]
pub(crate) struct Table {
    tasks: HashMap<(KeyDigest, i64), Entry>,
}

impl Table {
    /// Counts one request for the task, unless all are spent or the service disowned it.
    pub fn take(&mut self, key: KeyDigest, task_id: i64, now: Instant) -> Admission {
        let entry = self.entry(key, task_id, now);
        entry.last_used = now;
        if let Some(disowned) = entry.disowned {
            return Admission::Disowned(disowned);
        }
        let admission = Admission::after(entry.sent);
        if let Admission::Granted { nth } = admission {
            entry.sent = nth;
        }
        admission
    }

    /// Counts one request for the task even though the service disowned it.
    pub fn take_disowned(&mut self, key: KeyDigest, task_id: i64, now: Instant) -> Admission {
        let entry = self.entry(key, task_id, now);
        entry.last_used = now;
        let admission = Admission::after(entry.sent);
        if let Admission::Granted { nth } = admission {
            entry.sent = nth;
        }
        admission
    }

    /// The task's entry, made (with nothing counted) if it has none.
    fn entry(&mut self, key: KeyDigest, task_id: i64, now: Instant) -> &mut Entry {
        if self.tasks.len() >= HIGH_WATER && !self.tasks.contains_key(&(key, task_id)) {
            prune(&mut self.tasks, now);
        }
        self.tasks.entry((key, task_id)).or_insert(Entry { sent: 0, last_used: now, disowned: None })
    }

    /// A task created here: known from now on, with nothing counted.
    pub fn register(&mut self, key: KeyDigest, task_id: i64, now: Instant) {
        self.entry(key, task_id, now);
    }

    /// A task another table counted (the shared file this process stops using): its count,
    /// unless this table counted more, and its final answer.
    pub fn carry_over(
        &mut self,
        key: KeyDigest,
        task_id: i64,
        sent: u32,
        last_used: Instant,
        disowned: Option<Disowned>,
    ) {
        let entry = self.entry(key, task_id, last_used);
        entry.sent = entry.sent.max(sent);
        entry.last_used = entry.last_used.max(last_used);
        entry.disowned = entry.disowned.or(disowned);
    }

    /// Keeps the service's final answer about the task.
    pub fn disown(&mut self, key: KeyDigest, task_id: i64, disowned: Disowned, now: Instant) {
        self.entry(key, task_id, now).disowned = Some(disowned);
    }

    /// Whether the table holds the task.
    pub fn knows(&self, key: KeyDigest, task_id: i64) -> bool {
        self.tasks.contains_key(&(key, task_id))
    }

    /// Requests counted so far for the task (0 when unknown or forgotten).
    pub fn sent(&self, key: KeyDigest, task_id: i64) -> u32 {
        self.tasks.get(&(key, task_id)).map_or(0, |entry| entry.sent)
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }
}

/// Drops idle tasks, then the longest-idle ones down to [`MIN_TRACKED`], sparing the tasks
/// the service disowned unless there are too few others. Linear, but runs once per
/// `HIGH_WATER - MIN_TRACKED` new tasks at most, so its cost per request is small.
fn prune(tasks: &mut HashMap<(KeyDigest, i64), Entry>, now: Instant) {
    tasks.retain(|_, entry| now.duration_since(entry.last_used) < IDLE_EXPIRY);
    if tasks.len() < HIGH_WATER {
        return;
    }
    let evict = tasks.len() - MIN_TRACKED;
    let mut ages: Vec<Instant> =
        tasks.values().filter(|entry| entry.disowned.is_none()).map(|entry| entry.last_used).collect();
    let spare_disowned = ages.len() > evict;
    if !spare_disowned {
        ages = tasks.values().map(|entry| entry.last_used).collect();
    }
    let nth = evict.min(ages.len() - 1);
    let (_, &mut cutoff, _) = ages.select_nth_unstable(nth);
    // Evicts everything idle longer than the cut-off (ties may keep a few more).
    tasks.retain(|_, entry| entry.last_used >= cutoff || (spare_disowned && entry.disowned.is_some()));
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

    #[test]
    fn a_disowned_task_is_answered_from_its_entry_and_outlives_pruning() {
        use crate::budget::disowned::FinalAnswer;
        let mut table = Table::default();
        let key = KeyDigest::of("k", "u");
        let start = Instant::now();
        let disowned = Disowned { answer: FinalAnswer::Unsolvable, at_unix: 5 };
        assert!(table.take(key, 0, start).is_granted());
        table.disown(key, 0, disowned, start);
        assert_eq!(table.take(key, 0, start), Admission::Disowned(disowned));
        assert_eq!(table.sent(key, 0), 1, "not counted");
        table.register(key, 1, start);
        assert!(table.knows(key, 1) && table.sent(key, 1) == 0);
        for task in 2..(HIGH_WATER as i64 + 10) {
            table.take(key, task, start + std::time::Duration::from_millis(task as u64));
        }
        assert_eq!(table.take(key, 0, Instant::now()), Admission::Disowned(disowned), "spared by the pruning");
    }
}
