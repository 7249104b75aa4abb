//! The waiter against the emulator: many waits on few threads, readiness of its fd, several
//! takers, shutdown with waits asleep and in flight, cancels, and the client freed first.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capmonster::{Cancel, Client, Code, Engine, Next, Schedule, TaskState, Waiter};
use common::*;
use serde_json::json;

fn shared_client(emulator: &Emulator, key: &str) -> Arc<Client> {
    Arc::new(client(emulator, key))
}

/// A client whose waits and solves run on the event loop (`on_loop`) or on the threads.
fn solving_client(emulator: &Emulator, key: &str, on_loop: bool) -> Arc<Client> {
    let client = client(emulator, &format!("{key}-{}", if on_loop { "loop" } else { "threads" }));
    client.set_engine(if on_loop { Engine::EventLoop } else { Engine::Threads });
    Arc::new(client)
}

/// Takes one finished wait within 10 s, or fails the test.
fn take(waiter: &Waiter) -> capmonster::Finished {
    match waiter.next(Duration::from_secs(10)) {
        Next::Finished(finished) => finished,
        other => panic!("no wait came out: {other:?}"),
    }
}

fn solution(finished: &capmonster::Finished) -> String {
    match &finished.report.result {
        Ok(TaskState::Ready(solution)) => solution.get().to_owned(),
        other => panic!("task {} did not end ready: {other:?}", finished.task_id),
    }
}

#[test]
fn twenty_thousand_waits_come_out_right_on_few_threads() {
    let emulator = Emulator::start(Config { solve_after: Duration::from_millis(300), ..Config::default() }).unwrap();
    let client = shared_client(&emulator, "waiter-20000");
    let waiter = Waiter::new(&client).unwrap();
    let schedule = Schedule {
        first_delay: Duration::from_millis(250),
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(120),
        max_requests: 120,
    };
    const WAITS: u64 = 20_000;
    let mut task_of_tag = std::collections::HashMap::new();
    for tag in 0..WAITS {
        let task_id = emulator.add_task("ImageToTextTask");
        waiter.add(task_id, &schedule, None, tag).unwrap();
        task_of_tag.insert(tag, task_id);
    }
    let mut seen = HashSet::new();
    let mut requests = 0u64;
    let mut peak_threads = 0;
    for _ in 0..WAITS {
        let finished = match waiter.next(Duration::from_secs(60)) {
            Next::Finished(finished) => finished,
            other => panic!("{other:?} after {} waits", seen.len()),
        };
        assert_eq!(solution(&finished), r#"{"text":"answer"}"#);
        assert_eq!(task_of_tag[&finished.tag], finished.task_id, "the tag goes with its task");
        assert!(seen.insert(finished.tag), "tag {} came out twice", finished.tag);
        requests += u64::from(finished.report.requests);
        peak_threads = peak_threads.max(waiter.engine_threads());
    }
    assert_eq!(waiter.pending(), 0);
    assert!(matches!(waiter.next(Duration::ZERO), Next::TimedOut));
    assert!(peak_threads <= client.max_connections() as usize, "{peak_threads} threads");
    // Ready 300 ms after creation, first poll at 250 ms, then every 100 ms: 2 or 3 polls
    // each, 1 when the machine runs late; never a burst of extra ones.
    assert!((WAITS..=4 * WAITS).contains(&requests), "{requests} requests");
}

#[cfg(target_os = "linux")]
#[test]
fn the_fd_is_readable_exactly_while_a_finished_wait_is_queued() {
    let emulator = emulator();
    emulator.script_task(41, vec![Step::ready(json!({"text": "fd"}))]);
    let client = shared_client(&emulator, "waiter-fd");
    let waiter = Waiter::new(&client).unwrap();
    let fd = waiter.fd().expect("an eventfd on Linux");
    let readable = |wait_ms: i32| {
        let mut poll_fd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut poll_fd, 1, wait_ms) == 1 }
    };
    assert!(!readable(0), "nothing queued yet");
    waiter.add(41, &fast_schedule(), None, 7).unwrap();
    waiter.add(41, &fast_schedule(), None, 8).unwrap();
    assert!(readable(5000), "readable once a wait has finished");
    std::thread::sleep(Duration::from_millis(100));
    let first = take(&waiter);
    assert!(readable(5000), "still readable: the second wait is queued or comes soon");
    let second = take(&waiter);
    assert_eq!([first.tag, second.tag].iter().collect::<HashSet<_>>().len(), 2);
    assert!(!readable(0), "not readable once the queue is empty");
}

#[test]
fn several_takers_each_get_distinct_waits() {
    let emulator = emulator();
    let client = shared_client(&emulator, "waiter-takers");
    let waiter = Waiter::new(&client).unwrap();
    const WAITS: u64 = 400;
    for tag in 0..WAITS {
        let task_id = 500 + tag as i64;
        emulator.script_task(task_id, vec![Step::processing(), Step::ready(json!({"text": tag.to_string()}))]);
        waiter.add(task_id, &fast_schedule(), None, tag).unwrap();
    }
    let tags: Vec<u64> = std::thread::scope(|scope| {
        let takers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    while let Next::Finished(finished) = waiter.next(Duration::from_millis(2000)) {
                        assert_eq!(solution(&finished), format!(r#"{{"text":"{}"}}"#, finished.tag));
                        mine.push(finished.tag);
                    }
                    mine
                })
            })
            .collect();
        takers.into_iter().flat_map(|taker| taker.join().unwrap()).collect()
    });
    assert_eq!(tags.len() as u64, WAITS, "every wait came out");
    assert_eq!(tags.iter().collect::<HashSet<_>>().len() as u64, WAITS, "each exactly once");
}

#[test]
fn shutdown_cancels_sleeping_and_in_flight_waits_promptly() {
    shutdown_cancels_waits(false);
}

/// With the event loop on: the request in flight is a future on the loop, dropped at once; a
/// wait asleep after a poll there is back in the engine's table.
#[test]
fn shutdown_cancels_sleeping_and_in_flight_waits_on_the_event_loop_promptly() {
    shutdown_cancels_waits(true);
}

fn shutdown_cancels_waits(on_loop: bool) {
    let emulator = emulator();
    emulator.script_task(61, vec![Step::stall(20_000)]);
    emulator.script_task(62, vec![Step::processing()]);
    let client = solving_client(&emulator, "waiter-shutdown", on_loop);
    let waiter = Waiter::new(&client).unwrap();
    waiter.add(61, &fast_schedule(), None, 1).unwrap();
    // On the loop: polled once, then asleep for 30 s. (Not on the threads, where it would
    // leave a pooled connection of the blocking path for the check of the interrupted one.)
    if on_loop {
        let slow = Schedule { interval: Duration::from_secs(30), ..fast_schedule() };
        waiter.add(62, &slow, None, 101).unwrap();
    }
    let sleepy =
        Schedule { first_delay: Duration::from_secs(60), timeout: Duration::from_secs(120), ..fast_schedule() };
    for tag in 2..=100 {
        waiter.add(1000 + tag as i64, &sleepy, None, tag).unwrap();
    }
    // Wait until the stalled request is in flight and the other wait asleep after its poll.
    let start = Instant::now();
    while (emulator.task_requests(61) == 0 || (on_loop && emulator.task_requests(62) == 0))
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let connections = emulator.connections();
    let shut = Instant::now();
    waiter.shutdown();
    let mut tags = HashSet::new();
    loop {
        match waiter.next(Duration::from_secs(10)) {
            Next::Finished(finished) => {
                let error = finished.report.result.unwrap_err();
                assert_eq!(error.code, Code::Cancelled, "{error}");
                tags.insert(finished.tag);
            }
            Next::ShutDown => break,
            Next::TimedOut => panic!("the waits did not all come out"),
        }
    }
    let took = shut.elapsed();
    assert_eq!(tags.len(), if on_loop { 101 } else { 100 });
    assert!(took < Duration::from_secs(2), "shutdown took {took:?} with a request stalled for 20 s");
    assert_eq!(waiter.add(70, &fast_schedule(), None, 0).unwrap_err().code, Code::Cancelled);
    assert!(matches!(waiter.next(Duration::ZERO), Next::ShutDown));
    // The interrupted connection is not reused: the next call opens a new one.
    assert!(client.get_balance().result.is_ok());
    assert!(emulator.connections() > connections);
}

#[test]
fn a_wait_cancel_ends_it_asleep_or_in_flight_and_spares_the_others() {
    a_wait_cancel_ends_it(false);
}

#[test]
fn a_wait_cancel_ends_it_asleep_or_in_flight_on_the_event_loop_and_spares_the_others() {
    a_wait_cancel_ends_it(true);
}

fn a_wait_cancel_ends_it(on_loop: bool) {
    let emulator = emulator();
    emulator.script_task(81, vec![Step::stall(20_000)]);
    emulator.script_task(82, vec![Step::processing()]);
    emulator.script_task(83, vec![Step::processing(), Step::ready(json!({"text": "kept"}))]);
    let client = solving_client(&emulator, "waiter-cancel", on_loop);
    let waiter = Waiter::new(&client).unwrap();
    let in_flight = Arc::new(Cancel::new());
    let asleep = Arc::new(Cancel::new());
    let slow = Schedule { interval: Duration::from_secs(30), ..fast_schedule() };
    waiter.add(81, &fast_schedule(), Some(Arc::clone(&in_flight)), 1).unwrap();
    waiter.add(82, &slow, Some(Arc::clone(&asleep)), 2).unwrap();
    let start = Instant::now();
    while (emulator.task_requests(81) == 0 || emulator.task_requests(82) == 0)
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    for (cancel, tag) in [(&asleep, 2), (&in_flight, 1)] {
        let triggered = Instant::now();
        cancel.trigger();
        let finished = take(&waiter);
        assert_eq!(finished.tag, tag);
        assert_eq!(finished.report.result.unwrap_err().code, Code::Cancelled);
        assert!(triggered.elapsed() < Duration::from_secs(1), "tag {tag}: {:?}", triggered.elapsed());
        assert_eq!(cancel.watching(), 0, "the token forgets what it watched");
    }
    // A token already triggered ends its wait at once; other waits run on.
    waiter.add(84, &fast_schedule(), Some(Arc::clone(&asleep)), 4).unwrap();
    assert_eq!(take(&waiter).report.result.unwrap_err().code, Code::Cancelled);
    waiter.add(83, &fast_schedule(), None, 3).unwrap();
    assert_eq!(solution(&take(&waiter)), r#"{"text":"kept"}"#);
}

#[test]
fn add_checks_its_arguments_as_wait_does() {
    let emulator = emulator();
    let client = shared_client(&emulator, "waiter-arguments");
    let waiter = Waiter::new(&client).unwrap();
    for (task_id, schedule, says) in [
        (0, fast_schedule(), "task_id"),
        (-5, fast_schedule(), "task_id"),
        (1, Schedule { interval: Duration::ZERO, ..fast_schedule() }, "interval_ms"),
        (1, Schedule { max_requests: 0, ..fast_schedule() }, "max_requests"),
    ] {
        let error = waiter.add(task_id, &schedule, None, 0).unwrap_err();
        assert_eq!(error.code, Code::InvalidArgument);
        assert!(error.message.contains(says), "{}", error.message);
    }
    assert_eq!(waiter.pending(), 0, "nothing was queued");
}

#[test]
fn deadlines_and_budgets_end_waits_as_in_wait() {
    let emulator = emulator();
    emulator.script_task(91, vec![Step::processing()]);
    emulator.script_task(92, vec![Step::processing()]);
    let client = shared_client(&emulator, "waiter-limits");
    let waiter = Waiter::new(&client).unwrap();
    let short = Schedule { timeout: Duration::from_millis(300), ..fast_schedule() };
    let few = Schedule { max_requests: 3, ..fast_schedule() };
    let added = Instant::now();
    waiter.add(91, &short, None, 1).unwrap();
    waiter.add(92, &few, None, 2).unwrap();
    let mut ends = [take(&waiter), take(&waiter)];
    ends.sort_by_key(|finished| finished.tag);
    let [timed_out, spent] = ends;
    assert_eq!(timed_out.report.result.unwrap_err().code, Code::Timeout);
    assert!(added.elapsed() >= Duration::from_millis(300));
    assert_eq!(spent.report.result.unwrap_err().code, Code::BudgetExhausted);
    assert_eq!(spent.report.requests, 3);
    assert_eq!(emulator.task_requests(92), 3);
}

#[test]
fn the_client_may_be_dropped_before_its_waiter() {
    let emulator = emulator();
    emulator.script_task(95, vec![Step::processing(), Step::ready(json!({"text": "late"}))]);
    let client = shared_client(&emulator, "waiter-client-first");
    let waiter = Waiter::new(&client).unwrap();
    waiter.add(95, &fast_schedule(), None, 9).unwrap();
    drop(client);
    assert_eq!(solution(&take(&waiter)), r#"{"text":"late"}"#);
}

#[test]
fn waiters_of_one_client_share_its_threads() {
    let emulator = emulator();
    let client = shared_client(&emulator, "waiter-shared-engine");
    client.set_max_connections(3).unwrap();
    let waiters: Vec<Waiter> = (0..4).map(|_| Waiter::new(&client).unwrap()).collect();
    for (index, waiter) in waiters.iter().enumerate() {
        for n in 0..50 {
            let task_id = 2000 + (index * 100 + n) as i64;
            emulator.script_task(task_id, vec![Step::processing().delay(5), Step::ready(json!({}))]);
            waiter.add(task_id, &fast_schedule(), None, task_id as u64).unwrap();
        }
    }
    for waiter in &waiters {
        for _ in 0..50 {
            let finished = take(waiter);
            assert!(finished.report.result.is_ok(), "{:?}", finished.report.result);
            assert!(waiter.engine_threads() <= 3);
        }
    }
    assert!(emulator.connections() <= 3, "{} connections", emulator.connections());
}

const IMAGE_TASK: &str = r#"{"type":"ImageToTextTask","body":"aW1hZ2U="}"#;

#[test]
fn solves_create_their_task_then_wait_and_come_out_once() {
    solves_come_out_once(false);
}

#[test]
fn solves_on_the_event_loop_create_their_task_then_wait_and_come_out_once() {
    solves_come_out_once(true);
}

fn solves_come_out_once(on_loop: bool) {
    let emulator = Emulator::start(Config { solve_after: Duration::from_millis(300), ..Config::default() }).unwrap();
    let client = solving_client(&emulator, "waiter-solves", on_loop);
    let waiter = Waiter::new(&client).unwrap();
    const SOLVES: u64 = 500;
    for tag in 0..SOLVES {
        waiter.add_solve(IMAGE_TASK, None, &fast_schedule(), None, tag).unwrap();
    }
    let mut tags = HashSet::new();
    let mut tasks = HashSet::new();
    for _ in 0..SOLVES {
        let finished = take(&waiter);
        assert_eq!(solution(&finished), r#"{"text":"answer"}"#);
        assert!(finished.task_id > 0);
        assert!(finished.report.requests >= 1, "the wait's own requests");
        assert!(tags.insert(finished.tag), "tag {} came out twice", finished.tag);
        assert!(tasks.insert(finished.task_id), "task {} came out twice", finished.task_id);
    }
    assert_eq!(waiter.pending(), 0);
    assert!(matches!(waiter.next(Duration::ZERO), Next::TimedOut));
    assert_eq!(emulator.method_requests("createTask"), SOLVES as u32, "one createTask per solve");
}

#[test]
fn a_solve_whose_create_fails_comes_out_with_the_failure() {
    a_failed_create_comes_out(false);
}

#[test]
fn a_solve_on_the_event_loop_whose_create_fails_comes_out_with_the_failure() {
    a_failed_create_comes_out(true);
}

fn a_failed_create_comes_out(on_loop: bool) {
    let emulator = Emulator::start(Config { balance: 0.0, ..Config::default() }).unwrap();
    let client = solving_client(&emulator, "waiter-solve-fails", on_loop);
    let waiter = Waiter::new(&client).unwrap();
    waiter.add_solve(r#"{"body":"no type"}"#, None, &fast_schedule(), None, 1).unwrap();
    let refused = take(&waiter);
    assert_eq!((refused.tag, refused.task_id, refused.report.requests), (1, 0, 0));
    let error = refused.report.result.unwrap_err();
    assert_eq!(error.code, Code::InvalidArgument, "{error}");
    waiter.add_solve(IMAGE_TASK, None, &fast_schedule(), None, 2).unwrap();
    let answered = take(&waiter);
    assert_eq!((answered.tag, answered.task_id, answered.report.requests), (2, 0, 1));
    let error = answered.report.result.unwrap_err();
    assert_eq!(error.code, Code::Api, "{error}");
    assert_eq!(error.api.and_then(|api| api.code).as_deref(), Some("ERROR_ZERO_BALANCE"));
    assert_eq!(waiter.pending(), 0);
    // The schedule is checked at once: nothing queued.
    let bad = Schedule { interval: Duration::ZERO, ..fast_schedule() };
    let error = waiter.add_solve(IMAGE_TASK, None, &bad, None, 3).unwrap_err();
    assert_eq!(error.code, Code::InvalidArgument);
    assert!(error.message.contains("interval_ms"), "{}", error.message);
    assert_eq!(waiter.pending(), 0);
}

#[test]
fn cancel_and_shutdown_end_solves_in_their_create_promptly() {
    cancel_and_shutdown_end_creates(false);
}

/// On the event loop the same: the cap of 2 holds the third createTask back (waiting for a
/// permit rather than a thread), a cancel drops the request's future at once.
#[test]
fn cancel_and_shutdown_end_solves_in_their_create_on_the_event_loop_promptly() {
    cancel_and_shutdown_end_creates(true);
}

fn cancel_and_shutdown_end_creates(on_loop: bool) {
    let emulator = emulator();
    emulator.script_method("createTask", vec![Step::stall(20_000)]);
    let client = solving_client(&emulator, "waiter-solve-cancel", on_loop);
    client.set_max_connections(2).unwrap();
    let waiter = Waiter::new(&client).unwrap();
    let cancel = Arc::new(Cancel::new());
    waiter.add_solve(IMAGE_TASK, None, &fast_schedule(), Some(Arc::clone(&cancel)), 1).unwrap();
    // Two more: one in flight on the second connection, one queued behind the cap of 2.
    waiter.add_solve(IMAGE_TASK, None, &fast_schedule(), None, 2).unwrap();
    waiter.add_solve(IMAGE_TASK, None, &fast_schedule(), None, 3).unwrap();
    let start = Instant::now();
    while emulator.method_requests("createTask") < 2 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(emulator.method_requests("createTask"), 2, "at most max_connections creates at once");
    let triggered = Instant::now();
    cancel.trigger();
    let finished = take(&waiter);
    assert_eq!(finished.tag, 1);
    assert_eq!(finished.report.result.unwrap_err().code, Code::Cancelled);
    assert!(triggered.elapsed() < Duration::from_secs(1), "{:?}", triggered.elapsed());
    assert_eq!(cancel.watching(), 0, "the token forgets what it watched");
    // Tag 3 took the freed connection; now both are in flight, stalled.
    while emulator.method_requests("createTask") < 3 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    waiter.add_solve(IMAGE_TASK, None, &fast_schedule(), None, 4).unwrap();
    let shut = Instant::now();
    waiter.shutdown();
    let mut tags = HashSet::new();
    loop {
        match waiter.next(Duration::from_secs(10)) {
            Next::Finished(finished) => {
                assert_eq!(finished.report.result.unwrap_err().code, Code::Cancelled);
                tags.insert(finished.tag);
            }
            Next::ShutDown => break,
            Next::TimedOut => panic!("the solves did not all come out"),
        }
    }
    assert_eq!(tags, HashSet::from([2, 3, 4]));
    assert!(shut.elapsed() < Duration::from_secs(2), "shutdown took {:?}", shut.elapsed());
    assert_eq!(emulator.method_requests("createTask"), 3, "the queued solve sent nothing");
    let error = waiter.add_solve(IMAGE_TASK, None, &fast_schedule(), None, 5).unwrap_err();
    assert_eq!(error.code, Code::Cancelled);
    assert_eq!(waiter.pending(), 0);
    drop(waiter); // joins the create threads (or the loop): quick, nothing is in flight
}

/// A stop of the client's key (heard by a blocking call) ends at once the waits of a client
/// on the event loop asleep between their polls, each answered by the guard without a request.
#[test]
fn a_key_stop_ends_the_waits_asleep_on_the_event_loop_at_once() {
    let emulator = Emulator::start(Config { solve_after: Duration::from_secs(600), ..Config::default() }).unwrap();
    let key = "waiter-key-stop-loop";
    let client = Arc::new(client(&emulator, key));
    client.set_engine(Engine::EventLoop);
    let waiter = Waiter::new(&client).unwrap();
    let schedule = Schedule { interval: Duration::from_secs(30), timeout: Duration::from_secs(60), ..fast_schedule() };
    const WAITS: u64 = 50;
    for tag in 0..WAITS {
        waiter.add(emulator.add_task("ImageToTextTask"), &schedule, None, tag).unwrap();
    }
    let start = Instant::now();
    while emulator.method_requests("getTaskResult") < WAITS as u32 {
        assert!(start.elapsed() < Duration::from_secs(10), "the first polls did not all go out");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    emulator.update_account(json!({"revokedKeys": [key]})).unwrap();
    let heard = client.get_task_result(emulator.add_task("ImageToTextTask"));
    assert_eq!(heard.result.unwrap_err().api_code(), Some("ERROR_KEY_DOES_NOT_EXIST"));
    let heard_at = Instant::now();
    let sent = emulator.method_requests("getTaskResult");
    for _ in 0..WAITS {
        let finished = take(&waiter);
        let error = finished.report.result.unwrap_err();
        assert_eq!(error.api_code(), Some("ERROR_KEY_DOES_NOT_EXIST"), "{error}");
    }
    assert!(heard_at.elapsed() < Duration::from_secs(2), "{:?}", heard_at.elapsed());
    assert_eq!(emulator.method_requests("getTaskResult"), sent, "answered by the guard, not sent");
    client.end_stops();
}

/// A wait polled on the event loop follows the client's settings at its next poll: a changed
/// setting gives it the loop's new channel, the loop turned off sends it to the threads.
#[test]
fn a_wait_on_the_event_loop_follows_the_settings_at_its_next_poll() {
    let emulator = emulator();
    let steps = vec![Step::processing(), Step::processing(), Step::processing(), Step::ready(json!({"text": "moved"}))];
    emulator.script_task(91, steps);
    let client = solving_client(&emulator, "waiter-loop-settings", true);
    let waiter = Waiter::new(&client).unwrap();
    let schedule = Schedule { interval: Duration::from_millis(300), ..fast_schedule() };
    waiter.add(91, &schedule, None, 1).unwrap();
    let until_polled = |count: u32| {
        let start = Instant::now();
        while emulator.task_requests(91) < count {
            assert!(start.elapsed() < Duration::from_secs(10), "{} polls of {count}", emulator.task_requests(91));
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    until_polled(1);
    client.set_request_timeout(Duration::from_secs(5)).unwrap();
    until_polled(2);
    client.set_engine(Engine::Threads);
    let finished = take(&waiter);
    assert_eq!(solution(&finished), r#"{"text":"moved"}"#);
    assert_eq!(finished.report.requests, 4);
}
