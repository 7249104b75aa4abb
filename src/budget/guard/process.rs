//! Stops kept in this process only (`CAPMONSTER_BUDGET=process`, or when the shared file
//! cannot be used): every client and thread of the process shares them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use super::policy::{Stop, StopState, BAN_LENGTH};
use super::Store;
use crate::budget::KeyDigest;

/// Most stops kept. A new stop beyond it first drops stops whose cool-down ended a ban's
/// length ago with no probe since (their key went quiet); if none, it is not kept: its calls
/// then go out as they would without a guard, which a program needs thousands of dead keys
/// to reach.
pub const MAX_STOPS: usize = 4096;

#[derive(Default)]
pub struct ProcessStops {
    stops: Mutex<HashMap<(KeyDigest, Stop), StopState>>,
    /// Stops of `stops` that hold calls back (not the records that only count answers),
    /// readable without the lock.
    kept: AtomicUsize,
}

impl Store for ProcessStops {
    fn any(&self) -> bool {
        self.kept.load(Ordering::Acquire) > 0
    }

    fn get(&self, key: KeyDigest, stop: Stop) -> Option<StopState> {
        self.stops.lock().unwrap_or_else(PoisonError::into_inner).get(&(key, stop)).cloned()
    }

    fn update(&self, key: KeyDigest, stop: Stop, change: &mut dyn FnMut(Option<StopState>) -> Option<StopState>) {
        let mut stops = self.stops.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = change(stops.remove(&(key, stop))) {
            if stops.len() >= MAX_STOPS {
                let quiet = state.since_ms.max(state.until_ms).saturating_sub(BAN_LENGTH.as_millis() as u64);
                stops.retain(|_, kept| kept.until_ms > quiet || kept.probe_until_ms != 0);
            }
            if stops.len() < MAX_STOPS {
                stops.insert((key, stop), state);
            }
        }
        self.kept.store(stops.values().filter(|state| !state.counting()).count(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_bounded_and_drops_quiet_stops_first() {
        let stops = ProcessStops::default();
        for n in 0..MAX_STOPS as u64 {
            stops.update(KeyDigest::of(&n.to_string(), "u"), Stop::Key, &mut |_| Some(StopState::start("E", None, 0)));
        }
        assert!(stops.any());
        let late = 10 * BAN_LENGTH.as_millis() as u64;
        let key = KeyDigest::of("new", "u");
        stops.update(key, Stop::Key, &mut |_| Some(StopState::start("E", None, late)));
        assert!(stops.get(key, Stop::Key).is_some(), "quiet stops made room");
        assert_eq!(stops.kept.load(Ordering::Relaxed), 1);
        stops.update(key, Stop::Key, &mut |_| None);
        assert!(!stops.any());
    }
}
