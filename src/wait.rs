//! Waiting for a task: poll getTaskResult on a schedule until the task is ready, fails, runs
//! out of time or budget, or is cancelled.
//!
//! The loop: sleep `first_delay`, then poll; after each answer sleep `interval` (measured from
//! the answer, so a slow answer never makes polls bunch up). Transient failures (network,
//! request timeout, HTTP 5xx/429, `ERROR_TOO_MUCH_REQUESTS`) are retried at the next poll;
//! 429 and `ERROR_TOO_MUCH_REQUESTS` also double the interval, up to [`MAX_INTERVAL`](crate::wait::MAX_INTERVAL). Any
//! other failure ends the wait at once. Sleeps wake at once on a cancel; a request in flight
//! is bounded by the smaller of the request timeout and the time left.

use std::time::{Duration, Instant};

use crate::answer::TaskState;
use crate::cancel::{sleep_until, Cancel};
use crate::client::{check_task_id, CallStats, Client, Report};
use crate::error::{Code, Error};
use crate::schedule::Schedule;

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
pub fn wait(client: &Client, task_id: i64, schedule: &Schedule, cancel: Option<&Cancel>) -> Report<TaskState> {
    let mut stats = CallStats::default();
    let result = check_task_id(task_id)
        .and_then(|()| check_schedule(schedule))
        .and_then(|()| poll_until_done(client, task_id, schedule, cancel, &mut stats));
    stats.report(result)
}

fn poll_until_done(
    client: &Client,
    task_id: i64,
    schedule: &Schedule,
    cancel: Option<&Cancel>,
    stats: &mut CallStats,
) -> Result<TaskState, Error> {
    let start = Instant::now();
    let deadline = start + schedule.timeout;
    let mut interval = schedule.interval;
    let mut next_poll = start + schedule.first_delay;
    let mut last = String::from("no answer yet");
    let max_requests = schedule.max_requests;
    // Bounded: each turn sends a request (ending at max_requests) or returns.
    loop {
        let cancelled = sleep_until(cancel, next_poll.min(deadline));
        if cancelled {
            return Err(Error::new(
                Code::Cancelled,
                format!("the wait for task {task_id} was cancelled after {} requests (last: {last})", stats.requests),
            ));
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                Code::Timeout,
                format!(
                    "task {task_id} was not ready after {} ms (last: {last}; {} requests sent)",
                    schedule.timeout.as_millis(),
                    stats.requests
                ),
            ));
        }
        let mut admit = |sent: u32| {
            if sent >= max_requests {
                return Err(Error::new(
                    Code::BudgetExhausted,
                    format!("the wait for task {task_id} spent its max_requests ({max_requests}) (last: {last})"),
                ));
            }
            Ok(())
        };
        match client.poll_task(task_id, Some(deadline), stats, &mut admit) {
            Ok(TaskState::Processing) => last = String::from("processing"),
            Ok(ready @ TaskState::Ready(_)) => return Ok(ready),
            Err(error) => match retry_policy(&error) {
                Retry::No => return Err(error),
                Retry::Yes => last = error.message,
                Retry::SlowDown => {
                    last = error.message;
                    interval = (interval * 2).min(MAX_INTERVAL.max(schedule.interval));
                }
            },
        }
        next_poll = Instant::now() + interval;
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
