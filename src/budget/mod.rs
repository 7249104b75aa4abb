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
//! Where the counts live is chosen once, when the first client is created (from the
//! environment, or from code before that: [`choose`](crate::budget::choose)):
//! - by default, a file that every process of the user shares
//!   ([`file`](crate::budget::file)), in a private directory
//!   (`$XDG_RUNTIME_DIR/capmonster/budget-v4`, else
//!   `<temporary directory>/capmonster-<uid>/budget-v4`, else the user's cache directory:
//!   [`file::default_path`](crate::budget::file::default_path) has the order and its reasons; on
//!   Windows `%LOCALAPPDATA%\capmonster\budget-v4`);
//! - `CAPMONSTER_BUDGET_FILE=/absolute/path`: that file instead;
//! - `CAPMONSTER_BUDGET=process`: a table in this process only (`process.rs`; each process
//!   counts alone);
//! - `CAPMONSTER_BUDGET=redis://[user:password@]host:port/db` (or `rediss://` for TLS): in
//!   Redis, shared by every process of every host that names it ([`mod@redis`], with the
//!   `redis` cargo feature); the machine's file (as by default) stands in while Redis cannot
//!   be reached.
//!
//! A file that cannot be trusted or used makes the process count alone, and says why: a call
//! never fails because of the file. What the budget has to say (`notice.rs`: why it is not
//! shared, or what was repaired) comes back in a call's report, once to each client (each holds
//! a [`NoticesTold`](crate::budget::NoticesTold)): the first report of every client's calls
//! (any call that got past its arguments' checks) carries it, and no later one repeats it.
//!
//! A task the service disowned (`disowned.rs`) keeps that final answer where its count is, and
//! every later take of it answers with it, sending nothing; a task createTask made is
//! registered, so that the account guard's wrong-id pause (for unknown tasks) never holds it.
//!
//! Bounds: the process table keeps at least [`MIN_TRACKED`](crate::budget::MIN_TRACKED) tasks
//! and is pruned at [`HIGH_WATER`](crate::budget::HIGH_WATER); the file's table is fixed at
//! [`CAPACITY`](crate::budget::file::CAPACITY) tasks; both forget first the tasks idle for
//! [`IDLE_EXPIRY`](crate::budget::IDLE_EXPIRY). Locks are held only to count, never across a
//! request.

mod admission;
pub mod disowned;
#[cfg(any(unix, windows))]
pub mod file;
pub mod guard;
mod key;
mod notice;
mod process;
#[cfg(feature = "redis")]
pub mod redis;

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use crate::api::error::Error;
pub use crate::api::REQUESTS_PER_TASK;
pub use admission::{Admission, IDLE_EXPIRY};
pub use disowned::{Disowned, FinalAnswer};
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
    /// Every access reads it (threads never wait for each other there); only a forked child
    /// reopening it, or giving it up, writes.
    shared: Option<RwLock<Option<Shared>>>,
    /// Why the budget is not (or no longer) shared, or what was repaired: told once to each
    /// reader.
    notices: Notices,
    /// Redis, when `CAPMONSTER_BUDGET` names it: asked first by every operation; the file
    /// (else the process) answers while it cannot be reached.
    #[cfg(feature = "redis")]
    redis: Option<self::redis::RedisStore>,
}

/// The answer to [`Budget::take`]: whether the request may be sent (or the account guard's
/// answer, when it holds the call back), and what the budget has to say that this reader was
/// not told yet.
#[derive(Debug, PartialEq)]
pub struct Taken {
    pub admission: Result<Admission, Error>,
    pub notice: Option<String>,
}

/// What [`Budget::take`] asks the account guard before it counts a getTaskResult. Neither is
/// asked while no stop is kept (the usual case: the call then reads one word of the guard).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Some stop is kept, for some key: may this call go?
    StopsKept,
    /// And the task is one the budget does not know (a slot is about to be given to it).
    UnknownTask,
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

/// Where the counts live, as chosen from code ([`choose`]) before the first client.
struct Choice {
    /// The budget was made: too late to choose.
    made: bool,
    /// A value of `CAPMONSTER_BUDGET`, taken in its place; `None`: the environment's.
    kind: Option<String>,
}

static CHOICE: Mutex<Choice> = Mutex::new(Choice { made: false, kind: None });

/// Chooses where the counts live, as `CAPMONSTER_BUDGET` would and in its place: `"shared"`
/// (the machine's file), `"process"`, or a `redis://...` / `rediss://...` URL; `None` goes back to
/// the environment's choice. Only before the first client is created, when the budget is made:
/// later it is an error, and the budget stays as it is. A URL is checked here, not reached: an
/// unreachable Redis is said in the first client's first report, as for the variable.
pub fn choose(kind: Option<&str>) -> Result<(), Error> {
    if let Some(kind) = kind {
        check_kind(kind)?;
    }
    let mut choice = lock(&CHOICE);
    if choice.made {
        return Err(Error::invalid_argument(
            "the request budget's store is chosen before the first client is created, and a client was already created: the budget stays as it is",
        ));
    }
    choice.kind = kind.map(str::to_owned);
    Ok(())
}

const REDIS_SCHEMES: [&str; 3] = ["redis://", "rediss://", "redis+unix://"];

/// Whether `kind` is a value [`choose`] takes; a URL's text never goes into the message (it
/// may hold a password).
fn check_kind(kind: &str) -> Result<(), Error> {
    match kind {
        "shared" | "process" => Ok(()),
        url if REDIS_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) => check_redis_url(url),
        other => Err(Error::invalid_argument(format!(
            "budget {:?} is none of \"shared\", \"process\", redis://... or rediss://...",
            crate::api::text::truncate(other, 64)
        ))),
    }
}

#[cfg(feature = "redis")]
fn check_redis_url(url: &str) -> Result<(), Error> {
    self::redis::RedisStore::open(url).map(drop).map_err(|why| Error::invalid_argument(format!("budget: {why}")))
}

#[cfg(not(feature = "redis"))]
fn check_redis_url(_url: &str) -> Result<(), Error> {
    Err(Error::invalid_argument(
        "budget: this build of the library has no Redis store (its cargo feature redis is off)",
    ))
}

/// The budget shared by every client in the process; its kind is the one chosen from code
/// ([`choose`]), else read from the environment, the first time (the library calls this when
/// the first client is created).
pub fn global() -> &'static Budget {
    static GLOBAL: LazyLock<Budget> = LazyLock::new(|| {
        let chosen = {
            let mut choice = lock(&CHOICE);
            choice.made = true;
            choice.kind.take()
        };
        // The library's own unit tests count in the process: they never open the user's file
        // (the integration tests and the C, Go and C# tests each choose a file of their own).
        if cfg!(test) {
            return Budget::default();
        }
        let kind = chosen.or_else(|| std::env::var("CAPMONSTER_BUDGET").ok());
        Budget::from_settings(kind, std::env::var_os("CAPMONSTER_BUDGET_FILE"))
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
        #[allow(unused_mut)]
        let mut budget = Budget::default();
        match kind.as_deref() {
            Some("process") => return budget,
            None | Some("") | Some("shared") => {}
            Some(url) if REDIS_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) => budget.use_redis(url),
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

    /// Counts in the Redis `url` names (the file stays, for its outages); the notice of a URL
    /// that cannot be used never repeats it (it may hold a password).
    #[cfg(feature = "redis")]
    fn use_redis(&mut self, url: &str) {
        match self::redis::RedisStore::open(url) {
            Ok(store) => self.redis = Some(store),
            Err(why) => self.notices.add(format!(
                "CAPMONSTER_BUDGET names Redis, but {why}: the request budget and the account guard are shared in this machine's file only"
            )),
        }
    }

    #[cfg(not(feature = "redis"))]
    fn use_redis(&mut self, _url: &str) {
        self.notices.add(
            "CAPMONSTER_BUDGET names Redis, but this build of the library has no Redis store (its cargo feature redis is off): the request budget and the account guard are shared in this machine's file only".to_owned(),
        );
    }

    /// How messages name the Redis the budget counts in (never its password), when it does.
    pub fn redis(&self) -> Option<&str> {
        #[cfg(feature = "redis")]
        return self.redis.as_ref().map(|redis| redis.shown());
        #[cfg(not(feature = "redis"))]
        return None;
    }

    /// Whether the budget counts in Redis now (it names one, and the last operation there
    /// succeeded).
    pub fn in_redis(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.redis.as_ref().is_some_and(|redis| redis.is_up());
        #[cfg(not(feature = "redis"))]
        return false;
    }

    #[cfg(any(unix, windows))]
    fn open_shared(mut self, path: PathBuf, default_location: bool) -> Budget {
        match crate::budget::file::BudgetFile::open(&path, default_location) {
            Ok((file, note)) => {
                if let Some(note) = note {
                    self.notices.add(note);
                }
                self.shared = Some(RwLock::new(Some(Shared { file, default_location })));
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
        self.shared.as_ref().is_some_and(|shared| read(shared).is_some())
    }

    /// What the budget has to say that `told` (a client's) was not told yet: usually nothing,
    /// for two atomic loads. Every call of a client asks, so its first report says it.
    #[inline]
    pub fn untold(&self, told: &NoticesTold) -> Option<String> {
        self.notices.untold(told)
    }

    /// Takes one request for the task: [`Admission::Spent`] when all [`REQUESTS_PER_TASK`] are
    /// spent, [`Admission::Disowned`] (nothing counted) when the service disowned the task.
    /// While the account guard keeps any stop, `guard` is asked first ([`Ask`]), and its error
    /// is the answer. The answer carries what the budget has to say that `told` (the asking
    /// client's) was not told yet: usually nothing.
    ///
    /// Cost of a call with no stop kept, of a task the file holds: one check of the file (one
    /// `fstat`), one word of the guard read, one compare-and-swap on the task's slot; no lock.
    pub fn take(
        &self,
        key: KeyDigest,
        task_id: i64,
        told: &NoticesTold,
        guard: &mut dyn FnMut(Ask) -> Result<(), Error>,
    ) -> Taken {
        let admission = self.admit(key, task_id, guard);
        // After counting: a file that failed just now is said on this very answer.
        Taken { admission, notice: self.notices.untold(told) }
    }

    fn admit(
        &self,
        key: KeyDigest,
        task_id: i64,
        guard: &mut dyn FnMut(Ask) -> Result<(), Error>,
    ) -> Result<Admission, Error> {
        // Each question is asked once, even when Redis fails between two and the file asks
        // again: a probe's lease taken for the first answer is this call's.
        let mut asked = [false; 2];
        let guard = &mut |ask: Ask| {
            if std::mem::replace(&mut asked[ask as usize], true) {
                return Ok(());
            }
            guard(ask)
        };
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            if let Some(admitted) = self.admit_in_redis(redis, key, task_id, guard) {
                return admitted;
            }
        }
        self.admit_here(key, task_id, guard)
    }

    /// [`admit`](Budget::admit) in Redis: `None` when it failed (the machine answers).
    #[cfg(feature = "redis")]
    fn admit_in_redis(
        &self,
        redis: &self::redis::RedisStore,
        key: KeyDigest,
        task_id: i64,
        guard: &mut dyn FnMut(Ask) -> Result<(), Error>,
    ) -> Option<Result<Admission, Error>> {
        if let self::redis::Polled::Found(admission) = redis.poll(&self.notices, key, task_id)? {
            return Some(Ok(admission));
        }
        if let Err(refused) = guard(Ask::StopsKept) {
            return Some(Err(refused));
        }
        if let Some(admission) = redis.take_known(&self.notices, key, task_id)? {
            return Some(Ok(admission));
        }
        if let Err(refused) = guard(Ask::UnknownTask) {
            return Some(Err(refused));
        }
        redis.insert(&self.notices, key, task_id).map(Ok)
    }

    /// [`admit`](Budget::admit) on this machine: in the shared file, else in the process.
    fn admit_here(
        &self,
        key: KeyDigest,
        task_id: i64,
        guard: &mut dyn FnMut(Ask) -> Result<(), Error>,
    ) -> Result<Admission, Error> {
        #[cfg(any(unix, windows))]
        if let Some(shared) = &self.shared {
            use crate::budget::file::Polled;
            let mut asked_stops = false;
            let polled = self.with_shared(shared, |file| file.poll(key, task_id));
            let missing = match polled {
                Some(Polled::Found(admission)) => return Ok(admission),
                Some(Polled::Missing) => Some(false),
                Some(Polled::StopsKept) => {
                    guard(Ask::StopsKept)?;
                    asked_stops = true;
                    match self.with_shared(shared, |file| file.take_known(key, task_id)) {
                        Some(Some(admission)) => return Ok(admission),
                        Some(None) => {
                            guard(Ask::UnknownTask)?;
                            Some(true)
                        }
                        None => None,
                    }
                }
                None => None,
            };
            if missing.is_some() {
                if let Some(admission) = self.with_shared(shared, |file| file.insert(key, task_id)) {
                    return Ok(admission);
                }
            }
            // The file failed just now: the process counts alone, and the guard keeps its
            // stops here too.
            return self.admit_in_process(key, task_id, guard, asked_stops || missing == Some(true));
        }
        self.admit_in_process(key, task_id, guard, false)
    }

    /// [`admit`](Budget::admit) in the process's table; `asked` when the guard was asked already.
    fn admit_in_process(
        &self,
        key: KeyDigest,
        task_id: i64,
        guard: &mut dyn FnMut(Ask) -> Result<(), Error>,
        asked: bool,
    ) -> Result<Admission, Error> {
        use guard::Store;
        if !asked && self.stops.any() {
            guard(Ask::StopsKept)?;
            if !lock(&self.tasks).knows(key, task_id) {
                guard(Ask::UnknownTask)?;
            }
        }
        Ok(lock(&self.tasks).take(key, task_id, Instant::now()))
    }

    /// Takes one request for a task the service disowned all the same (with
    /// `CAPMONSTER_GUARD=off`, which answers nothing here): counted as any other.
    pub fn take_disowned(&self, key: KeyDigest, task_id: i64) -> Admission {
        #[cfg(feature = "redis")]
        if let Some(admission) = self.redis.as_ref().and_then(|redis| redis.take_disowned(&self.notices, key, task_id))
        {
            return admission;
        }
        #[cfg(any(unix, windows))]
        if let Some(shared) = &self.shared {
            match self.with_shared(shared, |file| file.take_disowned(key, task_id)) {
                Some(Some(admission)) => return admission,
                Some(None) => {
                    if let Some(admission) = self.with_shared(shared, |file| file.insert(key, task_id)) {
                        return admission;
                    }
                }
                None => {}
            }
        }
        lock(&self.tasks).take_disowned(key, task_id, Instant::now())
    }

    /// A task createTask made with the key: known to the budget from now on (the wrong-id
    /// pause never holds it), with no request counted. Never fails: a file that fails now is
    /// given up as for a count, and the task is kept in the process.
    pub fn register(&self, key: KeyDigest, task_id: i64) {
        #[cfg(feature = "redis")]
        if self.redis.as_ref().and_then(|redis| redis.register(&self.notices, key, task_id)).is_some() {
            return;
        }
        #[cfg(any(unix, windows))]
        if let Some(shared) = &self.shared {
            if self.with_shared(shared, |file| file.register(key, task_id)).is_some() {
                return;
            }
        }
        lock(&self.tasks).register(key, task_id, Instant::now());
    }

    /// The service disowned the task (`disowned.rs`): every later [`take`](Budget::take) for
    /// it answers [`Admission::Disowned`], in every process that shares the budget.
    pub fn disown(&self, key: KeyDigest, task_id: i64, disowned: Disowned) {
        #[cfg(feature = "redis")]
        if self.redis.as_ref().and_then(|redis| redis.disown(&self.notices, key, task_id, disowned)).is_some() {
            return;
        }
        #[cfg(any(unix, windows))]
        if let Some(shared) = &self.shared {
            if self.with_shared(shared, |file| file.disown(key, task_id, disowned)).is_some() {
                return;
            }
        }
        lock(&self.tasks).disown(key, task_id, disowned, Instant::now());
    }

    /// Runs `op` on the shared file, reopening it in a forked child first; on an I/O error the
    /// file is given up for good (the process counts alone from then on, and says so to each
    /// reader once). Threads share the read side: none waits for another here, except while a
    /// forked child reopens the file or the file is given up.
    #[cfg(any(unix, windows))]
    fn with_shared<T>(
        &self,
        shared: &RwLock<Option<Shared>>,
        op: impl FnOnce(&crate::budget::file::BudgetFile) -> std::io::Result<T>,
    ) -> Option<T> {
        self.with_file(shared, op, true)
    }

    /// [`with_shared`](Budget::with_shared), reopening the file first in a forked child when
    /// `may_reopen` (once: after a reopen it is called with `false`).
    #[cfg(any(unix, windows))]
    fn with_file<T>(
        &self,
        shared: &RwLock<Option<Shared>>,
        op: impl FnOnce(&crate::budget::file::BudgetFile) -> std::io::Result<T>,
        may_reopen: bool,
    ) -> Option<T> {
        let failed = {
            let current = read(shared);
            let file = &current.as_ref()?.file;
            if !file.opened_here() {
                if !may_reopen {
                    return None;
                }
                drop(current);
                self.reopen(shared);
                return self.with_file(shared, op, false);
            }
            match op(file) {
                Ok(value) => return Some(value),
                Err(error) => (error, file.path().display().to_string()),
            }
        };
        self.give_up(shared, failed);
        None
    }

    /// In a forked child: opens the file anew (the parent's open file shares its lock).
    #[cfg(any(unix, windows))]
    #[cold]
    fn reopen(&self, shared: &RwLock<Option<Shared>>) {
        let mut slot = shared.write().unwrap_or_else(PoisonError::into_inner);
        let Some(current) = slot.as_ref() else { return };
        if current.file.opened_here() {
            return; // another thread of the child reopened it
        }
        let (path, default_location) = (current.file.path().to_owned(), current.default_location);
        match crate::budget::file::BudgetFile::open(&path, default_location) {
            Ok((file, _)) => *slot = Some(Shared { file, default_location }),
            Err(why) => {
                // The parent's mapping is still this child's to read.
                self.carry_on_alone(&current.file);
                *slot = None;
                self.notices
                    .add(notice::not_shared(&format!("the shared file cannot be used in this forked process ({why})")));
            }
        }
    }

    /// The file failed: given up (once, said once).
    #[cfg(any(unix, windows))]
    #[cold]
    fn give_up(&self, shared: &RwLock<Option<Shared>>, (error, path): (std::io::Error, String)) {
        let mut slot = shared.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(given_up) = slot.take() {
            self.carry_on_alone(&given_up.file);
            self.notices.add(notice::no_longer_shared(&format!("the shared file {path} failed ({error})")));
        }
    }

    /// The process's tables take over from the file: its counts and stops are copied in, so
    /// that a task it had counted to the limit stays spent and a stopped key stays stopped.
    /// Called with the file's slot locked for writing, so that no thread of the process counts
    /// in its own table before the copy. If the mapping cannot be read, the process starts
    /// from nothing, as before (the notice says it counts alone).
    #[cfg(any(unix, windows))]
    fn carry_on_alone(&self, file: &crate::budget::file::BudgetFile) {
        use guard::Store;
        let Ok(mut snapshot) = file.snapshot() else { return };
        // The most recently used first: the process table keeps at least MIN_TRACKED of them.
        snapshot.tasks.sort_unstable_by_key(|task| task.idle_secs);
        snapshot.tasks.truncate(MIN_TRACKED);
        let now = Instant::now();
        let mut tasks = lock(&self.tasks);
        for task in &snapshot.tasks {
            let last_used = now.checked_sub(std::time::Duration::from_secs(task.idle_secs)).unwrap_or(now);
            tasks.carry_over(task.key, task.task_id, task.requests, last_used, task.disowned);
        }
        drop(tasks);
        for kept in snapshot.stops {
            self.stops.update(kept.key, kept.stop, &mut |_| Some(kept.state.clone()));
        }
    }

    /// Requests counted so far for the task (0 when unknown or forgotten).
    pub fn sent(&self, key: KeyDigest, task_id: i64) -> u32 {
        #[cfg(feature = "redis")]
        if let Some(sent) = self.redis.as_ref().and_then(|redis| redis.sent(&self.notices, key, task_id)) {
            return sent;
        }
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

fn read(shared: &RwLock<Option<Shared>>) -> std::sync::RwLockReadGuard<'_, Option<Shared>> {
    // A poisoned lock only means a thread panicked while reopening; what it holds is whole.
    shared.read().unwrap_or_else(PoisonError::into_inner)
}

/// The account guard's stops live where the counts do: in the shared file while it serves,
/// else in the process (a file that fails is given up for the stops as for the counts).
impl guard::Store for Budget {
    fn any(&self) -> bool {
        #[cfg(feature = "redis")]
        if let Some(any) = self.redis.as_ref().and_then(|redis| redis.any_stop(&self.notices)) {
            return any;
        }
        #[cfg(any(unix, windows))]
        if let Some(shared) = &self.shared {
            if let Some(any) = self.with_shared(shared, |file| file.any_stop()) {
                return any;
            }
        }
        self.stops.any()
    }

    fn get(&self, key: KeyDigest, stop: guard::policy::Stop) -> Option<guard::policy::StopState> {
        #[cfg(feature = "redis")]
        if let Some(state) = self.redis.as_ref().and_then(|redis| redis.stop(&self.notices, key, stop)) {
            return state;
        }
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
        #[cfg(feature = "redis")]
        if self.redis.as_ref().and_then(|redis| redis.update_stop(&self.notices, key, stop, &mut *change)).is_some() {
            return;
        }
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
        let take = |key, task_id| budget.take(key, task_id, &told, &mut |_| Ok(())).admission.unwrap();
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
        assert!(relative.take(key, 1, &told, &mut |_| Ok(())).notice.unwrap().contains("absolute"));
        assert!(relative.take(key, 1, &told, &mut |_| Ok(())).notice.is_none(), "told once");
        assert!(relative.take(key, 1, &NoticesTold::default(), &mut |_| Ok(())).notice.is_some(), "to each reader");
        let dir = std::env::temp_dir().join(format!("capmonster-budget-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = Budget::from_settings(Some("odd".into()), Some(dir.join("b").into()));
        assert!(file.is_shared());
        let taken = file.take(key, 3, &NoticesTold::default(), &mut |_| Ok(()));
        assert_eq!(taken.admission, Ok(Admission::Granted { nth: 1 }));
        assert!(taken.notice.unwrap().contains("\"odd\""));
        assert_eq!(Budget::from_settings(None, Some(dir.join("b").into())).sent(key, 3), 1);
        // Closed first: Windows does not remove a directory while a file in it is open.
        drop(file);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_guard_is_asked_only_while_a_stop_is_kept_and_disowned_tasks_are_answered() {
        use guard::policy::{Stop, StopState};
        use guard::Store;
        let dir = std::env::temp_dir().join(format!("capmonster-budget-asks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shared = Budget::from_settings(None, Some(dir.join("b").into()));
        assert!(shared.is_shared());
        for budget in [Budget::default(), shared] {
            let (key, told) = (KeyDigest::of("asks", "u"), NoticesTold::default());
            let mut asked = Vec::new();
            let mut take = |budget: &Budget, task_id, refuse: bool| {
                budget
                    .take(key, task_id, &told, &mut |ask| {
                        asked.push(ask);
                        if refuse {
                            Err(Error::new(crate::api::error::Code::Api, "held back"))
                        } else {
                            Ok(())
                        }
                    })
                    .admission
            };
            assert_eq!(take(&budget, 1, false), Ok(Admission::Granted { nth: 1 }));
            budget.register(key, 2);
            assert_eq!(budget.sent(key, 2), 0, "registered: known, nothing counted");
            budget.update(key, Stop::Key, &mut |_| Some(StopState::start("ERROR_IP_BANNED", None, 1)));
            assert_eq!(take(&budget, 1, false), Ok(Admission::Granted { nth: 2 }));
            assert_eq!(take(&budget, 2, false), Ok(Admission::Granted { nth: 1 }));
            assert_eq!(take(&budget, 3, false), Ok(Admission::Granted { nth: 1 }));
            assert!(take(&budget, 4, true).is_err());
            assert_eq!(budget.sent(key, 4), 0, "held back: nothing counted");
            use Ask::{StopsKept, UnknownTask};
            assert_eq!(asked, [StopsKept, StopsKept, StopsKept, UnknownTask, StopsKept]);

            let disowned = Disowned { answer: FinalAnswer::NoSuchTask, at_unix: 7 };
            budget.disown(key, 1, disowned);
            budget.disown(key, 9, disowned);
            for task_id in [1, 9] {
                let taken = budget.take(key, task_id, &told, &mut |_| Ok(())).admission;
                assert_eq!(taken, Ok(Admission::Disowned(disowned)));
            }
            assert_eq!(budget.sent(key, 1), 2, "not counted");
        }
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
                    (0..50)
                        .filter(|_| budget.take(key, 9, &told, &mut |_| Ok(())).admission.unwrap().is_granted())
                        .count() as u32
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(granted, REQUESTS_PER_TASK);
    }

    /// A process that stops using the file goes on from its counts and stops: a task it
    /// counted to 117 has 3 requests left, not 120, and a stopped key stays stopped.
    #[cfg(any(unix, windows))]
    #[test]
    fn a_process_that_gives_up_the_file_goes_on_from_its_counts() {
        use guard::policy::{Stop, StopState};
        use guard::Store;
        let path = crate::budget::file::testing::scratch("give-up");
        let budget = Budget::from_settings(None, Some(path.as_os_str().to_owned()));
        assert!(budget.is_shared());
        let (key, told) = (KeyDigest::of("k", "give up"), NoticesTold::default());
        let take = |task_id| budget.take(key, task_id, &told, &mut |_| Ok(())).admission.unwrap();
        for _ in 0..117 {
            assert!(take(1).is_granted());
        }
        budget.register(key, 2);
        let stopped = StopState::start("ERROR_IP_BANNED", None, 1);
        budget.update(KeyDigest::of("stopped", "give up"), Stop::Key, &mut |_| Some(stopped.clone()));
        assert!(!budget.stops.any(), "kept in the file while it serves");

        budget.give_up(budget.shared.as_ref().unwrap(), (std::io::Error::other("test"), "f".into()));
        assert!(!budget.is_shared());
        assert!(budget.stops.any(), "the file's stop is the process's now");
        let mut granted = 0;
        while take(1).is_granted() {
            granted += 1;
        }
        assert_eq!(granted, 3, "counted on from the file's 117");
        assert_eq!(budget.sent(key, 2), 0);
        assert!(lock(&budget.tasks).knows(key, 2), "a registered task stays known");
    }
}
