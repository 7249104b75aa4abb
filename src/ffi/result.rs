//! `cm_result`: what one call did, with its code, message and, for a ready task, the solution.
//!
//! Every string is built once, at creation; accessors hand out pointers into it.

use std::any::Any;
use std::collections::BTreeMap;
use std::ffi::{c_char, CString};

use serde_json::value::RawValue;

use crate::api::answer::TaskState;
use crate::api::error::panic_message;
use crate::api::error::{Code, Error};
use crate::client::Report;
use crate::ffi::arguments::{handle, text};
use crate::ffi::boundary;
use crate::ffi::handle::{free_box, into_box, opaque};
use crate::ffi::library::{cm_code, CM_ERR_INVALID_ARGUMENT, CM_OK};

opaque! {
    /// The outcome of one call; read it with the `cm_result_*` accessors. Made by the calls
    /// that take `out_result` and by `cm_waiter_next`; the caller frees it with `cm_result_free`,
    /// which also frees every string read from it. It never changes.
    pub struct cm_result(Box<CallResult>);
}

/// The Rust value behind a `cm_result *`.
#[derive(Debug)]
pub struct CallResult {
    code: cm_code,
    ready: bool,
    task_id: i64,
    solution_json: Option<CString>,
    /// The solution's top-level string members, for `cm_result_solution_string`.
    solution_strings: BTreeMap<String, CString>,
    api_error_code: Option<CString>,
    api_error_description: Option<CString>,
    message: CString,
    request_count: u32,
    http_status: i32,
}

/// A C string from text that may contain NUL bytes (they are shown as `\0`).
fn c_text(text: &str) -> CString {
    CString::new(text).unwrap_or_else(|_| CString::new(text.replace('\0', "\\0")).unwrap_or_default())
}

impl CallResult {
    fn new(code: cm_code, task_id: i64, message: &str) -> Self {
        CallResult {
            code,
            ready: false,
            task_id,
            solution_json: None,
            solution_strings: BTreeMap::new(),
            api_error_code: None,
            api_error_description: None,
            message: c_text(message),
            request_count: 0,
            http_status: 0,
        }
    }

    pub fn from_error(error: &Error, task_id: i64) -> Self {
        let mut result = CallResult::new(error.code as cm_code, task_id, &error.message);
        if let Some(api) = &error.api {
            result.api_error_code = api.code.as_deref().map(c_text);
            result.api_error_description = api.description.as_deref().map(c_text);
        }
        result.http_status = error.http_status.map_or(0, i32::from);
        result
    }

    pub fn from_panic(panic: &(dyn Any + Send)) -> Self {
        let message = format!("internal error (a bug in libcapmonster, please report it): {}", panic_message(panic));
        CallResult::new(Code::Internal as cm_code, 0, &message)
    }

    /// The result of a call that talked (or meant to talk) to the service. `describe` words
    /// the success message.
    pub fn from_report<T>(report: Report<T>, task_id: i64, describe: impl FnOnce(&T) -> String) -> (Self, Option<T>) {
        let (mut result, value) = match report.result {
            Ok(value) => (CallResult::new(CM_OK, task_id, &describe(&value)), Some(value)),
            Err(error) => (CallResult::from_error(&error, task_id), None),
        };
        result.request_count = report.requests;
        if let Some(status) = report.http_status {
            result.http_status = i32::from(status);
        }
        (result, value)
    }

    /// The result of getTaskResult or a wait.
    pub fn from_task_report(mut report: Report<TaskState>, task_id: i64) -> Self {
        let requests = report.requests;
        let notice = report.notice.take();
        let (mut result, state) = CallResult::from_report(report, task_id, |state| match state {
            TaskState::Ready(_) => format!("task {task_id} is ready ({requests} requests)"),
            TaskState::Processing => format!("task {task_id} is still processing"),
        });
        if let Some(TaskState::Ready(solution)) = state {
            result.set_solution(&solution);
        }
        // Once per client: why the request budget is not shared, or what was repaired.
        if let Some(notice) = notice {
            let message = format!("{} (note: {notice})", result.message.to_string_lossy());
            result.message = c_text(&message);
        }
        result
    }

    fn set_solution(&mut self, solution: &RawValue) {
        self.ready = true;
        self.solution_json = Some(c_text(solution.get()));
        // Members whose value is a string; a string holding a NUL byte cannot be handed to C
        // and is left out (cm_result_solution_json still has it).
        // A repeated member: the last one wins, as in most JSON readers.
        let members: BTreeMap<String, &RawValue> = serde_json::from_str(solution.get()).unwrap_or_default();
        self.solution_strings = members
            .into_iter()
            .filter_map(|(name, value)| {
                let text: String = serde_json::from_str(value.get()).ok()?;
                Some((name, CString::new(text).ok()?))
            })
            .collect();
    }

    pub fn with_task_id(mut self, task_id: i64) -> Self {
        self.task_id = task_id;
        self
    }

    pub fn code(&self) -> cm_code {
        self.code
    }

    pub fn into_raw(self) -> *mut cm_result {
        into_box::<cm_result>(self)
    }

    /// A success that only needs a message (a setter's).
    pub fn ok(message: &str) -> Self {
        CallResult::new(CM_OK, 0, message)
    }
}

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
