//! A client's counters against the emulator's own (`GET /_emulator/stats`): after a scale run of
//! 10,000 waits on a waiter, and for each class of answer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use capmonster::{Next, Schedule, Waiter};
use common::*;
use serde_json::{json, Value};

fn emulator_count(emulator: &Emulator, method: &str) -> u64 {
    emulator.stats_json()["methods"][method].as_u64().unwrap_or_else(|| panic!("no {method} in the stats"))
}

#[test]
fn counters_agree_with_the_emulator_after_ten_thousand_waits() {
    let emulator = Emulator::start(Config { solve_after: Duration::from_millis(200), ..Config::default() }).unwrap();
    let client = Arc::new(client(&emulator, "stats-10000"));
    let waiter = Waiter::new(&client).unwrap();
    let schedule = Schedule {
        first_delay: Duration::from_millis(150),
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(120),
        max_requests: 120,
    };
    const WAITS: u64 = 10_000;
    for tag in 0..WAITS {
        waiter.add(emulator.add_task("ImageToTextTask"), &schedule, None, tag).unwrap();
    }
    let mid = client.stats();
    assert!(mid.waits_pending > 0 && mid.waits_pending <= WAITS, "{mid:?}");
    let mut requests = 0;
    for _ in 0..WAITS {
        match waiter.next(Duration::from_secs(60)) {
            Next::Finished(finished) => {
                assert!(finished.report.result.is_ok(), "{:?}", finished.report.result);
                requests += u64::from(finished.report.requests);
            }
            other => panic!("{other:?}"),
        }
    }
    let stats = client.stats();
    let sent = stats.requests[0];
    assert_eq!(sent, emulator_count(&emulator, "getTaskResult"), "{stats:?}");
    assert_eq!(sent, requests, "the reports' counts");
    assert_eq!(stats.answers_ready, WAITS);
    assert_eq!(stats.answers_processing + stats.answers_ready, sent);
    assert_eq!((stats.waits_pending, stats.waits_finished), (0, WAITS));
    assert_eq!(stats.connections_opened, emulator.stats_json()["connections"].as_u64().unwrap(), "{stats:?}");
    assert_eq!(stats.requests_in_flight, 0);
    assert!(stats.bytes_sent > sent * 40 && stats.bytes_received > sent * 30, "{stats:?}");
    assert_eq!(stats.requests[1..], [0; 5]);
}

#[test]
fn each_answer_is_counted_in_its_class() {
    let emulator = emulator();
    let client = client(&emulator, "stats-classes");
    let task_id = emulator.add_task("ImageToTextTask");
    emulator.script_task(task_id, vec![Step::processing(), Step::raw(503, ""), Step::garbage(), Step::stall(2_000)]);
    for _ in 0..3 {
        let _ = client.get_task_result(task_id);
    }
    client.set_request_timeout(Duration::from_millis(200)).unwrap();
    let _ = client.get_task_result(task_id);
    client.set_request_timeout(Duration::from_secs(5)).unwrap();
    // A final error: the guard answers the next asks about that task here, counted apart.
    let unsolvable = emulator.add_task("ImageToTextTask");
    emulator.script_task(unsolvable, vec![Step::api_error("ERROR_CAPTCHA_UNSOLVABLE", "no", 200)]);
    let _ = client.get_task_result(unsolvable);
    assert_eq!(client.get_task_result(unsolvable).requests, 0);
    assert!(client.get_balance().result.is_ok());
    let stats = client.stats();
    let classes = (
        stats.answers_processing,
        stats.answers_ready,
        stats.answers_http_error,
        stats.answers_api_error,
        stats.answers_other,
        stats.answers_timeout,
    );
    assert_eq!(classes, (1, 1, 1, 1, 1, 1), "{stats:?}");
    assert_eq!((stats.requests[0], stats.requests[2], stats.guard_refusals), (5, 1, 1));
    let methods: Value = emulator.stats_json()["methods"].clone();
    assert_eq!(methods["getTaskResult"], json!(5));
    assert_eq!(methods["getBalance"], json!(1));
}

/// Waits (up to 5 s) until `holds` is true of the client's counters; returns them.
fn stats_when(client: &capmonster::Client, holds: impl Fn(&capmonster::Stats) -> bool) -> capmonster::Stats {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = client.stats();
        if holds(&stats) || std::time::Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn open_and_idle_connections_follow_the_pool() {
    let emulator = emulator();
    let client = Arc::new(client(&emulator, "stats-connections"));
    assert!(client.get_balance().result.is_ok());
    let stats = client.stats();
    assert_eq!((stats.connections_opened, stats.connections_open, stats.connections_idle), (1, 1, 1), "{stats:?}");

    // A request in flight holds its connection: open, not idle.
    let task_id = emulator.add_task("ImageToTextTask");
    emulator.script_task(task_id, vec![Step::processing().delay(400)]);
    let polling = {
        let client = Arc::clone(&client);
        std::thread::spawn(move || client.get_task_result(task_id))
    };
    let busy = stats_when(&client, |stats| stats.requests_in_flight == 1);
    assert_eq!((busy.connections_open, busy.connections_idle), (1, 0), "{busy:?}");
    assert!(polling.join().unwrap().result.is_ok());

    // The server closes its side after answering: the pool drops the connection when it
    // next looks at it, and the next call opens another.
    emulator.script_task(task_id, vec![Step::processing().close_after()]);
    assert!(client.get_task_result(task_id).result.is_ok());
    assert!(client.get_balance().result.is_ok());
    let stats = client.stats();
    assert_eq!((stats.connections_opened, stats.connections_open, stats.connections_idle), (2, 1, 1), "{stats:?}");
    assert_eq!(stats.connections_opened, emulator.stats_json()["connections"].as_u64().unwrap());

    // A setting's change replaces the pool: its connections close.
    client.set_request_timeout(Duration::from_secs(7)).unwrap();
    let stats = stats_when(&client, |stats| stats.connections_open == 0);
    assert_eq!((stats.connections_opened, stats.connections_open, stats.connections_idle), (2, 0, 0), "{stats:?}");
}

#[test]
fn bytes_are_what_the_sockets_carried_each_way() {
    use std::io::{Read, Write};
    // A one-answer HTTP server over a real socket, which counts what it reads.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    const ANSWER: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n{\"errorId\":0,\"balance\":1.25}";
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        // The head, then the body its Content-Length announces.
        loop {
            let read = stream.read(&mut chunk).unwrap();
            assert!(read > 0, "the client closed early");
            request.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text
                    .lines()
                    .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                    .map_or(0, |value| value.trim().parse().unwrap());
                if request.len() >= end + 4 + length {
                    break;
                }
            }
        }
        stream.write_all(ANSWER).unwrap();
        request.len() as u64
    });
    let client = capmonster::Client::new("stats-bytes").unwrap();
    client.set_base_url(&url).unwrap();
    client.set_proxy(None).unwrap();
    let balance = client.get_balance();
    assert_eq!(balance.result.unwrap(), 1.25);
    let request_bytes = server.join().unwrap();
    let stats = client.stats();
    assert_eq!((stats.bytes_sent, stats.bytes_received), (request_bytes, ANSWER.len() as u64), "{stats:?}");
}
