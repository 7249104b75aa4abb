//! Real third-party servers from Debian, started on loopback for one test: nginx (TLS),
//! tinyproxy (HTTP CONNECT proxy), microsocks (SOCKS5). Each is stopped when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child server process, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Finds a program, or fails with how to install it (scripts/install-deps.sh installs them).
fn program(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} is needed by this test: scripts/install-deps.sh rust installs it (Debian's {package})");
}

/// Starts `command` and waits until it accepts connections on `port`.
fn start(mut command: Command, port: u16) -> Server {
    let child =
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("server starts");
    let mut server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("{command:?} exited: {status}");
        }
        assert!(Instant::now() < deadline, "{command:?} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// A private directory for one server's files.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("capmonster-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// nginx terminating TLS with `cert`/`key` (PEM files) and passing requests to `upstream`.
pub fn nginx_tls(dir: &Path, cert: &Path, key: &Path, upstream: &str) -> Server {
    let port = free_port();
    let d = dir.display();
    let config = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert}; ssl_certificate_key {key};
    location / {{ proxy_pass {upstream}; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}
  }}
}}
",
        cert = cert.display(),
        key = key.display(),
    );
    let config_path = dir.join("nginx.conf");
    std::fs::write(&config_path, config).unwrap();
    let mut command = Command::new(program("nginx", "nginx"));
    command.arg("-p").arg(dir).arg("-c").arg(&config_path).arg("-e").arg(dir.join("error.log"));
    start(command, port)
}

/// tinyproxy (HTTP CONNECT to any port), with Basic credentials when given.
pub fn tinyproxy(dir: &Path, credentials: Option<(&str, &str)>) -> Server {
    let port = free_port();
    let mut config = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nLogLevel Critical\nPidFile \"{}/tinyproxy.pid\"\n",
        dir.display()
    );
    if let Some((user, password)) = credentials {
        config.push_str(&format!("BasicAuth {user} {password}\n"));
    }
    let config_path = dir.join("tinyproxy.conf");
    std::fs::write(&config_path, config).unwrap();
    let mut command = Command::new(program("tinyproxy", "tinyproxy"));
    command.arg("-d").arg("-c").arg(&config_path);
    start(command, port)
}

/// microsocks (SOCKS5), with username/password authentication when given.
pub fn microsocks(credentials: Option<(&str, &str)>) -> Server {
    let port = free_port();
    let mut command = Command::new(program("microsocks", "microsocks"));
    command.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((user, password)) = credentials {
        command.args(["-u", user, "-P", password]);
    }
    start(command, port)
}
