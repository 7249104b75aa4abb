//! The service's behaviour: API methods, scripts, counters and the `/_emulator/*` control
//! endpoints. Pure request -> reply logic; no sockets here (see `http.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::account::{self, Account, KEY_DESCRIPTION};
use crate::exchange::{Outcome, Reply, Request, Response, STAMP_DIGITS};
use crate::script::{Action, Script, ScriptEntry, Step, Target, MAX_PAUSE_MS};
use crate::solutions;
use crate::Config;

/// The API methods served, in the order `/_emulator/stats` lists them. getUserAgent is a GET
/// of `USER_AGENT_PATHS` (plain text), not a POST of `/getUserAgent`.
pub const API_METHODS: [&str; 6] = [
    "createTask",
    "getTaskResult",
    "getBalance",
    "reportIncorrectImageCaptcha",
    "reportIncorrectTokenCaptcha",
    "getUserAgent",
];

/// Where getUserAgent is served: the emulator's short path, and the official page's path.
pub const USER_AGENT_PATHS: [&str; 2] = ["/useragent", "/api/useragent/actual"];

/// The User-Agent getUserAgent answers with, unless a script says otherwise.
pub const USER_AGENT: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// Most tasks kept (they never expire; `/_emulator/reset` clears them). Beyond it createTask
/// answers ERROR_NO_SLOT_AVAILABLE, which clients already treat as "retry later".
pub const MAX_TASKS: usize = 1_000_000;

/// Most task ids whose getTaskResult requests are counted; requests for further new ids
/// are answered but not counted, so random ids can't grow the table without bound.
pub const MAX_COUNTED_TASKS: usize = 1_000_000;

/// Most scripts (task ids + methods) held at once; scripting a new key beyond it fails.
pub const MAX_SCRIPTS: usize = 100_000;

/// getTaskResult requests the service answers per task before ERROR_TOO_MUCH_REQUESTS
/// (the documented limit, past which the real service may block the account).
pub const MAX_POLLS_PER_TASK: u32 = 120;

/// Longest solve delay a task can ask for (`emulatorSolveAfterMs` / `solveAfterMs`): a day.
pub const MAX_SOLVE_AFTER_MS: u64 = 86_400_000;

const NO_SUCH_TASK_DESCRIPTION: &str = "The captcha that you are requesting was not found. Make sure you are \
     requesting a status update only within 5 minutes of uploading.";
const TOO_MUCH_DESCRIPTION: &str = "You have exceeded the limit of requests to receive an answer for one task. \
     Try to request the result of the task no more than 1 time in 2 seconds.";

const JSON_TYPE: &str = "application/json; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";

/// One created task.
struct Task {
    solution: Value,
    created_unix: u64,
    /// `None` when the solve delay overflows `Instant` (the task never becomes ready), or
    /// while the task waits for its first poll (`ready_after_first_poll`).
    ready_at: Option<Instant>,
    /// The wall clock of `ready_at` in µs since the Unix epoch, for [`READY_STAMP_FIELD`].
    ready_unix_us: Option<u128>,
    /// Set until the first getTaskResult for the task: then it turns ready this long after.
    ready_after_first_poll: Option<Duration>,
    solve_after: Duration,
    /// Accepted and kept like the service does; the emulator never calls it.
    callback_url: Option<String>,
    /// The createTask's `softId`, kept so tests can see that a client sent it.
    soft_id: Option<u64>,
}

/// Everything behind the lock. The lock is held only to count and look up, never across
/// socket I/O or a delay.
struct State {
    tasks: HashMap<i64, Task>,
    next_id: i64,
    scripts: HashMap<Target, Script>,
    method_counts: [u32; API_METHODS.len()],
    task_counts: HashMap<i64, u32>,
    /// The `softId` of the last createTask that created a task (`None`: it sent none).
    last_soft_id: Option<u64>,
    /// Revoked keys, address bans, banned proxies, the balance.
    account: Account,
}

impl State {
    fn new(config: &Config) -> State {
        State {
            tasks: HashMap::new(),
            next_id: config.first_task_id,
            scripts: HashMap::new(),
            method_counts: [0; API_METHODS.len()],
            task_counts: HashMap::new(),
            last_soft_id: None,
            account: account::initial(config),
        }
    }
}

/// The emulated service, shared by all connection tasks.
pub(crate) struct Service {
    config: Config,
    state: Mutex<State>,
    connections: AtomicU64,
    /// Most connections open at once since the last reset.
    peak_connections: AtomicU64,
    /// Connections accepted by the TLS listener (also counted in `connections`).
    tls_connections: AtomicU64,
    /// Requests the TLS listener read over HTTP/1.1 and over HTTP/2.
    tls_http1_requests: AtomicU64,
    http2_requests: AtomicU64,
    verbose: AtomicBool,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The wall clock `after` from now, in µs since the Unix epoch.
fn unix_us_after(after: Duration) -> Option<u128> {
    SystemTime::now().checked_add(after)?.duration_since(UNIX_EPOCH).ok().map(|d| d.as_micros())
}

fn json_reply(status: u16, body: &Value) -> Reply {
    // Serializing a Value can't fail (keys are strings); fall back to an empty object anyway.
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Reply::respond(Response::new(status, JSON_TYPE, bytes))
}

fn text_reply(status: u16, text: &str) -> Reply {
    Reply::respond(Response::new(status, TEXT_TYPE, text.as_bytes().to_vec()))
}

fn not_found() -> Reply {
    let body = "<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body></html>";
    Reply::respond(Response::new(404, "text/html; charset=utf-8", body.as_bytes().to_vec()))
}

fn wrong_method(allow: &'static str) -> Reply {
    let mut reply = text_reply(405, &format!("405 Method Not Allowed: use {allow}\n"));
    reply.set_allow(allow);
    reply
}

/// `{"errorId":1,...}`; createTask errors also carry `"taskId":0` like the service's.
fn api_error_body(method: &str, code: &str, description: Option<&str>) -> Value {
    let mut body = Map::new();
    body.insert("errorId".into(), json!(1));
    body.insert("errorCode".into(), json!(code));
    if let Some(d) = description {
        body.insert("errorDescription".into(), json!(d));
    }
    if method == "createTask" {
        body.insert("taskId".into(), json!(0));
    }
    Value::Object(body)
}

fn api_error(method: &str, code: &str, description: &str) -> Reply {
    json_reply(200, &api_error_body(method, code, Some(description)))
}

fn processing_body() -> Value {
    json!({"errorCode": null, "errorDescription": null, "errorId": 0, "status": "processing"})
}

/// The solution member that [`Config::stamp_ready`] adds to ready answers.
pub const STAMP_FIELD: &str = "emulatorSentAtUs";

/// The solution member that [`Config::stamp_ready`] adds to the ready answers of created
/// tasks: when the task turned ready (wall clock, µs since the Unix epoch, 20 digits).
pub const READY_STAMP_FIELD: &str = "emulatorReadyAtUs";

/// A ready answer; with `stamp`, an object solution gets a [`STAMP_FIELD`] placeholder that
/// the connection fills with the send time just before writing (see `Response::stamp_now`),
/// and [`READY_STAMP_FIELD`] when the task's readiness time is known.
fn ready_reply(stamp: bool, mut solution: Value, create_time: u64, end_time: u64, ready_us: Option<u128>) -> Reply {
    let stamped = match &mut solution {
        Value::Object(members) if stamp => {
            if let Some(us) = ready_us {
                members.insert(READY_STAMP_FIELD.to_owned(), json!(format!("{us:0width$}", width = STAMP_DIGITS)));
            }
            members.insert(STAMP_FIELD.to_owned(), json!("0".repeat(STAMP_DIGITS)));
            true
        }
        _ => false,
    };
    let mut reply = json_reply(200, &ready_body(solution, create_time, end_time));
    if let (true, Outcome::Respond(response)) = (stamped, &mut reply.outcome) {
        let marker = format!("\"{STAMP_FIELD}\":\"");
        response.mark_stamp(marker.as_bytes());
    }
    reply
}

/// The ready answer, with the extra fields the real service adds (clients must ignore them).
fn ready_body(solution: Value, create_time: u64, end_time: u64) -> Value {
    json!({
        "errorId": 0,
        "status": "ready",
        "solution": solution,
        "cost": 0.0002,
        "ip": "127.0.0.1",
        "createTime": create_time,
        "endTime": end_time,
        "solveCount": 1
    })
}

/// Reads an optional solve delay in milliseconds; `Err` names the field for the message.
fn solve_after_field(task: &Value, field: &str, default: Duration) -> Result<Duration, String> {
    match task.get(field) {
        None => Ok(default),
        Some(v) => match v.as_u64() {
            Some(ms) if ms <= MAX_SOLVE_AFTER_MS => Ok(Duration::from_millis(ms)),
            _ => Err(format!("{field} must be an integer in 0..={MAX_SOLVE_AFTER_MS}")),
        },
    }
}

/// The body of `POST /_emulator/task(s)`: a task object of a known type, and its
/// `solveAfterMs` (default: `default_after`); or what is wrong with it (for a 400).
fn control_task_body(body: &[u8], default_after: Duration) -> Result<(Value, Duration), String> {
    let task: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    match task.get("type").and_then(Value::as_str) {
        Some(t) if solutions::is_known_type(t) => {}
        Some(t) => return Err(format!("unknown task type {t:?}")),
        None => return Err("the body must be an object with a string \"type\"".to_owned()),
    }
    let solve_after = solve_after_field(&task, "solveAfterMs", default_after)?;
    Ok((task, solve_after))
}

impl Service {
    pub(crate) fn new(config: Config) -> Service {
        let state = State::new(&config);
        Service {
            config,
            state: Mutex::new(state),
            connections: AtomicU64::new(0),
            peak_connections: AtomicU64::new(0),
            tls_connections: AtomicU64::new(0),
            tls_http1_requests: AtomicU64::new(0),
            http2_requests: AtomicU64::new(0),
            verbose: AtomicBool::new(false),
        }
    }

    /// The state, even if a thread panicked while holding the lock: counters and tables
    /// stay usable, and a test server must keep answering.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn default_solve_after(&self) -> Duration {
        self.config.solve_after
    }

    pub(crate) fn set_verbose(&self, on: bool) {
        self.verbose.store(on, Ordering::Relaxed);
    }

    pub(crate) fn verbose(&self) -> bool {
        self.verbose.load(Ordering::Relaxed)
    }

    pub(crate) fn count_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_tls_connection(&self) {
        self.tls_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request read by the TLS listener, by protocol.
    pub(crate) fn count_tls_request(&self, http2: bool) {
        let counter = if http2 { &self.http2_requests } else { &self.tls_http1_requests };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes how many connections are open now (one was just admitted), for the peak.
    pub(crate) fn note_open_connections(&self, open: usize) {
        self.peak_connections.fetch_max(open as u64, Ordering::Relaxed);
    }

    pub(crate) fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    pub(crate) fn task_requests(&self, task_id: i64) -> u32 {
        self.lock().task_counts.get(&task_id).copied().unwrap_or(0)
    }

    pub(crate) fn method_requests(&self, method: &str) -> u32 {
        API_METHODS.iter().position(|m| *m == method).map_or(0, |i| self.lock().method_counts[i])
    }

    pub(crate) fn callback_url(&self, task_id: i64) -> Option<String> {
        self.lock().tasks.get(&task_id).and_then(|t| t.callback_url.clone())
    }

    pub(crate) fn soft_id(&self, task_id: i64) -> Option<u64> {
        self.lock().tasks.get(&task_id).and_then(|t| t.soft_id)
    }

    pub(crate) fn stats_json(&self) -> Value {
        let state = self.lock();
        let methods: Map<String, Value> =
            API_METHODS.iter().zip(state.method_counts).map(|(m, n)| ((*m).to_owned(), json!(n))).collect();
        let tasks: Map<String, Value> = state.task_counts.iter().map(|(id, n)| (id.to_string(), json!(n))).collect();
        json!({
            "connections": self.connections(),
            "peakConnections": self.peak_connections.load(Ordering::Relaxed),
            "tlsConnections": self.tls_connections.load(Ordering::Relaxed),
            "tlsHttp1Requests": self.tls_http1_requests.load(Ordering::Relaxed),
            "http2Requests": self.http2_requests.load(Ordering::Relaxed),
            "methods": methods,
            "tasks": tasks,
            "lastSoftId": state.last_soft_id,
        })
    }

    /// The account's standing now.
    pub(crate) fn account(&self) -> Account {
        self.lock().account.clone()
    }

    /// Changes the account's standing (the `POST /_emulator/account` body).
    pub(crate) fn update_account(&self, body: &Value) -> Result<(), String> {
        self.lock().account.update(body)
    }

    /// Forgets tasks, scripts and every counter, restarts task ids at `first_task_id`, and
    /// gives the account back its configured standing.
    pub(crate) fn reset(&self) {
        *self.lock() = State::new(&self.config);
        self.connections.store(0, Ordering::Relaxed);
        self.peak_connections.store(0, Ordering::Relaxed);
        for counter in [&self.tls_connections, &self.tls_http1_requests, &self.http2_requests] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// Installs (or, with no steps, removes) a script; fails only when the table is full.
    pub(crate) fn set_script(&self, target: Target, steps: Vec<Step>) -> Result<(), String> {
        let mut state = self.lock();
        match Script::new(steps) {
            None => {
                state.scripts.remove(&target);
            }
            Some(script) => {
                if state.scripts.len() >= MAX_SCRIPTS && !state.scripts.contains_key(&target) {
                    return Err(format!("the script table is full ({MAX_SCRIPTS} scripts); reset first"));
                }
                state.scripts.insert(target, script);
            }
        }
        Ok(())
    }

    /// Creates a task from its JSON object (which must have a string `type`); `None` when
    /// the task table is full or ids ran out.
    pub(crate) fn add_task(
        &self,
        task: &Value,
        solve_after: Duration,
        callback_url: Option<String>,
        soft_id: Option<u64>,
    ) -> Option<i64> {
        let solution = solutions::solution_for(task);
        let mut state = self.lock();
        if state.tasks.len() >= MAX_TASKS {
            return None;
        }
        let id = state.next_id;
        state.next_id = id.checked_add(1)?;
        let task = Task {
            solution,
            created_unix: unix_now(),
            ready_at: Instant::now().checked_add(solve_after),
            ready_unix_us: unix_us_after(solve_after),
            ready_after_first_poll: None,
            solve_after,
            callback_url,
            soft_id,
        };
        state.tasks.insert(id, task);
        state.last_soft_id = soft_id;
        Some(id)
    }

    /// Creates `count` tasks under one lock (consecutive ids, one creation time); task
    /// `first + j` is ready `solve_after + spread * j / count` after it, or, with
    /// `after_first_poll`, that long after its first getTaskResult. All or nothing: `None`
    /// when the table cannot take them all or ids ran out.
    pub(crate) fn add_tasks(
        &self,
        task: &Value,
        solve_after: Duration,
        spread: Duration,
        after_first_poll: Option<Duration>,
        count: usize,
    ) -> Option<i64> {
        let solution = solutions::solution_for(task);
        let mut state = self.lock();
        if count == 0 || state.tasks.len().checked_add(count)? > MAX_TASKS {
            return None;
        }
        let first = state.next_id;
        state.next_id = first.checked_add(i64::try_from(count).ok()?)?;
        let (now, created_unix) = (Instant::now(), unix_now());
        state.tasks.reserve(count);
        for j in 0..count {
            let offset = spread.as_nanos() * j as u128 / count as u128;
            let after = solve_after.saturating_add(Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX)));
            let task = Task {
                solution: solution.clone(),
                created_unix,
                ready_at: if after_first_poll.is_some() { None } else { now.checked_add(after) },
                ready_unix_us: if after_first_poll.is_some() { None } else { unix_us_after(after) },
                ready_after_first_poll: after_first_poll,
                solve_after: after,
                callback_url: None,
                soft_id: None,
            };
            state.tasks.insert(first + j as i64, task);
        }
        Some(first)
    }

    /// Answers one request.
    pub(crate) fn handle(&self, request: &Request) -> Reply {
        let post = request.method == "POST";
        match request.path.as_str() {
            "/_emulator/script" if post => self.control_script(&request.body),
            "/_emulator/reset" if post => {
                self.reset();
                json_reply(200, &json!({"ok": true}))
            }
            "/_emulator/task" if post => self.control_task(&request.body),
            "/_emulator/tasks" if post => self.control_tasks(&request.body),
            "/_emulator/stats" if request.method == "GET" || request.method == "HEAD" => {
                json_reply(200, &self.stats_json())
            }
            "/_emulator/account" if post => self.control_account(&request.body),
            "/_emulator/account" if request.method == "GET" || request.method == "HEAD" => {
                json_reply(200, &self.account().to_json())
            }
            "/_emulator/script" | "/_emulator/reset" | "/_emulator/task" | "/_emulator/tasks" => wrong_method("POST"),
            "/_emulator/stats" => wrong_method("GET"),
            "/_emulator/account" => wrong_method("GET, POST"),
            path if USER_AGENT_PATHS.contains(&path) => match request.method.as_str() {
                "GET" | "HEAD" => self.user_agent(),
                _ => wrong_method("GET"),
            },
            "/getUserAgent" => not_found(),
            path => match API_METHODS.iter().position(|m| path.strip_prefix('/') == Some(m)) {
                Some(index) if post => {
                    let mut reply = self.api_call(index, &request.body);
                    let extra = self.config.answer_delay.min(Duration::from_millis(MAX_PAUSE_MS));
                    reply.delay = reply.delay.saturating_add(extra);
                    reply
                }
                Some(_) => wrong_method("POST"),
                None => not_found(),
            },
        }
    }

    fn control_script(&self, body: &[u8]) -> Reply {
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return text_reply(400, &format!("invalid JSON: {e}\n")),
        };
        let entry = match ScriptEntry::from_json(&value, is_api_method) {
            Ok(entry) => entry,
            Err(e) => return text_reply(400, &format!("bad script: {e}\n")),
        };
        match self.set_script(entry.target, entry.steps) {
            Ok(()) => json_reply(200, &json!({"ok": true})),
            Err(e) => text_reply(503, &format!("{e}\n")),
        }
    }

    fn control_account(&self, body: &[u8]) -> Reply {
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return text_reply(400, &format!("invalid JSON: {e}\n")),
        };
        match self.update_account(&value) {
            Ok(()) => json_reply(200, &self.account().to_json()),
            Err(e) => text_reply(400, &format!("bad account: {e}\n")),
        }
    }

    fn control_task(&self, body: &[u8]) -> Reply {
        let (task, solve_after) = match control_task_body(body, self.config.solve_after) {
            Ok(parsed) => parsed,
            Err(e) => return text_reply(400, &format!("{e}\n")),
        };
        match self.add_task(&task, solve_after, None, None) {
            Some(id) => json_reply(200, &json!({"taskId": id})),
            None => text_reply(503, &format!("the task table is full ({MAX_TASKS} tasks); reset first\n")),
        }
    }

    /// `POST /_emulator/tasks`: `count` tasks at once, ids consecutive; task `first + j` is
    /// ready `solveAfterMs + spreadMs * j / count` after creation, or `readyAfterFirstPollMs`
    /// after its first getTaskResult (like a task created just before its first poll).
    fn control_tasks(&self, body: &[u8]) -> Reply {
        let (task, solve_after) = match control_task_body(body, self.config.solve_after) {
            Ok(parsed) => parsed,
            Err(e) => return text_reply(400, &format!("{e}\n")),
        };
        let count = match task.get("count").and_then(Value::as_u64) {
            Some(n) if (1..=MAX_TASKS as u64).contains(&n) => n as usize,
            _ => return text_reply(400, &format!("\"count\" must be an integer in 1..={MAX_TASKS}\n")),
        };
        let spread = match solve_after_field(&task, "spreadMs", Duration::ZERO) {
            Ok(d) => d,
            Err(e) => return text_reply(400, &format!("{e}\n")),
        };
        let after_first_poll = match task.get("readyAfterFirstPollMs") {
            None => None,
            Some(_) => match solve_after_field(&task, "readyAfterFirstPollMs", Duration::ZERO) {
                Ok(d) => Some(d),
                Err(e) => return text_reply(400, &format!("{e}\n")),
            },
        };
        match self.add_tasks(&task, solve_after, spread, after_first_poll, count) {
            Some(first) => json_reply(200, &json!({"firstTaskId": first, "count": count})),
            None => text_reply(
                503,
                &format!("the task table cannot take {count} more tasks ({MAX_TASKS} at most); reset first\n"),
            ),
        }
    }

    /// getUserAgent: count it, play the method's script if there is one (e.g. an HTML page,
    /// an empty or oversized body), else the User-Agent as plain text.
    fn user_agent(&self) -> Reply {
        const METHOD: &str = "getUserAgent";
        let index = API_METHODS.iter().position(|m| *m == METHOD).unwrap_or(0);
        let mut state = self.lock();
        state.method_counts[index] = state.method_counts[index].saturating_add(1);
        let scripted = state.scripts.get_mut(&Target::Method(METHOD.to_owned())).map(Script::take);
        drop(state);
        let mut reply = match scripted {
            Some(step) => render_step(METHOD, step, None, self.config.stamp_ready),
            None => text_reply(200, USER_AGENT),
        };
        let extra = self.config.answer_delay.min(Duration::from_millis(MAX_PAUSE_MS));
        reply.delay = reply.delay.saturating_add(extra);
        reply
    }

    /// One API call: count it, play a script if one matches, else behave like the service.
    fn api_call(&self, index: usize, body: &[u8]) -> Reply {
        let method = API_METHODS[index];
        let parsed = serde_json::from_slice::<Value>(body);
        let mut state = self.lock();
        state.method_counts[index] = state.method_counts[index].saturating_add(1);
        let body = match parsed {
            Ok(v) => v,
            Err(e) => return text_reply(400, &format!("invalid JSON body: {e}\n")),
        };
        let task_id = body.get("taskId").and_then(Value::as_i64);
        let polled = if method == "getTaskResult" { task_id } else { None };
        let mut polls = 0;
        if let Some(id) = polled {
            let room = state.task_counts.len() < MAX_COUNTED_TASKS;
            if let Some(n) = state.task_counts.get_mut(&id) {
                *n = n.saturating_add(1);
                polls = *n;
            } else if room {
                state.task_counts.insert(id, 1);
                polls = 1;
            }
        }

        // A script stands in for the whole service, key checks included, so that a test
        // can inject any answer whatever key its client sends.
        let task_target = polled.map(Target::Task).filter(|t| state.scripts.contains_key(t));
        let target = task_target.unwrap_or_else(|| Target::Method(method.to_owned()));
        let scripted = state.scripts.get_mut(&target).map(Script::take);
        if let Some(step) = scripted {
            let times = polled.and_then(|id| state.tasks.get(&id)).map(|t| (t.created_unix, t.solve_after));
            return render_step(method, step, times, self.config.stamp_ready);
        }

        if let Some((code, description)) = state.account.refuses_call(body.get("clientKey").and_then(Value::as_str)) {
            return api_error(method, code, description);
        }
        if !self.key_accepted(&body) {
            return api_error(method, "ERROR_KEY_DOES_NOT_EXIST", KEY_DESCRIPTION);
        }
        match method {
            "createTask" => {
                let refusal =
                    body.get("task").filter(|task| task.is_object()).and_then(|task| state.account.refuses_task(task));
                if let Some((code, description)) = refusal {
                    return api_error(method, code, description);
                }
                drop(state);
                self.create_task(&body)
            }
            "getTaskResult" => {
                let task = match task_id.and_then(|id| state.tasks.get_mut(&id)) {
                    Some(task) => task,
                    None => return api_error(method, "ERROR_NO_SUCH_CAPCHA_ID", NO_SUCH_TASK_DESCRIPTION),
                };
                if polls > MAX_POLLS_PER_TASK {
                    return api_error(method, "ERROR_TOO_MUCH_REQUESTS", TOO_MUCH_DESCRIPTION);
                }
                if let Some(after) = task.ready_after_first_poll.take() {
                    task.ready_at = Instant::now().checked_add(after);
                    task.ready_unix_us = unix_us_after(after);
                }
                match task.ready_at {
                    Some(at) if Instant::now() >= at => {
                        let end = task.created_unix.saturating_add(task.solve_after.as_secs());
                        let (stamp, ready_us) = (self.config.stamp_ready, task.ready_unix_us);
                        ready_reply(stamp, task.solution.clone(), task.created_unix, end, ready_us)
                    }
                    _ => json_reply(200, &processing_body()),
                }
            }
            "getBalance" => json_reply(200, &json!({"errorId": 0, "balance": state.account.balance})),
            _ => {
                // reportIncorrect*Captcha: fine for any task the emulator knows of.
                let known = task_id
                    .is_some_and(|id| state.tasks.contains_key(&id) || state.scripts.contains_key(&Target::Task(id)));
                if known {
                    json_reply(200, &json!({"errorId": 0, "status": "success"}))
                } else {
                    api_error(method, "ERROR_NO_SUCH_CAPCHA_ID", NO_SUCH_TASK_DESCRIPTION)
                }
            }
        }
    }

    /// A key is a non-empty string, equal to the configured one when there is one.
    fn key_accepted(&self, body: &Value) -> bool {
        match body.get("clientKey").and_then(Value::as_str) {
            Some(key) if !key.is_empty() => match self.config.client_key.as_deref() {
                Some(expected) => expected == key,
                None => true,
            },
            _ => false,
        }
    }

    fn create_task(&self, body: &Value) -> Reply {
        const METHOD: &str = "createTask";
        let task = match body.get("task") {
            Some(task @ Value::Object(_)) if task.get("type").is_some_and(Value::is_string) => task,
            _ => {
                return api_error(
                    METHOD,
                    "ERROR_TASK_ABSENT",
                    "Task property is empty or not set in createTask method. Please refer to API documentation.",
                )
            }
        };
        let task_type = task.get("type").and_then(Value::as_str).unwrap_or("");
        if !solutions::is_known_type(task_type) {
            return api_error(
                METHOD,
                "ERROR_TASK_NOT_SUPPORTED",
                "Task type is not supported or inaccurately specified. Please check \"type\" property in task object.",
            );
        }
        let image_missing = !matches!(task.get("body"), Some(Value::String(b)) if !b.is_empty());
        if task_type == "ImageToTextTask" && image_missing {
            return api_error(
                METHOD,
                "ERROR_ZERO_CAPTCHA_FILESIZE",
                "The size of the captcha you are uploading is less than 100 bytes.",
            );
        }
        // `emulatorSolveAfterMs` is emulator-only: it lets one test have a slow and a fast
        // task side by side. The real service would ignore it.
        let solve_after = match solve_after_field(task, "emulatorSolveAfterMs", self.config.solve_after) {
            Ok(d) => d,
            Err(e) => return api_error(METHOD, "ERROR_TASK_NOT_SUPPORTED", &e),
        };
        let callback_url = body.get("callbackUrl").and_then(Value::as_str).map(str::to_owned);
        let soft_id = body.get("softId").and_then(Value::as_u64);
        match self.add_task(task, solve_after, callback_url, soft_id) {
            Some(id) => json_reply(200, &json!({"errorId": 0, "taskId": id})),
            None => api_error(
                METHOD,
                "ERROR_NO_SLOT_AVAILABLE",
                "No idle workers are available at the moment (the emulator's task table is full).",
            ),
        }
    }
}

/// Whether `name` is an API method (the `method` of a method script).
pub fn is_api_method(name: &str) -> bool {
    API_METHODS.contains(&name)
}

/// Turns a scripted step into a reply. `times` (creation time, solve delay) comes from the
/// task when the scripted id was also created, so ready answers carry plausible times.
fn render_step(method: &str, step: Step, times: Option<(u64, Duration)>, stamp: bool) -> Reply {
    let mut reply = match step.action {
        Action::Processing => json_reply(200, &processing_body()),
        Action::Ready(solution) => {
            let (created, end) = match times {
                Some((created, after)) => (created, created.saturating_add(after.as_secs())),
                None => (unix_now(), unix_now()),
            };
            ready_reply(stamp, solution, created, end, None)
        }
        Action::ApiError { code, description, status } => {
            json_reply(status, &api_error_body(method, &code, description.as_deref()))
        }
        Action::Json { status, body } => json_reply(status, &body),
        Action::Raw { status, body, content_type } => {
            let content_type = content_type.unwrap_or_else(|| TEXT_TYPE.to_owned());
            Reply::respond(Response::new(status, content_type, body.into_bytes()))
        }
        Action::Fault(fault) => Reply::fault(fault),
    };
    reply.delay = step.delay;
    reply.close_after = step.close_after;
    reply.set_headers(step.headers);
    reply
}
