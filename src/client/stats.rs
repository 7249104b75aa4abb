//! A client's counters: what it sent and heard, cheap enough to leave on (relaxed atomics, no
//! lock), read with [`Client::stats`](crate::Client::stats).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::api::answer::TaskState;
use crate::api::error::{Code, Error};
use crate::net::transport::{Method, Wire};

/// The methods counted apart, in the order of [`Stats::requests`].
pub const METHODS: [&str; 6] = [
    "getTaskResult",
    "createTask",
    "getBalance",
    "reportIncorrectImageCaptcha",
    "reportIncorrectTokenCaptcha",
    "getUserAgent",
];

/// A snapshot of a client's counters since it was created. Each counter is exact on its own;
/// read while calls run, two counters may disagree by the calls in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests sent, per method in the order of [`METHODS`] (resends included).
    pub requests: [u64; 6],
    /// Answers that said the task is still processing.
    pub answers_processing: u64,
    /// Successful answers: a ready task, a created task, a balance, a report taken, a
    /// User-Agent.
    pub answers_ready: u64,
    /// Answers carrying the service's error (`errorId` != 0).
    pub answers_api_error: u64,
    /// Answers with an HTTP error status (429, 5xx, ...).
    pub answers_http_error: u64,
    /// Requests that got no answer: connection, TLS or proxy failures.
    pub answers_network_error: u64,
    /// Requests that ran out of time.
    pub answers_timeout: u64,
    /// Answers that could not be read, and requests cancelled in flight.
    pub answers_other: u64,
    /// Requests sent again: the resend on a stale pooled connection, and each further poll of a
    /// wait after a failed one.
    pub retries: u64,
    /// getTaskResult requests the budget of 120 per task refused.
    pub budget_refusals: u64,
    /// Calls the account guard answered here, with nothing sent.
    pub guard_refusals: u64,
    /// TCP connections opened since the client was created.
    pub connections_opened: u64,
    /// Requests in flight now: the connections busy at this moment (a request still opening
    /// its connection counts).
    pub requests_in_flight: u64,
    /// Waits started (blocking or on a waiter) and not finished yet.
    pub waits_pending: u64,
    /// Waits finished: ready, failed, timed out, cancelled, or dropped with their waiter.
    pub waits_finished: u64,
    /// Bytes the client's sockets sent: what the network carries, HTTP requests whole (heads
    /// and bodies), and over TLS its records and handshakes; through a proxy, its CONNECT too.
    pub bytes_sent: u64,
    /// Bytes the client's sockets received, counted as [`bytes_sent`](Stats::bytes_sent).
    pub bytes_received: u64,
    /// Connections open now: opened and not yet closed by the server or the pool.
    pub connections_open: u64,
    /// Open connections carrying no request now: the pool's, ready for reuse (open minus
    /// requests in flight, at least 0).
    pub connections_idle: u64,
}

/// The live counters behind [`Stats`]; every update is one relaxed add.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: [AtomicU64; 6],
    answers_processing: AtomicU64,
    answers_ready: AtomicU64,
    answers_api_error: AtomicU64,
    answers_http_error: AtomicU64,
    answers_network_error: AtomicU64,
    answers_timeout: AtomicU64,
    answers_other: AtomicU64,
    pub retries: AtomicU64,
    pub budget_refusals: AtomicU64,
    pub guard_refusals: AtomicU64,
    pub waits_started: AtomicU64,
    pub waits_finished: AtomicU64,
}

/// Adds one.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn sent(&self, method: Method) {
        bump(&self.requests[method as usize]);
    }

    /// Counts the answer of a call that sent a request, by its class; returns the class's name.
    pub fn answered<T>(&self, result: &Result<T, Error>, processing: bool) -> &'static str {
        let (counter, class) = match result {
            Ok(_) if processing => (&self.answers_processing, "processing"),
            Ok(_) => (&self.answers_ready, "ok"),
            Err(error) => match error.code {
                Code::Api => (&self.answers_api_error, "api-error"),
                Code::HttpStatus => (&self.answers_http_error, "http-error"),
                Code::Network => (&self.answers_network_error, "network-error"),
                Code::Timeout => (&self.answers_timeout, "timeout"),
                _ => (&self.answers_other, "other"),
            },
        };
        bump(counter);
        class
    }

    /// [`answered`](Counters::answered) for a getTaskResult, whose success is "ready".
    pub fn answered_task(&self, result: &Result<TaskState, Error>) -> &'static str {
        match self.answered(result, matches!(result, Ok(TaskState::Processing))) {
            "ok" => "ready",
            class => class,
        }
    }

    /// The counters with the connections' (`wire`) and the requests in flight now.
    pub fn snapshot(&self, wire: &Wire, requests_in_flight: u64) -> Stats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let finished = read(&self.waits_finished);
        let open = wire.open();
        Stats {
            requests: std::array::from_fn(|at| read(&self.requests[at])),
            answers_processing: read(&self.answers_processing),
            answers_ready: read(&self.answers_ready),
            answers_api_error: read(&self.answers_api_error),
            answers_http_error: read(&self.answers_http_error),
            answers_network_error: read(&self.answers_network_error),
            answers_timeout: read(&self.answers_timeout),
            answers_other: read(&self.answers_other),
            retries: read(&self.retries),
            budget_refusals: read(&self.budget_refusals),
            guard_refusals: read(&self.guard_refusals),
            connections_opened: wire.opened(),
            requests_in_flight,
            // Finished is read first: a wait ending meanwhile cannot make pending negative.
            waits_pending: read(&self.waits_started).saturating_sub(finished),
            waits_finished: finished,
            bytes_sent: wire.bytes_sent(),
            bytes_received: wire.bytes_received(),
            connections_open: open,
            connections_idle: open.saturating_sub(requests_in_flight),
        }
    }
}
