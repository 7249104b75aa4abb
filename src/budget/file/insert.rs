//! Giving a slot to a new task, under the lock (`lock.rs`): the slot is first marked busy under
//! a new generation, then filled, then published. Counts on other slots of the bucket go on
//! meanwhile, without the lock (`slot.rs`); a count on this slot that started before it changed
//! hands fails its compare-and-swap (the generation changed) and looks again.
//!
//! A process killed at any point blocks no one (the kernel drops its lock); a busy slot seen
//! under the lock was left by a killed process and is free again; and a kill loses at most the
//! request being counted.

use std::sync::atomic::{fence, Ordering};

use crate::budget::admission::IDLE_EXPIRY;
use crate::budget::disowned::Disowned;
use crate::budget::file::layout::WAYS;
use crate::budget::file::slot::{SlotCell, State, BUSY, FINAL};
use crate::budget::key::KeyDigest;

/// The slot a new task takes: an empty one (or one whose filler was killed: the caller holds
/// the lock), else one idle for [`IDLE_EXPIRY`], else the least recently used of those that
/// keep no final answer (`disowned`: a task the service disowned is forgotten only once idle,
/// or when every slot of the bucket keeps one), else the least recently used. A clock that
/// went back makes a slot look recent, never expired.
pub(super) fn pick_free_way(states: &[State; WAYS], disowned: &[bool; WAYS], now: u64) -> usize {
    let idle = |s: &State| now.saturating_sub(s.last_used()) >= IDLE_EXPIRY.as_secs();
    if let Some(way) = states.iter().position(|s| !s.live() || idle(s)) {
        return way;
    }
    let least_recent = |keep_disowned: bool| {
        (0..WAYS).filter(|&way| !(keep_disowned && disowned[way])).min_by_key(|&way| states[way].last_used())
    };
    least_recent(true).or_else(|| least_recent(false)).unwrap_or(0)
}

impl SlotCell<'_> {
    /// Under the lock: gives the slot, last seen in state `seen`, to the task with its first
    /// request counted. False when another process counted on it meanwhile (pick again).
    pub(super) fn claim(&self, seen: State, digest: KeyDigest, task_id: i64, now: u64) -> bool {
        self.claim_as(seen, digest, task_id, now, 1, None)
    }

    /// [`claim`](SlotCell::claim) with `sent` requests counted (`REGISTERED`: none yet) and
    /// the service's final answer, if any.
    pub(super) fn claim_as(
        &self,
        seen: State,
        digest: KeyDigest,
        task_id: i64,
        now: u64,
        sent: u32,
        disowned: Option<Disowned>,
    ) -> bool {
        let generation = seen.generation() + 1;
        let busy = State::new(BUSY, generation, now);
        if self.0[2].compare_exchange(seen.0, busy.0, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return false;
        }
        // Readers that see the new task below also see the busy state (seqlock writer).
        fence(Ordering::Release);
        self.0[0].store(digest.value(), Ordering::Relaxed);
        self.0[1].store(task_id as u64, Ordering::Relaxed);
        self.0[FINAL].store(disowned.map_or(0, Disowned::word), Ordering::Relaxed);
        self.0[2].store(State::new(sent, generation, now).0, Ordering::Release);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::file::slot::unix_now;

    #[test]
    fn a_full_bucket_gives_up_its_least_recently_used_slot() {
        let now = unix_now();
        let states: [State; WAYS] = std::array::from_fn(|way| State::new(1, 0, now - 10 - way as u64));
        let none = [false; WAYS];
        assert_eq!(pick_free_way(&states, &none, now), WAYS - 1);
        let mut with_idle = states;
        with_idle[3] = State::new(1, 0, now - IDLE_EXPIRY.as_secs() - 1);
        assert_eq!(pick_free_way(&with_idle, &none, now), 3);
        let mut with_empty = states;
        with_empty[5] = State(0);
        assert_eq!(pick_free_way(&with_empty, &none, now), 5);
        let mut with_busy = states;
        with_busy[7] = State::new(BUSY, 4, now);
        assert_eq!(pick_free_way(&with_busy, &none, now), 7, "under the lock, a busy slot's filler was killed");
    }

    #[test]
    fn a_disowned_task_is_evicted_only_once_idle_or_when_all_are() {
        let now = unix_now();
        let states: [State; WAYS] = std::array::from_fn(|way| State::new(1, 0, now - 10 - way as u64));
        let mut disowned = [false; WAYS];
        disowned[WAYS - 1] = true;
        assert_eq!(pick_free_way(&states, &disowned, now), WAYS - 2, "the least recently used keeps its answer");
        let mut idle = states;
        idle[WAYS - 1] = State::new(1, 0, now - IDLE_EXPIRY.as_secs() - 1);
        assert_eq!(pick_free_way(&idle, &disowned, now), WAYS - 1, "once idle it goes as any other");
        assert_eq!(
            pick_free_way(&states, &[true; WAYS], now),
            WAYS - 1,
            "a bucket of disowned tasks still takes new ones"
        );
    }
}
