//! Scripted answers: the [`Step`] type, its Rust constructors and its JSON forms.
//!
//! A script is a list of steps for one key (a task id or an API method name). Each matching
//! request consumes the next step; the last step is sticky and repeats forever.
//!
//! The JSON forms (for `POST /_emulator/script` and `--script`) are listed in README.md;
//! [`Step::from_json`] rejects anything else with a message, unknown keys included.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Longest `delay_ms` / stall accepted, in milliseconds (10 minutes): long enough for any
/// client timeout test, short enough that a typo can't park a thread for days.
pub const MAX_PAUSE_MS: u64 = 600_000;

/// Largest `oversize` body accepted, in bytes (1 GiB). It is streamed, never buffered.
pub const MAX_OVERSIZE_BYTES: u64 = 1 << 30;

/// Smallest `oversize` body: the JSON frame around the padding, `{"errorId":0,"status":"processing","pad":""}`.
pub const MIN_OVERSIZE_BYTES: u64 = (OVERSIZE_PREFIX.len() + OVERSIZE_SUFFIX.len()) as u64;

/// Most steps in one script; later steps could never matter in a test anyway.
pub const MAX_STEPS: usize = 10_000;

pub(crate) const OVERSIZE_PREFIX: &str = r#"{"errorId":0,"status":"processing","pad":""#;
pub(crate) const OVERSIZE_SUFFIX: &str = r#""}"#;

/// Connection-level misbehaviour a step can inject instead of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Read the request, then close the connection without writing a byte.
    Close,
    /// Read the request, write nothing for this long, then close.
    Stall(Duration),
    /// Send headers announcing `Content-Length: 1000`, a short part of a JSON body, then close.
    Truncate,
    /// Answer 200 with a valid-looking JSON body of exactly this many bytes, streamed.
    Oversize(u64),
    /// Write bytes that are not HTTP (`SSH-2.0-garbage\r\n`), then close.
    Garbage,
}

/// What a step answers with (before its modifiers apply).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// 200 `{"errorCode":null,"errorDescription":null,"errorId":0,"status":"processing"}`.
    Processing,
    /// 200 ready answer carrying this solution plus the extra fields the service sends.
    Ready(Value),
    /// `{"errorId":1,"errorCode":..,"errorDescription":..}` (`taskId:0` added for createTask);
    /// a `None` description leaves the field out.
    ApiError { code: String, description: Option<String>, status: u16 },
    /// This JSON value as the body, verbatim.
    Json { status: u16, body: Value },
    /// This text as the body; content type defaults to `text/plain; charset=utf-8`.
    Raw { status: u16, body: String, content_type: Option<String> },
    /// A connection fault instead of an answer.
    Fault(Fault),
}

/// One scripted answer: an [`Action`] plus its modifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What to answer.
    pub action: Action,
    /// Sleep this long before answering (at most [`MAX_PAUSE_MS`]).
    pub delay: Duration,
    /// Answer normally while advertising keep-alive, then close the connection: the server
    /// closing an idle keep-alive connection under the client's feet.
    pub close_after: bool,
    /// Extra response headers (e.g. `Location` for a redirect), at most [`MAX_STEP_HEADERS`].
    pub headers: Vec<(String, String)>,
}

/// The most extra headers one step may add.
pub const MAX_STEP_HEADERS: usize = 16;

/// HTTP statuses a step may use. 1xx, 204 and 304 can't carry the body every step sends,
/// so steps stay within 200..=599 minus those two.
fn valid_status(status: u64) -> bool {
    (200..=599).contains(&status) && status != 204 && status != 304
}

/// A header name is an HTTP token; neither name nor value may break the head (no CR/LF).
fn valid_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !value.contains(['\r', '\n'])
}

/// Rust constructors clamp instead of failing: an out-of-range status becomes 500.
fn clamp_status(status: u16) -> u16 {
    if valid_status(u64::from(status)) {
        status
    } else {
        500
    }
}

impl Step {
    fn new(action: Action) -> Step {
        Step { action, delay: Duration::ZERO, close_after: false, headers: Vec::new() }
    }

    /// The docs' processing answer.
    pub fn processing() -> Step {
        Step::new(Action::Processing)
    }

    /// A ready answer with this solution object.
    pub fn ready(solution: Value) -> Step {
        Step::new(Action::Ready(solution))
    }

    /// An API error answer with this code, description and HTTP status (clamped to 200..=599).
    pub fn api_error(code: &str, description: &str, http_status: u16) -> Step {
        Step::new(Action::ApiError {
            code: code.to_owned(),
            description: Some(description.to_owned()),
            status: clamp_status(http_status),
        })
    }

    /// This JSON value as the body, with this HTTP status (clamped to 200..=599).
    pub fn json(status: u16, body: Value) -> Step {
        Step::new(Action::Json { status: clamp_status(status), body })
    }

    /// This text as a `text/plain` body, with this HTTP status (clamped to 200..=599).
    pub fn raw(status: u16, body: &str) -> Step {
        Step::new(Action::Raw { status: clamp_status(status), body: body.to_owned(), content_type: None })
    }

    /// This text as the body with this content type, e.g. an HTML error page from a proxy.
    pub fn raw_with_type(status: u16, body: &str, content_type: &str) -> Step {
        Step::new(Action::Raw {
            status: clamp_status(status),
            body: body.to_owned(),
            content_type: Some(content_type.to_owned()),
        })
    }

    /// Any fault.
    pub fn fault(fault: Fault) -> Step {
        let fault = match fault {
            Fault::Stall(d) => Fault::Stall(d.min(Duration::from_millis(MAX_PAUSE_MS))),
            Fault::Oversize(n) => Fault::Oversize(n.clamp(MIN_OVERSIZE_BYTES, MAX_OVERSIZE_BYTES)),
            other => other,
        };
        Step::new(Action::Fault(fault))
    }

    /// Close the connection without answering.
    pub fn close() -> Step {
        Step::fault(Fault::Close)
    }

    /// Write nothing for `ms` milliseconds (at most [`MAX_PAUSE_MS`]), then close.
    pub fn stall(ms: u64) -> Step {
        Step::fault(Fault::Stall(Duration::from_millis(ms)))
    }

    /// Headers promising 1000 bytes, a few bytes of body, then close.
    pub fn truncate() -> Step {
        Step::fault(Fault::Truncate)
    }

    /// A 200 JSON body of exactly `bytes` bytes, clamped to
    /// [`MIN_OVERSIZE_BYTES`]..=[`MAX_OVERSIZE_BYTES`].
    pub fn oversize(bytes: u64) -> Step {
        Step::fault(Fault::Oversize(bytes))
    }

    /// Non-HTTP bytes, then close.
    pub fn garbage() -> Step {
        Step::fault(Fault::Garbage)
    }

    /// Sleep `ms` milliseconds (at most [`MAX_PAUSE_MS`]) before answering.
    pub fn delay(mut self, ms: u64) -> Step {
        self.delay = Duration::from_millis(ms.min(MAX_PAUSE_MS));
        self
    }

    /// Answer normally (advertising keep-alive), then close the connection.
    pub fn close_after(mut self) -> Step {
        self.close_after = true;
        self
    }

    /// Adds a response header, e.g. `Location` on a 302; ignored when it would break the head
    /// or when the step already has [`MAX_STEP_HEADERS`].
    pub fn header(mut self, name: &str, value: &str) -> Step {
        if valid_header(name, value) && self.headers.len() < MAX_STEP_HEADERS {
            self.headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Parses one step from its JSON form; the error says what is wrong.
    pub fn from_json(value: &Value) -> Result<Step, String> {
        match value {
            Value::String(s) if s == "processing" => Ok(Step::processing()),
            Value::String(s) => Err(format!("unknown step \"{s}\" (the only string step is \"processing\")")),
            Value::Object(map) => parse_object(map),
            other => Err(format!("a step must be \"processing\" or an object, not {other}")),
        }
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Step, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Step::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// The keys that pick the step form; exactly one must be present.
const FORM_KEYS: [&str; 6] = ["processing", "ready", "error", "json", "raw", "fault"];

fn parse_object(map: &Map<String, Value>) -> Result<Step, String> {
    let forms: Vec<&str> = FORM_KEYS.iter().copied().filter(|k| map.contains_key(*k)).collect();
    let form = match forms.as_slice() {
        [one] => *one,
        [] => return Err(format!("a step object needs one of {FORM_KEYS:?}")),
        many => return Err(format!("a step object has more than one form: {many:?}")),
    };
    // Unknown keys are rejected so that a typo ("delayMs") fails loudly instead of being
    // silently ignored by a test that then passes for the wrong reason.
    let allowed: &[&str] = match form {
        "processing" => &[],
        "ready" => &[],
        "error" => &["description", "status"],
        "json" => &["status"],
        "raw" => &["status", "content_type"],
        _ => &["ms", "bytes"],
    };
    for key in map.keys() {
        let known = key == form
            || allowed.contains(&key.as_str())
            || key == "delay_ms"
            || key == "close_after"
            || key == "headers";
        if !known {
            return Err(format!("unknown key \"{key}\" in a \"{form}\" step"));
        }
    }
    let status = || -> Result<u16, String> {
        match map.get("status") {
            None => Ok(200),
            Some(v) => match v.as_u64() {
                Some(s) if valid_status(s) => Ok(s as u16),
                _ => Err(format!("\"status\" must be an HTTP status in 200..=599 (not 204/304), not {v}")),
            },
        }
    };
    let action = match form {
        "processing" => match map.get("processing") {
            Some(Value::Bool(true)) => Action::Processing,
            _ => return Err("write a processing step as \"processing\" or {\"processing\": true}".into()),
        },
        "ready" => match map.get("ready") {
            Some(solution @ Value::Object(_)) => Action::Ready(solution.clone()),
            _ => return Err("\"ready\" must be a solution object".into()),
        },
        "error" => {
            let code = match map.get("error") {
                Some(Value::String(c)) if !c.is_empty() => c.clone(),
                _ => return Err("\"error\" must be a non-empty error code string".into()),
            };
            let description = match map.get("description") {
                None => None,
                Some(Value::String(d)) => Some(d.clone()),
                Some(_) => return Err("\"description\" must be a string".into()),
            };
            Action::ApiError { code, description, status: status()? }
        }
        "json" => Action::Json { status: status()?, body: map.get("json").cloned().unwrap_or(Value::Null) },
        "raw" => {
            let body = match map.get("raw") {
                Some(Value::String(b)) => b.clone(),
                _ => return Err("\"raw\" must be a string".into()),
            };
            let content_type = match map.get("content_type") {
                None => None,
                // A CR or LF would let the step inject headers; refuse it.
                Some(Value::String(t)) if !t.is_empty() && !t.contains(['\r', '\n']) => Some(t.clone()),
                Some(_) => return Err("\"content_type\" must be a one-line non-empty string".into()),
            };
            Action::Raw { status: status()?, body, content_type }
        }
        _ => Action::Fault(parse_fault(map)?),
    };
    let delay = match map.get("delay_ms") {
        None => Duration::ZERO,
        Some(v) => match v.as_u64() {
            Some(ms) if ms <= MAX_PAUSE_MS => Duration::from_millis(ms),
            _ => return Err(format!("\"delay_ms\" must be an integer in 0..={MAX_PAUSE_MS}")),
        },
    };
    let close_after = match map.get("close_after") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("\"close_after\" must be true or false".into()),
    };
    let headers = match map.get("headers") {
        None => Vec::new(),
        Some(Value::Object(headers)) if headers.len() <= MAX_STEP_HEADERS => {
            let mut parsed = Vec::with_capacity(headers.len());
            for (name, value) in headers {
                match value.as_str() {
                    Some(value) if valid_header(name, value) => parsed.push((name.clone(), value.to_owned())),
                    _ => return Err(format!("header \"{name}\" must be a token with a one-line string value")),
                }
            }
            parsed
        }
        Some(_) => return Err(format!("\"headers\" must be an object of at most {MAX_STEP_HEADERS} string values")),
    };
    Ok(Step { action, delay, close_after, headers })
}

fn parse_fault(map: &Map<String, Value>) -> Result<Fault, String> {
    let name = map.get("fault").and_then(Value::as_str).unwrap_or("");
    let only = |key: &str| -> Result<(), String> {
        for extra in ["ms", "bytes"] {
            if extra != key && map.contains_key(extra) {
                return Err(format!("\"{extra}\" does not apply to the \"{name}\" fault"));
            }
        }
        Ok(())
    };
    match name {
        "close" | "truncate" | "garbage" => {
            only("")?;
            Ok(match name {
                "close" => Fault::Close,
                "truncate" => Fault::Truncate,
                _ => Fault::Garbage,
            })
        }
        "stall" => {
            only("ms")?;
            match map.get("ms").and_then(Value::as_u64) {
                Some(ms) if ms <= MAX_PAUSE_MS => Ok(Fault::Stall(Duration::from_millis(ms))),
                _ => Err(format!("the stall fault needs \"ms\": an integer in 0..={MAX_PAUSE_MS}")),
            }
        }
        "oversize" => {
            only("bytes")?;
            match map.get("bytes").and_then(Value::as_u64) {
                Some(n) if (MIN_OVERSIZE_BYTES..=MAX_OVERSIZE_BYTES).contains(&n) => Ok(Fault::Oversize(n)),
                _ => Err(format!(
                    "the oversize fault needs \"bytes\": an integer in {MIN_OVERSIZE_BYTES}..={MAX_OVERSIZE_BYTES}"
                )),
            }
        }
        _ => Err(format!(
            "unknown fault {} (expected close, stall, truncate, oversize or garbage)",
            map.get("fault").map(Value::to_string).unwrap_or_default()
        )),
    }
}

/// What a script is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// getTaskResult requests for this task id.
    Task(i64),
    /// Requests to this API method (e.g. "createTask", "getBalance").
    Method(String),
}

/// One entry of `POST /_emulator/script` or of a `--script` file:
/// `{"taskId": 5, "steps": [..]}` or `{"method": "getBalance", "steps": [..]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptEntry {
    pub target: Target,
    pub steps: Vec<Step>,
}

impl ScriptEntry {
    /// Parses and checks one entry; `is_method` says which method names exist.
    pub fn from_json(value: &Value, is_method: impl Fn(&str) -> bool) -> Result<ScriptEntry, String> {
        let map = value.as_object().ok_or("a script entry must be a JSON object")?;
        for key in map.keys() {
            if !["taskId", "method", "steps"].contains(&key.as_str()) {
                return Err(format!("unknown key \"{key}\" in a script entry (expected taskId or method, and steps)"));
            }
        }
        let target = match (map.get("taskId"), map.get("method")) {
            (Some(id), None) => Target::Task(id.as_i64().ok_or("\"taskId\" must be an integer")?),
            (None, Some(Value::String(m))) if is_method(m) => Target::Method(m.clone()),
            (None, Some(m)) => return Err(format!("\"method\" must name an API method, not {m}")),
            _ => return Err("a script entry needs exactly one of \"taskId\" and \"method\"".into()),
        };
        let steps = map.get("steps").and_then(Value::as_array).ok_or("\"steps\" must be an array")?;
        if steps.len() > MAX_STEPS {
            return Err(format!("at most {MAX_STEPS} steps per script"));
        }
        let steps = steps
            .iter()
            .enumerate()
            .map(|(i, s)| Step::from_json(s).map_err(|e| format!("step {i}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ScriptEntry { target, steps })
    }
}

/// A script being played: steps plus the index of the next one.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    steps: Vec<Step>,
    next: usize,
}

impl Script {
    /// `None` for an empty list: an empty script means "no script".
    pub(crate) fn new(mut steps: Vec<Step>) -> Option<Script> {
        steps.truncate(MAX_STEPS);
        (!steps.is_empty()).then_some(Script { steps, next: 0 })
    }

    /// The step for this request; the last one repeats forever.
    pub(crate) fn take(&mut self) -> Step {
        let index = self.next.min(self.steps.len() - 1);
        self.next = (index + 1).min(self.steps.len() - 1);
        self.steps[index].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Step, String> {
        Step::from_json(&v)
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(parse(json!("processing")), Ok(Step::processing()));
        assert_eq!(parse(json!({"ready": {"text": "a"}})), Ok(Step::ready(json!({"text": "a"}))));
        assert_eq!(
            parse(json!({"error": "ERROR_ZERO_BALANCE", "description": "d", "status": 402})),
            Ok(Step::api_error("ERROR_ZERO_BALANCE", "d", 402))
        );
        let no_description = parse(json!({"error": "X"})).unwrap();
        assert_eq!(no_description.action, Action::ApiError { code: "X".into(), description: None, status: 200 });
        assert_eq!(parse(json!({"json": [1], "status": 503})), Ok(Step::json(503, json!([1]))));
        assert_eq!(parse(json!({"raw": "<h1>", "status": 502})), Ok(Step::raw(502, "<h1>")));
        assert_eq!(
            parse(json!({"raw": "<h1>", "content_type": "text/html"})),
            Ok(Step::raw_with_type(200, "<h1>", "text/html"))
        );
        assert_eq!(parse(json!({"fault": "close"})), Ok(Step::close()));
        assert_eq!(parse(json!({"fault": "stall", "ms": 5})), Ok(Step::stall(5)));
        assert_eq!(parse(json!({"fault": "truncate"})), Ok(Step::truncate()));
        assert_eq!(parse(json!({"fault": "oversize", "bytes": 100})), Ok(Step::oversize(100)));
        assert_eq!(parse(json!({"fault": "garbage"})), Ok(Step::garbage()));
        assert_eq!(
            parse(json!({"ready": {}, "delay_ms": 7, "close_after": true})),
            Ok(Step::ready(json!({})).delay(7).close_after())
        );
    }

    #[test]
    fn rejects_bad_steps_with_a_message() {
        for bad in [
            json!("ready"),
            json!(3),
            json!({}),
            json!({"ready": {}, "error": "X"}),
            json!({"ready": "text"}),
            json!({"error": ""}),
            json!({"json": 1, "status": 99}),
            json!({"json": 1, "status": 204}),
            json!({"raw": 1}),
            json!({"raw": "x", "content_type": "a\r\nX-Evil: 1"}),
            json!({"fault": "explode"}),
            json!({"fault": "stall"}),
            json!({"fault": "stall", "ms": MAX_PAUSE_MS + 1}),
            json!({"fault": "close", "ms": 1}),
            json!({"fault": "oversize", "bytes": MAX_OVERSIZE_BYTES + 1}),
            json!({"fault": "oversize", "bytes": 1}),
            json!({"ready": {}, "delayMs": 1}),
            json!({"ready": {}, "delay_ms": -1}),
            json!({"ready": {}, "close_after": 1}),
        ] {
            let err = parse(bad.clone()).expect_err(&bad.to_string());
            assert!(!err.is_empty());
        }
    }

    #[test]
    fn constructors_clamp_bounds() {
        assert_eq!(Step::stall(u64::MAX), Step::stall(MAX_PAUSE_MS));
        assert_eq!(Step::processing().delay(u64::MAX).delay, Duration::from_millis(MAX_PAUSE_MS));
        assert_eq!(Step::oversize(0).action, Action::Fault(Fault::Oversize(MIN_OVERSIZE_BYTES)));
        assert_eq!(Step::json(42, json!(1)), Step::json(500, json!(1)));
    }

    #[test]
    fn last_step_is_sticky_and_empty_means_none() {
        assert!(Script::new(Vec::new()).is_none());
        let mut s = Script::new(vec![Step::processing(), Step::close()]).unwrap();
        assert_eq!(s.take(), Step::processing());
        assert_eq!(s.take(), Step::close());
        assert_eq!(s.take(), Step::close());
    }

    #[test]
    fn script_entries() {
        let is_method = |m: &str| m == "getBalance";
        let e = ScriptEntry::from_json(&json!({"taskId": 5, "steps": ["processing"]}), is_method).unwrap();
        assert_eq!(e.target, Target::Task(5));
        let e = ScriptEntry::from_json(&json!({"method": "getBalance", "steps": []}), is_method).unwrap();
        assert_eq!(e.target, Target::Method("getBalance".into()));
        for bad in [
            json!([]),
            json!({"steps": []}),
            json!({"taskId": 1, "method": "getBalance", "steps": []}),
            json!({"taskId": "1", "steps": []}),
            json!({"method": "nope", "steps": []}),
            json!({"taskId": 1}),
            json!({"taskId": 1, "steps": ["bad"]}),
            json!({"taskId": 1, "steps": [], "extra": 1}),
        ] {
            assert!(ScriptEntry::from_json(&bad, is_method).is_err(), "{bad}");
        }
    }
}
