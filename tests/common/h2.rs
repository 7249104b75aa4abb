//! HTTP/2 cases run against two servers: nginx in front of the emulator (Linux) and the
//! emulator's own TLS listener (everywhere, Wine included). Each takes a client already on
//! the event loop and warmed (its connection up and known to speak HTTP/2), the emulator that
//! answers behind it, and the first of the task ids it may script.

use std::sync::Arc;
use std::time::{Duration, Instant};

use capmonster::{Cancel, Client, Code, Finished, Next, Schedule, Waiter};
use capmonster_emulator::{Emulator, Step};
use serde_json::json;

/// Warms `client`: one wait ready at its first poll (task `task`), so that its connection is
/// up and known to speak HTTP/2 before a case starts.
pub fn warm(emulator: &Emulator, client: &Arc<Client>, waiter: &Waiter, task: i64) {
    emulator.script_task(task, vec![Step::ready(json!({}))]);
    waiter.add(task, &one_poll_a_second(10), None, u64::MAX).unwrap();
    let done = finished(waiter, Duration::from_secs(10));
    assert!(done.report.result.is_ok(), "warm-up: {:?}", done.report.result);
    assert_eq!(client.connections_opened(), 1);
}

/// 50 waits in flight as streams on one connection (the emulator answers each after 400 ms or
/// more); one of them is cancelled mid-request: it ends within 100 ms, the 49 others complete
/// on the same connection, and no connection is opened again (its stream was reset, not the
/// connection).
pub fn a_cancelled_stream_leaves_its_connection_to_the_others(emulator: &Emulator, client: &Arc<Client>, first: i64) {
    let waiter = Waiter::new(client).unwrap();
    warm(emulator, client, &waiter, first + 999);
    let cancel = Arc::new(Cancel::new());
    for task in 0..50 {
        emulator.script_task(first + task, vec![Step::ready(json!({"text": "ok"}))]);
        let token = (task == 7).then(|| Arc::clone(&cancel));
        waiter.add(first + task, &one_poll_a_second(10), token, task as u64).unwrap();
    }
    until_in_flight(client, 50);
    let triggered = Instant::now();
    cancel.trigger();
    let cancelled = finished(&waiter, Duration::from_secs(5));
    let ended_in = triggered.elapsed();
    assert_eq!(cancelled.task_id, first + 7);
    assert_eq!(cancelled.report.result.unwrap_err().code, Code::Cancelled);
    assert!(ended_in < Duration::from_millis(100), "the cancelled wait ended {ended_in:?} after its cancel");
    for _ in 0..49 {
        let done = finished(&waiter, Duration::from_secs(5));
        assert!(done.report.result.is_ok(), "task {}: {:?}", done.task_id, done.report.result);
    }
    assert_eq!(client.connections_opened(), 1, "the reset stream left its connection up");
}

/// 100 waits in flight as streams (the emulator answers each after 1 s or more, so they are
/// still in flight when `reset` kills the connection from the server's side; it is handed the
/// emulator, which the case needs no more): each fails at once as a network error, within its
/// budget of one request, as a blocking call would.
pub fn a_connection_reset_under_100_streams_fails_each_stream(
    emulator: Emulator,
    client: &Arc<Client>,
    first: i64,
    reset: impl FnOnce(Emulator),
) {
    let waiter = Waiter::new(client).unwrap();
    warm(&emulator, client, &waiter, first + 999);
    for task in 0..100 {
        emulator.script_task(first + task, vec![Step::ready(json!({}))]);
        // One request each: a wait ends at the time of its next poll, 100 ms after the failure.
        let one_request = Schedule { interval: Duration::from_millis(100), ..one_poll_a_second(1) };
        waiter.add(first + task, &one_request, None, task as u64).unwrap();
    }
    until_in_flight(client, 100);
    // From the end of the reset: the server's connections are gone by then (nginx killed and
    // reaped; the emulator's runtime shut down).
    reset(emulator);
    let killed = Instant::now();
    for _ in 0..100 {
        let done = finished(&waiter, Duration::from_secs(5));
        let error = done.report.result.unwrap_err();
        assert_eq!(error.code, Code::BudgetExhausted, "{}", error.message);
        assert!(error.message.contains("(last: getTaskResult: "), "{}", error.message);
    }
    assert!(killed.elapsed() < Duration::from_millis(500), "the streams failed {:?} after the reset", killed.elapsed());
    assert_eq!(client.stats().answers_network_error, 100);
}

/// First poll at once, then one a second, at most `max_requests`.
fn one_poll_a_second(max_requests: u32) -> Schedule {
    Schedule {
        first_delay: Duration::ZERO,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(30),
        max_requests,
    }
}

/// The next finished wait, within `within` (a test failure otherwise).
pub fn finished(waiter: &Waiter, within: Duration) -> Finished {
    match waiter.next(within) {
        Next::Finished(finished) => finished,
        other => panic!("no wait finished within {within:?}: {other:?}"),
    }
}

/// Waits until `count` requests of `client` are in flight at once (5 s at most).
pub fn until_in_flight(client: &Client, count: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.requests_in_flight() < count {
        assert!(Instant::now() < deadline, "{} of {count} requests in flight", client.requests_in_flight());
        std::thread::sleep(Duration::from_millis(2));
    }
}
