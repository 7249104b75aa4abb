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
