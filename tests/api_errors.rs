//! The service's error glossary: its two spellings of "no such task", `CAPTCHA_NOT_READY` as
//! "processing", and `cm_api_error_kind` / `cm_api_error_glossary`, the bindings' one source.

mod common;

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use capmonster::ffi::calls::cm_get_task_result;
use capmonster::ffi::client::{cm_client_free, cm_client_new, cm_client_set_base_url, cm_client_set_proxy};
use capmonster::ffi::library::{cm_api_error_glossary, cm_api_error_kind, CM_ERR_API, CM_OK};
use capmonster::ffi::result::*;
use capmonster::wait::wait;
use capmonster::{Code, TaskState};
use common::*;
use serde_json::json;

/// The glossary of the service's documentation ("Error glossary" of the API summary the
/// project keeps), in its order and spelling: taken from the documentation, not the library.
const DOCUMENTED: &[&str] = &[
    "ERROR_KEY_DOES_NOT_EXIST",
    "ERROR_ZERO_BALANCE",
    "ERROR_TOO_BIG_CAPTCHA_FILESIZE",
    "ERROR_ZERO_CAPTCHA_FILESIZE",
    "ERROR_NO_SUCH_CAPCHA_ID",
    "ERROR_CAPTCHA_UNSOLVABLE",
    "CAPTCHA_NOT_READY",
    "ERROR_IP_NOT_ALLOWED",
    "ERROR_IP_BANNED",
    "ERROR_NO_SUCH_METHOD",
    "ERROR_TOO_MUCH_REQUESTS",
    "ERROR_DOMAIN_NOT_ALLOWED",
    "ERROR_TOKEN_EXPIRED",
    "ERROR_NO_SLOT_AVAILABLE",
    "ERROR_RECAPTCHA_INVALID_SITEKEY",
    "ERROR_RECAPTCHA_INVALID_DOMAIN",
    "ERROR_RECAPTCHA_TIMEOUT",
    "ERROR_IP_BLOCKED",
    "ERROR_PROXY_CONNECT_REFUSED",
    "ERROR_PROXY_BANNED",
    "ERROR_PROXY_MISSING",
    "ERROR_PROXY_NOT_AUTHORISED",
    "ERROR_PROXY_READ_TIMEOUT",
    "ERROR_TASK_NOT_SUPPORTED",
    "ERROR_TASK_ABSENT",
    "ERROR_WRONG_USERAGENT",
];

unsafe fn text<'a>(ptr: *const c_char) -> Option<&'a str> {
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_str().unwrap())
}

fn kind(code: &str) -> Option<&'static str> {
    let code = CString::new(code).unwrap();
    unsafe { text(cm_api_error_kind(code.as_ptr())) }
}

#[test]
fn the_glossary_is_the_documented_one_and_each_code_its_own_kind() {
    let glossary: Vec<&str> =
        (0..).map(|i| unsafe { text(cm_api_error_glossary(i)) }).take_while(Option::is_some).flatten().collect();
    assert_eq!(glossary, DOCUMENTED);
    assert!(cm_api_error_glossary(u32::MAX).is_null());
    for code in DOCUMENTED {
        assert_eq!(kind(code), Some(*code));
    }
    assert_eq!(kind("WRONG_CAPTCHA_ID"), Some("ERROR_NO_SUCH_CAPCHA_ID"));
    for outside in ["", "ERROR_FROM_THE_FUTURE", "wrong_captcha_id", " ERROR_ZERO_BALANCE"] {
        assert_eq!(kind(outside), None, "{outside:?}");
    }
    unsafe {
        assert!(cm_api_error_kind(ptr::null()).is_null());
        assert!(cm_api_error_kind(c"ERROR_\xff".as_ptr()).is_null());
    }
}

#[test]
fn both_spellings_of_no_such_task_end_a_wait_at_once() {
    let emulator = emulator();
    let client = client(&emulator, "errors-no-such-task");
    for (task_id, spelling) in [(1, "ERROR_NO_SUCH_CAPCHA_ID"), (2, "WRONG_CAPTCHA_ID")] {
        emulator.script_task(
            task_id,
            vec![Step::processing(), Step::api_error(spelling, "no such task", 200), Step::ready(json!({}))],
        );
        let report = wait(&client, task_id, &fast_schedule(), None);
        let error = report.result.expect_err(spelling);
        assert_eq!(error.code, Code::Api, "{spelling}");
        assert_eq!(error.api_code(), Some(spelling), "the service's own spelling is passed through");
        assert_eq!(report.requests, 2, "{spelling}: final, not retried");
        assert_eq!(emulator.task_requests(task_id), 2);
    }
}

#[test]
fn captcha_not_ready_with_error_id_1_is_processing() {
    let emulator = emulator();
    let client = client(&emulator, "errors-not-ready");
    emulator.script_task(
        3,
        vec![
            Step::api_error("CAPTCHA_NOT_READY", "Captcha is being solved, retry in 2 seconds", 200),
            Step::api_error("CAPTCHA_NOT_READY", "Captcha is being solved, retry in 2 seconds", 200),
            Step::ready(json!({"text": "done"})),
        ],
    );
    let report = wait(&client, 3, &fast_schedule(), None);
    assert!(matches!(report.result, Ok(TaskState::Ready(_))), "{:?}", report.result);
    assert_eq!(report.requests, 3);
}

#[test]
fn through_the_c_abi() {
    let emulator = emulator();
    emulator.script_task(4, vec![Step::api_error("CAPTCHA_NOT_READY", "later", 200)]);
    emulator.script_task(5, vec![Step::api_error("WRONG_CAPTCHA_ID", "no such task", 200)]);
    let key = CString::new("errors-c-abi").unwrap();
    let url = CString::new(emulator.url()).unwrap();
    let mut client = ptr::null_mut();
    unsafe {
        assert_eq!(cm_client_new(key.as_ptr(), &mut client, ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_base_url(client, url.as_ptr(), ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_proxy(client, ptr::null(), ptr::null_mut()), CM_OK);

        let mut result = ptr::null_mut();
        assert_eq!(cm_get_task_result(client, 4, &mut result), CM_OK);
        assert_eq!(cm_result_is_ready(result), 0);
        assert_eq!(text(cm_result_api_error_code(result)), None);
        cm_result_free(result);

        assert_eq!(cm_get_task_result(client, 5, &mut result), CM_ERR_API);
        let code = cm_result_api_error_code(result);
        assert_eq!(text(code), Some("WRONG_CAPTCHA_ID"));
        assert_eq!(text(cm_api_error_kind(code)), Some("ERROR_NO_SUCH_CAPCHA_ID"));
        cm_result_free(result);
        cm_client_free(client);
    }
}
