//! `capmonster-emulator`: runs the emulator until killed. See `--help`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use std::{env, fs, io::Write};

use capmonster_emulator::{
    is_api_method, Config, Emulator, ScriptEntry, TlsIdentity, ADDRESS_BANS, MAX_ACCOUNT_ENTRIES,
    MAX_CONNECTIONS_LIMIT, MAX_PAUSE_MS,
};

const USAGE: &str = "\
usage: capmonster-emulator [options]

A local CapMonster Cloud API emulator (HTTP/1.1; with --tls-cert also HTTP/2 and
HTTP/1.1 over TLS on a second port). Runs until killed.

options:
  --port N             port to listen on (default 0: a free port)
  --bind ADDR          address to listen on (default 127.0.0.1)
  --client-key K       the only accepted client key (default: any non-empty key)
  --solve-after-ms N   time until a created task is ready (default 1500)
  --balance X          what getBalance answers (default 345.678); at 0 or below,
                       createTask answers ERROR_ZERO_BALANCE
  --revoked-key K      answer ERROR_KEY_DOES_NOT_EXIST to key K (repeatable)
  --address-ban CODE   answer CODE to every API call: ERROR_IP_NOT_ALLOWED,
                       ERROR_IP_BANNED or ERROR_IP_BLOCKED
  --banned-proxy H:P   answer ERROR_PROXY_BANNED to createTask with that proxy
                       (proxyAddress H, proxyPort P; repeatable)
  --first-task-id N    first task id handed out (default 1000)
  --script FILE        JSON array of script entries, each like the body of
                       POST /_emulator/script: {\"taskId\": 5, \"steps\": [...]}
                       or {\"method\": \"getBalance\", \"steps\": [...]}
  --port-file PATH     write the port number to PATH once listening
  --answer-delay-ms N  every API answer waits N ms before it is written (a network
                       round trip; default 0, at most 600000)
  --stamp-ready        ready answers carry \"emulatorSentAtUs\": \"<20 digits>\" in their
                       solution: the wall clock (µs since the Unix epoch) just before
                       the answer was written
  --max-connections N  serve at most N connections at once, more are closed at once
                       (default 8192, at most 1000000: a socket each; the process's
                       limit of open files, ulimit -n, must allow them)
  --tls-cert FILE      with --tls-key: also serve HTTPS on a second port, HTTP/2 and
                       HTTP/1.1 by ALPN; FILE holds the PEM certificate chain
  --tls-key FILE       the PEM private key of --tls-cert
  --tls-port N         the HTTPS port (default 0: a free port)
  --tls-port-file PATH write the HTTPS port number to PATH once listening
  --verbose            log one line per request to stderr
  --help               print this help

The first stdout line is `capmonster-emulator listening on http://HOST:PORT`; with
--tls-cert the second is `capmonster-emulator listening on https://HOST:PORT`.
On HTTPS a scripted fault resets the request's HTTP/2 stream, or closes the
HTTP/1.1 connection, without an answer.
Control endpoints: POST /_emulator/script, GET /_emulator/stats,
POST /_emulator/reset, POST /_emulator/task, POST /_emulator/tasks,
GET and POST /_emulator/account.
";

/// Parsed command line.
struct Options {
    bind: IpAddr,
    port: u16,
    config: Config,
    script: Option<PathBuf>,
    port_file: Option<PathBuf>,
    /// The TLS listener's certificate chain and key files (both or neither).
    tls_files: Option<(PathBuf, PathBuf)>,
    tls_port_file: Option<PathBuf>,
    verbose: bool,
}

enum Parsed {
    Run(Box<Options>),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut options = Options {
        bind: IpAddr::from([127, 0, 0, 1]),
        port: 0,
        config: Config::default(),
        script: None,
        port_file: None,
        tls_files: None,
        tls_port_file: None,
        verbose: false,
    };
    let (mut tls_cert, mut tls_key) = (None, None);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--verbose" => options.verbose = true,
            "--stamp-ready" => options.config.stamp_ready = true,
            "--port" | "--bind" | "--client-key" | "--solve-after-ms" | "--balance" | "--first-task-id"
            | "--script" | "--port-file" | "--answer-delay-ms" | "--revoked-key" | "--address-ban"
            | "--banned-proxy" | "--max-connections" | "--tls-cert" | "--tls-key" | "--tls-port"
            | "--tls-port-file" => {
                let value = inline.or_else(|| args.next()).ok_or_else(|| format!("{flag} needs a value"))?;
                let bad = || format!("bad value for {flag}");
                match flag.as_str() {
                    "--port" => options.port = value.parse().map_err(|_| bad())?,
                    "--bind" => options.bind = value.parse().map_err(|_| bad())?,
                    "--client-key" if !value.is_empty() => options.config.client_key = Some(value),
                    "--client-key" => return Err("--client-key must not be empty".into()),
                    "--solve-after-ms" => {
                        options.config.solve_after = Duration::from_millis(value.parse().map_err(|_| bad())?)
                    }
                    "--balance" => {
                        let balance: f64 = value.parse().map_err(|_| bad())?;
                        if !balance.is_finite() {
                            return Err(bad());
                        }
                        options.config.balance = balance;
                    }
                    "--revoked-key" | "--banned-proxy" if value.is_empty() => {
                        return Err(format!("{flag} must not be empty"))
                    }
                    "--revoked-key" | "--banned-proxy"
                        if options.config.revoked_keys.len() + options.config.banned_proxies.len()
                            >= MAX_ACCOUNT_ENTRIES =>
                    {
                        return Err(format!("at most {MAX_ACCOUNT_ENTRIES} --revoked-key and --banned-proxy"))
                    }
                    "--revoked-key" => options.config.revoked_keys.push(value),
                    "--banned-proxy" => options.config.banned_proxies.push(value),
                    "--address-ban" if ADDRESS_BANS.contains(&value.as_str()) => {
                        options.config.address_ban = Some(value)
                    }
                    "--address-ban" => return Err(format!("--address-ban must be one of {ADDRESS_BANS:?}")),
                    "--first-task-id" => options.config.first_task_id = value.parse().map_err(|_| bad())?,
                    "--script" => options.script = Some(PathBuf::from(value)),
                    "--answer-delay-ms" => {
                        let ms: u64 = value.parse().map_err(|_| bad())?;
                        if ms > MAX_PAUSE_MS {
                            return Err(format!("--answer-delay-ms must be at most {MAX_PAUSE_MS}"));
                        }
                        options.config.answer_delay = Duration::from_millis(ms);
                    }
                    "--max-connections" => {
                        let n: usize = value.parse().map_err(|_| bad())?;
                        if !(1..=MAX_CONNECTIONS_LIMIT).contains(&n) {
                            return Err(format!("--max-connections must be 1 to {MAX_CONNECTIONS_LIMIT}"));
                        }
                        options.config.max_connections = n;
                    }
                    "--tls-cert" => tls_cert = Some(PathBuf::from(value)),
                    "--tls-key" => tls_key = Some(PathBuf::from(value)),
                    "--tls-port" => options.config.tls_port = value.parse().map_err(|_| bad())?,
                    "--tls-port-file" => options.tls_port_file = Some(PathBuf::from(value)),
                    _ => options.port_file = Some(PathBuf::from(value)),
                }
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    options.tls_files = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) if options.tls_port_file.is_some() => {
            return Err("--tls-port-file needs --tls-cert and --tls-key".into())
        }
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(Parsed::Run(Box::new(options)))
}

/// Reads and checks a `--script` file completely before the server starts.
fn load_script(path: &Path) -> Result<Vec<ScriptEntry>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: invalid JSON: {e}", path.display()))?;
    let entries = value.as_array().ok_or_else(|| format!("{}: expected a JSON array of entries", path.display()))?;
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            ScriptEntry::from_json(e, is_api_method).map_err(|m| format!("{}: entry {i}: {m}", path.display()))
        })
        .collect()
}

/// Writes the port to a temporary file next to `path`, then renames it into place, so a
/// script polling for `path` never reads a partial file.
fn write_port_file(path: &Path, port: u16) -> std::io::Result<()> {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(name);
    fs::write(&tmp, format!("{port}\n"))?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

fn main() -> ExitCode {
    let options = match parse_args(env::args().skip(1)) {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("capmonster-emulator: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let entries = match options.script.as_deref().map(load_script).transpose() {
        Ok(entries) => entries.unwrap_or_default(),
        Err(message) => {
            eprintln!("capmonster-emulator: {message}");
            return ExitCode::from(2);
        }
    };
    let mut config = options.config;
    if let Some((cert, key)) = &options.tls_files {
        match TlsIdentity::from_files(cert, key) {
            Ok(identity) => config.tls = Some(identity),
            Err(e) => {
                eprintln!("capmonster-emulator: --tls-cert/--tls-key: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let emulator = match Emulator::start_on(SocketAddr::new(options.bind, options.port), config) {
        Ok(emulator) => emulator,
        Err(e) => {
            eprintln!("capmonster-emulator: cannot listen on {}:{}: {e}", options.bind, options.port);
            return ExitCode::FAILURE;
        }
    };
    emulator.set_verbose(options.verbose);
    for entry in entries {
        if let Err(message) = emulator.script(entry) {
            eprintln!("capmonster-emulator: --script: {message}");
            return ExitCode::from(2);
        }
    }
    let mut stdout = std::io::stdout();
    // A closed stdout is no reason to stop serving: the port file / port may still be used.
    let _ = writeln!(stdout, "capmonster-emulator listening on {}", emulator.url());
    if let Some(url) = emulator.tls_url() {
        let _ = writeln!(stdout, "capmonster-emulator listening on {url}");
    }
    let _ = stdout.flush();
    let port_files = [(&options.port_file, Some(emulator.port())), (&options.tls_port_file, emulator.tls_port())];
    for (path, port) in port_files {
        let (Some(path), Some(port)) = (path, port) else { continue };
        if let Err(e) = write_port_file(path, port) {
            eprintln!("capmonster-emulator: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_all_options() {
        let Ok(Parsed::Run(o)) = parse(&[
            "--port",
            "8080",
            "--bind=0.0.0.0",
            "--client-key",
            "k",
            "--solve-after-ms",
            "5",
            "--balance",
            "1.5",
            "--first-task-id",
            "-3",
            "--script",
            "s.json",
            "--port-file",
            "p",
            "--verbose",
        ]) else {
            panic!("should parse");
        };
        assert_eq!((o.port, o.bind.to_string()), (8080, "0.0.0.0".to_owned()));
        assert_eq!(o.config.client_key.as_deref(), Some("k"));
        assert_eq!(o.config.solve_after, Duration::from_millis(5));
        assert_eq!((o.config.balance, o.config.first_task_id), (1.5, -3));
        assert_eq!(o.script, Some(PathBuf::from("s.json")));
        assert_eq!(o.port_file, Some(PathBuf::from("p")));
        assert!(o.verbose);
        assert!(matches!(parse(&["--help"]), Ok(Parsed::Help)));
    }

    #[test]
    fn parses_the_benchmark_options() {
        let Ok(Parsed::Run(o)) = parse(&["--answer-delay-ms", "10", "--stamp-ready"]) else {
            panic!("should parse");
        };
        assert_eq!(o.config.answer_delay, Duration::from_millis(10));
        assert!(o.config.stamp_ready);
        let Ok(Parsed::Run(o)) = parse(&["--answer-delay-ms=600000"]) else { panic!("should parse") };
        assert_eq!(o.config.answer_delay, Duration::from_millis(600_000));
        assert!(!o.config.stamp_ready);
        let Ok(Parsed::Run(o)) = parse(&[]) else { panic!("should parse") };
        assert_eq!((o.config.answer_delay, o.config.stamp_ready), (Duration::ZERO, false));
        for bad in [&["--answer-delay-ms"][..], &["--answer-delay-ms", "600001"], &["--answer-delay-ms", "-1"]] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(o.config.max_connections, capmonster_emulator::MAX_CONNECTIONS);
        let Ok(Parsed::Run(o)) = parse(&["--max-connections", "1000000"]) else { panic!("should parse") };
        assert_eq!(o.config.max_connections, MAX_CONNECTIONS_LIMIT);
        for bad in [&["--max-connections", "0"][..], &["--max-connections", "1000001"], &["--max-connections"]] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_the_tls_options() {
        let args = ["--tls-cert", "c.pem", "--tls-key=k.pem", "--tls-port", "8443", "--tls-port-file", "t"];
        let Ok(Parsed::Run(o)) = parse(&args) else { panic!("should parse") };
        assert_eq!(o.tls_files, Some((PathBuf::from("c.pem"), PathBuf::from("k.pem"))));
        assert_eq!((o.config.tls_port, o.tls_port_file), (8443, Some(PathBuf::from("t"))));
        let Ok(Parsed::Run(o)) = parse(&[]) else { panic!("should parse") };
        assert_eq!((o.tls_files, o.config.tls_port, o.config.tls), (None, 0, None));
        for bad in [
            &["--tls-cert", "c.pem"][..],
            &["--tls-key", "k.pem"],
            &["--tls-port-file", "t"],
            &["--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-port", "70000"],
            &["--tls-cert"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_the_account_options() {
        let args =
            ["--revoked-key", "a", "--revoked-key=b", "--address-ban", "ERROR_IP_BANNED", "--banned-proxy", "h:1"];
        let Ok(Parsed::Run(o)) = parse(&args) else { panic!("should parse") };
        assert_eq!(o.config.revoked_keys, ["a", "b"]);
        assert_eq!(o.config.address_ban.as_deref(), Some("ERROR_IP_BANNED"));
        assert_eq!(o.config.banned_proxies, ["h:1"]);
        for bad in [&["--address-ban", "ERROR_NOPE"][..], &["--revoked-key", ""], &["--banned-proxy"]] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_bad_arguments() {
        for bad in [
            &["--port"][..],
            &["--port", "70000"],
            &["--bind", "localhost"],
            &["--balance", "NaN"],
            &["--client-key", ""],
            &["--solve-after-ms", "-1"],
            &["--nope"],
            &["extra"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
