//! The request budget: at most 120 getTaskResult requests per task, for every process of the
//! user on the machine.
//!
//! The service may lock an account that asks more than 120 times about one task, so every
//! attempt to send a getTaskResult request, from any client object, thread or process, first
//! takes a unit here ([`Budget::take`](crate::budget::Budget::take), which answers with an
//! [`Admission`](crate::budget::Admission)); the 121st is refused before it is sent. Tasks are
//! keyed by a digest of the client key and the endpoint
//! ([`KeyDigest`](crate::budget::KeyDigest); the key itself is never kept) and the task id.
//!
//! Where the counts live is chosen once, when the first client is created:
//! - by default, a file that every process of the user shares
//!   ([`file`](crate::budget::file)), in a private directory
//!   (`$XDG_RUNTIME_DIR/capmonster/budget-v4`, else
//!   `<temporary directory>/capmonster-<uid>/budget-v4`, else the user's cache directory:
//!   [`file::default_path`](crate::budget::file::default_path) has the order and its reasons; on
//!   Windows `%LOCALAPPDATA%\capmonster\budget-v4`);
//! - `CAPMONSTER_BUDGET_FILE=/absolute/path`: that file instead;
//! - `CAPMONSTER_BUDGET=process`: a table in this process only (`process.rs`; each process
//!   counts alone).
//!
//! A file that cannot be trusted or used makes the process count alone, and says why: a call
//! never fails because of the file. What the budget has to say (`notice.rs`: why it is not
//! shared, or what was repaired) comes back in a call's report, once to each client (each holds
//! a [`NoticesTold`](crate::budget::NoticesTold)): the first report of every client's calls
//! (any call that got past its arguments' checks) carries it, and no later one repeats it.
//!
//! Bounds: the process table keeps at least [`MIN_TRACKED`](crate::budget::MIN_TRACKED) tasks
//! and is pruned at [`HIGH_WATER`](crate::budget::HIGH_WATER); the file's table is fixed at
//! [`CAPACITY`](crate::budget::file::CAPACITY) tasks; both forget first the tasks idle for
//! [`IDLE_EXPIRY`](crate::budget::IDLE_EXPIRY). Locks are held only to count, never across a
//! request.

mod admission;
#[cfg(any(unix, windows))]
pub mod file;
pub mod guard;
mod key;
mod notice;
mod process;

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

pub use crate::api::REQUESTS_PER_TASK;
pub use admission::{Admission, IDLE_EXPIRY};
pub use key::KeyDigest;
pub use notice::NoticesTold;
pub use process::{HIGH_WATER, MIN_TRACKED};

use notice::Notices;

/// The per-task counters. One process-wide instance ([`global`]); tests make their own
/// (`Budget::default()` counts in the process only).
#[derive(Default)]
pub struct Budget {
    tasks: Mutex<process::Table>,
    /// The account guard's stops when there is no shared file (`guard.rs`).
    stops: guard::process::ProcessStops,
    /// The shared file, when this budget uses one; `None` inside once it proved unusable.
    shared: Option<Mutex<Option<Shared>>>,
    /// Why the budget is not (or no longer) shared, or what was repaired: told once to each
    /// reader.
    notices: Notices,
}

/// The answer to [`Budget::take`]: whether the request may be sent, and what the budget has to
/// say that this reader was not told yet.
#[derive(Debug, PartialEq, Eq)]
pub struct Taken {
    pub admission: Admission,
    pub notice: Option<String>,
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
        // The library's own unit tests count in the process: they never open the user's file
        // (the integration tests and the C, Go and C# tests each choose a file of their own).
        if cfg!(test) {
            return Budget::default();
        }
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
            Some(other) => budget.notices.add(format!(
                "CAPMONSTER_BUDGET={:?} is neither \"process\" nor \"shared\": the budget is shared",
                crate::api::text::truncate(other, 64)
            )),
        }
        let (path, default_location) = match file.map(PathBuf::from) {
            Some(path) if path.is_absolute() => (path, false),
            Some(path) => {
                budget.notices.add(notice::not_shared(&format!(
                    "CAPMONSTER_BUDGET_FILE={:?} is not an absolute path",
                    crate::api::text::truncate(&path.to_string_lossy(), 256)
                )));
                return budget;
            }
            None => match default_path() {
                Ok(path) => (path, true),
                Err(why) => {
                    budget.notices.add(notice::not_shared(&why));
                    return budget;
                }
            },
        };
        budget.open_shared(path, default_location)
    }

    #[cfg(any(unix, windows))]
    fn open_shared(mut self, path: PathBuf, default_location: bool) -> Budget {
        match crate::budget::file::BudgetFile::open(&path, default_location) {
            Ok((file, note)) => {
                if let Some(note) = note {
                    self.notices.add(note);
                }
                self.shared = Some(Mutex::new(Some(Shared { file, default_location })));
            }
            Err(why) => self.notices.add(notice::not_shared(&format!("the shared file cannot be used ({why})"))),
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

    /// What the budget has to say that `told` (a client's) was not told yet: usually nothing,
    /// for two atomic loads. Every call of a client asks, so its first report says it.
    #[inline]
    pub fn untold(&self, told: &NoticesTold) -> Option<String> {
        self.notices.untold(told)
    }

    /// Takes one request for the task: [`Admission::Spent`] when all [`REQUESTS_PER_TASK`] are
    /// spent. The answer carries what the budget has to say that `told` (the asking client's)
    /// was not told yet: usually nothing.
    pub fn take(&self, key: KeyDigest, task_id: i64, told: &NoticesTold) -> Taken {
        let admission = self.admit(key, task_id);
        // After counting: a file that failed just now is said on this very answer.
        Taken { admission, notice: self.notices.untold(told) }
    }

    fn admit(&self, key: KeyDigest, task_id: i64) -> Admission {
        #[cfg(any(unix, windows))]
        if let Some(shared) = &self.shared {
            if let Some(admission) = self.with_shared(shared, |file| file.take(key, task_id)) {
                return admission;
            }
        }
        lock(&self.tasks).take(key, task_id, Instant::now())
    }

    /// Runs `op` on the shared file, reopening it in a forked child first; on an I/O error the
    /// file is given up for good (the process counts alone from then on, and says so to each
    /// reader once).
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
                    self.notices.add(notice::not_shared(&format!(
                        "the shared file cannot be used in this forked process ({why})"
                    )));
                    None
                }
            };
        }
        let current = slot.as_ref()?;
        match op(&current.file) {
            Ok(value) => Some(value),
            Err(error) => {
                self.notices.add(notice::no_longer_shared(&format!(
                    "the shared file {} failed ({error})",
                    current.file.path().display()
                )));
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
        lock(&self.tasks).sent(key, task_id)
    }

    /// Tasks in the process table (not the shared file's).
    pub fn tracked(&self) -> usize {
        lock(&self.tasks).len()
    }
}

/// The account guard's stops live where the counts do: in the shared file while it serves,
/// else in the process (a file that fails is given up for the stops as for the counts).
impl guard::Store for Budget {
    fn any(&self) -> bool {
        #[cfg(any(unix, windows))]
        if let Some(shared) = &self.shared {
            if let Some(any) = self.with_shared(shared, |file| file.any_stop()) {
                return any;
            }
        }
        self.stops.any()
    }

    fn get(&self, key: KeyDigest, stop: guard::policy::Stop) -> Option<guard::policy::StopState> {
        #[cfg(any(unix, windows))]
        if let Some(shared) = &self.shared {
            if let Some(state) = self.with_shared(shared, |file| file.stop(key, stop)) {
                return state;
            }
        }
        self.stops.get(key, stop)
    }

    fn update(
        &self,
        key: KeyDigest,
        stop: guard::policy::Stop,
        change: &mut dyn FnMut(Option<guard::policy::StopState>) -> Option<guard::policy::StopState>,
    ) {
        #[cfg(any(unix, windows))]
        if let Some(shared) = &self.shared {
            if self.with_shared(shared, |file| file.update_stop(key, stop, &mut *change)).is_some() {
                return;
            }
        }
        self.stops.update(key, stop, change)
    }
}

/// The shared file's default place, or why none can be trusted.
fn default_path() -> Result<PathBuf, String> {
    #[cfg(any(unix, windows))]
    return crate::budget::file::default_path();
    #[cfg(not(any(unix, windows)))]
    return Ok(PathBuf::new());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_121st_request_is_refused() {
        let budget = Budget::default();
        let told = NoticesTold::default();
        let key = KeyDigest::of("k", "u");
        let take = |key, task_id| budget.take(key, task_id, &told).admission;
        for n in 1..=REQUESTS_PER_TASK {
            assert_eq!(take(key, 5), Admission::Granted { nth: n });
        }
        assert_eq!(take(key, 5), Admission::Spent { sent: REQUESTS_PER_TASK });
        assert_eq!(take(key, 6), Admission::Granted { nth: 1 }, "other tasks are counted apart");
        let other = KeyDigest::of("other key", "u");
        assert_eq!(take(other, 5), Admission::Granted { nth: 1 }, "other accounts are counted apart");
    }

    #[test]
    fn the_environment_chooses_the_budget() {
        let (key, told) = (KeyDigest::of("k", "u"), NoticesTold::default());
        assert!(!Budget::from_settings(Some("process".into()), None).is_shared());
        let relative = Budget::from_settings(None, Some("budget-file".into()));
        assert!(!relative.is_shared());
        assert!(relative.take(key, 1, &told).notice.unwrap().contains("absolute"));
        assert!(relative.take(key, 1, &told).notice.is_none(), "told once");
        assert!(relative.take(key, 1, &NoticesTold::default()).notice.is_some(), "to each reader");
        let dir = std::env::temp_dir().join(format!("capmonster-budget-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = Budget::from_settings(Some("odd".into()), Some(dir.join("b").into()));
        assert!(file.is_shared());
        let taken = file.take(key, 3, &NoticesTold::default());
        assert_eq!(taken.admission, Admission::Granted { nth: 1 });
        assert!(taken.notice.unwrap().contains("\"odd\""));
        assert_eq!(Budget::from_settings(None, Some(dir.join("b").into())).sent(key, 3), 1);
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
                std::thread::spawn(move || {
                    let told = NoticesTold::default();
                    (0..50).filter(|_| budget.take(key, 9, &told).admission.is_granted()).count() as u32
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(granted, REQUESTS_PER_TASK);
    }
}
