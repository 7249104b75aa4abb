//! Waiting for a task: poll getTaskResult on a schedule until the task is ready, fails, runs
//! out of time or budget, or is cancelled.
//!
//! The loop: sleep `first_delay`, then poll; after each answer sleep `interval` (measured from
//! the answer, so a slow answer never makes polls bunch up). Transient failures (network,
//! request timeout, HTTP 5xx/429, `ERROR_TOO_MUCH_REQUESTS`) are retried at the next poll;
//! 429 and `ERROR_TOO_MUCH_REQUESTS` also double the interval, up to [`MAX_INTERVAL`](crate::wait::MAX_INTERVAL). Any
//! other failure ends the wait at once. Sleeps wake at once on a cancel, and a cancel shuts
//! down a request in flight; a request is bounded by the smaller of the request timeout and
//! the time left.
//!
//! A stop of the client's key by the account guard, heard by any client of the process, wakes a
//! blocking wait at once: its next poll is answered by the guard and ends it.
//!
//! `Polling` holds these rules for one wait; [`wait`](crate::wait::wait) drives it on the calling thread, the
//! waiter's engine (`engine.rs`) drives many on a timer.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::api::answer::TaskState;
use crate::api::error::{Code, Error};
use crate::api::schedule::Schedule;
use crate::budget::guard::listen::StopListener;
use crate::budget::KeyDigest;
use crate::cancel::{Cancel, Watcher};
use crate::client::link::{block_now, Link};
use crate::client::stats::Counters;
use crate::client::{check_task_id, Bounds, CallStats, Client, Report};
use crate::log::{self, Level};

/// The longest interval back-off can reach.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Whether a failed poll should be retried, and whether the service asked us to slow down.
#[derive(PartialEq, Eq, Debug)]
enum Retry {
    No,
    Yes,
    SlowDown,
}

fn retry_policy(error: &Error) -> Retry {
    match error.code {
        Code::Network | Code::Timeout => Retry::Yes,
        Code::HttpStatus => match error.http_status {
            Some(429) => Retry::SlowDown,
            Some(500..=599) => Retry::Yes,
            _ => Retry::No,
        },
        Code::Api if error.api_code() == Some("ERROR_TOO_MUCH_REQUESTS") => Retry::SlowDown,
        _ => Retry::No,
    }
}

/// Checks a schedule before any request is sent.
pub fn check_schedule(schedule: &Schedule) -> Result<(), Error> {
    if schedule.interval.is_zero() {
        return Err(Error::invalid_argument("options.interval_ms must be at least 1"));
    }
    if schedule.max_requests == 0 {
        return Err(Error::invalid_argument("options.max_requests must be at least 1"));
    }
    Ok(())
}

/// Polls `task_id` on `schedule` until it is ready (Ok), or a final error.
pub fn wait(client: &Client, task_id: i64, schedule: &Schedule, cancel: Option<&Arc<Cancel>>) -> Report<TaskState> {
    let mut polling = match Polling::start(client, task_id, schedule, Instant::now()) {
        Ok(polling) => polling,
        Err(error) => return CallStats::default().report(Err(error)),
    };
    let report = run(client, &mut polling, cancel);
    polling.end(&report);
    report
}

/// The blocking wait's turns, from its start to its report.
fn run(client: &Client, polling: &mut Polling, cancel: Option<&Arc<Cancel>>) -> Report<TaskState> {
    let cancels: &[&Arc<Cancel>] = match &cancel {
        Some(cancel) => std::slice::from_ref(cancel),
        None => &[],
    };
    // Woken by the cancel or by a stop of the client's key, which the next poll hears locally.
    let alarm = Arc::new(Alarm { key: client.digest(), rung: Mutex::new(false), bell: Condvar::new() });
    let _listening = crate::budget::guard::listen(Arc::downgrade(&alarm) as Weak<Alarm>);
    let _watching = match cancel {
        Some(cancel) => match cancel.watch(Arc::downgrade(&alarm) as Weak<Alarm>, 0) {
            Some(key) => Some(Unwatch(cancel, key)),
            None => return polling.cancelled(),
        },
        None => None,
    };
    // Started while its key is stopped: the first poll, answered here, is due now.
    if crate::budget::guard::key_stopped_here(client.digest()) {
        polling.poll_now(Instant::now());
    }
    // Bounded: each turn sends a request (ending at max_requests) or returns.
    loop {
        alarm.sleep_until(polling.wake_at());
        if cancel.is_some_and(|cancel| cancel.is_triggered()) {
            return polling.cancelled();
        }
        if let Some(report) = polling.step(client, cancels) {
            return report;
        }
    }
}

/// What a blocking wait sleeps on: rung by its cancel, or by a stop of its key in this process
/// (then the next poll is due at once, and the guard answers it).
struct Alarm {
    key: KeyDigest,
    rung: Mutex<bool>,
    bell: Condvar,
}

impl Alarm {
    fn ring(&self) {
        *self.rung.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.bell.notify_all();
    }

    /// Sleeps until `until` or a ring, and forgets the ring.
    fn sleep_until(&self, until: Instant) {
        let mut rung = self.rung.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded by `until`: each turn waits out the time left or sees a ring.
        while !*rung {
            let now = Instant::now();
            if now >= until {
                break;
            }
            rung = self.bell.wait_timeout(rung, until - now).unwrap_or_else(PoisonError::into_inner).0;
        }
        *rung = false;
    }
}

impl StopListener for Alarm {
    fn key_stopped(&self, key: KeyDigest) {
        if key == self.key {
            self.ring();
        }
    }
}

impl Watcher for Alarm {
    fn cancelled(&self, _token: u64) {
        self.ring();
    }
}

/// Forgets the alarm's registration with the cancel when the wait ends.
struct Unwatch<'a>(&'a Cancel, u64);

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        self.0.unwatch(self.1);
    }
}

/// What the last poll of a wait saw, for the message of a wait that ends without an answer.
#[derive(Debug)]
enum Last {
    NoAnswer,
    Processing,
    /// A retried failure's message.
    Failed(Box<str>),
}

impl fmt::Display for Last {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Last::NoAnswer => f.write_str("no answer yet"),
            Last::Processing => f.write_str("processing"),
            Last::Failed(message) => f.write_str(message),
        }
    }
}

/// One wait's progress: the rules of waiting, apart from how the time between polls is spent
/// (a sleeping thread in [`wait`], a timer in the waiter's engine). About 100 bytes.
#[derive(Debug)]
pub(crate) struct Polling {
    task_id: i64,
    deadline: Instant,
    next_poll: Instant,
    interval: Duration,
    schedule: Schedule,
    last: Last,
    stats: CallStats,
    /// The client's counters: the wait is pending from its start until [`end`](Polling::end)
    /// or its drop (a waiter freed with waits pending).
    counters: Arc<Counters>,
    counted_finished: bool,
    started: Instant,
}

impl Drop for Polling {
    fn drop(&mut self) {
        if !self.counted_finished {
            crate::client::stats::bump(&self.counters.waits_finished);
        }
    }
}

impl Polling {
    /// Checks the arguments (nothing is sent otherwise); the wait's time counts from `now`.
    pub fn start(client: &Client, task_id: i64, schedule: &Schedule, now: Instant) -> Result<Polling, Error> {
        check_task_id(task_id)?;
        check_schedule(schedule)?;
        crate::client::stats::bump(&client.counters.waits_started);
        log::log(Level::Info, "wait.start", || {
            format!(
                "task {task_id}: first poll in {} ms, then every {} ms, {} ms at most, {} requests at most",
                schedule.first_delay.as_millis(),
                schedule.interval.as_millis(),
                schedule.timeout.as_millis(),
                schedule.max_requests
            )
        });
        Ok(Polling {
            counters: Arc::clone(&client.counters),
            counted_finished: false,
            started: now,
            task_id,
            deadline: now + schedule.timeout,
            next_poll: now + schedule.first_delay,
            interval: schedule.interval,
            schedule: *schedule,
            last: Last::NoAnswer,
            stats: CallStats::default(),
        })
    }

    pub fn task_id(&self) -> i64 {
        self.task_id
    }

    /// The wait is over: counted finished (before its report is handed out, so that a
    /// caller holding the report sees it counted) and the `wait.end` line logged with its
    /// outcome, requests and time.
    pub fn end(&mut self, report: &Report<TaskState>) {
        if !std::mem::replace(&mut self.counted_finished, true) {
            crate::client::stats::bump(&self.counters.waits_finished);
        }
        let level = if report.result.is_ok() { Level::Info } else { Level::Warn };
        log::log(level, "wait.end", || {
            let outcome = match &report.result {
                Ok(_) => "ready".to_owned(),
                Err(error) => format!("{}: {}", error.code.c_name().to_string_lossy(), error.message),
            };
            format!(
                "task {}: {outcome} after {} requests in {} ms",
                self.task_id,
                report.requests,
                self.started.elapsed().as_millis()
            )
        });
    }

    /// Makes the next poll due at `now` (a key stop: the guard answers it at once).
    pub fn poll_now(&mut self, now: Instant) {
        self.next_poll = self.next_poll.min(now);
    }

    /// When to call [`step`](Polling::step) next: the next poll, or the deadline if sooner.
    pub fn wake_at(&self) -> Instant {
        self.next_poll.min(self.deadline)
    }

    /// At [`wake_at`](Polling::wake_at): ends the wait at its deadline, or polls once within
    /// it. `Some` when the wait is over; `None` to be woken again.
    pub fn step(&mut self, client: &Client, cancels: &[&Arc<Cancel>]) -> Option<Report<TaskState>> {
        block_now(self.step_on(client, &client.blocking_link(), cancels))
    }

    /// [`step`](Polling::step) on any link: the blocking one, or the engine's event loop.
    pub async fn step_on<L: Link>(
        &mut self,
        client: &Client,
        link: &L,
        cancels: &[&Arc<Cancel>],
    ) -> Option<Report<TaskState>> {
        let task_id = self.task_id;
        if Instant::now() >= self.deadline {
            let message = format!(
                "task {task_id} was not ready after {} ms (last: {}; {} requests sent)",
                self.schedule.timeout.as_millis(),
                self.last,
                self.stats.requests
            );
            return Some(self.stats.report(Err(Error::new(Code::Timeout, message))));
        }
        let max_requests = self.schedule.max_requests;
        let last = &self.last;
        let mut admit = |sent: u32| {
            if sent >= max_requests {
                return Err(Error::new(
                    Code::BudgetExhausted,
                    format!("the wait for task {task_id} spent its max_requests ({max_requests}) (last: {last})"),
                ));
            }
            Ok(())
        };
        let bounds = Bounds { deadline: Some(self.deadline), cancels };
        match client.poll_task_on(link, task_id, bounds, &mut self.stats, &mut admit).await {
            Ok(TaskState::Processing) => self.last = Last::Processing,
            Ok(ready @ TaskState::Ready(_)) => return Some(self.stats.report(Ok(ready))),
            Err(error) if error.code == Code::Cancelled => return Some(self.cancelled()),
            Err(error) => match retry_policy(&error) {
                Retry::No => return Some(self.stats.report(Err(error))),
                Retry::Yes => {
                    self.retry(&error, "polls again");
                    self.last = Last::Failed(error.message.into());
                }
                Retry::SlowDown => {
                    self.retry(&error, "slows down");
                    self.last = Last::Failed(error.message.into());
                    self.interval = (self.interval * 2).min(MAX_INTERVAL.max(self.schedule.interval));
                }
            },
        }
        self.next_poll = Instant::now() + self.interval;
        None
    }

    /// Counts and logs a failed poll that the wait follows with another.
    fn retry(&self, error: &Error, how: &str) {
        crate::client::stats::bump(&self.counters.retries);
        log::log(Level::Info, "wait.retry", || format!("task {}: {how} after: {}", self.task_id, error.message));
    }

    /// The end of a wait whose cancel triggered.
    pub fn cancelled(&self) -> Report<TaskState> {
        let message = format!(
            "the wait for task {} was cancelled after {} requests (last: {})",
            self.task_id, self.stats.requests, self.last
        );
        self.stats.report(Err(Error::new(Code::Cancelled, message)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: Code, http_status: Option<u16>, api: Option<&str>) -> Error {
        let mut error = match api {
            Some(api) => Error::api(Some(api.to_owned()), None, 200),
            None => Error::new(code, "x"),
        };
        error.http_status = http_status;
        error
    }

    #[test]
    fn what_is_retried() {
        assert_eq!(retry_policy(&error(Code::Network, None, None)), Retry::Yes);
        assert_eq!(retry_policy(&error(Code::Timeout, None, None)), Retry::Yes);
        assert_eq!(retry_policy(&error(Code::HttpStatus, Some(503), None)), Retry::Yes);
        assert_eq!(retry_policy(&error(Code::HttpStatus, Some(429), None)), Retry::SlowDown);
        assert_eq!(retry_policy(&error(Code::HttpStatus, Some(404), None)), Retry::No);
        assert_eq!(retry_policy(&error(Code::Api, None, Some("ERROR_TOO_MUCH_REQUESTS"))), Retry::SlowDown);
        assert_eq!(retry_policy(&error(Code::Api, None, Some("ERROR_CAPTCHA_UNSOLVABLE"))), Retry::No);
        assert_eq!(retry_policy(&error(Code::BadResponse, Some(200), None)), Retry::No);
        assert_eq!(retry_policy(&error(Code::BudgetExhausted, None, None)), Retry::No);
    }
}
