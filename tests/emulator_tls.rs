//! The emulator's own TLS listener (`Config::tls`), as the library sees it: the event loop's
//! waits over HTTP/2 on a few connections with no proxy in front, a blocking call over
//! HTTP/1.1 (ALPN) on the same port, and the scripted faults there: a reset stream fails its
//! one request as a network error while the others on its connection complete, and on
//! HTTP/1.1 a closed connection does the same for its call. Then the HTTP/2 cases the engine's
//! tests run through nginx on Linux (`common::h2`): a cancelled stream among 50, and the
//! server gone under 100 streams. With no program outside the test, all of it runs under Wine
//! too.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use capmonster::{Client, Code, Engine, Schedule, Waiter};
use capmonster_emulator::TlsIdentity;
use common::h2::{self, finished};
use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};

/// An emulator with a TLS listener whose certificate (for 127.0.0.1) a test CA signed, and
/// that CA's file.
struct TlsEmulator {
    emulator: Emulator,
    dir: ScratchDir,
}

fn tls_emulator(name: &str, answer_delay: Duration) -> TlsEmulator {
    let dir = ScratchDir::new("capmonster-test", &format!("emulator-tls-{name}"));
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(DnType::CommonName, "libcapmonster emulator test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    std::fs::write(dir.join("ca.pem"), ca_params.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let identity = TlsIdentity::from_pem(cert.pem(), key.serialize_pem()).unwrap();
    let config = Config { answer_delay, max_connections: 4096, tls: Some(identity), ..Config::default() };
    TlsEmulator { emulator: Emulator::start(config).expect("the emulator starts"), dir }
}

impl TlsEmulator {
    fn client(&self, key: &str) -> Arc<Client> {
        tls_client(&self.emulator, &self.dir, key)
    }

    fn stat(&self, name: &str) -> u64 {
        let stats = self.emulator.stats_json();
        stats[name].as_u64().unwrap_or_else(|| panic!("no {name} in {stats}"))
    }

    fn task_results(&self) -> u64 {
        self.emulator.stats_json()["methods"]["getTaskResult"].as_u64().unwrap()
    }
}

/// A client of `emulator`'s HTTPS URL trusting the test CA in `dir`, on the event loop.
fn tls_client(emulator: &Emulator, dir: &std::path::Path, key: &str) -> Arc<Client> {
    let client = Client::new(key).unwrap();
    client.set_base_url(&emulator.tls_url().unwrap()).unwrap();
    client.set_proxy(None).unwrap();
    client.set_ca_file(Some(dir.join("ca.pem").to_str().unwrap())).unwrap();
    client.set_engine(Engine::EventLoop);
    Arc::new(client)
}

fn schedule(max_requests: u32) -> Schedule {
    Schedule {
        first_delay: Duration::ZERO,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(30),
        max_requests,
    }
}

/// Adds a wait for each task, scripted with `steps`.
fn add_waits(tls: &TlsEmulator, waiter: &Waiter, tasks: std::ops::Range<i64>, steps: &[Step], max_requests: u32) {
    for task in tasks {
        tls.emulator.script_task(task, steps.to_vec());
        waiter.add(task, &schedule(max_requests), None, task as u64).unwrap();
    }
}

/// 1,000 waits due at once after a warm-up (the first answer tells the client the connection
/// speaks HTTP/2): every one ready at its first poll, every poll an HTTP/2 stream, on a few
/// connections (the emulator allows 256 streams on each).
#[test]
fn a_thousand_waits_over_http2_on_a_few_connections() {
    let tls = tls_emulator("h2", Duration::from_millis(150));
    let client = tls.client("emulator-tls-h2");
    let waiter = Waiter::new(&client).unwrap();
    h2::warm(&tls.emulator, &client, &waiter, 9_999);
    let ready = [Step::ready(json!({"text": "ok"}))];

    let waits = 1000;
    let started = Instant::now();
    add_waits(&tls, &waiter, 10_000..10_000 + waits, &ready, 10);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..waits {
        let done = finished(&waiter, Duration::from_secs(20));
        assert!(done.report.result.is_ok(), "task {}: {:?}", done.task_id, done.report.result);
        assert_eq!(done.report.requests, 1, "task {}", done.task_id);
        assert!(seen.insert(done.task_id), "task {} twice", done.task_id);
    }
    let took = started.elapsed();
    // Four rounds of 256 streams at 150 ms would be 0.6 s were they queued on one connection;
    // generous for a loaded machine.
    assert!(took < Duration::from_secs(5), "{waits} waits took {took:?}");
    let polls = waits as u64 + 1;
    assert_eq!(tls.task_results(), polls);
    assert_eq!((tls.stat("http2Requests"), tls.stat("tlsHttp1Requests")), (polls, 0), "every poll a stream");
    let connections = tls.stat("tlsConnections");
    assert!(connections <= 16, "{connections} connections for {waits} streams");
    assert_eq!(tls.stat("connections"), connections, "nothing on the plain port");
    assert_eq!(client.connections_opened(), connections);
    eprintln!("{waits} waits over HTTP/2: {took:?} on {connections} connections");
}

/// A blocking call on the same port speaks HTTP/1.1 (ALPN), and a fault step there closes its
/// connection without an answer: a network error, as on the plain port, after which a call
/// works again.
#[test]
fn blocking_calls_speak_http1_on_the_same_listener() {
    let tls = tls_emulator("h1", Duration::ZERO);
    let client = tls.client("emulator-tls-h1");
    let balance = client.get_balance().result.expect("a balance over HTTP/1.1 over TLS");
    assert_eq!(balance, 345.678);
    assert_eq!((tls.stat("tlsHttp1Requests"), tls.stat("http2Requests")), (1, 0));
    assert_eq!(tls.stat("tlsConnections"), 1);

    tls.emulator.script_method("getBalance", vec![Step::close()]);
    let error = client.get_balance().result.unwrap_err();
    assert_eq!(error.code, Code::Network, "{}", error.message);
    tls.emulator.script_method("getBalance", Vec::new());
    assert_eq!(client.get_balance().result.unwrap(), 345.678);
    // The faulted call went out twice: on the kept-alive connection, then (a reused connection
    // closed without an answer may just have been stale) once more on a fresh one, which the
    // fault closed too; the last call needed a third.
    let stats = client.stats();
    assert_eq!((stats.retries, stats.answers_network_error, stats.connections_opened), (1, 1, 3), "{stats:?}");
    assert_eq!(tls.emulator.method_requests("getBalance"), 4);
    assert_eq!((tls.stat("tlsHttp1Requests"), tls.stat("http2Requests")), (4, 0));
    assert_eq!(tls.stat("tlsConnections"), 3);
}

/// On HTTP/2 a fault step resets its request's stream (`close` at once, `stall` after its
/// time): that wait's one request fails as a network error, within its budget of one, while
/// the 30 others on the same connection are answered, and no connection is opened again.
#[test]
fn a_fault_resets_its_stream_and_the_others_on_the_connection_complete() {
    let tls = tls_emulator("reset", Duration::from_millis(200));
    let client = tls.client("emulator-tls-reset");
    let waiter = Waiter::new(&client).unwrap();
    h2::warm(&tls.emulator, &client, &waiter, 19_999);
    let ready = [Step::ready(json!({"text": "ok"}))];

    let started = Instant::now();
    add_waits(&tls, &waiter, 20_000..20_001, &[Step::close()], 1);
    add_waits(&tls, &waiter, 20_001..20_002, &[Step::stall(600)], 1);
    add_waits(&tls, &waiter, 20_002..20_032, &ready, 1);
    let mut failed: Vec<(i64, Duration, String)> = Vec::new();
    for _ in 0..32 {
        let done = finished(&waiter, Duration::from_secs(10));
        match done.report.result {
            Ok(_) => assert!(done.task_id >= 20_002, "task {} answered", done.task_id),
            Err(error) => {
                assert_eq!(error.code, Code::BudgetExhausted, "{}", error.message);
                assert!(error.message.contains("(last: getTaskResult: "), "{}", error.message);
                failed.push((done.task_id, started.elapsed(), error.message));
            }
        }
        assert_eq!(done.report.requests, 1);
    }
    failed.sort();
    let ids: Vec<i64> = failed.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(ids, [20_000, 20_001], "{failed:?}");
    // The stall's reset came after the answer delay and its 600 ms.
    assert!(failed[1].1 >= Duration::from_millis(800), "{failed:?}");
    assert_eq!(client.stats().answers_network_error, 2);
    assert_eq!(client.connections_opened(), 1, "the reset streams left their connection up");
    assert_eq!((tls.stat("http2Requests"), tls.stat("tlsConnections")), (33, 1));
    let stats: Value = tls.emulator.stats_json();
    assert_eq!(stats["tasks"]["20000"], 1, "{stats}");
}

/// A wait cancelled mid-request resets its stream only: the 49 others on the connection
/// complete (the case nginx runs on Linux in `engine_events.rs`; this one runs under Wine too).
#[test]
fn a_cancelled_stream_leaves_its_connection_to_the_others() {
    let tls = tls_emulator("cancel", Duration::from_millis(400));
    let client = tls.client("emulator-tls-cancel");
    h2::a_cancelled_stream_leaves_its_connection_to_the_others(&tls.emulator, &client, 30_000);
    assert_eq!(tls.stat("tlsConnections"), 1);
}

/// The server goes away under 100 streams (the emulator dropped: its runtime ends and every
/// connection with it): each stream fails at once as a network error within its budget.
#[test]
fn a_connection_reset_under_100_streams_fails_each_stream() {
    let TlsEmulator { emulator, dir } = tls_emulator("gone", Duration::from_millis(1000));
    let client = tls_client(&emulator, &dir, "emulator-tls-gone");
    h2::a_connection_reset_under_100_streams_fails_each_stream(emulator, &client, 40_000, drop);
}
