//! Trust where the system has no CA store: Mozilla's bundled list (which the library falls
//! back to), on the waiters' event loop as on its threads. A test binary of its own: it points
//! the system store at an empty file (SSL_CERT_FILE) before the first client reads it, which
//! holds for the whole process.
//!
//! A server whose chain ends at one of Mozilla's roots cannot be stood up here (their keys are
//! the CAs'), so what is shown is that the loop takes this trust (rather than handing the
//! waits back to the threads) and refuses a private CA's server with the threads' words.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capmonster::log::{self, Level};
use capmonster::{Client, Code, Engine, Next, Schedule, Waiter};
use common::servers::{nginx_tls, scratch_dir};
use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::json;

#[test]
fn bundled_roots_on_the_event_loop_refuse_a_private_ca_as_the_threads_do() {
    let dir = scratch_dir("trust-bundled");
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    std::env::set_var("SSL_CERT_FILE", dir.join("empty.pem"));
    std::env::remove_var("SSL_CERT_DIR");

    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "libcapmonster bundled-roots test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&server_key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    let emulator = emulator();
    let nginx = nginx_tls(&dir, &dir.join("server.pem"), &dir.join("server.key"), &emulator.url());

    // The event loop's `request` lines say "on a pooled connection", the threads' "new" or
    // "reused": they tell where each request went out.
    let lines = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&lines);
    log::set_sink(
        Level::Debug,
        Some(Arc::new(move |_, event: &str, message: &str| {
            if event == "request" {
                into.lock().unwrap().push(message.to_owned());
            }
        })),
    );

    let client = Client::new("trust-bundled").unwrap();
    client.set_base_url(&format!("https://127.0.0.1:{}", nginx.port)).unwrap();
    client.set_proxy(None).unwrap();
    client.set_engine(Engine::EventLoop);
    let client = Arc::new(client);
    emulator.script_task(1, vec![Step::ready(json!({}))]);
    let blocking = client.get_task_result(1).result.unwrap_err();
    assert_eq!(blocking.code, Code::Network);
    assert!(blocking.message.contains("is not trusted"), "{}", blocking.message);

    let waiter = Waiter::new(&client).unwrap();
    waiter.add(1, &Schedule { max_requests: 1, ..fast_schedule() }, None, 1).unwrap();
    let Next::Finished(done) = waiter.next(Duration::from_secs(10)) else { panic!("the wait did not end") };
    let error = done.report.result.unwrap_err();
    assert!(
        error.message.ends_with(&format!("(last: {})", blocking.message)),
        "the loop says {:?}, a blocking call {:?}",
        error.message,
        blocking.message
    );
    assert_eq!(emulator.task_requests(1), 0);
    let sent = lines.lock().unwrap().clone();
    assert!(sent.iter().any(|line| line.contains("task 1 attempt 1 on a pooled connection")), "{sent:?}");

    // The same loop and server with the CA named: the wait goes through.
    client.set_ca_file(Some(dir.join("ca.pem").to_str().unwrap())).unwrap();
    waiter.add(1, &fast_schedule(), None, 2).unwrap();
    let Next::Finished(done) = waiter.next(Duration::from_secs(10)) else { panic!("the wait did not end") };
    assert!(done.report.result.is_ok(), "{:?}", done.report.result);
    log::set_sink(Level::Debug, None);
}
