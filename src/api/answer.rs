//! Classifying one answer of the service: HTTP status + body bytes -> value or [`Error`](crate::api::error::Error).
//!
//! Pure and free of I/O, so every rule of the contract is tested here directly and the
//! classifier can be fuzzed. The rules, in order:
//! 1. A JSON object with `errorId != 0` is the service's error, whatever the HTTP status
//!    (402, 403, 429 and 5xx come with such bodies): `CM_ERR_API`. `CAPTCHA_NOT_READY`
//!    is not a failure: it means "processing" (also with `errorId` 1). Every other code is
//!    passed through as the service spelled it (`WRONG_CAPTCHA_ID` too: the glossary says
//!    which codes are one error).
//! 2. Any other non-2xx answer: `CM_ERR_HTTP_STATUS`.
//! 3. A 2xx answer that is not a JSON object, or lacks what the method promises: `CM_ERR_BAD_RESPONSE`.
//!
//! Unknown fields are ignored. A body that is not UTF-8 is not JSON (RFC 8259 §8.1), even when
//! the bad bytes sit in a field this library skips. Nesting costs no recursion: unknown fields
//! are skipped and the solution is captured as text, so the work stays linear in the body,
//! which the transport caps at 1 MiB.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Number;

use crate::api::error::{Code, Error};
use crate::api::text::truncate;

/// The state of a task, from one getTaskResult answer.
#[derive(Debug)]
pub enum TaskState {
    Processing,
    /// The `solution` object exactly as the service sent it.
    Ready(Box<RawValue>),
}

/// The fields of every answer this library reads. Borrowed where it can, so a
/// "processing" answer is classified without allocating.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "errorId", default)]
    error_id: Option<Number>,
    #[serde(rename = "errorCode", default)]
    error_code: Option<String>,
    #[serde(rename = "errorDescription", default)]
    error_description: Option<String>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    solution: Option<&'a RawValue>,
    #[serde(rename = "taskId", default)]
    task_id: Option<Number>,
    #[serde(default)]
    balance: Option<Number>,
}

fn is_success(http_status: u16) -> bool {
    (200..300).contains(&http_status)
}

fn is_zero(number: &Number) -> bool {
    number.as_u64() == Some(0) || number.as_i64() == Some(0) || number.as_f64() == Some(0.0)
}

/// Rules 1 and 2: parse the envelope and turn service errors and bad statuses into errors.
fn open_envelope(http_status: u16, body: &[u8]) -> Result<Envelope<'_>, Error> {
    // serde_json checks UTF-8 only in the strings it reads, so the whole body is checked first.
    let parsed = match std::str::from_utf8(body) {
        Err(e) => Err(format!("not UTF-8 (at byte {})", e.valid_up_to())),
        Ok(text) if text.trim_start().starts_with('{') => {
            serde_json::from_str::<Envelope>(text).map_err(|e| e.to_string())
        }
        Ok(_) => Err("not a JSON object".to_owned()),
    };
    let envelope = match parsed {
        Ok(envelope) => envelope,
        Err(_) if !is_success(http_status) => return Err(http_status_error(http_status)),
        Err(reason) => {
            return Err(Error::bad_response(format!(
                "the service's answer (HTTP {http_status}, {} bytes) is not a JSON object: {reason}",
                body.len()
            )))
        }
    };
    // A missing errorId is read as 0 unless an errorCode says otherwise.
    let failed = match &envelope.error_id {
        Some(id) => !is_zero(id),
        None => envelope.error_code.as_deref().is_some_and(|code| !code.is_empty()),
    };
    if failed {
        let code = envelope.error_code.clone().filter(|code| !code.is_empty());
        return Err(Error::api(code, envelope.error_description.clone(), http_status));
    }
    if !is_success(http_status) {
        return Err(http_status_error(http_status));
    }
    Ok(envelope)
}

fn http_status_error(http_status: u16) -> Error {
    let mut error =
        Error::new(Code::HttpStatus, format!("the service answered HTTP {http_status} without an API error body"));
    error.http_status = Some(http_status);
    error
}

/// The errorCode that means "not solved yet", not a failure.
pub const CAPTCHA_NOT_READY: &str = "CAPTCHA_NOT_READY";

/// Classifies a getTaskResult answer.
pub fn classify_task_result(http_status: u16, body: &[u8]) -> Result<TaskState, Error> {
    let envelope = match open_envelope(http_status, body) {
        Ok(envelope) => envelope,
        Err(error) if error.api_code() == Some(CAPTCHA_NOT_READY) => return Ok(TaskState::Processing),
        Err(error) => return Err(error),
    };
    match envelope.status.as_deref() {
        Some("processing") => Ok(TaskState::Processing),
        Some("ready") => match envelope.solution {
            Some(solution) if solution.get().starts_with('{') => Ok(TaskState::Ready(solution.to_owned())),
            Some(_) => Err(Error::bad_response("the service said ready but its solution is not a JSON object")),
            None => Err(Error::bad_response("the service said ready but sent no solution")),
        },
        Some(other) => Err(Error::bad_response(format!(
            "the service answered status {:?}, expected \"processing\" or \"ready\"",
            truncate(other, 64)
        ))),
        None => Err(Error::bad_response("the service's answer has no status")),
    }
}

/// The longest getUserAgent answer taken, in bytes: a User-Agent is some 150 bytes; more is
/// not one (an error page, a proxy's answer).
pub const MAX_USER_AGENT_BYTES: usize = 1024;

/// Classifies a getUserAgent answer, plain text: the User-Agent, without surrounding white
/// space. Not 2xx: `CM_ERR_HTTP_STATUS`. Empty, longer than [`MAX_USER_AGENT_BYTES`], not
/// UTF-8, an HTML page or JSON, or more than one line: `CM_ERR_BAD_RESPONSE`.
pub fn classify_user_agent(http_status: u16, body: &[u8]) -> Result<String, Error> {
    if !is_success(http_status) {
        return Err(http_status_error(http_status));
    }
    let bad = |why: &str| Error::bad_response(format!("getUserAgent: the answer ({} bytes) {why}", body.len()));
    if body.len() > MAX_USER_AGENT_BYTES {
        return Err(bad(&format!("is longer than {MAX_USER_AGENT_BYTES} bytes: not a User-Agent")));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("is not UTF-8 text"))?.trim();
    if text.is_empty() {
        return Err(bad("is empty"));
    }
    if text.starts_with('<') {
        return Err(bad("is an HTML page, not a User-Agent"));
    }
    if text.starts_with('{') || text.starts_with('[') {
        return Err(bad("is JSON, not a User-Agent"));
    }
    if text.chars().any(char::is_control) {
        return Err(bad("holds control characters or line breaks: not one User-Agent"));
    }
    Ok(text.to_owned())
}

/// Classifies a createTask answer: the new task's id.
pub fn classify_create_task(http_status: u16, body: &[u8]) -> Result<i64, Error> {
    let envelope = open_envelope(http_status, body)?;
    match envelope.task_id.as_ref().and_then(Number::as_i64) {
        Some(id) if id > 0 => Ok(id),
        Some(id) => Err(Error::bad_response(format!("the service answered taskId {id}, expected a positive id"))),
        None => Err(Error::bad_response("the service's answer has no taskId that fits a 64-bit integer")),
    }
}

/// Classifies a getBalance answer: the balance in US dollars.
pub fn classify_balance(http_status: u16, body: &[u8]) -> Result<f64, Error> {
    let envelope = open_envelope(http_status, body)?;
    match envelope.balance.as_ref().and_then(Number::as_f64) {
        Some(balance) if balance.is_finite() => Ok(balance),
        _ => Err(Error::bad_response("the service's answer has no numeric balance")),
    }
}

/// Classifies a reportIncorrect*Captcha answer: `{"errorId":0,"status":"success"}`.
pub fn classify_report(http_status: u16, body: &[u8]) -> Result<(), Error> {
    let envelope = open_envelope(http_status, body)?;
    match envelope.status.as_deref() {
        Some("success") => Ok(()),
        Some(other) => Err(Error::bad_response(format!(
            "the service answered status {:?}, expected \"success\"",
            truncate(other, 64)
        ))),
        None => Err(Error::bad_response("the service's answer has no status")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(body: &str) -> String {
        match classify_task_result(200, body.as_bytes()) {
            Ok(TaskState::Ready(solution)) => solution.get().to_owned(),
            other => panic!("expected ready, got {other:?}"),
        }
    }

    fn failure(status: u16, body: &str) -> Error {
        classify_task_result(status, body.as_bytes()).expect_err("expected an error")
    }

    #[test]
    fn processing_forms() {
        for body in [
            r#"{"errorCode":null,"errorDescription":null,"errorId":0,"status":"processing"}"#,
            r#"{"errorId":0,"status":"processing","cost":0,"extra":[1,{"a":null}]}"#,
            r#"{"errorId":1,"errorCode":"CAPTCHA_NOT_READY","errorDescription":"later"}"#,
            r#"  {"status":"processing"}"#,
        ] {
            assert!(matches!(classify_task_result(200, body.as_bytes()), Ok(TaskState::Processing)), "{body}");
        }
    }

    #[test]
    fn ready_keeps_the_solution_text_verbatim() {
        let body = r#"{"errorId":0,"status":"ready","solution":{"answer":[{"X":49.894734680000006}],"s":"\u00e9"},"cost":0.0002}"#;
        assert_eq!(ready(body), r#"{"answer":[{"X":49.894734680000006}],"s":"\u00e9"}"#);
    }

    #[test]
    fn api_error_decides_over_http_status() {
        for status in [200, 400, 402, 403, 429, 500, 503] {
            let error =
                failure(status, r#"{"errorId":1,"errorCode":"ERROR_ZERO_BALANCE","errorDescription":"no funds"}"#);
            assert_eq!(error.code, Code::Api);
            assert_eq!(error.api_code(), Some("ERROR_ZERO_BALANCE"));
            assert_eq!(error.api.as_ref().unwrap().description.as_deref(), Some("no funds"));
            assert_eq!(error.http_status, Some(status));
            assert!(error.message.contains("ERROR_ZERO_BALANCE"), "{}", error.message);
        }
    }

    #[test]
    fn non_success_without_api_body_is_http_status() {
        for (status, body) in [(502, "<html>bad gateway</html>"), (503, ""), (404, r#"{"errorId":0}"#), (301, "")] {
            let error = failure(status, body);
            assert_eq!(error.code, Code::HttpStatus, "{status} {body}");
            assert_eq!(error.http_status, Some(status));
        }
    }

    #[test]
    fn bad_responses() {
        for body in [
            "",
            "not json",
            "[]",
            "null",
            r#"{"errorId":0,"status":"ready"}"#,
            r#"{"errorId":0,"status":"ready","solution":null}"#,
            r#"{"errorId":0,"status":"ready","solution":"text"}"#,
            r#"{"errorId":0,"status":"done"}"#,
            r#"{"errorId":0}"#,
            r#"{"errorId":0,"status":"processing""#,
            r#"{"errorId":0,"status":"processing","errorId":0}"#,
            r#"{"errorId":1e999,"status":"processing"}"#,
        ] {
            assert_eq!(failure(200, body).code, Code::BadResponse, "{body}");
        }
    }

    #[test]
    fn deep_nesting_is_a_bad_response_not_a_stack_overflow() {
        let body =
            format!(r#"{{"errorId":0,"status":"ready","solution":{}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(failure(200, &body).code, Code::BadResponse);
    }

    #[test]
    fn error_id_other_than_zero_or_one_is_an_error_and_missing_code_is_allowed() {
        let error = failure(200, r#"{"errorId":7}"#);
        assert_eq!(error.code, Code::Api);
        assert_eq!(error.api_code(), None);
        assert_eq!(failure(200, r#"{"errorId":-1,"errorCode":""}"#).code, Code::Api);
        assert_eq!(failure(200, r#"{"errorCode":"ERROR_IP_BANNED"}"#).api_code(), Some("ERROR_IP_BANNED"));
    }

    #[test]
    fn create_task_and_balance() {
        assert_eq!(classify_create_task(200, br#"{"errorId":0,"taskId":7654321}"#).unwrap(), 7654321);
        assert_eq!(classify_create_task(200, br#"{"errorId":0,"taskId":0}"#).unwrap_err().code, Code::BadResponse);
        assert_eq!(
            classify_create_task(200, br#"{"errorId":0,"taskId":99999999999999999999}"#).unwrap_err().code,
            Code::BadResponse
        );
        let error = classify_create_task(200, br#"{"errorId":1,"errorCode":"ERROR_KEY_DOES_NOT_EXIST","taskId":0}"#)
            .unwrap_err();
        assert_eq!(error.api_code(), Some("ERROR_KEY_DOES_NOT_EXIST"));
        assert_eq!(classify_balance(200, br#"{"errorId":0,"balance":345.678}"#).unwrap(), 345.678);
        assert_eq!(classify_balance(200, br#"{"errorId":0,"balance":"1"}"#).unwrap_err().code, Code::BadResponse);
    }

    #[test]
    fn reports() {
        classify_report(200, br#"{"errorId":0,"status":"success"}"#).unwrap();
        for (status, body, code) in [
            (200, &br#"{"errorId":0,"status":"failed"}"#[..], Code::BadResponse),
            (200, br#"{"errorId":0}"#, Code::BadResponse),
            (200, br#"{"errorId":1,"errorCode":"ERROR_NO_SUCH_CAPCHA_ID"}"#, Code::Api),
            (500, b"oops", Code::HttpStatus),
        ] {
            assert_eq!(classify_report(status, body).unwrap_err().code, code, "{}", String::from_utf8_lossy(body));
        }
    }

    /// Every response example of the service's documentation classifies as its shape says.
    #[test]
    fn user_agent_answers() {
        let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0";
        assert_eq!(classify_user_agent(200, ua.as_bytes()).unwrap(), ua);
        assert_eq!(classify_user_agent(200, format!("\r\n {ua}\n").as_bytes()).unwrap(), ua);
        assert_eq!(classify_user_agent(204, b"x").unwrap(), "x");
        let longest = "a".repeat(MAX_USER_AGENT_BYTES);
        assert_eq!(classify_user_agent(200, longest.as_bytes()).unwrap(), longest);
        for (body, says) in [
            (&b""[..], "is empty"),
            (b" \t\r\n", "is empty"),
            (b"<html><body>blocked</body></html>", "HTML"),
            (b"  <!DOCTYPE html>", "HTML"),
            (b"{\"errorId\":0}", "JSON"),
            (b"[\"x\"]", "JSON"),
            (b"Mozilla/5.0\nMozilla/5.0", "line breaks"),
            (b"Mozilla\x005.0", "control"),
            (b"Mozilla/5.0 \xff", "UTF-8"),
        ] {
            let error = classify_user_agent(200, body).unwrap_err();
            assert_eq!(error.code, Code::BadResponse, "{body:?}");
            assert!(error.message.contains(says), "{body:?}: {}", error.message);
        }
        let over = "a".repeat(MAX_USER_AGENT_BYTES + 1);
        assert!(classify_user_agent(200, over.as_bytes()).unwrap_err().message.contains("longer than 1024"));
        let error = classify_user_agent(502, b"<html>gateway</html>").unwrap_err();
        assert_eq!((error.code, error.http_status), (Code::HttpStatus, Some(502)));
    }

    #[test]
    fn every_docs_example() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/capmonster-docs-examples.json"
        ))
        .expect("tests/fixtures/capmonster-docs-examples.json");
        let fixtures: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut checked = 0;
        for page in fixtures["pages"].as_array().unwrap() {
            for example in page["responses"].as_array().unwrap() {
                let body = serde_json::to_vec(example).unwrap();
                let error_id = example.get("errorId").and_then(|v| v.as_i64()).unwrap_or(0);
                if error_id != 0 {
                    let error = classify_task_result(200, &body).unwrap_err();
                    assert_eq!(error.code, Code::Api);
                    assert_eq!(error.api_code(), example["errorCode"].as_str());
                } else if example.get("status").and_then(|s| s.as_str()) == Some("ready") {
                    assert!(matches!(classify_task_result(200, &body), Ok(TaskState::Ready(_))));
                } else if example.get("status").and_then(|s| s.as_str()) == Some("processing") {
                    assert!(matches!(classify_task_result(200, &body), Ok(TaskState::Processing)));
                } else if example.get("taskId").is_some() {
                    assert!(classify_create_task(200, &body).unwrap() > 0);
                } else if example.get("balance").is_some() {
                    assert!(classify_balance(200, &body).is_ok());
                } else if example.get("status").and_then(|s| s.as_str()) == Some("success") {
                    classify_report(200, &body).unwrap();
                } else {
                    continue;
                }
                checked += 1;
            }
        }
        assert!(checked >= 60, "only {checked} examples checked");
    }
}
