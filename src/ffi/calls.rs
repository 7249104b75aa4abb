//! The single API calls: getTaskResult, createTask, getBalance.
//!
//! Each writes a new `cm_result` to `*out_result` on every return but a NULL `out_result`;
//! other out-parameters are written only on CM_OK.

use std::ffi::c_char;

use crate::error::Error;
use crate::ffi::boundary::{optional_str_arg, out_arg, str_arg, with_result};
use crate::ffi::client::{client_arg, cm_client};
use crate::ffi::library::cm_code;
use crate::ffi::result::{cm_result, CallResult};

/// Asks once for the state of a task. CM_OK with `cm_result_is_ready` 1 (solution there) or
/// 0 (still processing). The request counts in the task's budget of 120.
///
/// # Safety
/// `client` is NULL or a live client; `out_result` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cm_get_task_result(
    client: *const cm_client,
    task_id: i64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    with_result(out_result, || {
        // SAFETY: the caller's contract.
        match unsafe { client_arg(client) } {
            Ok(client) => CallResult::from_task_report(client.get_task_result(task_id), task_id),
            Err(error) => CallResult::from_error(&error, task_id),
        }
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
pub unsafe extern "C" fn cm_create_task(
    client: *const cm_client,
    task_json: *const c_char,
    callback_url: *const c_char,
    out_task_id: *mut i64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    with_result(out_result, || {
        let args = (|| {
            // SAFETY: the caller's contract.
            let client = unsafe { client_arg(client) }?;
            let task_json = unsafe { str_arg(task_json, "task_json") }?;
            let callback_url = unsafe { optional_str_arg(callback_url, "callback_url") }?;
            out_arg(out_task_id, "out_task_id")?;
            Ok::<_, Error>((client, task_json, callback_url))
        })();
        let (client, task_json, callback_url) = match args {
            Ok(args) => args,
            Err(error) => return CallResult::from_error(&error, 0),
        };
        let report = client.create_task(task_json, callback_url);
        let (result, task_id) = CallResult::from_report(report, 0, |id| format!("created task {id}"));
        match task_id {
            Some(task_id) => {
                // SAFETY: checked not NULL above; writable by contract.
                unsafe { out_task_id.write(task_id) };
                result.with_task_id(task_id)
            }
            None => result,
        }
    })
}

/// Reads the account balance (US dollars) into `*out_balance` on CM_OK.
///
/// # Safety
/// `client` is NULL or a live client; the out pointers are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cm_get_balance(
    client: *const cm_client,
    out_balance: *mut f64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    with_result(out_result, || {
        // SAFETY: the caller's contract.
        let client = match unsafe { client_arg(client) }
            .and_then(|client| out_arg(out_balance, "out_balance").map(|()| client))
        {
            Ok(client) => client,
            Err(error) => return CallResult::from_error(&error, 0),
        };
        let (result, balance) =
            CallResult::from_report(client.get_balance(), 0, |balance| format!("the balance is {balance} USD"));
        if let Some(balance) = balance {
            // SAFETY: checked not NULL above; writable by contract.
            unsafe { out_balance.write(balance) };
        }
        result
    })
}
