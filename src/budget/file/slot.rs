//! A slot and its state word: counting a task the table already holds, with no lock.
//!
//! Counting a task the table already holds (every poll but a task's first) makes no system
//! call on Windows and one `fstat` on Unix (`mapping.rs`): the slot's state (requests sent, a
//! generation, last use) is one 64-bit word, and one compare-and-swap both checks that the slot
//! still holds the task it was found with and adds the request. A task the table does not hold
//! yet is given a slot under the lock (`insert.rs`).
//!
//! The slot's fourth word is the service's final answer about the task, when it disowned it
//! (`budget::disowned`: which answer, and when; 0: none). It is read with the task's words,
//! under the same generation check, and written under the lock (where no slot changes hands),
//! so a reader never takes one task's final answer for another's. A disowned task is answered
//! from it and never counted again.

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::budget::admission::Admission;
use crate::budget::disowned::Disowned;
use crate::budget::file::layout::{bucket_of, BUCKET_BYTES, SLOT_BYTES, WAYS};
use crate::budget::file::BudgetFile;
use crate::budget::key::KeyDigest;

/// A slot's state in one word, so that one compare-and-swap both proves that the slot still
/// holds the task it was found with and counts: bits 0-31 the last use (Unix seconds), 32-55
/// the generation (bumped whenever the slot is given to another task), 56-63 the requests sent
/// (0: empty; `BUSY`: being given to a task; `REGISTERED`: a task created here, none sent yet).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct State(pub(super) u64);

/// `State::sent` of a slot being filled; seen under the lock, its filler was killed.
pub(super) const BUSY: u32 = 0xFF;
/// `State::sent` of a task that createTask registered here and nobody polled yet: live (so
/// the task is known to every process) but with no request counted.
pub(super) const REGISTERED: u32 = 0xFE;
const GENERATION_MASK: u64 = 0xFF_FFFF;

impl State {
    pub(super) fn new(sent: u32, generation: u64, last_used: u64) -> State {
        State(u64::from(sent) << 56 | (generation & GENERATION_MASK) << 32 | (last_used & 0xFFFF_FFFF))
    }
    pub(super) fn sent(self) -> u32 {
        (self.0 >> 56) as u32
    }
    pub(super) fn generation(self) -> u64 {
        (self.0 >> 32) & GENERATION_MASK
    }
    pub(super) fn last_used(self) -> u64 {
        self.0 & 0xFFFF_FFFF
    }
    /// Holds a task (neither empty nor being filled).
    pub(super) fn live(self) -> bool {
        self.sent() != 0 && self.sent() != BUSY
    }
    /// Requests counted for the task (a registered task has none).
    pub(super) fn requests(self) -> u32 {
        match self.sent() {
            REGISTERED => 0,
            sent => sent,
        }
    }
}

/// What a look at one slot found.
pub(super) enum Held {
    /// It holds the task, in this state, with the service's final answer if it disowned it.
    Yes(State, Option<Disowned>),
    No,
    /// It changed hands while it was read.
    Changed,
}

/// One slot's words: digest of the key (0: none), task id, state, and the final answer
/// (`Disowned::word`; 0: none).
pub(super) struct SlotCell<'a>(pub(super) &'a [AtomicU64]);

impl SlotCell<'_> {
    pub(super) fn state(&self) -> State {
        State(self.0[2].load(Ordering::Acquire))
    }

    /// The (key, task) its words name: read without the generation check, so only a guess
    /// until [`holds`](SlotCell::holds) confirms it.
    pub(super) fn owner(&self) -> (KeyDigest, i64) {
        (KeyDigest::from_value(self.0[0].load(Ordering::Relaxed)), self.0[1].load(Ordering::Relaxed) as i64)
    }

    /// Whether the slot holds the task, read as a seqlock reader reads: the state, then the
    /// task, then the state again, of the same generation.
    pub(super) fn holds(&self, digest: KeyDigest, task_id: i64) -> Held {
        let before = self.state();
        if !before.live() {
            return Held::No;
        }
        let same_task =
            self.0[0].load(Ordering::Relaxed) == digest.value() && self.0[1].load(Ordering::Relaxed) == task_id as u64;
        let last = if same_task { self.0[FINAL].load(Ordering::Relaxed) } else { 0 };
        fence(Ordering::Acquire);
        let after = State(self.0[2].load(Ordering::Relaxed));
        if after.generation() != before.generation() || !after.live() {
            Held::Changed
        } else if same_task {
            Held::Yes(after, Disowned::from_word(last))
        } else {
            Held::No
        }
    }

    /// Counts one request on a slot found holding the task in state `found`; `None` when the
    /// slot was given to another task meanwhile. A damaged count over the limit reads as spent.
    pub(super) fn count(&self, mut found: State, now: u64) -> Option<Admission> {
        // Bounded: each failed swap is another process's count of this task (at most
        // REQUESTS_PER_TASK succeed before all are refused without a write) or the end of the
        // slot's generation, which returns.
        loop {
            let nth = match Admission::after(found.requests()) {
                Admission::Granted { nth } => nth,
                refused => return Some(refused),
            };
            let counted = State::new(nth, found.generation(), now);
            match self.0[2].compare_exchange(found.0, counted.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(Admission::Granted { nth }),
                Err(now_state) if State(now_state).generation() == found.generation() && State(now_state).live() => {
                    found = State(now_state)
                }
                Err(_) => return None,
            }
        }
    }

    /// A disowned task was asked about again: its last use moves on, so that a task still
    /// asked about keeps its answer (one try: a lost race only leaves the older time).
    pub(super) fn touch(&self, found: State, now: u64) {
        if now > found.last_used() {
            let touched = State::new(found.sent(), found.generation(), now);
            let _ = self.0[2].compare_exchange(found.0, touched.0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Under the lock: the service's final answer, on a slot found holding the task.
    pub(super) fn disown(&self, disowned: Disowned) {
        self.0[FINAL].store(disowned.word(), Ordering::Release);
    }

    /// Whether the slot keeps a final answer (read under the lock, to keep it from eviction).
    pub(super) fn disowned(&self) -> bool {
        Disowned::from_word(self.0[FINAL].load(Ordering::Relaxed)).is_some()
    }
}

/// The index of a slot's final-answer word.
pub(super) const FINAL: usize = 3;

/// Unix seconds, as a slot keeps them (32 bits: until 2106).
pub(super) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs().min(u64::from(u32::MAX)))
}

/// What a look through a bucket found.
pub(super) enum Scan {
    /// Counted, or refused (spent, or disowned: not counted).
    Counted(Admission),
    Missing,
    /// A slot changed hands while it was being counted on: look again.
    Changed,
}

/// Looks through a bucket for the task and counts on its slot.
pub(super) fn scan(bucket: &[SlotCell<'_>; WAYS], digest: KeyDigest, task_id: i64, now: u64) -> Scan {
    let mut changed = false;
    for cell in bucket {
        match cell.holds(digest, task_id) {
            Held::Yes(found, Some(disowned)) => {
                cell.touch(found, now);
                return Scan::Counted(Admission::Disowned(disowned));
            }
            Held::Yes(found, None) => return cell.count(found, now).map_or(Scan::Changed, Scan::Counted),
            Held::No => {}
            Held::Changed => changed = true,
        }
    }
    if changed {
        Scan::Changed
    } else {
        Scan::Missing
    }
}

impl BudgetFile {
    /// The slots of the task's bucket.
    pub(super) fn bucket(&self, digest: KeyDigest, task_id: i64) -> [SlotCell<'_>; WAYS] {
        self.bucket_at(bucket_of(digest, task_id))
    }

    /// The slots of bucket `index` (below `BUCKETS`).
    pub(super) fn bucket_at(&self, index: usize) -> [SlotCell<'_>; WAYS] {
        let words = &self.map.words()[index * BUCKET_BYTES / 8..];
        std::array::from_fn(|way| SlotCell(&words[way * SLOT_BYTES / 8..(way + 1) * SLOT_BYTES / 8]))
    }
}
