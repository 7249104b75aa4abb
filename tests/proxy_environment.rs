//! Proxy environment variables, by curl's rules. A test binary of its own: it changes the
//! process environment, which no other test may see.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capmonster::log::{self, Level};
use capmonster::{Code, Engine, Finished, Next, Schedule, Waiter};
use common::servers;
use common::*;
use serde_json::json;

fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn env_client(emulator: &Emulator) -> capmonster::Client {
    let client = capmonster::Client::new("proxy-environment").unwrap();
    client.set_base_url(&emulator.url()).unwrap();
    client
}

#[test]
fn environment_proxies_follow_curl() {
    let emulator = emulator();
    let dead_proxy = format!("http://127.0.0.1:{}", dead_port());
    for name in
        ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"]
    {
        std::env::remove_var(name);
    }

    // Lower-case http_proxy applies to an http:// base URL: the dead proxy makes it fail.
    std::env::set_var("http_proxy", &dead_proxy);
    assert_eq!(env_client(&emulator).get_balance().result.unwrap_err().code, Code::Network);

    // no_proxy bypasses it.
    std::env::set_var("no_proxy", "localhost,127.0.0.1");
    assert!(env_client(&emulator).get_balance().result.is_ok());
    std::env::remove_var("no_proxy");

    // cm_client_set_proxy(NULL) turns proxying off whatever the environment says.
    let client = env_client(&emulator);
    client.set_proxy(None).unwrap();
    assert!(client.get_balance().result.is_ok());
    std::env::remove_var("http_proxy");

    // Upper-case HTTP_PROXY is ignored (curl's "httpoxy" rule), and HTTPS_PROXY is for https.
    std::env::set_var("HTTP_PROXY", &dead_proxy);
    std::env::set_var("HTTPS_PROXY", &dead_proxy);
    assert!(env_client(&emulator).get_balance().result.is_ok());
    std::env::remove_var("HTTP_PROXY");
    std::env::remove_var("HTTPS_PROXY");

    // ALL_PROXY applies to every scheme.
    std::env::set_var("ALL_PROXY", &dead_proxy);
    assert_eq!(env_client(&emulator).get_balance().result.unwrap_err().code, Code::Network);
    std::env::remove_var("ALL_PROXY");

    // A malformed proxy variable never makes creating the client (or setting its base URL)
    // fail: the first call that would use it says which variable, and set_proxy overrides it.
    std::env::set_var("http_proxy", "http://[not-a-host");
    let client = env_client(&emulator);
    let error = client.get_balance().result.unwrap_err();
    assert_eq!(error.code, Code::InvalidArgument);
    assert!(error.message.contains("http_proxy"), "{}", error.message);
    client.set_proxy(None).unwrap();
    assert!(client.get_balance().result.is_ok());
    std::env::remove_var("http_proxy");

    // And through a real proxy named by the environment, the call goes through.
    let proxy = servers::tinyproxy(&servers::scratch_dir("tinyproxy-env"), None);
    std::env::set_var("http_proxy", format!("127.0.0.1:{}", proxy.port));
    assert!(env_client(&emulator).get_balance().result.is_ok());

    // The waiters' event loop takes the environment's proxy too: a wait goes through it, and
    // with the proxy gone it fails naming it, as a blocking call does, with nothing sent
    // around it.
    // The event loop's `request` lines say "on a pooled connection" (the threads' "new" or
    // "reused"): they tell where each request went out.
    let pooled = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&pooled);
    log::set_sink(
        Level::Debug,
        Some(Arc::new(move |_, event: &str, message: &str| {
            if event == "request" && message.contains("on a pooled connection") {
                into.lock().unwrap().push(message.to_owned());
            }
        })),
    );
    let client = Arc::new(env_client(&emulator));
    client.set_engine(Engine::EventLoop);
    emulator.script_task(7_001, vec![Step::processing(), Step::ready(json!({"text": "ok"}))]);
    let waiter = Waiter::new(&client).unwrap();
    waiter.add(7_001, &fast_schedule(), None, 1).unwrap();
    let done = finished(&waiter);
    assert!(done.report.result.is_ok(), "{:?}", done.report.result);
    assert_eq!((done.report.requests, emulator.task_requests(7_001)), (2, 2));
    drop(proxy);
    emulator.script_task(7_002, vec![Step::ready(json!({}))]);
    let blocking = client.get_task_result(7_002).result.unwrap_err();
    assert!(blocking.message.contains("through the proxy"), "{}", blocking.message);
    waiter.add(7_002, &Schedule { max_requests: 1, ..fast_schedule() }, None, 2).unwrap();
    let error = finished(&waiter).report.result.unwrap_err();
    assert!(
        error.message.ends_with(&format!("(last: {})", blocking.message)),
        "{} vs {}",
        error.message,
        blocking.message
    );
    assert_eq!(emulator.task_requests(7_002), 0);
    let pooled = pooled.lock().unwrap();
    for task in ["task 7001 attempt 1", "task 7001 attempt 2", "task 7002 attempt 1"] {
        assert!(pooled.iter().any(|line| line.contains(task)), "{task} was not sent on the event loop: {pooled:?}");
    }
    log::set_sink(Level::Debug, None);
    std::env::remove_var("http_proxy");
}

fn finished(waiter: &Waiter) -> Finished {
    match waiter.next(Duration::from_secs(10)) {
        Next::Finished(finished) => finished,
        other => panic!("no wait finished within 10 s: {other:?}"),
    }
}
