//! `cm_wait_options` and `cm_wait_result`: poll a task until it is ready.

use std::ffi::c_char;
use std::time::Duration;

use crate::api::error::Error;
use crate::api::schedule::{self, Schedule};
use crate::ffi::boundary::{str_arg, with_code, with_result};
use crate::ffi::cancel::cm_cancel;
use crate::ffi::client::{client_arg, cm_client};
use crate::ffi::handle::clone_arc;
use crate::ffi::library::cm_code;
use crate::ffi::result::{cm_result, CallResult};
use crate::wait;

/// How `cm_wait_result` polls. Always start from `cm_wait_options_init` or
/// `cm_wait_options_for_task_type`, then change what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cm_wait_options {
    /// Sleep before the first request. Default 1000.
    pub first_delay_ms: u32,
    /// Sleep between an answer and the next request; at least 1. Default 2000 (the service's
    /// documented minimum). Doubled (up to 60 s) when the service says to slow down.
    pub interval_ms: u32,
    /// The whole wait, from the call: then CM_ERR_TIMEOUT. Default 180000.
    pub timeout_ms: u32,
    /// The most requests this wait may send; at least 1. Default 120. The budget of 120 per
    /// task, shared by the user's processes, applies as well.
    pub max_requests: u32,
    /// Triggering it ends the wait with CM_ERR_CANCELLED; may be NULL.
    pub cancel: *const cm_cancel,
}

impl cm_wait_options {
    fn from_schedule(schedule: &Schedule) -> Self {
        let millis = |duration: Duration| u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
        cm_wait_options {
            first_delay_ms: millis(schedule.first_delay),
            interval_ms: millis(schedule.interval),
            timeout_ms: millis(schedule.timeout),
            max_requests: schedule.max_requests,
            cancel: std::ptr::null(),
        }
    }

    pub(crate) fn schedule(&self) -> Schedule {
        Schedule {
            first_delay: Duration::from_millis(u64::from(self.first_delay_ms)),
            interval: Duration::from_millis(u64::from(self.interval_ms)),
            timeout: Duration::from_millis(u64::from(self.timeout_ms)),
            max_requests: self.max_requests,
        }
    }
}

/// Fills `options` with the library defaults: 1000 ms first delay, 2000 ms interval,
/// 180000 ms timeout, 120 requests, no cancel. NULL is ignored.
///
/// # Safety
/// `options` is NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_wait_options_init(options: *mut cm_wait_options) {
    if !options.is_null() {
        // SAFETY: not NULL, writable by contract.
        unsafe { options.write(cm_wait_options::from_schedule(&schedule::DEFAULT)) };
    }
}

/// Fills every field of `options` (cancel = NULL) with the official SDKs' schedule for
/// `task_type` (e.g. "ImageToTextTask": 350 / 200 / 10000 ms). "...Proxyless" names share
/// their base type's schedule; unknown types get the `cm_wait_options_init` defaults (CM_OK).
/// CM_ERR_INVALID_ARGUMENT, with `options` left as it was, when `options` or `task_type` is
/// NULL or `task_type` is not UTF-8.
///
/// # Safety
/// `options` is NULL or writable; `task_type` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "system" fn cm_wait_options_for_task_type(
    options: *mut cm_wait_options,
    task_type: *const c_char,
) -> cm_code {
    with_code(|| {
        if options.is_null() {
            return Err(Error::invalid_argument("options is NULL"));
        }
        // SAFETY: the caller's contract.
        let task_type = unsafe { str_arg(task_type, "task_type") }?;
        // SAFETY: not NULL, writable by contract.
        unsafe { options.write(cm_wait_options::from_schedule(&schedule::for_task_type(task_type))) };
        Ok(())
    })
}

/// Polls `task_id` until it is ready (CM_OK, ready), the service reports an error, the
/// timeout passes (CM_ERR_TIMEOUT), the cancel triggers (CM_ERR_CANCELLED) or the budget is
/// spent (CM_ERR_BUDGET_EXHAUSTED). Network errors, request timeouts, HTTP 5xx/429 and
/// ERROR_TOO_MUCH_REQUESTS are retried at the next poll. `options` NULL means the defaults.
///
/// # Safety
/// `client` is NULL or a live client; `options` is NULL or points to a `cm_wait_options`
/// whose `cancel` is NULL or a live token; `out_result` is NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_wait_result(
    client: *const cm_client,
    task_id: i64,
    options: *const cm_wait_options,
    out_result: *mut *mut cm_result,
) -> cm_code {
    with_result(out_result, task_id, || {
        // SAFETY: the caller's contract.
        let (client, options) = unsafe { (client_arg(client)?, wait_options(options)) };
        // SAFETY: the caller's contract for options.cancel.
        let cancel = unsafe { clone_arc(options.cancel) };
        let report = wait::wait(client, task_id, &options.schedule(), cancel.as_ref());
        Ok(CallResult::from_task_report(report, task_id))
    })
}

/// The options behind a pointer from C; NULL means the defaults.
///
/// # Safety
/// `options` is NULL or readable.
pub(crate) unsafe fn wait_options(options: *const cm_wait_options) -> cm_wait_options {
    if options.is_null() {
        cm_wait_options::from_schedule(&schedule::DEFAULT)
    } else {
        // SAFETY: not NULL, readable by contract; every bit pattern is a valid value.
        unsafe { options.read() }
    }
}
