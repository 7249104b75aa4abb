//! The request budget in a file that every process of the user shares (Unix and Windows): a
//! fixed-size table of counts, mapped into every process that uses it. One concern a file:
//! - `place.rs`: where the file lives by default, and the private directory it lives in;
//! - `open.rs`: opening it as this user's regular file, never through a link, and when a forked
//!   child must open its own;
//! - `layout.rs`: the header, the buckets and slots, and which bucket holds a task;
//! - `mapping.rs`: the file in memory, and the guards against a SIGBUS (a file cut short);
//! - `slot.rs`: a slot's state in one word, counted on with one compare-and-swap and no lock;
//! - `lock.rs`: the lock that orders the rest (`flock`, `LockFileEx` on Windows);
//! - `insert.rs`: giving a slot to a new task under that lock: busy, filled, published;
//! - `stops.rs`: the account guard's stops, after the table: read without a lock, changed
//!   under it;
//! - `repair.rs`: what the library repairs: a new or damaged file, a slot a killed process
//!   left busy.

mod insert;
mod layout;
mod lock;
mod mapping;
mod open;
mod place;
mod repair;
mod slot;
mod stops;

use std::fs::File;
use std::io;
use std::path::PathBuf;

use crate::api::REQUESTS_PER_TASK;
use crate::budget::admission::Admission;
use crate::budget::key::KeyDigest;
use insert::pick_free_way;
use lock::Locked;
use mapping::Mapping;
use slot::{scan, unix_now, Held, Scan, State};

pub use layout::{BUCKETS, CAPACITY, FILE_BYTES, WAYS};
pub use place::default_path;
pub use stops::STOP_RECORDS;

/// An open, checked, mapped budget file.
pub(crate) struct BudgetFile {
    map: Mapping,
    file: File,
    path: PathBuf,
    /// `forks()` when it was opened: a forked child shares the open file, and with it the
    /// lock, so it must open its own.
    #[cfg(unix)]
    forks: u64,
}

/// Times the lock-free path looks through a bucket before it takes the lock (slots changing
/// hands under it every time means heavy eviction: the lock then orders it).
const LOCK_FREE_SCANS: usize = 4;
/// Looks under the lock (where no slot changes hands, only counts change): the bound of the
/// pick-and-claim loop is every slot of the bucket reaching the limit meanwhile.
const LOCKED_PICKS: usize = WAYS * (REQUESTS_PER_TASK as usize + 1);

impl BudgetFile {
    /// Takes one request for the task, or an I/O error (the caller falls back). Counting a
    /// known task takes no lock; giving a slot to a new task does.
    pub fn take(&self, digest: KeyDigest, task_id: i64) -> io::Result<Admission> {
        self.restore_if_cut_short()?;
        let now = unix_now();
        let bucket = self.bucket(digest, task_id);
        for _ in 0..LOCK_FREE_SCANS {
            match scan(&bucket, digest, task_id, now) {
                Scan::Counted(admission) => return Ok(admission),
                Scan::Missing => break,
                Scan::Changed => {}
            }
        }
        let _lock = Locked::new(&self.file)?;
        for _ in 0..LOCKED_PICKS {
            match scan(&bucket, digest, task_id, now) {
                Scan::Counted(admission) => return Ok(admission),
                Scan::Changed => continue,
                Scan::Missing => {}
            }
            let states: [State; WAYS] = std::array::from_fn(|way| bucket[way].state());
            let way = pick_free_way(&states, now);
            if bucket[way].claim(states[way], digest, task_id, now) {
                return Ok(Admission::Granted { nth: 1 });
            }
        }
        Err(io::Error::other("a bucket of the budget file kept changing under its lock (is it damaged?)"))
    }

    /// Requests counted for the task (0 when unknown or forgotten).
    pub fn sent(&self, digest: KeyDigest, task_id: i64) -> io::Result<u32> {
        self.restore_if_cut_short()?;
        let bucket = self.bucket(digest, task_id);
        // Bounded: a look that meets a slot changing hands is repeated under the lock, where
        // no slot changes hands.
        for attempt in 0..2 {
            let _lock = if attempt == 0 { None } else { Some(Locked::new(&self.file)?) };
            let found = bucket.iter().map(|cell| cell.holds(digest, task_id)).try_fold(0, |sent, held| match held {
                Held::Yes(state) => Some(state.sent().min(REQUESTS_PER_TASK)),
                Held::No => Some(sent),
                Held::Changed => None,
            });
            if let Some(sent) = found {
                return Ok(sent);
            }
        }
        Ok(0)
    }
}

/// What the tests of this folder share: scratch files, and a task's slot.
#[cfg(test)]
mod testing {
    use std::path::PathBuf;

    use crate::budget::file::layout::{bucket_of, WAYS};
    use crate::budget::file::slot::{Held, SlotCell};
    use crate::budget::file::BudgetFile;
    use crate::budget::key::KeyDigest;

    pub fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("capmonster-budget-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("budget")
    }

    /// The slot of a task, found through the file's own words.
    pub fn slot_of<'a>(file: &'a BudgetFile, digest: KeyDigest, task_id: i64) -> SlotCell<'a> {
        let way = file
            .bucket(digest, task_id)
            .iter()
            .position(|cell| matches!(cell.holds(digest, task_id), Held::Yes(_)))
            .unwrap();
        let words = &file.map.words()[(bucket_of(digest, task_id) * WAYS + way) * 4..];
        SlotCell(&words[..4])
    }
}

#[cfg(test)]
mod tests {
    use super::testing::scratch;
    use super::*;
    use crate::budget::admission::Admission::{Granted, Spent};
    use crate::budget::file::layout::bucket_of;
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn counts_to_the_limit_and_persists_across_opens() {
        let path = scratch("persist");
        let (file, note) = BudgetFile::open(&path, false).unwrap();
        assert!(note.is_none(), "{note:?}");
        let digest = KeyDigest::of("key", "http://127.0.0.1:1");
        for n in 1..=REQUESTS_PER_TASK {
            assert_eq!(file.take(digest, 7).unwrap(), Granted { nth: n });
        }
        assert_eq!(file.take(digest, 7).unwrap(), Spent { sent: REQUESTS_PER_TASK });
        let (again, _) = BudgetFile::open(&path, false).unwrap();
        assert_eq!(again.sent(digest, 7).unwrap(), REQUESTS_PER_TASK);
        assert_eq!(again.take(digest, 8).unwrap(), Granted { nth: 1 });
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), FILE_BYTES);
        #[cfg(unix)]
        assert_eq!(meta.mode() & 0o777, 0o600);
        let text = std::fs::read(&path).unwrap();
        assert!(!text.windows(3).any(|w| w == b"key"), "no key in the file");
    }

    /// Threads with a mapping each stand in for processes: 32 tasks of one bucket (so slots are
    /// claimed while others count), each polled 240 times in all, count exactly 120 each.
    #[test]
    fn concurrent_mappings_count_every_task_exactly_to_the_limit() {
        let path = scratch("concurrent");
        let digest = KeyDigest::of("key", "concurrent");
        let bucket = bucket_of(digest, 0);
        let tasks: Vec<i64> = (0..).filter(|&id| bucket_of(digest, id) == bucket).take(WAYS).collect();
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (path, tasks, start) = (path.clone(), tasks.clone(), start.clone());
                std::thread::spawn(move || {
                    let (file, _) = BudgetFile::open(&path, false).unwrap();
                    let mut granted = vec![0u32; tasks.len()];
                    // All at once, in the same order: new tasks are claimed by several at a time.
                    start.wait();
                    for _ in 0..30 {
                        for (at, &task) in tasks.iter().enumerate() {
                            granted[at] += u32::from(file.take(digest, task).unwrap().is_granted());
                        }
                    }
                    granted
                })
            })
            .collect();
        let mut granted = vec![0u32; tasks.len()];
        for thread in threads {
            for (total, mine) in granted.iter_mut().zip(thread.join().unwrap()) {
                *total += mine;
            }
        }
        assert_eq!(granted, vec![REQUESTS_PER_TASK; tasks.len()]);
        let (file, _) = BudgetFile::open(&path, false).unwrap();
        assert!(tasks.iter().all(|&task| file.sent(digest, task).unwrap() == REQUESTS_PER_TASK));
    }
}
