//! The single API calls: getTaskResult, createTask, getBalance and the two reports of a wrong
//! answer, each also `_with` per-call options (a timeout and a cancel that reaches the request
//! in flight).
//!
//! Each writes a new `cm_result` to `*out_result` on every return but a NULL `out_result`;
//! other out-parameters are written only on CM_OK.

use std::ffi::c_char;
use std::time::Duration;

use crate::client::{CallOptions, Incorrect};
use crate::ffi::boundary::{optional_str_arg, out_arg, str_arg, with_result};
use crate::ffi::cancel::cm_cancel;
use crate::ffi::client::{client_arg, cm_client};
use crate::ffi::handle::clone_arc;
use crate::ffi::library::cm_code;
use crate::ffi::result::{cm_result, CallResult};

/// Per-call options of the `_with` calls. Start from `cm_call_options_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cm_call_options {
    /// 0: the client's request timeout; otherwise the smaller of the two. It bounds the whole
    /// call, a wait for a free connection included: then CM_ERR_TIMEOUT.
    pub timeout_ms: u32,
    /// Triggering it ends the call with CM_ERR_CANCELLED within milliseconds, also while its
    /// request is in flight (the connection is dropped); may be NULL.
    pub cancel: *const cm_cancel,
}

/// Fills `options` with the defaults: no timeout of its own, no cancel. NULL is ignored.
///
/// # Safety
/// `options` is NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_call_options_init(options: *mut cm_call_options) {
    if !options.is_null() {
        // SAFETY: not NULL, writable by contract.
        unsafe { options.write(cm_call_options { timeout_ms: 0, cancel: std::ptr::null() }) };
    }
}

/// The options behind a pointer from C; NULL means the defaults.
///
/// # Safety
/// `options` is NULL or readable, its `cancel` NULL or a live token.
unsafe fn call_options(options: *const cm_call_options) -> CallOptions {
    if options.is_null() {
        return CallOptions::default();
    }
    // SAFETY: not NULL, readable by contract; every bit pattern is a valid value.
    let options = unsafe { options.read() };
    CallOptions {
        timeout: (options.timeout_ms > 0).then(|| Duration::from_millis(u64::from(options.timeout_ms))),
        // SAFETY: the caller's contract for options.cancel.
        cancel: unsafe { clone_arc(options.cancel) },
    }
}

/// Asks once for the state of a task. CM_OK with `cm_result_is_ready` 1 (solution there) or
/// 0 (still processing). The request counts in the task's budget of 120.
///
/// # Safety
/// `client` is NULL or a live client; `out_result` is NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_get_task_result(
    client: *const cm_client,
    task_id: i64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: forwarded contract.
    unsafe { cm_get_task_result_with(client, task_id, std::ptr::null(), out_result) }
}

/// `cm_get_task_result` with per-call options (NULL: the defaults). A request cancelled in
/// flight still counts in the task's budget.
///
/// # Safety
/// As `cm_get_task_result`; `options` is NULL or readable, its `cancel` NULL or a live token.
#[no_mangle]
pub unsafe extern "system" fn cm_get_task_result_with(
    client: *const cm_client,
    task_id: i64,
    options: *const cm_call_options,
    out_result: *mut *mut cm_result,
) -> cm_code {
    with_result(out_result, task_id, || {
        // SAFETY: the caller's contract.
        let (client, options) = unsafe { (client_arg(client)?, call_options(options)) };
        Ok(CallResult::from_task_report(client.get_task_result_with(task_id, &options), task_id))
    })
}

/// Creates a task from `task_json`, the `task` object of the API (with its "type"), and
/// writes its id to `*out_task_id` on CM_OK. `callback_url` (NULL for none) is any http(s)
/// URL the service will POST the result to. Never retried: a duplicate is a second paid task.
///
/// # Safety
/// `client` is NULL or a live client; the strings are NULL or NUL-terminated; the out
/// pointers are NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_create_task(
    client: *const cm_client,
    task_json: *const c_char,
    callback_url: *const c_char,
    out_task_id: *mut i64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: forwarded contract.
    unsafe { cm_create_task_with(client, task_json, callback_url, std::ptr::null(), out_task_id, out_result) }
}

/// `cm_create_task` with per-call options (NULL: the defaults). A cancel while the request is
/// in flight cannot undo it: the message then says the task may have been created and charged.
///
/// # Safety
/// As `cm_create_task`; `options` is NULL or readable, its `cancel` NULL or a live token.
#[no_mangle]
pub unsafe extern "system" fn cm_create_task_with(
    client: *const cm_client,
    task_json: *const c_char,
    callback_url: *const c_char,
    options: *const cm_call_options,
    out_task_id: *mut i64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    with_result(out_result, 0, || {
        // SAFETY: the caller's contract.
        let (client, task_json, callback_url, options) = unsafe {
            (
                client_arg(client)?,
                str_arg(task_json, "task_json")?,
                optional_str_arg(callback_url, "callback_url")?,
                call_options(options),
            )
        };
        out_arg(out_task_id, "out_task_id")?;
        let report = client.create_task_with(task_json, callback_url, &options);
        let (result, task_id) = CallResult::from_report(report, 0, |id| format!("created task {id}"));
        Ok(match task_id {
            Some(task_id) => {
                // SAFETY: checked not NULL above; writable by contract.
                unsafe { out_task_id.write(task_id) };
                result.with_task_id(task_id)
            }
            None => result,
        })
    })
}

/// Reads the account balance (US dollars) into `*out_balance` on CM_OK.
///
/// # Safety
/// `client` is NULL or a live client; the out pointers are NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_get_balance(
    client: *const cm_client,
    out_balance: *mut f64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: forwarded contract.
    unsafe { cm_get_balance_with(client, std::ptr::null(), out_balance, out_result) }
}

/// `cm_get_balance` with per-call options (NULL: the defaults).
///
/// # Safety
/// As `cm_get_balance`; `options` is NULL or readable, its `cancel` NULL or a live token.
#[no_mangle]
pub unsafe extern "system" fn cm_get_balance_with(
    client: *const cm_client,
    options: *const cm_call_options,
    out_balance: *mut f64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    with_result(out_result, 0, || {
        // SAFETY: the caller's contract.
        let (client, options) = unsafe { (client_arg(client)?, call_options(options)) };
        out_arg(out_balance, "out_balance")?;
        let (result, balance) = CallResult::from_report(client.get_balance_with(&options), 0, |balance| {
            format!("the balance is {balance} USD")
        });
        if let Some(balance) = balance {
            // SAFETY: checked not NULL above; writable by contract.
            unsafe { out_balance.write(balance) };
        }
        Ok(result)
    })
}

/// Tells the service that the text it gave for an image captcha was wrong
/// (reportIncorrectImageCaptcha). CM_OK when the service accepted the report. Never retried.
///
/// # Safety
/// `client` is NULL or a live client; `out_result` is NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_report_incorrect_image(
    client: *const cm_client,
    task_id: i64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: forwarded contract.
    unsafe { cm_report_incorrect_image_with(client, task_id, std::ptr::null(), out_result) }
}

/// `cm_report_incorrect_image` with per-call options (NULL: the defaults).
///
/// # Safety
/// As `cm_report_incorrect_image`; `options` is NULL or readable, its `cancel` NULL or a live
/// token.
#[no_mangle]
pub unsafe extern "system" fn cm_report_incorrect_image_with(
    client: *const cm_client,
    task_id: i64,
    options: *const cm_call_options,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: forwarded contract.
    unsafe { report_incorrect(Incorrect::Image, client, task_id, options, out_result) }
}

/// Tells the service that a token it gave (reCAPTCHA, Turnstile, ...) was refused by the site
/// (reportIncorrectTokenCaptcha). CM_OK when the service accepted the report. Never retried.
///
/// # Safety
/// `client` is NULL or a live client; `out_result` is NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_report_incorrect_token(
    client: *const cm_client,
    task_id: i64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: forwarded contract.
    unsafe { cm_report_incorrect_token_with(client, task_id, std::ptr::null(), out_result) }
}

/// `cm_report_incorrect_token` with per-call options (NULL: the defaults).
///
/// # Safety
/// As `cm_report_incorrect_token`; `options` is NULL or readable, its `cancel` NULL or a live
/// token.
#[no_mangle]
pub unsafe extern "system" fn cm_report_incorrect_token_with(
    client: *const cm_client,
    task_id: i64,
    options: *const cm_call_options,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: forwarded contract.
    unsafe { report_incorrect(Incorrect::Token, client, task_id, options, out_result) }
}

/// # Safety
/// As the `cm_report_incorrect_*_with` calls.
unsafe fn report_incorrect(
    kind: Incorrect,
    client: *const cm_client,
    task_id: i64,
    options: *const cm_call_options,
    out_result: *mut *mut cm_result,
) -> cm_code {
    with_result(out_result, task_id, || {
        // SAFETY: the caller's contract.
        let (client, options) = unsafe { (client_arg(client)?, call_options(options)) };
        let report = client.report_incorrect_with(kind, task_id, &options);
        Ok(CallResult::from_report(report, task_id, |()| format!("the report on task {task_id} was accepted")).0)
    })
}
