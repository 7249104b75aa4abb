//! The account guard: the library never sends the request storms that get a CapMonster
//! account or address banned, from any client, thread or process of the user.
//!
//! Every request asks the guard first (`Guard::admit`) and tells it what it heard (`Guard::learn`). The
//! rules are in [`policy`]; the stops are kept per (endpoint, key) digest, never a key, in a
//! `Store`: the user's shared budget file by default ([`crate::budget::file`]), or this
//! process's table ([`process::ProcessStops`]) with `CAPMONSTER_BUDGET=process`.
//! `CAPMONSTER_GUARD=off` turns the guard off (dangerous: a wrong key or an empty balance is
//! then repeated as fast as the program asks).
//!
//! Cost: a call of a key with no stop reads one word (`Store::any`; for a getTaskResult the
//! budget reads it with the task's count, `Budget::take`, and asks the guard only while a stop
//! is kept); the store's lock is taken only while a stop is in force, to hand out its probe.
//!
//! A proxy stop is kept under [`proxy_scope`] (a digest of the key's digest and the proxy's
//! `address:port`), so the store holds no address; the message names the proxy from the call.
//! When a key stop starts or is renewed here, the process's waits of that key that sleep
//! between polls are woken ([`mod@listen`]) and end with the local answer.

mod alive;
pub mod listen;
pub mod policy;
pub mod process;

use std::sync::{LazyLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::api::error::{ApiError, Code, Error};
use crate::budget::disowned::FinalAnswer;
use crate::budget::KeyDigest;
use crate::log::{self, Level};
use crate::net::transport::Method;
use listen::{Listeners, Listening, StopListener};
use policy::{Stop, StopState, Verdict, PROBE_LEASE};

/// Where stops are kept. Implementations bound their tables and say how.
pub(crate) trait Store: Send + Sync {
    /// Whether any stop may be kept, for any key: the one read of a call with no stop.
    fn any(&self) -> bool;
    /// The key's stop, if one is kept.
    fn get(&self, key: KeyDigest, stop: Stop) -> Option<StopState>;
    /// Changes the key's stop under the store's lock: `change` sees what is kept and returns
    /// what to keep (`None`: no stop). Every process sees the change at its next call.
    fn update(&self, key: KeyDigest, stop: Stop, change: &mut dyn FnMut(Option<StopState>) -> Option<StopState>);
}

/// What one call holds: the stops it probes (it went out at the end of their cool-down), and
/// the scope of its proxy's stop when it is a createTask with a proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    probes: [bool; Stop::ALL.len()],
    proxy: Option<KeyDigest>,
}

impl Pass {
    /// Whether the call is the probe of this stop.
    pub fn probes(&self, stop: Stop) -> bool {
        self.probes[stop.index()]
    }

    /// What the stop is kept under for this call: the key's digest, or for a proxy stop the
    /// proxy's scope (`None`: the call named no proxy).
    fn scope(&self, key: KeyDigest, stop: Stop) -> Option<KeyDigest> {
        match stop {
            Stop::Proxy => self.proxy,
            _ => Some(key),
        }
    }
}

/// What a proxy stop is kept under: the first 8 bytes of SHA-256 over the key's digest and the
/// proxy's `address:port`, so that the store never holds the address (and never the proxy's
/// login or password, which are not read at all).
pub fn proxy_scope(key: KeyDigest, proxy: &str) -> KeyDigest {
    let mut input = Vec::with_capacity(8 + 7 + proxy.len());
    input.extend_from_slice(&key.value().to_le_bytes());
    input.extend_from_slice(b"\0proxy\0");
    input.extend_from_slice(proxy.as_bytes());
    let sha = ring::digest::digest(&ring::digest::SHA256, &input);
    let mut first = [0u8; 8];
    first.copy_from_slice(&sha.as_ref()[..8]);
    // 0 marks a free record in the shared file.
    KeyDigest::from_value(u64::from_le_bytes(first).max(1))
}

/// What a call heard from the service.
#[derive(Clone, Copy, Debug)]
pub enum Heard<'a> {
    /// No answer: a network failure, a timeout, a cancel. Stops stay as they were.
    Nothing,
    /// An answer, with the service's error when it was one, and whether it showed money on the
    /// account (a getBalance above 0). The error's description is read only when the answer
    /// starts a stop: reading it sooner made the optimiser load it before knowing whether there
    /// was an error at all, a branch on absent bytes that valgrind reports.
    Answer { api: Option<&'a ApiError>, money: bool },
}

impl<'a> Heard<'a> {
    /// What a call's result says was heard: an answer unless it failed before or without one.
    pub fn from_result<T>(result: &'a Result<T, Error>, money: bool) -> Heard<'a> {
        match result {
            Ok(_) => Heard::Answer { api: None, money },
            Err(error) => match error.code {
                Code::Api | Code::HttpStatus | Code::BadResponse => {
                    Heard::Answer { api: error.api.as_ref(), money: false }
                }
                _ => Heard::Nothing,
            },
        }
    }
}

/// The guard of every client of the process, over the store the budget uses; on unless
/// `CAPMONSTER_GUARD=off` (read once, with the budget's settings, at the first client).
pub fn global() -> &'static Guard {
    static GLOBAL: LazyLock<Guard> = LazyLock::new(|| {
        let on = !matches!(std::env::var("CAPMONSTER_GUARD").as_deref(), Ok("off"));
        Guard::new(Box::new(BudgetStore(crate::budget::global())), on)
    });
    &GLOBAL
}

/// The listeners of the process's key stops (see [`listen`]): process-wide, as the waits are.
static LISTENERS: LazyLock<Listeners> = LazyLock::new(Listeners::default);

/// Registers `listener` to be told when a key stop starts or is renewed in this process; the
/// registration lasts while the returned handle lives.
pub fn listen(listener: Weak<dyn StopListener>) -> Listening {
    LISTENERS.listen(listener)
}

/// How many key stops this process has told its listeners so far: a wait compares it across
/// a poll to learn that one was told while its poll was in flight.
pub fn stops_told() -> u64 {
    LISTENERS.told()
}

/// Whether a wait of `key` starting now should poll at once, because a key stop this process
/// told of is kept for it: its poll is answered here, so it ends now rather than after its
/// first delay. Costs one atomic load until this process has told of a key stop.
pub fn key_stopped_here(key: KeyDigest) -> bool {
    stops_told() != 0 && global().stop(key, Stop::Key).is_some()
}

/// The process's budget as the guard's store.
struct BudgetStore(&'static crate::budget::Budget);

impl Store for BudgetStore {
    fn any(&self) -> bool {
        self.0.any()
    }
    fn get(&self, key: KeyDigest, stop: Stop) -> Option<StopState> {
        self.0.get(key, stop)
    }
    fn update(&self, key: KeyDigest, stop: Stop, change: &mut dyn FnMut(Option<StopState>) -> Option<StopState>) {
        self.0.update(key, stop, change)
    }
}

/// The guard over one store.
pub struct Guard {
    store: Box<dyn Store>,
    on: bool,
}

/// Milliseconds since the Unix epoch: stops are read alike by every process.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

impl Guard {
    pub(crate) fn new(store: Box<dyn Store>, on: bool) -> Guard {
        Guard { store, on }
    }

    /// Whether the guard is on (`CAPMONSTER_GUARD` is not `off`).
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Before a request of `method`: the call may go (perhaps as the probe of a stop whose
    /// cool-down is over), or it is answered here with the service's own error. `proxy` is the
    /// `address:port` of a createTask's proxy (its proxy stop is checked too).
    pub(crate) fn admit(
        &self,
        key: KeyDigest,
        method: Method,
        proxy: Option<&str>,
        now_ms: u64,
    ) -> Result<Pass, Error> {
        let mut pass = Pass { proxy: proxy.map(|proxy| proxy_scope(key, proxy)), ..Pass::default() };
        if !self.on || !self.store.any() {
            return Ok(pass);
        }
        for stop in Stop::ALL.into_iter().filter(|stop| stop.holds(method)) {
            let Some(scope) = pass.scope(key, stop) else { continue };
            let Some(state) = self.store.get(scope, stop) else { continue };
            let refused = match state.verdict(now_ms, &alive::exists) {
                Verdict::Refuse => Some(state),
                Verdict::MayProbe => self.take_probe(scope, stop, now_ms),
            };
            if let Some(state) = refused {
                self.release(key, &pass);
                return Err(local_answer(&state, stop, method, proxy, now_ms));
            }
            pass.probes[stop.index()] = true;
            log::log(Level::Info, "guard.probe", || {
                format!("{} goes out as the probe of the {stop:?} stop of key {}", method.name(), key.short())
            });
        }
        Ok(pass)
    }

    /// Before a getTaskResult of a task the budget does not know: refused while the key's
    /// wrong-id pause holds ([`Stop::WrongIds`]); the call after its cool-down is its probe.
    /// The budget asks only while some stop is kept, never for a task it knows.
    pub(crate) fn admit_unknown_task(&self, key: KeyDigest, pass: &mut Pass, now_ms: u64) -> Result<(), Error> {
        let stop = Stop::WrongIds;
        if !self.on || pass.probes(stop) {
            return Ok(());
        }
        let Some(state) = self.store.get(key, stop).filter(|state| !state.counting()) else { return Ok(()) };
        let refused = match state.verdict(now_ms, &alive::exists) {
            Verdict::Refuse => Some(state),
            Verdict::MayProbe => self.take_probe(key, stop, now_ms),
        };
        match refused {
            Some(state) => Err(local_answer(&state, stop, Method::GetTaskResult, None, now_ms)),
            None => {
                pass.probes[stop.index()] = true;
                Ok(())
            }
        }
    }

    /// Takes the stop's probe lease, in this process's name, if nobody else holds it: `None`
    /// when this call is the probe, else the stop that refuses it.
    fn take_probe(&self, scope: KeyDigest, stop: Stop, now_ms: u64) -> Option<StopState> {
        let mut refused = None;
        self.store.update(scope, stop, &mut |kept| {
            let mut state = kept?;
            if state.verdict(now_ms, &alive::exists) == Verdict::MayProbe {
                state.probe_until_ms =
                    now_ms.saturating_add(u64::try_from(PROBE_LEASE.as_millis()).unwrap_or(u64::MAX));
                state.probe_pid = alive::this_process();
                refused = None;
            } else {
                refused = Some(state.clone());
            }
            Some(state)
        });
        refused
    }

    /// Gives back the probe leases of a call that did not go out or heard nothing.
    fn release(&self, key: KeyDigest, pass: &Pass) {
        for stop in Stop::ALL.into_iter().filter(|stop| pass.probes(*stop)) {
            let Some(scope) = pass.scope(key, stop) else { continue };
            self.store.update(scope, stop, &mut |kept| {
                kept.map(|mut state| {
                    state.probe_until_ms = 0;
                    state.probe_pid = 0;
                    state
                })
            });
        }
    }

    /// After a call: what it heard starts, renews or ends stops of its key.
    pub(crate) fn learn(&self, key: KeyDigest, pass: &Pass, heard: Heard<'_>, now_ms: u64) {
        if !self.on {
            return;
        }
        let Heard::Answer { api, money } = heard else {
            self.release(key, pass);
            return;
        };
        let api_code = api.and_then(|api| api.code.as_deref()).unwrap_or("");
        let started = Stop::started_by(api_code);
        let wrong_id = FinalAnswer::from_code(api_code).is_some_and(FinalAnswer::wrong_id);
        for stop in Stop::ALL {
            let Some(scope) = pass.scope(key, stop) else { continue };
            if let (Some(api), true, Stop::WrongIds) = (api, wrong_id, stop) {
                // Counted in the key's record, by every process; the limit starts the pause.
                let (probe, description) = (pass.probes(stop), api.description.as_deref());
                self.store.update(scope, stop, &mut |kept| {
                    Some(StopState::wrong_id_heard(kept, probe, api_code, description, now_ms))
                });
            } else if let (Some(api), true) = (api, started == Some(stop)) {
                let (code, description) = (api_code, api.description.as_deref());
                let probe = pass.probes(stop);
                let mut changed = false;
                self.store.update(scope, stop, &mut |kept| match kept {
                    Some(mut state) if probe => {
                        state.renew(code, description, now_ms);
                        changed = true;
                        Some(state)
                    }
                    // Already stopped by another call that was in flight with this one.
                    Some(state) => Some(state),
                    None => {
                        changed = true;
                        Some(StopState::start(code, description, now_ms))
                    }
                });
                if changed {
                    log::log(Level::Warn, "guard.stop", || {
                        format!("{stop:?} stop of key {} (re)started by {code}", key.short())
                    });
                }
                // Waits asleep in this process end now, with the local answer; only when the
                // stop was kept (a full store keeps none, and waking would then send).
                if stop == Stop::Key && changed && self.store.get(scope, stop).is_some() {
                    LISTENERS.tell(key);
                }
            } else if pass.probes(stop) || (stop == Stop::Balance && money) {
                // Any other answer to the probe, or money on the account, ends the stop.
                if self.store.any() {
                    let mut ended = false;
                    self.store.update(scope, stop, &mut |kept| {
                        ended = kept.is_some();
                        None
                    });
                    if ended {
                        log::log(Level::Info, "guard.end", || format!("{stop:?} stop of key {} ended", key.short()));
                    }
                }
            }
        }
    }

    /// Ends every stop of the key now (the user fixed the key, the whitelist or the balance).
    /// Proxy stops are kept under their proxy's scope and run their time: a ban of the proxy
    /// by its target is not the user's to lift.
    pub fn clear(&self, key: KeyDigest) {
        for stop in Stop::ALL.into_iter().filter(|stop| *stop != Stop::Proxy) {
            self.store.update(key, stop, &mut |_| None);
        }
        log::log(Level::Info, "guard.end", || format!("the stops of key {} ended by the program", key.short()));
    }

    /// Ends the cool-down of the stop kept under `scope` (a key's digest, or [`proxy_scope`])
    /// now, so that the next call probes. For tests, which cannot wait out a cool-down; it
    /// keeps the stop and its probe lease as they are.
    #[doc(hidden)]
    pub fn end_cool_down_for_tests(&self, scope: KeyDigest, stop: Stop) {
        let now_ms = now_ms();
        self.store.update(scope, stop, &mut |kept| {
            kept.map(|mut state| {
                state.until_ms = state.until_ms.min(now_ms);
                state
            })
        });
    }

    /// The key's stop, if one is kept.
    pub fn stop(&self, key: KeyDigest, stop: Stop) -> Option<StopState> {
        self.store.get(key, stop)
    }
}

/// The answer of a call the guard holds back: the service's own error (so that callers
/// handle it as they would the service's), no HTTP status, and a message that says so.
fn local_answer(state: &StopState, stop: Stop, method: Method, proxy: Option<&str>, now_ms: u64) -> Error {
    Error {
        code: Code::Api,
        message: state.message(stop, method, proxy, now_ms),
        api: Some(ApiError { code: Some(state.api_code.clone()), description: state.description.clone() }),
        http_status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use process::ProcessStops;

    const KEY: &str = "ERROR_KEY_DOES_NOT_EXIST";

    fn guard() -> Guard {
        Guard::new(Box::new(ProcessStops::default()), true)
    }

    fn heard(code: &str) -> Heard<'static> {
        let api = ApiError { code: Some(code.to_owned()), description: Some("described".to_owned()) };
        Heard::Answer { api: Some(Box::leak(Box::new(api))), money: false }
    }

    const FINE: Heard<'static> = Heard::Answer { api: None, money: false };

    #[test]
    fn a_revoked_key_stops_every_call_until_one_probe_ends_it() {
        let (guard, key) = (guard(), KeyDigest::of("k", "https://a"));
        let pass = guard.admit(key, Method::GetTaskResult, None, 0).unwrap();
        guard.learn(key, &pass, heard(KEY), 0);
        for method in [Method::GetTaskResult, Method::CreateTask, Method::GetBalance] {
            let refused = guard.admit(key, method, None, 59_999).unwrap_err();
            assert_eq!((refused.code, refused.api_code(), refused.http_status), (Code::Api, Some(KEY), None));
            assert_eq!(refused.api.unwrap().description.as_deref(), Some("described"));
        }
        let other = KeyDigest::of("k2", "https://a");
        assert!(guard.admit(other, Method::CreateTask, None, 1).is_ok(), "other keys go on");

        let probe = guard.admit(key, Method::GetBalance, None, 60_000).unwrap();
        assert!(probe.probes(Stop::Key));
        let message = guard.admit(key, Method::GetBalance, None, 60_001).unwrap_err().message;
        assert!(message.contains("while another call"), "one probe at a time: {message}");
        guard.learn(key, &probe, FINE, 60_100);
        assert_eq!(guard.stop(key, Stop::Key), None);
        assert_eq!(guard.admit(key, Method::GetBalance, None, 60_200), Ok(Pass::default()));
    }

    #[test]
    fn the_same_answer_to_the_probe_renews_and_no_answer_frees_the_probe() {
        let (guard, key) = (guard(), KeyDigest::of("k", "https://a"));
        guard.learn(key, &Pass::default(), heard(KEY), 0);
        // Calls that were in flight with the first hear the same: no renewal.
        guard.learn(key, &Pass::default(), heard(KEY), 10);
        assert_eq!(guard.stop(key, Stop::Key).unwrap().until_ms, 60_000);

        let probe = guard.admit(key, Method::CreateTask, None, 60_000).unwrap();
        guard.learn(key, &probe, Heard::Nothing, 60_500);
        let probe = guard.admit(key, Method::CreateTask, None, 61_000).unwrap();
        assert!(probe.probes(Stop::Key), "a probe that heard nothing lets the next call probe");
        guard.learn(key, &probe, heard(KEY), 61_000);
        let stop = guard.stop(key, Stop::Key).unwrap();
        assert_eq!((stop.renewals, stop.until_ms, stop.since_ms), (1, 181_000, 0));
    }

    #[test]
    fn zero_balance_stops_create_task_only_and_money_ends_it() {
        let (guard, key) = (guard(), KeyDigest::of("k", "https://a"));
        guard.learn(key, &Pass::default(), heard("ERROR_ZERO_BALANCE"), 0);
        assert_eq!(guard.admit(key, Method::CreateTask, None, 1).unwrap_err().api_code(), Some("ERROR_ZERO_BALANCE"));
        for method in [Method::GetTaskResult, Method::GetBalance, Method::ReportIncorrectImage] {
            assert_eq!(guard.admit(key, method, None, 1), Ok(Pass::default()));
        }
        let broke = Heard::Answer { api: None, money: false };
        guard.learn(key, &Pass::default(), broke, 2);
        assert!(guard.admit(key, Method::CreateTask, None, 3).is_err(), "a balance of 0 changes nothing");
        let topped_up = Heard::Answer { api: None, money: true };
        guard.learn(key, &Pass::default(), topped_up, 4);
        assert_eq!(guard.admit(key, Method::CreateTask, None, 5), Ok(Pass::default()));
    }

    #[test]
    fn a_banned_proxy_stops_create_task_with_that_proxy_only() {
        let (guard, key) = (guard(), KeyDigest::of("k", "https://a"));
        let proxy = Some("10.0.0.1:8080");
        let pass = guard.admit(key, Method::CreateTask, proxy, 0).unwrap();
        guard.learn(key, &pass, heard("ERROR_PROXY_BANNED"), 0);
        let refused = guard.admit(key, Method::CreateTask, proxy, 599_999).unwrap_err();
        assert_eq!(refused.api_code(), Some("ERROR_PROXY_BANNED"));
        assert!(refused.message.contains("the proxy 10.0.0.1:8080"), "{}", refused.message);
        assert!(guard.admit(key, Method::CreateTask, Some("10.0.0.1:8081"), 1).is_ok(), "another proxy goes on");
        assert!(guard.admit(key, Method::CreateTask, None, 1).is_ok(), "proxyless tasks go on");
        assert!(guard.admit(KeyDigest::of("k2", "https://a"), Method::CreateTask, proxy, 1).is_ok(), "another key");
        assert!(guard.admit(key, Method::GetTaskResult, proxy, 1).is_ok());
        assert_eq!(guard.stop(key, Stop::Proxy), None, "kept under the proxy's scope, not the key");
        assert!(guard.stop(proxy_scope(key, "10.0.0.1:8080"), Stop::Proxy).is_some());
        guard.clear(key);
        assert!(guard.admit(key, Method::CreateTask, proxy, 2).is_err(), "a proxy ban runs its time");
        // After the ban's length one createTask probes; a created task ends the stop.
        let probe = guard.admit(key, Method::CreateTask, proxy, 600_000).unwrap();
        assert!(probe.probes(Stop::Proxy));
        assert!(guard.admit(key, Method::CreateTask, proxy, 600_001).is_err(), "one probe at a time");
        guard.learn(key, &probe, FINE, 600_100);
        assert!(guard.admit(key, Method::CreateTask, proxy, 600_200).is_ok());
    }

    #[test]
    fn a_probe_lease_names_its_process() {
        let (guard, key) = (guard(), KeyDigest::of("k", "https://a"));
        guard.learn(key, &Pass::default(), heard(KEY), 0);
        let probe = guard.admit(key, Method::GetBalance, None, 60_000).unwrap();
        assert_eq!(guard.stop(key, Stop::Key).unwrap().probe_pid, std::process::id());
        guard.learn(key, &probe, Heard::Nothing, 60_001);
        assert_eq!(guard.stop(key, Stop::Key).unwrap().probe_pid, 0, "a released lease names no one");
    }

    #[test]
    fn wrong_ids_pause_unknown_tasks_until_a_probe_hears_otherwise() {
        let (guard, key) = (guard(), KeyDigest::of("k", "https://a"));
        let wrong = "ERROR_NO_SUCH_CAPCHA_ID";
        for n in 0..policy::WRONG_IDS_LIMIT - 1 {
            guard.learn(key, &Pass::default(), heard(wrong), u64::from(n));
            assert!(!guard.store.any(), "a count holds nothing back");
            assert_eq!(guard.admit_unknown_task(key, &mut Pass::default(), u64::from(n)), Ok(()));
        }
        guard.learn(key, &Pass::default(), heard("WRONG_CAPTCHA_ID"), 100);
        assert!(guard.store.any());
        let paused = guard.admit_unknown_task(key, &mut Pass::default(), 200).unwrap_err();
        assert_eq!((paused.code, paused.api_code(), paused.http_status), (Code::Api, Some("WRONG_CAPTCHA_ID"), None));
        assert!(paused.message.contains("for tasks not created or asked about on this machine"), "{}", paused.message);
        assert_eq!(guard.admit(key, Method::GetTaskResult, None, 200), Ok(Pass::default()), "known tasks go on");

        let mut probe = Pass::default();
        guard.admit_unknown_task(key, &mut probe, 60_100).unwrap();
        assert!(probe.probes(Stop::WrongIds));
        assert!(guard.admit_unknown_task(key, &mut Pass::default(), 60_200).is_err(), "one probe at a time");
        guard.learn(key, &probe, heard(wrong), 60_300);
        let renewed = guard.stop(key, Stop::WrongIds).unwrap();
        assert_eq!((renewed.renewals, renewed.until_ms), (1, 180_300));
        let mut probe = Pass::default();
        guard.admit_unknown_task(key, &mut probe, 180_300).unwrap();
        guard.learn(key, &probe, FINE, 180_400);
        assert_eq!(guard.stop(key, Stop::WrongIds), None, "any other answer ends it");
        assert!(!guard.store.any());
    }

    #[test]
    fn off_and_clear() {
        let key = KeyDigest::of("k", "https://a");
        let off = Guard::new(Box::new(ProcessStops::default()), false);
        off.learn(key, &Pass::default(), heard(KEY), 0);
        assert!(off.admit(key, Method::CreateTask, None, 1).is_ok());
        let guard = guard();
        guard.learn(key, &Pass::default(), heard("ERROR_IP_BANNED"), 0);
        assert!(guard.admit(key, Method::GetBalance, None, 599_999).is_err());
        guard.clear(key);
        assert!(guard.admit(key, Method::GetBalance, None, 1).is_ok());
    }
}
