//! getUserAgent against the emulator: the text, the answers that are not a User-Agent (an
//! HTML page, an empty body, an oversized one), a cancel in flight, a proxy, and the URL
//! setting; through the C ABI too.

mod common;

use std::ffi::{CStr, CString};
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capmonster::ffi::calls::{cm_get_user_agent, cm_get_user_agent_with};
use capmonster::ffi::client::{cm_client_free, cm_client_new, cm_client_set_proxy, cm_client_set_user_agent_url};
use capmonster::ffi::library::{CM_ERR_BAD_RESPONSE, CM_ERR_INVALID_ARGUMENT, CM_OK};
use capmonster::ffi::result::*;
use capmonster::{CallOptions, Cancel, Client, Code};
use common::servers::{microsocks, scratch_dir, tinyproxy};
use common::*;

/// What the emulator answers, unscripted.
const EMULATOR_USER_AGENT: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// A client whose getUserAgent page is the emulator's.
fn ua_client(emulator: &Emulator, key: &str) -> Client {
    let client = client(emulator, key);
    client.set_user_agent_url(&format!("{}/useragent", emulator.url())).unwrap();
    client
}

#[test]
fn the_user_agent_as_text() {
    let emulator = emulator();
    let client = ua_client(&emulator, "ua-text");
    let report = client.get_user_agent();
    assert_eq!(report.result.unwrap(), EMULATOR_USER_AGENT);
    assert_eq!((report.requests, report.http_status), (1, Some(200)));
    assert_eq!(emulator.method_requests("getUserAgent"), 1);

    // The official page's path too; white space around the line is not part of it.
    client.set_user_agent_url(&format!("{}/api/useragent/actual", emulator.url())).unwrap();
    emulator.script_method("getUserAgent", vec![Step::raw(200, "\r\n  Mozilla/5.0 (X11) Test/1.0 \n")]);
    assert_eq!(client.get_user_agent().result.unwrap(), "Mozilla/5.0 (X11) Test/1.0");
    assert_eq!(emulator.method_requests("getUserAgent"), 2);
    // No other method was called: no key went anywhere.
    assert_eq!(emulator.method_requests("getBalance") + emulator.method_requests("createTask"), 0);
}

#[test]
fn answers_that_are_not_a_user_agent_are_bad_responses() {
    let emulator = emulator();
    let client = ua_client(&emulator, "ua-bad");
    let cases = [
        ("an HTML page", Step::raw_with_type(200, "<!DOCTYPE html><html><body>Cloudflare</body></html>", "text/html")),
        ("an empty body", Step::raw(200, "")),
        ("white space only", Step::raw(200, " \r\n")),
        ("over 1 KiB", Step::raw(200, &format!("Mozilla/5.0 {}", "x".repeat(1024)))),
        ("oversized", Step::oversize(4 * 1024 * 1024)),
        ("JSON", Step::raw(200, r#"{"errorId":1,"errorCode":"ERROR_KEY_DOES_NOT_EXIST"}"#)),
        ("two lines", Step::raw(200, "Mozilla/5.0 A\nMozilla/5.0 B")),
    ];
    for (what, step) in cases {
        emulator.script_method("getUserAgent", vec![step]);
        let report = client.get_user_agent();
        let error = report.result.unwrap_err();
        assert_eq!(error.code, Code::BadResponse, "{what}: {error}");
        assert!(error.message.starts_with("getUserAgent"), "{what}: {}", error.message);
    }
    // A status other than 2xx is the status, as for every call.
    emulator.script_method("getUserAgent", vec![Step::raw(503, "busy")]);
    let report = client.get_user_agent();
    assert_eq!(report.result.unwrap_err().code, Code::HttpStatus);
    assert_eq!(report.http_status, Some(503));
    // Exactly 1024 bytes is still taken.
    let longest = format!("Mozilla/5.0 {}", "y".repeat(1024 - 12));
    emulator.script_method("getUserAgent", vec![Step::raw(200, &longest)]);
    assert_eq!(client.get_user_agent().result.unwrap(), longest);
}

#[test]
fn a_cancel_ends_it_in_flight_and_the_deadline_bounds_it() {
    let emulator = emulator();
    emulator.script_method("getUserAgent", vec![Step::stall(20_000)]);
    let client = ua_client(&emulator, "ua-cancel");
    let cancel = Arc::new(Cancel::new());
    let (error, took) = std::thread::scope(|scope| {
        let call = {
            let cancel = Arc::clone(&cancel);
            let client = &client;
            scope.spawn(move || client.get_user_agent_with(&CallOptions { timeout: None, cancel: Some(cancel) }))
        };
        let start = Instant::now();
        while emulator.method_requests("getUserAgent") == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "the request never arrived");
            std::thread::sleep(Duration::from_millis(2));
        }
        let triggered = Instant::now();
        cancel.trigger();
        let report = call.join().unwrap();
        (report.result.unwrap_err(), triggered.elapsed())
    });
    assert_eq!(error.code, Code::Cancelled, "{error}");
    assert!(error.message.contains("getUserAgent"), "{}", error.message);
    assert!(took < Duration::from_millis(1500), "{took:?}");

    let start = Instant::now();
    let options = CallOptions { timeout: Some(Duration::from_millis(300)), cancel: None };
    let error = client.get_user_agent_with(&options).result.unwrap_err();
    assert_eq!(error.code, Code::Timeout, "{error}");
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
}

#[test]
fn through_http_and_socks_proxies() {
    let emulator = emulator();
    let http = tinyproxy(&scratch_dir("tinyproxy-ua"), Some(("ua-user", "ua-proxy-pass")));
    let socks = microsocks(None);
    for proxy in
        [format!("http://ua-user:ua-proxy-pass@127.0.0.1:{}", http.port), format!("socks5://127.0.0.1:{}", socks.port)]
    {
        let client = ua_client(&emulator, "ua-proxy");
        client.set_proxy(Some(&proxy)).unwrap();
        assert_eq!(client.get_user_agent().result.unwrap(), EMULATOR_USER_AGENT, "{proxy}");
    }
    assert_eq!(emulator.method_requests("getUserAgent"), 2);
    // A proxy that refuses: a network error naming it, without its password.
    let client = ua_client(&emulator, "ua-proxy-bad");
    client.set_proxy(Some(&format!("http://ua-user:wrong-ua-pass@127.0.0.1:{}", http.port))).unwrap();
    let error = client.get_user_agent().result.unwrap_err();
    assert_eq!(error.code, Code::Network, "{error}");
    assert!(!error.message.contains("wrong-ua-pass"), "{}", error.message);
}

#[test]
fn the_url_follows_the_base_url_rules() {
    let client = Client::new("ua-url").unwrap();
    for bad in [
        "",
        "ftp://example.com/ua",
        "http://example.com/useragent",
        "https://a@example.com/ua",
        "https://example.com/ua?x=1",
    ] {
        let error = client.set_user_agent_url(bad).unwrap_err();
        assert_eq!(error.code, Code::InvalidArgument, "{bad}");
        assert!(error.message.contains("user_agent_url"), "{bad}: {}", error.message);
    }
    client.set_user_agent_url("https://capmonster.cloud/api/useragent/actual").unwrap();
    client.set_user_agent_url("http://127.0.0.1:1/useragent").unwrap();
}

#[test]
fn through_the_c_abi() {
    let emulator = emulator();
    let key = CString::new("ua-c-abi").unwrap();
    let url = CString::new(format!("{}/useragent", emulator.url())).unwrap();
    unsafe {
        let mut client = ptr::null_mut();
        assert_eq!(cm_client_new(key.as_ptr(), &mut client, ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_proxy(client, ptr::null(), ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_user_agent_url(client, url.as_ptr(), ptr::null_mut()), CM_OK);
        let mut result = ptr::null_mut();
        assert_eq!(
            cm_client_set_user_agent_url(client, c"http://example.com/ua".as_ptr(), &mut result),
            CM_ERR_INVALID_ARGUMENT
        );
        assert!(CStr::from_ptr(cm_result_message(result)).to_str().unwrap().contains("user_agent_url"));
        cm_result_free(result);

        assert_eq!(cm_get_user_agent(client, &mut result), CM_OK);
        assert_eq!(CStr::from_ptr(cm_result_text(result)).to_str().unwrap(), EMULATOR_USER_AGENT);
        assert_eq!(cm_result_request_count(result), 1);
        assert_eq!(cm_result_http_status(result), 200);
        assert!(cm_result_solution_json(result).is_null());
        cm_result_free(result);

        emulator.script_method("getUserAgent", vec![Step::raw_with_type(200, "<html></html>", "text/html")]);
        assert_eq!(cm_get_user_agent_with(client, ptr::null(), &mut result), CM_ERR_BAD_RESPONSE);
        assert!(cm_result_text(result).is_null());
        cm_result_free(result);

        assert_eq!(cm_get_user_agent(client, ptr::null_mut()), CM_ERR_INVALID_ARGUMENT);
        assert_eq!(cm_get_user_agent(ptr::null(), &mut result), CM_ERR_INVALID_ARGUMENT);
        cm_result_free(result);
        assert!(cm_result_text(ptr::null()).is_null());
        cm_client_free(client);
    }
}
