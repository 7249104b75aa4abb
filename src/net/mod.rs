//! Talking to the service: the endpoint and proxy rules, trust (which certificates), name
//! resolution, the TCP transport, the counts of what connections carried (`wire.rs`), the cancels of the request in flight, the cap on a client's
//! connections, and one HTTP exchange with its failures classified (blocking on ureq, or as a future on
//! the event loop's hyper client: `events/`). Uses only [`crate::api`]
//! and [`crate::cancel`].

/// cbindgen:ignore
pub mod endpoint;
/// cbindgen:ignore
pub(crate) mod events;
/// cbindgen:ignore
pub(crate) mod gate;
/// cbindgen:ignore
pub(crate) mod inflight;
/// cbindgen:ignore
pub(crate) mod resolve;
/// cbindgen:ignore
pub(crate) mod tcp;
/// cbindgen:ignore
pub(crate) mod transport;
/// cbindgen:ignore
pub mod trust;
/// cbindgen:ignore
pub(crate) mod wire;
