//! The TLS listener's configuration, as the binary and the library take it: certificate and
//! key files checked before serving (errors name the file), the HTTPS URL and port file, and
//! the counters it adds. Its HTTP/2 and HTTP/1.1 service is tested with the library's client
//! (the workspace's tests/emulator_tls.rs).

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use capmonster_emulator::{Config, Emulator, TlsIdentity};
use common::Running;
use rcgen::{CertificateParams, KeyPair};

const BIN: &str = env!("CARGO_BIN_EXE_capmonster-emulator");

/// A scratch directory unique to this test, removed when it ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("capmonster-emulator-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for 127.0.0.1 and its key, as PEM.
fn self_signed() -> (String, String) {
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes a certificate and key into `dir`: (cert path, key path).
fn identity_files(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = self_signed();
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    (cert_path, key_path)
}

#[test]
fn bad_certificate_or_key_files_exit_2_naming_the_file() {
    let dir = Scratch::new("bad");
    let (cert, key) = identity_files(&dir.0);
    let missing = dir.0.join("missing.pem");
    let not_pem = dir.0.join("not-pem.txt");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let (other_cert, _) = self_signed();
    let other = dir.0.join("other.pem");
    std::fs::write(&other, other_cert).unwrap();
    let cases: [(&Path, &Path, &Path, &str); 4] = [
        (&missing, &key, &missing, "cannot read"),
        (&not_pem, &key, &not_pem, "no certificate"),
        (&cert, &not_pem, &not_pem, "no private key"),
        // The key of another certificate.
        (&other, &key, &other, "and"),
    ];
    for (cert, key, named, says) in cases {
        let out = Command::new(BIN).arg("--tls-cert").arg(cert).arg("--tls-key").arg(key).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&named.display().to_string()) && stderr.contains(says), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing served");
    }
    let out = Command::new(BIN).arg("--tls-cert").arg(&cert).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert and --tls-key go together"));
}

#[test]
fn the_binary_writes_the_https_port_file_and_counts_tls_connections() {
    let dir = Scratch::new("serve");
    let (cert, key) = identity_files(&dir.0);
    let (port_file, tls_port_file) = (dir.0.join("port"), dir.0.join("tls-port"));
    let child = Command::new(BIN)
        .args(["--port", "0", "--tls-port", "0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--port-file")
        .arg(&port_file)
        .arg("--tls-port-file")
        .arg(&tls_port_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut url = || {
        let line = lines.next().unwrap().unwrap();
        line.strip_prefix("capmonster-emulator listening on ").expect(&line).to_owned()
    };
    let (plain, tls) = (url(), url());
    let port: u16 = plain.strip_prefix("http://127.0.0.1:").expect(&plain).parse().unwrap();
    let tls_port: u16 = tls.strip_prefix("https://127.0.0.1:").expect(&tls).parse().unwrap();
    assert_ne!(port, tls_port);

    let deadline = Instant::now() + Duration::from_secs(5);
    while !tls_port_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(std::fs::read_to_string(&tls_port_file).unwrap(), format!("{tls_port}\n"));
    assert_eq!(std::fs::read_to_string(&port_file).unwrap(), format!("{port}\n"));

    // Two connections that never finish a handshake: accepted and counted as TLS ones.
    let silent: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(("127.0.0.1", tls_port)).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    let stats = loop {
        let stats = get_stats(port);
        if stats["tlsConnections"] == 2 || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Every connection is counted in `connections`, the stats' own (plain) ones too.
    assert_eq!(stats["tlsConnections"], 2, "{stats}");
    assert!(stats["connections"].as_u64().unwrap() >= 3, "{stats}");
    assert_eq!((stats["http2Requests"].as_u64(), stats["tlsHttp1Requests"].as_u64()), (Some(0), Some(0)), "{stats}");
    drop(silent);
}

/// `GET /_emulator/stats` on a connection of its own.
fn get_stats(port: u16) -> serde_json::Value {
    let mut conn = common::Conn::open(port);
    conn.request("GET", "/_emulator/stats", "").json()
}

#[test]
fn the_library_takes_an_identity_and_reports_the_https_url() {
    let (cert, key) = self_signed();
    let identity = TlsIdentity::from_pem(cert.clone(), key.clone()).unwrap();
    let debug = format!("{identity:?}");
    assert!(debug.contains("certificates: 1") && !debug.contains("PRIVATE"), "{debug}");
    let error = TlsIdentity::from_pem(cert.clone(), "").unwrap_err();
    assert!(error.to_string().starts_with("the private key: no private key"), "{error}");
    let error = TlsIdentity::from_pem(key.clone(), key.clone()).unwrap_err();
    assert!(error.to_string().starts_with("the certificate chain: no certificate"), "{error}");

    let emulator = Emulator::start(Config { tls: Some(identity), ..Config::default() }).unwrap();
    let tls_port = emulator.tls_port().unwrap();
    assert_ne!(tls_port, emulator.port());
    assert_eq!(emulator.tls_url().unwrap(), format!("https://127.0.0.1:{tls_port}"));
    assert_eq!(emulator.stats_json()["tlsConnections"], 0);
    let plain = Emulator::start(Config::default()).unwrap();
    assert_eq!((plain.tls_url(), plain.tls_port()), (None, None));
}

/// A blocking TLS client of the emulator's HTTPS port trusting `cert_pem`, offering `alpn`.
fn tls_stream(port: u16, cert_pem: &str, alpn: &[&[u8]]) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    rustls::StreamOwned::new(connection, socket)
}

/// Sends `head` (and no body) and reads the answer until the server closes or 5 s pass.
fn exchange(stream: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>, head: &str) -> String {
    use std::io::{Read, Write};
    stream.write_all(head.as_bytes()).unwrap();
    stream.flush().unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && !head.contains("Connection: close") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// HTTP/1.1 over TLS keeps the plain listener's limits: a body over 16 MiB is refused with 413
/// before it is sent, more than 100 headers or a head over 64 KiB with 431; a client offering
/// no ALPN gets HTTP/1.1.
#[test]
fn http1_over_tls_keeps_the_limits() {
    let (cert, key) = self_signed();
    let identity = TlsIdentity::from_pem(cert.clone(), key).unwrap();
    let emulator = Emulator::start(Config { tls: Some(identity), ..Config::default() }).unwrap();
    let port = emulator.tls_port().unwrap();

    let mut stream = tls_stream(port, &cert, &[b"http/1.1"]);
    let body = r#"{"clientKey":"k"}"#;
    let ok = exchange(
        &mut stream,
        &format!("POST /getBalance HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
    );
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert_eq!(stream.conn.alpn_protocol(), Some(b"http/1.1".as_slice()));

    let too_big = capmonster_emulator::MAX_BODY_BYTES + 1;
    let mut stream = tls_stream(port, &cert, &[]);
    let answer =
        exchange(&mut stream, &format!("POST /createTask HTTP/1.1\r\nHost: x\r\nContent-Length: {too_big}\r\n\r\n"));
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert_eq!(stream.conn.alpn_protocol(), None);

    let many: String = (0..=100).map(|i| format!("X{i}: 1\r\n")).collect();
    let mut stream = tls_stream(port, &cert, &[b"h2", b"http/1.1"]);
    // Offered both, the emulator prefers HTTP/2: this client then speaks HTTP/1.1 where HTTP/2
    // is expected, and gets no HTTP/1.1 answer.
    let answer = exchange(&mut stream, &format!("GET / HTTP/1.1\r\n{many}\r\n"));
    assert_eq!(stream.conn.alpn_protocol(), Some(b"h2".as_slice()));
    assert!(!answer.starts_with("HTTP/1.1"), "{answer}");
    let mut stream = tls_stream(port, &cert, &[b"http/1.1"]);
    let answer = exchange(&mut stream, &format!("GET / HTTP/1.1\r\n{many}\r\n"));
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    let huge = "a".repeat(capmonster_emulator::MAX_HEAD_BYTES);
    let mut stream = tls_stream(port, &cert, &[b"http/1.1"]);
    let answer = exchange(&mut stream, &format!("GET / HTTP/1.1\r\nX: {huge}\r\n\r\n"));
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");

    let stats = emulator.stats_json();
    assert_eq!((stats["tlsConnections"].as_u64(), stats["http2Requests"].as_u64()), (Some(5), Some(0)), "{stats}");
    // The two refused heads never became requests; the 413 did (refused at its head).
    assert_eq!(stats["tlsHttp1Requests"], 2, "{stats}");
}
