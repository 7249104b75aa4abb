//! getTaskResult over real HTTP against the emulator: every kind of answer and how it is
//! classified, including every ready example of the service's documentation.

mod common;

use capmonster::{Code, TaskState};
use common::*;
use serde_json::{json, Value};

fn solution_of(state: TaskState) -> Value {
    match state {
        TaskState::Ready(solution) => serde_json::from_str(solution.get()).unwrap(),
        TaskState::Processing => panic!("expected ready"),
    }
}

#[test]
fn processing_then_ready() {
    let emulator = emulator();
    emulator.script_task(11, vec![Step::processing(), Step::ready(json!({"text": "answer"}))]);
    let client = client(&emulator, "task-result-basic");
    let first = client.get_task_result(11);
    assert!(matches!(first.result, Ok(TaskState::Processing)));
    assert_eq!((first.requests, first.http_status), (1, Some(200)));
    let second = client.get_task_result(11);
    assert_eq!(solution_of(second.result.unwrap()), json!({"text": "answer"}));
    assert_eq!(emulator.task_requests(11), 2);
}

#[test]
fn the_solution_text_is_kept_verbatim() {
    let emulator = emulator();
    let body = r#"{"errorId":0,"status":"ready","solution":{"answer":[{"X":49.894734680000006,"Y":1e2}],"s":"\u00e9"},"cost":0.0002}"#;
    emulator.script_task(12, vec![Step::raw(200, body)]);
    let client = client(&emulator, "task-result-verbatim");
    match client.get_task_result(12).result {
        Ok(TaskState::Ready(solution)) => {
            assert_eq!(solution.get(), r#"{"answer":[{"X":49.894734680000006,"Y":1e2}],"s":"\u00e9"}"#)
        }
        other => panic!("expected ready, got {other:?}"),
    }
}

#[test]
fn every_docs_example_solution_round_trips() {
    let emulator = emulator();
    let client = client(&emulator, "task-result-docs");
    let examples = docs_ready_examples();
    assert!(examples.len() >= 30, "only {} ready examples", examples.len());
    for (task_id, example) in (1001..).zip(&examples) {
        emulator.script_task(task_id, vec![Step::raw(200, &example.body)]);
        let report = client.get_task_result(task_id);
        let state = report.result.unwrap_or_else(|e| panic!("{}: {e}", example.page));
        assert_eq!(solution_of(state), example.solution, "{}", example.page);
    }
}

#[test]
fn api_errors_decide_over_the_http_status() {
    let emulator = emulator();
    for (task, status, code) in [
        (21, 200, "ERROR_CAPTCHA_UNSOLVABLE"),
        (22, 402, "ERROR_ZERO_BALANCE"),
        (23, 403, "ERROR_KEY_DOES_NOT_EXIST"),
        (24, 429, "ERROR_TOO_MUCH_REQUESTS"),
        (25, 500, "ERROR_NO_SLOT_AVAILABLE"),
        (26, 503, "ERROR_SOMETHING_NEW"),
    ] {
        emulator.script_task(task, vec![Step::api_error(code, "what happened", status)]);
        // A key of its own per answer: the account guard stops a key the service refused.
        let report = client(&emulator, &format!("task-result-api-errors-{task}")).get_task_result(task);
        let error = report.result.unwrap_err();
        assert_eq!(error.code, Code::Api, "{code}");
        assert_eq!(error.api_code(), Some(code));
        assert_eq!(error.api.as_ref().unwrap().description.as_deref(), Some("what happened"));
        assert_eq!(report.http_status, Some(status));
        assert!(error.message.contains(code), "{}", error.message);
    }
}

#[test]
fn captcha_not_ready_is_processing() {
    let emulator = emulator();
    emulator.script_task(31, vec![Step::api_error("CAPTCHA_NOT_READY", "not ready yet", 200)]);
    let client = client(&emulator, "task-result-not-ready");
    assert!(matches!(client.get_task_result(31).result, Ok(TaskState::Processing)));
}

#[test]
fn bad_answers() {
    let emulator = emulator();
    let client = client(&emulator, "task-result-bad");
    let cases: Vec<(i64, Step, Code, Option<u16>)> = vec![
        (41, Step::raw(502, "<html>bad gateway</html>"), Code::HttpStatus, Some(502)),
        (42, Step::raw(404, ""), Code::HttpStatus, Some(404)),
        (43, Step::json(500, json!({"errorId": 0, "status": "processing"})), Code::HttpStatus, Some(500)),
        (44, Step::raw(200, "not json"), Code::BadResponse, Some(200)),
        (45, Step::json(200, json!({"errorId": 0, "status": "solved"})), Code::BadResponse, Some(200)),
        (46, Step::json(200, json!({"errorId": 0, "status": "ready"})), Code::BadResponse, Some(200)),
        (47, Step::json(200, json!([1, 2])), Code::BadResponse, Some(200)),
    ];
    for (task, step, code, status) in cases {
        emulator.script_task(task, vec![step]);
        let report = client.get_task_result(task);
        assert_eq!(report.result.unwrap_err().code, code, "task {task}");
        assert_eq!(report.http_status, status, "task {task}");
        assert_eq!(report.requests, 1);
    }
}

#[test]
fn unknown_task_is_the_services_error() {
    let emulator = emulator();
    let client = client(&emulator, "task-result-unknown");
    let error = client.get_task_result(987_654).result.unwrap_err();
    assert_eq!(error.api_code(), Some("ERROR_NO_SUCH_CAPCHA_ID"));
}

#[test]
fn invalid_task_ids_send_nothing() {
    let emulator = emulator();
    let client = client(&emulator, "task-result-invalid");
    for task in [0, -1, i64::MIN] {
        let report = client.get_task_result(task);
        assert_eq!(report.result.unwrap_err().code, Code::InvalidArgument);
        assert_eq!(report.requests, 0);
    }
    assert_eq!(emulator.method_requests("getTaskResult"), 0);
}

#[test]
fn create_task_and_balance() {
    let emulator = emulator();
    let client = client(&emulator, "create-and-balance");
    let report = client.create_task(r#"{"type":"ImageToTextTask","body":"aGVsbG8="}"#, Some("https://example.com/cb"));
    let task_id = report.result.unwrap();
    assert!(task_id > 0);
    assert_eq!(report.requests, 1);
    assert!((client.get_balance().result.unwrap() - 345.678).abs() < 1e-9);

    // Nothing is sent for a task that is not an object with a string type.
    for bad in ["", "[]", "{}", r#"{"type":1}"#, "{\"type\":\"x\"", "null"] {
        let report = client.create_task(bad, None);
        assert_eq!(report.result.unwrap_err().code, Code::InvalidArgument, "{bad:?}");
        assert_eq!(report.requests, 0);
    }
    assert_eq!(emulator.method_requests("createTask"), 1);

    let error = client.create_task(r#"{"type":"NoSuchTask"}"#, None).result.unwrap_err();
    assert_eq!(error.api_code(), Some("ERROR_TASK_NOT_SUPPORTED"));
}

#[test]
fn the_client_key_never_appears_in_messages() {
    let key = "very-secret-client-key-0123456789";
    let emulator = emulator();
    emulator.script_task(51, vec![Step::api_error("ERROR_KEY_DOES_NOT_EXIST", &format!("key {key} is unknown"), 200)]);
    let client = client(&emulator, key);
    let error = client.get_task_result(51).result.unwrap_err();
    assert!(!error.message.contains(key), "{}", error.message);
    assert!(!error.api.unwrap().description.unwrap().contains(key));
    assert!(!format!("{client:?}").contains(key));
}
