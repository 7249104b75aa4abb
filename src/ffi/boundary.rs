//! The panic boundary and the checks applied to everything that comes from C.

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::api::error::{Code, Error};
use crate::ffi::library::{cm_code, CM_OK};
use crate::ffi::result::{cm_result, CallResult};

/// Runs `body`; a panic becomes `on_panic` instead of unwinding into C.
pub(crate) fn catch<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// Runs a call that reports through a `cm_result`: checks `out_result`, catches panics, stores
/// the result (on success and failure alike) and returns its code. `body` checks its arguments
/// with `?`; a refusal becomes a result carrying `task_id`.
pub(crate) fn with_result(
    out_result: *mut *mut cm_result,
    task_id: i64,
    body: impl FnOnce() -> Result<CallResult, Error>,
) -> cm_code {
    if out_result.is_null() {
        return Code::InvalidArgument as cm_code;
    }
    let result = run(task_id, body);
    let code = result.code();
    // SAFETY: out_result is not NULL and, by the documented contract, points to writable memory.
    unsafe { out_result.write(result.into_raw()) };
    code
}

/// As [`with_result`], for the calls whose `out_result` may be NULL (client creation and
/// setters): the result is then dropped and only the code returned.
pub(crate) fn with_optional_result(
    out_result: *mut *mut cm_result,
    body: impl FnOnce() -> Result<CallResult, Error>,
) -> cm_code {
    if out_result.is_null() {
        return run(0, body).code();
    }
    with_result(out_result, 0, body)
}

fn run(task_id: i64, body: impl FnOnce() -> Result<CallResult, Error>) -> CallResult {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(result)) => result,
        Ok(Err(error)) => CallResult::from_error(&error, task_id),
        Err(panic) => CallResult::from_panic(panic.as_ref()),
    }
}

/// Runs a call that reports only a code.
pub(crate) fn with_code(body: impl FnOnce() -> Result<(), Error>) -> cm_code {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CM_OK,
        Ok(Err(error)) => error.code as cm_code,
        Err(_) => Code::Internal as cm_code,
    }
}

/// A C string argument as UTF-8. `name` is the parameter's name, for the message.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::invalid_argument(format!("{name} is NULL")));
    }
    // SAFETY: not NULL, NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes)
        .map_err(|e| Error::invalid_argument(format!("{name} is not valid UTF-8 (at byte {})", e.valid_up_to())))
}

/// Like [`str_arg`], but NULL means "not given".
///
/// # Safety
/// As for [`str_arg`].
pub(crate) unsafe fn optional_str_arg<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>, Error> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { str_arg(ptr, name) }.map(Some)
    }
}

/// Checks an out-parameter (other than `out_result`) before anything is sent.
pub(crate) fn out_arg<T>(ptr: *mut T, name: &str) -> Result<(), Error> {
    if ptr.is_null() {
        return Err(Error::invalid_argument(format!("{name} is NULL")));
    }
    Ok(())
}
