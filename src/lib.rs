//! libcapmonster: a blocking client for the CapMonster Cloud captcha-solving API, with a C ABI.
//!
//! Floors, top to bottom; each folder uses only the ones below it:
//! - [`ffi`]: the `extern "system"` functions of `include/capmonster.h` and nothing else:
//!   argument checks, the panic boundary, result objects. One file per C type.
//! - [`wait`]: the rules of one wait (schedule, deadline, retries, back-off), the blocking wait,
//!   and many waits at once on a [`Waiter`], driven by the client's engine (one timer heap, at
//!   most `max_connections` worker threads).
//! - [`client`]: the safe Rust client, one method per API call, with its settings, the per-call
//!   bounds (deadline, cancels), budget admission and the call's [`Report`].
//! - [`budget`]: what may be sent: the count of getTaskResult requests per task (120 at most),
//!   shared by the user's processes through a mapped file (`budget::file`) or kept in the
//!   process.
//! - [`net`]: endpoint and proxy rules, trust, name resolution, TCP, the cancels of a request in
//!   flight, the cap on a client's connections, one HTTP exchange with its failures classified.
//! - [`cancel`]: the cancellation token, which wakes sleepers and tells its watchers.
//! - [`log`]: the process's log hook (levels, event names, one sink), used by every floor above.
//! - [`api`]: the service's API as data, with no I/O: answer classification, the C return codes
//!   (the one table the core's [`Code`] is built from), the error type, schedules, limits.
//!
//! One deliberate back-reference: a [`Client`] holds (weakly) the engine that drives its
//! waiters, so that every waiter of a client shares one timer and one set of workers, and the
//! engine, which lives in `wait`, calls the client back to poll. `tests/layers.rs` keeps these
//! floors: it fails on any other upward import.

pub mod api;
/// cbindgen:ignore
pub mod budget;
/// cbindgen:ignore
pub mod cancel;
/// cbindgen:ignore
pub mod client;
pub mod ffi;
/// cbindgen:ignore
pub mod log;
/// cbindgen:ignore
pub mod net;
/// cbindgen:ignore
pub mod wait;

pub use api::answer::TaskState;
pub use api::error::{ApiError, Code, Error};
pub use api::schedule::Schedule;
pub use cancel::Cancel;
pub use client::{CallOptions, Client, Engine, Incorrect, Report, Stats};
pub use wait::waiter::{Finished, Next, Waiter};
