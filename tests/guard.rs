//! The account guard against the emulator: the answers behind the service's bans stop the
//! calls that would repeat them, in this process and in the others of the user (through the
//! shared budget file), and a stopped call looks like the service's answer with no request.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capmonster::budget::guard::{self, policy::Stop};
use capmonster::budget::KeyDigest;
use capmonster::{Code, Error, Next, Schedule, Waiter};
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
    let setting = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let client = capmonster::Client::new(&setting("GUARD_CHILD_KEY", "guard-processes")).unwrap();
    client.set_base_url(&url).unwrap();
    client.set_proxy(None).unwrap();
    let report = client.create_task(&setting("GUARD_CHILD_TASK", IMAGE), None);
    let expect_local = std::env::var("GUARD_CHILD_EXPECT").unwrap() == "local";
    let error = report.result.unwrap_err();
    assert_eq!(error.api_code().unwrap(), setting("GUARD_CHILD_CODE", "ERROR_IP_BANNED"));
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

fn proxied_task(address: &str, port: u16) -> String {
    json!({
        "type": "RecaptchaV2Task",
        "websiteURL": "https://example.com/",
        "websiteKey": "site-key",
        "proxyType": "http",
        "proxyAddress": address,
        "proxyPort": port,
        "proxyLogin": "proxy-user-secret",
        "proxyPassword": "proxy-password-secret",
    })
    .to_string()
}

#[test]
fn a_banned_proxy_stops_its_tasks_only_and_is_kept_as_a_digest() {
    let emulator = emulator();
    let key = "guard-proxy";
    let client = client(&emulator, key);
    emulator.update_account(json!({"bannedProxies": ["10.0.0.1:8080"]})).unwrap();
    let banned = proxied_task("10.0.0.1", 8080);
    let first = client.create_task(&banned, None);
    assert_eq!((first.result.unwrap_err().api_code(), first.requests), (Some("ERROR_PROXY_BANNED"), 1));
    for _ in 0..20 {
        let report = client.create_task(&banned, None);
        let error = report.result.unwrap_err();
        assert_local(&error, report.requests, "ERROR_PROXY_BANNED");
        assert!(error.message.contains("the proxy 10.0.0.1:8080 here until"), "{}", error.message);
        assert!(!error.message.contains("secret"), "{}", error.message);
    }
    assert_eq!(emulator.method_requests("createTask"), 1);
    // Other proxies, proxyless tasks and the results of tasks go on.
    let other = client.create_task(&proxied_task("10.0.0.1", 8081), None);
    let proxyless = client.create_task(IMAGE, None);
    assert!(client.get_task_result(proxyless.result.unwrap()).result.is_ok());
    assert!(other.result.is_ok());
    assert_eq!(emulator.method_requests("createTask"), 3);
    // Another process of the user is stopped too (Windows' test processes count alone).
    #[cfg(unix)]
    {
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_calls_with_a_stopped_key", "--nocapture", "--test-threads=1"])
            .env("GUARD_CHILD_URL", emulator.url())
            .env("GUARD_CHILD_EXPECT", "local")
            .env("GUARD_CHILD_KEY", key)
            .env("GUARD_CHILD_TASK", &banned)
            .env("GUARD_CHILD_CODE", "ERROR_PROXY_BANNED")
            .status()
            .unwrap();
        assert!(status.success(), "the child was answered here");
        assert_eq!(emulator.method_requests("createTask"), 3);
    }

    // The store keeps a digest: neither the address nor the proxy's credentials.
    #[cfg(unix)]
    {
        let file = std::fs::read(std::env::var("CAPMONSTER_BUDGET_FILE").unwrap()).unwrap();
        for secret in [&b"10.0.0.1"[..], b"proxy-user-secret", b"proxy-password-secret", key.as_bytes()] {
            assert!(!file.windows(secret.len()).any(|window| window == secret), "{}", String::from_utf8_lossy(secret));
        }
    }
    // Ending the key's stops leaves the proxy's ban; after the ban's length one probe goes
    // out, and a created task ends the stop.
    client.end_stops();
    assert_eq!(client.create_task(&banned, None).requests, 0);
    let digest = KeyDigest::of(key, &emulator.url());
    let scope = guard::proxy_scope(digest, "10.0.0.1:8080");
    assert!(guard::global().stop(scope, Stop::Proxy).is_some());
    guard::global().end_cool_down_for_tests(scope, Stop::Proxy);
    emulator.update_account(json!({"bannedProxies": []})).unwrap();
    let probe = client.create_task(&banned, None);
    assert_eq!((probe.requests, probe.result.is_ok()), (1, true));
    assert!(guard::global().stop(scope, Stop::Proxy).is_none());
    assert!(client.create_task(&banned, None).result.is_ok());
}

/// Run in a child process (see `a_killed_prober_holds_the_probe_no_longer`): calls getBalance
/// as the probe of a stopped key, which the emulator answers only after a minute.
#[test]
fn child_probes_and_is_killed() {
    let Ok(url) = std::env::var("GUARD_PROBER_URL") else { return };
    let client = capmonster::Client::new("guard-prober").unwrap();
    client.set_base_url(&url).unwrap();
    client.set_proxy(None).unwrap();
    let _ = client.get_balance();
    panic!("the parent kills this process while its probe is out");
}

#[test]
fn a_killed_prober_holds_the_probe_no_longer() {
    if cfg!(windows) {
        return; // the test processes of Windows count in the process (tests/common)
    }
    let emulator = emulator();
    let key = "guard-prober";
    let banned = || Step::api_error("ERROR_IP_BANNED", "Your IP is blocked due to improper use of API", 200);
    emulator.script_method(
        "getBalance",
        vec![banned(), banned().delay(60_000), Step::json(200, json!({"errorId": 0, "balance": 1.5}))],
    );
    let client = client(&emulator, key);
    assert_eq!(client.get_balance().result.unwrap_err().api_code(), Some("ERROR_IP_BANNED"));
    let digest = KeyDigest::of(key, &emulator.url());
    guard::global().end_cool_down_for_tests(digest, Stop::Key);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_probes_and_is_killed", "--nocapture", "--test-threads=1"])
        .env("GUARD_PROBER_URL", emulator.url())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Bounded: the child takes the lease within seconds, or the test fails.
    while client.stop(Stop::Key).unwrap().probe_pid != child.id() {
        assert!(started.elapsed() < Duration::from_secs(20), "the child never took the probe");
        std::thread::sleep(Duration::from_millis(10));
    }
    while emulator.method_requests("getBalance") < 2 {
        assert!(started.elapsed() < Duration::from_secs(20), "the child's probe never reached the emulator");
        std::thread::sleep(Duration::from_millis(10));
    }
    let held = client.get_balance();
    let error = held.result.unwrap_err();
    assert_local(&error, held.requests, "ERROR_IP_BANNED");
    assert!(error.message.contains("while another call"), "{}", error.message);

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed = Instant::now();
    let probe = client.get_balance();
    assert_eq!((probe.result, probe.requests), (Ok(1.5), 1), "the next call probes at once");
    assert!(killed.elapsed() < Duration::from_secs(5), "{:?}", killed.elapsed());
    assert!(client.stop(Stop::Key).is_none(), "the probe's answer ended the stop");
    assert_eq!(emulator.method_requests("getBalance"), 3);
}

#[test]
fn a_key_stop_ends_every_pending_wait_of_the_process_at_once() {
    let emulator = Emulator::start(Config { solve_after: Duration::from_secs(600), ..Config::default() }).unwrap();
    let key = "guard-wake";
    let client = Arc::new(client(&emulator, key));
    let schedule = Schedule {
        first_delay: Duration::ZERO,
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(60),
        max_requests: 120,
    };
    const WAITS: usize = 1000;
    let waiter = Waiter::new(&client).unwrap();
    let tasks: Vec<i64> = (0..WAITS + 2).map(|_| emulator.add_task("ImageToTextTask")).collect();
    for (n, task) in tasks[..WAITS].iter().enumerate() {
        waiter.add(*task, &schedule, None, n as u64).unwrap();
    }
    let blocking = {
        let (client, task) = (Arc::clone(&client), tasks[WAITS]);
        std::thread::spawn(move || {
            let report = capmonster::wait::wait(&client, task, &schedule, None);
            (report, Instant::now())
        })
    };
    // Every wait polled once ("processing") and sleeps 5 s until its next poll.
    let started = Instant::now();
    while emulator.method_requests("getTaskResult") < WAITS as u32 + 1 {
        assert!(started.elapsed() < Duration::from_secs(4), "the first polls did not all go out");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Their answers were counted on arrival: let the last ones reach their waits.
    std::thread::sleep(Duration::from_millis(300));
    emulator.update_account(json!({"revokedKeys": [key]})).unwrap();

    let heard_at = Instant::now();
    let heard = client.get_task_result(tasks[WAITS + 1]);
    let error = heard.result.unwrap_err();
    assert_eq!((error.api_code(), heard.requests), (Some("ERROR_KEY_DOES_NOT_EXIST"), 1), "{error:?}");
    let sent = emulator.method_requests("getTaskResult");
    let local = |report: &capmonster::Report<capmonster::TaskState>| {
        let error = report.result.as_ref().unwrap_err();
        assert_eq!((error.api_code(), error.http_status, report.requests), (Some("ERROR_KEY_DOES_NOT_EXIST"), None, 1));
        assert!(error.message.contains("was not sent"), "{}", error.message);
    };
    for _ in 0..WAITS {
        match waiter.next(Duration::from_secs(2)) {
            Next::Finished(finished) => local(&finished.report),
            other => panic!("every wait ends at once: {other:?}"),
        }
    }
    let engine_done = heard_at.elapsed();
    let (report, ended_at) = blocking.join().unwrap();
    local(&report);
    let blocking_done = ended_at.duration_since(heard_at);
    eprintln!("{WAITS} waits on a waiter ended {engine_done:?} after the answer, the blocking wait {blocking_done:?}");
    assert!(engine_done < Duration::from_secs(2) && blocking_done < Duration::from_secs(2));
    assert_eq!(emulator.method_requests("getTaskResult"), sent, "no wait sent a request");

    // Waits started while the stop holds (a 5 s first delay) end at once too, unsent.
    let late = Schedule { first_delay: Duration::from_secs(5), ..schedule };
    let added_at = Instant::now();
    for (n, task) in tasks[..100].iter().enumerate() {
        waiter.add(*task, &late, None, n as u64).unwrap();
    }
    let blocking = capmonster::wait::wait(&client, tasks[WAITS], &late, None);
    assert_eq!((blocking.result.unwrap_err().api_code(), blocking.requests), (Some("ERROR_KEY_DOES_NOT_EXIST"), 0));
    for _ in 0..100 {
        match waiter.next(Duration::from_secs(2)) {
            Next::Finished(finished) => assert_eq!(finished.report.requests, 0),
            other => panic!("a wait added during the stop ends at once: {other:?}"),
        }
    }
    eprintln!("100 waits and a blocking wait started during the stop ended {:?} after", added_at.elapsed());
    assert!(added_at.elapsed() < Duration::from_secs(2));
    assert_eq!(emulator.method_requests("getTaskResult"), sent, "no wait sent a request");
    client.end_stops();
}
