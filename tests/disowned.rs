//! Tasks the service disowned, against the emulator: after its final answer about a task
//! (`ERROR_NO_SUCH_CAPCHA_ID`, `WRONG_CAPTCHA_ID`, `ERROR_CAPTCHA_UNSOLVABLE`) no process of the
//! user asks about the task again; and a storm of wrong-id answers pauses getTaskResult for
//! tasks the budget does not know, never for tasks created or asked about here.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use capmonster::budget::guard::policy::{Stop, WRONG_IDS_LIMIT};
use capmonster::{Code, Error, Next, Waiter};
use common::*;

const IMAGE: &str = r#"{"type":"ImageToTextTask","body":"aGVsbG8="}"#;
/// A task id the emulator never made.
const UNKNOWN_TASK: i64 = 7_000_001;

/// A getTaskResult answered by the budget: the service's own error, no request, no status,
/// and a message that says it was not sent and why.
fn assert_local(error: &Error, requests: u32, api_code: &str, task_id: i64) {
    assert_eq!((error.code, error.api_code(), error.http_status, requests), (Code::Api, Some(api_code), None, 0));
    assert!(error.message.starts_with("getTaskResult was not sent"), "{}", error.message);
    assert!(error.message.contains(&format!("{api_code} for task {task_id} at ")), "{}", error.message);
}

#[test]
fn an_unknown_task_is_asked_about_once_by_all_processes() {
    let emulator = emulator();
    let client = client(&emulator, "disowned-unknown");
    let first = client.get_task_result(UNKNOWN_TASK);
    assert_eq!(first.requests, 1);
    let error = first.result.unwrap_err();
    assert_eq!(error.api_code(), Some("ERROR_NO_SUCH_CAPCHA_ID"));
    let description = error.api.unwrap().description;
    for _ in 0..20 {
        let again = client.get_task_result(UNKNOWN_TASK);
        let error = again.result.unwrap_err();
        assert_local(&error, again.requests, "ERROR_NO_SUCH_CAPCHA_ID", UNKNOWN_TASK);
        assert_eq!(error.api.unwrap().description, description, "the service's description");
    }
    // A blocking wait ends with the same answer at once.
    let waited = capmonster::wait::polling::wait(&client, UNKNOWN_TASK, &fast_schedule(), None);
    assert_local(&waited.result.unwrap_err(), waited.requests, "ERROR_NO_SUCH_CAPCHA_ID", UNKNOWN_TASK);
    if cfg!(unix) {
        // The test processes of Windows count in the process (tests/common).
        for _ in 0..3 {
            child(&emulator, "disowned-unknown", UNKNOWN_TASK, "ERROR_NO_SUCH_CAPCHA_ID", None, 0);
        }
    }
    assert_eq!(emulator.task_requests(UNKNOWN_TASK), 1, "nothing was sent twice");
    assert_eq!(client.requests_counted(UNKNOWN_TASK), 1);
}

/// Run in a child process (see `child`): one getTaskResult, its code and request count checked.
#[test]
fn child_asks_about_a_disowned_task() {
    let Ok(url) = std::env::var("DISOWNED_CHILD_URL") else { return };
    let key = std::env::var("DISOWNED_CHILD_KEY").unwrap();
    let task_id: i64 = std::env::var("DISOWNED_CHILD_TASK").unwrap().parse().unwrap();
    let code = std::env::var("DISOWNED_CHILD_CODE").unwrap();
    let requests: u32 = std::env::var("DISOWNED_CHILD_REQUESTS").unwrap().parse().unwrap();
    let client = capmonster::Client::new(&key).unwrap();
    client.set_base_url(&url).unwrap();
    client.set_proxy(None).unwrap();
    let report = client.get_task_result(task_id);
    let error = report.result.unwrap_err();
    assert_eq!((error.api_code(), report.requests), (Some(code.as_str()), requests), "{}", error.message);
    if requests == 0 {
        assert_eq!((error.code, error.http_status), (Code::Api, None));
        assert!(error.message.starts_with("getTaskResult was not sent"), "{}", error.message);
    }
}

/// Runs `child_asks_about_a_disowned_task` in a new process of this test binary (which shares
/// this process's budget file).
fn child(emulator: &Emulator, key: &str, task_id: i64, code: &str, guard: Option<&str>, requests: u32) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child_asks_about_a_disowned_task", "--nocapture", "--test-threads=1"])
        .env("DISOWNED_CHILD_URL", emulator.url())
        .env("DISOWNED_CHILD_KEY", key)
        .env("DISOWNED_CHILD_TASK", task_id.to_string())
        .env("DISOWNED_CHILD_CODE", code)
        .env("DISOWNED_CHILD_REQUESTS", requests.to_string());
    if let Some(setting) = guard {
        command.env("CAPMONSTER_GUARD", setting);
    }
    assert!(command.status().unwrap().success(), "the child asking about task {task_id} failed");
}

#[test]
fn an_unsolvable_task_ends_every_wait_here_and_in_other_processes() {
    let emulator = emulator();
    let key = "disowned-unsolvable";
    let client = Arc::new(client(&emulator, key));
    let task_id = client.create_task(IMAGE, None).result.unwrap();
    emulator.script_task(task_id, vec![Step::processing(), Step::api_error("ERROR_CAPTCHA_UNSOLVABLE", "no", 200)]);
    let waited = capmonster::wait::polling::wait(&client, task_id, &fast_schedule(), None);
    assert_eq!((waited.result.unwrap_err().api_code(), waited.requests), (Some("ERROR_CAPTCHA_UNSOLVABLE"), 2));

    // Waits on a waiter end at their first poll, without sending.
    let waiter = Waiter::new(&client).unwrap();
    for tag in 0..50 {
        waiter.add(task_id, &fast_schedule(), None, tag).unwrap();
    }
    for _ in 0..50 {
        match waiter.next(Duration::from_secs(10)) {
            Next::Finished(finished) => {
                let error = finished.report.result.unwrap_err();
                assert_local(&error, finished.report.requests, "ERROR_CAPTCHA_UNSOLVABLE", task_id);
                assert_eq!(
                    error.api.unwrap().description.as_deref(),
                    Some(capmonster::budget::disowned::UNSOLVABLE_DESCRIPTION),
                    "a slot keeps the answer, not its text: the documented description"
                );
            }
            other => panic!("every wait ends: {other:?}"),
        }
    }
    if cfg!(unix) {
        child(&emulator, key, task_id, "ERROR_CAPTCHA_UNSOLVABLE", None, 0);
        // CAPMONSTER_GUARD=off (dangerous) asks as if the task had not been disowned.
        child(&emulator, key, task_id, "ERROR_CAPTCHA_UNSOLVABLE", Some("off"), 1);
    }
    let expected = if cfg!(unix) { 3 } else { 2 };
    assert_eq!(emulator.task_requests(task_id), expected);
}

#[test]
fn a_storm_of_wrong_ids_pauses_unknown_tasks_but_not_known_ones() {
    let emulator = emulator();
    let key = "disowned-storm";
    let client = client(&emulator, key);
    let created = client.create_task(IMAGE, None).result.unwrap();
    assert_eq!(client.requests_counted(created), 0, "registered, nothing counted");
    let asked_before = emulator.add_task("ImageToTextTask");
    assert!(client.get_task_result(asked_before).result.is_ok());
    let not_yet_asked = emulator.add_task("ImageToTextTask");

    let first_wrong = 8_000_000;
    for n in 0..i64::from(WRONG_IDS_LIMIT) {
        let report = client.get_task_result(first_wrong + n);
        assert_eq!((report.result.unwrap_err().api_code(), report.requests), (Some("ERROR_NO_SUCH_CAPCHA_ID"), 1));
    }
    let stop = client.stop(Stop::WrongIds).expect("the pause");
    assert!(!stop.counting());

    // Tasks the budget does not know are held back, even one the service has.
    let sent = emulator.method_requests("getTaskResult");
    for task_id in [first_wrong + 1000, not_yet_asked] {
        let paused = client.get_task_result(task_id);
        let error = paused.result.unwrap_err();
        assert_eq!((error.code, error.api_code(), paused.requests), (Code::Api, Some("ERROR_NO_SUCH_CAPCHA_ID"), 0));
        assert!(error.message.contains("for tasks not created or asked about on this machine"), "{}", error.message);
    }
    assert_eq!(emulator.method_requests("getTaskResult"), sent);
    // Known tasks are polled as before: created here, or asked about before.
    for task_id in [created, asked_before] {
        let report = client.get_task_result(task_id);
        assert!(report.result.is_ok(), "{:?}", report.result);
        assert_eq!(report.requests, 1);
    }
    // The disowned tasks of the storm are answered from their slots, not by the pause.
    let again = client.get_task_result(first_wrong);
    assert_local(&again.result.unwrap_err(), again.requests, "ERROR_NO_SUCH_CAPCHA_ID", first_wrong);
    assert_eq!(emulator.method_requests("getTaskResult"), sent + 2);

    // The user fixed the ids: ending the stops lets unknown tasks out at once.
    client.end_stops();
    assert!(client.get_task_result(not_yet_asked).result.is_ok());
}

#[test]
fn wrong_ids_are_counted_across_processes() {
    if cfg!(windows) {
        return; // the test processes of Windows count in the process (tests/common)
    }
    let emulator = emulator();
    let key = "disowned-storm-processes";
    let client = client(&emulator, key);
    let first_wrong = 9_000_000;
    let half = i64::from(WRONG_IDS_LIMIT / 2);
    for n in 0..half {
        assert_eq!(client.get_task_result(first_wrong + n).requests, 1);
    }
    assert!(client.stop(Stop::WrongIds).is_some_and(|state| state.counting()));
    // The other half, one process each.
    for n in half..i64::from(WRONG_IDS_LIMIT) {
        child(&emulator, key, first_wrong + n, "ERROR_NO_SUCH_CAPCHA_ID", None, 1);
    }
    assert!(client.stop(Stop::WrongIds).is_some_and(|state| !state.counting()), "the pause holds");
    let paused = client.get_task_result(first_wrong + 1000);
    assert_eq!((paused.result.unwrap_err().api_code(), paused.requests), (Some("ERROR_NO_SUCH_CAPCHA_ID"), 0));
    child(&emulator, key, first_wrong + 1001, "ERROR_NO_SUCH_CAPCHA_ID", None, 0);
    assert_eq!(emulator.method_requests("getTaskResult"), WRONG_IDS_LIMIT);
    client.end_stops();
}
