//! TLS trust against a real TLS server (Debian's nginx, passing requests on to the emulator)
//! with certificates from a CA this test makes: untrusted by default, trusted with
//! cm_client_set_ca_file, and expired or wrong-host certificates refused.

mod common;

use std::path::{Path, PathBuf};

use capmonster::{Client, Code};
use common::servers::{nginx_tls, scratch_dir, Server};
use common::*;
use rcgen::{date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A test CA and the files of the certificates it signs.
struct TestCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn new(dir: PathBuf) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "libcapmonster test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        TestCa { dir, issuer: Issuer::new(params, key) }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Signs a server certificate for `names`; `expired` puts its validity in the past.
    fn server_cert(&self, name: &str, names: &[&str], expired: bool) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (self.dir.join(format!("{name}.pem")), self.dir.join(format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

fn tls_server(ca: &TestCa, name: &str, names: &[&str], expired: bool, emulator: &Emulator) -> Server {
    let (cert, key) = ca.server_cert(name, names, expired);
    let dir = ca.dir.join(format!("nginx-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    nginx_tls(&dir, &cert, &key, &emulator.url())
}

fn https_client(server: &Server, key: &str) -> Client {
    let client = Client::new(key).unwrap();
    client.set_base_url(&format!("https://127.0.0.1:{}", server.port)).unwrap();
    client.set_proxy(None).unwrap();
    client
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn trust_follows_the_system_store_or_the_ca_file() {
    let emulator = emulator();
    let ca = TestCa::new(scratch_dir("tls"));
    let good = tls_server(&ca, "good", &["127.0.0.1", "localhost"], false, &emulator);
    let expired = tls_server(&ca, "expired", &["127.0.0.1", "localhost"], true, &emulator);
    let wrong_host = tls_server(&ca, "wrong-host", &["other.example"], false, &emulator);

    // The system store does not know the test CA.
    let client = https_client(&good, "tls-default");
    let error = client.get_balance().result.unwrap_err();
    assert_eq!(error.code, Code::Network);
    assert!(error.message.contains("not trusted"), "{}", error.message);
    assert_eq!(emulator.method_requests("getBalance"), 0);

    // With the CA file the same server is trusted, and requests reach the emulator behind it.
    client.set_ca_file(Some(path_str(&ca.ca_file()))).unwrap();
    assert!((client.get_balance().result.unwrap() - 345.678).abs() < 1e-9);
    assert_eq!(emulator.method_requests("getBalance"), 1);

    // Back to the system store.
    client.set_ca_file(None).unwrap();
    assert!(client.get_balance().result.unwrap_err().message.contains("not trusted"));

    let client = https_client(&expired, "tls-expired");
    client.set_ca_file(Some(path_str(&ca.ca_file()))).unwrap();
    let error = client.get_balance().result.unwrap_err();
    assert_eq!(error.code, Code::Network);
    assert!(error.message.contains("expired"), "{}", error.message);

    let client = https_client(&wrong_host, "tls-wrong-host");
    client.set_ca_file(Some(path_str(&ca.ca_file()))).unwrap();
    let error = client.get_balance().result.unwrap_err();
    assert_eq!(error.code, Code::Network);
    assert!(error.message.contains("not valid for this host name"), "{}", error.message);
    assert_eq!(emulator.method_requests("getBalance"), 1, "refused handshakes send nothing");
}

#[test]
fn bad_ca_files_are_refused_when_set() {
    let dir = scratch_dir("tls-bad-ca");
    let client = Client::new("tls-bad-ca").unwrap();
    let missing = dir.join("missing.pem");
    let error = client.set_ca_file(Some(path_str(&missing))).unwrap_err();
    assert_eq!(error.code, Code::InvalidArgument);
    assert!(error.message.contains("ca_file"), "{}", error.message);
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    assert!(client.set_ca_file(Some(path_str(&empty))).unwrap_err().message.contains("no PEM certificate"));
}

/// The two messages a newcomer meets first say what is wrong: https:// to a plain-HTTP server
/// (the emulator), and a host name that does not resolve (named in the message).
#[test]
fn plain_http_servers_and_unknown_hosts_are_named_plainly() {
    let emulator = emulator();
    let client = capmonster::Client::new("tls-plain-http").unwrap();
    client.set_base_url(&format!("https://127.0.0.1:{}", emulator.port())).unwrap();
    client.set_proxy(None).unwrap();
    let error = client.get_balance().result.unwrap_err();
    assert_eq!(error.code, capmonster::Code::Network);
    assert!(error.message.contains("does not speak TLS") && error.message.contains("http://"), "{}", error.message);

    client.set_base_url("https://no-such-host.invalid").unwrap();
    let error = client.get_balance().result.unwrap_err();
    assert_eq!(error.code, capmonster::Code::Network);
    assert!(error.message.contains("no-such-host.invalid"), "{}", error.message);
}
