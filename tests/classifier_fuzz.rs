//! A property test of the answer classifier (`capmonster::api::answer`): HTTP status + body bytes
//! -> outcome, for millions of generated answers, std only.
//!
//! Inputs, per case: an HTTP status (half the time 200, else any of 100..=599) and a body that
//! is random bytes, random JSON-ish token soup, a random answer-shaped object, or one to six
//! mutations (bit flips, truncations, insertions, deletions, splices, numbers swapped for edge
//! values like 1e999 / -0 / 2^64, deep nesting, extra or duplicated fields) of a seed: every
//! response example of the service's documentation, committed under `tests/fuzz-corpus/`.
//!
//! Properties, from the rules in src/answer.rs and README.md (see [`check`]):
//! - no classifier panics;
//! - every error is CM_ERR_API, CM_ERR_HTTP_STATUS or CM_ERR_BAD_RESPONSE, with the HTTP
//!   status where the rules say (API and HTTP-status errors carry it; HTTP-status errors only
//!   for non-2xx; bad responses only for 2xx);
//! - a non-2xx answer is never a success, except getTaskResult's "processing" for an error
//!   body whose errorCode is CAPTCHA_NOT_READY;
//! - a ready solution is the body's own text, starts with '{' and is a JSON object; a task id
//!   is positive and is the body's taskId; a balance is finite and is the body's balance;
//! - an API error is a JSON object with errorId != 0 (or no errorId and a non-empty errorCode);
//! - the three classifiers agree on rules 1 and 2 (they share them): same API / HTTP-status
//!   error from each, CAPTCHA_NOT_READY aside.
//!
//! Reproducible: a seeded splitmix64 generator per case (seed, case index). The normal
//! `cargo test` runs 20,000 cases; `scripts/fuzz.sh` runs 1,000,000. Environment:
//! `FUZZ_CASES` (count), `FUZZ_SEED` (decimal or 0x-hex), `FUZZ_CASE` (run that one case
//! only, printing it), `FUZZ_THREADS` (default: all cores).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use capmonster::api::answer::{classify_balance, classify_create_task, classify_task_result, CAPTCHA_NOT_READY};
use capmonster::{Code, Error, TaskState};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

const DEFAULT_SEED: u64 = 0x00c0_ffee_2024_5eed;
const DEFAULT_CASES: u64 = 20_000;

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// The property run: `FUZZ_CASES` cases (20,000 by default).
#[test]
fn classifier_properties_hold_for_generated_answers() {
    let summary = fuzz(&Settings::from_env());
    summary.assert_clean();
}

/// The corpus is the documentation's examples: at least 60 seeds, each a JSON object.
#[test]
fn corpus_seeds_are_json_objects() {
    let seeds = load_seeds();
    assert!(seeds.len() >= 60, "only {} seeds in tests/fuzz-corpus", seeds.len());
    for (name, seed) in &seeds {
        let value: Value = serde_json::from_slice(seed).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(value.is_object(), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// A broken property: what happened.
type Violation = String;

fn violation(what: String) -> Violation {
    what
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The outcome of one classifier as a short name, for the histogram.
fn outcome_name<T>(result: &Result<T, Error>, ok: &'static str) -> &'static str {
    match result {
        Ok(_) => ok,
        Err(error) => error.code.name(),
    }
}

/// The members the rules read, as an independent reader sees them: each one as a whole JSON
/// value, every other member skipped (RFC 8259 lets readers limit numbers, so an ignored
/// `1e999` must not make the oracle refuse what the classifier rightly skips). Invalid UTF-8
/// is replaced first, so that the other properties can still be checked on bodies that break
/// the UTF-8 one.
#[derive(Deserialize, Debug)]
struct Fields {
    #[serde(rename = "errorId")]
    error_id: Option<Value>,
    #[serde(rename = "errorCode")]
    error_code: Option<Value>,
    #[serde(rename = "errorDescription")]
    _error_description: Option<Value>,
    status: Option<Value>,
    /// Captured raw: a solution may nest deeper than `Value`'s recursion limit (128).
    solution: Option<Box<RawValue>>,
    #[serde(rename = "taskId")]
    task_id: Option<Value>,
    balance: Option<Value>,
}

fn fields(body: &[u8]) -> Option<Fields> {
    serde_json::from_str::<Fields>(&String::from_utf8_lossy(body)).ok()
}

fn text(value: &Option<Value>) -> Option<&str> {
    value.as_ref().and_then(Value::as_str)
}

/// A JSON object, checked without a depth limit (`IgnoredAny` skips with a loop).
fn is_json_object_text(text: &str) -> bool {
    let mut reader = serde_json::Deserializer::from_str(text);
    text.starts_with('{') && IgnoredAny::deserialize(&mut reader).is_ok() && reader.end().is_ok()
}

fn is_zero(number: &serde_json::Number) -> bool {
    number.as_f64() == Some(0.0)
}

/// Checks every property for one answer; returns the first violation.
fn check(status: u16, body: &[u8]) -> Result<[&'static str; 3], Violation> {
    let caught = |name: &str, panic: Box<dyn std::any::Any + Send>| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        violation(format!("{name} panicked: {message}"))
    };
    let task = catch_unwind(AssertUnwindSafe(|| classify_task_result(status, body)))
        .map_err(|p| caught("classify_task_result", p))?;
    let create = catch_unwind(AssertUnwindSafe(|| classify_create_task(status, body)))
        .map_err(|p| caught("classify_create_task", p))?;
    let balance =
        catch_unwind(AssertUnwindSafe(|| classify_balance(status, body))).map_err(|p| caught("classify_balance", p))?;

    let success = is_success(status);
    let json = || fields(body);

    // Errors: the codes, and the HTTP status where the rules put it.
    for (name, error) in
        [("task", task.as_ref().err()), ("create", create.as_ref().err()), ("balance", balance.as_ref().err())]
    {
        let Some(error) = error else { continue };
        match error.code {
            Code::Api => {
                if error.http_status != Some(status) {
                    return Err(violation(format!("{name}: API error without its HTTP status: {error:?}")));
                }
                if error.api_code() == Some("") {
                    return Err(violation(format!("{name}: API error with an empty errorCode: {error:?}")));
                }
                let Some(object) = json() else {
                    return Err(violation(format!("{name}: API error from a body that is not a JSON object")));
                };
                let failed = match &object.error_id {
                    None | Some(Value::Null) => text(&object.error_code).is_some_and(|c| !c.is_empty()),
                    Some(Value::Number(id)) => !is_zero(id),
                    Some(other) => return Err(violation(format!("{name}: API error with errorId {other}"))),
                };
                if !failed {
                    return Err(violation(format!("{name}: API error from a body whose errorId is 0: {error:?}")));
                }
                if error.api_code() != text(&object.error_code).filter(|c| !c.is_empty()) {
                    return Err(violation(format!("{name}: API error code differs from the body's errorCode")));
                }
            }
            Code::HttpStatus => {
                if success || error.http_status != Some(status) {
                    return Err(violation(format!("{name}: HTTP-status error for HTTP {status}: {error:?}")));
                }
            }
            Code::BadResponse => {
                if !success {
                    return Err(violation(format!("{name}: bad response for non-2xx HTTP {status}: {error:?}")));
                }
            }
            other => return Err(violation(format!("{name}: code {other:?} from a pure classifier: {error:?}"))),
        }
    }

    // Successes.
    if let Ok(state) = &task {
        let Some(object) = json() else {
            return Err(violation(format!("task: {state:?} from a body that is not a JSON object")));
        };
        match state {
            TaskState::Processing => {
                let not_ready = text(&object.error_code) == Some(CAPTCHA_NOT_READY);
                let processing = text(&object.status) == Some("processing");
                if !success && !not_ready {
                    return Err(violation(format!("task: processing for HTTP {status} without CAPTCHA_NOT_READY")));
                }
                if !not_ready && !processing {
                    return Err(violation(
                        "task: processing without status \"processing\" or CAPTCHA_NOT_READY".into(),
                    ));
                }
            }
            TaskState::Ready(solution) => {
                let solution = solution.get();
                if !success {
                    return Err(violation(format!("task: ready for non-2xx HTTP {status}")));
                }
                if !is_json_object_text(solution) {
                    return Err(violation(format!(
                        "task: ready with a solution that is not a JSON object: {solution:?}"
                    )));
                }
                if object.solution.as_ref().map(|raw| raw.get()) != Some(solution) {
                    return Err(violation("task: the solution text is not the body's own solution member".into()));
                }
                if text(&object.status) != Some("ready") {
                    return Err(violation("task: ready without status \"ready\"".into()));
                }
            }
        }
    }
    if let Ok(id) = create {
        let body_id = json().and_then(|fields| fields.task_id.as_ref().and_then(Value::as_i64));
        if !success || id <= 0 || body_id != Some(id) {
            return Err(violation(format!("create: task id {id} for HTTP {status}, body taskId {body_id:?}")));
        }
    }
    if let Ok(amount) = balance {
        let body_balance = json().and_then(|fields| fields.balance.as_ref().and_then(Value::as_f64));
        if !success || !amount.is_finite() || body_balance != Some(amount) {
            return Err(violation(format!("balance: {amount} for HTTP {status}, body balance {body_balance:?}")));
        }
    }

    // Rules 1 and 2 are shared: createTask and getBalance give the same API / HTTP-status
    // error; getTaskResult too, except that CAPTCHA_NOT_READY means "processing" there.
    let rule_error = |result: Result<(), &Error>| match result {
        Err(error) if matches!(error.code, Code::Api | Code::HttpStatus) => {
            Some((error.code, error.api_code().map(str::to_owned), error.http_status))
        }
        _ => None,
    };
    let from_create = rule_error(create.as_ref().map(drop));
    let from_balance = rule_error(balance.as_ref().map(drop));
    let from_task = rule_error(task.as_ref().map(drop));
    if from_create != from_balance {
        return Err(violation(format!("create and balance disagree: {from_create:?} vs {from_balance:?}")));
    }
    let not_ready = matches!(&from_create, Some((Code::Api, Some(code), _)) if code == CAPTCHA_NOT_READY);
    if not_ready {
        if !matches!(task, Ok(TaskState::Processing)) {
            return Err(violation(format!("task: CAPTCHA_NOT_READY is not processing: {task:?}")));
        }
    } else if from_task != from_create {
        return Err(violation(format!("task and create disagree: {from_task:?} vs {from_create:?}")));
    }

    // A body that is not UTF-8 is not JSON (RFC 8259 §8.1), wherever the bad bytes are.
    let accepted = task.is_ok() || from_create.as_ref().is_some_and(|(code, _, _)| *code == Code::Api);
    if accepted && std::str::from_utf8(body).is_err() {
        return Err(violation(format!("not UTF-8, classified as task {:?}", outcome_name(&task, "ok"))));
    }

    Ok([
        match &task {
            Ok(TaskState::Processing) => "Processing",
            Ok(TaskState::Ready(_)) => "Ready",
            Err(error) => error.code.name(),
        },
        outcome_name(&create, "Ok(task id)"),
        outcome_name(&balance, "Ok(balance)"),
    ])
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

struct Settings {
    seed: u64,
    cases: u64,
    only: Option<u64>,
    threads: u64,
}

impl Settings {
    fn from_env() -> Settings {
        let number = |name: &str| {
            std::env::var(name).ok().map(|text| {
                let text = text.trim().replace('_', "");
                let parsed = match text.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => text.parse(),
                };
                parsed.unwrap_or_else(|_| panic!("{name}={text} is not a number"))
            })
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        Settings {
            seed: number("FUZZ_SEED").unwrap_or(DEFAULT_SEED),
            cases: number("FUZZ_CASES").unwrap_or(DEFAULT_CASES),
            only: number("FUZZ_CASE"),
            threads: number("FUZZ_THREADS").unwrap_or(cores).clamp(1, 64),
        }
    }
}

/// A case that broke a property: (case index, HTTP status, body, what happened).
type Broken = (u64, u16, Vec<u8>, String);

#[derive(Default)]
struct Summary {
    seed: u64,
    cases: u64,
    /// The first real violations.
    failures: Vec<Broken>,
    /// Per classifier, how many cases ended how.
    outcomes: [BTreeMap<&'static str, u64>; 3],
}

impl Summary {
    fn assert_clean(&self) {
        for (name, histogram) in
            ["classify_task_result", "classify_create_task", "classify_balance"].iter().zip(&self.outcomes)
        {
            eprintln!("  {name:<22} {histogram:?}");
        }
        if let Some((index, status, body, what)) = self.failures.first() {
            panic!(
                "{} of {} cases broke a property; first: case {index} (reproduce: FUZZ_SEED={:#x} FUZZ_CASE={index}), \
                 HTTP {status}, body ({} bytes) b\"{}\": {what}",
                self.failures.len(),
                self.cases,
                self.seed,
                body.len(),
                body.escape_ascii()
            );
        }
        // The generators must reach every outcome, or the run proves little.
        if self.cases >= 10_000 && self.failures.is_empty() {
            for expected in ["Processing", "Ready", "CM_ERR_API", "CM_ERR_HTTP_STATUS", "CM_ERR_BAD_RESPONSE"] {
                assert!(
                    self.outcomes[0].contains_key(expected),
                    "no case classified as {expected}: {:?}",
                    self.outcomes[0]
                );
            }
            assert!(self.outcomes[1].contains_key("Ok(task id)"), "{:?}", self.outcomes[1]);
            assert!(self.outcomes[2].contains_key("Ok(balance)"), "{:?}", self.outcomes[2]);
        }
    }
}

fn fuzz(settings: &Settings) -> Summary {
    let seeds: Arc<Vec<Vec<u8>>> = Arc::new(load_seeds().into_iter().map(|(_, seed)| seed).collect());
    let summary = Arc::new(Mutex::new(Summary { seed: settings.seed, ..Summary::default() }));
    let (first, count) = match settings.only {
        Some(index) => (index, 1),
        None => (0, settings.cases),
    };
    eprintln!(
        "classifier fuzz: seed {:#x}, {} cases from case {first}, {} seeds, {} threads",
        settings.seed,
        count,
        seeds.len(),
        settings.threads
    );
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(first));
    let end = first + count;
    let threads: Vec<_> = (0..settings.threads.min(count.max(1)))
        .map(|_| {
            let (seeds, summary, next) = (Arc::clone(&seeds), Arc::clone(&summary), Arc::clone(&next));
            let (seed, verbose) = (settings.seed, settings.only.is_some());
            std::thread::spawn(move || {
                let mut outcomes: [BTreeMap<&'static str, u64>; 3] = Default::default();
                loop {
                    // Batches of 256 cases keep the shared counter cold.
                    let batch = next.fetch_add(256, Ordering::Relaxed);
                    if batch >= end {
                        break;
                    }
                    for index in batch..(batch + 256).min(end) {
                        let mut rng = Rng::for_case(seed, index);
                        let (status, body) = generate(&mut rng, &seeds);
                        if verbose {
                            eprintln!("case {index}: HTTP {status}, body b\"{}\"", body.escape_ascii());
                        }
                        match check(status, &body) {
                            Ok(names) => {
                                for (histogram, name) in outcomes.iter_mut().zip(names) {
                                    *histogram.entry(name).or_default() += 1;
                                }
                            }
                            Err(what) => {
                                let mut summary = summary.lock().unwrap();
                                if summary.failures.len() < 16 {
                                    summary.failures.push((index, status, body, what));
                                }
                            }
                        }
                    }
                }
                let mut summary = summary.lock().unwrap();
                for (total, mine) in summary.outcomes.iter_mut().zip(outcomes) {
                    for (name, n) in mine {
                        *total.entry(name).or_default() += n;
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a fuzz thread panicked outside the classifiers");
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut summary = Arc::try_unwrap(summary).ok().expect("threads joined").into_inner().unwrap();
    summary.cases = count;
    summary.failures.sort_by_key(|failure| failure.0);
    eprintln!(
        "classifier fuzz: {count} cases ({} classifier executions) in {seconds:.2} s: {:.0} cases/s, {:.0} exec/s",
        count * 3,
        count as f64 / seconds,
        (count * 3) as f64 / seconds
    );
    summary
}

fn load_seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.file_name().unwrap().to_string_lossy().into_owned(), bytes.trim_ascii_end().to_vec())
        })
        .collect();
    // Sorted, so a seed and case index give the same input on every machine.
    seeds.sort();
    seeds
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, good enough for test inputs.
struct Rng(u64);

impl Rng {
    /// The generator of one case: every case is reproducible alone.
    fn for_case(seed: u64, index: u64) -> Rng {
        let mut rng = Rng(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Numbers at the edges of what the classifier reads (u64, i64, f64) and of JSON's grammar.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.0",
    "0e0",
    "1",
    "-1",
    "2",
    "7654321",
    "1e999",
    "-1e999",
    "1e-999",
    "1e-400",
    "4.9e-324",
    "1.7976931348623157e308",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1e3",
    "1E+2",
    "345.678",
    "0.1",
    "00",
    "01",
    "1.",
    ".5",
    "+1",
    "NaN",
    "Infinity",
    "-",
    "1e",
];

/// Strings the classifier looks for, and ones that stress the string reader.
const STRINGS: &[&str] = &[
    r#""errorId""#,
    r#""errorCode""#,
    r#""errorDescription""#,
    r#""status""#,
    r#""solution""#,
    r#""taskId""#,
    r#""balance""#,
    r#""processing""#,
    r#""ready""#,
    r#""success""#,
    r#""CAPTCHA_NOT_READY""#,
    r#""ERROR_TOO_MUCH_REQUESTS""#,
    r#""ERROR_ZERO_BALANCE""#,
    r#""text""#,
    r#""""#,
    r#""\u0000""#,
    r#""\ud800""#,
    r#""\udc00\ud800""#,
    r#""\"""#,
    r#""\\""#,
    r#""pro\u0063essing""#,
    "\"h\u{e9}llo \u{2713}\"",
    "\"\u{1F600}\"",
];

const LITERALS: &[&str] = &["true", "false", "null", "tru", "nul"];
const PUNCTUATION: &[&str] = &["{", "}", "[", "]", ":", ",", " ", "\n", "\t", "\r\n", "\u{feff}"];
/// Single bytes that break things: NUL, a lone continuation byte, a lead byte, 0xFF, quote.
const BYTES: &[u8] = &[0x00, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xfe, 0xff, b'"', b'\\', b'{'];

/// The keys of an answer, and their plausible values.
const KEYS: &[&str] =
    &["errorId", "errorCode", "errorDescription", "status", "solution", "taskId", "balance", "cost", "x"];

fn token(rng: &mut Rng) -> Vec<u8> {
    match rng.below(10) {
        0..=2 => rng.pick(NUMBERS).as_bytes().to_vec(),
        3..=5 => rng.pick(STRINGS).as_bytes().to_vec(),
        6 => rng.pick(LITERALS).as_bytes().to_vec(),
        7 => vec![*rng.pick(BYTES)],
        _ => rng.pick(PUNCTUATION).as_bytes().to_vec(),
    }
}

/// A random JSON value of at most `depth` levels (always valid JSON).
fn json_value(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth == 0 { 4 } else { 6 }) {
        0 => rng.pick(NUMBERS[..22].as_ref()).to_string(),
        1 => rng.pick(STRINGS).to_string(),
        2 => rng.pick(&LITERALS[..3]).to_string(),
        3 => format!("\"{}\"", "x".repeat(rng.below(40))),
        4 => {
            let n = rng.below(4);
            let items: Vec<String> = (0..n).map(|_| json_value(rng, depth - 1)).collect();
            format!("[{}]", items.join(","))
        }
        _ => {
            let n = rng.below(4);
            let items: Vec<String> =
                (0..n).map(|_| format!("\"{}\":{}", rng.pick(KEYS), json_value(rng, depth - 1))).collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

/// A solution: usually an object (sometimes nested past any recursion limit), sometimes not.
fn solution(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => r#"{"text":"answer"}"#.to_owned(),
        1 => rng.pick(&["{}", "[1]", r#""text""#, "null", "1"]).to_string(),
        2 => {
            let depth = if rng.chance(80) { 100 + rng.below(60) } else { 1 + rng.below(3000) };
            format!("{{\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth))
        }
        _ => format!("{{\"text\":{}}}", json_value(rng, 3)),
    }
}

/// An object shaped like an answer. Half the time one of the five documented shapes
/// (processing, ready, error, created task, balance) with edge values and extra members;
/// otherwise the keys the classifier reads, in any mix, sometimes repeated.
fn answer_object(rng: &mut Rng) -> Vec<u8> {
    let mut members = Vec::new();
    if rng.chance(50) {
        match rng.below(5) {
            0 => members.push(r#""status":"processing""#.to_owned()),
            1 => {
                members.push(r#""status":"ready""#.to_owned());
                members.push(format!(r#""solution":{}"#, solution(rng)));
            }
            2 => {
                let code = rng.pick(&[r#""CAPTCHA_NOT_READY""#, r#""ERROR_ZERO_BALANCE""#, r#""""#, "null", "1"]);
                members.push(format!(r#""errorCode":{code}"#));
                if rng.chance(50) {
                    members.push(format!(r#""errorDescription":{}"#, json_value(rng, 1)));
                }
            }
            3 => members.push(format!(r#""taskId":{}"#, rng.pick(NUMBERS))),
            _ => members.push(format!(r#""balance":{}"#, rng.pick(NUMBERS))),
        }
        if rng.chance(85) {
            let id = if rng.chance(70) { "0" } else { rng.pick(&["1", "-0", "0.0", "2", "1e-400", "null"]) };
            members.insert(rng.below(members.len() + 1), format!(r#""errorId":{id}"#));
        }
        for _ in 0..rng.below(3) {
            let extra = format!(r#""{}":{}"#, rng.pick(&["cost", "ip", "createTime", "x"]), json_value(rng, 2));
            members.insert(rng.below(members.len() + 1), extra);
        }
    } else {
        for _ in 0..1 + rng.below(6) {
            let key = *rng.pick(KEYS);
            let value = match key {
                "errorId" if rng.chance(60) => {
                    rng.pick(&["0", "1", "0", "-0", "0.0", "2", "1e999", "18446744073709551616"]).to_string()
                }
                "errorCode" if rng.chance(60) => {
                    rng.pick(&[r#""CAPTCHA_NOT_READY""#, r#""ERROR_ZERO_BALANCE""#, r#""""#, "null"]).to_string()
                }
                "status" if rng.chance(70) => {
                    rng.pick(&[r#""processing""#, r#""ready""#, r#""done""#, "null"]).to_string()
                }
                "solution" if rng.chance(70) => solution(rng),
                "taskId" | "balance" if rng.chance(70) => rng.pick(NUMBERS).to_string(),
                _ => json_value(rng, 3),
            };
            members.push(format!("\"{key}\":{value}"));
        }
    }
    format!("{{{}}}", members.join(",")).into_bytes()
}

/// The byte ranges of the numbers in `body` (digit runs with sign, dot and exponent).
fn number_spans(body: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i].is_ascii_digit() || (body[i] == b'-' && body.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < body.len() && (body[i].is_ascii_digit() || b".eE+-".contains(&body[i])) {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    spans
}

fn mutate(rng: &mut Rng, body: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    let at = |rng: &mut Rng, body: &Vec<u8>| rng.below(body.len() + 1);
    match rng.below(14) {
        // Flip one bit.
        0 if !body.is_empty() => {
            let i = rng.below(body.len());
            body[i] ^= 1 << rng.below(8);
        }
        // Overwrite one byte with a troublesome one.
        1 if !body.is_empty() => {
            let i = rng.below(body.len());
            body[i] = *rng.pick(BYTES);
        }
        // Cut the body short.
        2 => {
            let i = at(rng, body);
            body.truncate(i);
        }
        // Insert a token.
        3 | 4 => {
            let i = at(rng, body);
            let t = token(rng);
            body.splice(i..i, t);
        }
        // Delete a range.
        5 if !body.is_empty() => {
            let i = rng.below(body.len());
            let j = (i + 1 + rng.below(16)).min(body.len());
            body.drain(i..j);
        }
        // Duplicate a range.
        6 if !body.is_empty() => {
            let i = rng.below(body.len());
            let j = (i + 1 + rng.below(32)).min(body.len());
            let copy = body[i..j].to_vec();
            body.splice(j..j, copy);
        }
        // Splice: this body's head, another seed's tail.
        7 => {
            let other = rng.pick(seeds);
            let i = at(rng, body);
            let j = rng.below(other.len() + 1);
            body.truncate(i);
            body.extend_from_slice(&other[j..]);
        }
        // Swap a number for an edge value.
        8 | 9 => {
            let spans = number_spans(body);
            if !spans.is_empty() {
                let (i, j) = *rng.pick(&spans);
                let n = rng.pick(NUMBERS).as_bytes().to_vec();
                body.splice(i..j, n);
            }
        }
        // Nest: brackets around a point (balanced or not), 1 to 2,000 deep.
        10 => {
            let depth = if rng.chance(80) { 1 + rng.below(200) } else { 1 + rng.below(2000) };
            let i = at(rng, body);
            let (open, close) = if rng.chance(50) { (b'[', b']') } else { (b'{', b'}') };
            let mut inner = vec![open; depth];
            if open == b'{' {
                inner = br#"{"a":"#.repeat(depth);
            }
            if rng.chance(70) {
                inner.push(b'1');
                inner.extend(std::iter::repeat_n(close, depth));
            }
            body.splice(i..i, inner);
        }
        // A member right after the first '{': an error, a duplicate, or an unknown field.
        11 | 12 => {
            if let Some(i) = body.iter().position(|&b| b == b'{') {
                let member: &[u8] = rng.pick::<&[u8]>(&[
                    br#""errorId":1,"errorCode":"CAPTCHA_NOT_READY","#.as_slice(),
                    br#""errorId":1,"#,
                    br#""errorId":0,"#,
                    br#""errorCode":"ERROR_X","#,
                    br#""status":"processing","#,
                    br#""status":"ready","solution":{"text":"x"},"#,
                    br#""taskId":-0,"#,
                    br#""balance":1e308,"#,
                    b"\"x\":\"\xff\",",
                    br#""x":[[[[[[[[]]]]]]]],"#,
                ]);
                body.splice(i + 1..i + 1, member.iter().copied());
            }
        }
        // Leading whitespace or a byte-order mark; trailing garbage.
        _ => {
            if rng.chance(50) {
                let prefix: &[u8] = rng.pick::<&[u8]>(&[b" \n\t".as_slice(), b"\xef\xbb\xbf", b"\x00"]);
                body.splice(0..0, prefix.iter().copied());
            } else {
                let t = token(rng);
                body.extend(t);
            }
        }
    }
}

/// One case: (HTTP status, body).
fn generate(rng: &mut Rng, seeds: &[Vec<u8>]) -> (u16, Vec<u8>) {
    let status = match rng.below(10) {
        0..=4 => 200,
        5 => 200 + rng.below(100) as u16,
        _ => 100 + rng.below(500) as u16,
    };
    let body = match rng.below(20) {
        // Random bytes.
        0 | 1 => {
            let len = if rng.chance(90) { rng.below(64) } else { rng.below(2048) };
            (0..len).map(|_| rng.next() as u8).collect()
        }
        // Token soup, mostly opened like an object.
        2..=4 => {
            let mut soup = if rng.chance(70) { b"{".to_vec() } else { Vec::new() };
            for _ in 0..rng.below(40) {
                soup.extend(token(rng));
            }
            soup
        }
        // An answer-shaped object, sometimes mutated.
        5..=8 => {
            let mut body = answer_object(rng);
            if rng.chance(40) {
                mutate(rng, &mut body, seeds);
            }
            body
        }
        // A seed, as is or mutated 1..=6 times (once, half the time).
        _ => {
            let mut body = rng.pick(seeds).clone();
            if rng.chance(90) {
                let mutations = if rng.chance(50) { 1 } else { 2 + rng.below(5) };
                for _ in 0..mutations {
                    mutate(rng, &mut body, seeds);
                }
            }
            body
        }
    };
    (status, body)
}
