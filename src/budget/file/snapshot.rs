//! What the file holds, read out once when a process stops using it (a file operation
//! failed, or a forked child cannot open its own), so that the process's own tables go on
//! from the file's counts and stops instead of from nothing: a task the file had counted to
//! 120 stays spent, a key the guard stopped stays stopped.
//!
//! Read without the lock (it may be what failed), as every lock-free reader reads: a slot or
//! record that changes under the read is left out, as one written a moment later would be.
//! Bounds: at most [`CAPACITY`](super::CAPACITY) tasks and [`STOP_RECORDS`] stops, one pass.

use std::io;

use crate::budget::admission::IDLE_EXPIRY;
use crate::budget::disowned::Disowned;
use crate::budget::file::layout::BUCKETS;
use crate::budget::file::slot::{unix_now, Held};
use crate::budget::file::stops::STOP_RECORDS;
use crate::budget::file::BudgetFile;
use crate::budget::guard::policy::{Stop, StopState};
use crate::budget::key::KeyDigest;

/// A task the file counted.
pub(crate) struct CountedTask {
    pub key: KeyDigest,
    pub task_id: i64,
    /// Requests counted (0: registered by createTask, none sent).
    pub requests: u32,
    /// Seconds since its last use.
    pub idle_secs: u64,
    pub disowned: Option<Disowned>,
}

/// A stop the file kept.
pub(crate) struct KeptStop {
    pub key: KeyDigest,
    pub stop: Stop,
    pub state: StopState,
}

/// Everything a process needs to count on alone.
pub(crate) struct Snapshot {
    pub tasks: Vec<CountedTask>,
    pub stops: Vec<KeptStop>,
}

impl BudgetFile {
    /// The tasks the file counts (those idle for [`IDLE_EXPIRY`] are free for others, so left
    /// out) and the stops it keeps. An error when the mapping cannot be read safely (a file
    /// cut short that cannot be restored).
    pub(crate) fn snapshot(&self) -> io::Result<Snapshot> {
        self.restore_if_cut_short()?;
        let now = unix_now();
        let mut tasks = Vec::new();
        for bucket in 0..BUCKETS {
            for cell in self.bucket_at(bucket) {
                if !cell.state().live() {
                    continue;
                }
                let (key, task_id) = cell.owner();
                // Read again as a reader of that task would: left out if it changed hands.
                if let Held::Yes(state, disowned) = cell.holds(key, task_id) {
                    let idle_secs = now.saturating_sub(state.last_used());
                    if idle_secs < IDLE_EXPIRY.as_secs() {
                        tasks.push(CountedTask { key, task_id, requests: state.requests(), idle_secs, disowned });
                    }
                }
            }
        }
        let stops = (0..STOP_RECORDS)
            .filter_map(|index| self.stop_in_record(index))
            .map(|(key, stop, state)| KeptStop { key, stop, state })
            .collect();
        Ok(Snapshot { tasks, stops })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::disowned::FinalAnswer;
    use crate::budget::file::testing::scratch;

    #[test]
    fn a_snapshot_holds_every_live_count_and_stop_and_nothing_idle() {
        let path = scratch("snapshot");
        let (file, _) = BudgetFile::open(&path, false).unwrap();
        let (key, other) = (KeyDigest::of("key", "snapshot"), KeyDigest::of("other", "snapshot"));
        for _ in 0..117 {
            file.take(key, 1).unwrap();
        }
        file.take(other, 1).unwrap();
        file.register(key, 2).unwrap();
        let disowned = Disowned { answer: FinalAnswer::NoSuchTask, at_unix: 9 };
        file.disown(key, 3, disowned).unwrap();
        let stopped = StopState::start("ERROR_KEY_DOES_NOT_EXIST", None, 1);
        file.update_stop(key, Stop::Key, &mut |_| Some(stopped.clone())).unwrap();
        // A slot last used longer ago than the idle expiry is free for another task.
        file.take(key, 4).unwrap();
        let idle = crate::budget::file::testing::slot_of(&file, key, 4);
        let old = idle.state();
        let aged = crate::budget::file::slot::State::new(old.sent(), old.generation(), 1);
        idle.0[2].store(aged.0, std::sync::atomic::Ordering::Release);

        let snapshot = file.snapshot().unwrap();
        let mut tasks: Vec<_> = snapshot.tasks.iter().map(|t| (t.key, t.task_id, t.requests, t.disowned)).collect();
        tasks.sort_by_key(|&(key, task, ..)| (task, key.value()));
        let mut expected =
            vec![(key, 1, 117, None), (other, 1, 1, None), (key, 2, 0, None), (key, 3, 1, Some(disowned))];
        expected.sort_by_key(|&(key, task, ..)| (task, key.value()));
        assert_eq!(tasks, expected);
        assert!(snapshot.tasks.iter().all(|t| t.idle_secs < 5));
        assert_eq!(snapshot.stops.len(), 1);
        let kept = &snapshot.stops[0];
        assert_eq!((kept.key, kept.stop, kept.state.api_code.as_str()), (key, Stop::Key, "ERROR_KEY_DOES_NOT_EXIST"));
    }
}
