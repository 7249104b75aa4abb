//! The request budget across processes: real child processes (this test binary run again in
//! child mode) poll one emulator task through the C ABI, each with the budget file the test
//! chooses, so tests stay apart and the user's own file is never touched.

mod common;

use std::ffi::{CStr, CString};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use capmonster::ffi::calls::cm_get_task_result;
use capmonster::ffi::client::{cm_client_free, cm_client_new, cm_client_set_base_url, cm_client_set_proxy};
use capmonster::ffi::library::{CM_ERR_API, CM_ERR_BUDGET_EXHAUSTED, CM_OK};
use capmonster::ffi::result::{cm_result_free, cm_result_message};
use common::*;

const KEY: &str = "shared-budget-key-0123456789";

/// Child mode: polls `CHILD_TASK` `CHILD_POLLS` times at `CHILD_URL` and prints what came back.
/// A no-op in a normal test run.
#[test]
fn child_poller() {
    let Ok(polls) = std::env::var("CHILD_POLLS") else { return };
    let polls: u32 = polls.parse().unwrap();
    let task_id: i64 = std::env::var("CHILD_TASK").unwrap().parse().unwrap();
    let url = CString::new(std::env::var("CHILD_URL").unwrap()).unwrap();
    let key = CString::new(KEY).unwrap();
    let (mut sent, mut exhausted, mut notes) = (0, 0, Vec::new());
    unsafe {
        let mut client = std::ptr::null_mut();
        assert_eq!(cm_client_new(key.as_ptr(), &mut client, std::ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_base_url(client, url.as_ptr(), std::ptr::null_mut()), CM_OK);
        assert_eq!(cm_client_set_proxy(client, std::ptr::null(), std::ptr::null_mut()), CM_OK);
        for _ in 0..polls {
            let mut result = std::ptr::null_mut();
            let code = cm_get_task_result(client, task_id, &mut result);
            let message = CStr::from_ptr(cm_result_message(result)).to_string_lossy().into_owned();
            if let Some(at) = message.find("(note: ") {
                notes.push(message[at..].to_owned());
            }
            match code {
                CM_ERR_BUDGET_EXHAUSTED => exhausted += 1,
                // The emulator, like the service, refuses polls beyond 120 with an API error.
                CM_OK | CM_ERR_API => sent += 1,
                other => panic!("unexpected code {other}: {message}"),
            }
            cm_result_free(result);
        }
        cm_client_free(client);
    }
    println!("POLLS sent={sent} exhausted={exhausted} notes={notes:?}");
}

/// A fresh directory for one test's budget file.
fn scratch(name: &str) -> ScratchDir {
    ScratchDir::new("capmonster-shared-budget", name)
}

/// An emulator whose tasks stay processing for an hour.
fn slow_emulator() -> Emulator {
    Emulator::start(Config { solve_after: Duration::from_secs(3600), ..Config::default() }).unwrap()
}

fn child(emulator: &Emulator, task_id: i64, polls: u32, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child_poller", "--nocapture", "--test-threads=1"])
        .env("CHILD_POLLS", polls.to_string())
        .env("CHILD_TASK", task_id.to_string())
        .env("CHILD_URL", emulator.url())
        // The child inherits tests/common's mark of a chosen budget, so it keeps the one set here.
        .env_remove("CAPMONSTER_BUDGET")
        .env_remove("CAPMONSTER_BUDGET_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// (sent, exhausted, notes) from a finished child's output.
fn outcome(output: Output) -> (u32, u32, String) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    // libtest prints the test's name on the same line, before the report.
    let line = stdout.lines().find_map(|line| line.find("POLLS ").map(|at| &line[at..]));
    let line = line.unwrap_or_else(|| panic!("no report from the child: {stdout}"));
    let field = |name: &str| -> u32 {
        let start = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[start..].split(' ').next().unwrap().parse().unwrap()
    };
    let notes = line[line.find("notes=").unwrap() + 6..].to_owned();
    (field("sent"), field("exhausted"), notes)
}

fn run_all(children: Vec<Child>) -> Vec<(u32, u32, String)> {
    children.into_iter().map(|child| outcome(child.wait_with_output().unwrap())).collect()
}

fn file_env(path: &Path) -> (&'static str, String) {
    ("CAPMONSTER_BUDGET_FILE", path.to_str().unwrap().to_owned())
}

#[test]
fn eight_processes_polling_one_task_send_120_in_all() {
    let emulator = slow_emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let dir = scratch("eight");
    let path = dir.join("budget");
    let (name, value) = file_env(&path);
    let children = (0..8).map(|_| child(&emulator, task_id, 50, &[(name, &value)]).spawn().unwrap()).collect();
    let outcomes = run_all(children);
    let sent: u32 = outcomes.iter().map(|o| o.0).sum();
    let exhausted: u32 = outcomes.iter().map(|o| o.1).sum();
    assert_eq!((sent, exhausted), (120, 280));
    assert_eq!(emulator.task_requests(task_id), 120);

    // The file: private (Unix modes; on Windows the directory's access rules), of the
    // documented size, and no key in it.
    let meta = std::fs::metadata(&path).unwrap();
    #[cfg(unix)]
    assert_eq!(std::os::unix::fs::MetadataExt::mode(&meta) & 0o777, 0o600);
    assert_eq!(meta.len(), capmonster::budget::file::FILE_BYTES);
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()), "the key is in the file");
}

#[test]
fn processes_one_after_another_send_120_in_all() {
    let emulator = slow_emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let dir = scratch("in-a-row");
    let path = dir.join("budget");
    let (name, value) = file_env(&path);
    let mut totals = (0, 0);
    for _ in 0..130 {
        let (sent, exhausted, _) = outcome(child(&emulator, task_id, 1, &[(name, &value)]).output().unwrap());
        totals = (totals.0 + sent, totals.1 + exhausted);
    }
    assert_eq!(totals, (120, 10));
    assert_eq!(emulator.task_requests(task_id), 120);
}

#[test]
fn the_default_file_is_private_and_shared() {
    let emulator = slow_emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let runtime = scratch("runtime");
    // Where the default file goes: the per-user runtime directory on Unix, the user's local
    // application data on Windows.
    let variable = if cfg!(windows) { "LOCALAPPDATA" } else { "XDG_RUNTIME_DIR" };
    let env = [(variable, runtime.to_str().unwrap())];
    let outcomes = run_all((0..3).map(|_| child(&emulator, task_id, 50, &env).spawn().unwrap()).collect());
    assert_eq!(outcomes.iter().map(|o| o.0).sum::<u32>(), 120);
    assert!(runtime.join("capmonster").join("budget-v4").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(runtime.join("capmonster")).unwrap().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(runtime.join("capmonster/budget-v4")).unwrap().mode() & 0o777, 0o600);
    }
}

#[test]
fn a_process_budget_counts_alone() {
    let emulator = slow_emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let env = [("CAPMONSTER_BUDGET", "process")];
    let outcomes = run_all((0..3).map(|_| child(&emulator, task_id, 50, &env).spawn().unwrap()).collect());
    assert!(outcomes.iter().all(|o| o.0 == 50 && o.1 == 0), "{outcomes:?}");
    assert_eq!(emulator.task_requests(task_id), 150);
}

#[test]
fn a_killed_process_blocks_no_one_and_loses_at_most_its_request() {
    let emulator = slow_emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let dir = scratch("killed");
    let path = dir.join("budget");
    let (name, value) = file_env(&path);
    // Killed at a random point of a tight polling loop, some 40 requests in.
    let mut victim = child(&emulator, task_id, 100, &[(name, &value)]).spawn().unwrap();
    let start = Instant::now();
    while emulator.task_requests(task_id) < 40 {
        assert!(start.elapsed() < Duration::from_secs(20), "the victim never polled");
        std::thread::sleep(Duration::from_micros(200));
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    // A request the victim wrote just before it died may still be on its way to the emulator
    // (which counts a request once it has read it): wait until the count settles, at most 5 s.
    let mut before = emulator.task_requests(task_id);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = emulator.task_requests(task_id);
        if now == before {
            break;
        }
        before = now;
    }
    let start = Instant::now();
    let (sent, exhausted, _) = outcome(child(&emulator, task_id, 120, &[(name, &value)]).output().unwrap());
    assert!(start.elapsed() < Duration::from_secs(10), "the next process waited {:?}", start.elapsed());
    let total = emulator.task_requests(task_id);
    assert_eq!(total, before + sent);
    assert!((119..=120).contains(&total), "{total} requests reached the service");
    assert!(exhausted >= 1);
}

#[test]
fn untrusted_files_are_not_used_and_the_first_result_says_why() {
    let emulator = slow_emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let dir = scratch("untrusted");

    // A corrupted file is the library's own: rebuilt, shared again, and said once.
    let corrupted = dir.join("corrupted");
    std::fs::write(&corrupted, b"garbage").unwrap();
    let (name, value) = file_env(&corrupted);
    let (sent, _, notes) = outcome(child(&emulator, task_id, 2, &[(name, &value)]).output().unwrap());
    assert_eq!(sent, 2);
    assert!(notes.contains("rebuilt") && notes.matches("note:").count() == 1, "{notes}");
    assert_eq!(std::fs::metadata(&corrupted).unwrap().len(), capmonster::budget::file::FILE_BYTES);

    // A symlink is never followed: the process counts alone. (Unix only: making one on
    // Windows needs a privilege that tests do not have.)
    #[cfg(unix)]
    untrusted_links_and_owners(&emulator, task_id, &dir, &corrupted);
}

#[cfg(unix)]
fn untrusted_links_and_owners(emulator: &Emulator, task_id: i64, dir: &Path, corrupted: &Path) {
    let link = dir.join("link");
    std::os::unix::fs::symlink(corrupted, &link).unwrap();
    let (name, value) = file_env(&link);
    let (sent, _, notes) = outcome(child(emulator, task_id, 2, &[(name, &value)]).output().unwrap());
    assert_eq!(sent, 2);
    assert!(notes.contains("symbolic link") && notes.contains("alone"), "{notes}");

    // Another user's file (only root can make one here).
    if unsafe { libc::geteuid() } == 0 {
        let foreign = dir.join("foreign");
        std::fs::write(&foreign, b"").unwrap();
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
        let (name, value) = file_env(&foreign);
        let (sent, _, notes) = outcome(child(emulator, task_id, 2, &[(name, &value)]).output().unwrap());
        assert_eq!(sent, 2);
        assert!(notes.contains("another user") && notes.contains("alone"), "{notes}");
        assert_eq!(std::fs::metadata(&foreign).unwrap().len(), 0, "another user's file is not written");
    }
}
