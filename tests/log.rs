//! The log hook against the emulator and real proxies: each event fires where it should, no
//! line holds the key (or its `__suffix` forms) or a proxy password, and a sink that panics,
//! blocks or removes itself breaks nothing. The sink is process-wide: the tests here take turns.

mod common;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use capmonster::log::{self, Level};
use capmonster::wait::polling::wait;
use capmonster::{Code, Next, Schedule, Waiter};
use common::servers::{scratch_dir, tinyproxy};
use common::*;
use serde_json::json;

/// The sink is one per process: one test at a time sets it.
static TURN: Mutex<()> = Mutex::new(());

/// Lines caught: (level, event, message).
type Lines = Arc<Mutex<Vec<(Level, String, String)>>>;

fn catch_lines(level: Level) -> (MutexGuard<'static, ()>, Lines) {
    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let lines: Lines = Arc::default();
    let into = Arc::clone(&lines);
    log::set_sink(
        level,
        Some(Arc::new(move |level, event: &str, message: &str| {
            into.lock().unwrap().push((level, event.to_owned(), message.to_owned()));
        })),
    );
    (turn, lines)
}

fn events(lines: &Lines) -> Vec<String> {
    lines.lock().unwrap().iter().map(|(_, event, _)| event.clone()).collect()
}

/// Fails naming the line if any holds one of `secrets`.
fn assert_clean(lines: &Lines, secrets: &[&str]) {
    let lines = lines.lock().unwrap();
    assert!(!lines.is_empty());
    for (level, event, message) in lines.iter() {
        assert!(!message.contains('\n'), "{event}: {message}");
        for secret in secrets {
            assert!(
                !message.contains(secret) && !event.contains(secret),
                "{level:?} {event}: {message} holds {secret}"
            );
        }
    }
}

const KEY: &str = "log-key-SECRET-0123456789abcdef";

#[test]
fn a_wait_logs_each_step_and_never_the_key() {
    let (_turn, lines) = catch_lines(Level::Trace);
    let emulator = emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    // A description that echoes the key, in its plain and `__suffix` forms.
    let echo = format!("bad key {KEY} or {KEY}__recaptcha");
    emulator.script_task(
        task_id,
        vec![
            Step::processing(),
            Step::raw(500, &format!("oops {KEY}__x")),
            Step::api_error("ERROR_TOO_MUCH_REQUESTS", &echo, 200),
            Step::ready(json!({"text": "answer"})),
        ],
    );
    let client = client(&emulator, KEY);
    let report = wait(&client, task_id, &fast_schedule(), None);
    assert!(report.result.is_ok(), "{:?}", report.result);
    let seen = events(&lines);
    for event in ["wait.start", "request", "budget.count", "answer", "wait.retry", "wait.end"] {
        assert!(seen.iter().any(|seen| seen == event), "no {event} in {seen:?}");
    }
    assert_eq!(seen.iter().filter(|event| *event == "request").count(), 4, "{seen:?}");
    let lines_now = lines.lock().unwrap().clone();
    let requests: Vec<_> = lines_now.iter().filter(|(_, event, _)| event == "request").map(|(_, _, m)| m).collect();
    assert!(
        requests[0].contains(&format!("getTaskResult task {task_id} attempt 1 on a new connection")),
        "{requests:?}"
    );
    assert!(requests[1].contains("attempt 2 on a reused connection"), "{requests:?}");
    let end = lines_now.iter().find(|(_, event, _)| event == "wait.end").unwrap();
    assert!(end.2.contains("ready after 4 requests"), "{end:?}");
    assert!(lines_now.iter().any(|(_, e, m)| e == "answer" && m.contains("api-error") && m.contains("***")));
    assert_clean(&lines, &[KEY, "SECRET-0123456789abcdef"]);
}

#[test]
fn the_budget_and_the_guard_say_why_nothing_was_sent() {
    let (_turn, lines) = catch_lines(Level::Info);
    let emulator = emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    emulator.script_task(task_id, vec![Step::processing(); 120]);
    let client = client(&emulator, "log-budget-SECRET-key");
    for _ in 0..120 {
        client.get_task_result(task_id).result.unwrap();
    }
    assert_eq!(client.get_task_result(task_id).result.unwrap_err().code, Code::BudgetExhausted);
    assert!(events(&lines).contains(&"budget.refused".to_owned()), "{:?}", events(&lines));
    assert_eq!(client.stats().budget_refusals, 1);

    let revoked = "log-revoked-SECRET-key";
    emulator.update_account(json!({"revokedKeys": [revoked]})).unwrap();
    let stopped = common::client(&emulator, revoked);
    assert_eq!(stopped.get_balance().result.unwrap_err().code, Code::Api);
    assert_eq!(stopped.get_balance().requests, 0);
    assert_eq!(stopped.create_task(r#"{"type":"ImageToTextTask","body":"aGVsbG8="}"#, None).requests, 0);
    let refused = lines.lock().unwrap().iter().filter(|(_, event, _)| event == "guard.refused").count();
    assert_eq!(refused, 2, "{:?}", events(&lines));
    assert_eq!(stopped.stats().guard_refusals, 2);
    stopped.end_stops();
    let seen = events(&lines);
    assert_eq!(seen.iter().filter(|event| *event == "guard.stop").count(), 1, "{seen:?}");
    assert!(seen.contains(&"guard.end".to_owned()), "{seen:?}");
    assert_clean(&lines, &["log-budget-SECRET-key", revoked]);
}

#[test]
fn proxy_and_tls_failures_are_errors_without_the_password() {
    let (_turn, lines) = catch_lines(Level::Error);
    let emulator = emulator();
    let proxy = tinyproxy(&scratch_dir("log-tinyproxy"), Some(("alice", "proxy-pass-123")));
    let client = common::client(&emulator, "log-proxy-SECRET-key");
    client.set_proxy(Some(&format!("http://alice:wrong-pass-456@127.0.0.1:{}", proxy.port))).unwrap();
    assert_eq!(client.get_balance().result.unwrap_err().code, Code::Network);
    // TLS to a server that speaks plain HTTP: the handshake fails.
    let tls = common::client(&emulator, "log-tls-SECRET-key");
    tls.set_base_url(&format!("https://127.0.0.1:{}", emulator.port())).unwrap();
    assert_eq!(tls.get_balance().result.unwrap_err().code, Code::Network);
    let failed: Vec<_> =
        lines.lock().unwrap().iter().filter(|(_, event, _)| event == "network.failed").map(|l| l.2.clone()).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[0].contains("proxy"), "{failed:?}");
    assert_eq!(client.stats().answers_network_error, 1);
    assert_clean(&lines, &["wrong-pass-456", "alice:", "log-proxy-SECRET-key", "log-tls-SECRET-key"]);
}

/// A connect that fails (nothing listens) is logged as a request on a new connection: there
/// was no pooled one to reuse.
#[test]
fn a_failed_connect_is_logged_as_on_a_new_connection() {
    let (_turn, lines) = catch_lines(Level::Debug);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = capmonster::Client::new("log-connect-refused").unwrap();
    client.set_base_url(&format!("http://127.0.0.1:{closed}")).unwrap();
    client.set_proxy(None).unwrap();
    assert_eq!(client.get_balance().result.unwrap_err().code, Code::Network);
    let lines = lines.lock().unwrap();
    let request = lines.iter().find(|(_, event, _)| event == "request").expect("a request line");
    assert!(request.2.contains("getBalance attempt 1 on a new connection"), "{request:?}");
}

#[test]
fn a_panicking_sink_is_caught_and_counted() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    log::set_sink(Level::Trace, Some(Arc::new(|_, _: &str, _: &str| panic!("a sink that panics"))));
    let emulator = emulator();
    let client = client(&emulator, "log-panics");
    let before = log::sink_panics();
    for _ in 0..3 {
        assert!(client.get_balance().result.is_ok());
    }
    assert!(log::sink_panics() >= before + 3, "{} panics", log::sink_panics() - before);
    log::set_sink(Level::Trace, None);
}

#[test]
fn a_sink_may_remove_itself_and_a_slow_one_hangs_nothing() {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let calls = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&calls);
    log::set_sink(
        Level::Trace,
        Some(Arc::new(move |_, _: &str, _: &str| {
            *counted.lock().unwrap() += 1;
            log::set_sink(Level::Trace, None);
        })),
    );
    let emulator = Emulator::start(Config { solve_after: Duration::from_millis(100), ..Config::default() }).unwrap();
    let client = Arc::new(client(&emulator, "log-removes-itself"));
    assert!(client.get_balance().result.is_ok());
    assert!(client.get_balance().result.is_ok());
    assert_eq!(*calls.lock().unwrap(), 1, "removed after its first line");
    assert!(!log::enabled(Level::Error));

    // A sink that blocks for 200 ms a line, on waits of a waiter: the waits end, later.
    log::set_sink(Level::Info, Some(Arc::new(|_, _: &str, _: &str| std::thread::sleep(Duration::from_millis(200)))));
    let waiter = Waiter::new(&client).unwrap();
    let schedule = Schedule { first_delay: Duration::ZERO, ..fast_schedule() };
    let started = Instant::now();
    for tag in 0..4 {
        waiter.add(emulator.add_task("ImageToTextTask"), &schedule, None, tag).unwrap();
    }
    for _ in 0..4 {
        match waiter.next(Duration::from_secs(20)) {
            Next::Finished(finished) => assert!(finished.report.result.is_ok(), "{:?}", finished.report.result),
            other => panic!("{other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    log::set_sink(Level::Trace, None);
}

#[test]
fn a_cancel_in_flight_is_logged_as_the_request_and_the_wait_ending() {
    let (_turn, lines) = catch_lines(Level::Debug);
    let emulator = emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    // The answer would come after 5 s: the cancel reaches the request in flight long before.
    emulator.script_task(task_id, vec![Step::processing().delay(5_000)]);
    let client = client(&emulator, KEY);
    let cancel = Arc::new(capmonster::Cancel::new());
    let canceller = {
        let cancel = Arc::clone(&cancel);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cancel.trigger();
        })
    };
    let started = Instant::now();
    let report = wait(&client, task_id, &fast_schedule(), Some(&cancel));
    canceller.join().unwrap();
    assert_eq!(report.result.as_ref().unwrap_err().code, Code::Cancelled, "{:?}", report.result);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let lines_now = lines.lock().unwrap().clone();
    let request = lines_now.iter().find(|(_, event, _)| event == "request").expect("a request line");
    assert!(request.2.contains("getTaskResult was cancelled while its request was in flight"), "{request:?}");
    let end = lines_now.iter().find(|(_, event, _)| event == "wait.end").expect("a wait.end line");
    assert!(end.2.starts_with(&format!("task {task_id}: CM_ERR_CANCELLED")), "{end:?}");
    assert_eq!(end.0, Level::Warn);
    assert_clean(&lines, &[KEY]);
}
