//! The request budget and the account guard in a real Redis (Debian's `redis-server`, started
//! here on a free loopback port with a directory of its own, `--save '' --appendonly no`):
//! child processes (this test binary run again, in `redis_child`), each with a budget file of
//! its own as if it ran on a host of its own, share one Redis through
//! `CAPMONSTER_BUDGET=redis://...`. Unix only (the server is Debian's).
#![cfg(unix)]

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use capmonster::budget::{Admission, Budget, KeyDigest, NoticesTold};
use common::*;
use serde_json::{json, Value};

const KEY: &str = "redis-store-key-0123456789";

/// Child mode: `CHILD_CALLS` calls (`CHILD_METHOD` `poll`: getTaskResult of `CHILD_TASK`;
/// `balance`: getBalance) with the key `CHILD_KEY` (else [`KEY`]) at `CHILD_URL`, pausing
/// `CHILD_PAUSE_MS` between calls; prints one line `CHILD {...}`: calls that went out, that
/// the budget refused, that the guard answered here, the slowest call and the notices. A
/// no-op in a normal test run.
#[test]
fn redis_child() {
    let Ok(calls) = std::env::var("CHILD_CALLS") else { return };
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let calls: u32 = calls.parse().unwrap();
    let pause = Duration::from_millis(var("CHILD_PAUSE_MS").parse().unwrap_or(0));
    let key = std::env::var("CHILD_KEY").unwrap_or_else(|_| KEY.to_owned());
    let client = capmonster::Client::new(&key).unwrap();
    client.set_base_url(&var("CHILD_URL")).unwrap();
    client.set_proxy(None).unwrap();
    let (mut sent, mut exhausted, mut local, mut slowest, mut notes, mut codes) =
        (0, 0, 0, Duration::ZERO, Vec::new(), Vec::new());
    for _ in 0..calls {
        let start = Instant::now();
        let (requests, error, notice) = if var("CHILD_METHOD") == "balance" {
            let report = client.get_balance();
            (report.requests, report.result.err(), report.notice)
        } else {
            let report = client.get_task_result(var("CHILD_TASK").parse().unwrap());
            (report.requests, report.result.err(), report.notice)
        };
        slowest = slowest.max(start.elapsed());
        notes.extend(notice);
        match error {
            Some(error) if error.code == capmonster::Code::BudgetExhausted => exhausted += 1,
            Some(error) if requests == 0 => {
                local += 1;
                codes.push(error.api_code().unwrap_or("none").to_owned());
            }
            Some(error) => codes.push(error.api_code().unwrap_or("none").to_owned()),
            None => {}
        }
        if requests > 0 {
            sent += 1;
        }
        std::thread::sleep(pause);
    }
    let line = json!({"sent": sent, "exhausted": exhausted, "local": local,
        "slowest_ms": slowest.as_millis() as u64, "notes": notes, "codes": codes});
    println!("CHILD {line}");
}

/// A `redis-server` of the test's own; killed when dropped.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: ScratchDir,
    extra: Vec<String>,
    tls: bool,
}

impl Redis {
    fn start(name: &str, extra: &[&str]) -> Redis {
        let dir = scratch(&format!("server-{name}"));
        let mut redis = Redis {
            child: None,
            port: free_port(),
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            tls: false,
        };
        redis.launch();
        redis
    }

    /// A server that speaks TLS only, with a certificate for `localhost` signed by `ca.pem`
    /// in its directory.
    fn start_tls(name: &str) -> Redis {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = scratch(&format!("server-{name}"));
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "libcapmonster test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        std::fs::write(dir.join("ca.pem"), params.self_signed(&ca_key).unwrap().pem()).unwrap();
        let issuer = Issuer::new(params, ca_key);
        let server = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        std::fs::write(dir.join("server.pem"), server.signed_by(&key, &issuer).unwrap().pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let extra = vec![
            "--tls-cert-file".to_owned(),
            file("server.pem"),
            "--tls-key-file".to_owned(),
            file("server.key"),
            "--tls-ca-cert-file".to_owned(),
            file("ca.pem"),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ];
        let mut redis = Redis { child: None, port: free_port(), dir, extra, tls: true };
        redis.launch();
        redis
    }

    fn launch(&mut self) {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        if self.tls {
            command.args(["--port", "0", "--tls-port", &port]);
        } else {
            command.args(["--port", &port]);
        }
        command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().expect("redis-server runs (scripts/install-deps.sh rust installs it)");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "redis-server did not start: see {:?}", self.dir);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Sends the server a signal (`STOP`: it answers nothing, its sockets stay open; `CONT`).
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success());
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every key in the server, through `redis-cli`.
    fn keys(&self, password: Option<&str>) -> Vec<String> {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string(), "--no-auth-warning"]);
        if let Some(password) = password {
            command.args(["-a", password]);
        }
        let output = command.args(["--scan"]).output().unwrap();
        String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn scratch(name: &str) -> ScratchDir {
    ScratchDir::new("capmonster-redis-store", name)
}

/// An emulator whose tasks stay processing for an hour.
fn slow_emulator() -> Emulator {
    Emulator::start(Config { solve_after: Duration::from_secs(3600), ..Config::default() }).unwrap()
}

/// A child with `budget` as `CAPMONSTER_BUDGET` and a budget file of its own ("its host's").
fn child(emulator: &Emulator, budget: &str, file: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "redis_child", "--nocapture", "--test-threads=1"])
        .env("CHILD_URL", emulator.url())
        .env("CAPMONSTER_BUDGET", budget)
        .env("CAPMONSTER_BUDGET_FILE", file)
        .env_remove("CAPMONSTER_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn poller(emulator: &Emulator, budget: &str, file: &Path, task_id: i64, polls: u32) -> Command {
    let (task, polls) = (task_id.to_string(), polls.to_string());
    child(emulator, budget, file, &[("CHILD_TASK", &task), ("CHILD_CALLS", &polls)])
}

/// A finished child's line.
fn outcome(output: Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let line = stdout.lines().find_map(|line| line.find("CHILD ").map(|at| &line[at + 6..]));
    serde_json::from_str(line.unwrap_or_else(|| panic!("no report from the child: {stdout}"))).unwrap()
}

fn total(outcomes: &[Value], field: &str) -> u64 {
    outcomes.iter().map(|o| o[field].as_u64().unwrap()).sum()
}

fn notes(outcome: &Value) -> Vec<String> {
    outcome["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect()
}

#[test]
fn eight_hosts_polling_one_task_send_120_in_all() {
    let redis = Redis::start("eight", &[]);
    let emulator = slow_emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let dir = scratch("eight");
    let children: Vec<Child> = (0..8)
        .map(|host| poller(&emulator, &redis.url(), &dir.join(format!("host-{host}")), task_id, 50).spawn().unwrap())
        .collect();
    let outcomes: Vec<Value> = children.into_iter().map(|c| outcome(c.wait_with_output().unwrap())).collect();
    assert_eq!((total(&outcomes, "sent"), total(&outcomes, "exhausted")), (120, 280));
    assert_eq!(emulator.task_requests(task_id), 120);
    assert!(outcomes.iter().all(|o| notes(o).is_empty()), "{outcomes:?}");

    // Counted in Redis, not in any host's file; only digests there, under the prefix.
    let key = KeyDigest::of(KEY, &emulator.url());
    let in_redis = Budget::from_settings(Some(redis.url()), Some(dir.join("reader").into()));
    assert_eq!(in_redis.sent(key, task_id), 120);
    assert!(in_redis.in_redis());
    let host_file = Budget::from_settings(None, Some(dir.join("host-0").into()));
    assert!(host_file.is_shared());
    assert_eq!(host_file.sent(key, task_id), 0, "nothing counted in a host's file");
    let keys = redis.keys(None);
    assert_eq!(keys, [format!("capmonster:v1:task:{:016x}:{task_id}", key.value())]);
}

#[test]
fn hosts_one_after_another_send_120_in_all() {
    let redis = Redis::start("in-a-row", &[]);
    let emulator = slow_emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let dir = scratch("in-a-row");
    let outcomes: Vec<Value> = (0..130)
        .map(|host| {
            outcome(poller(&emulator, &redis.url(), &dir.join(format!("host-{host}")), task_id, 1).output().unwrap())
        })
        .collect();
    assert_eq!((total(&outcomes, "sent"), total(&outcomes, "exhausted")), (120, 10));
    assert_eq!(emulator.task_requests(task_id), 120);
}

#[test]
fn a_guard_stop_is_seen_by_every_host_after_the_first_answer() {
    let redis = Redis::start("guard", &[]);
    let emulator = slow_emulator();
    let revoked = "redis-store-revoked-key-0123";
    emulator.update_account(json!({"revokedKeys": [revoked]})).unwrap();
    let dir = scratch("guard");
    let balance = |host: u32| {
        let file = dir.join(format!("host-{host}"));
        outcome(
            child(
                &emulator,
                &redis.url(),
                &file,
                &[("CHILD_METHOD", "balance"), ("CHILD_CALLS", "3"), ("CHILD_KEY", revoked)],
            )
            .output()
            .unwrap(),
        )
    };
    let first = balance(0);
    assert_eq!((first["sent"].as_u64(), first["local"].as_u64()), (Some(1), Some(2)), "{first}");
    for host in 1..4 {
        let other = balance(host);
        assert_eq!((other["sent"].as_u64(), other["local"].as_u64()), (Some(0), Some(3)), "{other}");
        assert!(other["codes"].as_array().unwrap().iter().all(|c| c == "ERROR_KEY_DOES_NOT_EXIST"), "{other}");
    }
    assert_eq!(emulator.method_requests("getBalance"), 1, "one request for all the hosts");
    // The stop is kept under the key's digest, never the key.
    let keys = redis.keys(None);
    assert_eq!(keys, ["capmonster:v1:stops"], "{keys:?}");
}

/// In one process: Redis frozen (`SIGSTOP`: connections open, no answer; the first call waits
/// one read timeout, then each falls back to the file at once, and the first says so), thawed
/// (the next call after the retry interval counts in Redis again, where the count was, and
/// says so).
#[test]
fn an_outage_falls_back_to_the_file_and_redis_is_used_again_when_it_answers() {
    let mut redis = Redis::start("outage", &[]);
    let dir = scratch("outage");
    let budget = Budget::from_settings(Some(redis.url()), Some(dir.join("budget").into()));
    let (key, told) = (KeyDigest::of(KEY, "http://127.0.0.1:1"), NoticesTold::default());
    let take = || {
        let start = Instant::now();
        let taken = budget.take(key, 77, &told, &mut |_| Ok(()));
        (taken.admission.unwrap(), taken.notice, start.elapsed())
    };
    for nth in 1..=5 {
        assert_eq!(take().0, Admission::Granted { nth });
    }
    assert!(budget.in_redis());

    redis.signal("STOP");
    let (admission, notice, took) = take();
    assert_eq!(admission, Admission::Granted { nth: 1 }, "counted in the file, which had none");
    let notice = notice.expect("the outage is said");
    assert!(notice.contains(&format!("could not reach Redis at {}", redis.url())), "{notice}");
    assert!(took < Duration::from_millis(600), "{took:?}");
    eprintln!("frozen Redis: the first call took {took:?}");
    assert!(!budget.in_redis());
    let start = Instant::now();
    for nth in 2..=50 {
        let (admission, notice, _) = take();
        assert_eq!((admission, notice), (Admission::Granted { nth }, None), "said once");
    }
    assert!(start.elapsed() < Duration::from_millis(600), "{:?}: calls never wait for Redis", start.elapsed());
    eprintln!("frozen Redis: the next 49 calls took {:?}", start.elapsed());

    redis.signal("CONT");
    std::thread::sleep(capmonster::budget::redis::RETRY_EVERY + Duration::from_millis(100));
    let (admission, notice, _) = take();
    // The count whose answer timed out was counted all the same when Redis thawed: a unit
    // lost, never one too many.
    assert_eq!(admission, Admission::Granted { nth: 7 }, "Redis's count goes on");
    assert!(notice.unwrap().contains("answers again"));
    assert!(budget.in_redis());
    assert_eq!(take().1, None);

    // Stopped for good: connections are refused, and fall back at once.
    redis.stop();
    let (admission, notice, took) = take();
    assert_eq!(admission, Admission::Granted { nth: 51 });
    assert!(notice.unwrap().contains("could not reach Redis"));
    assert!(took < Duration::from_millis(300), "{took:?}");
    eprintln!("stopped Redis: the first call took {took:?}");
}

/// Processes polling while Redis is stopped in the middle and restarted (empty: it keeps
/// nothing on disk here): no call hangs, each process says the outage once and the return once.
#[test]
fn hosts_polling_through_an_outage_never_hang() {
    let mut redis = Redis::start("hosts-outage", &[]);
    let emulator = slow_emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let dir = scratch("hosts-outage");
    let children: Vec<Child> = (0..4)
        .map(|host| {
            // 4 s of polls: the outage and the return fall well inside, even on a loaded machine.
            poller(&emulator, &redis.url(), &dir.join(format!("host-{host}")), task_id, 40)
                .env("CHILD_PAUSE_MS", "100")
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    redis.stop();
    std::thread::sleep(Duration::from_millis(800));
    redis.launch();
    let outcomes: Vec<Value> = children.into_iter().map(|c| outcome(c.wait_with_output().unwrap())).collect();
    eprintln!("slowest calls (ms): {:?}", outcomes.iter().map(|o| o["slowest_ms"].clone()).collect::<Vec<_>>());
    for outcome in &outcomes {
        assert!(outcome["slowest_ms"].as_u64().unwrap() < 1000, "{outcome}");
        let notes = notes(outcome).join(" / ");
        assert_eq!(notes.matches("could not reach Redis").count(), 1, "{notes}");
        assert_eq!(notes.matches("answers again:").count(), 1, "{notes}");
    }
    assert_eq!(total(&outcomes, "sent") as u32, emulator.task_requests(task_id));
}

#[test]
fn a_password_is_used_and_never_said() {
    let password = "s3cret-redis-pass-71";
    let redis = Redis::start("password", &["--requirepass", password]);
    let emulator = slow_emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let dir = scratch("password");
    let url = format!("redis://:{password}@127.0.0.1:{}/0", redis.port);
    let children: Vec<Child> = (0..2)
        .map(|host| poller(&emulator, &url, &dir.join(format!("host-{host}")), task_id, 100).spawn().unwrap())
        .collect();
    let outcomes: Vec<Value> = children.into_iter().map(|c| outcome(c.wait_with_output().unwrap())).collect();
    assert_eq!((total(&outcomes, "sent"), total(&outcomes, "exhausted")), (120, 80));
    assert_eq!(redis.keys(Some(password)).len(), 1);
    let budget = Budget::from_settings(Some(url.clone()), Some(dir.join("reader").into()));
    assert_eq!(budget.redis(), Some(redis.url().as_str()), "named without the password");

    // A wrong password: the calls count in the file and say why, without it, in the result
    // and in the log.
    let wrong = format!("redis://default:wrong-pass-3141@127.0.0.1:{}/0", redis.port);
    let output =
        poller(&emulator, &wrong, &dir.join("wrong"), task_id, 2).env("CAPMONSTER_LOG", "trace").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let wrong_outcome = outcome(output);
    let notes = notes(&wrong_outcome).join(" / ");
    assert!(notes.contains(&format!("could not reach Redis at {}", redis.url())), "{notes}");
    assert!(stderr.contains("budget.redis"), "{stderr}");
    for text in [&notes, &stderr] {
        assert!(!text.contains("wrong-pass-3141") && !text.contains(password), "{text}");
    }
    assert_eq!(wrong_outcome["sent"], 2, "counted in this host's file, apart from Redis's 120");
}

#[test]
fn tls_with_a_trusted_certificate() {
    let redis = Redis::start_tls("tls");
    let emulator = slow_emulator();
    let task_id = emulator.add_task("ImageToTextTask");
    let dir = scratch("tls");
    let url = format!("rediss://localhost:{}/0", redis.port);
    let ca = redis.dir.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let children: Vec<Child> = (0..3)
        .map(|host| {
            poller(&emulator, &url, &dir.join(format!("host-{host}")), task_id, 50)
                .env("SSL_CERT_FILE", ca)
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes: Vec<Value> = children.into_iter().map(|c| outcome(c.wait_with_output().unwrap())).collect();
    assert_eq!((total(&outcomes, "sent"), total(&outcomes, "exhausted")), (120, 30), "{outcomes:?}");
    assert!(outcomes.iter().all(|o| notes(o).is_empty()), "{outcomes:?}");
    // Without the CA the certificate is not trusted: the file stands in, and says why.
    let untrusted = outcome(poller(&emulator, &url, &dir.join("untrusted"), task_id, 1).output().unwrap());
    assert!(notes(&untrusted).join(" ").contains("could not reach Redis at rediss://localhost:"), "{untrusted}");
}

#[test]
fn a_url_that_cannot_be_used_is_said_without_repeating_it() {
    let dir = scratch("bad-url");
    let budget = Budget::from_settings(Some("redis://:pw-in-url-99@[::1".into()), Some(dir.join("budget").into()));
    assert!(budget.redis().is_none() && budget.is_shared());
    let notice = budget.untold(&NoticesTold::default()).unwrap();
    assert!(notice.contains("CAPMONSTER_BUDGET names Redis") && !notice.contains("pw-in-url-99"), "{notice}");
}
