//! `cm_result`: the accessors of what one call did (`call_result.rs` holds the value), and its
//! free.

use std::ffi::{c_char, CString};

use crate::api::codes::{cm_code, CM_ERR_INVALID_ARGUMENT};
use crate::ffi::arguments::{handle, text};
use crate::ffi::boundary;
pub use crate::ffi::call_result::{cm_result, CallResult};
use crate::ffi::handle::free_box;

fn opt_ptr(text: &Option<CString>) -> *const c_char {
    text.as_ref().map_or(std::ptr::null(), |text| text.as_ptr())
}

/// The code the call returned. `CM_ERR_INVALID_ARGUMENT` for NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_code(r: *const cm_result) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(CM_ERR_INVALID_ARGUMENT, || Ok(handle(r, "r")?.code)) }
}

/// 1 when the task's status was "ready" (the solution is there), else 0.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_is_ready(r: *const cm_result) -> i32 {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(0, || Ok(i32::from(handle(r, "r")?.ready))) }
}

/// The task the call was about (the new task for cm_create_task); 0 when none.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_task_id(r: *const cm_result) -> i64 {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(0, || Ok(handle(r, "r")?.task_id)) }
}

/// The solution object as the service sent it (JSON text); NULL unless ready.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_solution_json(r: *const cm_result) -> *const c_char {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(std::ptr::null(), || Ok(opt_ptr(&handle(r, "r")?.solution_json))) }
}

/// The top-level string member `field` of the solution (e.g. "text", "gRecaptchaResponse"),
/// unescaped; NULL when not ready, absent, not a string, or holding a NUL character, and for
/// a NULL or non-UTF-8 `field`.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_solution_string(r: *const cm_result, field: *const c_char) -> *const c_char {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::value(std::ptr::null(), || {
            let (r, field) = (handle(r, "r")?, text(field, "field")?);
            Ok(r.solution_strings.get(field).map_or(std::ptr::null(), |value| value.as_ptr()))
        })
    }
}

/// The text a call answered with: the User-Agent of `cm_get_user_agent` on CM_OK; else NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_text(r: *const cm_result) -> *const c_char {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(std::ptr::null(), || Ok(opt_ptr(&handle(r, "r")?.text))) }
}

/// The service's errorCode (e.g. "ERROR_CAPTCHA_UNSOLVABLE") when it answered with an error,
/// else NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_api_error_code(r: *const cm_result) -> *const c_char {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(std::ptr::null(), || Ok(opt_ptr(&handle(r, "r")?.api_error_code))) }
}

/// The service's errorDescription when it sent one, else NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_api_error_description(r: *const cm_result) -> *const c_char {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(std::ptr::null(), || Ok(opt_ptr(&handle(r, "r")?.api_error_description))) }
}

/// One human-readable line on what happened. Never NULL (for a NULL `r`, a static text).
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_message(r: *const cm_result) -> *const c_char {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(c"result is NULL".as_ptr(), || Ok(handle(r, "r")?.message.as_ptr())) }
}

/// The HTTP requests this call sent, retries included.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_request_count(r: *const cm_result) -> u32 {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(0, || Ok(handle(r, "r")?.request_count)) }
}

/// The last HTTP status received, 0 if no answer arrived.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_http_status(r: *const cm_result) -> i32 {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(0, || Ok(handle(r, "r")?.http_status)) }
}

/// Frees a result and every string read from it. NULL is fine.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_result_free(r: *mut cm_result) {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::value((), || {
            free_box(r);
            Ok(())
        })
    }
}
