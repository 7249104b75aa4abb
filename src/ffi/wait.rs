//! `cm_wait_options` and `cm_wait_result`: poll a task until it is ready.

use std::ffi::c_char;
use std::time::Duration;

use std::sync::Arc;

use crate::api::error::Error;
use crate::api::schedule::{self, Schedule, TaskHead};
use crate::cancel::Cancel;
use crate::ffi::arguments::{handle, optional_shared, optional_struct, out, text};
use crate::ffi::boundary;
use crate::ffi::cancel::cm_cancel;
use crate::ffi::client::cm_client;
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

    fn schedule(&self) -> Schedule {
        Schedule {
            first_delay: Duration::from_millis(u64::from(self.first_delay_ms)),
            interval: Duration::from_millis(u64::from(self.interval_ms)),
            timeout: Duration::from_millis(u64::from(self.timeout_ms)),
            max_requests: self.max_requests,
        }
    }

    /// The schedule and the cancel of the options behind `options` (NULL: the defaults, no
    /// cancel); the cancel is a reference of the wait's own.
    ///
    /// # Safety
    /// `options` is NULL or readable, its `cancel` NULL or a live token.
    pub(crate) unsafe fn read(options: *const cm_wait_options) -> (Schedule, Option<Arc<Cancel>>) {
        // SAFETY: the caller's contract, for `options` and its `cancel`.
        unsafe {
            match optional_struct(options) {
                Some(options) => (options.schedule(), optional_shared(options.cancel)),
                None => (schedule::DEFAULT, None),
            }
        }
    }
}

/// Fills `options` with the library defaults: 1000 ms first delay, 2000 ms interval,
/// 180000 ms timeout, 120 requests, no cancel. NULL is ignored.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_wait_options_init(options: *mut cm_wait_options) {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::value((), || {
            out(options, "options")?.write(cm_wait_options::from_schedule(&schedule::DEFAULT));
            Ok(())
        })
    }
}

/// Fills every field of `options` (cancel = NULL) with the official SDKs' schedule for
/// `task_type` (e.g. "ImageToTextTask": 350 / 200 / 10000 ms). "...Proxyless" names share
/// their base type's schedule; unknown types get the `cm_wait_options_init` defaults (CM_OK).
/// CM_ERR_INVALID_ARGUMENT, with `options` left as it was, when `options` or `task_type` is
/// NULL or `task_type` is not UTF-8.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_wait_options_for_task_type(
    options: *mut cm_wait_options,
    task_type: *const c_char,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::code(|| {
            let (mut options, task_type) = (out(options, "options")?, text(task_type, "task_type")?);
            options.write(cm_wait_options::from_schedule(&schedule::for_task_type(task_type)));
            Ok(())
        })
    }
}

/// Fills every field of `options` (cancel = NULL) with the official SDKs' schedule for the
/// task `task_json` as created (the `task` object given to `cm_create_task`): by its "type",
/// the "class" of a CustomTask or ComplexImageTask (e.g. "Imperva": 1000 / 1000 / 15000 ms),
/// and "nocache": true (e.g. a reCAPTCHA or hCaptcha task: 10000 ms before the first poll).
/// A class without a row gets its type's schedule (`cm_wait_options_for_task_type`); an
/// unknown type gets the `cm_wait_options_init` defaults (CM_OK).
/// CM_ERR_INVALID_ARGUMENT, with `options` left as it was, when `options` or `task_json` is
/// NULL, or `task_json` is not UTF-8 or not a JSON object with a non-empty string "type".
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_wait_options_for_task(
    options: *mut cm_wait_options,
    task_json: *const c_char,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::code(|| {
            let (mut options, task_json) = (out(options, "options")?, text(task_json, "task_json")?);
            let task = TaskHead::parse(task_json).map_err(Error::invalid_argument)?;
            options.write(cm_wait_options::from_schedule(&schedule::for_task(&task)));
            Ok(())
        })
    }
}

/// Polls `task_id` until it is ready (CM_OK, ready), the service reports an error, the
/// timeout passes (CM_ERR_TIMEOUT), the cancel triggers (CM_ERR_CANCELLED) or the budget is
/// spent (CM_ERR_BUDGET_EXHAUSTED). Network errors, request timeouts, HTTP 5xx/429 and
/// ERROR_TOO_MUCH_REQUESTS are retried at the next poll. `options` NULL means the defaults.
/// Blocks the calling thread; a `cm_cancel` in the options stops it from another thread.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_wait_result(
    client: *const cm_client,
    task_id: i64,
    options: *const cm_wait_options,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::result(out_result, task_id, || {
            let (client, (schedule, cancel)) = (handle(client, "client")?, cm_wait_options::read(options));
            let report = wait::wait(client, task_id, &schedule, cancel.as_ref());
            Ok(CallResult::from_task_report(report, task_id))
        })
    }
}
