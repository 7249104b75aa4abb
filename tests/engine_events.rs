//! The waiters' engine on its event loop (`Client::set_engine(Engine::EventLoop)`), against real servers: the
//! emulator answering after a round trip, and Debian's nginx in front of it speaking HTTP/2
//! over TLS. Thousands of waits on schedule on a few library threads, many streams on one
//! connection, a stream cancelled while the others on its connection complete, and a
//! connection that dies under 100 streams failing each request as a blocking call fails. A
//! test binary of its own: it counts the process's library threads by name.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use capmonster::{Client, Code, Engine, Schedule, Waiter};
use common::h2::{self, finished};
use common::servers::{free_port, scratch_dir};
use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::json;

/// The library's threads now (the emulator's, also named `capmonster-emulator-*`, left out).
#[cfg(target_os = "linux")]
fn library_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("capmonster-") && !name.starts_with("capmonster-emu"))
        .count()
}

#[cfg(not(target_os = "linux"))]
fn library_threads() -> usize {
    0
}

/// The tests of this binary run one at a time: one counts the process's library threads, which
/// another test's engine would add to.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn emulator_with(answer_delay: Duration) -> Emulator {
    Emulator::start(Config { answer_delay, max_connections: 4096, ..Config::default() }).expect("the emulator starts")
}

fn events_client(base_url: &str, key: &str) -> Arc<Client> {
    let client = Client::new(key).unwrap();
    client.set_base_url(base_url).unwrap();
    client.set_proxy(None).unwrap();
    client.set_engine(Engine::EventLoop);
    Arc::new(client)
}

/// nginx terminating TLS with HTTP/2 (ALPN) in front of `upstream`, with room for every
/// stream of the tests (each takes an upstream connection while in flight), allowing 100
/// streams per connection.
struct Nginx {
    child: Child,
    port: u16,
    ca_file: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_h2(name: &str, upstream: &str) -> Nginx {
    nginx_tls(name, upstream, Some(100), 1_000_000)
}

/// nginx terminating TLS in front of `upstream`: with HTTP/2 allowing `streams` per connection,
/// or (`None`) HTTP/1.1 only; a connection is closed (on HTTP/2 by GOAWAY) after
/// `requests_per_connection`.
fn nginx_tls(name: &str, upstream: &str, streams: Option<u32>, requests_per_connection: u32) -> Nginx {
    let dir = scratch_dir(&format!("engine-{name}"));
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "libcapmonster engine test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = server_params.signed_by(&server_key, &issuer).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    let port = free_port();
    let d = dir.display();
    let (http2, streams) = match streams {
        Some(streams) => (" http2", streams),
        None => ("", 128),
    };
    let config = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  http2_max_concurrent_streams {streams};
  keepalive_requests {requests_per_connection};
  server {{
    listen 127.0.0.1:{port} ssl{http2};
    ssl_certificate {d}/server.pem; ssl_certificate_key {d}/server.key;
    location / {{ proxy_pass {upstream}; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}
  }}
}}
"
    );
    let config_path = dir.join("nginx.conf");
    std::fs::write(&config_path, config).unwrap();
    let child = Command::new(program("nginx"))
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&config_path)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx { child, port, ca_file: dir.join("ca.pem") }
}

fn program(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("{name} is needed by this test: scripts/install-deps.sh rust installs it"))
}

fn https_events_client(nginx: &Nginx, key: &str) -> Arc<Client> {
    let client = events_client(&format!("https://127.0.0.1:{}", nginx.port), key);
    client.set_ca_file(Some(nginx.ca_file.to_str().unwrap())).unwrap();
    client
}

/// 2,000 waits at a 150 ms round trip: the schedule allows one poll at once and one a second
/// later (answered 150 ms after each), 1.3 s. All are done within twice that (the first burst
/// opens 2,000 connections to the emulator, which starts a thread for each; its second polls
/// then go out on time, on the pooled connections), on at most three library threads, with two
/// requests each. The engine's threads (cap 64) took about 10 s for this.
#[test]
fn two_thousand_waits_at_150_ms_finish_on_schedule_on_three_threads() {
    let _serial = one_at_a_time();
    let emulator = emulator_with(Duration::from_millis(150));
    let client = events_client(&emulator.url(), "events-2000");
    client.set_max_connections(2048).unwrap();
    // Fewer under Wine (scripts/test-windows.sh): its server walks every socket's poll on each
    // socket event (docs/engine.md, Windows).
    let waits: i64 = std::env::var("CAPMONSTER_TEST_WAITS_AT_150_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    for task in 0..waits {
        emulator.script_task(50_000 + task, vec![Step::processing(), Step::ready(json!({"text": "ok"}))]);
    }
    let schedule = Schedule {
        first_delay: Duration::ZERO,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(30),
        max_requests: 10,
    };
    let waiter = Waiter::new(&client).unwrap();
    let started = Instant::now();
    for task in 0..waits {
        waiter.add(50_000 + task, &schedule, None, task as u64).unwrap();
    }
    let mut peak = 0;
    for n in 0..waits {
        let done = finished(&waiter, Duration::from_secs(20));
        assert!(done.report.result.is_ok(), "{:?}", done.report.result);
        assert_eq!(done.report.requests, 2, "task {}", done.task_id);
        // Read now and then: /proc/self/task also lists the emulator's 2,000 threads.
        if n % 250 == 0 {
            peak = peak.max(library_threads());
        }
    }
    let took = started.elapsed();
    // The schedule: 150 ms + 1 s + 150 ms = 1.3 s; a thread per request in flight at the default
    // cap of 64 needs about 9.4 s. The bound is generous (a loaded 2-core machine took 2.5 s).
    assert!(took < Duration::from_secs(4), "{waits} waits took {took:?}; the schedule allows 1.3 s");
    assert!(peak <= 3, "{peak} library threads");
    assert_eq!(waiter.engine_threads(), 1, "one timer thread");
    let stats = client.stats();
    assert_eq!(stats.connections_opened, emulator.stats_json()["connections"].as_u64().unwrap(), "{stats:?}");
    assert_eq!((stats.connections_open, stats.connections_idle), (stats.connections_opened, stats.connections_opened));
    // The allowance of connections grew from its first 64 with the round trip (admission.rs):
    // 2,000 polls at once at 150 ms.
    if waits >= 2000 {
        assert!(stats.connections_opened > 512, "{stats:?}");
    }
    // Two requests a wait, each well over 100 bytes each way with its head.
    let least = waits as u64 * 2 * 100;
    assert!(stats.bytes_sent > least && stats.bytes_received > least, "{stats:?}");
    // The last waiter gone, the engine and its event loop are too (joined in the drop), and
    // with them the loop's connections.
    drop(waiter);
    assert_eq!(library_threads(), 0);
    let stats = client.stats();
    assert_eq!((stats.connections_open, stats.connections_idle), (0, 0), "{stats:?}");
    eprintln!("{waits} waits at 150 ms: {took:?}, {peak} library threads, {} connections", client.connections_opened());
}

/// A server nearby answers faster than the loop sends: however many waits are due at once, the
/// loop keeps to its first allowance of connections (64) rather than open one per request in
/// flight up to the cap, which costs the setup of each and gains nothing (admission.rs). Each
/// hand-over of a connection from one request to the next leaves no connect behind either: a
/// connect whose request took a pooled connection gives up (socket.rs, `Want`).
#[test]
#[cfg_attr(
    windows,
    ignore = "under Wine the loop's sockets answer slowly (docs/engine.md, Windows): no server is nearby there"
)]
fn a_server_nearby_gets_few_connections_however_many_waits_are_due() {
    let _serial = one_at_a_time();
    let emulator = emulator_with(Duration::ZERO);
    let client = events_client(&emulator.url(), "events-nearby");
    client.set_max_connections(2048).unwrap();
    let waiter = Waiter::new(&client).unwrap();
    for task in 70_000..72_000 {
        emulator.script_task(task, vec![Step::ready(json!({"text": "ok"}))]);
    }
    let schedule = Schedule {
        first_delay: Duration::ZERO,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(30),
        max_requests: 10,
    };
    for task in 70_000..72_000 {
        waiter.add(task, &schedule, None, task as u64).unwrap();
    }
    for _ in 0..2000 {
        let done = finished(&waiter, Duration::from_secs(20));
        assert!(done.report.result.is_ok(), "{:?}", done.report.result);
    }
    let opened = client.stats().connections_opened;
    assert_eq!(opened, emulator.stats_json()["connections"].as_u64().unwrap());
    // 64 at first; the bound leaves room for a doubling or two on a loaded machine, where the
    // emulator may answer slowly. One connection a request in flight was 2,000.
    assert!(opened <= 256, "{opened} connections for 2,000 waits on a server nearby");
    eprintln!("2,000 waits on a server nearby: {opened} connections");
}

/// Through nginx with HTTP/2: 100 waits due at once (nginx's stream limit here) go out as
/// streams of one connection.
#[test]
#[cfg_attr(windows, ignore = "nginx is a Linux program here: under Wine it would be handed Windows paths")]
fn http2_carries_many_streams_on_one_connection() {
    let _serial = one_at_a_time();
    let emulator = emulator_with(Duration::from_millis(200));
    let nginx = nginx_h2("h2", &emulator.url());
    let client = https_events_client(&nginx, "events-h2");
    let waits = 100;
    let waiter = Waiter::new(&client).unwrap();
    let started = Instant::now();
    add_ready_waits(&emulator, &waiter, 60_000, waits);
    for _ in 0..waits {
        let done = finished(&waiter, Duration::from_secs(20));
        assert!(done.report.result.is_ok(), "{:?}", done.report.result);
        assert_eq!(done.report.requests, 1);
    }
    let took = started.elapsed();
    // One request until the first answer names the protocol, then the 99 others at once.
    assert!(took < Duration::from_millis(1500), "100 streams took {took:?}");
    assert_eq!(client.connections_opened(), 1, "every stream on one connection");
    assert_eq!(client.stats().answers_ready, waits as u64);
}

/// One connection for the whole client (cap 1): 100 streams on its HTTP/2 connection while a
/// thread makes blocking calls. The blocking calls take turns with the streams for the one slot
/// (closing the idle HTTP/2 connection to open theirs, and back), and no HTTP/2 connection is
/// ever closed with a stream on it: every wait and call is answered, none fails on the network.
#[test]
#[cfg_attr(windows, ignore = "nginx is a Linux program here: under Wine it would be handed Windows paths")]
fn the_one_cap_never_closes_an_http2_connection_with_streams_on_it() {
    let _serial = one_at_a_time();
    let emulator = emulator_with(Duration::from_millis(100));
    let nginx = nginx_h2("h2-cap", &emulator.url());
    let client = https_events_client(&nginx, "events-h2-cap");
    client.set_max_connections(1).unwrap();
    let waiter = Waiter::new(&client).unwrap();
    let calls = std::thread::scope(|scope| {
        let caller = scope.spawn(|| (0..20).filter(|_| client.get_balance().result.is_ok()).count());
        for round in 0..5 {
            add_ready_waits(&emulator, &waiter, 61_000 + round * 20, 20);
            for _ in 0..20 {
                let done = finished(&waiter, Duration::from_secs(30));
                assert!(done.report.result.is_ok(), "{:?}", done.report.result);
            }
        }
        caller.join().unwrap()
    });
    assert_eq!(calls, 20, "every blocking call answered");
    let stats = client.stats();
    // Each answer counted as ready (the balances too), none a network failure.
    assert_eq!((stats.answers_ready, stats.answers_network_error), (120, 0), "{stats:?}");
}

/// Scripts `count` tasks from `first` on, ready at the first poll, and adds their waits (all
/// due at once).
fn add_ready_waits(emulator: &Emulator, waiter: &Waiter, first: i64, count: i64) {
    let schedule = Schedule {
        first_delay: Duration::ZERO,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(30),
        max_requests: 10,
    };
    for task in first..first + count {
        emulator.script_task(task, vec![Step::ready(json!({"text": "ok"}))]);
        waiter.add(task, &schedule, None, task as u64).unwrap();
    }
}

/// 1,000 waits due at once through nginx allowing 32 streams per connection: they go out on
/// as many connections as the limit needs (32), not queued on one (32 rounds of the round
/// trip), and every one is answered right.
#[test]
#[cfg_attr(windows, ignore = "nginx is a Linux program here: under Wine it would be handed Windows paths")]
fn http2_opens_another_connection_when_every_one_is_full() {
    let _serial = one_at_a_time();
    let emulator = emulator_with(Duration::from_millis(200));
    let nginx = nginx_tls("h2-pool", &emulator.url(), Some(32), 1_000_000);
    let client = https_events_client(&nginx, "events-h2-pool");
    let waiter = Waiter::new(&client).unwrap();
    // Warm: the first answer says HTTP/2 and the server's limit.
    add_ready_waits(&emulator, &waiter, 61_999, 1);
    assert!(finished(&waiter, Duration::from_secs(10)).report.result.is_ok());
    let waits = 1000;
    let started = Instant::now();
    add_ready_waits(&emulator, &waiter, 62_000, waits);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..waits {
        let done = finished(&waiter, Duration::from_secs(20));
        assert!(done.report.result.is_ok(), "task {}: {:?}", done.task_id, done.report.result);
        assert_eq!(done.report.requests, 1);
        assert!(seen.insert(done.task_id), "task {} twice", done.task_id);
    }
    let took = started.elapsed();
    let threads = library_threads();
    assert!(threads <= 3, "{threads} library threads");
    let opened = client.connections_opened();
    let most = (waits as u64).div_ceil(32) + 1;
    assert!(opened > 1 && opened <= most, "{opened} connections for {waits} streams at 32 a connection");
    // On one connection: 32 rounds of 200 ms, 6.4 s.
    assert!(took < Duration::from_secs(3), "{waits} streams took {took:?}");
    assert_eq!(client.stats().answers_ready, waits as u64 + 1);
    eprintln!("{waits} streams at 32 a connection: {took:?} on {opened} connections, {threads} library threads");
    // The last waiter gone, its event loop's connections are closed with it.
    drop(waiter);
    let stats = client.stats();
    assert_eq!((stats.connections_open, stats.connections_opened), (0, opened), "{stats:?}");
}

/// nginx sends GOAWAY after 30 requests on a connection: the connection leaves the set, the
/// streams it did not take fail as a single request fails and go out again at their next
/// poll, on a new connection; every wait ends right.
#[test]
#[cfg_attr(windows, ignore = "nginx is a Linux program here: under Wine it would be handed Windows paths")]
fn a_connection_gone_away_leaves_the_set() {
    let _serial = one_at_a_time();
    let emulator = emulator_with(Duration::from_millis(100));
    let nginx = nginx_tls("goaway", &emulator.url(), Some(100), 30);
    let client = https_events_client(&nginx, "events-goaway");
    let waiter = Waiter::new(&client).unwrap();
    let schedule = Schedule {
        first_delay: Duration::ZERO,
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(30),
        max_requests: 20,
    };
    let waits = 100;
    for task in 64_000..64_000 + waits {
        emulator.script_task(task, vec![Step::ready(json!({"text": "ok"}))]);
        waiter.add(task, &schedule, None, task as u64).unwrap();
    }
    for _ in 0..waits {
        let done = finished(&waiter, Duration::from_secs(20));
        assert!(done.report.result.is_ok(), "task {}: {:?}", done.task_id, done.report.result);
    }
    let stats = client.stats();
    // 100 answers at 30 a connection: at least 4 connections, each opened after the last went.
    assert!(stats.connections_opened >= 4, "{stats:?}");
    assert!(stats.connections_open < stats.connections_opened, "{stats:?}");
    assert_eq!(stats.answers_ready, waits as u64);
    eprintln!("GOAWAY every 30 requests: {stats:?}");
}

/// A TLS server that offers only HTTP/1.1: the connection opened to learn it carries the first
/// request (it is not opened twice), and the waits go out on HTTP/1.1 connections.
#[test]
#[cfg_attr(windows, ignore = "nginx is a Linux program here: under Wine it would be handed Windows paths")]
fn tls_without_http2_keeps_http1_connections() {
    let _serial = one_at_a_time();
    let emulator = emulator_with(Duration::from_millis(50));
    let nginx = nginx_tls("h1", &emulator.url(), None, 1_000_000);
    let client = https_events_client(&nginx, "events-h1");
    let waiter = Waiter::new(&client).unwrap();
    add_ready_waits(&emulator, &waiter, 63_999, 1);
    assert!(finished(&waiter, Duration::from_secs(10)).report.result.is_ok());
    assert_eq!(client.connections_opened(), 1, "the first connection was handed over, not opened twice");
    add_ready_waits(&emulator, &waiter, 63_000, 20);
    for _ in 0..20 {
        let done = finished(&waiter, Duration::from_secs(10));
        assert!(done.report.result.is_ok(), "task {}: {:?}", done.task_id, done.report.result);
    }
    // 20 requests in flight at once on HTTP/1.1: a connection each (one of them the first).
    let opened = client.connections_opened();
    assert!((2..=20).contains(&opened), "{opened} connections for 20 HTTP/1.1 requests");
}

/// A stream cancelled mid-request ends within milliseconds; the 49 others on its connection
/// complete on it, and no connection is opened again (`common::h2`; the same against the
/// emulator's own HTTP/2 in `emulator_tls.rs`).
#[test]
#[cfg_attr(windows, ignore = "nginx is a Linux program here: under Wine it would be handed Windows paths")]
fn a_cancelled_stream_leaves_its_connection_to_the_others() {
    let _serial = one_at_a_time();
    let emulator = emulator_with(Duration::from_millis(400));
    let nginx = nginx_h2("cancel", &emulator.url());
    let client = https_events_client(&nginx, "events-cancel");
    h2::a_cancelled_stream_leaves_its_connection_to_the_others(&emulator, &client, 70_000);
}

/// The server closes every connection without answering, under 100 requests at once (HTTP/1.1,
/// a connection each): each poll fails with the code and message a blocking call gets.
#[test]
fn connections_closed_under_100_requests_fail_each_as_a_blocking_call() {
    let _serial = one_at_a_time();
    let emulator = emulator_with(Duration::from_millis(100));
    let client = events_client(&emulator.url(), "events-close");
    client.set_max_connections(128).unwrap();
    emulator.script_task(80_999, vec![Step::close()]);
    let blocking = client.get_task_result(80_999).result.unwrap_err();
    assert_eq!(blocking.code, Code::Network);

    // One request each, then the wait ends: its report carries the last failure.
    let schedule = Schedule {
        first_delay: Duration::ZERO,
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(30),
        max_requests: 1,
    };
    let waiter = Waiter::new(&client).unwrap();
    for task in 0..100 {
        emulator.script_task(80_000 + task, vec![Step::close()]);
        waiter.add(80_000 + task, &schedule, None, task as u64).unwrap();
    }
    for _ in 0..100 {
        let done = finished(&waiter, Duration::from_secs(10));
        let error = done.report.result.unwrap_err();
        assert_eq!(done.report.requests, 1);
        assert_eq!(error.code, Code::BudgetExhausted);
        assert!(
            error.message.ends_with(&format!("(last: {})", blocking.message)),
            "{} vs {}",
            error.message,
            blocking.message
        );
    }
    assert_eq!(client.stats().answers_network_error, 101);
}

/// nginx dies under 100 HTTP/2 streams: each fails at once as a network error, retried at its
/// next poll within its budget, as on the threads (`common::h2`; the emulator's own HTTP/2
/// dropping its connections, in `emulator_tls.rs`).
#[test]
#[cfg_attr(windows, ignore = "nginx is a Linux program here: under Wine it would be handed Windows paths")]
fn a_connection_reset_under_100_streams_fails_each_stream() {
    let _serial = one_at_a_time();
    let emulator = emulator_with(Duration::from_millis(1000));
    let mut nginx = nginx_h2("reset", &emulator.url());
    let client = https_events_client(&nginx, "events-reset");
    h2::a_connection_reset_under_100_streams_fails_each_stream(emulator, &client, 90_000, |_emulator| {
        let _ = nginx.child.kill();
        let _ = nginx.child.wait();
    });
}
