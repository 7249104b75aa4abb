//! `cm_wait_options_for_task` against the official Python SDK's own table, row by row, and
//! the emulator taking and solving each row's task.
//!
//! The table below is transcribed from the package capmonstercloudclient 4.3.1 on PyPI, not
//! from this library: the request classes and the order it tries them come from
//! `capmonstercloudclient/CapMonsterCloudClient.py` lines 16-45 (`_instance_config`), the
//! type and class each request class sends from `capmonstercloudclient/requests/*.py` (their
//! `type`/`taskType` and `captchaClass` defaults), and the times from
//! `capmonstercloudclient/GetResultTimeouts.py` lines 11-87 (`GetResultTimeouts(
//! firstRequestDelay, firstRequestNoCacheDelay, requestsInterval, timeout)`, in seconds).

mod common;

use std::ffi::CString;
use std::ptr;

use capmonster::api::schedule::{self, TaskHead};
use capmonster::wait::wait;
use capmonster::TaskState;
use common::*;
use serde_json::json;

use capmonster::ffi::library::{CM_ERR_INVALID_ARGUMENT, CM_OK};
use capmonster::ffi::wait::{
    cm_wait_options, cm_wait_options_for_task, cm_wait_options_for_task_type, cm_wait_options_init,
};

/// One request class of the SDK: the type and class it sends, its timeouts function's values
/// (first delay, first delay with nocache, interval, timeout; seconds).
struct SdkRow {
    request_class: &'static str,
    task_type: &'static str,
    class: Option<&'static str>,
    times: (f64, f64, f64, f64),
}

const fn sdk(
    request_class: &'static str,
    task_type: &'static str,
    class: Option<&'static str>,
    times: (f64, f64, f64, f64),
) -> SdkRow {
    SdkRow { request_class, task_type, class, times }
}

/// `_instance_config`, row for row, each with the values of the function it names.
const SDK_TABLE: &[SdkRow] = &[
    sdk("RecaptchaV2Request", "RecaptchaV2Task", None, (1.0, 10.0, 3.0, 180.0)), // getRecaptchaV2Timeouts
    sdk("RecaptchaV2EnterpriseRequest", "RecaptchaV2EnterpriseTask", None, (1.0, 10.0, 3.0, 180.0)), // getRecaptchaV2EnterpriseTimeouts
    sdk("RecaptchaV3ProxylessRequest", "RecaptchaV3TaskProxyless", None, (1.0, 10.0, 3.0, 180.0)), // getRecaptchaV3Timeouts
    sdk("RecaptchaV3EnterpriseRequest", "RecaptchaV3EnterpriseTask", None, (1.0, 10.0, 3.0, 180.0)), // getRecaptchaV3Timeouts (sic)
    sdk("ImageToTextRequest", "ImageToTextTask", None, (0.35, 0.0, 0.2, 10.0)), // getImage2TextTimeouts
    sdk("FuncaptchaRequest", "FunCaptchaTask", None, (1.0, 10.0, 1.0, 80.0)),   // getFuncaptchaTimeouts
    sdk("HcaptchaRequest", "HCaptchaTask", None, (1.0, 10.0, 3.0, 180.0)),      // getHcaptchaTimeouts
    sdk("GeetestRequest", "GeeTestTask", None, (1.0, 0.0, 1.0, 80.0)),          // getGeetestTimeouts
    sdk("TurnstileRequest", "TurnstileTask", None, (1.0, 0.0, 1.0, 80.0)),      // getTurnstileTimeouts
    sdk("RecaptchaComplexImageTaskRequest", "ComplexImageTask", Some("recaptcha"), (0.35, 0.0, 0.2, 10.0)), // getImage2TextTimeouts
    sdk("HcaptchaComplexImageTaskRequest", "ComplexImageTask", Some("hcaptcha"), (0.35, 0.0, 0.2, 10.0)), // getImage2TextTimeouts
    sdk("FunCaptchaComplexImageTaskRequest", "ComplexImageTask", Some("funcaptcha"), (0.35, 0.0, 0.2, 10.0)), // getImage2TextTimeouts
    sdk("DataDomeCustomTaskRequest", "CustomTask", Some("DataDome"), (1.0, 0.0, 3.0, 180.0)), // getDatadomeTimeouts
    sdk("TenDiCustomTaskRequest", "CustomTask", Some("TenDI"), (1.0, 10.0, 3.0, 180.0)),      // getTenDiTimeouts
    sdk("BasiliskCustomTaskRequest", "CustomTask", Some("Basilisk"), (1.0, 10.0, 3.0, 100.0)), // getBasiliskTimeouts
    sdk("AmazonWafRequest", "AmazonTask", None, (1.0, 10.0, 3.0, 180.0)),                     // getAmazonWafTimeouts
    sdk("BinanceTaskRequest", "BinanceTask", None, (1.0, 0.0, 1.0, 20.0)),                    // getBinanceTimeouts
    sdk("ImpervaCustomTaskRequest", "CustomTask", Some("Imperva"), (1.0, 0.0, 1.0, 15.0)),    // getImpervaTimeouts
    sdk("RecognitionComplexImageTaskRequest", "ComplexImageTask", Some("recognition"), (0.35, 0.0, 0.2, 10.0)), // getCITTimeouts
    sdk("MTCaptchaRequest", "MTCaptchaTask", None, (1.0, 10.0, 3.0, 180.0)), // getMTCaptchaTimeouts
    sdk("YidunRequest", "YidunTask", None, (1.0, 10.0, 3.0, 180.0)),         // getYidunTimeouts
    sdk("TemuCustomTaskRequest", "CustomTask", Some("Temu"), (1.0, 10.0, 3.0, 180.0)), // getTemuTimeouts
    sdk("ProsopoTaskRequest", "ProsopoTask", None, (1.0, 10.0, 3.0, 180.0)), // getProsopoTimeouts
    sdk("AltchaCustomTaskRequest", "CustomTask", Some("altcha"), (1.0, 0.0, 1.0, 50.0)), // getAltchaTimeouts
    sdk("CastleCustomTaskRequest", "CustomTask", Some("Castle"), (1.0, 0.0, 1.0, 60.0)), // getCastleTimeouts
    sdk("TspdCustomTaskRequest", "CustomTask", Some("tspd"), (1.0, 0.0, 1.0, 60.0)), // getTspdTimeouts
    sdk("HuntCustomTaskRequest", "CustomTask", Some("HUNT"), (1.0, 0.0, 3.0, 180.0)), // getHuntTimeouts
    sdk("AlibabaCustomTaskRequest", "CustomTask", Some("alibaba"), (1.0, 0.0, 3.0, 120.0)), // getAlibabaTimeouts
    sdk("FriendlyCustomTaskRequest", "CustomTask", Some("friendly"), (1.0, 0.0, 3.0, 180.0)), // getFriendlyTimeouts
];

fn ms(seconds: f64) -> u32 {
    (seconds * 1000.0).round() as u32
}

/// `cm_wait_options_for_task` for `task_json`: its code and the options it filled (or left).
fn for_task(task_json: &str) -> (i32, cm_wait_options) {
    let json = CString::new(task_json).unwrap();
    let mut options = sentinel();
    let code = unsafe { cm_wait_options_for_task(&mut options, json.as_ptr()) };
    (code, options)
}

/// Options no function fills: what a refused call must leave.
fn sentinel() -> cm_wait_options {
    cm_wait_options { first_delay_ms: 7, interval_ms: 7, timeout_ms: 7, max_requests: 7, cancel: ptr::null() }
}

fn times(options: &cm_wait_options) -> (u32, u32, u32, u32) {
    (options.first_delay_ms, options.interval_ms, options.timeout_ms, options.max_requests)
}

/// The task a request class sends: its type and class, a body member or two, and `nocache`.
fn task_json(row: &SdkRow, nocache: bool) -> String {
    let class = row.class.map_or(String::new(), |class| format!(",\"class\":\"{class}\""));
    let nocache = if nocache { ",\"nocache\":true" } else { "" };
    format!("{{\"type\":\"{}\"{class},\"websiteURL\":\"https://example.com\"{nocache}}}", row.task_type)
}

#[test]
fn every_row_of_the_official_python_sdk() {
    assert_eq!(SDK_TABLE.len(), 29, "_instance_config has 27 entries, one of them for 3 request classes");
    for row in SDK_TABLE {
        let (first, first_nocache, interval, timeout) = row.times;
        let (code, options) = for_task(&task_json(row, false));
        assert_eq!(code, CM_OK, "{}", row.request_class);
        assert_eq!(times(&options), (ms(first), ms(interval), ms(timeout), 120), "{}", row.request_class);
        assert!(options.cancel.is_null());

        // With nocache, the .NET client's rule on the same table: the nocache delay when the row has one.
        let (code, options) = for_task(&task_json(row, true));
        assert_eq!(code, CM_OK, "{} nocache", row.request_class);
        let first = if first_nocache > 0.0 { first_nocache } else { first };
        assert_eq!(times(&options), (ms(first), ms(interval), ms(timeout), 120), "{} nocache", row.request_class);
    }
}

#[test]
fn types_alone_agree_with_the_sdk_rows_without_a_class() {
    for row in SDK_TABLE.iter().filter(|row| row.class.is_none()) {
        let (first, _, interval, timeout) = row.times;
        let name = CString::new(row.task_type).unwrap();
        let mut options = sentinel();
        assert_eq!(unsafe { cm_wait_options_for_task_type(&mut options, name.as_ptr()) }, CM_OK);
        assert_eq!(times(&options), (ms(first), ms(interval), ms(timeout), 120), "{}", row.task_type);
    }
}

#[test]
fn nocache_waits_ten_seconds_for_recaptcha_and_hcaptcha_only_when_true() {
    for task_type in
        ["RecaptchaV2Task", "RecaptchaV2TaskProxyless", "RecaptchaV2EnterpriseTask", "HCaptchaTaskProxyless"]
    {
        let (_, options) = for_task(&format!("{{\"type\":\"{task_type}\",\"nocache\":true}}"));
        assert_eq!(times(&options), (10_000, 3000, 180_000, 120), "{task_type}");
        for not_true in ["false", "null", "\"true\"", "1", "{}"] {
            let (_, options) = for_task(&format!("{{\"type\":\"{task_type}\",\"nocache\":{not_true}}}"));
            assert_eq!(options.first_delay_ms, 1000, "{task_type} nocache {not_true}");
        }
    }
    // Rows without a nocache delay keep their first delay.
    let (_, options) = for_task(r#"{"type":"ImageToTextTask","body":"aGk=","nocache":true}"#);
    assert_eq!(times(&options), (350, 200, 10_000, 120));
    let (_, options) = for_task(r#"{"nocache":true,"class":"Imperva","type":"CustomTask"}"#);
    assert_eq!(times(&options), (1000, 1000, 15_000, 120));
}

#[test]
fn names_are_matched_as_the_type_table_matches_them() {
    let imperva = times(&for_task(r#"{"type":"CustomTask","class":"Imperva"}"#).1);
    for same in [
        r#"{"type":"customtask","class":"IMPERVA"}"#,
        r#"{"type":"CustomTaskProxyless","class":"imperva"}"#,
        " \n{\"class\":\"Imperva\",\"metadata\":{\"class\":\"DataDome\"},\"type\":\"CustomTask\"}\n",
    ] {
        assert_eq!(times(&for_task(same).1), imperva, "{same}");
    }
    // A class counts only with its own type.
    let (_, options) = for_task(r#"{"type":"RecaptchaV2Task","class":"Imperva"}"#);
    assert_eq!(times(&options), (1000, 3000, 180_000, 120));
}

#[test]
fn unknown_classes_get_their_types_schedule_and_unknown_types_the_defaults() {
    let mut defaults = sentinel();
    unsafe { cm_wait_options_init(&mut defaults) };
    for (task, expected) in [
        (r#"{"type":"CustomTask"}"#, (1000, 3000, 180_000, 120)),
        (r#"{"type":"CustomTask","class":"NoSuchClass"}"#, (1000, 3000, 180_000, 120)),
        (r#"{"type":"CustomTask","class":7}"#, (1000, 3000, 180_000, 120)),
        (r#"{"type":"ComplexImageTask","class":"NoSuchClass"}"#, (350, 200, 10_000, 120)),
        (r#"{"type":"NoSuchTask","class":"Imperva","nocache":true}"#, times(&defaults)),
        (r#"{"type":"é"}"#, times(&defaults)),
    ] {
        let (code, options) = for_task(task);
        assert_eq!(code, CM_OK, "{task}");
        assert_eq!(times(&options), expected, "{task}");
    }
}

#[test]
fn what_is_not_a_task_is_refused_and_the_options_left_as_they_were() {
    for bad in
        ["", "[]", "null", "\"CustomTask\"", "{", "{\"type\":\"\"}", "{\"type\":7}", "{\"class\":\"Imperva\"}", "{} x"]
    {
        let (code, options) = for_task(bad);
        assert_eq!(code, CM_ERR_INVALID_ARGUMENT, "{bad:?}");
        assert_eq!(times(&options), times(&sentinel()), "{bad:?}");
    }
    let json = CString::new("{\"type\":\"ImageToTextTask\"}").unwrap();
    let mut options = sentinel();
    unsafe {
        assert_eq!(cm_wait_options_for_task(ptr::null_mut(), json.as_ptr()), CM_ERR_INVALID_ARGUMENT);
        assert_eq!(cm_wait_options_for_task(&mut options, ptr::null()), CM_ERR_INVALID_ARGUMENT);
        assert_eq!(cm_wait_options_for_task(&mut options, c"{\"type\":\"\xff\"}".as_ptr()), CM_ERR_INVALID_ARGUMENT);
    }
    assert_eq!(times(&options), times(&sentinel()));
}

/// The emulator takes every task of the table as the official client creates it (nocache
/// included), and solves each with its class's shape.
#[test]
fn the_emulator_solves_every_row_with_nocache() {
    let emulator = emulator();
    let client = client(&emulator, "schedules-emulator");
    for row in SDK_TABLE {
        let mut task = json!({"type": row.task_type, "websiteURL": "https://example.com", "websiteKey": "k",
            "body": "aGVsbG8gd29ybGQ=", "nocache": true, "emulatorSolveAfterMs": 0});
        if let Some(class) = row.class {
            task["class"] = json!(class);
        }
        let task = task.to_string();
        let id = client.create_task(&task, None).result.unwrap_or_else(|e| panic!("{}: {e}", row.request_class));
        // The row's own schedule, with the delays cut short for the test.
        let schedule = schedule::for_task(&TaskHead::parse(&task).unwrap());
        let quick = capmonster::Schedule {
            first_delay: Default::default(),
            interval: std::time::Duration::from_millis(10),
            ..schedule
        };
        let report = wait(&client, id, &quick, None);
        assert!(matches!(report.result, Ok(TaskState::Ready(_))), "{}: {:?}", row.request_class, report.result);
    }
}
