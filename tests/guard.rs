//! The account guard against the emulator: the answers behind the service's bans stop the
//! calls that would repeat them, in this process and in the others of the user (through the
//! shared budget file), and a stopped call looks like the service's answer with no request.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capmonster::budget::guard::policy::Stop;
use capmonster::{Code, Error, Next, Waiter};
use common::*;
use serde_json::json;

const IMAGE: &str = r#"{"type":"ImageToTextTask","body":"aGVsbG8="}"#;

/// A call answered by the guard: the service's own error, no request, no status, and a message
/// that says it was not sent.
fn assert_local(error: &Error, requests: u32, api_code: &str) {
    assert_eq!((error.code, error.api_code(), error.http_status, requests), (Code::Api, Some(api_code), None, 0));
    assert!(error.message.contains("was not sent"), "{}", error.message);
}

#[test]
fn a_revoked_key_is_asked_once_then_answered_here() {
    let emulator = emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let client = client(&emulator, "guard-revoked");
    emulator.update_account(json!({"revokedKeys": ["guard-revoked"]})).unwrap();

    let first = client.get_task_result(task_id);
    let error = first.result.unwrap_err();
    assert_eq!((error.api_code(), first.requests), (Some("ERROR_KEY_DOES_NOT_EXIST"), 1));
    let description = error.api.unwrap().description;

    for _ in 0..50 {
        let report = client.get_task_result(task_id);
        let error = report.result.unwrap_err();
        assert_local(&error, report.requests, "ERROR_KEY_DOES_NOT_EXIST");
        assert_eq!(error.api.unwrap().description, description, "the service's description, as it gave it");
        let created = client.create_task(IMAGE, None);
        assert_local(&created.result.unwrap_err(), created.requests, "ERROR_KEY_DOES_NOT_EXIST");
        let balance = client.get_balance();
        assert_local(&balance.result.unwrap_err(), balance.requests, "ERROR_KEY_DOES_NOT_EXIST");
    }
    assert_eq!(emulator.method_requests("getTaskResult"), 1);
    assert_eq!(emulator.method_requests("createTask") + emulator.method_requests("getBalance"), 0);

    // Another client of the same key and endpoint is stopped too; another key is not.
    let again = common::client(&emulator, "guard-revoked");
    assert_local(&again.get_balance().result.unwrap_err(), 0, "ERROR_KEY_DOES_NOT_EXIST");
    assert!(common::client(&emulator, "guard-other-key").get_balance().result.is_ok());

    // The user fixed the key: ending the stop lets calls out at once.
    emulator.update_account(json!({"revokedKeys": []})).unwrap();
    assert!(client.stop(Stop::Key).is_some());
    client.end_stops();
    assert!(client.stop(Stop::Key).is_none());
    assert_eq!(client.get_balance().result.unwrap(), 345.678);
}

#[test]
fn a_storm_of_waits_with_a_revoked_key_sends_at_most_one_request_per_connection() {
    let emulator = emulator();
    let key = "guard-storm";
    let client = Arc::new(client(&emulator, key));
    client.set_max_connections(8).unwrap();
    emulator.update_account(json!({"revokedKeys": [key]})).unwrap();
    let waiter = Waiter::new(&client).unwrap();
    let first = emulator.add_task("ImageToTextTask");
    const WAITS: i64 = 2000;
    for n in 0..WAITS {
        waiter.add(first + n, &fast_schedule(), None, n as u64).unwrap();
    }
    let started = Instant::now();
    let mut local = 0;
    for _ in 0..WAITS {
        match waiter.next(Duration::from_secs(30)) {
            Next::Finished(finished) => {
                let error = finished.report.result.unwrap_err();
                assert_eq!(error.api_code(), Some("ERROR_KEY_DOES_NOT_EXIST"));
                local += usize::from(finished.report.requests == 0);
            }
            other => panic!("every wait ends: {other:?}"),
        }
    }
    let sent = emulator.method_requests("getTaskResult");
    assert!(sent <= 8 + 1, "at most max_connections + 1 requests reach the service, not {sent}");
    assert_eq!(local, WAITS as usize - sent as usize);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn zero_balance_stops_new_tasks_until_the_balance_shows_money() {
    let emulator = emulator();
    let client = client(&emulator, "guard-broke");
    let task_id = emulator.add_task("ImageToTextTask");
    emulator.update_account(json!({"balance": 0})).unwrap();
    let first = client.create_task(IMAGE, None);
    assert_eq!(first.result.unwrap_err().api_code(), Some("ERROR_ZERO_BALANCE"));
    for _ in 0..20 {
        let created = client.create_task(IMAGE, None);
        assert_local(&created.result.unwrap_err(), created.requests, "ERROR_ZERO_BALANCE");
    }
    assert_eq!(emulator.method_requests("createTask"), 1);
    // Results of existing tasks, reports and the balance still go out.
    assert!(client.get_task_result(task_id).result.is_ok());
    assert_eq!(client.get_balance().result.unwrap(), 0.0);
    assert!(client.create_task(IMAGE, None).result.is_err(), "a balance of 0 ends nothing");
    // The user tops up; the next getBalance (from any client) ends the stop.
    emulator.update_account(json!({"balance": 12.5})).unwrap();
    assert_eq!(common::client(&emulator, "guard-broke").get_balance().result.unwrap(), 12.5);
    assert!(client.create_task(IMAGE, None).result.is_ok());
    assert_eq!(emulator.method_requests("createTask"), 2);
}

/// Run in a child process (see `a_stop_holds_in_every_process_of_the_user`).
#[test]
fn child_calls_with_a_stopped_key() {
    let Ok(url) = std::env::var("GUARD_CHILD_URL") else { return };
    let client = capmonster::Client::new("guard-processes").unwrap();
    client.set_base_url(&url).unwrap();
    client.set_proxy(None).unwrap();
    let report = client.create_task(IMAGE, None);
    let expect_local = std::env::var("GUARD_CHILD_EXPECT").unwrap() == "local";
    let error = report.result.unwrap_err();
    assert_eq!(error.api_code(), Some("ERROR_IP_BANNED"));
    assert_eq!(report.requests, if expect_local { 0 } else { 1 }, "{}", error.message);
}

#[test]
fn a_stop_holds_in_every_process_of_the_user() {
    if cfg!(windows) {
        return; // the test processes of Windows count in the process (tests/common)
    }
    let emulator = emulator();
    let client = client(&emulator, "guard-processes");
    emulator.update_account(json!({"addressBan": "ERROR_IP_BANNED"})).unwrap();
    assert_eq!(client.get_balance().result.unwrap_err().api_code(), Some("ERROR_IP_BANNED"));
    let child = |guard: Option<&str>, expect: &str| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "child_calls_with_a_stopped_key", "--nocapture", "--test-threads=1"])
            .env("GUARD_CHILD_URL", emulator.url())
            .env("GUARD_CHILD_EXPECT", expect);
        if let Some(setting) = guard {
            command.env("CAPMONSTER_GUARD", setting);
        }
        assert!(command.status().unwrap().success(), "the child expecting a {expect} answer failed");
    };
    for _ in 0..4 {
        child(None, "local");
    }
    assert_eq!(emulator.method_requests("createTask"), 0, "no other process sent a request");
    // CAPMONSTER_GUARD=off (dangerous) sends as if there were no guard.
    child(Some("off"), "sent");
    assert_eq!(emulator.method_requests("createTask"), 1);
    client.end_stops();
}
