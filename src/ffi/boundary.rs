//! The panic boundary and the checks applied to everything that comes from C.

use std::any::Any;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Code, Error};
use crate::ffi::library::{cm_code, CM_OK};
use crate::ffi::result::{cm_result, CallResult};

/// Runs `body`; a panic becomes `on_panic` instead of unwinding into C.
pub(crate) fn catch<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// Runs a call that reports through a `cm_result`: checks `out_result`, catches panics, stores
/// the result (on success and failure alike) and returns its code.
pub(crate) fn with_result(out_result: *mut *mut cm_result, body: impl FnOnce() -> CallResult) -> cm_code {
    if out_result.is_null() {
        return Code::InvalidArgument as cm_code;
    }
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| CallResult::from_panic(panic.as_ref()));
    let code = result.code();
    // SAFETY: out_result is not NULL and, by the documented contract, points to writable memory.
    unsafe { out_result.write(result.into_raw()) };
    code
}

/// Runs a call that reports only a code.
pub(crate) fn with_code(body: impl FnOnce() -> Result<(), Error>) -> cm_code {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CM_OK,
        Ok(Err(error)) => error.code as cm_code,
        Err(_) => Code::Internal as cm_code,
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
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

/// A handle argument: `*const cm_x` to the Rust value behind it.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `T` made by this library.
pub(crate) unsafe fn handle<'a, C, T>(ptr: *const C, name: &str) -> Result<&'a T, Error> {
    if ptr.is_null() {
        return Err(Error::invalid_argument(format!("{name} is NULL")));
    }
    // SAFETY: the caller's contract: a live handle whose pointee is a T.
    Ok(unsafe { &*(ptr as *const T) })
}

/// Checks an out-parameter (other than `out_result`) before anything is sent.
pub(crate) fn out_arg<T>(ptr: *mut T, name: &str) -> Result<(), Error> {
    if ptr.is_null() {
        return Err(Error::invalid_argument(format!("{name} is NULL")));
    }
    Ok(())
}
