//! The log hook: one process-wide sink for what the library does (requests, answers, retries,
//! the budget, the guard, waits), each line a level, a stable event name and a one-line message.
//!
//! Rules every line keeps:
//! - secrets are never formatted in: a message names methods, task ids, codes, times and the
//!   key's digest at most; text that came from outside (an answer's description) is scrubbed by
//!   the client before it is logged (`Client::scrub_text`), as its error messages are;
//! - with no sink, or a sink whose level is below a line's, the line costs one relaxed load and
//!   its message is never formatted;
//! - the sink is called on the thread that logs (a caller's, or a waiter's worker), outside any
//!   lock of the library: a slow sink slows that thread only; a panicking sink is caught here,
//!   counted ([`sink_panics`](crate::log::sink_panics)), and the call goes on. A sink may replace or remove itself (or
//!   log) from inside; it must not make a blocking call into the library that waits for the
//!   thread it runs on (e.g. a wait on the waiter whose worker called it).
//!
//! `CAPMONSTER_LOG=error|warn|info|debug|trace` in the environment logs to stderr from the
//! first line on, until a sink is set (or removed) by the program.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// How much a line matters; a sink set at one level gets that level and the ones above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// A call failed in a way the caller should see (network, TLS, proxy, the service's error).
    Error = 1,
    /// Something was refused or stopped here: the budget, the guard, a retry on slow-down.
    Warn = 2,
    /// A wait's start and end, the guard's stops and ends.
    Info = 3,
    /// Each request sent and its answer.
    Debug = 4,
    /// Everything else (each poll's schedule).
    Trace = 5,
}

impl Level {
    /// Every level, most severe first.
    pub const ALL: [Level; 5] = [Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace];

    /// The level of a number (1 = error .. 5 = trace); `None` for any other.
    pub fn from_number(number: i64) -> Option<Level> {
        Level::ALL.into_iter().find(|level| *level as i64 == number)
    }

    /// The lower-case name, as `CAPMONSTER_LOG` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }

    /// The level `CAPMONSTER_LOG` names (case-insensitive); `None` for anything else.
    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.name().eq_ignore_ascii_case(text.trim()))
    }
}

/// What receives the lines: (level, event, message). Called from any thread.
pub type Sink = Arc<dyn Fn(Level, &str, &str) + Send + Sync>;

/// Nothing is logged: no sink, or none read from the environment yet.
const OFF: u8 = 0;
/// The environment has not been read yet (the first line reads it).
const UNREAD: u8 = u8::MAX;

/// The most verbose level the sink takes; [`OFF`] or [`UNREAD`] otherwise. The fast check.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(UNREAD);
/// The sink; read under the lock only long enough to clone the `Arc`.
static SINK: RwLock<Option<Sink>> = RwLock::new(None);
/// Panics of the sink, caught.
static SINK_PANICS: AtomicU64 = AtomicU64::new(0);

/// Sets the process's sink, taking lines of `max_level` and above, or removes it (`None`).
/// Safe at any time, also from inside the sink and while other threads log: a line being logged
/// meanwhile goes to the old sink or the new one, whole.
pub fn set_sink(max_level: Level, sink: Option<Sink>) {
    let mut slot = SINK.write().unwrap_or_else(PoisonError::into_inner);
    let level = if sink.is_some() { max_level as u8 } else { OFF };
    *slot = sink;
    // Under the lock, so that two setters leave a level that matches the sink they left.
    MAX_LEVEL.store(level, Ordering::Relaxed);
}

/// Whether a line of `level` would reach a sink: one relaxed load once the environment is read.
#[inline]
pub fn enabled(level: Level) -> bool {
    let max = MAX_LEVEL.load(Ordering::Relaxed);
    if max == UNREAD {
        return read_environment() >= level as u8;
    }
    max >= level as u8
}

/// Logs one line; `message` is formatted only if a sink takes `level`. A message keeps to one
/// line: line breaks in it become spaces.
#[inline]
pub fn log(level: Level, event: &'static str, message: impl FnOnce() -> String) {
    if enabled(level) {
        deliver(level, event, message());
    }
}

/// Sink panics caught since the process started.
pub fn sink_panics() -> u64 {
    SINK_PANICS.load(Ordering::Relaxed)
}

#[cold]
fn deliver(level: Level, event: &'static str, mut message: String) {
    let sink = SINK.read().unwrap_or_else(PoisonError::into_inner).clone();
    let Some(sink) = sink else { return };
    if message.contains(['\n', '\r']) {
        message = message.replace(['\n', '\r'], " ");
    }
    // Outside the lock: the sink may set another sink or log again.
    if catch_unwind(AssertUnwindSafe(|| sink(level, event, &message))).is_err() {
        SINK_PANICS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads `CAPMONSTER_LOG` once: a stderr sink at its level, or nothing. A sink set before (by
/// the program) is kept: the first setter wins the race with the environment.
#[cold]
fn read_environment() -> u8 {
    let level = std::env::var("CAPMONSTER_LOG").ok().as_deref().and_then(Level::parse);
    let mut slot = SINK.write().unwrap_or_else(PoisonError::into_inner);
    if MAX_LEVEL.load(Ordering::Relaxed) != UNREAD {
        return MAX_LEVEL.load(Ordering::Relaxed);
    }
    let max = match level {
        Some(level) => {
            *slot = Some(Arc::new(stderr_line));
            level as u8
        }
        None => OFF,
    };
    MAX_LEVEL.store(max, Ordering::Relaxed);
    max
}

/// The sink of `CAPMONSTER_LOG`: `capmonster <level> <event>: <message>` on stderr.
fn stderr_line(level: Level, event: &str, message: &str) {
    // One write per line, so that threads do not interleave within one; a failed write of a
    // log line has nobody to tell.
    let line = format!("capmonster {} {event}: {message}\n", level.name());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_by_name_and_number() {
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse(" trace "), Some(Level::Trace));
        assert_eq!(Level::parse("verbose"), None);
        assert_eq!(Level::from_number(1), Some(Level::Error));
        assert_eq!(Level::from_number(6), None);
        assert!(Level::Error < Level::Trace);
    }
}
