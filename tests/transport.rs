//! The HTTP layer against the emulator's connection-level faults: keep-alive, stale
//! connections, timeouts, size caps, redirects, refused connections, proxies and secrets.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use capmonster::{Code, TaskState};
use common::*;
use serde_json::json;

#[test]
fn fifty_sequential_calls_use_one_connection() {
    let emulator = emulator();
    emulator.script_task(1, vec![Step::processing()]);
    let client = client(&emulator, "transport-keepalive");
    for _ in 0..50 {
        assert!(matches!(client.get_task_result(1).result, Ok(TaskState::Processing)));
    }
    assert_eq!(emulator.connections(), 1);
    assert_eq!(client.connections_opened(), 1);
}

#[test]
fn sixteen_threads_share_the_pool_without_churning_connections() {
    let emulator = emulator();
    // A slow answer keeps all 16 requests in flight at once, so 16 connections are open and
    // then all idle together: the moment a small pool closes the surplus.
    emulator.script_method("getBalance", vec![Step::json(200, json!({"errorId": 0, "balance": 1.0})).delay(50)]);
    let client = Arc::new(client(&emulator, "transport-pool"));
    for _round in 0..3 {
        let start = Arc::new(Barrier::new(16));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (client, start) = (Arc::clone(&client), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    client.get_balance().result.is_ok()
                })
            })
            .collect();
        assert!(threads.into_iter().all(|t| t.join().unwrap()));
    }
    // ureq's default of 3 idle connections per host opens 16 + 13 + 13 = 42 here.
    assert_eq!(emulator.connections(), 16);
}

#[test]
fn a_request_that_dies_on_a_reused_connection_is_sent_once_more() {
    let emulator = emulator();
    // The second request arrives on the kept-alive connection and the server hangs up on it.
    emulator.script_task(2, vec![Step::processing(), Step::close(), Step::ready(json!({"text": "x"}))]);
    let client = client(&emulator, "transport-stale-retry");
    assert!(client.get_task_result(2).result.is_ok());
    let report = client.get_task_result(2);
    assert!(matches!(report.result, Ok(TaskState::Ready(_))), "{:?}", report.result);
    assert_eq!(report.requests, 2, "the retry counts");
    assert_eq!(emulator.task_requests(2), 3);
    assert_eq!(emulator.connections(), 2);
}

#[test]
fn balance_is_retried_too_but_create_task_never() {
    let emulator = emulator();
    let client = client(&emulator, "transport-no-create-retry");
    emulator.script_method(
        "getBalance",
        vec![
            Step::json(200, json!({"errorId": 0, "balance": 1.5})),
            Step::close(),
            Step::json(200, json!({"errorId": 0, "balance": 2.5})),
        ],
    );
    assert_eq!(client.get_balance().result.unwrap(), 1.5);
    assert_eq!(client.get_balance().result.unwrap(), 2.5);

    emulator.script_method("createTask", vec![Step::json(200, json!({"errorId": 0, "taskId": 77})), Step::close()]);
    let task = r#"{"type":"ImageToTextTask","body":"aGVsbG8="}"#;
    assert_eq!(client.create_task(task, None).result.unwrap(), 77);
    let report = client.create_task(task, None);
    assert_eq!(report.result.unwrap_err().code, Code::Network);
    assert_eq!(report.requests, 1);
    assert_eq!(emulator.method_requests("createTask"), 2, "a duplicate task would be paid twice");
}

#[test]
fn a_close_on_a_fresh_connection_is_a_network_error() {
    let emulator = emulator();
    emulator.script_task(3, vec![Step::close()]);
    let client = client(&emulator, "transport-fresh-close");
    let report = client.get_task_result(3);
    assert_eq!(report.result.unwrap_err().code, Code::Network);
    assert_eq!(report.requests, 1);
    assert_eq!(report.http_status, None);
    assert_eq!(emulator.task_requests(3), 1);
}

#[test]
fn an_idle_connection_closed_by_the_server_is_replaced_silently() {
    let emulator = emulator();
    emulator.script_task(4, vec![Step::processing().close_after(), Step::processing()]);
    let client = client(&emulator, "transport-idle-close");
    assert!(client.get_task_result(4).result.is_ok());
    thread::sleep(Duration::from_millis(50));
    let report = client.get_task_result(4);
    assert!(report.result.is_ok(), "{:?}", report.result);
    assert_eq!(report.requests, 1);
    assert_eq!(emulator.connections(), 2);
}

#[test]
fn request_timeout() {
    let emulator = emulator();
    emulator.script_task(5, vec![Step::processing().delay(3000)]);
    let client = client(&emulator, "transport-timeout");
    client.set_request_timeout(Duration::from_millis(200)).unwrap();
    let start = Instant::now();
    let report = client.get_task_result(5);
    assert_eq!(report.result.unwrap_err().code, Code::Timeout);
    assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());
}

#[test]
fn stall_then_close_is_a_network_error_or_timeout_in_bounded_time() {
    let emulator = emulator();
    emulator.script_task(6, vec![Step::stall(400)]);
    let client = client(&emulator, "transport-stall");
    let start = Instant::now();
    let code = client.get_task_result(6).result.unwrap_err().code;
    assert_eq!(code, Code::Network);
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn oversize_answers_are_refused_without_reading_them_whole() {
    let emulator = emulator();
    emulator.script_task(7, vec![Step::oversize(64 * 1024 * 1024)]);
    let client = client(&emulator, "transport-oversize");
    let start = Instant::now();
    let report = client.get_task_result(7);
    let error = report.result.unwrap_err();
    assert_eq!(error.code, Code::BadResponse);
    assert!(error.message.contains("limit"), "{}", error.message);
    assert_eq!(report.http_status, Some(200));
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
}

#[test]
fn a_body_just_under_the_cap_is_read() {
    let emulator = emulator();
    emulator.script_task(8, vec![Step::oversize(1024 * 1024 - 64)]);
    let client = client(&emulator, "transport-under-cap");
    assert!(matches!(client.get_task_result(8).result, Ok(TaskState::Processing)));
}

#[test]
fn truncated_answers_are_network_errors() {
    let emulator = emulator();
    emulator.script_task(9, vec![Step::truncate()]);
    let client = client(&emulator, "transport-truncated");
    assert_eq!(client.get_task_result(9).result.unwrap_err().code, Code::Network);
}

#[test]
fn non_http_garbage_is_refused() {
    let emulator = emulator();
    emulator.script_task(10, vec![Step::garbage()]);
    let client = client(&emulator, "transport-garbage");
    let code = client.get_task_result(10).result.unwrap_err().code;
    assert!(matches!(code, Code::BadResponse | Code::Network), "{code:?}");
}

#[test]
fn redirects_are_not_followed() {
    let emulator = emulator();
    let target = common::emulator();
    emulator.script_task(11, vec![Step::raw(302, "").header("Location", &format!("{}/getTaskResult", target.url()))]);
    let client = client(&emulator, "transport-redirect");
    let report = client.get_task_result(11);
    assert_eq!(report.result.unwrap_err().code, Code::HttpStatus);
    assert_eq!(report.http_status, Some(302));
    assert_eq!(target.method_requests("getTaskResult"), 0, "the key was not posted elsewhere");
}

#[test]
fn refused_connections_are_network_errors() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = capmonster::Client::new("transport-refused").unwrap();
    client.set_base_url(&format!("http://127.0.0.1:{port}")).unwrap();
    client.set_proxy(None).unwrap();
    let report = client.get_task_result(1);
    assert_eq!(report.result.unwrap_err().code, Code::Network);
    assert_eq!(report.requests, 1);
}

#[test]
fn proxy_credentials_never_appear_in_messages() {
    let emulator = emulator();
    let client = client(&emulator, "transport-proxy-secret");
    client.set_proxy(Some("http://user:hunter2-secret@127.0.0.1:1")).unwrap();
    let error = client.get_balance().result.unwrap_err();
    assert_eq!(error.code, Code::Network);
    assert!(!error.message.contains("hunter2-secret"), "{}", error.message);
    assert!(!format!("{client:?}").contains("hunter2-secret"));
}

#[test]
fn host_names_are_resolved_and_reused() {
    let emulator = emulator();
    let client = capmonster::Client::new("transport-names").unwrap();
    client.set_base_url(&format!("http://localhost:{}", emulator.port())).unwrap();
    client.set_proxy(None).unwrap();
    for _ in 0..5 {
        assert!(client.get_balance().result.is_ok());
    }
    assert_eq!(emulator.connections(), 1);
}
