//! The engine's threads: bounded by the client's cap whatever the number of waits, shared by
//! the client's waiters, and gone when the last waiter is. A test binary of its own: it counts
//! the process's threads by name, which other tests' waiters would disturb.

mod common;

use std::sync::Arc;
use std::time::Duration;

use capmonster::{Next, Waiter};
use common::*;
use serde_json::json;

#[cfg(target_os = "linux")]
fn engine_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "capmonster-wait")
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn threads_are_bounded_shared_and_ended() {
    let emulator = emulator();
    let client = Arc::new(client(&emulator, "engine-threads"));
    client.set_max_connections(6).unwrap();
    assert_eq!(engine_threads(), 0);

    // One wait on a fresh engine starts one worker, not one to run it and one more to lead.
    {
        let waiter = Waiter::new(&client).unwrap();
        let mut schedule = fast_schedule();
        schedule.first_delay = Duration::from_millis(300);
        waiter.add(1, &schedule, None, 1).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!((waiter.engine_threads(), engine_threads()), (1, 1));
    }
    assert_eq!(engine_threads(), 0);

    let first = Waiter::new(&client).unwrap();
    let second = Waiter::new(&client).unwrap();
    for tag in 0..2000u64 {
        let task_id = 10_000 + tag as i64;
        emulator.script_task(task_id, vec![Step::processing().delay(2), Step::ready(json!({}))]);
        let waiter = if tag % 2 == 0 { &first } else { &second };
        waiter.add(task_id, &fast_schedule(), None, tag).unwrap();
    }
    let mut peak = 0;
    for waiter in [&first, &second] {
        for _ in 0..1000 {
            assert!(matches!(waiter.next(Duration::from_secs(30)), Next::Finished(_)));
            peak = peak.max(engine_threads());
        }
    }
    assert!((1..=6).contains(&peak), "{peak} engine threads for a cap of 6");

    // A lowered cap: the workers beyond it retire once idle, and stay gone under load.
    client.set_max_connections(2).unwrap();
    let start = std::time::Instant::now();
    while engine_threads() > 2 {
        assert!(start.elapsed() < Duration::from_secs(5), "{} engine threads for a cap of 2", engine_threads());
        std::thread::sleep(Duration::from_millis(5));
    }
    for tag in 0..200u64 {
        let task_id = 20_000 + tag as i64;
        emulator.script_task(task_id, vec![Step::processing().delay(2), Step::ready(json!({}))]);
        first.add(task_id, &fast_schedule(), None, tag).unwrap();
    }
    for _ in 0..200 {
        assert!(matches!(first.next(Duration::from_secs(30)), Next::Finished(_)));
        assert!(engine_threads() <= 2, "{} engine threads for a cap of 2", engine_threads());
    }
    drop(first);
    assert!(engine_threads() >= 1, "the second waiter still uses the engine");
    drop(client);
    drop(second);
    assert_eq!(engine_threads(), 0, "the last waiter's drop ends the threads");
}
