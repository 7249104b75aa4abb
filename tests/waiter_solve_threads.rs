//! Solves on the event loop: 1,000 at once (createTask and waits) on a few library threads,
//! none of them a createTask thread. A test binary of its own: it counts the process's
//! library threads by name, which other tests' waiters would add to.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capmonster::{Engine, Next, Schedule, TaskState, Waiter};
use common::*;

/// The library's threads now, by name (the emulator's, `capmonster-emu*`, left out).
#[cfg(target_os = "linux")]
fn library_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("capmonster-") && !name.starts_with("capmonster-emu"))
        .collect()
}

/// Every createTask and poll is a future on the loop: the timer thread, the loop's thread and
/// at most one resolver thread, whatever the number of solves (the threads engine starts up
/// to `max_connections` createTask threads for the same).
#[cfg(target_os = "linux")]
#[test]
fn a_thousand_solves_on_the_event_loop_take_three_library_threads() {
    let emulator = Emulator::start(Config {
        solve_after: Duration::from_millis(500),
        answer_delay: Duration::from_millis(20),
        max_connections: 4096,
        ..Config::default()
    })
    .unwrap();
    let client = Arc::new(client(&emulator, "solve-threads"));
    client.set_engine(Engine::EventLoop);
    client.set_max_connections(256).unwrap();
    assert!(library_threads().is_empty());
    let waiter = Waiter::new(&client).unwrap();
    let schedule = Schedule {
        first_delay: Duration::from_millis(400),
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(60),
        max_requests: 120,
    };
    const SOLVES: u64 = 1000;
    let task = r#"{"type":"ImageToTextTask","body":"aW1hZ2U="}"#;
    let started = Instant::now();
    for tag in 0..SOLVES {
        waiter.add_solve(task, None, &schedule, None, tag).unwrap();
    }
    let mut peak: Vec<String> = Vec::new();
    let mut tags = HashSet::new();
    let mut requests = 0u64;
    while tags.len() < SOLVES as usize {
        let threads = library_threads();
        if threads.len() > peak.len() {
            peak = threads;
        }
        match waiter.next(Duration::from_millis(20)) {
            Next::Finished(finished) => {
                assert!(matches!(finished.report.result, Ok(TaskState::Ready(_))), "{:?}", finished.report.result);
                assert!(tags.insert(finished.tag), "tag {} came out twice", finished.tag);
                requests += u64::from(finished.report.requests);
            }
            Next::TimedOut => assert!(started.elapsed() < Duration::from_secs(60), "{} of {SOLVES} done", tags.len()),
            Next::ShutDown => unreachable!(),
        }
    }
    assert_eq!(emulator.method_requests("createTask"), SOLVES as u32);
    assert!(peak.len() <= 3, "{} library threads: {peak:?}", peak.len());
    assert!(!peak.iter().any(|name| name == "capmonster-create"), "{peak:?}");
    drop(waiter);
    // Joined; a joined thread may still be listed for a moment while the kernel ends it.
    let dropped = Instant::now();
    while !library_threads().is_empty() {
        assert!(dropped.elapsed() < Duration::from_secs(2), "{:?}", library_threads());
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("{SOLVES} solves on the loop: {:?}, {} polls, peak threads {peak:?}", started.elapsed(), requests);
}
