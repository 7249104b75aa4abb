//! The limits the service documents (../shared/capmonster-api.md, "Limits that protect the
//! user's account"): the numbers the library's own bounds are derived from.

/// At most this many getTaskResult requests per task: the service may lock an account that
/// sends more (its getTaskResult page; the ban reason `WrongTaskId`).
pub const REQUESTS_PER_TASK: u32 = 120;
