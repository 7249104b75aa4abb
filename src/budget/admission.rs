//! The rules both tables of counts follow, the process's ([`process`](super::process)) and the
//! shared file's ([`file`](super::file)): what counting one request answers, and how long a
//! task's count outlives its last request.

use std::time::Duration;

use crate::api::REQUESTS_PER_TASK;
use crate::budget::disowned::Disowned;

/// A task not asked about for this long is forgotten first when a table is full: longer than
/// the service keeps a result and than a ban lasts.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// The budget's answer to one getTaskResult request about to be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Send it: it is the task's `nth` request (1 to [`REQUESTS_PER_TASK`]).
    Granted { nth: u32 },
    /// Do not: `sent` requests (all [`REQUESTS_PER_TASK`]) were already sent for the task.
    Spent { sent: u32 },
    /// Do not: the service disowned the task; this is its final answer (`disowned.rs`).
    Disowned(Disowned),
}

impl Admission {
    /// The answer for a task with `sent` requests counted before this one, and the count to
    /// keep when it is granted. A count over the limit (a damaged file) reads as spent.
    pub(crate) fn after(sent: u32) -> Admission {
        if sent >= REQUESTS_PER_TASK {
            Admission::Spent { sent: REQUESTS_PER_TASK }
        } else {
            Admission::Granted { nth: sent + 1 }
        }
    }

    pub fn is_granted(self) -> bool {
        matches!(self, Admission::Granted { .. })
    }
}
