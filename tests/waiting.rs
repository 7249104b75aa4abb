//! The wait loop against the emulator: readiness, retries, final errors, deadline, cancel,
//! and the request budget under concurrency.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use capmonster::wait::wait;
use capmonster::{Cancel, Code, Schedule, TaskState};
use common::*;
use serde_json::json;

#[test]
fn waits_until_ready() {
    let emulator = emulator();
    emulator.script_task(1, vec![Step::processing(), Step::processing(), Step::ready(json!({"text": "x"}))]);
    let client = client(&emulator, "wait-ready");
    let report = wait(&client, 1, &fast_schedule(), None);
    assert!(matches!(report.result, Ok(TaskState::Ready(_))));
    assert_eq!(report.requests, 3);
    assert_eq!(emulator.task_requests(1), 3);
}

#[test]
fn first_delay_and_interval_are_honoured() {
    let emulator = emulator();
    emulator.script_task(2, vec![Step::processing(), Step::processing(), Step::ready(json!({}))]);
    let client = client(&emulator, "wait-schedule");
    let schedule =
        Schedule { first_delay: Duration::from_millis(200), interval: Duration::from_millis(150), ..fast_schedule() };
    let start = Instant::now();
    let report = wait(&client, 2, &schedule, None);
    assert!(report.result.is_ok());
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn transient_failures_are_retried() {
    let emulator = emulator();
    emulator.script_task(
        3,
        vec![
            Step::raw(503, "busy"),
            Step::raw(502, "<html>gateway</html>"),
            Step::close(),
            Step::processing().delay(800),
            Step::api_error("ERROR_TOO_MUCH_REQUESTS", "slow down", 200),
            Step::raw(429, ""),
            Step::ready(json!({"token": "t"})),
        ],
    );
    let client = client(&emulator, "wait-transient");
    client.set_request_timeout(Duration::from_millis(300)).unwrap();
    let report = wait(&client, 3, &fast_schedule(), None);
    assert!(matches!(report.result, Ok(TaskState::Ready(_))), "{:?}", report.result);
    // The close on a fresh connection and the timeout each cost one request, no hidden extras.
    assert_eq!(emulator.task_requests(3), report.requests);
    assert!(report.requests >= 7, "{}", report.requests);
}

#[test]
fn slow_down_answers_double_the_interval() {
    let emulator = emulator();
    emulator.script_task(
        4,
        vec![
            Step::api_error("ERROR_TOO_MUCH_REQUESTS", "slow down", 200),
            Step::api_error("ERROR_TOO_MUCH_REQUESTS", "slow down", 200),
            Step::raw(429, ""),
            Step::ready(json!({})),
        ],
    );
    let client = client(&emulator, "wait-backoff");
    let schedule = Schedule { interval: Duration::from_millis(100), ..fast_schedule() };
    let start = Instant::now();
    assert!(wait(&client, 4, &schedule, None).result.is_ok());
    // 200 + 400 + 800 ms instead of 3 x 100 ms.
    assert!(start.elapsed() >= Duration::from_millis(1400), "{:?}", start.elapsed());
}

#[test]
fn final_errors_end_the_wait_at_once() {
    let emulator = emulator();
    let client = client(&emulator, "wait-final");
    let cases = [
        (11, Step::api_error("ERROR_CAPTCHA_UNSOLVABLE", "no", 200), Code::Api),
        (12, Step::api_error("ERROR_NO_SUCH_CAPCHA_ID", "no", 200), Code::Api),
        (13, Step::raw(200, "garbage"), Code::BadResponse),
        (14, Step::raw(404, "not found"), Code::HttpStatus),
    ];
    for (task, step, code) in cases {
        emulator.script_task(task, vec![Step::processing(), step]);
        let report = wait(&client, task, &fast_schedule(), None);
        assert_eq!(report.result.unwrap_err().code, code, "task {task}");
        assert_eq!(report.requests, 2, "task {task}");
    }
}

#[test]
fn the_deadline_ends_the_wait_and_names_the_last_state() {
    let emulator = emulator();
    emulator.script_task(21, vec![Step::processing()]);
    let client = client(&emulator, "wait-deadline");
    let schedule =
        Schedule { interval: Duration::from_millis(50), timeout: Duration::from_millis(400), ..fast_schedule() };
    let start = Instant::now();
    let report = wait(&client, 21, &schedule, None);
    let took = start.elapsed();
    let error = report.result.unwrap_err();
    assert_eq!(error.code, Code::Timeout);
    assert!(error.message.contains("processing"), "{}", error.message);
    assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(1500), "{took:?}");
}

#[test]
fn a_request_in_flight_is_bounded_by_the_deadline() {
    let emulator = emulator();
    emulator.script_task(22, vec![Step::processing().delay(5000)]);
    let client = client(&emulator, "wait-deadline-in-flight");
    let schedule = Schedule { timeout: Duration::from_millis(300), ..fast_schedule() };
    let start = Instant::now();
    let error = wait(&client, 22, &schedule, None).result.unwrap_err();
    assert_eq!(error.code, Code::Timeout);
    assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());
}

#[test]
fn cancel_wakes_a_sleeping_wait_within_50_ms() {
    let emulator = emulator();
    emulator.script_task(31, vec![Step::processing()]);
    let client = client(&emulator, "wait-cancel");
    let cancel = Arc::new(Cancel::new());
    let trigger = {
        let cancel = Arc::clone(&cancel);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            cancel.trigger();
            Instant::now()
        })
    };
    let schedule = Schedule { interval: Duration::from_secs(5), ..fast_schedule() };
    let report = wait(&client, 31, &schedule, Some(&cancel));
    let returned = Instant::now();
    let triggered = trigger.join().unwrap();
    assert_eq!(report.result.unwrap_err().code, Code::Cancelled);
    assert!(returned.duration_since(triggered) < Duration::from_millis(50), "{:?}", returned.duration_since(triggered));
    assert_eq!(report.requests, 1);
}

#[test]
fn max_requests_caps_one_wait() {
    let emulator = emulator();
    emulator.script_task(41, vec![Step::processing()]);
    let client = client(&emulator, "wait-max-requests");
    let schedule = Schedule { max_requests: 4, ..fast_schedule() };
    let report = wait(&client, 41, &schedule, None);
    let error = report.result.unwrap_err();
    assert_eq!(error.code, Code::BudgetExhausted);
    assert!(error.message.contains("max_requests"), "{}", error.message);
    assert_eq!(report.requests, 4);
    assert_eq!(emulator.task_requests(41), 4);
}

#[test]
fn invalid_schedules_send_nothing() {
    let emulator = emulator();
    let client = client(&emulator, "wait-invalid");
    for schedule in
        [Schedule { interval: Duration::ZERO, ..fast_schedule() }, Schedule { max_requests: 0, ..fast_schedule() }]
    {
        let report = wait(&client, 1, &schedule, None);
        assert_eq!(report.result.unwrap_err().code, Code::InvalidArgument);
        assert_eq!(report.requests, 0);
    }
    assert_eq!(emulator.method_requests("getTaskResult"), 0);
}

#[test]
fn sixty_four_threads_never_send_more_than_120_requests_for_one_task() {
    let emulator = emulator();
    emulator.script_task(51, vec![Step::processing()]);
    let client = Arc::new(client(&emulator, "wait-budget-race"));
    let outcomes: Vec<(Code, u32)> = (0..64)
        .map(|_| {
            let client = Arc::clone(&client);
            thread::spawn(move || {
                let schedule = Schedule { interval: Duration::from_millis(1), ..fast_schedule() };
                let report = wait(&client, 51, &schedule, None);
                (report.result.unwrap_err().code, report.requests)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(outcomes.iter().all(|(code, _)| *code == Code::BudgetExhausted), "{outcomes:?}");
    assert_eq!(outcomes.iter().map(|(_, sent)| sent).sum::<u32>(), 120);
    assert_eq!(emulator.task_requests(51), 120);
    // The budget outlives the call: a new call on another client with the same key sends nothing.
    let other = common::client(&emulator, "wait-budget-race");
    let report = other.get_task_result(51);
    assert_eq!(report.result.unwrap_err().code, Code::BudgetExhausted);
    assert_eq!(report.requests, 0);
    assert_eq!(emulator.task_requests(51), 120);
}
