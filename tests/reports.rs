//! reportIncorrectImageCaptcha / reportIncorrectTokenCaptcha and createTask's softId, over
//! real HTTP against the emulator.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use capmonster::{CallOptions, Cancel, Code, Incorrect};
use common::*;
use serde_json::json;

const IMAGE_TASK: &str = r#"{"type":"ImageToTextTask","body":"aGVsbG8="}"#;

#[test]
fn both_reports_reach_the_service_and_are_accepted() {
    let emulator = emulator();
    let client = client(&emulator, "reports-accepted");
    let task_id = client.create_task(IMAGE_TASK, None).result.unwrap();
    for kind in [Incorrect::Image, Incorrect::Token] {
        let report = client.report_incorrect_with(kind, task_id, &CallOptions::default());
        report.result.unwrap();
        assert_eq!((report.requests, report.http_status), (1, Some(200)));
    }
    assert_eq!(emulator.method_requests("reportIncorrectImageCaptcha"), 1);
    assert_eq!(emulator.method_requests("reportIncorrectTokenCaptcha"), 1);
    assert_eq!(emulator.method_requests("getTaskResult"), 0, "a report is not a poll");
}

#[test]
fn a_report_on_an_unknown_task_is_the_services_error() {
    let emulator = emulator();
    let client = client(&emulator, "reports-unknown");
    let error = client.report_incorrect_with(Incorrect::Image, 424242, &CallOptions::default()).result.unwrap_err();
    assert_eq!(error.code, Code::Api);
    assert_eq!(error.api_code(), Some("ERROR_NO_SUCH_CAPCHA_ID"));
}

#[test]
fn invalid_task_ids_send_nothing() {
    let emulator = emulator();
    let client = client(&emulator, "reports-invalid");
    for task_id in [0, -1, i64::MIN] {
        let report = client.report_incorrect_with(Incorrect::Token, task_id, &CallOptions::default());
        let error = report.result.unwrap_err();
        assert_eq!(error.code, Code::InvalidArgument);
        assert!(error.message.contains("task_id"), "{}", error.message);
        assert_eq!(report.requests, 0);
    }
    assert_eq!(emulator.method_requests("reportIncorrectTokenCaptcha"), 0);
}

#[test]
fn a_report_is_never_sent_twice() {
    let emulator = emulator();
    let client = client(&emulator, "reports-no-retry");
    let method = "reportIncorrectImageCaptcha";
    // The second report arrives on the kept-alive connection and the server hangs up on it:
    // a getTaskResult would be resent there, a report must not be (the service may count it).
    emulator.script_method(method, vec![Step::json(200, json!({"errorId": 0, "status": "success"})), Step::close()]);
    client.report_incorrect_with(Incorrect::Image, 5, &CallOptions::default()).result.unwrap();
    let report = client.report_incorrect_with(Incorrect::Image, 5, &CallOptions::default());
    assert_eq!(report.result.unwrap_err().code, Code::Network);
    assert_eq!(report.requests, 1);
    assert_eq!(emulator.method_requests(method), 2);
}

#[test]
fn a_cancel_reaches_a_report_in_flight() {
    let emulator = emulator();
    let client = client(&emulator, "reports-cancel");
    emulator.script_method("reportIncorrectTokenCaptcha", vec![Step::stall(5_000)]);
    let cancel = Arc::new(Cancel::new());
    let options = CallOptions { timeout: None, cancel: Some(Arc::clone(&cancel)) };
    let trigger = {
        let cancel = Arc::clone(&cancel);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cancel.trigger();
            Instant::now()
        })
    };
    let report = client.report_incorrect_with(Incorrect::Token, 9, &options);
    let lag = trigger.join().unwrap().elapsed();
    assert_eq!(report.result.unwrap_err().code, Code::Cancelled);
    assert!(lag < Duration::from_millis(1_000), "returned {lag:?} after the cancel");
}

#[test]
fn the_soft_id_goes_with_every_create_task_once_set() {
    let emulator = emulator();
    let client = client(&emulator, "reports-soft-id");
    let before = client.create_task(IMAGE_TASK, None).result.unwrap();
    assert_eq!(emulator.soft_id(before), None, "none is sent by default");
    client.set_soft_id(u32::MAX);
    let with = client.create_task(IMAGE_TASK, Some("https://example.com/cb")).result.unwrap();
    assert_eq!(emulator.soft_id(with), Some(u64::from(u32::MAX)));
    assert_eq!(emulator.callback_url(with).as_deref(), Some("https://example.com/cb"));
    assert_eq!(emulator.stats_json()["lastSoftId"], json!(u32::MAX));
    client.set_soft_id(0);
    let after = client.create_task(IMAGE_TASK, None).result.unwrap();
    assert_eq!(emulator.soft_id(after), None, "0 turns it off");
}
