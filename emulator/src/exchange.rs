//! One exchange of the emulated service: the request as the connection read it, and the reply
//! the service gives (a response, or a fault to play on the socket), with its delay. `api.rs`
//! makes replies; `http.rs` reads requests and writes replies; neither needs the other's types.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::script::Fault;

/// One request, read in full.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    /// The path without query string.
    pub path: String,
    pub body: Vec<u8>,
    /// HTTP/1.1 without `Connection: close`.
    pub keep_alive: bool,
}

/// A complete answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: Cow<'static, str>,
    pub(crate) body: Vec<u8>,
    pub(crate) allow: Option<&'static str>,
    /// Extra headers from a scripted step (already checked to be one line each).
    pub(crate) extra_headers: Vec<(String, String)>,
    /// Where in the body the send time goes ([`STAMP_DIGITS`] placeholder bytes), if anywhere.
    pub(crate) stamp_at: Option<usize>,
}

/// Width of a send-time stamp: microseconds since the Unix epoch, zero-padded.
pub(crate) const STAMP_DIGITS: usize = 20;

impl Response {
    pub(crate) fn new(status: u16, content_type: impl Into<Cow<'static, str>>, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type: content_type.into(),
            body,
            allow: None,
            extra_headers: Vec::new(),
            stamp_at: None,
        }
    }

    /// Makes the [`STAMP_DIGITS`] bytes after the first `marker` in the body the place of the
    /// send-time stamp (nothing happens if `marker` is absent).
    pub(crate) fn mark_stamp(&mut self, marker: &[u8]) {
        self.stamp_at = self
            .body
            .windows(marker.len())
            .position(|w| w == marker)
            .map(|i| i + marker.len())
            .filter(|&at| at + STAMP_DIGITS <= self.body.len());
    }

    /// Writes the wall clock (µs since the Unix epoch) into the marked place; same length,
    /// so Content-Length stays right. Called just before the answer is written.
    pub(crate) fn stamp_now(&mut self) {
        let Some(at) = self.stamp_at else { return };
        let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
        let digits = format!("{micros:0width$}", width = STAMP_DIGITS);
        if digits.len() == STAMP_DIGITS {
            self.body[at..at + STAMP_DIGITS].copy_from_slice(digits.as_bytes());
        }
    }
}

/// What to do with a request: answer it or misbehave.
#[derive(Debug)]
pub(crate) enum Outcome {
    Respond(Response),
    Fault(Fault),
}

/// An outcome plus the step modifiers.
#[derive(Debug)]
pub(crate) struct Reply {
    pub outcome: Outcome,
    /// Sleep before answering (already bounded by the step parser/constructors).
    pub delay: Duration,
    /// Close the connection right after the answer while having advertised keep-alive.
    pub close_after: bool,
}

impl Reply {
    pub(crate) fn respond(response: Response) -> Reply {
        Reply { outcome: Outcome::Respond(response), delay: Duration::ZERO, close_after: false }
    }

    pub(crate) fn fault(fault: Fault) -> Reply {
        Reply { outcome: Outcome::Fault(fault), delay: Duration::ZERO, close_after: false }
    }

    pub(crate) fn set_headers(&mut self, headers: Vec<(String, String)>) {
        if let Outcome::Respond(r) = &mut self.outcome {
            r.extra_headers = headers;
        }
    }

    pub(crate) fn set_allow(&mut self, allow: &'static str) {
        if let Outcome::Respond(r) = &mut self.outcome {
            r.allow = Some(allow);
        }
    }
}
