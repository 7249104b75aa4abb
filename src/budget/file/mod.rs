//! The request budget in a file that every process of the user shares (Unix and Windows): a
//! fixed-size table of counts, mapped into every process that uses it. One concern a file:
//! - `place.rs`: where the file lives by default, and the private directory it lives in;
//! - `open.rs`: opening it as this user's regular file, never through a link, and when a forked
//!   child must open its own;
//! - `layout.rs`: the header, the buckets and slots, and which bucket holds a task;
//! - `mapping.rs`: the file in memory, and the guards against a SIGBUS (a file cut short);
//! - `slot.rs`: a slot's state in one word, counted on with one compare-and-swap and no lock,
//!   and the service's final answer about a disowned task in another;
//! - `lock.rs`: the lock that orders the rest (`flock`, `LockFileEx` on Windows);
//! - `insert.rs`: giving a slot to a new task under that lock: busy, filled, published;
//! - `stops.rs`: the account guard's stops, after the table: read without a lock, changed
//!   under it;
//! - `snapshot.rs`: what a process that stops using the file takes with it, to count on alone;
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
mod snapshot;
mod stops;

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::api::REQUESTS_PER_TASK;
use crate::budget::admission::Admission;
use crate::budget::disowned::Disowned;
use crate::budget::key::KeyDigest;
use insert::pick_free_way;
use mapping::Mapping;
use slot::{scan, unix_now, Held, Scan, State, REGISTERED};

pub use layout::{bucket_of, BUCKETS, CAPACITY, FILE_BYTES, WAYS};
pub use place::default_path;
pub use stops::STOP_RECORDS;

/// An open, checked, mapped budget file.
pub(crate) struct BudgetFile {
    map: Mapping,
    file: File,
    /// Orders this process's threads under the file's lock, which orders processes only
    /// (`lock.rs`).
    threads: Mutex<()>,
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

/// What a first look at the file found for a getTaskResult about to be sent
/// ([`BudgetFile::poll`]).
pub(crate) enum Polled {
    /// The account guard keeps a stop: it decides first; nothing was counted.
    StopsKept,
    /// The task's slot answered: counted, spent or disowned.
    Found(Admission),
    /// The table holds no slot for the task: nothing was counted.
    Missing,
}

impl BudgetFile {
    /// Takes one request for the task, or an I/O error (the caller falls back). Counting a
    /// known task takes no lock; giving a slot to a new task does. (The budget does it in
    /// steps, [`poll`](BudgetFile::poll) first, so that the guard decides in between.)
    #[cfg(test)]
    pub fn take(&self, digest: KeyDigest, task_id: i64) -> io::Result<Admission> {
        self.restore_if_cut_short()?;
        match self.scan_lock_free(digest, task_id, unix_now()) {
            Some(admission) => Ok(admission),
            None => self.insert(digest, task_id),
        }
    }

    /// The first look of a getTaskResult, with one check of the file (one `fstat`): whether
    /// the guard keeps any stop (then nothing is counted: the guard decides, and the caller
    /// takes with [`take`](BudgetFile::take)), else the task counted on its slot, else missing
    /// (the caller gives it a slot with [`insert`](BudgetFile::insert)).
    pub fn poll(&self, digest: KeyDigest, task_id: i64) -> io::Result<Polled> {
        self.restore_if_cut_short()?;
        if self.stops_kept() {
            return Ok(Polled::StopsKept);
        }
        Ok(match self.scan_lock_free(digest, task_id, unix_now()) {
            Some(admission) => Polled::Found(admission),
            None => Polled::Missing,
        })
    }

    /// Counts on the task's slot even though the service disowned it (`CAPMONSTER_GUARD=off`);
    /// `None` when the table does not hold it.
    pub fn take_disowned(&self, digest: KeyDigest, task_id: i64) -> io::Result<Option<Admission>> {
        self.restore_if_cut_short()?;
        let now = unix_now();
        let bucket = self.bucket(digest, task_id);
        for _ in 0..LOCK_FREE_SCANS {
            let found = bucket.iter().find_map(|cell| match cell.holds(digest, task_id) {
                Held::Yes(state, _) => Some(cell.count(state, now)),
                _ => None,
            });
            match found {
                Some(Some(admission)) => return Ok(Some(admission)),
                Some(None) => continue,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Counts on the task's slot if the table holds it (no lock); `None` when it does not.
    pub fn take_known(&self, digest: KeyDigest, task_id: i64) -> io::Result<Option<Admission>> {
        self.restore_if_cut_short()?;
        Ok(self.scan_lock_free(digest, task_id, unix_now()))
    }

    /// Counts on the task's slot without the lock; `None` when it has none (or slots kept
    /// changing hands: the lock then orders them).
    fn scan_lock_free(&self, digest: KeyDigest, task_id: i64, now: u64) -> Option<Admission> {
        let bucket = self.bucket(digest, task_id);
        for _ in 0..LOCK_FREE_SCANS {
            match scan(&bucket, digest, task_id, now) {
                Scan::Counted(admission) => return Some(admission),
                Scan::Missing => return None,
                Scan::Changed => {}
            }
        }
        None
    }

    /// Under the lock: counts on the task's slot if another process gave it one meanwhile,
    /// else gives it one with its first request counted.
    pub fn insert(&self, digest: KeyDigest, task_id: i64) -> io::Result<Admission> {
        self.restore_if_cut_short()?;
        let now = unix_now();
        let bucket = self.bucket(digest, task_id);
        let _lock = self.lock()?;
        for _ in 0..LOCKED_PICKS {
            match scan(&bucket, digest, task_id, now) {
                Scan::Counted(admission) => return Ok(admission),
                Scan::Changed => continue,
                Scan::Missing => {}
            }
            let (states, disowned) = bucket_states(&bucket);
            let way = pick_free_way(&states, &disowned, now);
            if bucket[way].claim(states[way], digest, task_id, now) {
                return Ok(Admission::Granted { nth: 1 });
            }
        }
        Err(io::Error::other("a bucket of the budget file kept changing under its lock (is it damaged?)"))
    }

    /// A task createTask made here: given a slot with no request counted, so that every
    /// process knows it (the wrong-id pause holds only tasks the table does not know). A task
    /// the table holds already keeps its slot.
    pub fn register(&self, digest: KeyDigest, task_id: i64) -> io::Result<()> {
        self.restore_if_cut_short()?;
        let now = unix_now();
        let bucket = self.bucket(digest, task_id);
        let _lock = self.lock()?;
        if bucket.iter().any(|cell| matches!(cell.holds(digest, task_id), Held::Yes(..))) {
            return Ok(());
        }
        let (states, disowned) = bucket_states(&bucket);
        let way = pick_free_way(&states, &disowned, now);
        // Under the lock only counts change: a lost race means a count on that slot, and the
        // registration (a convenience) is dropped rather than retried.
        bucket[way].claim_as(states[way], digest, task_id, now, REGISTERED, None);
        Ok(())
    }

    /// Keeps the service's final answer about the task in its slot (given one if it has none),
    /// so that no process asks about it again.
    pub fn disown(&self, digest: KeyDigest, task_id: i64, disowned: Disowned) -> io::Result<()> {
        self.restore_if_cut_short()?;
        let now = unix_now();
        let bucket = self.bucket(digest, task_id);
        let _lock = self.lock()?;
        // Under the lock no slot changes hands: the slot found is the task's.
        if let Some(cell) = bucket.iter().find(|cell| matches!(cell.holds(digest, task_id), Held::Yes(..))) {
            cell.disown(disowned);
            return Ok(());
        }
        let (states, kept) = bucket_states(&bucket);
        let way = pick_free_way(&states, &kept, now);
        bucket[way].claim_as(states[way], digest, task_id, now, 1, Some(disowned));
        Ok(())
    }

    /// Requests counted for the task (0 when unknown or forgotten).
    pub fn sent(&self, digest: KeyDigest, task_id: i64) -> io::Result<u32> {
        self.restore_if_cut_short()?;
        let bucket = self.bucket(digest, task_id);
        // Bounded: a look that meets a slot changing hands is repeated under the lock, where
        // no slot changes hands.
        for attempt in 0..2 {
            let _lock = if attempt == 0 { None } else { Some(self.lock()?) };
            let found = bucket.iter().map(|cell| cell.holds(digest, task_id)).try_fold(0, |sent, held| match held {
                Held::Yes(state, _) => Some(state.requests().min(REQUESTS_PER_TASK)),
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

/// Under the lock: the bucket's states, and which slots keep a final answer.
fn bucket_states(bucket: &[slot::SlotCell<'_>; WAYS]) -> ([State; WAYS], [bool; WAYS]) {
    (std::array::from_fn(|way| bucket[way].state()), std::array::from_fn(|way| bucket[way].disowned()))
}

/// What the tests of this folder share: scratch files, and a task's slot.
#[cfg(test)]
pub(super) mod testing {
    use std::path::PathBuf;

    use crate::budget::file::layout::{bucket_of, WAYS};
    use crate::budget::file::slot::{Held, SlotCell};
    use crate::budget::file::BudgetFile;
    use crate::budget::key::KeyDigest;

    /// A budget file's path in a fresh directory of the test's own, removed with what is in
    /// it when the test ends (a budget file is megabytes; test runs are many).
    pub fn scratch(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("capmonster-budget-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { file: dir.join("budget"), dir }
    }

    pub struct Scratch {
        dir: PathBuf,
        file: PathBuf,
    }

    impl std::ops::Deref for Scratch {
        type Target = PathBuf;

        fn deref(&self) -> &PathBuf {
            &self.file
        }
    }

    impl AsRef<std::path::Path> for Scratch {
        fn as_ref(&self) -> &std::path::Path {
            &self.file
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// The slot of a task, found through the file's own words.
    pub(in crate::budget::file) fn slot_of<'a>(file: &'a BudgetFile, digest: KeyDigest, task_id: i64) -> SlotCell<'a> {
        let way = file
            .bucket(digest, task_id)
            .iter()
            .position(|cell| matches!(cell.holds(digest, task_id), Held::Yes(..)))
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

    #[test]
    fn a_disowned_task_is_answered_from_its_slot_by_every_mapping_and_never_counted() {
        use crate::budget::disowned::{Disowned, FinalAnswer};
        let path = scratch("disowned");
        let (file, _) = BudgetFile::open(&path, false).unwrap();
        let (other, _) = BudgetFile::open(&path, false).unwrap();
        let digest = KeyDigest::of("key", "disowned");
        let disowned = Disowned { answer: FinalAnswer::Unsolvable, at_unix: 1_764_891_612 };
        assert_eq!(file.take(digest, 3).unwrap(), Granted { nth: 1 });
        file.disown(digest, 3, disowned).unwrap();
        for _ in 0..3 {
            assert!(matches!(other.poll(digest, 3).unwrap(), Polled::Found(Admission::Disowned(d)) if d == disowned));
        }
        assert_eq!(other.sent(digest, 3).unwrap(), 1, "never counted again");
        // A task with no slot yet gets one that keeps the answer.
        other.disown(digest, 4, disowned).unwrap();
        assert_eq!(file.take(digest, 4).unwrap(), Admission::Disowned(disowned));
        // A slot given to another task forgets the answer.
        let neighbour = (5..).find(|&id| bucket_of(digest, id) == bucket_of(digest, 3)).unwrap();
        let slot = testing::slot_of(&file, digest, 3);
        let lock = file.lock().unwrap();
        assert!(slot.claim(slot.state(), digest, neighbour, unix_now()));
        drop(lock);
        assert_eq!(file.take(digest, neighbour).unwrap(), Granted { nth: 2 }, "the slot now counts another task");
        assert!(matches!(file.poll(digest, 3).unwrap(), Polled::Missing));
    }

    #[test]
    fn a_registered_task_is_known_with_nothing_counted_and_stops_are_seen_first() {
        let path = scratch("registered");
        let (file, _) = BudgetFile::open(&path, false).unwrap();
        let digest = KeyDigest::of("key", "registered");
        assert!(matches!(file.poll(digest, 8).unwrap(), Polled::Missing), "nothing counted when missing");
        assert_eq!(file.sent(digest, 8).unwrap(), 0);
        file.register(digest, 8).unwrap();
        assert_eq!(file.sent(digest, 8).unwrap(), 0);
        assert_eq!(file.take_known(digest, 8).unwrap(), Some(Granted { nth: 1 }));
        file.register(digest, 8).unwrap();
        assert_eq!(file.sent(digest, 8).unwrap(), 1, "registering again changes nothing");
        assert_eq!(file.take_known(digest, 9).unwrap(), None);
        assert_eq!(file.insert(digest, 9).unwrap(), Granted { nth: 1 });

        use crate::budget::guard::policy::{Stop, StopState};
        file.update_stop(digest, Stop::Key, &mut |_| Some(StopState::start("ERROR_IP_BANNED", None, 1))).unwrap();
        assert!(matches!(file.poll(digest, 8).unwrap(), Polled::StopsKept));
        assert_eq!(file.sent(digest, 8).unwrap(), 1, "the guard decides before anything is counted");
        // A record that only counts answers holds nothing back: calls need not look.
        file.update_stop(digest, Stop::Key, &mut |_| None).unwrap();
        let mut counting = StopState::start("ERROR_NO_SUCH_CAPCHA_ID", None, 1);
        counting.until_ms = 0;
        file.update_stop(digest, Stop::WrongIds, &mut |_| Some(counting.clone())).unwrap();
        assert!(!file.any_stop().unwrap());
        assert!(file.stop(digest, Stop::WrongIds).unwrap().is_some_and(|state| state.counting()));
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
