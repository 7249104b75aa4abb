//! `cm_set_log_callback`: the process's log hook, seen from C.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use crate::api::error::Error;
use crate::ffi::boundary;
use crate::ffi::library::cm_code;
use crate::log::{self, Level};

/// A log level: one of the CM_LOG_* values, most severe first.
pub type cm_log_level = i32;
/// A call failed in a way the program should see (network, TLS, proxy).
pub const CM_LOG_ERROR: cm_log_level = 1;
/// Something was refused or stopped here: the budget, the account guard, a wait that failed.
pub const CM_LOG_WARN: cm_log_level = 2;
/// A wait's start, retries and end; the service's errors.
pub const CM_LOG_INFO: cm_log_level = 3;
/// Each request sent (method, task, attempt, new or reused connection, time) and its answer.
pub const CM_LOG_DEBUG: cm_log_level = 4;
/// Everything, also each request's count in the budget.
pub const CM_LOG_TRACE: cm_log_level = 5;

/// Receives one log line: the `user_data` given to `cm_set_log_callback`, the line's level, a
/// stable event name ("request", "answer", "wait.start", ...: docs/logging.md lists them) and a
/// one-line message. Both strings live until the callback returns. Never contains the client key
/// or proxy credentials. Declared CM_CALL, like every function of the library (stdcall on 32-bit
/// Windows).
pub type cm_log_callback = Option<
    unsafe extern "system" fn(
        user_data: *mut c_void,
        level: cm_log_level,
        event: *const c_char,
        message: *const c_char,
    ),
>;

/// The caller's callback and its pointer, called from any thread.
struct Callback {
    function: unsafe extern "system" fn(*mut c_void, cm_log_level, *const c_char, *const c_char),
    user_data: *mut c_void,
}

// SAFETY: the caller of cm_set_log_callback promises (the function's doc) that the callback
// and its user_data may be used from any thread.
unsafe impl Send for Callback {}
// SAFETY: as above.
unsafe impl Sync for Callback {}

impl Callback {
    fn call(&self, level: Level, event: &str, message: &str) {
        // A NUL would end the C string early: none of the library's messages holds one, but a
        // text from outside could.
        let text = |text: &str| CString::new(text.replace('\0', " ")).unwrap_or_default();
        let (event, message) = (text(event), text(message));
        // SAFETY: the function and user_data are the caller's, valid until it replaces them.
        unsafe { (self.function)(self.user_data, level as cm_log_level, event.as_ptr(), message.as_ptr()) }
    }
}

/// Sends the library's log lines of `level` and above (CM_LOG_ERROR .. CM_LOG_TRACE) to
/// `callback`, with `user_data`; a NULL `callback` removes the one set (nothing is logged
/// then, also not what CAPMONSTER_LOG asked for). Process-wide; replaces the previous callback
/// at once and safely while other threads call the library: a line being logged meanwhile goes
/// to the old callback or the new one. After this returns the old callback may still finish a
/// line already started on another thread.
///
/// The callback runs on the thread that logs (the caller's, or a waiter's worker), outside the
/// library's locks, and may be called from many threads at once. It may log elsewhere, call
/// cm_set_log_callback (also to remove itself) and any non-blocking function; it must not wait
/// for the library (a blocking call on the client or waiter whose thread it runs on could wait
/// for itself). A slow callback slows only the thread it runs on. Returns CM_OK, or
/// CM_ERR_INVALID_ARGUMENT for a level outside CM_LOG_ERROR .. CM_LOG_TRACE (nothing changes).
#[no_mangle]
pub extern "system" fn cm_set_log_callback(
    level: cm_log_level,
    callback: cm_log_callback,
    user_data: *mut c_void,
) -> cm_code {
    boundary::code(|| {
        let Some(function) = callback else {
            log::set_sink(Level::Error, None);
            return Ok(());
        };
        let level = Level::from_number(i64::from(level)).ok_or_else(|| {
            Error::invalid_argument(format!("level must be CM_LOG_ERROR (1) .. CM_LOG_TRACE (5), got {level}"))
        })?;
        let callback = Callback { function, user_data };
        log::set_sink(
            level,
            Some(Arc::new(move |level, event: &str, message: &str| callback.call(level, event, message))),
        );
        Ok(())
    })
}
