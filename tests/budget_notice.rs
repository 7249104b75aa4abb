//! The budget's notice (why the counts and the guard's stops are not shared, or what was
//! repaired) reaches the reports of every client once: the first report of each client, of any
//! call (getTaskResult, createTask, getBalance, a report), a blocking wait or a waiter's wait,
//! and through the C ABI in a result's message; never the next report of the same client.
//!
//! The budget's kind is read once per process, from the environment, when the first client is
//! made: so the test runs in a child process of this binary, started with that environment
//! (the other test of the binary, from tests/common, makes a client of its own).

mod common;

use std::ffi::{CStr, CString};
use std::sync::Arc;
use std::time::Duration;

use capmonster::ffi::calls::{cm_get_balance, cm_get_task_result};
use capmonster::ffi::client::{cm_client_free, cm_client_new, cm_client_set_base_url, cm_client_set_proxy};
use capmonster::ffi::library::CM_OK;
use capmonster::ffi::result::{cm_result_free, cm_result_message};
use capmonster::wait::wait;
use capmonster::{CallOptions, Client, Code, Incorrect, Next, Schedule, TaskState, Waiter};
use common::*;

const IMAGE: &str = r#"{"type":"ImageToTextTask","body":"aGVsbG8="}"#;
const SAYS: &str = "CAPMONSTER_BUDGET_FILE=\"relative-budget\" is not an absolute path";
/// How the notice of a budget that is not shared begins.
const PLAINLY: &str = "the request budget and the account guard are not shared with other processes: ";

/// A client's first getTaskResult report carries the notice, its second does not.
fn told_once(client: &Client, task_id: i64) {
    let first = client.get_task_result(task_id);
    assert!(matches!(first.result, Ok(TaskState::Processing)), "{:?}", first.result);
    let notice = first.notice.expect("the first report of a client carries the notice");
    assert_eq!(notice, format!("{PLAINLY}{SAYS}; this process counts alone"));
    let second = client.get_task_result(task_id);
    assert!(matches!(second.result, Ok(TaskState::Processing)), "{:?}", second.result);
    assert_eq!(second.notice, None, "the next report of the same client does not repeat it");
}

/// The message of a C client's first and second getTaskResult results.
fn c_messages(emulator: &Emulator, task_id: i64) -> [String; 2] {
    let key = CString::new("budget-notice-c").unwrap();
    let url = CString::new(emulator.url()).unwrap();
    // SAFETY: the C ABI used as a C program uses it: valid strings, results freed once.
    unsafe {
        let mut client = std::ptr::null_mut();
        assert_eq!(cm_client_new(key.as_ptr(), &mut client, std::ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_base_url(client, url.as_ptr(), std::ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_proxy(client, std::ptr::null(), std::ptr::null_mut()), CM_OK);
        let messages = [(); 2].map(|_| {
            let mut result = std::ptr::null_mut();
            assert_eq!(cm_get_task_result(client, task_id, &mut result), CM_OK);
            let message = CStr::from_ptr(cm_result_message(result)).to_string_lossy().into_owned();
            cm_result_free(result);
            message
        });
        cm_client_free(client);
        messages
    }
}

#[test]
fn every_client_is_told_once_why_the_budget_is_not_shared() {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "told_in_a_process_of_its_own", "--nocapture", "--test-threads=1"])
        .env_remove("CAPMONSTER_BUDGET")
        .env("CAPMONSTER_BUDGET_FILE", "relative-budget")
        // tests/common leaves a budget chosen by the parent as it is.
        .env("CAPMONSTER_TEST_BUDGET_CHOSEN", "1")
        .env("CAPMONSTER_NOTICE_CHILD", "1")
        .status()
        .unwrap();
    assert!(status.success(), "the child process failed: {status}");
}

/// The test itself, in the child process `every_client_is_told_once_why_the_budget_is_not_shared`
/// starts (run alone, it returns at once).
#[test]
fn told_in_a_process_of_its_own() {
    if std::env::var_os("CAPMONSTER_NOTICE_CHILD").is_none() {
        return;
    }
    let emulator = Emulator::start(Config { solve_after: Duration::from_secs(3600), ..Config::default() }).unwrap();
    let task_id = emulator.add_task("ImageToTextTask");

    // Two clients of one program: each is told, once.
    let first = client(&emulator, "budget-notice-first");
    told_once(&first, task_id);
    told_once(&client(&emulator, "budget-notice-second"), task_id);
    assert!(!capmonster::budget::global().is_shared());

    // A call that never reaches the budget (a bad task id) does not spend the notice.
    let third = client(&emulator, "budget-notice-third");
    let refused = third.get_task_result(0);
    assert_eq!((refused.result.unwrap_err().code, refused.notice), (Code::InvalidArgument, None));
    told_once(&third, task_id);

    // Whatever a client's first call is, its report carries the notice; the next call's not.
    let balance = client(&emulator, "budget-notice-balance");
    let first = balance.get_balance();
    assert!(first.result.is_ok() && first.notice.expect("a getBalance report").contains(SAYS));
    assert_eq!(balance.get_task_result(task_id).notice, None, "told once, whatever the call");
    let created = client(&emulator, "budget-notice-create").create_task(IMAGE, None);
    assert!(created.result.is_ok() && created.notice.expect("a createTask report").contains(SAYS));
    let reported = client(&emulator, "budget-notice-report").report_incorrect_with(
        Incorrect::Image,
        task_id,
        &CallOptions::default(),
    );
    assert!(reported.notice.expect("a report's report").contains(SAYS), "{:?}", reported.result);

    // A blocking wait: its report carries the notice even when the wait ends in an error.
    let waiting = client(&emulator, "budget-notice-wait");
    let schedule = Schedule { max_requests: 2, ..fast_schedule() };
    let report = wait(&waiting, task_id, &schedule, None);
    assert_eq!(report.result.unwrap_err().code, Code::BudgetExhausted, "the wait spent its max_requests");
    assert!(report.notice.expect("the wait's report").contains(SAYS));
    assert_eq!(wait(&waiting, task_id, &schedule, None).notice, None);

    // A waiter's waits: the first to come out of a fresh client carries it, the next does not.
    let waited = Arc::new(client(&emulator, "budget-notice-waiter"));
    let waiter = Waiter::new(&waited).unwrap();
    let finished = || {
        waiter.add(task_id, &schedule, None, 0).unwrap();
        match waiter.next(Duration::from_secs(10)) {
            Next::Finished(finished) => finished.report,
            other => panic!("no wait came out: {other:?}"),
        }
    };
    assert!(finished().notice.expect("the waiter's first report").contains(SAYS));
    assert_eq!(finished().notice, None);

    // A waiter's solve: the notice its createTask carried comes out with the solve.
    let solver = Arc::new(client(&emulator, "budget-notice-solve"));
    let waiter = Waiter::new(&solver).unwrap();
    let solved = |tag| {
        waiter.add_solve(IMAGE, None, &schedule, None, tag).unwrap();
        match waiter.next(Duration::from_secs(10)) {
            Next::Finished(finished) => finished.report,
            other => panic!("no solve came out: {other:?}"),
        }
    };
    assert!(solved(1).notice.expect("the first solve's report").contains(SAYS));
    assert_eq!(solved(2).notice, None);

    // Through the C ABI: in the message of the first result, as "(note: ...)", and only there.
    let [c_first, c_second] = c_messages(&emulator, task_id);
    assert!(c_first.contains("(note: ") && c_first.contains(SAYS), "{c_first}");
    assert!(!c_second.contains("note:"), "{c_second}");
    let c_balance = c_balance_message(&emulator);
    assert!(c_balance.contains("(note: ") && c_balance.contains(SAYS), "{c_balance}");
}

/// The message of a fresh C client's first result: a getBalance.
fn c_balance_message(emulator: &Emulator) -> String {
    let key = CString::new("budget-notice-c-balance").unwrap();
    let url = CString::new(emulator.url()).unwrap();
    // SAFETY: as in `c_messages`.
    unsafe {
        let mut client = std::ptr::null_mut();
        assert_eq!(cm_client_new(key.as_ptr(), &mut client, std::ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_base_url(client, url.as_ptr(), std::ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_proxy(client, std::ptr::null(), std::ptr::null_mut()), CM_OK);
        let (mut balance, mut result) = (0.0, std::ptr::null_mut());
        assert_eq!(cm_get_balance(client, &mut balance, &mut result), CM_OK);
        let message = CStr::from_ptr(cm_result_message(result)).to_string_lossy().into_owned();
        cm_result_free(result);
        cm_client_free(client);
        message
    }
}
