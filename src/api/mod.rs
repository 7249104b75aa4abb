//! The service's API as data, with no I/O: classifying one answer (the fuzz target), the C
//! return codes and the core's error type built from them, the service's error glossary,
//! polling schedules, and the limits the service documents. The bottom floor: it uses nothing else of the crate.

/// cbindgen:ignore
pub mod answer;
pub mod codes;
/// cbindgen:ignore
pub mod error;
/// cbindgen:ignore
pub mod glossary;
/// cbindgen:ignore
pub mod limits;
/// cbindgen:ignore
pub mod schedule;
/// cbindgen:ignore
pub mod text;

pub use limits::REQUESTS_PER_TASK;
