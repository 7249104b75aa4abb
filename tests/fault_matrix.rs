//! The fault matrix: the client against hostile servers, one test (one row) per case.
//!
//! Every row asserts three things: the code the contract in README.md promises, a time bound
//! (generous: the machine may be busy; the mechanism's own bound is in the row's comment),
//! and that the process stays healthy: a normal call on the same client succeeds right after.
//!
//! Servers: the emulator's scripted steps where they fit, and a small raw TCP server
//! ([`RawServer`], std only) for what the emulator can't do: resets, slow drips, huge heads,
//! 1xx answers, chunked bodies, invalid UTF-8 and gzip bodies.
//!
//! `cargo test --release --test fault_matrix -- --nocapture --test-threads=1` prints the
//! matrix as a table (case, expected, observed, time, follow-up) in row order.

mod common;

use std::fmt::Debug;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use capmonster::wait::wait;
use capmonster::{Client, Code, Report, Schedule, TaskState};
use common::{Emulator, Step};
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// What a row expects: `CM_OK` or one error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Ok,
    Err(Code),
}

impl Expect {
    fn of<T>(result: &Result<T, capmonster::Error>) -> Expect {
        match result {
            Ok(_) => Expect::Ok,
            Err(error) => Expect::Err(error.code),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Expect::Ok => "CM_OK",
            Expect::Err(code) => code.name(),
        }
    }
}

use Expect::Err as E;
use Expect::Ok as OK;

/// The bound for rows whose mechanism answers at once (loopback, < 50 ms): generous, since
/// the machine has 2 cores and other builds may run at the same time.
const QUICK: Duration = Duration::from_secs(3);
/// The request timeout of the timeout rows; their bound is [`TIMEOUT_ROW_BOUND`].
const SHORT_TIMEOUT: Duration = Duration::from_millis(500);
const TIMEOUT_ROW_BOUND: Duration = Duration::from_secs(3);
/// The request timeout of every other row: a hang shows as a failed row in 10 s, not 21 s.
const ROW_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

static HEADER: Once = Once::new();

fn print_row(case: &str, expected: Expect, observed: &str, elapsed: Duration, then: &str) {
    HEADER.call_once(|| {
        eprintln!();
        eprintln!("| {:<62} | {:<23} | {:<23} | {:>9} | {:<10} |", "case", "expected", "observed", "time", "then");
        eprintln!("|{}|{}|{}|{}|{}|", "-".repeat(64), "-".repeat(25), "-".repeat(25), "-".repeat(11), "-".repeat(12));
    });
    let ms = elapsed.as_secs_f64() * 1000.0;
    eprintln!("| {case:<62} | {:<23} | {observed:<23} | {ms:>6.1} ms | {then:<10} |", expected.name());
}

/// What a row observed.
struct Observed<T> {
    report: Report<T>,
    elapsed: Duration,
}

impl<T: Debug> Observed<T> {
    fn error(&self) -> &capmonster::Error {
        self.report.result.as_ref().expect_err("the row failed as expected")
    }

    fn message(&self) -> &str {
        &self.error().message
    }
}

/// Runs one row: `fault` (timed), then `follow_up`, a normal call on the same client. Prints the
/// row, then asserts the code, the time bound and that the follow-up succeeded.
fn row<T: Debug, U: Debug>(
    case: &str,
    expect: Expect,
    within: Duration,
    fault: impl FnOnce() -> Report<T>,
    follow_up: impl FnOnce() -> Report<U>,
) -> Observed<T> {
    let start = Instant::now();
    let report = fault();
    let elapsed = start.elapsed();
    let then = follow_up();
    let observed = Expect::of(&report.result);
    print_row(case, expect, observed.name(), elapsed, if then.result.is_ok() { "CM_OK" } else { "FAILED" });
    assert_eq!(observed, expect, "{case}: {:?}", report.result);
    assert!(elapsed < within, "{case}: took {elapsed:?}, bound {within:?}");
    assert!(then.result.is_ok(), "{case}: the follow-up call failed: {:?}", then.result);
    Observed { report, elapsed }
}

fn processing<X>(result: &Result<TaskState, X>) -> bool {
    matches!(result, Ok(TaskState::Processing))
}

/// A client for `url` with no proxy and the rows' request timeout. Each row has its own key:
/// the request budget is process-wide per (key, task) and tests run in parallel.
/// The common row: getTaskResult against the fault, then a follow-up that must succeed.
fn task_row(case: &str, expect: Expect, client: &Client) -> Observed<TaskState> {
    row(case, expect, QUICK, || client.get_task_result(1), || client.get_task_result(1))
}

fn client_for(url: &str, key: &str) -> Client {
    let client = Client::new(key).expect("valid key");
    client.set_base_url(url).expect("valid URL");
    client.set_proxy(None).expect("direct");
    client.set_request_timeout(ROW_REQUEST_TIMEOUT).expect("valid timeout");
    client
}

fn emulator_client(emulator: &Emulator, key: &str) -> Client {
    client_for(&emulator.url(), key)
}

// ---------------------------------------------------------------------------------------------
// Connecting and resets
// ---------------------------------------------------------------------------------------------

/// Nothing listens: connect() fails at once with ECONNREFUSED. README: "CM_ERR_NETWORK:
/// connect ...". The follow-up runs once a server listens on that same port.
#[test]
fn connect_refused() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = client_for(&format!("http://127.0.0.1:{port}"), "fm-refused");
    let mut server = None;
    let observed = row(
        "connection refused",
        E(Code::Network),
        QUICK,
        || client.get_task_result(1),
        || {
            // Bind the same port now (std sets SO_REUSEADDR); should another process have
            // taken it meanwhile, point the same client at a new port instead.
            let raw = RawServer::start_on(port, vec![Answer::processing()]).unwrap_or_else(|_| {
                let raw = RawServer::start(vec![Answer::processing()]);
                client.set_base_url(&raw.url()).unwrap();
                raw
            });
            server = Some(raw);
            client.get_task_result(1)
        },
    );
    assert_eq!(observed.report.requests, 1);
    assert_eq!(observed.report.http_status, None);
}

/// The server resets (RST) the fresh connection once the request has arrived, before any byte
/// of an answer. README: "CM_ERR_NETWORK: ... reset". A fresh connection is never resent.
#[test]
fn connect_reset_before_headers() {
    let server = RawServer::start(vec![Answer::Reset(Vec::new(), Duration::ZERO), Answer::processing()]);
    let client = client_for(&server.url(), "fm-reset-before");
    let observed = task_row("reset before headers (fresh connection)", E(Code::Network), &client);
    assert!(observed.message().to_lowercase().contains("reset"), "an RST, not a FIN: {}", observed.message());
    assert_eq!(observed.report.requests, 1);
}

/// The same RST on a reused keep-alive connection: the server dropped it as the request came.
/// README: "a request that dies on a reused keep-alive connection before any byte of the
/// answer is sent once more on a fresh connection, for getTaskResult": CM_OK, 2 requests.
#[test]
fn connect_reset_on_a_reused_connection_is_resent_once() {
    let server =
        RawServer::start(vec![Answer::processing(), Answer::Reset(Vec::new(), Duration::ZERO), Answer::processing()]);
    let client = client_for(&server.url(), "fm-reset-reused");
    assert!(processing(&client.get_task_result(1).result), "warms up one keep-alive connection");
    let observed = task_row("reset before headers (reused connection, getTaskResult)", OK, &client);
    assert!(processing(&observed.report.result));
    assert_eq!(observed.report.requests, 2, "the resend counts");
    assert_eq!(server.requests(), 4);
    assert_eq!(server.connections(), 2);
}

/// createTask is never resent, RST or not: a duplicate is a second paid task. README:
/// "createTask is never resent" -> the reset is CM_ERR_NETWORK.
#[test]
fn connect_reset_on_a_reused_connection_create_task_is_not_resent() {
    let created = Answer::Send(http("200 OK", &[], br#"{"errorId":0,"taskId":7}"#));
    let server = RawServer::start(vec![created.clone(), Answer::Reset(Vec::new(), Duration::ZERO), created]);
    let client = client_for(&server.url(), "fm-reset-create");
    let task = r#"{"type":"ImageToTextTask","body":"aGVsbG8="}"#;
    assert_eq!(client.create_task(task, None).result.unwrap(), 7);
    let observed = row(
        "reset before headers (reused connection, createTask)",
        E(Code::Network),
        QUICK,
        || client.create_task(task, None),
        || client.create_task(task, None),
    );
    assert_eq!(observed.report.requests, 1);
    assert_eq!(server.requests(), 3, "never resent");
}

/// Status line and headers arrive, then part of the body, then an RST. README:
/// "CM_ERR_NETWORK: ... reset, answer cut short".
#[test]
fn connect_reset_after_headers() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"errorId\":0,";
    let server = RawServer::start(vec![Answer::Reset(head.to_vec(), Duration::from_millis(100)), Answer::processing()]);
    let client = client_for(&server.url(), "fm-reset-after");
    let observed = task_row("reset after headers (mid-body)", E(Code::Network), &client);
    assert_eq!(observed.report.http_status, Some(200));
}

// ---------------------------------------------------------------------------------------------
// Stalls and slow drips: the request timeout ends them
// ---------------------------------------------------------------------------------------------

/// Nothing comes back for 10 s; the request timeout is 500 ms. README: "CM_ERR_TIMEOUT: a
/// request ... ran out of time". Mechanism: ~500 ms.
#[test]
fn timeout_stall_before_headers() {
    let emulator = common::emulator();
    emulator.script_task(1, vec![Step::stall(10_000), Step::processing()]);
    let client = emulator_client(&emulator, "fm-stall-before");
    client.set_request_timeout(SHORT_TIMEOUT).unwrap();
    let observed = row(
        "stall before headers (10 s; request timeout 500 ms)",
        E(Code::Timeout),
        TIMEOUT_ROW_BOUND,
        || client.get_task_result(1),
        || client.get_task_result(1),
    );
    assert!(observed.elapsed >= SHORT_TIMEOUT - Duration::from_millis(50), "{:?}", observed.elapsed);
}

/// Headers and a few body bytes, then silence for 10 s: the timeout covers the body too.
#[test]
fn timeout_stall_after_headers() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"errorId\":0,";
    let server =
        RawServer::start(vec![Answer::SendThenStall(head.to_vec(), Duration::from_secs(10)), Answer::processing()]);
    let client = client_for(&server.url(), "fm-stall-after");
    client.set_request_timeout(SHORT_TIMEOUT).unwrap();
    let observed = row(
        "stall after headers (10 s; request timeout 500 ms)",
        E(Code::Timeout),
        TIMEOUT_ROW_BOUND,
        || client.get_task_result(1),
        || client.get_task_result(1),
    );
    assert!(observed.elapsed >= SHORT_TIMEOUT - Duration::from_millis(50), "{:?}", observed.elapsed);
}

/// The whole answer one byte per 100 ms (~14 s): every read makes progress, so only a total
/// request timeout (1 s here) ends it. README: "bounds each HTTP request". Mechanism: ~1 s.
#[test]
fn timeout_slow_drip_from_the_status_line() {
    let answer = http("200 OK", &[("Content-Type", "application/json")], PROCESSING.as_bytes());
    let server = RawServer::start(vec![Answer::Drip(answer, Duration::from_millis(100)), Answer::processing()]);
    let client = client_for(&server.url(), "fm-drip-head");
    client.set_request_timeout(Duration::from_secs(1)).unwrap();
    let observed = row(
        "slow drip: 1 byte / 100 ms from the status line (timeout 1 s)",
        E(Code::Timeout),
        Duration::from_secs(4),
        || client.get_task_result(1),
        || client.get_task_result(1),
    );
    assert!(observed.elapsed >= Duration::from_millis(900), "{:?}", observed.elapsed);
}

/// Headers at once, then the body one byte per 100 ms: the timeout is total, not per read.
#[test]
fn timeout_slow_drip_of_the_body() {
    let body = format!(r#"{{"errorId":0,"status":"processing","pad":"{}"}}"#, " ".repeat(100));
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
    let server = RawServer::start(vec![
        Answer::HeadThenDrip(head.into_bytes(), body.into_bytes(), Duration::from_millis(100)),
        Answer::processing(),
    ]);
    let client = client_for(&server.url(), "fm-drip-body");
    client.set_request_timeout(Duration::from_secs(1)).unwrap();
    let observed = row(
        "slow drip: headers, then body 1 byte / 100 ms (timeout 1 s)",
        E(Code::Timeout),
        Duration::from_secs(4),
        || client.get_task_result(1),
        || client.get_task_result(1),
    );
    assert_eq!(observed.report.http_status, Some(200));
}

/// A wait whose deadline (800 ms) is shorter than the request timeout (default 21 s): the
/// request in flight is cut at the deadline. README: "a request in flight finishes first,
/// bounded by the request timeout and the time left" -> CM_ERR_TIMEOUT.
#[test]
fn timeout_slow_drip_inside_a_wait_is_cut_at_the_wait_deadline() {
    let answer = http("200 OK", &[("Content-Type", "application/json")], PROCESSING.as_bytes());
    let server = RawServer::start(vec![Answer::Drip(answer, Duration::from_millis(100)), Answer::processing()]);
    let client = client_for(&server.url(), "fm-drip-wait");
    client.set_request_timeout(Duration::from_secs(21)).unwrap();
    let schedule = Schedule {
        first_delay: Duration::ZERO,
        interval: Duration::from_millis(10),
        timeout: Duration::from_millis(800),
        max_requests: 120,
    };
    let observed = row(
        "slow drip inside cm_wait_result (wait timeout 800 ms)",
        E(Code::Timeout),
        Duration::from_secs(4),
        || wait(&client, 1, &schedule, None),
        || client.get_task_result(1),
    );
    assert!(observed.elapsed >= Duration::from_millis(700), "{:?}", observed.elapsed);
}

// ---------------------------------------------------------------------------------------------
// Bodies: cut short, too big
// ---------------------------------------------------------------------------------------------

/// Content-Length: 1000, a few bytes, then FIN. README: "CM_ERR_NETWORK: answer cut short".
#[test]
fn body_truncated() {
    let emulator = common::emulator();
    emulator.script_task(1, vec![Step::truncate(), Step::processing()]);
    let client = emulator_client(&emulator, "fm-truncated");
    let observed = task_row("truncated body (Content-Length 1000, FIN after 52)", E(Code::Network), &client);
    assert_eq!(observed.report.http_status, Some(200));
}

/// A chunked body whose chunk announces 256 bytes, 20 come, then FIN: cut short as above.
#[test]
fn body_truncated_chunked() {
    let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n{\"errorId\":0,\"status\"".to_vec();
    let server = RawServer::start(vec![Answer::SendThenClose(answer), Answer::processing()]);
    let client = client_for(&server.url(), "fm-truncated-chunked");
    task_row("truncated chunked body (chunk of 256, FIN after 20)", E(Code::Network), &client);
}

/// A 64 MiB answer with Content-Length. README: "body over 1 MiB -> CM_ERR_BAD_RESPONSE, read
/// no further". Mechanism: reading 1 MiB on loopback, ~10 ms.
#[test]
fn body_over_the_cap() {
    let emulator = common::emulator();
    emulator.script_task(1, vec![Step::oversize(64 * 1024 * 1024), Step::processing()]);
    let client = emulator_client(&emulator, "fm-oversize");
    let observed = task_row("body over the cap (64 MiB, Content-Length)", E(Code::BadResponse), &client);
    assert!(observed.message().contains("limit"), "{}", observed.message());
}

/// A chunked answer without Content-Length that never ends (streamed until the client hangs
/// up, at most 256 MiB): the cap holds without a length to check up front.
#[test]
fn body_over_the_cap_chunked() {
    let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
    chunk.extend(std::iter::repeat_n(b' ', 64 * 1024));
    chunk.extend(b"\r\n");
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n";
    let server = RawServer::start(vec![
        Answer::Stream { head: head.to_vec(), chunk, limit: 256 * 1024 * 1024 },
        Answer::processing(),
    ]);
    let client = client_for(&server.url(), "fm-oversize-chunked");
    let observed = task_row("body over the cap (endless chunked stream)", E(Code::BadResponse), &client);
    assert!(observed.message().contains("limit"), "{}", observed.message());
}

/// 64 KiB minus a little of answer body: under the cap, read and classified.
#[test]
fn body_just_under_the_cap() {
    let emulator = common::emulator();
    emulator.script_task(1, vec![Step::oversize(1024 * 1024 - 64), Step::processing()]);
    let client = emulator_client(&emulator, "fm-under-cap");
    let observed = task_row("body just under the cap (1 MiB - 64 bytes)", OK, &client);
    assert!(processing(&observed.report.result));
}

// ---------------------------------------------------------------------------------------------
// Heads: too big, not HTTP
// ---------------------------------------------------------------------------------------------

/// One header line of 70 KiB. README: "headers over 64 KiB -> CM_ERR_BAD_RESPONSE".
#[test]
fn head_over_64_kib_in_one_line() {
    let big = "a".repeat(70 * 1024);
    let answer = http("200 OK", &[("X-Big", &big)], PROCESSING.as_bytes());
    let server = RawServer::start(vec![Answer::SendThenClose(answer), Answer::processing()]);
    let client = client_for(&server.url(), "fm-head-one-line");
    let observed = task_row("headers over 64 KiB (one 70 KiB line)", E(Code::BadResponse), &client);
    assert!(observed.message().contains("header"), "{}", observed.message());
}

/// 2,000 header lines of 40 bytes (80 KiB). Too big, and too many headers for the parser
/// too: either way not an answer the library accepts -> CM_ERR_BAD_RESPONSE.
#[test]
fn head_over_64_kib_in_many_lines() {
    let lines: Vec<(String, String)> = (0..2000).map(|i| (format!("X-H{i:05}"), "v".repeat(28))).collect();
    let headers: Vec<(&str, &str)> = lines.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let answer = http("200 OK", &headers, PROCESSING.as_bytes());
    let server = RawServer::start(vec![Answer::SendThenClose(answer), Answer::processing()]);
    let client = client_for(&server.url(), "fm-head-many-lines");
    task_row("headers over 64 KiB (2,000 lines of 40 bytes)", E(Code::BadResponse), &client);
}

/// A 60 KiB header line: under the cap, so the answer is used.
#[test]
fn head_just_under_64_kib() {
    let big = "a".repeat(60 * 1024);
    let answer = http("200 OK", &[("X-Big", &big)], PROCESSING.as_bytes());
    let server = RawServer::start(vec![Answer::Send(answer)]);
    let client = client_for(&server.url(), "fm-head-under-cap");
    let observed = task_row("headers just under the cap (one 60 KiB line)", OK, &client);
    assert!(processing(&observed.report.result));
}

/// `SSH-2.0-garbage\r\n`, then FIN: not HTTP at all. It could pass for "an answer cut short"
/// (CM_ERR_NETWORK), but the first line already is no status line, so it is an answer that is
/// not what the API promises: CM_ERR_BAD_RESPONSE (ureq's protocol error). The existing
/// transport test accepts either code; this row pins the precise one.
#[test]
fn head_garbage_instead_of_http() {
    let emulator = common::emulator();
    emulator.script_task(1, vec![Step::garbage(), Step::processing()]);
    let client = emulator_client(&emulator, "fm-garbage");
    task_row("garbage instead of HTTP (SSH banner line, FIN)", E(Code::BadResponse), &client);
}

/// A whole head that is not HTTP (`SSH-2.0-garbage` followed by an empty line): the parser
/// sees all of it and refuses it -> CM_ERR_BAD_RESPONSE.
#[test]
fn head_garbage_with_an_empty_line() {
    let server =
        RawServer::start(vec![Answer::SendThenClose(b"SSH-2.0-garbage\r\n\r\n".to_vec()), Answer::processing()]);
    let client = client_for(&server.url(), "fm-garbage-head");
    task_row("garbage head (SSH banner + empty line)", E(Code::BadResponse), &client);
}

/// `HTTP/1.1 2x0 OK`: a status line without a numeric status -> not HTTP -> CM_ERR_BAD_RESPONSE.
#[test]
fn head_invalid_status_line() {
    let answer = format!("HTTP/1.1 2x0 OK\r\nContent-Length: {}\r\n\r\n{PROCESSING}", PROCESSING.len());
    let server = RawServer::start(vec![Answer::SendThenClose(answer.into_bytes()), Answer::processing()]);
    let client = client_for(&server.url(), "fm-bad-status-line");
    task_row("invalid status line (HTTP/1.1 2x0 OK)", E(Code::BadResponse), &client);
}

/// `Content-Length: abc`: a head that can't be framed -> not valid HTTP -> CM_ERR_BAD_RESPONSE.
#[test]
fn head_invalid_content_length() {
    let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{PROCESSING}");
    let server = RawServer::start(vec![Answer::SendThenClose(answer.into_bytes()), Answer::processing()]);
    let client = client_for(&server.url(), "fm-bad-content-length");
    task_row("invalid Content-Length (abc)", E(Code::BadResponse), &client);
}

/// `HTTP/1.1 999 Odd` with an empty body: a well-formed but unknown non-2xx status. README:
/// "CM_ERR_HTTP_STATUS: non-2xx without an API error body".
#[test]
fn status_999_unknown() {
    let server = RawServer::start(vec![Answer::Send(http("999 Odd", &[], b"")), Answer::processing()]);
    let client = client_for(&server.url(), "fm-status-999");
    let observed = task_row("status 999 with an empty body", E(Code::HttpStatus), &client);
    assert_eq!(observed.report.http_status, Some(999));
}

// ---------------------------------------------------------------------------------------------
// Bodies that are not the JSON the API promises
// ---------------------------------------------------------------------------------------------

/// Bytes 0xFF 0xFE inside the solution's string: not UTF-8, so not JSON (RFC 8259 §8.1).
/// README: "CM_ERR_BAD_RESPONSE: not JSON".
#[test]
fn json_invalid_utf8_in_the_solution() {
    let body = b"{\"errorId\":0,\"status\":\"ready\",\"solution\":{\"text\":\"\xff\xfe\"}}";
    let server = RawServer::start(vec![Answer::Send(http("200 OK", &[], body)), Answer::processing()]);
    let client = client_for(&server.url(), "fm-utf8-solution");
    task_row("invalid UTF-8 in a JSON string (the solution)", E(Code::BadResponse), &client);
}

/// The same bytes in errorDescription of an API error: the body is not JSON, so its errorId
/// can't be trusted either -> CM_ERR_BAD_RESPONSE (HTTP 200).
#[test]
fn json_invalid_utf8_in_an_error_description() {
    let body = b"{\"errorId\":1,\"errorCode\":\"ERROR_ZERO_BALANCE\",\"errorDescription\":\"\xc3\x28\"}";
    let server = RawServer::start(vec![Answer::Send(http("200 OK", &[], body)), Answer::processing()]);
    let client = client_for(&server.url(), "fm-utf8-description");
    task_row("invalid UTF-8 in errorDescription", E(Code::BadResponse), &client);
}

/// The same bytes in a string the library ignores (`"extra":"\xff\xfe"`). The body is still
/// not UTF-8, so not JSON (RFC 8259 §8.1) -> CM_ERR_BAD_RESPONSE, like the two rows above.
#[test]
fn json_invalid_utf8_in_an_ignored_string() {
    let body = b"{\"errorId\":0,\"status\":\"processing\",\"extra\":\"\xff\xfe\"}";
    let server = RawServer::start(vec![Answer::Send(http("200 OK", &[], body)), Answer::processing()]);
    let client = client_for(&server.url(), "fm-utf8-ignored");
    task_row("invalid UTF-8 in a string of an ignored field", E(Code::BadResponse), &client);
}

/// An answer compressed with gzip although the client never asked for it (no
/// Accept-Encoding: gzip; gzip support is not compiled in). The body is gzip bytes, not JSON
/// -> CM_ERR_BAD_RESPONSE.
#[test]
fn body_gzip_encoded() {
    let answer = http("200 OK", &[("Content-Type", "application/json"), ("Content-Encoding", "gzip")], GZIP_PROCESSING);
    // The constant is a gzip member (magic 1f 8b, deflate) whose trailer says it inflates to
    // the processing answer's length.
    assert_eq!(GZIP_PROCESSING[..3], [0x1f, 0x8b, 0x08]);
    assert_eq!(GZIP_PROCESSING[GZIP_PROCESSING.len() - 4..], (PROCESSING.len() as u32).to_le_bytes());
    let server = RawServer::start(vec![Answer::Send(answer), Answer::processing()]);
    let client = client_for(&server.url(), "fm-gzip");
    let observed = task_row("gzip-encoded answer (Content-Encoding: gzip)", E(Code::BadResponse), &client);
    assert!(observed.message().contains("not a JSON object"), "{}", observed.message());
    let head = server.request_heads().remove(0).to_ascii_lowercase();
    assert!(!head.contains("accept-encoding") || !head.contains("gzip"), "the client asked for gzip:\n{head}");
}

/// A solution object holding an array nested 10,000 deep. The body is valid JSON (RFC 8259
/// sets no depth limit) and the solution is an object, so the answer is "ready" -> CM_OK. No
/// recursion limit applies and none is needed: serde_json captures a `RawValue` (and skips an
/// ignored value) with a loop, not recursion, so the work is linear in the body (capped at
/// 1 MiB) and nothing can overflow the stack. The C accessors read it too (their member scan
/// also captures values raw).
#[test]
fn json_nested_10000_in_the_solution() {
    let solution = format!(r#"{{"text":"deep","a":{}1{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    let body = format!(r#"{{"errorId":0,"status":"ready","solution":{solution}}}"#);
    let emulator = common::emulator();
    emulator.script_task(1, vec![Step::raw(200, &body), Step::processing()]);
    let client = emulator_client(&emulator, "fm-nested-solution");
    let observed = task_row("deeply nested JSON (10,000 levels, in the solution)", OK, &client);
    match &observed.report.result {
        Ok(TaskState::Ready(raw)) => assert_eq!(raw.get(), solution, "the solution text, verbatim"),
        other => panic!("{other:?}"),
    }
    // The same answer through the C ABI: the result object scans the solution's members.
    emulator.script_task(2, vec![Step::raw(200, &body)]);
    assert_eq!(c_solution_text(&emulator, "fm-nested-solution-c", 2).as_deref(), Some("deep"));
}

/// The same depth of objects in a field the library ignores: skipped by the same loop ->
/// the processing answer stands: CM_OK.
#[test]
fn json_nested_10000_in_an_ignored_field() {
    let body = format!(
        r#"{{"errorId":0,"status":"processing","extra":{}1{}}}"#,
        r#"{"a":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    let emulator = common::emulator();
    emulator.script_task(1, vec![Step::raw(200, &body), Step::processing()]);
    let client = emulator_client(&emulator, "fm-nested-ignored");
    let observed = task_row("deeply nested JSON (10,000 levels, ignored field)", OK, &client);
    assert!(processing(&observed.report.result));
}

/// 500,000 levels (1 MiB - 64 bytes of brackets), the deepest body the cap lets through, in
/// the solution: still linear, still no stack overflow -> CM_OK (ready), in the C ABI too.
#[test]
fn json_nested_as_deep_as_the_cap_allows() {
    let depth = 500_000;
    let solution = format!(r#"{{"text":"deep","a":{}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
    let body = format!(r#"{{"errorId":0,"status":"ready","solution":{solution}}}"#);
    assert!(body.len() < 1024 * 1024);
    let emulator = common::emulator();
    emulator.script_task(1, vec![Step::raw(200, &body), Step::processing()]);
    let client = emulator_client(&emulator, "fm-nested-cap");
    let observed = task_row("deeply nested JSON (500,000 levels, just under the cap)", OK, &client);
    assert!(matches!(observed.report.result, Ok(TaskState::Ready(_))));
    emulator.script_task(2, vec![Step::raw(200, &body)]);
    assert_eq!(c_solution_text(&emulator, "fm-nested-cap-c", 2).as_deref(), Some("deep"));
}

/// Through the C ABI: getTaskResult for `task_id`, then the solution's "text" member.
fn c_solution_text(emulator: &Emulator, key: &str, task_id: i64) -> Option<String> {
    use capmonster::ffi::calls::cm_get_task_result;
    use capmonster::ffi::client::{cm_client_free, cm_client_new, cm_client_set_base_url, cm_client_set_proxy};
    use capmonster::ffi::library::CM_OK;
    use capmonster::ffi::result::{cm_result_free, cm_result_solution_json, cm_result_solution_string};
    use std::ffi::{CStr, CString};

    let (key, url, field) = (CString::new(key).unwrap(), CString::new(emulator.url()).unwrap(), c"text");
    let mut client = std::ptr::null_mut();
    let mut result = std::ptr::null_mut();
    // SAFETY: valid C strings and out-pointers; every object is freed once, at the end.
    unsafe {
        assert_eq!(cm_client_new(key.as_ptr(), &mut client, std::ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_base_url(client, url.as_ptr(), std::ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_proxy(client, std::ptr::null(), std::ptr::null_mut()), CM_OK);
        assert_eq!(cm_get_task_result(client, task_id, &mut result), CM_OK);
        assert!(!cm_result_solution_json(result).is_null());
        let text = cm_result_solution_string(result, field.as_ptr());
        let text = (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned());
        cm_result_free(result);
        cm_client_free(client);
        text
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers out of range
// ---------------------------------------------------------------------------------------------

/// Runs a createTask row whose answer body is `body` (verbatim text).
fn create_task_row(case: &str, key: &str, body: &str, expect: Expect) -> Observed<i64> {
    let emulator = common::emulator();
    emulator
        .script_method("createTask", vec![Step::raw(200, body), Step::json(200, json!({"errorId": 0, "taskId": 5}))]);
    let client = emulator_client(&emulator, key);
    let task = r#"{"type":"ImageToTextTask","body":"aGVsbG8="}"#;
    row(case, expect, QUICK, || client.create_task(task, None), || client.create_task(task, None))
}

/// 2^63 fits no i64. README: "CM_ERR_BAD_RESPONSE: ... lacks what the method promises".
#[test]
fn number_task_id_above_i64_max() {
    create_task_row(
        "taskId 9223372036854775808 (i64::MAX + 1)",
        "fm-task-id-2-63",
        r#"{"errorId":0,"taskId":9223372036854775808}"#,
        E(Code::BadResponse),
    );
}

/// 2^64 fits no integer type serde_json reads as such (it becomes a float): no task id.
#[test]
fn number_task_id_two_to_the_64() {
    create_task_row(
        "taskId 18446744073709551616 (2^64)",
        "fm-task-id-2-64",
        r#"{"errorId":0,"taskId":18446744073709551616}"#,
        E(Code::BadResponse),
    );
}

/// Task ids are positive; -1 is no task.
#[test]
fn number_task_id_negative() {
    create_task_row("taskId -1", "fm-task-id-negative", r#"{"errorId":0,"taskId":-1}"#, E(Code::BadResponse));
}

/// A float is not an id even when it is integral (1e3).
#[test]
fn number_task_id_float() {
    create_task_row("taskId 1e3 (a float)", "fm-task-id-float", r#"{"errorId":0,"taskId":1e3}"#, E(Code::BadResponse));
}

/// i64::MAX is a valid id, and the follow-up works.
#[test]
fn number_task_id_i64_max() {
    let observed = create_task_row(
        "taskId 9223372036854775807 (i64::MAX)",
        "fm-task-id-max",
        r#"{"errorId":0,"taskId":9223372036854775807}"#,
        OK,
    );
    assert_eq!(observed.report.result.unwrap(), i64::MAX);
}

/// errorId 1e999 overflows f64: serde_json refuses the number, so the body is not JSON it
/// reads -> CM_ERR_BAD_RESPONSE (not "errorId != 0", which it can't know).
#[test]
fn number_error_id_1e999() {
    let emulator = common::emulator();
    emulator.script_task(1, vec![Step::raw(200, r#"{"errorId":1e999,"status":"processing"}"#), Step::processing()]);
    let client = emulator_client(&emulator, "fm-error-id-1e999");
    task_row("errorId 1e999", E(Code::BadResponse), &client);
}

/// errorId 2^64 is a number, and not 0. README: "CM_ERR_API: the service answered errorId != 0".
#[test]
fn number_error_id_two_to_the_64() {
    let emulator = common::emulator();
    emulator.script_task(
        1,
        vec![Step::raw(200, r#"{"errorId":18446744073709551616,"errorCode":"ERROR_X"}"#), Step::processing()],
    );
    let client = emulator_client(&emulator, "fm-error-id-2-64");
    let observed = task_row("errorId 18446744073709551616 (2^64)", E(Code::Api), &client);
    assert_eq!(observed.error().api_code(), Some("ERROR_X"));
}

/// errorId -0 is zero: a normal processing answer.
#[test]
fn number_error_id_negative_zero() {
    let emulator = common::emulator();
    emulator.script_task(1, vec![Step::raw(200, r#"{"errorId":-0,"status":"processing"}"#)]);
    let client = emulator_client(&emulator, "fm-error-id-minus-0");
    let observed = task_row("errorId -0", OK, &client);
    assert!(processing(&observed.report.result));
}

/// balance 1e999 overflows f64 -> not JSON serde_json reads -> CM_ERR_BAD_RESPONSE.
#[test]
fn number_balance_1e999() {
    let emulator = common::emulator();
    emulator.script_method(
        "getBalance",
        vec![
            Step::raw(200, r#"{"errorId":0,"balance":1e999}"#),
            Step::json(200, json!({"errorId": 0, "balance": 1.5})),
        ],
    );
    let client = emulator_client(&emulator, "fm-balance-1e999");
    row("balance 1e999", E(Code::BadResponse), QUICK, || client.get_balance(), || client.get_balance());
}

// ---------------------------------------------------------------------------------------------
// 1xx and 3xx
// ---------------------------------------------------------------------------------------------

/// An unsolicited `100 Continue`, then the 200. RFC 9110 §15.2: a client must accept 1xx
/// answers before the final one; the final 200 is the answer -> CM_OK.
#[test]
fn status_100_then_200() {
    let mut answer = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    answer.extend(http("200 OK", &[("Content-Type", "application/json")], PROCESSING.as_bytes()));
    let server = RawServer::start(vec![Answer::Send(answer)]);
    let client = client_for(&server.url(), "fm-100");
    let observed = task_row("100 Continue, then 200", OK, &client);
    assert!(processing(&observed.report.result));
    assert_eq!(observed.report.http_status, Some(200));
}

/// `103 Early Hints` with a Link header, then the 200 -> the 200 is the answer.
#[test]
fn status_103_then_200() {
    let mut answer = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n".to_vec();
    answer.extend(http("200 OK", &[("Content-Type", "application/json")], PROCESSING.as_bytes()));
    let server = RawServer::start(vec![Answer::Send(answer)]);
    let client = client_for(&server.url(), "fm-103");
    let observed = task_row("103 Early Hints, then 200", OK, &client);
    assert!(processing(&observed.report.result));
}

/// 100, 102 and 103 in a row, then the 200 -> the 200 is the answer.
#[test]
fn status_several_1xx_then_200() {
    let mut answer =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n".to_vec();
    answer.extend(http("200 OK", &[("Content-Type", "application/json")], PROCESSING.as_bytes()));
    let server = RawServer::start(vec![Answer::Send(answer)]);
    let client = client_for(&server.url(), "fm-1xx-many");
    let observed = task_row("100, 102, 103, then 200", OK, &client);
    assert!(processing(&observed.report.result));
}

/// A redirect to another server (which would receive the key if followed). README:
/// "CM_ERR_HTTP_STATUS: non-2xx ... (3xx too: redirects are never followed)".
fn redirect_row(status: u16, case: &str, key: &str) {
    let emulator = common::emulator();
    let target = common::emulator();
    emulator.script_task(
        1,
        vec![Step::raw(status, "").header("Location", &format!("{}/getTaskResult", target.url())), Step::processing()],
    );
    let client = emulator_client(&emulator, key);
    let observed = row(case, E(Code::HttpStatus), QUICK, || client.get_task_result(1), || client.get_task_result(1));
    assert_eq!(observed.report.http_status, Some(status));
    assert_eq!(observed.report.requests, 1);
    assert_eq!(target.method_requests("getTaskResult"), 0, "the key was not posted elsewhere");
}

#[test]
fn status_301_redirect() {
    redirect_row(301, "301 Moved Permanently (Location elsewhere)", "fm-301");
}

#[test]
fn status_303_redirect() {
    redirect_row(303, "303 See Other (Location elsewhere)", "fm-303");
}

/// 307 and 308 would re-POST the body, key included, if followed.
#[test]
fn status_307_redirect() {
    redirect_row(307, "307 Temporary Redirect (Location elsewhere)", "fm-307");
}

#[test]
fn status_308_redirect() {
    redirect_row(308, "308 Permanent Redirect (Location elsewhere)", "fm-308");
}

/// 304 Not Modified carries no body by definition -> non-2xx without an API error body.
#[test]
fn status_304_not_modified() {
    let server =
        RawServer::start(vec![Answer::Send(b"HTTP/1.1 304 Not Modified\r\n\r\n".to_vec()), Answer::processing()]);
    let client = client_for(&server.url(), "fm-304");
    let observed = task_row("304 Not Modified (no body)", E(Code::HttpStatus), &client);
    assert_eq!(observed.report.http_status, Some(304));
}

/// `101 Switching Protocols` that nobody asked for (no Upgrade header was sent): not an answer
/// this client can use; ureq hands it back as the final status and drops the connection.
/// README: "CM_ERR_HTTP_STATUS: non-2xx without an API error body".
#[test]
fn status_101_unasked() {
    let answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".to_vec();
    let server = RawServer::start(vec![Answer::Send(answer), Answer::processing()]);
    let client = client_for(&server.url(), "fm-101");
    let observed = task_row("101 Switching Protocols (not asked for)", E(Code::HttpStatus), &client);
    assert_eq!(observed.report.http_status, Some(101));
}

// ---------------------------------------------------------------------------------------------
// Framing: answers that are legal, and one that tries to desynchronise the connection
// ---------------------------------------------------------------------------------------------

/// HTTP/1.0, no Content-Length: the body ends at FIN. Legal HTTP -> CM_OK.
#[test]
fn body_http_1_0_until_close() {
    let answer = format!("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{PROCESSING}");
    let server = RawServer::start(vec![Answer::SendThenClose(answer.into_bytes()), Answer::processing()]);
    let client = client_for(&server.url(), "fm-http10");
    let observed = task_row("HTTP/1.0 answer, body until FIN", OK, &client);
    assert!(processing(&observed.report.result));
}

/// The answer is followed at once by a second, unrequested answer ("ready", stale). Reading it
/// as the answer to the next request would hand one task's result to another call; the
/// connection must not be reused with bytes left over -> this call CM_OK (processing), the
/// next one gets a fresh answer on a new connection.
#[test]
fn body_unrequested_second_answer_is_not_read_as_the_next_one() {
    let mut both = http("200 OK", &[], PROCESSING.as_bytes());
    both.extend(http("200 OK", &[], br#"{"errorId":0,"status":"ready","solution":{"text":"stale"}}"#));
    let server = RawServer::start(vec![Answer::Send(both), Answer::processing()]);
    let client = client_for(&server.url(), "fm-desync");
    let observed = row(
        "an unrequested 2nd answer after the 1st (desync)",
        OK,
        QUICK,
        || client.get_task_result(1),
        || client.get_task_result(2),
    );
    assert!(processing(&observed.report.result));
    let next = client.get_task_result(2);
    assert!(processing(&next.result), "a stale answer was read as the next one: {:?}", next.result);
    assert_eq!(server.connections(), 2, "the connection with leftover bytes was not reused");
}

// ---------------------------------------------------------------------------------------------
// The raw server
// ---------------------------------------------------------------------------------------------

/// The docs' shortest processing answer.
const PROCESSING: &str = r#"{"errorId":0,"status":"processing"}"#;

/// `{"errorId":0,"status":"processing"}` compressed with gzip (real deflate, mtime 0), made by
/// `python3 -c 'import gzip,sys; sys.stdout.buffer.write(gzip.compress(b"{\"errorId\":0,\"status\":\"processing\"}", mtime=0))'`.
const GZIP_PROCESSING: &[u8] = &[
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xab, 0x56, 0x4a, 0x2d, 0x2a, 0xca, 0x2f, 0xf2, 0x4c,
    0x51, 0xb2, 0x32, 0xd0, 0x51, 0x2a, 0x2e, 0x49, 0x2c, 0x29, 0x2d, 0x56, 0xb2, 0x52, 0x2a, 0x28, 0xca, 0x4f, 0x4e,
    0x2d, 0x2e, 0xce, 0xcc, 0x4b, 0x57, 0xaa, 0x05, 0x00, 0x8c, 0x97, 0xfb, 0x1e, 0x23, 0x00, 0x00, 0x00,
];

/// A complete answer: status line, the headers given, Content-Length, the body.
fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut answer = head.into_bytes();
    answer.extend_from_slice(body);
    answer
}

/// What the raw server does with one request (once the whole request has arrived).
#[derive(Clone, Debug)]
enum Answer {
    /// Write these bytes and keep the connection for the next request.
    Send(Vec<u8>),
    /// Write these bytes, then close (FIN).
    SendThenClose(Vec<u8>),
    /// Write these bytes, keep silent this long, then close.
    SendThenStall(Vec<u8>, Duration),
    /// Write these bytes, wait this long, then reset (RST) the connection.
    Reset(Vec<u8>, Duration),
    /// Write these bytes one at a time, this far apart, then close.
    Drip(Vec<u8>, Duration),
    /// Write the head at once, then the body one byte at a time, this far apart.
    HeadThenDrip(Vec<u8>, Vec<u8>, Duration),
    /// Write `head`, then `chunk` again and again until the client hangs up or `limit` bytes.
    Stream { head: Vec<u8>, chunk: Vec<u8>, limit: usize },
}

impl Answer {
    fn processing() -> Answer {
        Answer::Send(http("200 OK", &[("Content-Type", "application/json")], PROCESSING.as_bytes()))
    }
}

/// The script and what the server saw, shared by its connection threads.
#[derive(Default)]
struct Seen {
    answers: Vec<Answer>,
    next: usize,
    heads: Vec<String>,
    connections: usize,
}

/// A tiny HTTP/1.1 server on loopback that answers each request with the next [`Answer`] of
/// its script (the last one repeats), one thread per connection. It reads a request (head and
/// Content-Length body) with `peek` first, so that a [`Answer::Reset`] closes with the request
/// still unread: Linux then sends an RST whatever SO_LINGER says (RFC 2525 §2.17).
struct RawServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl RawServer {
    fn start(answers: Vec<Answer>) -> RawServer {
        RawServer::start_on(0, answers).expect("a free loopback port")
    }

    fn start_on(port: u16, answers: Vec<Answer>) -> std::io::Result<RawServer> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Seen { answers, ..Seen::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_seen, thread_stop) = (Arc::clone(&seen), Arc::clone(&stop));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                thread_seen.lock().unwrap().connections += 1;
                let seen = Arc::clone(&thread_seen);
                thread::spawn(move || serve(stream, &seen));
            }
        });
        Ok(RawServer { addr, seen, stop })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().heads.len()
    }

    fn connections(&self) -> usize {
        self.seen.lock().unwrap().connections
    }

    fn request_heads(&self) -> Vec<String> {
        self.seen.lock().unwrap().heads.clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        // Wake the accept loop so it sees the flag and ends.
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(mut stream: TcpStream, seen: &Mutex<Seen>) {
    // Bounds the thread of a connection the client keeps idle after the test.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    while let Some((head, length)) = peek_request(&stream) {
        let answer = {
            let mut seen = seen.lock().unwrap();
            seen.heads.push(head);
            let index = seen.next.min(seen.answers.len() - 1);
            seen.next = index + 1;
            seen.answers[index].clone()
        };
        if let Answer::Reset(bytes, pause) = answer {
            let _ = stream.write_all(&bytes);
            thread::sleep(pause);
            reset(stream);
            return;
        }
        let mut request = vec![0; length];
        if stream.read_exact(&mut request).is_err() {
            return;
        }
        match answer {
            Answer::Send(bytes) => {
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            Answer::SendThenClose(bytes) => {
                let _ = stream.write_all(&bytes);
                close(stream);
                return;
            }
            Answer::SendThenStall(bytes, pause) => {
                let _ = stream.write_all(&bytes);
                thread::sleep(pause);
                close(stream);
                return;
            }
            Answer::Drip(bytes, every) => {
                drip(&mut stream, &bytes, every);
                close(stream);
                return;
            }
            Answer::HeadThenDrip(head, body, every) => {
                if stream.write_all(&head).is_ok() {
                    drip(&mut stream, &body, every);
                }
                close(stream);
                return;
            }
            Answer::Stream { head, chunk, limit } => {
                let mut written = 0;
                if stream.write_all(&head).is_ok() {
                    while written < limit && stream.write_all(&chunk).is_ok() {
                        written += chunk.len();
                    }
                }
                close(stream);
                return;
            }
            Answer::Reset(..) => unreachable!("handled above"),
        }
    }
}

fn drip(stream: &mut TcpStream, bytes: &[u8], every: Duration) {
    for byte in bytes {
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            return;
        }
        thread::sleep(every);
    }
}

/// Closes with a FIN, after draining what the client still sends for a moment (so the kernel
/// doesn't turn the close into an RST because of unread bytes).
fn close(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// Closes with an RST: the request is still unread in the socket's receive queue, which makes
/// Linux (and BSDs) answer the close with an RST (std has no stable SO_LINGER setter; this
/// needs no unsafe code and no extra crate). The rows check the client saw a reset.
fn reset(stream: TcpStream) {
    drop(stream);
}

/// Waits (peeking, not reading) until a whole request is buffered. Returns its head as text
/// and its length (head + Content-Length body); `None` when the client closed or went idle.
fn peek_request(stream: &TcpStream) -> Option<(String, usize)> {
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = match stream.peek(&mut buffer) {
            Ok(0) => return None,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        let data = &buffer[..n];
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let body_length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let length = end + 4 + body_length;
            if n >= length {
                return Some((head, length));
            }
        }
        if n == buffer.len() {
            return None; // not a request this server reads
        }
        // More is on its way: peek returns what is there at once, so wait a little.
        thread::sleep(Duration::from_millis(1));
    }
}
