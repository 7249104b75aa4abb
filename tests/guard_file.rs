//! The account guard's area of the shared budget file across processes: garbage written over it
//! (as a crash, a bug or another program might leave it) is never believed and is repaired by
//! the next change; an area cut short behind a running process is restored; and the file's
//! fallback place in the user's cache directory is shared by every process when another user
//! took the temporary directory first.
//!
//! Each test gives its child processes (this binary run again, in `child_session`) a budget of
//! its own choosing, and writes to the file with plain file writes, as another program would.
//! The guard's stops are per key, so the children's calls are createTask calls with keys the
//! emulator revokes or not. Unix only: the test processes of Windows count in the process
//! (tests/common), and Windows refuses to cut short a mapped file.

mod common;

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use capmonster::budget::file::FILE_BYTES;
use capmonster::budget::KeyDigest;
use common::*;
use serde_json::{json, Value};

const IMAGE: &str = r#"{"type":"ImageToTextTask","body":"aGVsbG8="}"#;
const REVOKED: &str = "ERROR_KEY_DOES_NOT_EXIST";

/// Child mode: reads client keys from stdin, one a line, makes a createTask call with each
/// (one client per key, kept for the session), and prints what came back as a line
/// `CALL {"requests":..,"api":..,"notice":..}` (`api`: the service's error code, or "ok").
/// A no-op in a normal test run.
#[test]
fn child_session() {
    let Ok(url) = std::env::var("GUARD_FILE_CHILD_URL") else { return };
    let mut clients = std::collections::HashMap::new();
    for line in std::io::stdin().lock().lines() {
        let key = line.unwrap();
        let client = clients.entry(key.clone()).or_insert_with(|| {
            let client = capmonster::Client::new(&key).unwrap();
            client.set_base_url(&url).unwrap();
            client.set_proxy(None).unwrap();
            client
        });
        let report = client.create_task(IMAGE, None);
        let api = match &report.result {
            Ok(_) => "ok".to_owned(),
            Err(error) => {
                error.api_code().map_or_else(|| format!("{:?}: {}", error.code, error.message), str::to_owned)
            }
        };
        println!("CALL {}", json!({"requests": report.requests, "api": api, "notice": report.notice}));
        std::io::stdout().flush().unwrap();
    }
}

/// A child process in `child_session`, driven through its stdin and stdout.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// What one call of a child came back with.
#[derive(Debug)]
struct Call {
    requests: u64,
    api: String,
    notice: Option<String>,
}

impl Session {
    /// A child with the test's budget: `env` set, `removed` unset (the parent's own budget file
    /// is never the child's).
    fn start(emulator: &Emulator, env: &[(&str, &Path)], removed: &[&str]) -> Session {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "child_session", "--nocapture", "--test-threads=1"])
            .env("GUARD_FILE_CHILD_URL", emulator.url())
            .env_remove("CAPMONSTER_BUDGET")
            .env_remove("CAPMONSTER_BUDGET_FILE")
            .env_remove("CAPMONSTER_GUARD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for name in removed {
            command.env_remove(name);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let (stdin, stdout) = (child.stdin.take(), BufReader::new(child.stdout.take().unwrap()));
        Session { child, stdin, stdout }
    }

    fn call(&mut self, key: &str) -> Call {
        writeln!(self.stdin.as_mut().unwrap(), "{key}").unwrap();
        let mut line = String::new();
        // Bounded by the child's output: libtest's own lines come before the first call's.
        loop {
            line.clear();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the child ended without answering");
            if let Some(at) = line.find("CALL ") {
                let call: Value = serde_json::from_str(&line[at + 5..]).unwrap();
                return Call {
                    requests: call["requests"].as_u64().unwrap(),
                    api: call["api"].as_str().unwrap().to_owned(),
                    notice: call["notice"].as_str().map(str::to_owned),
                };
            }
        }
    }

    /// Ends the session: the child must exit well (a SIGBUS or a panic fails the test).
    fn end(mut self) {
        drop(self.stdin.take());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the child failed ({status}): {rest}");
    }
}

/// One call in a child process of its own.
fn call_in_a_new_process(emulator: &Emulator, env: &[(&str, &Path)], removed: &[&str], key: &str) -> Call {
    let mut session = Session::start(emulator, env, removed);
    let call = session.call(key);
    session.end();
    call
}

fn assert_sent(call: &Call, api: &str) {
    assert_eq!((call.requests, call.api.as_str()), (1, api), "{call:?}");
}

fn assert_local(call: &Call, api: &str) {
    assert_eq!((call.requests, call.api.as_str()), (0, api), "answered here, not sent: {call:?}");
}

/// A fresh directory for one test.
fn scratch(name: &str) -> ScratchDir {
    ScratchDir::new("capmonster-guard-file", name)
}

/// The guard's area of a budget file, read and written as plain bytes. Its place and geometry
/// come from the file's header (records and words a record, bytes 20..28), its words' meaning
/// from `src/budget/file/stops.rs`: a 64-byte area header whose first word counts the records
/// in use, then the records, each the key's digest, the stop's number (1: the key's stop, 0:
/// free), a sequence word (odd while written), ..., the lengths of the texts.
struct Area {
    file: std::fs::File,
    start: u64,
    records: u64,
    record_bytes: u64,
}

const KEY: u64 = 0;
const WHICH: u64 = 1;
const SEQUENCE: u64 = 2;
const LENGTHS: u64 = 7;

impl Area {
    fn open(path: &Path) -> Area {
        let mut file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        let mut header = [0u8; 64];
        file.read_exact(&mut header).unwrap();
        assert_eq!(&header[..7], b"CMBUDGT", "a budget file");
        let number = |at: usize| u64::from(u32::from_le_bytes(header[at..at + 4].try_into().unwrap()));
        let (records, record_bytes) = (number(20), number(24) * 8);
        assert_eq!(records, capmonster::budget::file::STOP_RECORDS as u64);
        let start = FILE_BYTES - (64 + records * record_bytes);
        Area { file, start, records, record_bytes }
    }

    fn offset(&self, record: u64, word: u64) -> u64 {
        self.start + 64 + record * self.record_bytes + word * 8
    }

    fn read_at(&mut self, offset: u64) -> u64 {
        let mut bytes = [0u8; 8];
        self.file.seek(SeekFrom::Start(offset)).unwrap();
        self.file.read_exact(&mut bytes).unwrap();
        u64::from_ne_bytes(bytes)
    }

    fn write_at(&mut self, offset: u64, value: u64) {
        self.file.seek(SeekFrom::Start(offset)).unwrap();
        self.file.write_all(&value.to_ne_bytes()).unwrap();
    }

    fn word(&mut self, record: u64, word: u64) -> u64 {
        self.read_at(self.offset(record, word))
    }

    fn set_word(&mut self, record: u64, word: u64, value: u64) {
        self.write_at(self.offset(record, word), value);
    }

    fn count(&mut self) -> u64 {
        self.read_at(self.start)
    }

    fn set_count(&mut self, value: u64) {
        self.write_at(self.start, value);
    }

    fn record(&mut self, record: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; self.record_bytes as usize];
        self.file.seek(SeekFrom::Start(self.offset(record, 0))).unwrap();
        self.file.read_exact(&mut bytes).unwrap();
        bytes
    }

    fn set_record(&mut self, record: u64, bytes: &[u8]) {
        self.file.seek(SeekFrom::Start(self.offset(record, 0))).unwrap();
        self.file.write_all(bytes).unwrap();
    }

    /// The records in use (stop number not 0).
    fn used(&mut self) -> Vec<u64> {
        (0..self.records).filter(|&record| self.word(record, WHICH) != 0).collect()
    }
}

#[test]
fn garbage_over_the_stops_area_is_not_believed_and_is_repaired() {
    if cfg!(windows) {
        return;
    }
    let emulator = emulator();
    let revoked = "guard-file-revoked";
    let live = ["guard-file-live-1", "guard-file-live-2", "guard-file-live-3", "guard-file-live-4"];
    emulator.update_account(json!({"revokedKeys": [revoked]})).unwrap();
    let dir = scratch("garbage");
    let path = dir.join("budget");
    let env = [("CAPMONSTER_BUDGET_FILE", path.as_path())];
    let call = |key: &str| call_in_a_new_process(&emulator, &env, &[], key);

    // One process sets the stop, another is answered by it.
    assert_sent(&call(revoked), REVOKED);
    assert_local(&call(revoked), REVOKED);
    let mut area = Area::open(&path);
    assert_eq!(area.count(), 1);
    let used = area.used();
    assert_eq!(used.len(), 1);
    let stop = used[0];
    assert_eq!(area.word(stop, KEY), KeyDigest::of(revoked, &emulator.url()).value());
    assert_eq!(area.word(stop, WHICH), 1, "the key's stop");

    // Garbage, each piece of which would hold back a live key's calls if it were believed: the
    // real stop copied under the live keys' digests, with an odd sequence word (a writer killed
    // mid-write), an unknown stop number, a code longer than a record holds, a description
    // longer than a record holds; a record of noise; and a count word of nonsense. The real
    // stop's sequence word is made odd too.
    let real = area.record(stop);
    let garbage: [(u64, u64); 4] = [(SEQUENCE, 7), (WHICH, 77), (LENGTHS, 0xFFFF), (LENGTHS, 0x1_FFFF_0000)];
    for (n, (key, (word, value))) in live.iter().zip(garbage).enumerate() {
        let record = 10 + n as u64;
        area.set_record(record, &real);
        area.set_word(record, KEY, KeyDigest::of(key, &emulator.url()).value());
        area.set_word(record, word, value);
    }
    area.set_record(20, &vec![0xA5; area.record_bytes as usize]);
    let odd = area.word(stop, SEQUENCE) | 1;
    area.set_word(stop, SEQUENCE, odd);
    area.set_count(0xDEAD_BEEF_0BAD_F00D);

    // No process believes any of it: every live key's call goes out, and so does the revoked
    // key's (its record is half written, as far as anyone can tell). Reads repair nothing.
    let mut session = Session::start(&emulator, &env, &[]);
    for key in live {
        assert_sent(&session.call(key), "ok");
    }
    session.end();
    assert_eq!(area.count(), 0xDEAD_BEEF_0BAD_F00D);
    assert_sent(&call(revoked), REVOKED);

    // That answer started a new stop, under the lock: the garbage is freed, the count is right.
    let used = area.used();
    assert_eq!(used.len(), 1, "only the new stop is left: {used:?}");
    assert_eq!(area.count(), 1);
    assert_eq!(area.word(used[0], KEY), KeyDigest::of(revoked, &emulator.url()).value());
    assert_eq!(area.word(used[0], SEQUENCE) % 2, 0);
    // The new stop holds in every process; the live keys go on.
    assert_local(&call(revoked), REVOKED);
    assert_sent(&call(live[0]), "ok");
    // Sent: the first call, the live keys' (before and after), the revoked key's after the garbage.
    assert_eq!(emulator.method_requests("createTask"), 1 + live.len() as u32 + 1 + 1);
}

#[test]
fn a_stops_area_cut_short_behind_a_running_process_is_restored() {
    if cfg!(windows) {
        return;
    }
    let emulator = emulator();
    let revoked = "guard-file-cut";
    emulator.update_account(json!({"revokedKeys": [revoked]})).unwrap();
    let dir = scratch("cut");
    let path = dir.join("budget");
    let env = [("CAPMONSTER_BUDGET_FILE", path.as_path())];

    // A process that keeps the file mapped sets the stop, and is answered by it.
    let mut running = Session::start(&emulator, &env, &[]);
    assert_sent(&running.call(revoked), REVOKED);
    assert_local(&running.call(revoked), REVOKED);
    // Cut short in the middle of the stops' records, behind its back.
    let start = Area::open(&path).start;
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(start + 64 + 1000).unwrap();

    // Its next call restores the file rather than crash on the missing pages (SIGBUS): rebuilt
    // empty, the stop is gone, so the call goes out and starts it again, for every process.
    assert_sent(&running.call(revoked), REVOKED);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), FILE_BYTES);
    assert_local(&call_in_a_new_process(&emulator, &env, &[], revoked), REVOKED);
    assert_local(&running.call(revoked), REVOKED);
    running.end();
    let mut area = Area::open(&path);
    assert_eq!((area.count(), area.used().len()), (1, 1));
    assert_eq!(emulator.method_requests("createTask"), 2);
}

/// Another user takes `dir` first: as root, a directory of uid 65534; otherwise a link to a
/// directory elsewhere (which the library refuses as well).
#[cfg(unix)]
fn squat(dir: &Path) {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::fs::create_dir(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
    } else {
        std::os::unix::fs::symlink(dir.with_file_name("elsewhere"), dir).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn every_process_falls_back_to_the_home_cache_when_the_temporary_directory_is_taken() {
    use std::os::unix::fs::PermissionsExt;
    let emulator = emulator();
    let revoked = "guard-file-place";
    emulator.update_account(json!({"revokedKeys": [revoked]})).unwrap();
    let root = scratch("place");
    let (temp, cache) = (root.join("tmp"), root.join("cache"));
    std::fs::create_dir(&temp).unwrap();
    // SAFETY: no preconditions.
    let squatted = temp.join(format!("capmonster-{}", unsafe { libc::geteuid() }));
    squat(&squatted);
    // The default place: no runtime directory, the temporary directory and the cache the test's.
    let env = [("TMPDIR", temp.as_path()), ("XDG_CACHE_HOME", cache.as_path())];
    let removed = ["XDG_RUNTIME_DIR"];
    let call = || call_in_a_new_process(&emulator, &env, &removed, revoked);

    let first = call();
    assert_sent(&first, REVOKED);
    assert_eq!(first.notice, None, "shared: nothing to say");
    assert_local(&call(), REVOKED);
    let home = cache.join("capmonster");
    assert_eq!(std::fs::metadata(&home).unwrap().permissions().mode() & 0o777, 0o700);
    let files: Vec<_> = std::fs::read_dir(&home).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert!(files.len() == 1 && files[0].to_string_lossy().starts_with("budget"), "{files:?}");
    if squatted.is_dir() {
        assert_eq!(std::fs::read_dir(&squatted).unwrap().count(), 0, "the other user's directory is not used");
    }

    // A cache directory other users could change is not trusted either: with no place left,
    // the process counts alone, and its first report says so plainly.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let alone = call();
    assert_sent(&alone, REVOKED);
    let notice = alone.notice.expect("the first report says the budget is not shared");
    assert!(
        notice.starts_with("the request budget and the account guard are not shared with other processes: ")
            && notice.contains("writable by other users")
            && notice.ends_with("this process counts alone"),
        "{notice}"
    );
}
