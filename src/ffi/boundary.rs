//! The panic boundary, and the three ways an export answers C.
//!
//! Every export's body runs in [`catch`], the one `catch_unwind` of the library, through one
//! of the shapes below; it reads its arguments with [`arguments`](super::arguments).
//! - [`value`]: accessors, frees and the like: the value, or its documented default when an
//!   argument is refused or the body panics;
//! - [`code`]: a `cm_code` only;
//! - [`result`] and [`optional_result`]: a `cm_code` and, in `*out_result`, a `cm_result`
//!   saying why (also on a refusal or a panic).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::api::codes::{cm_code, CM_ERR_INVALID_ARGUMENT, CM_OK};
use crate::api::error::{Code, Error};
use crate::ffi::arguments::{optional_out, Out, Refusal};
use crate::ffi::call_result::{cm_result, CallResult};

/// Runs `body`; a panic is handed back instead of unwinding into C.
fn catch<T>(body: impl FnOnce() -> T) -> Result<T, Box<dyn Any + Send>> {
    catch_unwind(AssertUnwindSafe(body))
}

/// An export that answers with a value: `fallback` when an argument is refused or on a panic.
pub(crate) fn value<T>(fallback: T, body: impl FnOnce() -> Result<T, Refusal>) -> T {
    match catch(body) {
        Ok(Ok(value)) => value,
        Ok(Err(_)) | Err(_) => fallback,
    }
}

/// An export that answers with a code only.
pub(crate) fn code(body: impl FnOnce() -> Result<(), Error>) -> cm_code {
    match catch(body) {
        Ok(Ok(())) => CM_OK,
        Ok(Err(error)) => error.code as cm_code,
        Err(_) => Code::Internal as cm_code,
    }
}

/// An export that answers with a code and a `cm_result`, stored on every return but a NULL
/// `out_result` (then CM_ERR_INVALID_ARGUMENT, and `body` does not run). A refusal or an
/// error from `body` becomes a result carrying `task_id`.
///
/// # Safety
/// `out_result` is NULL or writable.
pub(crate) unsafe fn result(
    out_result: *mut *mut cm_result,
    task_id: i64,
    body: impl FnOnce() -> Result<CallResult, Error>,
) -> cm_code {
    // SAFETY: forwarded contract.
    match unsafe { optional_out(out_result) } {
        Some(out_result) => store(out_result, task_id, body),
        None => CM_ERR_INVALID_ARGUMENT,
    }
}

/// As [`result`], for the exports whose `out_result` may be NULL (creation, setters,
/// `cm_waiter_add_with_result`): `body` then runs all the same, and only its code is returned.
///
/// # Safety
/// `out_result` is NULL or writable.
pub(crate) unsafe fn optional_result(
    out_result: *mut *mut cm_result,
    task_id: i64,
    body: impl FnOnce() -> Result<CallResult, Error>,
) -> cm_code {
    // SAFETY: forwarded contract.
    match unsafe { optional_out(out_result) } {
        Some(out_result) => store(out_result, task_id, body),
        None => run(task_id, body).code(),
    }
}

fn store(
    mut out_result: Out<'_, *mut cm_result>,
    task_id: i64,
    body: impl FnOnce() -> Result<CallResult, Error>,
) -> cm_code {
    let result = run(task_id, body);
    let code = result.code();
    out_result.write(result.into_raw());
    code
}

fn run(task_id: i64, body: impl FnOnce() -> Result<CallResult, Error>) -> CallResult {
    match catch(body) {
        Ok(Ok(result)) => result,
        Ok(Err(error)) => CallResult::from_error(&error, task_id),
        Err(panic) => CallResult::from_panic(panic.as_ref()),
    }
}
