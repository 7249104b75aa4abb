//! The single API calls: getTaskResult, createTask, getBalance, the two reports of a wrong
//! answer and getUserAgent, each also `_with` per-call options (a timeout and a cancel that reaches the request
//! in flight).
//!
//! Each writes a new `cm_result` to `*out_result` on every return but a NULL `out_result`;
//! other out-parameters are written only on CM_OK.

use std::ffi::c_char;
use std::time::Duration;

use crate::api::error::Error;
use crate::client::{CallOptions, Incorrect};
use crate::ffi::arguments::{handle, optional_shared, optional_struct, optional_text, out, text};
use crate::ffi::boundary;
use crate::ffi::cancel::cm_cancel;
use crate::ffi::client::cm_client;
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

impl cm_call_options {
    /// The options behind `options` (NULL: the defaults); the cancel is a reference of the
    /// call's own.
    ///
    /// # Safety
    /// `options` is NULL or readable, its `cancel` NULL or a live token.
    unsafe fn read(options: *const cm_call_options) -> CallOptions {
        // SAFETY: the caller's contract, for `options` and its `cancel`.
        unsafe {
            match optional_struct(options) {
                Some(options) => CallOptions {
                    timeout: (options.timeout_ms > 0).then(|| Duration::from_millis(u64::from(options.timeout_ms))),
                    cancel: optional_shared(options.cancel),
                },
                None => CallOptions::default(),
            }
        }
    }
}

/// Fills `options` with the defaults: no timeout of its own, no cancel. NULL is ignored.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_call_options_init(options: *mut cm_call_options) {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::value((), || {
            out(options, "options")?.write(cm_call_options { timeout_ms: 0, cancel: std::ptr::null() });
            Ok(())
        })
    }
}

/// Asks once for the state of a task. CM_OK with `cm_result_is_ready` 1 (solution there) or
/// 0 (still processing). The request counts in the task's budget of 120.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
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
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_get_task_result_with(
    client: *const cm_client,
    task_id: i64,
    options: *const cm_call_options,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::result(out_result, task_id, || {
            let (client, options) = (handle(client, "client")?, cm_call_options::read(options));
            Ok(CallResult::from_task_report(client.get_task_result_with(task_id, &options), task_id))
        })
    }
}

/// Creates a task from `task_json`, the `task` object of the API (with its "type"), and
/// writes its id to `*out_task_id` on CM_OK. `callback_url` (NULL for none) is any http(s)
/// URL the service will POST the result to. Never retried: a duplicate is a second paid task.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
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
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_create_task_with(
    client: *const cm_client,
    task_json: *const c_char,
    callback_url: *const c_char,
    options: *const cm_call_options,
    out_task_id: *mut i64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::result(out_result, 0, || {
            let (client, task_json, callback_url, options) = (
                handle(client, "client")?,
                text(task_json, "task_json")?,
                optional_text(callback_url, "callback_url")?,
                cm_call_options::read(options),
            );
            let mut out_task_id = out(out_task_id, "out_task_id")?;
            let report = client.create_task_with(task_json, callback_url, &options);
            let (result, task_id) = CallResult::from_report(report, 0, |id| format!("created task {id}"));
            Ok(match task_id {
                Some(task_id) => {
                    out_task_id.write(task_id);
                    result.with_task_id(task_id)
                }
                None => result,
            })
        })
    }
}

/// Reads the account balance (US dollars) into `*out_balance` on CM_OK.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
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
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_get_balance_with(
    client: *const cm_client,
    options: *const cm_call_options,
    out_balance: *mut f64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::result(out_result, 0, || {
            let (client, options) = (handle(client, "client")?, cm_call_options::read(options));
            let mut out_balance = out(out_balance, "out_balance")?;
            let (result, balance) = CallResult::from_report(client.get_balance_with(&options), 0, |balance| {
                format!("the balance is {balance} USD")
            });
            if let Some(balance) = balance {
                out_balance.write(balance);
            }
            Ok(result)
        })
    }
}

/// getUserAgent: the browser User-Agent the service's workers use now, to put in a task's
/// "userAgent" (`cm_result_text` on CM_OK). A GET of `cm_client_set_user_agent_url`'s page
/// (default <https://capmonster.cloud/api/useragent/actual>), plain text, with the client's
/// proxy, trust, request timeout and connections; no key is sent. An answer that is empty,
/// longer than 1024 bytes, an HTML page, or not one line of text is CM_ERR_BAD_RESPONSE.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_get_user_agent(client: *const cm_client, out_result: *mut *mut cm_result) -> cm_code {
    // SAFETY: forwarded contract.
    unsafe { cm_get_user_agent_with(client, std::ptr::null(), out_result) }
}

/// `cm_get_user_agent` with per-call options (NULL: the defaults).
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_get_user_agent_with(
    client: *const cm_client,
    options: *const cm_call_options,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::result(out_result, 0, || {
            let (client, options) = (handle(client, "client")?, cm_call_options::read(options));
            Ok(CallResult::from_text_report(client.get_user_agent_with(&options)))
        })
    }
}

/// Tells the service that the text it gave for an image captcha was wrong
/// (reportIncorrectImageCaptcha). CM_OK when the service accepted the report. Never retried.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
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
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_report_incorrect_image_with(
    client: *const cm_client,
    task_id: i64,
    options: *const cm_call_options,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::result(out_result, task_id, || report_incorrect(Incorrect::Image, client, task_id, options)) }
}

/// Tells the service that a token it gave (reCAPTCHA, Turnstile, ...) was refused by the site
/// (reportIncorrectTokenCaptcha). CM_OK when the service accepted the report. Never retried.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
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
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_report_incorrect_token_with(
    client: *const cm_client,
    task_id: i64,
    options: *const cm_call_options,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::result(out_result, task_id, || report_incorrect(Incorrect::Token, client, task_id, options)) }
}

/// The body of the `cm_report_incorrect_*_with` calls.
///
/// # Safety
/// `client` is NULL or a live client; `options` is NULL or readable, its `cancel` NULL or a
/// live token.
unsafe fn report_incorrect(
    kind: Incorrect,
    client: *const cm_client,
    task_id: i64,
    options: *const cm_call_options,
) -> Result<CallResult, Error> {
    // SAFETY: the caller's contract.
    let (client, options) = unsafe { (handle(client, "client")?, cm_call_options::read(options)) };
    let report = client.report_incorrect_with(kind, task_id, &options);
    Ok(CallResult::from_report(report, task_id, |()| format!("the report on task {task_id} was accepted")).0)
}
