//! `cm_client_stats` and `cm_client_get_stats`: a client's counters, in a struct that grows
//! by version.

use crate::client::stats::Stats;
use crate::ffi::arguments::{fill_versioned, handle};
use crate::ffi::boundary;
use crate::ffi::client::cm_client;
use crate::ffi::library::cm_code;

/// A client's counters since it was created (`cm_client_stats`). Set `size` to
/// `sizeof(cm_client_stats)` before the call: the library fills the members that fit, so a
/// program built with this header keeps working with later libraries, whose struct only grows
/// at its end. Each counter is exact; read while calls run, two may differ by the calls in
/// flight.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct cm_client_stats {
    /// sizeof(cm_client_stats), set by the caller.
    pub size: u32,
    /// 0; keeps the counters 8-byte aligned in every language.
    pub reserved: u32,
    /// HTTP requests sent, per method (resends included).
    pub requests_get_task_result: u64,
    pub requests_create_task: u64,
    pub requests_get_balance: u64,
    pub requests_report_incorrect_image: u64,
    pub requests_report_incorrect_token: u64,
    pub requests_get_user_agent: u64,
    /// Answers saying the task is still processing.
    pub answers_processing: u64,
    /// Successful answers: a ready task, a created task, a balance, a report taken, a
    /// User-Agent.
    pub answers_ready: u64,
    /// Answers carrying the service's error (errorId != 0).
    pub answers_api_error: u64,
    /// Answers with an HTTP error status (429, 5xx, ...).
    pub answers_http_error: u64,
    /// Requests that got no answer: connection, TLS or proxy failures.
    pub answers_network_error: u64,
    /// Requests that ran out of time.
    pub answers_timeout: u64,
    /// Answers that could not be read, and requests cancelled in flight.
    pub answers_other: u64,
    /// Requests sent again: on a stale pooled connection, and a wait's poll after a failed one.
    pub retries: u64,
    /// getTaskResult requests refused by the budget of 120 per task (CM_ERR_BUDGET_EXHAUSTED).
    pub budget_refusals: u64,
    /// Calls the account guard answered locally, with nothing sent.
    pub guard_refusals: u64,
    /// TCP connections opened since the client was created.
    pub connections_opened: u64,
    /// Requests in flight now, each on a connection of its own (a request still opening its
    /// connection counts).
    pub requests_in_flight: u64,
    /// Waits started (cm_wait_result, cm_waiter_add) and not finished yet.
    pub waits_pending: u64,
    /// Waits finished: ready, failed, timed out, cancelled, or dropped with their waiter.
    pub waits_finished: u64,
    /// Bytes the client's sockets sent: what the network carries (HTTP heads and bodies, and
    /// over TLS its records and handshakes; through a proxy, its CONNECT too).
    pub bytes_sent: u64,
    /// Bytes the client's sockets received, counted the same way.
    pub bytes_received: u64,
    /// Connections open now: opened and not yet closed by the server or the pool.
    pub connections_open: u64,
    /// Open connections carrying no request now (open minus requests in flight, at least 0).
    pub connections_idle: u64,
}

impl From<Stats> for cm_client_stats {
    fn from(stats: Stats) -> Self {
        let [get_task_result, create_task, get_balance, report_image, report_token, get_user_agent] = stats.requests;
        cm_client_stats {
            size: std::mem::size_of::<cm_client_stats>() as u32,
            reserved: 0,
            requests_get_task_result: get_task_result,
            requests_create_task: create_task,
            requests_get_balance: get_balance,
            requests_report_incorrect_image: report_image,
            requests_report_incorrect_token: report_token,
            requests_get_user_agent: get_user_agent,
            answers_processing: stats.answers_processing,
            answers_ready: stats.answers_ready,
            answers_api_error: stats.answers_api_error,
            answers_http_error: stats.answers_http_error,
            answers_network_error: stats.answers_network_error,
            answers_timeout: stats.answers_timeout,
            answers_other: stats.answers_other,
            retries: stats.retries,
            budget_refusals: stats.budget_refusals,
            guard_refusals: stats.guard_refusals,
            connections_opened: stats.connections_opened,
            requests_in_flight: stats.requests_in_flight,
            waits_pending: stats.waits_pending,
            waits_finished: stats.waits_finished,
            bytes_sent: stats.bytes_sent,
            bytes_received: stats.bytes_received,
            connections_open: stats.connections_open,
            connections_idle: stats.connections_idle,
        }
    }
}

/// Fills `*stats` with the client's counters (see cm_client_stats; set `stats->size` first).
/// Cheap: no lock, nothing sent. CM_ERR_INVALID_ARGUMENT for a NULL argument or a `size`
/// below 8 (nothing written).
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_get_stats(client: *const cm_client, stats: *mut cm_client_stats) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::code(|| {
            let counters = cm_client_stats::from(handle(client, "client")?.stats());
            fill_versioned(stats, "stats", &counters)
        })
    }
}
