//! Waiting for tasks: the rules of one wait ([`polling`](crate::wait::polling): schedule, deadline, retries,
//! back-off) and the blocking wait that sleeps between its polls; many waits at once on a
//! [`Waiter`](crate::wait::waiter::Waiter), whose outcomes queue in its inbox, driven by the client's
//! `engine` (one timer heap, at most `max_connections` worker threads; or, with the client's
//! event loop on, one timer thread and an event loop that has every request in flight: `events`).

/// cbindgen:ignore
pub(crate) mod engine;
/// cbindgen:ignore
pub(crate) mod events;
/// cbindgen:ignore
pub(crate) mod inbox;
/// cbindgen:ignore
pub mod polling;
/// cbindgen:ignore
pub mod waiter;

pub(crate) use polling::Polling;
pub use polling::{check_schedule, wait, MAX_INTERVAL};
