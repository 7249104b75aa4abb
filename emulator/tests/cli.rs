//! The `capmonster-emulator` binary, as C/Go/C# tests and shell scripts run it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{post, Running};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_capmonster-emulator");

/// A scratch directory unique to this test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("capmonster-emulator-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run the binary")
}

#[test]
fn help_and_bad_arguments() {
    let help = run(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--port-file"));

    for bad in [&["--port"][..], &["--bogus"], &["--balance", "x"], &["--bind", "not-an-ip"]] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"), "{bad:?}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn bad_script_file_exits_2() {
    let dir = scratch("badscript");
    let path = dir.join("script.json");
    std::fs::write(&path, r#"[{"taskId": 1, "steps": [{"fault": "explode"}]}]"#).unwrap();
    let out = run(&["--script", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("explode"));
    let out = run(&["--script", dir.join("missing.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn serves_with_options_script_and_port_file() {
    let dir = scratch("serve");
    let script = dir.join("script.json");
    let port_file = dir.join("port");
    std::fs::write(
        &script,
        json!([
            {"taskId": 5, "steps": [{"ready": {"text": "scripted"}}]},
            {"method": "getBalance", "steps": [{"error": "ERROR_ZERO_BALANCE", "status": 402}]}
        ])
        .to_string(),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["--port", "0", "--client-key", "secret-key", "--solve-after-ms", "0", "--first-task-id", "50"])
        .args(["--balance", "1.25", "--verbose"])
        .arg("--script")
        .arg(&script)
        .arg("--port-file")
        .arg(&port_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);

    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("capmonster-emulator listening on ").expect(&line).to_owned();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(url, format!("http://127.0.0.1:{port}"));

    let deadline = Instant::now() + Duration::from_secs(5);
    while !port_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(std::fs::read_to_string(&port_file).unwrap().trim(), port.to_string());

    assert_eq!(post(port, "/getTaskResult", r#"{"taskId":5}"#).json()["solution"]["text"], "scripted");
    let balance = post(port, "/getBalance", r#"{"clientKey":"secret-key"}"#);
    assert_eq!((balance.status, balance.json()["errorCode"].as_str()), (402, Some("ERROR_ZERO_BALANCE")));
    let create = json!({"clientKey": "secret-key", "task": {"type": "ImageToTextTask", "body": "x"}});
    assert_eq!(post(port, "/createTask", &create.to_string()).json()["taskId"], 50);
    assert_eq!(post(port, "/getTaskResult", r#"{"clientKey":"secret-key","taskId":50}"#).json()["status"], "ready");
    let wrong =
        post(port, "/createTask", &json!({"clientKey": "nope", "task": {"type": "ImageToTextTask"}}).to_string());
    assert_eq!(wrong.json()["errorCode"], "ERROR_KEY_DOES_NOT_EXIST");

    let _ = child.0.kill();
    let out = stderr_of(&mut child.0);
    assert!(out.contains("POST /createTask -> 200"), "{out}");
    assert!(!out.contains("secret-key"), "keys must never be logged");
    let _ = std::fs::remove_dir_all(dir);
}

/// Everything a finished (killed) child wrote to stderr.
fn stderr_of(child: &mut Child) -> String {
    let _ = child.wait();
    let mut text = String::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    text
}

/// CPU time (user + system, in clock ticks) a process has used so far.
#[cfg(target_os = "linux")]
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
#[cfg(target_os = "linux")]
fn out_of_file_descriptors_it_waits_rather_than_spins_and_then_serves_the_rest() {
    // 32 descriptors: after its own (stdio, listener, the runtime's), about 25 connections fit.
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n 32 && exec {BIN} --port 0"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let pid = child.0.id();
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().rsplit(':').next().unwrap().parse().expect(&line);

    // 60 connections, each with a request: the kernel completes them all; the emulator can
    // accept only some, and accept fails (EMFILE) for the others while they wait.
    let mut conns: Vec<common::Conn> = (0..60).map(|_| common::Conn::open(port)).collect();
    for conn in &mut conns {
        conn.send("POST", "/getBalance", r#"{"clientKey":"k"}"#);
    }
    std::thread::sleep(Duration::from_millis(200));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(pid) - before;
    // Spinning on the error would take a whole CPU (about 100 ticks a second).
    assert!(spent < 20, "{spent} ticks in a second without descriptors");

    // The first 40 hang up: their descriptors come back, and the waiting ones are served.
    let mut rest = conns.split_off(40);
    drop(conns);
    for conn in &mut rest {
        assert_eq!(conn.read().status, 200);
    }
}
