//! libcapmonster: a blocking client for the CapMonster Cloud captcha-solving API, with a C ABI.
//!
//! Layers, top to bottom (each uses only the ones below it):
//! - [`ffi`]: the `extern "C"` functions of `include/capmonster.h`: pointer and string checks,
//!   the panic boundary, result objects. No HTTP or JSON.
//! - [`wait`]: the polling loop (schedule, deadline, cancel, retries, back-off).
//! - [`client`]: the safe Rust client, one method per API call, with its settings and budget.
//! - `transport`: one HTTP exchange over the client's ureq connection pool, failures classified.
//! - [`answer`]: classifying one answer (status + body) without I/O.
//! - [`budget`]: the process-wide count of getTaskResult requests per task (120 at most).
//! - [`schedule`], [`cancel`], [`endpoint`], [`trust`], [`error`]: data and small parts.

/// cbindgen:ignore
pub mod answer;
/// cbindgen:ignore
pub mod budget;
/// cbindgen:ignore
pub mod cancel;
/// cbindgen:ignore
pub mod client;
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
pub use client::{CallOptions, Client, Report};
pub use error::{ApiError, Code, Error};
pub use gate::DEFAULT_MAX_CONNECTIONS;
pub use schedule::Schedule;
pub use waiter::{Finished, Next, Waiter};
