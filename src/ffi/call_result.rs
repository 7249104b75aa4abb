//! The Rust value behind a `cm_result *`: what one call did, with its code, message and, for a
//! ready task, the solution. Every string is built once, at creation; the accessors of
//! `result.rs` hand out pointers into it. The panic boundary (`boundary.rs`) builds these, and
//! `result.rs` exports their accessors through it: this file sits below both.

use std::any::Any;
use std::collections::BTreeMap;
use std::ffi::CString;

use serde_json::value::RawValue;

use crate::api::answer::TaskState;
use crate::api::codes::{cm_code, CM_OK};
use crate::api::error::panic_message;
use crate::api::error::{Code, Error};
use crate::client::Report;
use crate::ffi::handle::{into_box, opaque};

opaque! {
    /// The outcome of one call; read it with the `cm_result_*` accessors. Made by the calls
    /// that take `out_result` and by `cm_waiter_next`; the caller frees it with `cm_result_free`,
    /// which also frees every string read from it. It never changes.
    pub struct cm_result(Box<CallResult>);
}

/// The Rust value behind a `cm_result *`.
#[derive(Debug)]
pub struct CallResult {
    pub(super) code: cm_code,
    pub(super) ready: bool,
    pub(super) task_id: i64,
    pub(super) solution_json: Option<CString>,
    /// The solution's top-level string members, for `cm_result_solution_string`.
    pub(super) solution_strings: BTreeMap<String, CString>,
    pub(super) api_error_code: Option<CString>,
    pub(super) api_error_description: Option<CString>,
    /// The answer of a call that answers with text (getUserAgent), for `cm_result_text`.
    pub(super) text: Option<CString>,
    pub(super) message: CString,
    pub(super) request_count: u32,
    pub(super) http_status: i32,
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
            text: None,
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
        // Once per client: why the request budget and the guard are not shared, or what was
        // repaired.
        if let Some(notice) = report.notice {
            let message = format!("{} (note: {notice})", result.message.to_string_lossy());
            result.message = c_text(&message);
        }
        (result, value)
    }

    /// The result of getTaskResult or a wait.
    pub fn from_task_report(report: Report<TaskState>, task_id: i64) -> Self {
        let requests = report.requests;
        let (mut result, state) = CallResult::from_report(report, task_id, |state| match state {
            TaskState::Ready(_) => format!("task {task_id} is ready ({requests} requests)"),
            TaskState::Processing => format!("task {task_id} is still processing"),
        });
        if let Some(TaskState::Ready(solution)) = state {
            result.set_solution(&solution);
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

    /// The result of getUserAgent: the text for `cm_result_text`. A text holding a NUL byte
    /// cannot reach C: the classifier refuses control characters before.
    pub fn from_text_report(report: Report<String>) -> Self {
        let (mut result, text) = CallResult::from_report(report, 0, |text| format!("getUserAgent: {text}"));
        result.text = text.and_then(|text| CString::new(text).ok());
        result
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
