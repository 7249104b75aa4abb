//! Proxy environment variables, by curl's rules. A test binary of its own: it changes the
//! process environment, which no other test may see.

mod common;

use capmonster::Code;
use common::servers;
use common::*;

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
    std::env::remove_var("http_proxy");
}
