//! The safe Rust client: one account key, one connection pool, one method per API call.
//!
//! Every public method returns a [`Report`]: the outcome plus how many HTTP requests the call
//! sent, the last HTTP status seen and what the request budget had to say, which is what a
//! `cm_result` carries.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::api::answer::{self, TaskState};
use crate::api::error::{Code, Error};
use crate::budget::guard::{self, Heard};
use crate::budget::{self, Admission, Ask, Disowned, FinalAnswer, KeyDigest, NoticesTold};
use crate::cancel::Cancel;
use crate::net::endpoint::{self, BaseUrl, ProxyUrl};
use crate::net::gate::{Gate, Refused};
use crate::net::transport::{Channel, Method, Wire};
use crate::net::trust::Trust;

pub(crate) mod link;
pub mod stats;

use crate::log::{self, Level};
use link::{block_now, Link};
use stats::Counters;
pub use stats::Stats;

/// Default per-request timeout, as in the official SDKs.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(21_000);
/// The longest client key accepted (real keys are 32 characters).
pub const MAX_KEY_BYTES: usize = 1024;
/// The largest task JSON accepted by `create_task`.
pub const MAX_TASK_JSON_BYTES: usize = 8 * 1024 * 1024;

/// The outcome of one call, with what it cost.
#[derive(Debug)]
pub struct Report<T> {
    pub result: Result<T, Error>,
    /// HTTP requests this call sent (retries included).
    pub requests: u32,
    /// The last HTTP status received, if any answer arrived.
    pub http_status: Option<u16>,
    /// What the request budget had to say: why it and the account guard are not shared between
    /// processes, or what was repaired in its file. Each client is told once: in the report of
    /// its first call (any API call or wait, blocking or on a waiter) that got past its
    /// arguments' checks, answered by the service or by the guard, and again only if something
    /// new happens (the file fails later); a wait dropped before its report takes the notice
    /// with it. `None` when all is well.
    pub notice: Option<String>,
}

/// What one call has spent so far.
#[derive(Default, Debug, Clone)]
pub(crate) struct CallStats {
    pub requests: u32,
    pub http_status: Option<u16>,
    /// The budget's notices handed to this call (see [`Report::notice`]).
    pub notice: Option<String>,
}

impl CallStats {
    pub fn report<T>(&self, result: Result<T, Error>) -> Report<T> {
        Report { result, requests: self.requests, http_status: self.http_status, notice: self.notice.clone() }
    }
}

/// Adds `more` to the notices of `into`.
#[cold]
fn join_notice(into: &mut Option<String>, more: String) {
    *into = Some(match into.take() {
        Some(before) => format!("{before}; {more}"),
        None => more,
    });
}

/// Per-call options of the single calls: a deadline nearer than the request timeout, and a
/// token that cancels the call even while its request is in flight.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// `None`: the client's request timeout; otherwise the smaller of the two.
    pub timeout: Option<Duration>,
    pub cancel: Option<Arc<Cancel>>,
}

/// What bounds one call: when it must end, and the tokens that stop it.
#[derive(Clone, Copy, Default)]
pub(crate) struct Bounds<'a> {
    pub deadline: Option<Instant>,
    pub cancels: &'a [&'a Arc<Cancel>],
}

impl Bounds<'_> {
    pub fn cancelled(&self) -> bool {
        self.cancels.iter().any(|cancel| cancel.is_triggered())
    }
}

/// What kind of answer a report says was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incorrect {
    /// The text of an image captcha (reportIncorrectImageCaptcha).
    Image,
    /// A token (reCAPTCHA, Turnstile, ...) the site refused (reportIncorrectTokenCaptcha).
    Token,
}

/// Where proxy settings come from.
#[derive(Clone, Debug)]
enum ProxyChoice {
    /// The standard environment variables, by curl's rules (the default).
    Environment,
    /// Set by the caller; `None` means direct connections.
    Set(Option<ProxyUrl>),
}

#[derive(Clone, Debug)]
struct Settings {
    base_url: BaseUrl,
    /// The getUserAgent page.
    user_agent_url: BaseUrl,
    request_timeout: Duration,
    proxy: ProxyChoice,
    trust: Trust,
    /// The cap of the gate, and the size of the pool.
    max_connections: u32,
    /// Whether the program chose `max_connections`; if not, it follows the engine's default.
    max_connections_chosen: bool,
}

/// A client of the CapMonster Cloud API. `Send + Sync`: share it between threads freely.
pub struct Client {
    key_json: String,
    key: String,
    /// What this client's tasks are counted under in the budget: key and endpoint.
    digest: AtomicU64,
    /// Which of the budget's notices this client's reports have carried.
    budget_notices: NoticesTold,
    settings: Mutex<Settings>,
    /// What requests are sent with; an error when the environment's proxy is malformed, which
    /// every call then reports (creating the client never fails because of the environment).
    channel: RwLock<Arc<Result<Channel, Error>>>,
    wire: Arc<Wire>,
    gate: Arc<Gate>,
    /// The `softId` sent with every createTask; 0: none.
    soft_id: AtomicU32,
    /// The waiters' engine while any waiter of this client lives (see `engine.rs`).
    pub(crate) engine: Mutex<Weak<crate::wait::engine::Engine>>,
    /// What [`Client::stats`] reads; shared with the client's waits.
    pub(crate) counters: Arc<Counters>,
    /// Whether the waiters' engine sends on an event loop (see `wait/events.rs`).
    event_loop: AtomicBool,
    /// Bumped by every settings change: the event loop rebuilds its channel when it moves.
    settings_version: AtomicU64,
    /// HTTP/2 streams in flight on the event loop (the gate counts every other request).
    events_in_flight: Arc<AtomicU32>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a secret: never shown.
        f.debug_struct("Client").field("client_key", &"***").field("settings", &self.settings()).finish()
    }
}

impl Client {
    /// A client for the official service, with the environment's proxy (if any).
    pub fn new(client_key: &str) -> Result<Client, Error> {
        if client_key.is_empty() {
            return Err(Error::invalid_argument("client_key is empty"));
        }
        if client_key.len() > MAX_KEY_BYTES {
            return Err(Error::invalid_argument(format!("client_key is longer than {MAX_KEY_BYTES} bytes")));
        }
        let engine = Engine::from_env(std::env::var("CAPMONSTER_ENGINE").ok().as_deref());
        let settings = Settings {
            base_url: BaseUrl::official(),
            user_agent_url: BaseUrl::official_user_agent(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            proxy: ProxyChoice::Environment,
            trust: Trust::System,
            max_connections: engine.default_max_connections(),
            max_connections_chosen: false,
        };
        // The budget's kind (shared file or this process) is fixed by the first client.
        let _ = budget::global();
        let wire = Arc::new(Wire::default());
        let gate = Gate::new(settings.max_connections);
        let channel = build_channel(&settings, &wire, &gate);
        Ok(Client {
            key_json: serde_json::to_string(client_key).map_err(|e| Error::new(Code::Internal, e.to_string()))?,
            key: client_key.to_owned(),
            digest: AtomicU64::new(KeyDigest::of(client_key, settings.base_url.as_str()).value()),
            budget_notices: NoticesTold::default(),
            settings: Mutex::new(settings),
            channel: RwLock::new(Arc::new(channel)),
            wire,
            gate,
            soft_id: AtomicU32::new(0),
            engine: Mutex::new(Weak::new()),
            counters: Arc::default(),
            event_loop: AtomicBool::new(engine == Engine::EventLoop),
            settings_version: AtomicU64::new(0),
            events_in_flight: Arc::default(),
        })
    }

    /// Sends requests to `base_url` (e.g. a local emulator) instead of the official service.
    pub fn set_base_url(&self, base_url: &str) -> Result<(), Error> {
        let base_url = BaseUrl::parse(base_url)?;
        let digest = KeyDigest::of(&self.key, base_url.as_str());
        self.update(|settings| settings.base_url = base_url)?;
        self.digest.store(digest.value(), Ordering::Relaxed);
        Ok(())
    }

    /// Fetches the getUserAgent answer from `url` (e.g. a local emulator's) instead of the
    /// official page; the base URL's rules apply (https, or http to a loopback host).
    pub fn set_user_agent_url(&self, url: &str) -> Result<(), Error> {
        let url = BaseUrl::parse_page(url, "user_agent_url")?;
        self.update(|settings| settings.user_agent_url = url)
    }

    /// Bounds every HTTP request (connect, send, answer); at least 1 ms.
    pub fn set_request_timeout(&self, timeout: Duration) -> Result<(), Error> {
        if timeout.is_zero() {
            return Err(Error::invalid_argument("timeout_ms must be at least 1"));
        }
        self.update(|settings| settings.request_timeout = timeout)
    }

    /// `Some(url)`: send everything through that proxy; `None`: no proxy at all, whatever the
    /// environment says.
    pub fn set_proxy(&self, proxy_url: Option<&str>) -> Result<(), Error> {
        let proxy = proxy_url.map(|url| ProxyUrl::parse(url, "proxy_url")).transpose()?;
        self.update(|settings| settings.proxy = ProxyChoice::Set(proxy))
    }

    /// `Some(path)`: trust only the certificate authorities of that PEM file (a private CA);
    /// `None`: the operating system's store again (the default).
    pub fn set_ca_file(&self, path: Option<&str>) -> Result<(), Error> {
        let trust = path.map(Trust::from_ca_file).transpose()?.unwrap_or(Trust::System);
        self.update(|settings| settings.trust = trust)
    }

    /// Caps the connections this client holds at once, and (HTTP/1.1) its requests in flight,
    /// blocking calls and waiters together (at least 1; by default the engine's:
    /// [`Engine::default_max_connections`]). Calls beyond the cap wait their turn, within their
    /// deadline.
    pub fn set_max_connections(&self, max_connections: u32) -> Result<(), Error> {
        if max_connections == 0 {
            return Err(Error::invalid_argument("max_connections must be at least 1"));
        }
        self.update(|settings| {
            settings.max_connections = max_connections;
            settings.max_connections_chosen = true;
        })?;
        self.cap_changed();
        Ok(())
    }

    fn cap_changed(&self) {
        // Workers of the waiters beyond a lowered cap retire once they are idle.
        let engine = self.engine.lock().unwrap_or_else(PoisonError::into_inner).upgrade();
        if let Some(engine) = engine {
            engine.cap_changed();
        }
    }

    /// The software developer's id (the service pays that developer a commission), sent with
    /// every createTask from now on; 0 sends none (the default).
    pub fn set_soft_id(&self, soft_id: u32) {
        self.soft_id.store(soft_id, Ordering::Relaxed);
    }

    /// How the waiters' engine sends its requests (see [`Engine`]); a new client's is
    /// `CAPMONSTER_ENGINE`'s, else [`Engine::DEFAULT`]. The client's proxy is used on the event
    /// loop as on the threads. Takes effect at the next poll of each wait. Single blocking calls
    /// are not affected: they always send on the calling thread.
    /// A cap the program did not choose follows the engine's default.
    pub fn set_engine(&self, engine: Engine) {
        self.event_loop.store(engine == Engine::EventLoop, Ordering::Relaxed);
        let default = engine.default_max_connections();
        let follows = {
            let settings = self.settings.lock().unwrap_or_else(PoisonError::into_inner);
            !settings.max_connections_chosen && settings.max_connections != default
        };
        // Only the cap changes, with the proxy that built the channel before: it cannot fail.
        if follows && self.update(|settings| settings.max_connections = default).is_ok() {
            self.cap_changed();
        }
    }

    /// How the waiters' engine sends its requests (see [`Client::set_engine`]).
    pub fn engine(&self) -> Engine {
        if self.event_loop() {
            Engine::EventLoop
        } else {
            Engine::Threads
        }
    }

    /// Whether the waiters' engine sends on an event loop.
    pub(crate) fn event_loop(&self) -> bool {
        self.event_loop.load(Ordering::Relaxed)
    }

    /// The settings' version: changes whenever a setting does.
    pub(crate) fn settings_version(&self) -> u64 {
        self.settings_version.load(Ordering::Acquire)
    }

    /// A channel of the event loop for the settings now; `None` when the engine keeps its
    /// threads: the event loop is off, or the client's channel is unusable (the blocking path
    /// reports why). The channel's proxy (set, or from the environment) is the loop's too.
    pub(crate) fn event_channel(&self) -> Option<Result<crate::net::events::EventChannel, Error>> {
        if !self.event_loop() {
            return None;
        }
        let channel = Arc::clone(&self.channel.read().unwrap_or_else(PoisonError::into_inner));
        // The proxy the blocking channel chose (set, or from the environment); a malformed one
        // in the environment is reported by the threads' path, as by every call.
        let proxy = match channel.as_ref() {
            Ok(channel) => channel.proxy.clone(),
            Err(_) => return None,
        };
        let settings = self.settings();
        crate::net::events::EventChannel::new(
            &settings.base_url,
            &settings.user_agent_url,
            settings.request_timeout,
            &settings.trust,
            proxy,
            &self.wire,
            &self.events_in_flight,
            &self.gate,
            settings.max_connections,
        )
    }

    pub fn max_connections(&self) -> u32 {
        self.gate.max()
    }

    /// Requests of this client in flight now.
    pub fn requests_in_flight(&self) -> u32 {
        self.gate.in_use() + self.events_in_flight.load(Ordering::Relaxed)
    }

    /// getTaskResult requests counted so far for a task of this client's account and endpoint,
    /// by every client and (with the shared budget) every process of the user.
    pub fn requests_counted(&self, task_id: i64) -> u32 {
        budget::global().sent(self.digest(), task_id)
    }

    /// Ends the account guard's stops of this client's key and endpoint, in every process of
    /// the user: after the user fixed what the service refused (the key, the address
    /// whitelist, the balance), so that calls go out at once rather than after the cool-down.
    pub fn end_stops(&self) {
        guard::global().clear(self.digest());
    }

    /// The account guard's stop of this client's key and endpoint, if one is kept (by any
    /// process of the user).
    pub fn stop(&self, stop: guard::policy::Stop) -> Option<guard::policy::StopState> {
        guard::global().stop(self.digest(), stop)
    }

    /// What this client's tasks and stops are kept under: its key and endpoint.
    pub(crate) fn digest(&self) -> KeyDigest {
        KeyDigest::from_value(self.digest.load(Ordering::Relaxed))
    }

    /// This client's counters since it was created: requests per method, answers per class,
    /// retries, refusals, connections, waits, bytes. Cheap: relaxed loads, no lock.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot(&self.wire, u64::from(self.requests_in_flight()))
    }

    /// TCP connections this client has opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.wire.opened()
    }

    /// Asks once for the state of a task. The request counts in the budget (shared by the user's processes).
    pub fn get_task_result(&self, task_id: i64) -> Report<TaskState> {
        self.get_task_result_with(task_id, &CallOptions::default())
    }

    /// [`get_task_result`](Client::get_task_result) with a deadline and a cancel.
    pub fn get_task_result_with(&self, task_id: i64, options: &CallOptions) -> Report<TaskState> {
        let mut stats = CallStats::default();
        let result = with_bounds(options, |bounds| self.poll_task(task_id, bounds, &mut stats, &mut |_| Ok(())));
        stats.report(result)
    }

    /// One getTaskResult exchange (plus at most one retry on a stale connection), each attempt
    /// admitted by `admit` (the caller's own cap) and then by the budget of 120 per task, whose
    /// notice (if any) goes into `stats`. The account guard is asked by the budget, with the
    /// first attempt's count: one check of the shared file for both while no stop is kept.
    /// A task the service disowned is answered from the budget, with no request; an answer that
    /// disowns one is kept there for every process.
    pub(crate) fn poll_task(
        &self,
        task_id: i64,
        bounds: Bounds<'_>,
        stats: &mut CallStats,
        admit: &mut dyn FnMut(u32) -> Result<(), Error>,
    ) -> Result<TaskState, Error> {
        block_now(self.poll_task_on(&self.blocking_link(), task_id, bounds, stats, admit))
    }

    /// [`poll_task`](Client::poll_task) on any link: the one copy of its rules, for the
    /// blocking calls and the engine's event loop alike.
    pub(crate) async fn poll_task_on<L: Link>(
        &self,
        link: &L,
        task_id: i64,
        bounds: Bounds<'_>,
        stats: &mut CallStats,
        admit: &mut dyn FnMut(u32) -> Result<(), Error>,
    ) -> Result<TaskState, Error> {
        check_task_id(task_id)?;
        let body = format!(r#"{{"clientKey":{},"taskId":{}}}"#, self.key_json, task_id);
        let guard = guard::global();
        let key = self.digest();
        let mut notice = None;
        // What the guard granted (probes); `None` until it was asked (only while a stop is kept).
        let mut pass: Option<guard::Pass> = None;
        let mut admit_within_budget = |sent: u32| {
            admit(sent)?;
            let mut ask = |asked: Ask| match asked {
                Ask::StopsKept if pass.is_none() => {
                    pass = Some(guard.admit(key, Method::GetTaskResult, None, guard::now_ms())?);
                    Ok(())
                }
                Ask::StopsKept => Ok(()),
                Ask::UnknownTask => {
                    guard.admit_unknown_task(key, pass.get_or_insert_with(guard::Pass::default), guard::now_ms())
                }
            };
            let taken = budget::global().take(key, task_id, &self.budget_notices, &mut ask);
            if let Some(more) = taken.notice {
                join_notice(&mut notice, more);
            }
            let admission = match taken.admission? {
                // CAPMONSTER_GUARD=off (dangerous): asked about as if it had not been disowned.
                Admission::Disowned(_) if !guard.is_on() => budget::global().take_disowned(key, task_id),
                admission => admission,
            };
            match admission {
                Admission::Spent { sent } => {
                    stats::bump(&self.counters.budget_refusals);
                    log::log(Level::Warn, "budget.refused", || {
                        format!("getTaskResult for task {task_id} not sent: {sent} requests were already sent (120 at most)")
                    });
                    Err(Error::new(
                    Code::BudgetExhausted,
                    format!(
                        "{sent} getTaskResult requests were already sent for task {task_id}; the service may lock the account beyond that, so no more are sent"
                    ),
                ))
                }
                Admission::Granted { nth } => {
                    log::log(Level::Trace, "budget.count", || format!("task {task_id}: getTaskResult {nth} of 120"));
                    Ok(())
                }
                // Counted and logged as the guard's refusal by `refused`.
                Admission::Disowned(disowned) => Err(disowned.local_answer(task_id)),
            }
        };
        let sent_before = stats.requests;
        let result = self
            .exchange_on(link, Method::GetTaskResult, Some(task_id), &body, bounds, stats, &mut admit_within_budget)
            .await
            .and_then(|(status, answer)| answer::classify_task_result(status, &answer).map_err(|e| self.scrub(e)));
        let heard = if stats.requests == sent_before {
            self.refused(Method::GetTaskResult, Some(task_id), &result);
            Heard::Nothing
        } else {
            let class = self.counters.answered_task(&result);
            self.log_answer(Method::GetTaskResult, Some(task_id), class, &result);
            Heard::from_result(&result, false)
        };
        guard.learn(key, &pass.unwrap_or_default(), heard, guard::now_ms());
        if let (Heard::Answer { api: Some(api), .. }, Err(_)) = (heard, &result) {
            if let Some(answer) = api.code.as_deref().and_then(FinalAnswer::from_code) {
                let at_unix = guard::now_ms() / 1000;
                budget::global().disown(key, task_id, Disowned { answer, at_unix });
                log::log(Level::Info, "task.disowned", || {
                    format!("task {task_id}: the service's final answer is kept, and given here to every later ask")
                });
            }
        }
        // Kept whatever the outcome: the call's report carries it either way.
        if let Some(notice) = notice {
            join_notice(&mut stats.notice, notice);
        }
        result
    }

    /// Sends a call through the account guard: answered here, with the service's own error,
    /// while a stop of this key holds `method`; else `send` runs, and what the service answered
    /// starts, renews or ends the key's stops. `balance` reads a getBalance answer's amount.
    /// (createTask, whose task may name a proxy, calls the two halves itself.)
    fn guarded<T>(
        &self,
        method: Method,
        stats: &mut CallStats,
        balance: Option<fn(&T) -> f64>,
        send: impl FnOnce(&mut CallStats) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let pass = self.guard_admit(method, None, stats)?;
        let sent_before = stats.requests;
        let result = send(stats);
        self.guard_learn(method, &pass, sent_before, stats, balance, &result);
        result
    }

    /// The first half of [`guarded`](Client::guarded): the guard's admission (a createTask's
    /// `proxy`, `address:port`, is held by that proxy's stop too), or its answer given here
    /// (counted and logged).
    fn guard_admit(&self, method: Method, proxy: Option<&str>, stats: &mut CallStats) -> Result<guard::Pass, Error> {
        // Before the guard may answer: a call it holds back says it too.
        if let Some(notice) = budget::global().untold(&self.budget_notices) {
            join_notice(&mut stats.notice, notice);
        }
        guard::global().admit(self.digest(), method, proxy, guard::now_ms()).inspect_err(|error| {
            stats::bump(&self.counters.guard_refusals);
            log::log(Level::Warn, "guard.refused", || format!("{} answered here: {}", method.name(), error.message));
        })
    }

    /// The second half: what the service answered (if a request went out after `sent_before`)
    /// counted, logged, and told to the guard, which starts, renews or ends the key's stops.
    fn guard_learn<T>(
        &self,
        method: Method,
        pass: &guard::Pass,
        sent_before: u32,
        stats: &CallStats,
        balance: Option<fn(&T) -> f64>,
        result: &Result<T, Error>,
    ) {
        let heard = if stats.requests == sent_before {
            Heard::Nothing
        } else {
            let class = self.counters.answered(result, false);
            self.log_answer(method, None, class, result);
            let money = match (result, balance) {
                (Ok(value), Some(read)) => read(value) > 0.0,
                _ => false,
            };
            Heard::from_result(result, money)
        };
        guard::global().learn(self.digest(), pass, heard, guard::now_ms());
    }

    /// Creates a task. `task_json` is the `task` object (with its `type`); nothing is sent
    /// unless it is one. Never retried: a duplicate would be a second paid task.
    pub fn create_task(&self, task_json: &str, callback_url: Option<&str>) -> Report<i64> {
        self.create_task_with(task_json, callback_url, &CallOptions::default())
    }

    /// [`create_task`](Client::create_task) with a deadline and a cancel. A cancel while the
    /// request is in flight cannot undo it: the task may have been created and charged.
    pub fn create_task_with(&self, task_json: &str, callback_url: Option<&str>, options: &CallOptions) -> Report<i64> {
        let mut stats = CallStats::default();
        let result = with_bounds(options, |bounds| {
            block_now(self.create_task_on(&self.blocking_link(), task_json, callback_url, bounds, &mut stats))
        });
        stats.report(result)
    }

    /// [`create_task_with`](Client::create_task_with) on any link: the one copy of its rules,
    /// for the blocking call and a waiter's solve on the event loop alike.
    pub(crate) async fn create_task_on<L: Link>(
        &self,
        link: &L,
        task_json: &str,
        callback_url: Option<&str>,
        bounds: Bounds<'_>,
        stats: &mut CallStats,
    ) -> Result<i64, Error> {
        let (task, proxy) = check_task_json(task_json)?;
        let callback = match callback_url {
            Some(url) => {
                endpoint::check_callback_url(url)?;
                let url = serde_json::to_string(url).map_err(|e| Error::new(Code::Internal, e.to_string()))?;
                format!(r#","callbackUrl":{url}"#)
            }
            None => String::new(),
        };
        let soft_id = match self.soft_id.load(Ordering::Relaxed) {
            0 => String::new(),
            id => format!(r#","softId":{id}"#),
        };
        let body = format!(r#"{{"clientKey":{},"task":{}{}{}}}"#, self.key_json, task, callback, soft_id);
        let method = Method::CreateTask;
        let pass = self.guard_admit(method, proxy.as_deref(), stats)?;
        let sent_before = stats.requests;
        let created = self
            .exchange_on(link, method, None, &body, bounds, stats, &mut |_| Ok(()))
            .await
            .and_then(|(status, answer)| answer::classify_create_task(status, &answer).map_err(|e| self.scrub(e)));
        self.guard_learn(method, &pass, sent_before, stats, None, &created);
        if let Ok(task_id) = created {
            // Known to the budget from now on: the wrong-id pause never holds it. Never
            // fails (the budget falls back to the process).
            budget::global().register(self.digest(), task_id);
        }
        created
    }

    /// The account's balance in US dollars.
    pub fn get_balance(&self) -> Report<f64> {
        self.get_balance_with(&CallOptions::default())
    }

    /// [`get_balance`](Client::get_balance) with a deadline and a cancel.
    pub fn get_balance_with(&self, options: &CallOptions) -> Report<f64> {
        let mut stats = CallStats::default();
        let result = with_bounds(options, |bounds| {
            let body = format!(r#"{{"clientKey":{}}}"#, self.key_json);
            self.guarded(Method::GetBalance, &mut stats, Some(|balance: &f64| *balance), |stats| {
                let (status, answer) =
                    self.exchange(Method::GetBalance, None, &body, bounds, stats, &mut |_| Ok(()))?;
                answer::classify_balance(status, &answer).map_err(|e| self.scrub(e))
            })
        });
        stats.report(result)
    }

    /// The browser User-Agent the service's workers use now (getUserAgent: a GET of its page,
    /// plain text), to put in a task's `userAgent`. Sends no key; the account guard and the
    /// request budget are not involved. Retried once on a stale connection, like getBalance.
    pub fn get_user_agent(&self) -> Report<String> {
        self.get_user_agent_with(&CallOptions::default())
    }

    /// [`get_user_agent`](Client::get_user_agent) with a deadline and a cancel.
    pub fn get_user_agent_with(&self, options: &CallOptions) -> Report<String> {
        let mut stats = CallStats::default();
        let result = with_bounds(options, |bounds| {
            let sent_before = stats.requests;
            let result = self
                .exchange(Method::GetUserAgent, None, "", bounds, &mut stats, &mut |_| Ok(()))
                .and_then(|(status, answer)| answer::classify_user_agent(status, &answer).map_err(|e| self.scrub(e)));
            if stats.requests != sent_before {
                let class = self.counters.answered(&result, false);
                self.log_answer(Method::GetUserAgent, None, class, &result);
            }
            result
        });
        stats.report(result)
    }

    /// Tells the service that a task's answer was wrong (reportIncorrectImageCaptcha or
    /// reportIncorrectTokenCaptcha, by `kind`). Never retried: the service may have counted it.
    pub fn report_incorrect_with(&self, kind: Incorrect, task_id: i64, options: &CallOptions) -> Report<()> {
        let mut stats = CallStats::default();
        let result = with_bounds(options, |bounds| {
            check_task_id(task_id)?;
            let body = format!(r#"{{"clientKey":{},"taskId":{}}}"#, self.key_json, task_id);
            let method = match kind {
                Incorrect::Image => Method::ReportIncorrectImage,
                Incorrect::Token => Method::ReportIncorrectToken,
            };
            self.guarded(method, &mut stats, None, |stats| {
                let (status, answer) = self.exchange(method, Some(task_id), &body, bounds, stats, &mut |_| Ok(()))?;
                answer::classify_report(status, &answer).map_err(|e| self.scrub(e))
            })
        });
        stats.report(result)
    }

    fn settings(&self) -> Settings {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Applies a settings change: a new agent (and pool) for the calls that start after it.
    /// A malformed proxy in the environment does not fail it: the calls report it.
    fn update(&self, change: impl FnOnce(&mut Settings)) -> Result<(), Error> {
        let mut settings = self.settings.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = settings.clone();
        change(&mut changed);
        let channel = build_channel(&changed, &self.wire, &self.gate);
        if let (Err(error), ProxyChoice::Set(_)) = (&channel, &changed.proxy) {
            return Err(error.clone());
        }
        self.gate.set_max(changed.max_connections);
        *settings = changed;
        *self.channel.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(channel);
        self.settings_version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Sends `body` to `method` and reads the answer: (HTTP status, body bytes). Each attempt
    /// waits for a connection permit, is admitted by `admit`, and runs within `bounds`.
    fn exchange(
        &self,
        method: Method,
        task_id: Option<i64>,
        body: &str,
        bounds: Bounds<'_>,
        stats: &mut CallStats,
        admit: &mut dyn FnMut(u32) -> Result<(), Error>,
    ) -> Result<(u16, Vec<u8>), Error> {
        block_now(self.exchange_on(&self.blocking_link(), method, task_id, body, bounds, stats, admit))
    }

    /// The blocking link: the client's channel now, and its gate.
    pub(crate) fn blocking_link(&self) -> link::Blocking<'_> {
        link::Blocking {
            channel: Arc::clone(&self.channel.read().unwrap_or_else(PoisonError::into_inner)),
            gate: &self.gate,
        }
    }

    /// [`exchange`](Client::exchange) on any link.
    #[allow(clippy::too_many_arguments)]
    async fn exchange_on<L: Link>(
        &self,
        link: &L,
        method: Method,
        task_id: Option<i64>,
        body: &str,
        bounds: Bounds<'_>,
        stats: &mut CallStats,
        admit: &mut dyn FnMut(u32) -> Result<(), Error>,
    ) -> Result<(u16, Vec<u8>), Error> {
        if let Some(error) = link.unusable() {
            return Err(error);
        }
        let name = method.name();
        let mut retried = false;
        // Bounded: a second turn only for the one resend on a stale connection.
        loop {
            if bounds.cancelled() {
                return Err(Error::new(Code::Cancelled, format!("{name} was cancelled before its request was sent")));
            }
            let started = Instant::now();
            let limit = match bounds.deadline {
                Some(deadline) => link.request_timeout().min(deadline.saturating_duration_since(started)),
                None => link.request_timeout(),
            };
            if limit.is_zero() {
                return Err(Error::new(Code::Timeout, format!("no time was left to send the {name} request")));
            }
            let (permit, queued) = match link.permit(started + limit, bounds.cancels).await {
                Ok(permit) => permit,
                Err(Refused::Cancelled) => {
                    return Err(Error::new(
                        Code::Cancelled,
                        format!("{name} was cancelled while waiting for one of the client's connections"),
                    ))
                }
                Err(Refused::Deadline) => {
                    return Err(Error::new(
                        Code::Timeout,
                        format!(
                            "{name}: none of the client's {} connections became free within {} ms",
                            link.max_in_flight(),
                            limit.as_millis()
                        ),
                    ))
                }
            };
            // Only a queued permit costs time; the common case keeps the agent's own timeout.
            let timeout = if queued { limit.saturating_sub(started.elapsed()) } else { limit };
            if timeout.is_zero() {
                return Err(Error::new(Code::Timeout, format!("no time was left to send the {name} request")));
            }
            admit(stats.requests)?;
            stats.requests += 1;
            self.counters.sent(method);
            let sent_at = Instant::now();
            let outcome = link.attempt(method, body, timeout, bounds.cancels).await;
            drop(permit);
            if log::enabled(Level::Debug) {
                self.log_request(
                    method,
                    task_id,
                    stats.requests,
                    sent_at,
                    link.opened_connection(),
                    &outcome,
                    bounds.cancelled(),
                );
            }
            match outcome {
                Ok((status, answer)) => {
                    stats.http_status = Some(status);
                    return Ok((status, answer));
                }
                Err(failure) => {
                    if let Some(status) = failure.http_status {
                        stats.http_status = Some(status);
                    }
                    if bounds.cancelled() {
                        return Err(Error::new(Code::Cancelled, method.cancelled_in_flight()));
                    }
                    if failure.stale_connection && method.retry_on_stale_connection() && !retried {
                        retried = true;
                        stats::bump(&self.counters.retries);
                        log::log(Level::Debug, "request.retry", || {
                            format!("{name}: the pooled connection was closed by the server; sent again on a new one")
                        });
                        continue;
                    }
                    let mut error = failure.error;
                    if let (Code::Network, Some(proxy)) = (error.code, link.proxy()) {
                        error.message = format!("{} (through the proxy {})", error.message, proxy.redacted());
                    }
                    let error = self.scrub_with(error, link.proxy());
                    if error.code == Code::Network {
                        log::log(Level::Error, "network.failed", || format!("{name}: {}", error.message));
                    }
                    return Err(error);
                }
            }
        }
    }

    /// The `request` line: one per HTTP request, after it (Debug). Only called when Debug is
    /// on. Messages of failures are scrubbed like the errors they become.
    #[cold]
    // The attempt's facts as the exchange has them; a struct for one call site would only move them.
    #[allow(clippy::too_many_arguments)]
    fn log_request(
        &self,
        method: Method,
        task_id: Option<i64>,
        attempt: u32,
        sent_at: Instant,
        opened: Option<bool>,
        outcome: &Result<(u16, Vec<u8>), crate::net::transport::AttemptFailure>,
        cancelled: bool,
    ) {
        let connection = match opened {
            Some(true) => "new",
            Some(false) => "reused",
            // The event loop's pool does not say; its connections are counted in the stats.
            None => "pooled",
        };
        let task = task_id.map(|id| format!(" task {id}")).unwrap_or_default();
        let took = sent_at.elapsed().as_micros() as f64 / 1000.0;
        let what = match outcome {
            Ok((status, answer)) => format!("HTTP {status}, {} bytes", answer.len()),
            // A cancel shuts the socket: the transport's own words would blame the server.
            Err(_) if cancelled => method.cancelled_in_flight(),
            Err(failure) => format!("failed: {}", self.scrub_text(&failure.error.message)),
        };
        log::log(Level::Debug, "request", || {
            format!("{}{task} attempt {attempt} on a {connection} connection: {what} in {took:.1} ms", method.name())
        });
    }

    /// The `answer` line of a call that sent a request: its class, and the error (scrubbed).
    fn log_answer<T>(&self, method: Method, task_id: Option<i64>, class: &str, result: &Result<T, Error>) {
        let level = match result {
            Ok(_) => Level::Debug,
            Err(_) => Level::Info,
        };
        log::log(level, "answer", || {
            let task = task_id.map(|id| format!(" task {id}")).unwrap_or_default();
            match result {
                Ok(_) => format!("{}{task}: {class}", method.name()),
                Err(error) => format!("{}{task}: {class}: {}", method.name(), error.message),
            }
        });
    }

    /// Counts and logs a getTaskResult that the guard answered here (the budget's refusal
    /// is counted where it is made).
    fn refused(&self, method: Method, task_id: Option<i64>, result: &Result<TaskState, Error>) {
        let Err(error) = result else { return };
        if matches!(error.code, Code::Api) {
            stats::bump(&self.counters.guard_refusals);
            log::log(Level::Warn, "guard.refused", || {
                let task = task_id.map(|id| format!(" task {id}")).unwrap_or_default();
                format!("{}{task} answered here: {}", method.name(), error.message)
            });
        }
    }

    /// [`scrub_with`](Client::scrub_with) for a line of text.
    fn scrub_text(&self, text: &str) -> String {
        self.scrub(Error::new(Code::Internal, text)).message
    }

    fn scrub(&self, error: Error) -> Error {
        let channel = Arc::clone(&self.channel.read().unwrap_or_else(PoisonError::into_inner));
        let proxy = channel.as_ref().as_ref().ok().and_then(|channel| channel.proxy.as_ref());
        self.scrub_with(error, proxy)
    }

    /// Removes the client key and proxy credentials from text that may have come from outside.
    /// Keys shorter than 6 bytes are not scrubbed: they would mangle ordinary words.
    fn scrub_with(&self, mut error: Error, proxy: Option<&ProxyUrl>) -> Error {
        let secrets = [Some(self.key.as_str()).filter(|key| key.len() >= 6), proxy.and_then(ProxyUrl::userinfo)];
        let scrub = |text: &mut String| {
            for secret in secrets.iter().flatten() {
                if text.contains(secret) {
                    *text = text.replace(secret, "***");
                }
            }
        };
        scrub(&mut error.message);
        if let Some(api) = error.api.as_mut() {
            api.code.as_mut().map(scrub);
            api.description.as_mut().map(scrub);
        }
        error
    }
}

/// How a client's waiters send their requests (`cm_client_set_engine`). The rules of a wait
/// (budget, guard, schedule, retries, cancels, counters, logs) are the same on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Requests in flight are futures on one event loop per engine (at most three library
    /// threads, whatever the number of waits; HTTP/2 when the server offers it): see
    /// docs/engine.md.
    EventLoop,
    /// Each request in flight is sent by a worker thread that blocks until its answer, at most
    /// `max_connections` of them.
    Threads,
}

impl Engine {
    /// The engine of a client that names none: the event loop; on Windows the threads, until
    /// the event loop is measured on Windows itself (under Wine its sockets' readiness costs
    /// far more than it would: docs/engine.md).
    pub const DEFAULT: Engine = if cfg!(windows) { Engine::Threads } else { Engine::EventLoop };

    /// The cap of connections of a client that chose none (`cm_client_set_max_connections`):
    /// - threads: 64, since each request in flight is a thread;
    /// - event loop: a quarter of the process's open-files limit (its soft `RLIMIT_NOFILE`),
    ///   at least 64 and at most 4,096; on Windows 64, as on the threads, until the loop is
    ///   measured there.
    ///
    /// At internet latency the requests in flight a client needs are its polls a second × the
    /// round trip (10,000 waits polled every 2 s at 150 ms: 750, and their first burst 10,000),
    /// and on the event loop a request in flight costs a socket, not a thread. A quarter of the
    /// limit leaves the rest to the program: 256 under the common limit of 1,024; 4,096 where
    /// the limit is raised (Go raises it to the hard limit at start): HTTP/1.1 then carries up
    /// to 4,096 / round trip requests a second, 27,000 at 150 ms. The loop opens only as
    /// many as the round trip needs (`net/events/admission.rs`). On HTTP/2 each connection
    /// carries many streams.
    pub fn default_max_connections(self) -> u32 {
        match self {
            Engine::Threads => THREADS_MAX_CONNECTIONS,
            // Windows: the loop is not the default there and not measured on Windows itself;
            // under Wine its sockets' readiness grows costly with their number (docs/engine.md).
            Engine::EventLoop if cfg!(windows) => THREADS_MAX_CONNECTIONS,
            Engine::EventLoop => event_loop_max_connections(open_files_limit()),
        }
    }

    /// `CAPMONSTER_ENGINE`: `events` or `threads` (any case); anything else, or nothing, is
    /// [`Engine::DEFAULT`].
    fn from_env(value: Option<&str>) -> Engine {
        match value.map(str::trim) {
            Some(value) if value.eq_ignore_ascii_case("events") => Engine::EventLoop,
            Some(value) if value.eq_ignore_ascii_case("threads") => Engine::Threads,
            _ => Engine::DEFAULT,
        }
    }

    /// The engine a number of the C API names (`CM_ENGINE_EVENT_LOOP` 1, `CM_ENGINE_THREADS`
    /// 2), or why it names none.
    pub fn from_number(number: u32) -> Result<Engine, Error> {
        match number {
            1 => Ok(Engine::EventLoop),
            2 => Ok(Engine::Threads),
            _ => Err(Error::invalid_argument(format!(
                "engine must be CM_ENGINE_EVENT_LOOP (1) or CM_ENGINE_THREADS (2), got {number}"
            ))),
        }
    }
}

/// The threads engine's default cap: a request in flight is a thread there.
const THREADS_MAX_CONNECTIONS: u32 = 64;

/// The event loop's largest default cap (see [`Engine::default_max_connections`]).
const EVENT_LOOP_MOST_CONNECTIONS: u32 = 4096;

/// The event loop's default cap under an open-files limit of `limit` (see
/// [`Engine::default_max_connections`]).
fn event_loop_max_connections(limit: u64) -> u32 {
    (limit / 4).clamp(u64::from(THREADS_MAX_CONNECTIONS), u64::from(EVENT_LOOP_MOST_CONNECTIONS)) as u32
}

/// The process's soft limit of open files; `u64::MAX` when there is none to read.
fn open_files_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
            // rlim_t is 64 bits on Linux and macOS, not on every Unix.
            #[allow(clippy::unnecessary_cast)]
            return limit.rlim_cur as u64;
        }
    }
    u64::MAX
}

/// Runs a call within the bounds its options give.
fn with_bounds<T>(options: &CallOptions, call: impl FnOnce(Bounds<'_>) -> T) -> T {
    let deadline = options.timeout.map(|timeout| Instant::now() + timeout);
    match &options.cancel {
        Some(cancel) => call(Bounds { deadline, cancels: &[cancel] }),
        None => call(Bounds { deadline, cancels: &[] }),
    }
}

pub(crate) fn check_task_id(task_id: i64) -> Result<(), Error> {
    if task_id <= 0 {
        return Err(Error::invalid_argument(format!("task_id must be positive, got {task_id}")));
    }
    Ok(())
}

/// Checks that the task is a JSON object with a non-empty string `type`; returns it trimmed,
/// with its proxy as `address:port` when it names one (`proxyAddress` and `proxyPort`, a
/// number or a string of digits): what the account guard keeps a banned proxy's stop under.
/// The proxy's login and password are secrets and are not read.
fn check_task_json(task_json: &str) -> Result<(&str, Option<String>), Error> {
    #[derive(Deserialize)]
    struct TaskHead<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
        // Values, not types: a task of odd members is the service's to refuse, not ours.
        #[serde(rename = "proxyAddress", default)]
        proxy_address: Option<serde_json::Value>,
        #[serde(rename = "proxyPort", default)]
        proxy_port: Option<serde_json::Value>,
    }
    if task_json.len() > MAX_TASK_JSON_BYTES {
        return Err(Error::invalid_argument(format!("task_json is longer than {MAX_TASK_JSON_BYTES} bytes")));
    }
    let task = task_json.trim();
    if !task.starts_with('{') {
        return Err(Error::invalid_argument("task_json must be a JSON object"));
    }
    match serde_json::from_str::<TaskHead>(task) {
        Ok(head) if !head.kind.is_empty() => {
            let port = match &head.proxy_port {
                Some(serde_json::Value::Number(port)) => port.as_u64(),
                Some(serde_json::Value::String(port)) => port.trim().parse::<u64>().ok(),
                _ => None,
            };
            let proxy = match (&head.proxy_address, port) {
                (Some(serde_json::Value::String(address)), Some(port)) if !address.trim().is_empty() => {
                    Some(format!("{}:{port}", address.trim()))
                }
                _ => None,
            };
            Ok((task, proxy))
        }
        Ok(_) => Err(Error::invalid_argument("task_json has an empty \"type\"")),
        Err(e) => Err(Error::invalid_argument(format!(
            "task_json must be a JSON object with a string \"type\" member: {}",
            crate::api::text::truncate(&e.to_string(), 200)
        ))),
    }
}

/// The channel for `settings`: the proxy chosen (the caller's, or the environment's by curl's
/// rules), then a new agent and a pool of at most `max_connections` idle connections.
fn build_channel(settings: &Settings, wire: &Arc<Wire>, gate: &Arc<Gate>) -> Result<Channel, Error> {
    let (proxy, source) = match &settings.proxy {
        ProxyChoice::Set(proxy) => (proxy.clone(), "proxy_url"),
        ProxyChoice::Environment => {
            match endpoint::proxy_from_env(&settings.base_url, |name| std::env::var(name).ok())? {
                Some((name, url)) => (Some(url), name),
                None => (None, ""),
            }
        }
    };
    let max = settings.max_connections;
    let (base_url, user_agent_url) = (&settings.base_url, &settings.user_agent_url);
    Channel::new(base_url, user_agent_url, settings.request_timeout, proxy, &settings.trust, wire, gate, max).map_err(
        |mut error| {
            if error.code == Code::InvalidArgument && !source.is_empty() {
                error.message = format!("{source}: {}", error.message);
            }
            error
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_key() {
        let client = Client::new("0123456789abcdef-secret").unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("0123456789abcdef-secret"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn the_environment_names_an_engine_or_leaves_the_default() {
        assert_eq!(Engine::from_env(Some("events")), Engine::EventLoop);
        assert_eq!(Engine::from_env(Some(" Events\n")), Engine::EventLoop);
        assert_eq!(Engine::from_env(Some("THREADS")), Engine::Threads);
        for other in [None, Some(""), Some("event"), Some("1")] {
            assert_eq!(Engine::from_env(other), Engine::DEFAULT, "{other:?}");
        }
    }

    #[test]
    fn the_event_loops_default_cap_is_a_quarter_of_the_open_files_limit_within_64_and_4096() {
        assert_eq!(event_loop_max_connections(1024), 256);
        assert_eq!(event_loop_max_connections(100), 64);
        assert_eq!(event_loop_max_connections(4096), 1024);
        assert_eq!(event_loop_max_connections(8192), 2048);
        assert_eq!(event_loop_max_connections(65_536), 4096);
        assert_eq!(event_loop_max_connections(u64::MAX), 4096);
        assert_eq!(Engine::Threads.default_max_connections(), 64);
    }

    #[test]
    fn a_cap_not_chosen_follows_the_engine_and_a_chosen_one_stays() {
        let client = Client::new("cap-follows-the-engine").unwrap();
        client.set_engine(Engine::Threads);
        assert_eq!(client.max_connections(), 64);
        client.set_engine(Engine::EventLoop);
        assert_eq!(client.max_connections(), Engine::EventLoop.default_max_connections());
        client.set_max_connections(10).unwrap();
        client.set_engine(Engine::Threads);
        assert_eq!(client.max_connections(), 10);
        client.set_engine(Engine::EventLoop);
        assert_eq!(client.max_connections(), 10);
    }

    #[test]
    fn a_c_number_names_an_engine_or_is_refused_with_the_values_it_may_take() {
        assert_eq!(Engine::from_number(1).unwrap(), Engine::EventLoop);
        assert_eq!(Engine::from_number(2).unwrap(), Engine::Threads);
        for wrong in [0, 3, u32::MAX] {
            let error = Engine::from_number(wrong).unwrap_err();
            assert_eq!(error.code, Code::InvalidArgument);
            assert!(error.message.contains("CM_ENGINE_EVENT_LOOP (1)") && error.message.contains(&wrong.to_string()));
        }
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(Client::new("").unwrap_err().code, Code::InvalidArgument);
        assert!(Client::new(&"k".repeat(MAX_KEY_BYTES + 1)).unwrap_err().message.contains("client_key"));
    }

    #[test]
    fn task_json_is_checked_before_anything_is_sent() {
        for (bad, says) in [
            ("", "object"),
            ("[]", "object"),
            ("{", "type"),
            (r#"{"type":5}"#, "type"),
            (r#"{"kind":"x"}"#, "type"),
            (r#"{"type":""}"#, "empty"),
            (r#"{"type":"x"} trailing"#, "type"),
        ] {
            let error = check_task_json(bad).unwrap_err();
            assert_eq!(error.code, Code::InvalidArgument);
            assert!(error.message.contains("task_json") && error.message.contains(says), "{bad}: {}", error.message);
        }
        assert_eq!(
            check_task_json(" {\"type\":\"ImageToTextTask\",\"body\":\"x\"}\n").unwrap(),
            ("{\"type\":\"ImageToTextTask\",\"body\":\"x\"}", None)
        );
    }

    #[test]
    fn a_tasks_proxy_is_its_address_and_port() {
        let proxy = |task: &str| check_task_json(task).unwrap().1;
        let with = |address: &str, port: &str| {
            format!(
                r#"{{"type":"RecaptchaV2Task","proxyType":"http","proxyAddress":{address},"proxyPort":{port},"proxyLogin":"user","proxyPassword":"secret"}}"#
            )
        };
        assert_eq!(proxy(&with("\"10.0.0.1\"", "8080")).as_deref(), Some("10.0.0.1:8080"));
        assert_eq!(proxy(&with("\" proxy.example \"", "\"3128\"")).as_deref(), Some("proxy.example:3128"));
        for (address, port) in [("\"\"", "8080"), ("\"10.0.0.1\"", "-1"), ("\"10.0.0.1\"", "null"), ("5", "8080")] {
            assert_eq!(proxy(&with(address, port)), None, "{address} {port}");
        }
        assert_eq!(proxy(r#"{"type":"RecaptchaV2TaskProxyless"}"#), None);
    }
}
