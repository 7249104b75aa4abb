//! How many requests the event loop lets out at once, before the client's gate: a semaphore
//! sized for the protocol the server speaks.
//!
//! - Over TLS, until the first answer says which protocol: one request at a time (so that
//!   HTTP/2 starts on one connection, not on `max_connections` raced ones).
//! - HTTP/2: `max_connections` × the streams the server allows per connection, as last heard.
//! - HTTP/1.1 (a request in flight is a connection): [`FIRST_HTTP1_ALLOWED`] at first, doubled
//!   every [`GROWTH_TICK`] while requests queue and the answers are slow, up to
//!   `max_connections`. Slow means fewer answers came in the last [`SLOW_AFTER`] than requests
//!   are allowed in flight: each takes longer than that, so the server's round trip is what
//!   bounds the requests per second, and another connection carries more of them. When the
//!   answers come faster (a server nearby), or the ticks themselves come late (the loop is
//!   busy), the loop's own work is what bounds them, and another connection would only cost
//!   its setup (about 150 µs of the loop's CPU on loopback: 1,000 solves at once took 0.6 ms
//!   of CPU each on 1,001 connections, 0.38 ms on 64). At a 150 ms round trip the allowance
//!   reaches 2,048 about 45 ms after the first requests queue (4,096, the largest default cap,
//!   a step later).
//!
//! The growth is one timer task per channel, only while requests queue and the allowance is
//! below the cap. It never shrinks: idle connections close after the pool's idle timeout.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::net::gate::Gate;

/// HTTP/1.1 requests in flight allowed at first: the threads engine's default cap, enough for
/// a server nearby at any load the loop can carry.
pub const FIRST_HTTP1_ALLOWED: u32 = 64;

/// How often the allowance of HTTP/1.1 requests in flight may double while requests queue.
pub const GROWTH_TICK: Duration = Duration::from_millis(5);

/// Answers slower than this (on average, while requests queue) make the allowance grow: far
/// above a server nearby, connection setup included (under 1 ms on loopback), far below an
/// internet round trip (50-300 ms).
pub const SLOW_AFTER: Duration = Duration::from_millis(20);

/// HTTP/2 requests in flight at once, whatever the cap and the server's streams per
/// connection (which would allow `max_connections` × up to 1,000). A request in flight costs
/// about 13 KiB (its future, hyper's stream and buffers): this bounds a burst's memory near
/// 200 MiB, and what one client asks of a server at once. It costs no speed: 16,384 requests
/// per round trip is far more than the loop sends a second (about 22,000 at 45 µs a request).
pub const MOST_STREAMS_IN_FLIGHT: u32 = 16_384;

/// The ticks [`SLOW_AFTER`] spans.
const WINDOW_TICKS: usize = (SLOW_AFTER.as_millis() / GROWTH_TICK.as_millis()) as usize;

/// A channel's admission: the permits and what sizes them.
pub(crate) struct Admission {
    permits: Arc<Semaphore>,
    /// The permits the semaphore was given in all (it has no getter): what a resize starts from.
    granted: AtomicUsize,
    max_connections: u32,
    /// HTTP/1.1 requests allowed in flight now, `FIRST_HTTP1_ALLOWED..=max_connections`.
    http1_allowed: AtomicU32,
    /// Whether the first answer (or failure) set the permits for the protocol.
    sized: AtomicBool,
    multiplexed: AtomicBool,
    /// Requests waiting for a permit now.
    queued: AtomicUsize,
    /// HTTP/1.1 requests ended so far (their permits given back).
    answered: AtomicU64,
    /// Whether the growth task runs.
    growing: AtomicBool,
    /// The client's gate, told how many connections the loop may open: as many as HTTP/1.1
    /// requests are allowed in flight (so a connect that lost its race to a pooled connection
    /// waits rather than open one more), `max_connections` on HTTP/2.
    gate: Arc<Gate>,
}

/// A request's permit of the channel; given back on drop.
pub(crate) struct Admitted {
    _permit: OwnedSemaphorePermit,
    /// Counts the request's end for the growth (HTTP/1.1 only).
    admission: Option<Arc<Admission>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(admission) = &self.admission {
            admission.answered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Counts a request out of the queue however its wait ends (a dropped future too).
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    /// `plain`: no TLS, so no ALPN and no HTTP/2: sized for HTTP/1.1 from the start.
    pub fn new(max_connections: u32, plain: bool, gate: &Arc<Gate>) -> Arc<Admission> {
        let max_connections = max_connections.max(1);
        let http1_allowed = FIRST_HTTP1_ALLOWED.min(max_connections);
        let first = if plain { http1_allowed as usize } else { 1 };
        gate.allow_events(http1_allowed);
        Arc::new(Admission {
            permits: Arc::new(Semaphore::new(first)),
            granted: AtomicUsize::new(first),
            max_connections,
            http1_allowed: AtomicU32::new(http1_allowed),
            sized: AtomicBool::new(plain),
            multiplexed: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            answered: AtomicU64::new(0),
            growing: AtomicBool::new(false),
            gate: Arc::clone(gate),
        })
    }

    pub fn multiplexed(&self) -> bool {
        self.multiplexed.load(Ordering::Relaxed)
    }

    /// The most requests in flight at once: `max_connections` on HTTP/1.1, times the streams
    /// a connection carries (`streams`) on HTTP/2, at most [`MOST_STREAMS_IN_FLIGHT`].
    pub fn max_in_flight(&self, streams: u32) -> u32 {
        if self.multiplexed() {
            self.max_connections.saturating_mul(streams).min(MOST_STREAMS_IN_FLIGHT)
        } else {
            self.max_connections
        }
    }

    /// A permit if one is free now.
    pub fn try_admit(self: &Arc<Self>) -> Result<Admitted, TryAcquireError> {
        let permit = Arc::clone(&self.permits).try_acquire_owned()?;
        Ok(self.admitted(permit))
    }

    /// Waits for a permit (the caller bounds the wait: dropping the future leaves the queue).
    /// A wait on HTTP/1.1 below the cap starts the growth if it does not run.
    pub async fn admit(self: &Arc<Self>) -> Admitted {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let _queued = Queued(&self.queued);
        if self.may_grow() && !self.growing.swap(true, Ordering::AcqRel) {
            tokio::spawn(grow(Arc::clone(self)));
        }
        // Never closed: the semaphore lives as long as this admission.
        let permit = Arc::clone(&self.permits).acquire_owned().await.expect("the semaphore is never closed");
        self.admitted(permit)
    }

    fn admitted(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Admitted {
        let http1 = !self.multiplexed();
        Admitted { _permit: permit, admission: http1.then(|| Arc::clone(self)) }
    }

    /// HTTP/1.1, sized, and below the cap.
    fn may_grow(&self) -> bool {
        self.sized.load(Ordering::Relaxed)
            && !self.multiplexed()
            && self.http1_allowed.load(Ordering::Relaxed) < self.max_connections
    }

    /// Learns the protocol from the first answer (or failure) and opens the permits for it; on
    /// HTTP/2, follows the server's stream limit (`streams`) at every answer (it is read from
    /// the connection as its SETTINGS are applied, which may be after the first answer).
    pub fn size_for(&self, http2: bool, streams: u32) {
        if http2 && !self.multiplexed.swap(true, Ordering::Relaxed) {
            self.gate.allow_events(self.max_connections);
        }
        if !self.sized.swap(true, Ordering::Relaxed) || http2 {
            let target = if self.multiplexed() {
                self.max_in_flight(streams)
            } else {
                self.http1_allowed.load(Ordering::Relaxed)
            };
            self.resize(target as usize);
        }
    }

    /// Brings the permits to `target`: adds the missing ones, or forgets free ones (those in
    /// use are forgotten at a later answer, when they are back).
    fn resize(&self, target: usize) {
        let granted = self.granted.load(Ordering::Relaxed);
        if target > granted {
            if self.granted.compare_exchange(granted, target, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                self.permits.add_permits(target - granted);
            }
        } else if target < granted {
            let forgotten = self.permits.forget_permits(granted - target);
            self.granted.fetch_sub(forgotten, Ordering::Relaxed);
        }
    }
}

/// The growth task (see the module docs): each tick, while requests queue, doubles the
/// HTTP/1.1 allowance if fewer requests ended in the last [`SLOW_AFTER`] than are allowed in
/// flight (by Little's law each then takes longer than that) and the loop kept to its ticks
/// meanwhile. Ends when nothing queues or the allowance is the cap; so bounded by the queue's
/// life and by log2(max_connections / FIRST_HTTP1_ALLOWED) doublings.
async fn grow(admission: Arc<Admission>) {
    // (when, requests ended by then) at each of the last ticks, the oldest first.
    let mut window: VecDeque<(Instant, u64)> = VecDeque::with_capacity(WINDOW_TICKS + 1);
    window.push_back((Instant::now(), admission.answered.load(Ordering::Relaxed)));
    loop {
        tokio::time::sleep(GROWTH_TICK).await;
        let now = (Instant::now(), admission.answered.load(Ordering::Relaxed));
        window.push_back(now);
        if window.len() > WINDOW_TICKS + 1 {
            window.pop_front();
        }
        if admission.queued.load(Ordering::Relaxed) > 0 && admission.may_grow() {
            let (since, answered_then) = window[0];
            let full = window.len() == WINDOW_TICKS + 1;
            // Ticks that came late found the loop busy: its own work, not the server, is what
            // keeps the answers few.
            let on_time = now.0 - since < 2 * SLOW_AFTER;
            let allowed = admission.http1_allowed.load(Ordering::Relaxed);
            if full && on_time && now.1 - answered_then < u64::from(allowed) {
                let grown = allowed.saturating_mul(2).min(admission.max_connections);
                admission.http1_allowed.store(grown, Ordering::Relaxed);
                admission.gate.allow_events(grown);
                admission.resize(grown as usize);
            }
            continue;
        }
        // Stopping; a request that queued in between, and saw the task still running, is
        // looked at once more.
        admission.growing.store(false, Ordering::Release);
        let again = admission.queued.load(Ordering::Relaxed) > 0 && admission.may_grow();
        if !again || admission.growing.swap(true, Ordering::AcqRel) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_requests_in_flight_follow_the_server_up_to_the_bound() {
        let admission = Admission::new(4096, false, &Gate::new(4096));
        assert_eq!(admission.permits.available_permits(), 1, "one at a time until the protocol is known");
        // 8 connections of 128 streams: the server's limit decides.
        let few = Admission::new(8, false, &Gate::new(8));
        few.size_for(true, 128);
        assert_eq!(few.permits.available_permits(), 8 * 128);
        // 4,096 connections of 128 streams would be 524,288 in flight: bounded.
        admission.size_for(true, 128);
        assert_eq!(admission.max_in_flight(128), MOST_STREAMS_IN_FLIGHT);
        assert_eq!(admission.permits.available_permits(), MOST_STREAMS_IN_FLIGHT as usize);
        // HTTP/1.1: a request in flight is a connection, up to the cap.
        let plain = Admission::new(4096, true, &Gate::new(4096));
        assert_eq!(plain.max_in_flight(128), 4096);
    }
}
