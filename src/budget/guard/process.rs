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
/// to reach. Proxy stops take at most [`MAX_PROXY_STOPS`] and drop only quiet proxy stops:
/// many banned proxies at once never take a key's place.
pub const MAX_STOPS: usize = 4096;
/// Most proxy stops kept (half of [`MAX_STOPS`]).
pub const MAX_PROXY_STOPS: usize = MAX_STOPS / 2;

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
            let proxies = |stops: &HashMap<(KeyDigest, Stop), StopState>| {
                stops.keys().filter(|(_, kind)| *kind == Stop::Proxy).count()
            };
            let full = |stops: &HashMap<_, _>| {
                stops.len() >= MAX_STOPS || (stop == Stop::Proxy && proxies(stops) >= MAX_PROXY_STOPS)
            };
            if full(&stops) {
                let quiet = state.since_ms.max(state.until_ms).saturating_sub(BAN_LENGTH.as_millis() as u64);
                stops.retain(|(_, kind), kept| {
                    (stop == Stop::Proxy && *kind != Stop::Proxy) || kept.until_ms > quiet || kept.probe_until_ms != 0
                });
            }
            if !full(&stops) {
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

    #[test]
    fn proxy_stops_take_half_and_never_a_keys_place() {
        let stops = ProcessStops::default();
        let ban = |n: u64, stop, now| {
            let scope = KeyDigest::of(&n.to_string(), "p");
            stops.update(scope, stop, &mut |_| Some(StopState::start("E", None, now)));
            stops.get(scope, stop).is_some()
        };
        assert!((0..MAX_PROXY_STOPS as u64).all(|n| ban(n, Stop::Proxy, 0)));
        assert!(!ban(u64::MAX, Stop::Proxy, 0), "beyond half, a proxy stop is not kept");
        assert!((0..MAX_PROXY_STOPS as u64).all(|n| ban(n, Stop::Key, 0)), "keys have their half");
        let late = 10 * BAN_LENGTH.as_millis() as u64;
        assert!(ban(u64::MAX, Stop::Proxy, late), "quiet proxy stops made room");
        assert_eq!(stops.kept.load(Ordering::Relaxed), MAX_PROXY_STOPS + 1, "the quiet keys stayed");
    }
}
