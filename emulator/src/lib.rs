//! A local emulator of the CapMonster Cloud API, for tests, demos and offline use.
//!
//! It is a real HTTP/1.1 server on a TCP port: `POST <url>/<method>` with a JSON body, as
//! the service. Unscripted, it behaves like the service (see `api.rs`); tests can script
//! per-task or per-method answers, including connection-level faults ([`Step`]).
//!
//! Why its own connection layer (tokio sockets, a task per connection on a runtime of
//! [`WORKER_THREADS`] threads) rather than a server crate such as hyper or tiny_http: the
//! tests need connection-level faults (count TCP connections, close without answering,
//! stall, send a truncated body, close an idle keep-alive connection) that a server crate
//! hides from its handlers. `httparse` parses request heads; bodies must come
//! with Content-Length (chunked bodies get 411); HTTP/1.1 keep-alive is supported
//! (`Connection: close` honoured; HTTP/1.0 connections close after one answer).
//!
//! Optionally ([`Config::tls`]) a second listener serves the same service over TLS, HTTP/2 and
//! HTTP/1.1 by ALPN, with hyper (`tls.rs`): for clients' HTTP/2 paths without a proxy in
//! front. Scripted connection faults there reset the stream (HTTP/2) or close the connection
//! (HTTP/1.1) instead of being played byte for byte.
//!
//! The HTTP interface (step JSON forms, control endpoints, CLI) is described in README.md.
//!
//! Bounds: request head ≤ 64 KiB (431), body ≤ 16 MiB (413), ≤ 8,192 simultaneous
//! connections unless [`Config::max_connections`] says otherwise (more are accepted and
//! closed at once), [`WORKER_THREADS`] threads however many connections are open,
//! connections idle for 60 s are closed, ≤ 1,000,000 tasks (then createTask answers
//! ERROR_NO_SLOT_AVAILABLE), ≤ 100,000 scripts of ≤ 10,000 steps, delays and stalls ≤ 10 minutes, oversize bodies
//! ≤ 1 GiB.
//!
//! Emulator-only extension: a createTask `task` may carry `"emulatorSolveAfterMs": N`
//! (0..=86,400,000) to override [`Config::solve_after`] for that task.
//!
//! For benchmarks: [`Config::answer_delay`] makes every API answer take that long,
//! [`Config::stamp_ready`] stamps ready answers with the moment they were written, and
//! `POST /_emulator/tasks` creates many tasks at once whose readiness is spread evenly
//! over a window.
//!
//! ```no_run
//! use capmonster_emulator::{Config, Emulator, Step};
//! let emulator = Emulator::start(Config::default()).unwrap();
//! emulator.script_task(5, vec![Step::processing(), Step::ready(serde_json::json!({"text": "abc"}))]);
//! // point the client at emulator.url() ...
//! assert_eq!(emulator.task_requests(5), 0);
//! ```

mod account;
mod api;
mod exchange;
mod http;
mod script;
mod solutions;
mod tls;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

pub use account::{Account, ADDRESS_BANS, MAX_ACCOUNT_ENTRIES};
pub use api::{
    is_api_method, API_METHODS, MAX_COUNTED_TASKS, MAX_POLLS_PER_TASK, MAX_SCRIPTS, MAX_SOLVE_AFTER_MS, MAX_TASKS,
    READY_STAMP_FIELD, STAMP_FIELD,
};
pub use http::{
    IDLE_TIMEOUT, LISTEN_BACKLOG, MAX_BODY_BYTES, MAX_CONNECTIONS, MAX_CONNECTIONS_LIMIT, MAX_HEAD_BYTES,
    WORKER_THREADS,
};
pub use script::{
    Action, Fault, ScriptEntry, Step, Target, MAX_OVERSIZE_BYTES, MAX_PAUSE_MS, MAX_STEPS, MAX_STEP_HEADERS,
    MIN_OVERSIZE_BYTES,
};
pub use tls::{TlsIdentity, H2_CONNECTION_WINDOW, H2_MAX_CONCURRENT_STREAMS, HANDSHAKE_TIMEOUT};

/// How the emulated service behaves when not scripted.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The one accepted key; `None` accepts any non-empty key.
    pub client_key: Option<String>,
    /// How long after createTask a task becomes ready (default 1500 ms).
    pub solve_after: Duration,
    /// What getBalance answers (default 345.678, the docs' example); at 0 or below createTask
    /// answers `ERROR_ZERO_BALANCE`.
    pub balance: f64,
    /// Keys answered `ERROR_KEY_DOES_NOT_EXIST` whatever `client_key` says (default none).
    pub revoked_keys: Vec<String>,
    /// One of [`ADDRESS_BANS`], answered to every API call (default `None`).
    pub address_ban: Option<String>,
    /// Proxies (`"host:port"`) whose createTask is answered `ERROR_PROXY_BANNED` (default none).
    pub banned_proxies: Vec<String>,
    /// The first task id handed out; later ones count up from it (default 1000).
    pub first_task_id: i64,
    /// Every API answer (not the `/_emulator/*` ones) waits this long before it is written,
    /// on top of a scripted step's `delay_ms`: a network round trip (default 0; at most
    /// [`MAX_PAUSE_MS`] is used).
    pub answer_delay: Duration,
    /// Ready answers whose solution is an object carry one more member in it,
    /// `"emulatorSentAtUs": "<20 digits>"`: the wall clock (Unix epoch, µs, zero-padded)
    /// taken just before the answer is written to the socket, after any delay. For
    /// benchmarks that measure how long a client takes to hand a ready answer on
    /// (default false).
    pub stamp_ready: bool,
    /// Most connections served at once; further ones are accepted and closed at once
    /// (default [`MAX_CONNECTIONS`]; 1 to [`MAX_CONNECTIONS_LIMIT`], a socket and a small task
    /// each). Raised for benchmarks of clients that open a connection per request.
    pub max_connections: usize,
    /// The certificate and key of a second listener serving HTTP/2 and HTTP/1.1 over TLS
    /// ([`Emulator::tls_url`]; default `None`: no such listener). It shares the service, the
    /// counters and `max_connections` with the plain listener.
    pub tls: Option<TlsIdentity>,
    /// The TLS listener's port, on the plain listener's address (default 0: a free port).
    pub tls_port: u16,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            client_key: None,
            solve_after: Duration::from_millis(1500),
            balance: 345.678,
            revoked_keys: Vec::new(),
            address_ban: None,
            banned_proxies: Vec::new(),
            first_task_id: 1000,
            answer_delay: Duration::ZERO,
            stamp_ready: false,
            max_connections: MAX_CONNECTIONS,
            tls: None,
            tls_port: 0,
        }
    }
}

/// How long dropping an [`Emulator`] waits for its runtime's threads to end (they end in
/// moments: every task is dropped at its next await, and none blocks).
const STOP_WAIT: Duration = Duration::from_secs(1);

/// A running emulator. Dropping it stops the server: the listener closes and open
/// connections are closed.
pub struct Emulator {
    server: Arc<http::Server>,
    addr: SocketAddr,
    /// The TLS listener's address, if [`Config::tls`] asked for one.
    tls_addr: Option<SocketAddr>,
    /// Runs the accept loop and the connections; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Emulator {
    /// Starts on 127.0.0.1 with a free port.
    pub fn start(config: Config) -> io::Result<Emulator> {
        Emulator::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config)
    }

    /// Starts on `addr` (port 0 picks a free port), and with [`Config::tls`] a TLS listener on
    /// the same address at [`Config::tls_port`].
    pub fn start_on(addr: SocketAddr, config: Config) -> io::Result<Emulator> {
        let listener = TcpListener::bind(addr)?;
        http::widen_backlog(&listener);
        let addr = listener.local_addr()?;
        let tls = match &config.tls {
            Some(identity) => {
                let tls_listener = TcpListener::bind(SocketAddr::new(addr.ip(), config.tls_port))?;
                http::widen_backlog(&tls_listener);
                Some((tls_listener, identity.clone()))
            }
            None => None,
        };
        let max_connections = config.max_connections;
        let server = Arc::new(http::Server::new(Arc::new(api::Service::new(config)), max_connections));
        let runtime = http::start(listener, Arc::clone(&server))?;
        let tls_addr = match tls {
            Some((tls_listener, identity)) => {
                let tls_addr = tls_listener.local_addr()?;
                tls::start(&runtime, tls_listener, Arc::clone(&server), &identity)?;
                Some(tls_addr)
            }
            None => None,
        };
        Ok(Emulator { server, addr, tls_addr, runtime: Some(runtime) })
    }

    /// The base URL, e.g. `http://127.0.0.1:4242` (no trailing slash). A wildcard bind
    /// address is reported as the loopback address, which is what local clients can use.
    pub fn url(&self) -> String {
        format!("http://{}", http::connect_address(self.addr))
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The TLS listener's base URL, e.g. `https://127.0.0.1:4243`, if [`Config::tls`] asked
    /// for one. Its certificate must name that address for a client to accept it.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_addr.map(|addr| format!("https://{}", http::connect_address(addr)))
    }

    /// The TLS listener's port, if there is one.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_addr.map(|addr| addr.port())
    }

    /// Scripts the getTaskResult answers for `task_id` (created or not), replacing any
    /// earlier script for it. Each request takes the next step; the last one repeats.
    /// An empty list removes the script. Ignored if the script table is full
    /// ([`MAX_SCRIPTS`]); steps beyond [`MAX_STEPS`] are dropped.
    pub fn script_task(&self, task_id: i64, steps: Vec<Step>) {
        let _ = self.server.service.set_script(Target::Task(task_id), steps);
    }

    /// Scripts the answers of an API method ("createTask", "getBalance", ... see
    /// [`API_METHODS`]); same rules as [`Emulator::script_task`]. For getTaskResult a task
    /// script wins over a method script. Names that aren't API methods are ignored.
    pub fn script_method(&self, method: &str, steps: Vec<Step>) {
        if is_api_method(method) {
            let _ = self.server.service.set_script(Target::Method(method.to_owned()), steps);
        }
    }

    /// Installs a parsed script entry (the `POST /_emulator/script` / `--script` form).
    /// Fails only when the script table is full.
    pub fn script(&self, entry: ScriptEntry) -> Result<(), String> {
        self.server.service.set_script(entry.target, entry.steps)
    }

    /// Creates a task as createTask would, without HTTP or key; it is ready after
    /// `config.solve_after` with the docs' solution for that type. Returns 0 (the service's
    /// "no task" id) if the task table is full.
    pub fn add_task(&self, task_type: &str) -> i64 {
        let task = serde_json::json!({ "type": task_type });
        let service = &self.server.service;
        service.add_task(&task, service.default_solve_after(), None, None).unwrap_or(0)
    }

    /// getTaskResult requests received for `task_id`, scripted, faulted or not; counted as
    /// soon as the request is read.
    pub fn task_requests(&self, task_id: i64) -> u32 {
        self.server.service.task_requests(task_id)
    }

    /// POST requests received for an API method (0 for unknown names).
    pub fn method_requests(&self, method: &str) -> u32 {
        self.server.service.method_requests(method)
    }

    /// TCP connections accepted so far by both listeners (including ones refused over the
    /// limit).
    pub fn connections(&self) -> u64 {
        self.server.service.connections()
    }

    /// The `callbackUrl` a createTask stored for this task, if any (never called).
    pub fn callback_url(&self, task_id: i64) -> Option<String> {
        self.server.service.callback_url(task_id)
    }

    /// The `softId` the createTask of this task sent, if any.
    pub fn soft_id(&self, task_id: i64) -> Option<u64> {
        self.server.service.soft_id(task_id)
    }

    /// The counters, as `GET /_emulator/stats` answers them.
    pub fn stats_json(&self) -> serde_json::Value {
        self.server.service.stats_json()
    }

    /// The account's standing now (revoked keys, address ban, banned proxies, balance).
    pub fn account(&self) -> Account {
        self.server.service.account()
    }

    /// Changes the account's standing with a `POST /_emulator/account` body, e.g.
    /// `{"revokedKeys": ["k"]}`, `{"balance": 0}`, `{"addressBan": "ERROR_IP_BANNED"}` or
    /// `{"addressBan": null}`; members not named stay. On an error nothing changes.
    pub fn update_account(&self, update: serde_json::Value) -> Result<(), String> {
        self.server.service.update_account(&update)
    }

    /// Clears scripts, tasks and counters, like `POST /_emulator/reset`.
    pub fn reset(&self) {
        self.server.service.reset();
    }

    /// Logs one line per request to stderr (method, path, outcome; never keys).
    pub fn set_verbose(&self, on: bool) {
        self.server.service.set_verbose(on);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else { return };
        // Shutting down drops the accept loop and every connection task, which closes the
        // listener and the sockets. Waiting for that would panic inside another runtime's
        // task (blocking is not allowed there): then it happens on the emulator's own
        // threads a moment later, without waiting.
        if tokio::runtime::Handle::try_current().is_ok() {
            runtime.shutdown_background();
        } else {
            runtime.shutdown_timeout(STOP_WAIT);
        }
    }
}
