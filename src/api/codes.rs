//! The return codes of the C API: the one definition of their numbers (here, where cbindgen
//! reads them into the header) and of their names (the constants' own names). The core's
//! [`Code`](crate::Code) enum, `cm_code_name` and the tests' lists are all built from this
//! table by `error.rs`.

#![allow(non_camel_case_types)]

/// A return code: `CM_OK` or one of the `CM_ERR_*` values. Numbers are never reused or
/// renumbered; new codes are added at the end.
pub type cm_code = i32;

/// Success.
pub const CM_OK: cm_code = 0;
/// An argument was NULL, not UTF-8, empty or out of range; nothing was sent.
pub const CM_ERR_INVALID_ARGUMENT: cm_code = 1;
/// The service answered with an error (`errorId != 0`): see `cm_result_api_error_code`.
pub const CM_ERR_API: cm_code = 2;
/// Connection refused or reset, DNS, TLS, or an answer cut short.
pub const CM_ERR_NETWORK: cm_code = 3;
/// A request, or a wait, ran out of time.
pub const CM_ERR_TIMEOUT: cm_code = 4;
/// A non-2xx HTTP status without an API error body (3xx included: redirects are not followed).
pub const CM_ERR_HTTP_STATUS: cm_code = 5;
/// The answer was not what the API promises (not JSON, unknown status, too large, ...).
pub const CM_ERR_BAD_RESPONSE: cm_code = 6;
/// The task's 120 getTaskResult requests, or the wait's `max_requests`, are spent.
pub const CM_ERR_BUDGET_EXHAUSTED: cm_code = 7;
/// A `cm_cancel` of the call or wait was triggered, or its waiter was shut down.
pub const CM_ERR_CANCELLED: cm_code = 8;
/// A bug in the library (a caught panic). Please report it.
pub const CM_ERR_INTERNAL: cm_code = 9;
