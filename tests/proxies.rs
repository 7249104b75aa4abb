//! Real proxies from Debian on loopback: tinyproxy (HTTP CONNECT) and microsocks (SOCKS5),
//! with and without credentials, and proxies that refuse or are down.

mod common;

use capmonster::{Client, Code};
use common::servers::{free_port, microsocks, scratch_dir, tinyproxy};
use common::*;

fn client_via(emulator: &Emulator, key: &str, proxy: &str) -> Client {
    let client = common::client(emulator, key);
    client.set_proxy(Some(proxy)).unwrap();
    client
}

#[test]
fn through_an_http_connect_proxy() {
    let emulator = emulator();
    let proxy = tinyproxy(&scratch_dir("tinyproxy"), None);
    let client = client_via(&emulator, "proxy-http", &format!("http://127.0.0.1:{}", proxy.port));
    for _ in 0..3 {
        assert!(client.get_balance().result.is_ok());
    }
    assert_eq!(emulator.method_requests("getBalance"), 3);
}

#[test]
fn through_an_http_proxy_with_credentials() {
    let emulator = emulator();
    let proxy = tinyproxy(&scratch_dir("tinyproxy-auth"), Some(("alice", "proxy-pass-123")));
    let good =
        client_via(&emulator, "proxy-http-auth", &format!("http://alice:proxy-pass-123@127.0.0.1:{}", proxy.port));
    assert!(good.get_balance().result.is_ok());

    let bad =
        client_via(&emulator, "proxy-http-bad-auth", &format!("http://alice:wrong-pass-456@127.0.0.1:{}", proxy.port));
    let error = bad.get_balance().result.unwrap_err();
    assert_eq!(error.code, Code::Network, "{error}");
    assert!(!error.message.contains("wrong-pass-456"), "{}", error.message);
    assert!(error.message.contains("proxy"), "{}", error.message);
    assert_eq!(emulator.method_requests("getBalance"), 1);
}

#[test]
fn through_a_socks5_proxy() {
    let emulator = emulator();
    let plain = microsocks(None);
    let client = client_via(&emulator, "proxy-socks", &format!("socks5://127.0.0.1:{}", plain.port));
    assert!(client.get_balance().result.is_ok());

    let authenticated = microsocks(Some(("bob", "socks-pass-789")));
    let good = client_via(
        &emulator,
        "proxy-socks-auth",
        &format!("socks5://bob:socks-pass-789@127.0.0.1:{}", authenticated.port),
    );
    assert!(good.get_balance().result.is_ok());
    let bad = client_via(
        &emulator,
        "proxy-socks-bad",
        &format!("socks5://bob:wrong-socks-000@127.0.0.1:{}", authenticated.port),
    );
    let error = bad.get_balance().result.unwrap_err();
    assert_eq!(error.code, Code::Network, "{error}");
    assert!(!error.message.contains("wrong-socks-000"), "{}", error.message);
    assert_eq!(emulator.method_requests("getBalance"), 2);
}

#[test]
fn a_proxy_that_is_down_is_a_clear_network_error() {
    let emulator = emulator();
    for scheme in ["http", "socks5"] {
        let proxy = format!("{scheme}://user:down-pass@127.0.0.1:{}", free_port());
        let error = client_via(&emulator, "proxy-down", &proxy).get_balance().result.unwrap_err();
        assert_eq!(error.code, Code::Network);
        assert!(error.message.contains("through the proxy"), "{}", error.message);
        assert!(!error.message.contains("down-pass"), "{}", error.message);
    }
}

/// A cancel reaches a request in flight through either kind of proxy: the connection to the
/// proxy is what gets shut down.
#[test]
fn a_cancel_reaches_a_request_in_flight_through_a_proxy() {
    use capmonster::{CallOptions, Cancel};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let http = tinyproxy(&scratch_dir("tinyproxy-cancel"), None);
    let socks = microsocks(None);
    for proxy in [format!("http://127.0.0.1:{}", http.port), format!("socks5://127.0.0.1:{}", socks.port)] {
        let emulator = emulator();
        emulator.script_method("getBalance", vec![Step::stall(20_000)]);
        let client = client_via(&emulator, "proxy-cancel", &proxy);
        let cancel = Arc::new(Cancel::new());
        let options = CallOptions { timeout: None, cancel: Some(Arc::clone(&cancel)) };
        let (code, lag) = std::thread::scope(|scope| {
            let call = scope.spawn(|| (client.get_balance_with(&options).result.unwrap_err().code, Instant::now()));
            let start = Instant::now();
            while emulator.method_requests("getBalance") == 0 {
                assert!(start.elapsed() < Duration::from_secs(10), "{proxy}: the request never arrived");
                std::thread::sleep(Duration::from_millis(2));
            }
            let triggered = Instant::now();
            cancel.trigger();
            let (code, returned) = call.join().unwrap();
            (code, returned.duration_since(triggered))
        });
        assert_eq!(code, Code::Cancelled, "{proxy}");
        assert!(lag < Duration::from_millis(1500), "{proxy}: returned {lag:?} after the cancel");
    }
}

// The waiters' engine on its event loop (`Client::set_engine(Engine::EventLoop)`): the same proxies,
// with the same outcomes as on the engine's threads.

mod event_loop {
    use std::net::{TcpListener, TcpStream};
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex, Once, PoisonError};
    use std::time::{Duration, Instant};

    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    use capmonster::log::{self, Level};
    use capmonster::{Client, Code, Engine, Finished, Next, Schedule, Waiter};
    use serde_json::json;

    use super::common::servers::{free_port, microsocks, scratch_dir, tinyproxy};
    use super::common::*;

    /// A client whose waiters send on the event loop, through `proxy`.
    fn events_client(emulator: &Emulator, key: &str, proxy: &str) -> Arc<Client> {
        let client = super::client_via(emulator, key, proxy);
        client.set_engine(Engine::EventLoop);
        Arc::new(client)
    }

    /// Every log line of this test binary from the first call on (`event: message`): the
    /// event loop's `request` lines say "on a pooled connection" (the threads' say "new" or
    /// "reused"), which tells where a request went out.
    fn log_lines() -> &'static Mutex<Vec<String>> {
        static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            log::set_sink(
                Level::Debug,
                Some(Arc::new(|_, event: &str, message: &str| {
                    LINES.lock().unwrap_or_else(PoisonError::into_inner).push(format!("{event}: {message}"));
                })),
            );
        });
        &LINES
    }

    /// Whether task `task`'s first request went out on the event loop.
    fn sent_on_the_loop(task: i64) -> bool {
        let wanted = format!("request: getTaskResult task {task} attempt 1 on a pooled connection");
        log_lines().lock().unwrap_or_else(PoisonError::into_inner).iter().any(|line| line.starts_with(&wanted))
    }

    /// No log line so far holds any of `secrets`.
    fn logs_hide(secrets: &[&str]) {
        for line in log_lines().lock().unwrap_or_else(PoisonError::into_inner).iter() {
            assert!(!secrets.iter().any(|secret| line.contains(secret)), "a log line shows a secret: {line}");
        }
    }

    fn finished(waiter: &Waiter, within: Duration) -> Finished {
        match waiter.next(within) {
            Next::Finished(finished) => finished,
            other => panic!("no wait finished within {within:?}: {other:?}"),
        }
    }

    /// 20 waits through `proxy`, each ready at its second poll, with answers 200 ms late: all
    /// 20 are in flight at once on the engine's one thread (the threads would need 20), and
    /// each ends ready after two requests, which the emulator counted.
    fn twenty_waits_through(emulator: &Emulator, proxy: &str, first_task: i64) {
        twenty_waits_through_with(emulator, proxy, first_task, |_| {});
    }

    /// [`twenty_waits_through`] with the client set up by `setup` too.
    fn twenty_waits_through_with(emulator: &Emulator, proxy: &str, first_task: i64, setup: impl Fn(&Client)) {
        let client = events_client(emulator, &format!("proxy-loop-{first_task}"), proxy);
        setup(&client);
        let schedule = Schedule {
            first_delay: Duration::ZERO,
            interval: Duration::from_millis(300),
            timeout: Duration::from_secs(20),
            max_requests: 10,
        };
        let waiter = Waiter::new(&client).unwrap();
        let tasks = first_task..first_task + 20;
        for task in tasks.clone() {
            emulator.script_task(task, vec![Step::processing(), Step::ready(json!({"text": "ok"}))]);
            waiter.add(task, &schedule, None, task as u64).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.requests_in_flight() < 20 {
            assert!(Instant::now() < deadline, "{proxy}: {} of 20 requests in flight", client.requests_in_flight());
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(waiter.engine_threads(), 1, "{proxy}: 20 requests in flight on the event loop, not on threads");
        for _ in tasks.clone() {
            let done = finished(&waiter, Duration::from_secs(10));
            assert!(done.report.result.is_ok(), "{proxy}: {:?}", done.report.result);
            assert_eq!(done.report.requests, 2, "{proxy}: task {}", done.task_id);
        }
        for task in tasks {
            assert_eq!(emulator.task_requests(task), 2, "{proxy}: task {task}");
        }
        assert_eq!(waiter.engine_threads(), 1, "{proxy}");
    }

    #[test]
    fn waits_on_the_event_loop_go_through_each_kind_of_proxy() {
        let emulator = Emulator::start(Config {
            answer_delay: Duration::from_millis(200),
            max_connections: 512,
            ..Config::default()
        })
        .expect("the emulator starts");
        let http = tinyproxy(&scratch_dir("tinyproxy-loop"), None);
        let http_auth = tinyproxy(&scratch_dir("tinyproxy-loop-auth"), Some(("alice", "loop-pass-123")));
        let socks = microsocks(None);
        let socks_auth = microsocks(Some(("bob", "loop-socks-789")));
        let proxies = [
            format!("http://127.0.0.1:{}", http.port),
            format!("http://alice:loop-pass-123@127.0.0.1:{}", http_auth.port),
            format!("socks5://127.0.0.1:{}", socks.port),
            format!("socks5h://127.0.0.1:{}", socks.port),
            format!("socks5://bob:loop-socks-789@127.0.0.1:{}", socks_auth.port),
            format!("socks5h://bob:loop-socks-789@127.0.0.1:{}", socks_auth.port),
        ];
        log_lines();
        for (n, proxy) in proxies.iter().enumerate() {
            twenty_waits_through(&emulator, proxy, 200_000 + 100 * n as i64);
            assert!(sent_on_the_loop(200_000 + 100 * n as i64), "{proxy}");
        }
        logs_hide(&["loop-pass-123", "loop-socks-789"]);
    }

    /// Proxies that are down or refuse (wrong or missing credentials, either kind): a wait on
    /// the event loop ends with the code and the message of the same request made as a blocking
    /// call, the proxy named without its credentials, and nothing reaches the service.
    #[test]
    fn proxy_failures_on_the_event_loop_read_as_on_the_threads() {
        let emulator = emulator();
        let http_auth = tinyproxy(&scratch_dir("tinyproxy-loop-refuse"), Some(("alice", "right-pass-1")));
        let socks_auth = microsocks(Some(("bob", "right-pass-2")));
        let down = free_port();
        let cases = [
            (format!("http://user:down-pass-1@127.0.0.1:{down}"), "network error: "),
            (format!("socks5://user:down-pass-2@127.0.0.1:{down}"), "network error: "),
            (format!("socks5h://127.0.0.1:{down}"), "network error: "),
            (format!("http://alice:wrong-pass-3@127.0.0.1:{}", http_auth.port), "the proxy refused: "),
            (format!("http://127.0.0.1:{}", http_auth.port), "the proxy refused: "),
            (format!("socks5://bob:wrong-pass-4@127.0.0.1:{}", socks_auth.port), "authentication failed"),
            (format!("socks5://127.0.0.1:{}", socks_auth.port), "auth methods"),
        ];
        log_lines();
        for (n, (proxy, says)) in cases.iter().enumerate() {
            let client = events_client(&emulator, &format!("proxy-loop-refused-{n}"), proxy);
            fails_on_the_loop_as_blocking(&emulator, &client, 300_000 + n as i64, says);
        }
        logs_hide(&["down-pass", "wrong-pass", "right-pass"]);
    }

    /// `client`'s proxy fails: a blocking getTaskResult of `task` says `says` and names the
    /// proxy; a wait of it on the event loop ends with that very message; the service never
    /// heard of it.
    fn fails_on_the_loop_as_blocking(emulator: &Emulator, client: &Arc<Client>, task: i64, says: &str) {
        emulator.script_task(task, vec![Step::ready(json!({}))]);
        let blocking = client.get_task_result(task).result.unwrap_err();
        assert_eq!(blocking.code, Code::Network, "{blocking}");
        assert!(blocking.message.contains(says), "{}", blocking.message);
        assert!(blocking.message.contains(" (through the proxy "), "{}", blocking.message);

        let waiter = Waiter::new(client).unwrap();
        waiter.add(task, &Schedule { max_requests: 1, ..fast_schedule() }, None, 1).unwrap();
        let done = finished(&waiter, Duration::from_secs(10));
        let error = done.report.result.unwrap_err();
        assert_eq!(error.code, Code::BudgetExhausted, "{error}");
        assert!(
            error.message.ends_with(&format!("(last: {})", blocking.message)),
            "the loop says {:?}, a blocking call {:?}",
            error.message,
            blocking.message
        );
        assert!(sent_on_the_loop(task), "{}: the wait was sent on the event loop", blocking.message);
        assert_eq!(emulator.task_requests(task), 0, "{}: nothing went around the proxy", blocking.message);
    }

    /// An `https://` proxy (TLS to the proxy, then CONNECT inside it): tinyproxy with
    /// credentials behind a TLS front. Waits go through it on the loop; wrong credentials, and
    /// a proxy certificate the client does not trust, fail as a blocking call does.
    #[test]
    fn an_https_proxy_tunnels_inside_tls_on_the_event_loop() {
        let emulator = Emulator::start(Config {
            answer_delay: Duration::from_millis(200),
            max_connections: 512,
            ..Config::default()
        })
        .expect("the emulator starts");
        let plain = tinyproxy(&scratch_dir("tinyproxy-loop-tls"), Some(("carol", "tls-pass-321")));
        let front = tls_front("tls-front", plain.port);
        let ca_file = front.ca_file.to_str().unwrap().to_owned();
        let trusting = |client: &Client| client.set_ca_file(Some(&ca_file)).unwrap();
        log_lines();
        let proxy = format!("https://carol:tls-pass-321@127.0.0.1:{}", front.port);
        twenty_waits_through_with(&emulator, &proxy, 500_000, trusting);
        assert!(sent_on_the_loop(500_000));

        let wrong = format!("https://carol:wrong-pass-6@127.0.0.1:{}", front.port);
        let client = events_client(&emulator, "proxy-loop-tls-wrong", &wrong);
        trusting(&client);
        fails_on_the_loop_as_blocking(&emulator, &client, 500_100, "the proxy refused: ");
        // The system's roots do not know the front's CA.
        let client = events_client(&emulator, "proxy-loop-tls-untrusted", &proxy);
        fails_on_the_loop_as_blocking(&emulator, &client, 500_101, "is not trusted");
        logs_hide(&["tls-pass-321", "wrong-pass-6"]);
    }

    /// A TLS front for a plain proxy, which makes it an `https://` proxy: TLS (a certificate
    /// for 127.0.0.1 from a CA this test makes, in `ca_file`), each connection relayed to the
    /// proxy on `upstream`. A thread per connection, for the test process's life.
    struct TlsFront {
        port: u16,
        ca_file: PathBuf,
    }

    fn tls_front(name: &str, upstream: u16) -> TlsFront {
        let dir = scratch_dir(name);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "libcapmonster proxy test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let config = Arc::clone(&config);
                std::thread::spawn(move || relay(client, config, upstream));
            }
        });
        TlsFront { port, ca_file }
    }

    /// Relays one TLS client to the plain proxy until either side closes.
    fn relay(client: TcpStream, config: Arc<rustls::ServerConfig>, upstream: u16) {
        use std::io::{ErrorKind, Read, Write};

        let Ok(connection) = rustls::ServerConnection::new(config) else { return };
        let mut tls = rustls::StreamOwned::new(connection, client);
        while tls.conn.is_handshaking() {
            if tls.conn.complete_io(&mut tls.sock).is_err() {
                return;
            }
        }
        let Ok(mut proxy) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
        if tls.sock.set_nonblocking(true).is_err() || proxy.set_nonblocking(true).is_err() {
            return;
        }
        let mut buffer = [0u8; 16 * 1024];
        // Polls both sides every millisecond: a test's few connections, for its duration.
        loop {
            let mut moved = false;
            match tls.read(&mut buffer) {
                Ok(0) => return,
                Ok(read) => {
                    let mut rest = &buffer[..read];
                    while !rest.is_empty() {
                        match proxy.write(rest) {
                            Ok(written) => rest = &rest[written..],
                            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                                std::thread::sleep(Duration::from_millis(1))
                            }
                            Err(_) => return,
                        }
                    }
                    moved = true;
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
            match proxy.read(&mut buffer) {
                Ok(0) => return,
                Ok(read) => {
                    if tls.conn.writer().write_all(&buffer[..read]).is_err() {
                        return;
                    }
                    moved = true;
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
            while tls.conn.wants_write() {
                match tls.conn.write_tls(&mut tls.sock) {
                    Ok(_) => {}
                    Err(error) if error.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                    Err(_) => return,
                }
            }
            if !moved {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// A cancel reaches a wait's request in flight through either kind of proxy on the loop:
    /// its future is dropped, and with it the tunnel to the proxy.
    #[test]
    fn a_cancel_reaches_a_request_in_flight_through_a_proxy_on_the_loop() {
        use capmonster::Cancel;

        let http = tinyproxy(&scratch_dir("tinyproxy-loop-cancel"), None);
        let socks = microsocks(None);
        for proxy in [format!("http://127.0.0.1:{}", http.port), format!("socks5://127.0.0.1:{}", socks.port)] {
            log_lines();
            let emulator = emulator();
            emulator.script_task(400_000, vec![Step::stall(20_000)]);
            let client = events_client(&emulator, "proxy-loop-cancel", &proxy);
            let waiter = Waiter::new(&client).unwrap();
            let cancel = Arc::new(Cancel::new());
            waiter.add(400_000, &fast_schedule(), Some(Arc::clone(&cancel)), 1).unwrap();
            let start = Instant::now();
            while emulator.task_requests(400_000) == 0 {
                assert!(start.elapsed() < Duration::from_secs(10), "{proxy}: the request never arrived");
                std::thread::sleep(Duration::from_millis(2));
            }
            let triggered = Instant::now();
            cancel.trigger();
            let done = finished(&waiter, Duration::from_secs(5));
            let lag = triggered.elapsed();
            assert_eq!(done.report.result.unwrap_err().code, Code::Cancelled, "{proxy}");
            assert!(lag < Duration::from_millis(1500), "{proxy}: ended {lag:?} after the cancel");
            assert!(sent_on_the_loop(400_000), "{proxy}: the wait was sent on the event loop");
        }
    }

    /// One cap through a SOCKS proxy: blocking calls (on ureq's SOCKS connections) and waits on
    /// the loop share 2 connections. Each path makes room by shedding the other's idle
    /// connection, so neither waits for the request timeout (5 s here): all is answered well
    /// within it.
    #[test]
    fn blocking_calls_and_waits_share_the_cap_through_a_socks_proxy() {
        let socks = microsocks(None);
        let emulator = emulator();
        let client = events_client(&emulator, "proxy-loop-cap", &format!("socks5://127.0.0.1:{}", socks.port));
        client.set_max_connections(2).unwrap();
        client.set_request_timeout(Duration::from_secs(5)).unwrap();
        let schedule = Schedule {
            first_delay: Duration::ZERO,
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(20),
            max_requests: 10,
        };
        let started = Instant::now();
        let waiter = Waiter::new(&client).unwrap();
        let balances = std::thread::scope(|scope| {
            let callers: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..10).filter(|_| client.get_balance().result.is_ok()).count()))
                .collect();
            for task in 500_000..500_020 {
                emulator.script_task(task, vec![Step::processing(), Step::ready(json!({"text": "ok"}))]);
                waiter.add(task, &schedule, None, task as u64).unwrap();
            }
            for _ in 0..20 {
                let done = finished(&waiter, Duration::from_secs(20));
                assert!(done.report.result.is_ok(), "{:?}", done.report.result);
            }
            callers.into_iter().map(|caller| caller.join().unwrap()).sum::<usize>()
        });
        assert_eq!(balances, 40, "every blocking call answered");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }
}
