//! The request budget: at most 120 getTaskResult requests per task, for every process of the
//! user on the machine.
//!
//! The service may lock an account that asks more than 120 times about one task, so every
//! attempt to send a getTaskResult request, from any client object, thread or process, first
//! takes a unit here; the 121st is refused before it is sent. Tasks are keyed by a digest of
//! the client key and the endpoint (`KeyDigest`; the key itself is never kept) and the task id.
//!
//! Where the counts live is chosen once, when the first client is created:
//! - by default, a file that every process of the user shares (`budget_file`), in a private
//!   directory (`$XDG_RUNTIME_DIR/capmonster/budget-v2`, else
//!   `<temporary directory>/capmonster-<uid>/budget-v2`; on Windows
//!   `%LOCALAPPDATA%\capmonster\budget-v2`);
//! - `CAPMONSTER_BUDGET_FILE=/absolute/path`: that file instead;
//! - `CAPMONSTER_BUDGET=process`: a table in this process only (each process counts alone).
//!
//! A file that cannot be trusted or used makes the process count alone, and the first
//! getTaskResult result of the process says why (`Budget::take_notice`): a call never fails
//! because of the file.
//!
//! Bounds of the process table: it holds at least [`MIN_TRACKED`](crate::budget::MIN_TRACKED)
//! tasks. When it reaches [`HIGH_WATER`](crate::budget::HIGH_WATER) it forgets tasks idle for
//! [`IDLE_EXPIRY`](crate::budget::IDLE_EXPIRY) (longer than the service keeps a result and than
//! a ban lasts), then, if still full, the longest-idle ones down to `MIN_TRACKED`. The file's
//! table is fixed at `budget_file::CAPACITY` tasks with the same expiry. Locks are held only
//! to count, never across a request.

#[cfg(any(unix, windows))]
pub mod file;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use crate::api::REQUESTS_PER_TASK;
/// A task not asked about for this long is forgotten first when the table is full.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// The table always keeps at least this many of the most recently used tasks.
pub const MIN_TRACKED: usize = 100_000;
/// The size at which the table is pruned.
pub const HIGH_WATER: usize = 120_000;

/// What a task's count is kept under: the first 8 bytes of SHA-256 over the endpoint and the
/// client key. The same in every process, version and language binding of the library, and the
/// key cannot be read back from it. The endpoint is part of it because a task id means a task
/// of one service: an emulator restarting its ids does not spend the real service's budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyDigest(u64);

impl KeyDigest {
    pub fn of(client_key: &str, base_url: &str) -> Self {
        let mut input = Vec::with_capacity(base_url.len() + 1 + client_key.len());
        input.extend_from_slice(base_url.as_bytes());
        input.push(0);
        input.extend_from_slice(client_key.as_bytes());
        let sha = ring::digest::digest(&ring::digest::SHA256, &input);
        let mut first = [0u8; 8];
        first.copy_from_slice(&sha.as_ref()[..8]);
        // 0 marks an empty slot in the shared file.
        KeyDigest(u64::from_le_bytes(first).max(1))
    }

    pub fn value(self) -> u64 {
        self.0
    }

    pub(crate) fn from_value(value: u64) -> Self {
        KeyDigest(value)
    }
}

struct Entry {
    sent: u32,
    last_used: Instant,
}

/// The per-task counters. One process-wide instance ([`global`]); tests make their own
/// (`Budget::default()` counts in the process only).
#[derive(Default)]
pub struct Budget {
    tasks: Mutex<HashMap<(KeyDigest, i64), Entry>>,
    /// The shared file, when this budget uses one; `None` inside once it proved unusable.
    shared: Option<Mutex<Option<Shared>>>,
    /// Why the budget is not (or no longer) shared, or what was repaired: told once.
    notice: Mutex<Option<String>>,
    notice_pending: AtomicBool,
}

#[cfg(any(unix, windows))]
struct Shared {
    file: crate::budget::file::BudgetFile,
    /// Whether the path is the default one (its directory is then made private).
    default_location: bool,
}

/// Stands in where there is no shared file (neither Unix nor Windows).
#[cfg(not(any(unix, windows)))]
struct Shared;

/// The budget shared by every client in the process; its kind is read from the environment
/// the first time (the library calls this when the first client is created).
pub fn global() -> &'static Budget {
    static GLOBAL: LazyLock<Budget> = LazyLock::new(|| {
        Budget::from_settings(std::env::var("CAPMONSTER_BUDGET").ok(), std::env::var_os("CAPMONSTER_BUDGET_FILE"))
    });
    &GLOBAL
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked while counting; the counts stay valid.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Budget {
    /// The budget the two variables ask for (see the module docs).
    pub fn from_settings(kind: Option<String>, file: Option<std::ffi::OsString>) -> Budget {
        let budget = Budget::default();
        match kind.as_deref() {
            Some("process") => return budget,
            None | Some("") | Some("shared") => {}
            Some(other) => budget.notify(format!(
                "CAPMONSTER_BUDGET={:?} is neither \"process\" nor \"shared\": the budget is shared",
                crate::api::text::truncate(other, 64)
            )),
        }
        let (path, default_location) = match file.map(PathBuf::from) {
            Some(path) if path.is_absolute() => (path, false),
            Some(path) => {
                budget.notify(format!(
                    "CAPMONSTER_BUDGET_FILE={:?} is not an absolute path: this process counts its getTaskResult requests alone",
                    crate::api::text::truncate(&path.to_string_lossy(), 256)
                ));
                return budget;
            }
            None => (default_path(), true),
        };
        budget.open_shared(path, default_location)
    }

    #[cfg(any(unix, windows))]
    fn open_shared(mut self, path: PathBuf, default_location: bool) -> Budget {
        match crate::budget::file::BudgetFile::open(&path, default_location) {
            Ok((file, note)) => {
                if let Some(note) = note {
                    self.notify(note);
                }
                self.shared = Some(Mutex::new(Some(Shared { file, default_location })));
            }
            Err(why) => self.notify(format!(
                "the shared budget file cannot be used ({why}): this process counts its getTaskResult requests alone"
            )),
        }
        self
    }

    #[cfg(not(any(unix, windows)))]
    fn open_shared(self, _path: PathBuf, _default_location: bool) -> Budget {
        self
    }

    /// Whether the counts are shared with other processes now.
    pub fn is_shared(&self) -> bool {
        self.shared.as_ref().is_some_and(|shared| lock(shared).is_some())
    }

    fn notify(&self, notice: String) {
        let mut slot = lock(&self.notice);
        if slot.is_none() {
            *slot = Some(notice);
            self.notice_pending.store(true, Ordering::Release);
        }
    }

    /// Why the budget is not shared, or what was repaired, once per process (the first caller
    /// gets it); `None` after that and when all is well.
    pub fn take_notice(&self) -> Option<String> {
        if !self.notice_pending.swap(false, Ordering::AcqRel) {
            return None;
        }
        lock(&self.notice).take()
    }

    /// Takes one request for the task; `Err(sent)` when all [`REQUESTS_PER_TASK`] are spent.
    pub fn take(&self, key: KeyDigest, task_id: i64) -> Result<u32, u32> {
        #[cfg(any(unix, windows))]
        if let Some(shared) = &self.shared {
            if let Some(taken) = self.with_shared(shared, |file| file.take(key, task_id)) {
                return taken;
            }
        }
        let mut tasks = lock(&self.tasks);
        let now = Instant::now();
        if tasks.len() >= HIGH_WATER && !tasks.contains_key(&(key, task_id)) {
            prune(&mut tasks, now);
        }
        let entry = tasks.entry((key, task_id)).or_insert(Entry { sent: 0, last_used: now });
        entry.last_used = now;
        if entry.sent >= REQUESTS_PER_TASK {
            return Err(entry.sent);
        }
        entry.sent += 1;
        Ok(entry.sent)
    }

    /// Runs `op` on the shared file, reopening it in a forked child first; on an I/O error the
    /// file is given up for good (the process counts alone from then on, and says so once).
    #[cfg(any(unix, windows))]
    fn with_shared<T>(
        &self,
        shared: &Mutex<Option<Shared>>,
        op: impl FnOnce(&crate::budget::file::BudgetFile) -> std::io::Result<T>,
    ) -> Option<T> {
        let mut slot = lock(shared);
        let current = slot.as_ref()?;
        if !current.file.opened_here() {
            let (path, default_location) = (current.file.path().to_owned(), current.default_location);
            *slot = match crate::budget::file::BudgetFile::open(&path, default_location) {
                Ok((file, _)) => Some(Shared { file, default_location }),
                Err(why) => {
                    self.notify(format!(
                        "the shared budget file cannot be used in this forked process ({why}): it counts its getTaskResult requests alone"
                    ));
                    None
                }
            };
        }
        let current = slot.as_ref()?;
        match op(&current.file) {
            Ok(value) => Some(value),
            Err(error) => {
                self.notify(format!(
                    "the shared budget file {} failed ({error}): this process counts its getTaskResult requests alone from now on",
                    current.file.path().display()
                ));
                *slot = None;
                None
            }
        }
    }

    /// Requests counted so far for the task (0 when unknown or forgotten).
    pub fn sent(&self, key: KeyDigest, task_id: i64) -> u32 {
        #[cfg(any(unix, windows))]
        if let Some(shared) = &self.shared {
            if let Some(sent) = self.with_shared(shared, |file| file.sent(key, task_id)) {
                return sent;
            }
        }
        lock(&self.tasks).get(&(key, task_id)).map_or(0, |entry| entry.sent)
    }

    /// Tasks in the process table (not the shared file's).
    pub fn tracked(&self) -> usize {
        lock(&self.tasks).len()
    }
}

/// The shared file's default place.
fn default_path() -> PathBuf {
    #[cfg(any(unix, windows))]
    return crate::budget::file::default_path();
    #[cfg(not(any(unix, windows)))]
    return PathBuf::new();
}

/// Drops idle tasks, then the longest-idle ones down to [`MIN_TRACKED`]. Linear, but runs
/// once per `HIGH_WATER - MIN_TRACKED` new tasks at most, so its cost per request is small.
fn prune(tasks: &mut HashMap<(KeyDigest, i64), Entry>, now: Instant) {
    tasks.retain(|_, entry| now.duration_since(entry.last_used) < IDLE_EXPIRY);
    if tasks.len() < HIGH_WATER {
        return;
    }
    let mut ages: Vec<Instant> = tasks.values().map(|entry| entry.last_used).collect();
    let evict = tasks.len() - MIN_TRACKED;
    let (_, &mut cutoff, _) = ages.select_nth_unstable(evict);
    // Evicts everything idle longer than the cut-off (ties may keep a few more).
    tasks.retain(|_, entry| entry.last_used >= cutoff);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_121st_request_is_refused() {
        let budget = Budget::default();
        let key = KeyDigest::of("k", "u");
        for n in 1..=REQUESTS_PER_TASK {
            assert_eq!(budget.take(key, 5), Ok(n));
        }
        assert_eq!(budget.take(key, 5), Err(REQUESTS_PER_TASK));
        assert_eq!(budget.take(key, 6), Ok(1), "other tasks are counted apart");
        assert_eq!(budget.take(KeyDigest::of("other key", "u"), 5), Ok(1), "other accounts are counted apart");
    }

    #[test]
    fn the_digest_is_stable_and_separates_endpoints() {
        // The same in every process and version: a change would split the shared counts. (The
        // first 8 bytes, little-endian, of SHA-256 of "https://api.capmonster.cloud\0key".)
        assert_eq!(KeyDigest::of("key", "https://api.capmonster.cloud").value(), 0x999c_1e42_5997_f58c);
        assert_ne!(KeyDigest::of("key", "http://127.0.0.1:1"), KeyDigest::of("key", "http://127.0.0.1:2"));
        assert_ne!(KeyDigest::of("ab", "c"), KeyDigest::of("a", "bc"));
    }

    #[test]
    fn the_environment_chooses_the_budget() {
        assert!(!Budget::from_settings(Some("process".into()), None).is_shared());
        let relative = Budget::from_settings(None, Some("budget-file".into()));
        assert!(!relative.is_shared());
        assert!(relative.take_notice().unwrap().contains("absolute"));
        assert!(relative.take_notice().is_none(), "told once");
        let dir = std::env::temp_dir().join(format!("capmonster-budget-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = Budget::from_settings(Some("odd".into()), Some(dir.join("b").into()));
        assert!(file.is_shared());
        assert!(file.take_notice().unwrap().contains("\"odd\""));
        assert_eq!(file.take(KeyDigest::of("k", "u"), 3), Ok(1));
        assert_eq!(Budget::from_settings(None, Some(dir.join("b").into())).sent(KeyDigest::of("k", "u"), 3), 1);
        // Closed first: Windows does not remove a directory while a file in it is open.
        drop(file);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_takers_never_exceed_the_limit() {
        let budget = Arc::new(Budget::default());
        let key = KeyDigest::of("k", "u");
        let granted: u32 = (0..16)
            .map(|_| {
                let budget = Arc::clone(&budget);
                std::thread::spawn(move || (0..50).filter(|_| budget.take(key, 9).is_ok()).count() as u32)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(granted, REQUESTS_PER_TASK);
    }

    #[test]
    fn the_table_is_bounded_and_keeps_recent_tasks() {
        let budget = Budget::default();
        let key = KeyDigest::of("k", "u");
        for task in 0..(HIGH_WATER as i64 + 10) {
            budget.take(key, task).unwrap();
        }
        assert!(budget.tracked() <= HIGH_WATER, "{}", budget.tracked());
        assert!(budget.tracked() >= MIN_TRACKED, "{}", budget.tracked());
        assert_eq!(budget.sent(key, HIGH_WATER as i64 + 9), 1, "the newest task is kept");
    }
}
