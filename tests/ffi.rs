//! The C ABI called from Rust, against the emulator: every docs example through
//! `cm_get_task_result` and the `cm_result_*` accessors, and the result rules.

mod common;

use std::ffi::{CStr, CString};
use std::ptr;

use capmonster::ffi::calls::cm_get_task_result;
use capmonster::ffi::client::{cm_client_free, cm_client_new, cm_client_set_base_url, cm_client_set_proxy};
use capmonster::ffi::library::{CM_ERR_INVALID_ARGUMENT, CM_OK};
use capmonster::ffi::result::*;
use capmonster::ffi::{cm_client, cm_result};
use common::*;
use serde_json::Value;

/// A C-side client for the emulator.
fn c_client(emulator: &Emulator, key: &str) -> *mut cm_client {
    let key = CString::new(key).unwrap();
    let url = CString::new(emulator.url()).unwrap();
    let mut client = ptr::null_mut();
    unsafe {
        assert_eq!(cm_client_new(key.as_ptr(), &mut client, std::ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_base_url(client, url.as_ptr(), std::ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_proxy(client, ptr::null(), ptr::null_mut()), CM_OK);
    }
    client
}

unsafe fn text<'a>(ptr: *const std::ffi::c_char) -> Option<&'a str> {
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_str().unwrap())
}

fn solution_string(result: *const cm_result, field: &str) -> Option<String> {
    let field = CString::new(field).unwrap();
    unsafe { text(cm_result_solution_string(result, field.as_ptr())).map(str::to_owned) }
}

#[test]
fn every_docs_example_through_the_c_accessors() {
    let emulator = emulator();
    let client = c_client(&emulator, "ffi-docs-examples");
    let mut strings_checked = 0;
    for (task_id, example) in (5001..).zip(docs_ready_examples()) {
        let name = &example.page;
        emulator.script_task(task_id, vec![Step::raw(200, &example.body)]);
        let mut result = ptr::null_mut();
        let code = unsafe { cm_get_task_result(client, task_id, &mut result) };
        assert_eq!(code, CM_OK, "{name}: {:?}", unsafe { text(cm_result_message(result)) });
        unsafe {
            assert_eq!(cm_result_code(result), CM_OK);
            assert_eq!(cm_result_is_ready(result), 1, "{name}");
            assert_eq!(cm_result_task_id(result), task_id);
            assert_eq!(cm_result_request_count(result), 1);
            assert_eq!(cm_result_http_status(result), 200);
            assert!(cm_result_api_error_code(result).is_null());
            let json_text = text(cm_result_solution_json(result)).expect("solution JSON");
            assert_eq!(serde_json::from_str::<Value>(json_text).unwrap(), example.solution, "{name}");
        }
        for (field, value) in example.solution.as_object().unwrap() {
            let found = solution_string(result, field);
            match value.as_str() {
                Some(expected) => {
                    assert_eq!(found.as_deref(), Some(expected), "{name}.{field}");
                    strings_checked += 1;
                }
                None => assert_eq!(found, None, "{name}.{field} is not a string"),
            }
        }
        assert_eq!(solution_string(result, "no-such-member"), None);
        unsafe { cm_result_free(result) };
    }
    assert!(strings_checked >= 40, "only {strings_checked} string members checked");
    unsafe { cm_client_free(client) };
}

#[test]
fn escaped_strings_come_back_unescaped_and_nul_strings_are_left_out() {
    let emulator = emulator();
    let client = c_client(&emulator, "ffi-escapes");
    let body = r#"{"errorId":0,"status":"ready","solution":{"a":"line\nbreak \"quoted\" \u00e9\ud83d\ude00","nul":"x\u0000y","a2":"first","a2":"second"}}"#;
    emulator.script_task(1, vec![Step::raw(200, body)]);
    let mut result = ptr::null_mut();
    assert_eq!(unsafe { cm_get_task_result(client, 1, &mut result) }, CM_OK);
    assert_eq!(solution_string(result, "a").as_deref(), Some("line\nbreak \"quoted\" é😀"));
    assert_eq!(solution_string(result, "nul"), None, "a NUL cannot cross as a C string");
    assert_eq!(solution_string(result, "a2").as_deref(), Some("second"), "the last duplicate wins");
    // The JSON text keeps the escapes exactly as sent.
    assert!(unsafe { text(cm_result_solution_json(result)) }.unwrap().contains(r#""x\u0000y""#));
    unsafe {
        cm_result_free(result);
        cm_client_free(client);
    }
}

#[test]
fn failures_hand_back_a_result_and_a_null_out_result_gets_none() {
    let emulator = emulator();
    let client = c_client(&emulator, "ffi-failures");
    emulator.script_task(2, vec![Step::api_error("ERROR_CAPTCHA_UNSOLVABLE", "cannot", 200)]);
    let mut result = ptr::null_mut();
    unsafe {
        assert_eq!(cm_get_task_result(client, 2, &mut result), capmonster::ffi::library::CM_ERR_API);
        assert_eq!(text(cm_result_api_error_code(result)), Some("ERROR_CAPTCHA_UNSOLVABLE"));
        assert_eq!(text(cm_result_api_error_description(result)), Some("cannot"));
        assert!(text(cm_result_message(result)).unwrap().contains("ERROR_CAPTCHA_UNSOLVABLE"));
        assert!(cm_result_solution_json(result).is_null());
        cm_result_free(result);

        assert_eq!(cm_get_task_result(client, 2, ptr::null_mut()), CM_ERR_INVALID_ARGUMENT);
        let mut result = ptr::null_mut();
        assert_eq!(cm_get_task_result(ptr::null(), 2, &mut result), CM_ERR_INVALID_ARGUMENT);
        assert!(!result.is_null());
        assert!(text(cm_result_message(result)).unwrap().contains("client"));
        cm_result_free(result);
        cm_client_free(client);
    }
    assert_eq!(emulator.task_requests(2), 1, "invalid calls send nothing");
}
