//! libcapmonster: a blocking client for the CapMonster Cloud captcha-solving API, with a C ABI.
//!
//! Layers, top to bottom (each uses only the ones below it):
//! - [`ffi`]: the `extern "system"` functions of `include/capmonster.h`: pointer and string checks,
//!   the panic boundary, result objects (which also read the solution JSON for
//!   `cm_result_solution_string`). One file per C type; `handle` casts every C pointer.
//! - [`waiter`]: many waits at once; their outcomes queue for `next` (an eventfd on Linux).
//!   `engine` drives them: one timer heap and at most `max_connections` worker threads per
//!   client, shared by the client's waiters.
//! - [`wait`]: the rules of one wait (schedule, deadline, retries, back-off) as a state
//!   machine, and the blocking wait that sleeps between its polls.
//! - [`client`]: the safe Rust client, one method per API call, with its settings, the
//!   per-call bounds (deadline, cancels) and budget admission.
//! - `gate`: the cap on a client's connections; `inflight`: the cancels of the request on
//!   this thread, and the connector wrapper that lets them shut down the connection it uses.
//! - `transport`: one HTTP exchange over the client's ureq connection pool, failures
//!   classified; `tcp`: the non-blocking TCP transport under it; `resolve`: name resolution
//!   (cached, one lookup per name at a time, waits that a cancel ends).
//! - [`answer`]: classifying one answer (status + body) without I/O.
//! - [`budget`]: the count of getTaskResult requests per task (120 at most), shared by the
//!   user's processes through a file ([`budget_file`]) or kept in the process.
//! - [`cancel`]: the cancellation token, which wakes sleepers and tells its watchers;
//!   [`schedule`], [`endpoint`], [`trust`], [`error`] and [`codes`] (the C return codes, the
//!   one table the core's `Code` is built from): data and small parts.

/// cbindgen:ignore
pub mod answer;
/// cbindgen:ignore
pub mod budget;
/// cbindgen:ignore
#[cfg(any(unix, windows))]
pub mod budget_file;
/// cbindgen:ignore
pub mod cancel;
/// cbindgen:ignore
pub mod client;
pub mod codes;
/// cbindgen:ignore
mod engine;
/// cbindgen:ignore
pub mod endpoint;
/// cbindgen:ignore
pub mod error;
/// cbindgen:ignore
mod gate;
/// cbindgen:ignore
mod inflight;
pub mod ffi;
/// cbindgen:ignore
mod resolve;
/// cbindgen:ignore
pub mod schedule;
/// cbindgen:ignore
mod tcp;
/// cbindgen:ignore
mod transport;
/// cbindgen:ignore
pub mod trust;
/// cbindgen:ignore
pub mod wait;
/// cbindgen:ignore
pub mod waiter;

pub use answer::TaskState;
pub use cancel::Cancel;
pub use client::{CallOptions, Client, Incorrect, Report};
pub use error::{ApiError, Code, Error};
pub use gate::DEFAULT_MAX_CONNECTIONS;
pub use schedule::Schedule;
pub use waiter::{Finished, Next, Waiter};
