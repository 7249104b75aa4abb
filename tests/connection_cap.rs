//! The cap on a client's connections: 200 blocking threads on a cap of 8 never hold more than
//! 8 connections, a queued caller's deadline and cancel still hold, and the setters say why
//! they refuse a value.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capmonster::{CallOptions, Cancel, Code};
use common::*;
use serde_json::json;

#[test]
fn two_hundred_threads_share_eight_connections() {
    let emulator = emulator();
    emulator.script_method("getBalance", vec![Step::json(200, json!({"errorId": 0, "balance": 1.5})).delay(20)]);
    let client = client(&emulator, "cap-200");
    client.set_max_connections(8).unwrap();
    assert_eq!(client.max_connections(), 8);
    let peak = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..200 {
            scope.spawn(|| {
                let report = client.get_balance();
                assert_eq!(report.result.unwrap(), 1.5);
                peak.fetch_max(client.requests_in_flight(), Ordering::Relaxed);
            });
        }
        // Sample while they run.
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            peak.fetch_max(client.requests_in_flight(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    assert_eq!(emulator.method_requests("getBalance"), 200);
    assert!(peak.load(Ordering::Relaxed) <= 8, "{} requests in flight", peak.load(Ordering::Relaxed));
    assert!(emulator.connections() <= 8, "{} connections for a cap of 8", emulator.connections());
}

#[test]
fn a_queued_caller_keeps_its_deadline_and_its_cancel() {
    let emulator = emulator();
    emulator.script_method("getBalance", vec![Step::stall(20_000)]);
    let client = client(&emulator, "cap-queue");
    client.set_max_connections(1).unwrap();
    std::thread::scope(|scope| {
        let holder = Arc::new(Cancel::new());
        let holding = {
            let holder = Arc::clone(&holder);
            let client = &client;
            scope.spawn(move || client.get_balance_with(&CallOptions { timeout: None, cancel: Some(holder) }))
        };
        while client.requests_in_flight() == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        // A deadline: CM_ERR_TIMEOUT that names the cap, and nothing sent.
        let start = Instant::now();
        let short = CallOptions { timeout: Some(Duration::from_millis(150)), cancel: None };
        let error = client.get_task_result_with(31, &short).result.unwrap_err();
        assert_eq!(error.code, Code::Timeout, "{error}");
        assert!(error.message.contains("1 connections"), "{}", error.message);
        assert!(start.elapsed() >= Duration::from_millis(140) && start.elapsed() < Duration::from_secs(3));
        assert_eq!(emulator.task_requests(31), 0);
        // A cancel: a queued caller leaves at once.
        let queued = Arc::new(Cancel::new());
        let waiting = {
            let queued = Arc::clone(&queued);
            let client = &client;
            scope.spawn(move || {
                let report = client.get_task_result_with(32, &CallOptions { timeout: None, cancel: Some(queued) });
                (report, Instant::now())
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        let triggered = Instant::now();
        queued.trigger();
        let (report, returned) = waiting.join().unwrap();
        assert_eq!(report.result.unwrap_err().code, Code::Cancelled);
        assert_eq!(report.requests, 0);
        assert!(returned.duration_since(triggered) < Duration::from_secs(1));
        holder.trigger();
        assert_eq!(holding.join().unwrap().result.unwrap_err().code, Code::Cancelled);
    });
    assert_eq!(client.requests_in_flight(), 0);
}

#[test]
fn setters_say_what_they_refuse() {
    let emulator = emulator();
    let client = client(&emulator, "cap-setters");
    for (error, says) in [
        (client.set_max_connections(0).unwrap_err(), "max_connections"),
        (client.set_base_url("ftp://example.com").unwrap_err(), "base_url"),
        (client.set_base_url("http://example.com").unwrap_err(), "base_url"),
        (client.set_request_timeout(Duration::ZERO).unwrap_err(), "timeout_ms"),
        (client.set_proxy(Some("gopher://proxy")).unwrap_err(), "proxy_url"),
        (client.set_ca_file(Some("/nonexistent/ca.pem")).unwrap_err(), "/nonexistent/ca.pem"),
    ] {
        assert_eq!(error.code, Code::InvalidArgument);
        assert!(error.message.contains(says), "{says}: {}", error.message);
    }
    // Refused values leave the client as it was.
    assert_eq!(client.max_connections(), capmonster::DEFAULT_MAX_CONNECTIONS);
    assert!(client.get_balance().result.is_ok());
}
