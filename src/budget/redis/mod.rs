//! The request budget and the account guard in Redis (`CAPMONSTER_BUDGET=redis://...` or
//! `rediss://...`), for farms whose processes run on several machines with one key: the same
//! operations as the machine's file ([`file`](crate::budget::file)), keyed by the same digests
//! (never a key), in keys under [`PREFIX`] (the schema: `docs/redis.md`).
//!
//! - A getTaskResult's unit is checked and counted in one Lua script on the server
//!   ([`COUNT`], sent as `EVALSHA`, `EVAL` when the server does not know it yet), so no host or
//!   process ever counts a 121st; a task's hash expires [`IDLE_EXPIRY`] after its last use
//!   (the file's idle rule).
//! - A stop is changed under `WATCH` of the stops' hashes (`MULTI`/`EXEC`, tried again when
//!   another process changed them meanwhile, at most [`WATCH_ATTEMPTS`] times).
//! - When Redis fails or does not answer within [`TIMEOUT`] (a connection: [`CONNECT_TIMEOUT`]),
//!   the call uses the machine's file
//!   (the budget's), and the budget says so once to each client; from then on one call a
//!   [`RETRY_EVERY`] tries Redis again (the others go straight to the file, so an outage costs
//!   them nothing), and the first that succeeds says that Redis answers again.
//!
//! The URL's password is used to connect and nowhere else: messages and log lines name Redis
//! by `RedisStore::shown` (scheme, host, port, database), and a Redis error's text is said
//! with the password and user name blotted out.

mod pool;
mod records;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::redis::{Connection, ConnectionAddr, Script};

use crate::api::REQUESTS_PER_TASK;
use crate::budget::admission::{Admission, IDLE_EXPIRY};
use crate::budget::disowned::Disowned;
use crate::budget::guard::policy::{Stop, StopState, BAN_LENGTH};
use crate::budget::key::KeyDigest;
use crate::budget::notice::{self, Notices};
use crate::log::{self, Level};
use pool::{Failure, Pool};

pub use pool::{CONNECT_TIMEOUT, MAX_CONNECTIONS, TIMEOUT};

/// What every key of the library in Redis starts with: a Redis shared with other programs
/// (or a later version of this layout, `v2`) is safe.
pub const PREFIX: &str = "capmonster:v1:";
/// While Redis is down, how often one call tries it again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How long the stops' hashes outlive their last change: twice a ban's length. A stop is
/// changed at the latest when its cool-down (at most a ban's length) ends and a call probes;
/// one nobody called about for that long is forgotten, as the file forgets a quiet one.
pub const STOPS_EXPIRY: Duration = Duration::from_secs(2 * 10 * 60);
/// Times a change of a stop is tried when other processes keep changing the stops meanwhile
/// (each after a pause of up to 0.1 ms times the attempts so far, at random, so that the
/// processes of a storm that all heard the same answer do not keep colliding); then the change
/// is made in the file. 8 stores changing one stop 25 times each at once lose none (tests).
pub const WATCH_ATTEMPTS: usize = 32;
/// Most stops the held stops' hash keeps, and the wrong-id counts' hash (the file's bound).
pub const STOP_FIELDS: usize = crate::budget::file::STOP_RECORDS;
/// Most proxy stops kept (half, as in the file).
pub const PROXY_FIELDS: usize = STOP_FIELDS / 2;

/// Counts one getTaskResult of a task, atomically. `KEYS[1]` the task's hash (`s` the requests
/// counted, `d` the service's final answer when it disowned the task), `KEYS[2]` the held stops'
/// hash. `ARGV[1]` the mode: `poll` (answers 3 while any stop is kept, counting nothing), `known`
/// (answers 4 for a task Redis does not hold, counting nothing), `insert`, or `force` (counts a
/// disowned task too); `ARGV[2]` the limit; `ARGV[3]` the expiry in seconds. Answers {0, nth}
/// granted, {1, sent} spent, {2, word} disowned.
pub const COUNT: &str = r"
local mode = ARGV[1]
if mode == 'poll' and redis.call('EXISTS', KEYS[2]) == 1 then return {3, 0} end
if mode == 'known' and redis.call('EXISTS', KEYS[1]) == 0 then return {4, 0} end
local limit = tonumber(ARGV[2])
local disowned = redis.call('HGET', KEYS[1], 'd')
local answer
if disowned and mode ~= 'force' then
  answer = {2, tonumber(disowned) or 0}
else
  local sent = tonumber(redis.call('HGET', KEYS[1], 's') or '0') or limit
  if sent >= limit then
    answer = {1, limit}
  else
    redis.call('HSET', KEYS[1], 's', sent + 1)
    answer = {0, sent + 1}
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return answer
";

/// Registers a task createTask made (`ARGV[1]` `register`: known, nothing counted; a task held
/// already is left as it is) or keeps the service's final answer about it (`ARGV[1]` `disown`,
/// `ARGV[2]` the answer's word; a task not held yet is counted 1, as the file does). `ARGV[3]` the
/// expiry in seconds.
pub const TASK: &str = r"
if ARGV[1] == 'register' then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
  redis.call('HSET', KEYS[1], 's', 0)
else
  redis.call('HSET', KEYS[1], 'd', ARGV[2])
  redis.call('HSETNX', KEYS[1], 's', 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
";

/// The budget's and the guard's store in one Redis.
pub(crate) struct RedisStore {
    pool: Pool,
    shown: String,
    /// The URL's user name and password: blotted out of Redis's error texts.
    secrets: Vec<String>,
    host: u64,
    count: Script,
    task: Script,
    held: String,
    counts: String,
    /// Whether the last operation failed (an outage said, its end not yet).
    down: AtomicBool,
    /// While down: when (milliseconds since `epoch`) the next call may try Redis.
    retry_at_ms: AtomicU64,
    epoch: Instant,
}

/// Names the Redis only as messages do: the client inside would show the password.
impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("shown", &self.shown).field("up", &self.is_up()).finish_non_exhaustive()
    }
}

/// A stop's probe lease as Redis keeps it: the host and process id of the prober.
type Lease = (u64, u32);

/// What the first look of a getTaskResult found in Redis.
pub(crate) enum Polled {
    Found(Admission),
    StopsKept,
}

impl RedisStore {
    /// The store for a `redis://`, `rediss://` or `redis+unix://` URL; nothing is connected
    /// yet. The error names what is wrong, never the URL (it may hold a password).
    pub fn open(url: &str) -> Result<RedisStore, String> {
        let client = ::redis::Client::open(url).map_err(|error| {
            format!("it is not a Redis URL the library can use ({:?}; expected redis://[user:password@]host:port/db or rediss://...)", error.kind())
        })?;
        let info = client.get_connection_info();
        let settings = info.redis_settings();
        let shown = match info.addr() {
            ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{}", settings.db()),
            ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{}", settings.db()),
            ConnectionAddr::Unix(path) => format!("redis+unix://{}?db={}", path.display(), settings.db()),
            _ => format!("redis ({})", info.addr()),
        };
        let secrets = [settings.password(), settings.username()]
            .into_iter()
            .flatten()
            .filter(|s| s.len() >= 3)
            .map(str::to_owned)
            .collect();
        Ok(RedisStore {
            pool: Pool::new(client),
            shown,
            secrets,
            host: records::this_host(),
            count: Script::new(COUNT),
            task: Script::new(TASK),
            held: format!("{PREFIX}stops"),
            counts: format!("{PREFIX}wrong-ids"),
            down: AtomicBool::new(false),
            retry_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// How messages name this Redis: scheme, host, port and database, never a user or password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether the last operation on Redis succeeded.
    pub fn is_up(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    fn task_key(&self, key: KeyDigest, task_id: i64) -> String {
        format!("{PREFIX}task:{:016x}:{task_id}", key.value())
    }

    /// Runs `op` on Redis, unless Redis is down and it is not this call's turn to try it:
    /// `None` then, and when it fails (the caller uses the file). An outage and its end are
    /// told (`notices`) once each.
    fn run<T>(&self, notices: &Notices, op: impl FnOnce(&mut Connection) -> Result<T, Failure>) -> Option<T> {
        let now = self.epoch.elapsed().as_millis() as u64;
        let retry_ms = RETRY_EVERY.as_millis() as u64;
        if self.down.load(Ordering::Acquire) {
            let due = self.retry_at_ms.load(Ordering::Acquire);
            let mine = now >= due
                && self.retry_at_ms.compare_exchange(due, now + retry_ms, Ordering::AcqRel, Ordering::Relaxed).is_ok();
            if !mine {
                return None;
            }
        }
        match self.pool.with(op) {
            Ok(value) => {
                if self.down.swap(false, Ordering::AcqRel) {
                    notices.add(notice::redis_back(&self.shown));
                    log::log(Level::Warn, "budget.redis", || format!("{} answers again", self.shown));
                }
                Some(value)
            }
            Err(Failure::Busy) => None,
            Err(Failure::Redis(error)) => {
                self.retry_at_ms.store(now + retry_ms, Ordering::Release);
                if !self.down.swap(true, Ordering::AcqRel) {
                    let why = self.blot(&error.to_string());
                    log::log(Level::Warn, "budget.redis", || format!("{} failed: {why}", self.shown));
                    notices.add(notice::redis_unreachable(&self.shown, &why));
                }
                None
            }
        }
    }

    /// A Redis error's text with the URL's secrets blotted out (a server may echo a user name).
    fn blot(&self, text: &str) -> String {
        let mut text = crate::api::text::truncate(text, 200).to_owned();
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }

    fn count_as(&self, con: &mut Connection, key: KeyDigest, task_id: i64, mode: &str) -> Result<(i64, i64), Failure> {
        let (kind, value): (i64, i64) = self
            .count
            .key(self.task_key(key, task_id))
            .key(&self.held)
            .arg(mode)
            .arg(REQUESTS_PER_TASK)
            .arg(IDLE_EXPIRY.as_secs())
            .invoke(con)?;
        Ok((kind, value))
    }

    /// The first look of a getTaskResult: any stop kept (nothing counted), else counted.
    pub fn poll(&self, notices: &Notices, key: KeyDigest, task_id: i64) -> Option<Polled> {
        let (kind, value) = self.run(notices, |con| self.count_as(con, key, task_id, "poll"))?;
        Some(match admission(kind, value) {
            Some(admission) => Polled::Found(admission),
            None => Polled::StopsKept,
        })
    }

    /// Counts a task Redis holds; `Some(None)` when it holds none (nothing counted).
    pub fn take_known(&self, notices: &Notices, key: KeyDigest, task_id: i64) -> Option<Option<Admission>> {
        let (kind, value) = self.run(notices, |con| self.count_as(con, key, task_id, "known"))?;
        Some(admission(kind, value))
    }

    /// Counts a task, holding it from now on if it did not.
    pub fn insert(&self, notices: &Notices, key: KeyDigest, task_id: i64) -> Option<Admission> {
        let (kind, value) = self.run(notices, |con| self.count_as(con, key, task_id, "insert"))?;
        admission(kind, value)
    }

    /// Counts a task even though the service disowned it (`CAPMONSTER_GUARD=off`).
    pub fn take_disowned(&self, notices: &Notices, key: KeyDigest, task_id: i64) -> Option<Admission> {
        let (kind, value) = self.run(notices, |con| self.count_as(con, key, task_id, "force"))?;
        admission(kind, value)
    }

    fn task_op(&self, notices: &Notices, key: KeyDigest, task_id: i64, op: &str, word: u64) -> Option<()> {
        self.run(notices, |con| {
            let _: i64 =
                self.task.key(self.task_key(key, task_id)).arg(op).arg(word).arg(IDLE_EXPIRY.as_secs()).invoke(con)?;
            Ok(())
        })
    }

    /// A task createTask made: known from now on, nothing counted.
    pub fn register(&self, notices: &Notices, key: KeyDigest, task_id: i64) -> Option<()> {
        self.task_op(notices, key, task_id, "register", 0)
    }

    /// Keeps the service's final answer about the task.
    pub fn disown(&self, notices: &Notices, key: KeyDigest, task_id: i64, disowned: Disowned) -> Option<()> {
        self.task_op(notices, key, task_id, "disown", disowned.word())
    }

    /// Requests counted for the task (0 when unknown or forgotten).
    pub fn sent(&self, notices: &Notices, key: KeyDigest, task_id: i64) -> Option<u32> {
        self.run(notices, |con| {
            let sent: Option<u32> = ::redis::cmd("HGET").arg(self.task_key(key, task_id)).arg("s").query(con)?;
            Ok(sent.unwrap_or(0).min(REQUESTS_PER_TASK))
        })
    }

    /// Whether any stop that holds calls back is kept, for any key.
    pub fn any_stop(&self, notices: &Notices) -> Option<bool> {
        self.run(notices, |con| Ok(::redis::cmd("EXISTS").arg(&self.held).query::<i64>(con)? == 1))
    }

    /// The scope's stop, if one is kept. A probe's lease taken on another machine names its
    /// process as unknown (0): it then holds until its time is up.
    pub fn stop(&self, notices: &Notices, scope: KeyDigest, stop: Stop) -> Option<Option<StopState>> {
        self.run(notices, |con| Ok(self.read_stop(con, scope, stop)?.map(|(state, _)| state)))
    }

    /// The stop as kept (with the lease's host and pid, raw) and as a caller of this host sees it.
    fn read_stop(
        &self,
        con: &mut Connection,
        scope: KeyDigest,
        stop: Stop,
    ) -> Result<Option<(StopState, Lease)>, Failure> {
        let field = records::field(scope, stop);
        let (held, counting): (Option<String>, Option<String>) =
            ::redis::pipe().hget(&self.held, &field).hget(&self.counts, &field).query(con)?;
        Ok(held.or(counting).as_deref().and_then(records::decode).map(|(mut state, host)| {
            let raw = (host, state.probe_pid);
            if host != self.host {
                state.probe_pid = 0;
            }
            (state, raw)
        }))
    }

    /// Changes the scope's stop (see `guard::Store::update`), under `WATCH` of both hashes.
    /// `None` when Redis failed, or the stops kept changing ([`WATCH_ATTEMPTS`]): the caller
    /// changes the file's instead.
    pub fn update_stop(
        &self,
        notices: &Notices,
        scope: KeyDigest,
        stop: Stop,
        change: &mut dyn FnMut(Option<StopState>) -> Option<StopState>,
    ) -> Option<()> {
        self.run(notices, |con| {
            let field = records::field(scope, stop);
            for attempt in 0..WATCH_ATTEMPTS {
                if attempt > 0 {
                    std::thread::sleep(jitter(attempt));
                }
                ::redis::cmd("WATCH").arg(&self.held).arg(&self.counts).exec(con)?;
                let kept = self.read_stop(con, scope, stop)?;
                let next = change(kept.as_ref().map(|(state, _)| state.clone()));
                let mut pipe = ::redis::pipe();
                pipe.atomic();
                if kept.is_some() {
                    pipe.hdel(&self.held, &field).ignore().hdel(&self.counts, &field).ignore();
                }
                if let Some(state) = next {
                    let target = if state.counting() { &self.counts } else { &self.held };
                    // A lease of another machine, left as it was, keeps naming its process.
                    let (host, pid) = match &kept {
                        Some((old, raw)) if state.probe_pid == 0 && state.probe_until_ms == old.probe_until_ms => *raw,
                        _ => (self.host, state.probe_pid),
                    };
                    let room = kept.is_some() || self.make_room(con, target, stop, &state, &mut pipe)?;
                    if room {
                        let line = records::encode(&StopState { probe_pid: pid, ..state }, host);
                        pipe.hset(target, &field, line).ignore();
                        pipe.expire(target, STOPS_EXPIRY.as_secs() as i64).ignore();
                    }
                } else if kept.is_none() {
                    ::redis::cmd("UNWATCH").exec(con)?;
                    return Ok(());
                }
                let done: Option<::redis::Value> = pipe.query(con)?;
                if done.is_some() {
                    return Ok(());
                }
            }
            Err(Failure::Busy)
        })
    }

    /// Before a new field in `target`: whether there is room, freeing quiet stops (and lines
    /// no writer makes) into `pipe` when the hash is full, as the file and the process do.
    fn make_room(
        &self,
        con: &mut Connection,
        target: &str,
        stop: Stop,
        state: &StopState,
        pipe: &mut ::redis::Pipeline,
    ) -> Result<bool, Failure> {
        let fields: usize = ::redis::cmd("HLEN").arg(target).query(con)?;
        let limit = if stop == Stop::Proxy { PROXY_FIELDS } else { STOP_FIELDS };
        if fields < limit {
            return Ok(true);
        }
        let all: Vec<(String, String)> = ::redis::cmd("HGETALL").arg(target).query(con)?;
        let quiet = state.since_ms.max(state.until_ms).saturating_sub(BAN_LENGTH.as_millis() as u64);
        let (mut left, mut proxies) = (all.len(), 0);
        for (field, line) in &all {
            let is_proxy = records::stop_of(field) == Some(Stop::Proxy);
            let freed = match records::decode(line) {
                None => true,
                Some((kept, _)) => {
                    (stop != Stop::Proxy || is_proxy) && kept.until_ms <= quiet && kept.probe_until_ms == 0
                }
            };
            if freed {
                pipe.hdel(target, field).ignore();
                left -= 1;
            } else if is_proxy {
                proxies += 1;
            }
        }
        Ok(left < STOP_FIELDS && (stop != Stop::Proxy || proxies < PROXY_FIELDS))
    }
}

/// A pause of up to 0.1 ms times `attempt`, at random (the clock's nanoseconds and the thread:
/// enough to part colliding processes, no generator needed).
fn jitter(attempt: usize) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    Duration::from_micros(hasher.finish() % (100 * attempt as u64 + 1))
}

/// The count script's answer as an admission; `None` for "stops kept" and "not held".
fn admission(kind: i64, value: i64) -> Option<Admission> {
    let value = u64::try_from(value).unwrap_or(0);
    match kind {
        0 => Some(Admission::Granted { nth: value as u32 }),
        1 => Some(Admission::Spent { sent: value as u32 }),
        // A word no answer makes is not believed: the task counts as spent rather than sent.
        2 => Some(Disowned::from_word(value).map_or(Admission::Spent { sent: REQUESTS_PER_TASK }, Admission::Disowned)),
        _ => None,
    }
}

#[cfg(test)]
mod secrets {
    use super::*;

    #[test]
    fn the_password_is_in_no_name_debug_output_or_error_text() {
        let store = RedisStore::open("rediss://farm-user:pass-word-42@redis.example:6380/3").unwrap();
        assert_eq!(store.shown(), "rediss://redis.example:6380/3");
        let debug = format!("{store:?}");
        assert!(debug.contains("rediss://redis.example:6380/3") && !debug.contains("pass-word-42"), "{debug}");
        let blotted = store.blot("WRONGPASS for farm-user with pass-word-42");
        assert_eq!(blotted, "WRONGPASS for *** with ***");
        let error = RedisStore::open("redis://:pass-word-42@[::1").unwrap_err();
        assert!(!error.contains("pass-word-42"), "{error}");
    }
}

/// Against a real `redis-server` (Debian's, as the integration tests use; started here on a
/// free loopback port, with a directory of its own and nothing kept on disk). Unix only: the
/// Windows tests run under Wine, with no Redis.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};

    struct Server(Child, u16, std::path::PathBuf);

    impl Server {
        fn start(name: &str) -> Server {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let dir = std::env::temp_dir().join(format!("capmonster-redis-unit-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server runs (scripts/install-deps.sh rust installs it)");
            let start = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(start.elapsed() < Duration::from_secs(10), "redis-server did not start");
                std::thread::sleep(Duration::from_millis(10));
            }
            Server(child, port, dir)
        }

        fn store(&self) -> RedisStore {
            RedisStore::open(&format!("redis://127.0.0.1:{}/0", self.1)).unwrap()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.2);
        }
    }

    /// Stores of their own (as processes on other hosts have) change one stop at once: no
    /// change is lost under `WATCH`.
    #[test]
    fn concurrent_changes_of_a_stop_are_never_lost() {
        let server = Server::start("watch");
        let scope = KeyDigest::of("watch", "u");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = server.store();
                std::thread::spawn(move || {
                    let notices = Notices::default();
                    for _ in 0..25 {
                        let changed = store.update_stop(&notices, scope, Stop::Key, &mut |kept| {
                            let mut state = kept.unwrap_or_else(|| StopState::start("ERROR_IP_BANNED", None, 1));
                            state.renewals += 1;
                            Some(state)
                        });
                        assert!(changed.is_some());
                    }
                    assert_eq!(notices.untold(&Default::default()), None, "no outage");
                })
            })
            .collect();
        threads.into_iter().for_each(|thread| thread.join().unwrap());
        let store = server.store();
        let notices = Notices::default();
        assert_eq!(store.stop(&notices, scope, Stop::Key).unwrap().unwrap().renewals, 200);
        assert_eq!(store.any_stop(&notices), Some(true));
        store.update_stop(&notices, scope, Stop::Key, &mut |_| None).unwrap();
        assert_eq!(store.any_stop(&notices), Some(false), "the last stop ended: the hash is gone");
    }

    #[test]
    fn the_stops_are_bounded_and_a_lease_of_another_host_holds_until_its_time() {
        let server = Server::start("bounds");
        let (store, notices) = (server.store(), Notices::default());
        let stop_at = |n: u64, now: u64| {
            let scope = KeyDigest::of(&n.to_string(), "u");
            store.update_stop(&notices, scope, Stop::Key, &mut |_| Some(StopState::start("E", None, now))).unwrap();
            store.stop(&notices, scope, Stop::Key).unwrap().is_some()
        };
        assert!((0..STOP_FIELDS as u64).all(|n| stop_at(n, 0)));
        assert!(!stop_at(10_000, 1), "full: a new stop is not kept");
        let late = 10 * BAN_LENGTH.as_millis() as u64;
        assert!(stop_at(10_001, late), "quiet stops made room");
        let fields: usize = store.pool.with(|con| Ok(::redis::cmd("HLEN").arg(&store.held).query(con)?)).ok().unwrap();
        assert_eq!(fields, 1, "every quiet stop was freed");

        // A lease written by another host names its process as unknown here, and keeps its
        // own host and process when a change leaves it.
        let scope = KeyDigest::of("leased", "u");
        let mut leased = StopState::start("E", None, 0);
        (leased.probe_until_ms, leased.probe_pid) = (u64::MAX, 4242);
        let line = records::encode(&leased, store.host ^ 1);
        let field = records::field(scope, Stop::Key);
        let () = store
            .pool
            .with(|con| Ok(::redis::cmd("HSET").arg(&store.held).arg(&field).arg(line).exec(con)?))
            .ok()
            .unwrap();
        assert_eq!(store.stop(&notices, scope, Stop::Key).unwrap().unwrap().probe_pid, 0);
        store
            .update_stop(&notices, scope, Stop::Key, &mut |kept| kept.map(|state| StopState { renewals: 3, ..state }))
            .unwrap();
        let raw: String =
            store.pool.with(|con| Ok(::redis::cmd("HGET").arg(&store.held).arg(&field).query(con)?)).ok().unwrap();
        assert_eq!(
            records::decode(&raw).map(|(state, host)| (state.probe_pid, state.renewals, host)),
            Some((4242, 3, store.host ^ 1))
        );
    }
}
