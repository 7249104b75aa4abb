//! Shared by the integration tests: an emulator per test, a client for it, and a request
//! budget file of the test process's own (never the user's).
#![allow(dead_code, unused_imports)]

pub mod h2;
pub mod servers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use capmonster::{Client, Schedule};
pub use capmonster_emulator::{Config, Emulator, Step};
use serde_json::{json, Value};

/// A fresh directory of one test under the system's temporary directory, removed with
/// everything in it when the test ends (a test's budget files alone are megabytes, and test
/// runs are many). Named by `prefix`, this process and `name`, so parallel runs never meet.
#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(prefix: &str, name: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for ScratchDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for ScratchDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a file still open on Windows keeps its directory.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh emulator on a free loopback port.
pub fn emulator() -> Emulator {
    Emulator::start(Config::default()).expect("the emulator starts")
}

/// A client for `emulator`. Each test passes its own key: the request budget is process-wide,
/// per (key, task), and tests run in parallel.
pub fn client(emulator: &Emulator, key: &str) -> Client {
    let client = Client::new(key).expect("valid key");
    client.set_base_url(&emulator.url()).expect("valid emulator URL");
    client.set_proxy(None).expect("direct");
    client
}

/// A schedule that polls quickly, for tests.
pub fn fast_schedule() -> Schedule {
    Schedule {
        first_delay: Duration::ZERO,
        interval: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
        max_requests: 120,
    }
}

/// A ready answer from the service's documentation: its page, the answer as the body to
/// serve (the docs' own field order and extras, `"status":"ready"` added where the docs left
/// it out), and its solution.
pub struct DocsExample {
    pub page: String,
    pub body: String,
    pub solution: Value,
}

/// Every ready example of `tests/fixtures/capmonster-docs-examples.json`.
pub fn docs_ready_examples() -> Vec<DocsExample> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/capmonster-docs-examples.json"))
            .expect("tests/fixtures/capmonster-docs-examples.json");
    let fixtures: Value = serde_json::from_str(&text).expect("the fixtures are JSON");
    let mut examples = Vec::new();
    for page in fixtures["pages"].as_array().expect("pages") {
        for example in page["responses"].as_array().expect("responses") {
            let Some(solution) = example.get("solution") else { continue };
            let mut body = example.clone();
            body.as_object_mut().expect("an object").entry("status").or_insert(json!("ready"));
            examples.push(DocsExample {
                page: page["page"].as_str().unwrap_or("?").to_owned(),
                body: body.to_string(),
                solution: solution.clone(),
            });
        }
    }
    examples
}

/// Set in a test process once its budget is chosen; children inherit it, and with it the
/// budget their parent chose for them (tests/shared_budget.rs gives each child a file of the
/// test's choosing, the default place, or none).
const BUDGET_CHOSEN: &str = "CAPMONSTER_TEST_BUDGET_CHOSEN";

/// This process's budget directory, removed at exit (Unix).
static BUDGET_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Runs `isolate_budget` before `main`, as C++ runs its static constructors (the loader calls
/// every function of these sections).
#[used]
#[cfg_attr(all(unix, not(target_vendor = "apple")), link_section = ".init_array")]
#[cfg_attr(target_vendor = "apple", link_section = "__DATA,__mod_init_func")]
#[cfg_attr(windows, link_section = ".CRT$XCU")]
static ISOLATE_BUDGET: extern "C" fn() = isolate_budget;

/// Gives this test process a request budget of its own, so that no test reads or writes the
/// user's budget file (`$XDG_RUNTIME_DIR/capmonster/budget-v4` or the like) whoever runs it:
/// on Unix a fresh file in a temporary directory, removed at exit; on Windows, where a mapped
/// file cannot be removed while its process lives, the budget of this process alone.
///
/// Before `main`, because the library reads the budget's variables once, at the first client,
/// and `set_var` is sound only while no other thread touches the environment (std's own calls
/// take a lock, but C code such as getaddrinfo reads it unlocked): here this is the only
/// thread, and no test has started, so no client exists yet.
extern "C" fn isolate_budget() {
    if std::env::var_os(BUDGET_CHOSEN).is_some() {
        return;
    }
    std::env::set_var(BUDGET_CHOSEN, "1");
    if cfg!(windows) {
        std::env::set_var("CAPMONSTER_BUDGET", "process");
        std::env::remove_var("CAPMONSTER_BUDGET_FILE");
        return;
    }
    let dir = std::env::temp_dir().join(format!("capmonster-rust-test-budget-{}", std::process::id()));
    // A directory of this name is a dead process's (process ids are reused).
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(error) = std::fs::create_dir(&dir) {
        // No panic here: it cannot unwind out of a constructor.
        eprintln!("cannot make the tests' budget directory {}: {error}", dir.display());
        std::process::abort();
    }
    std::env::set_var("CAPMONSTER_BUDGET_FILE", dir.join("budget"));
    std::env::remove_var("CAPMONSTER_BUDGET");
    let _ = BUDGET_DIR.set(dir);
    // SAFETY: registers a function with no preconditions; a failure only leaves the directory.
    unsafe { libc::atexit(remove_budget_dir) };
}

/// At exit: removes this process's budget directory (the file may stay mapped: Unix unlinks it).
extern "C" fn remove_budget_dir() {
    if let Some(dir) = BUDGET_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Every test binary that includes this module checks that its clients count in a budget of
/// its own: a file in this process's directory, opened by the first client. (No request: some
/// binaries count the process's sockets or segments while their one other test runs.)
#[test]
fn the_request_budget_is_this_test_processs_own() {
    if cfg!(windows) {
        assert_eq!(std::env::var("CAPMONSTER_BUDGET").as_deref(), Ok("process"));
        assert!(std::env::var_os("CAPMONSTER_BUDGET_FILE").is_none());
        let _client = capmonster::Client::new("budget-isolation-check").expect("a client");
        assert!(!capmonster::budget::global().is_shared());
        return;
    }
    let dir = BUDGET_DIR.get().expect("the constructor ran before main");
    let file = dir.join("budget");
    assert_eq!(std::env::var_os("CAPMONSTER_BUDGET_FILE"), Some(file.clone().into_os_string()));
    let _client = capmonster::Client::new("budget-isolation-check").expect("a client");
    assert!(capmonster::budget::global().is_shared(), "the budget file could not be used");
    assert_eq!(std::fs::metadata(&file).expect("the budget file").len(), capmonster::budget::file::FILE_BYTES);
}
