//! The account guard's rules, with no store and no I/O: which answers of the service stop
//! which later calls, for how long, when one call may go out to see whether things changed
//! (the probe), and what a call answered here is told.
//!
//! The service bans an account or address for 10 minutes, extended while the behaviour goes
//! on, for storms of requests with an invalid key, at zero balance, with wrong task ids or with
//! a banned proxy ("Reasons for blocking"). A stop is the library's memory of such an answer:
//! while it is in force the calls it holds are answered here, exactly as the service answered
//! (same error code and description), with no request.
//!
//! Cool-downs, chosen so that a farm never keeps a ban alive and yet notices a fix soon:
//! - `ERROR_IP_BANNED`, `ERROR_IP_BLOCKED`: the ban's documented length, [`BAN_LENGTH`]
//!   (10 minutes), from the first answer: asking sooner only hears the same and may extend it.
//! - `ERROR_PROXY_BANNED` (a createTask's proxy, banned by the target): [`BAN_LENGTH`] too,
//!   for that proxy (address and port) and key only.
//! - `ERROR_KEY_DOES_NOT_EXIST`, `ERROR_IP_NOT_ALLOWED`, `ERROR_ZERO_BALANCE` (mistakes the
//!   user can fix: a key, a whitelist, a top-up): [`FIRST_COOL_DOWN`] (1 minute), doubled at
//!   each renewal, at most [`BAN_LENGTH`].
//!
//! After a cool-down exactly one call goes out (the probe; [`PROBE_LEASE`] bounds how long
//! it may hold that right; the lease names the prober's process, and a call that finds that
//! process gone takes the probe at once, so a killed prober blocks no one for long). The
//! same answer renews the stop; any other answer of the service ends it; no answer (a network
//! failure, a timeout, a cancel) leaves it as it was, and the next call probes again.

use std::time::Duration;

use crate::net::transport::Method;

/// How long the service bans an account or address ("Reasons for blocking": 10 minutes).
pub const BAN_LENGTH: Duration = Duration::from_secs(10 * 60);
/// The first cool-down of a stop the user can lift (a key, a whitelist, a balance).
pub const FIRST_COOL_DOWN: Duration = Duration::from_secs(60);
/// The longest a probe holds its right to go out; past it, another call may probe. Longer
/// than any request of the library's default timeout (30 s), short beside a cool-down.
pub const PROBE_LEASE: Duration = Duration::from_secs(2 * 60);

/// Most bytes of the service's error code and description a stop keeps (more is cut).
pub const MAX_CODE_BYTES: usize = 48;
pub const MAX_DESCRIPTION_BYTES: usize = 240;
/// Most bytes of a proxy's `address:port` a message shows (a host name has at most 253).
const MAX_PROXY_SHOWN: usize = 260;

/// What a stop holds back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stop {
    /// Every call with the key: the key does not exist, or the address is refused or banned.
    Key,
    /// createTask with the key: the balance is zero. Results, reports and getBalance still go.
    Balance,
    /// createTask with the key and one proxy (its address and port): the target banned that
    /// proxy. Kept under a digest of the key's digest and the proxy, never the address.
    Proxy,
    /// getTaskResult of tasks the budget does not know (neither created nor asked about here),
    /// after [`WRONG_IDS_LIMIT`] wrong-id answers within [`WRONG_IDS_WINDOW`]; the budget checks
    /// it for such tasks only. Until then its record counts the answers (`counting`).
    WrongIds,
}

/// Wrong-id answers (`ERROR_NO_SUCH_CAPCHA_ID`, `WRONG_CAPTCHA_ID`) of one key, from all the
/// user's processes, within [`WRONG_IDS_WINDOW`] that pause getTaskResult of unknown tasks:
/// many more than a program meets that asks about its own tasks (each disowned task is asked
/// once), few enough that a storm of wrong ids stops within a second of starting.
pub const WRONG_IDS_LIMIT: u32 = 20;
/// The window of [`WRONG_IDS_LIMIT`].
pub const WRONG_IDS_WINDOW: Duration = Duration::from_secs(60);

impl Stop {
    pub const ALL: [Stop; 4] = [Stop::Key, Stop::Balance, Stop::Proxy, Stop::WrongIds];

    /// The stop an answer of the service starts, by its error code.
    pub fn started_by(api_code: &str) -> Option<Stop> {
        match api_code {
            "ERROR_KEY_DOES_NOT_EXIST" | "ERROR_IP_NOT_ALLOWED" | "ERROR_IP_BANNED" | "ERROR_IP_BLOCKED" => {
                Some(Stop::Key)
            }
            "ERROR_ZERO_BALANCE" => Some(Stop::Balance),
            "ERROR_PROXY_BANNED" => Some(Stop::Proxy),
            _ => None,
        }
    }

    /// Whether this stop holds back a call of `method`.
    pub(crate) fn holds(self, method: Method) -> bool {
        match self {
            Stop::Key => true,
            Stop::Balance | Stop::Proxy => method == Method::CreateTask,
            Stop::WrongIds => false,
        }
    }

    /// The stop's place in per-key tables.
    pub fn index(self) -> usize {
        self as usize
    }

    /// How the stop is named in messages; `proxy` is the proxy's `address:port` (not a secret).
    fn what(self, proxy: Option<&str>) -> String {
        match self {
            Stop::Key => "every call with this key".to_owned(),
            Stop::Balance => "createTask with this key".to_owned(),
            Stop::Proxy => {
                format!(
                    "createTask with this key and the proxy {}",
                    cut(proxy.unwrap_or("of this task"), MAX_PROXY_SHOWN)
                )
            }
            Stop::WrongIds => format!(
                "getTaskResult with this key for tasks not created or asked about on this machine (after {WRONG_IDS_LIMIT} wrong-id answers within {} s)",
                WRONG_IDS_WINDOW.as_secs()
            ),
        }
    }
}

/// The cool-down after the stop's first answer (`renewals` 0) or after its n-th renewal.
pub fn cool_down(api_code: &str, renewals: u32) -> Duration {
    if matches!(api_code, "ERROR_IP_BANNED" | "ERROR_IP_BLOCKED" | "ERROR_PROXY_BANNED") {
        return BAN_LENGTH;
    }
    FIRST_COOL_DOWN.saturating_mul(1u32 << renewals.min(16)).min(BAN_LENGTH)
}

/// One stop as a store keeps it. Times are milliseconds since the Unix epoch, so that every
/// process of the user reads them alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopState {
    /// The service's errorCode that started (or last renewed) the stop.
    pub api_code: String,
    pub description: Option<String>,
    /// When the service first gave the answer.
    pub since_ms: u64,
    /// Until when calls are answered here; then one probe may go out.
    pub until_ms: u64,
    /// How often a probe heard the same answer again.
    pub renewals: u32,
    /// While a probe is out: until when its lease runs (0: none).
    pub probe_until_ms: u64,
    /// While a probe is out: the prober's process id (0: unknown). A lease whose process is
    /// gone is free at once; a reused id keeps it at worst until `probe_until_ms`.
    pub probe_pid: u32,
}

/// What the guard decides for a call that a stop holds back.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Answer here: the cool-down runs, or another call is probing.
    Refuse,
    /// The cool-down is over and nobody probes: this call may be the probe (if it wins the
    /// store's race for the lease).
    MayProbe,
}

impl StopState {
    /// A new stop, from the service's answer at `now_ms`.
    pub fn start(api_code: &str, description: Option<&str>, now_ms: u64) -> StopState {
        StopState {
            api_code: cut(api_code, MAX_CODE_BYTES).to_owned(),
            description: description.map(|text| cut(text, MAX_DESCRIPTION_BYTES).to_owned()),
            since_ms: now_ms,
            until_ms: now_ms.saturating_add(millis(cool_down(api_code, 0))),
            renewals: 0,
            probe_until_ms: 0,
            probe_pid: 0,
        }
    }

    /// The probe heard the same kind of answer again at `now_ms`: a longer cool-down.
    pub fn renew(&mut self, api_code: &str, description: Option<&str>, now_ms: u64) {
        self.renewals = self.renewals.saturating_add(1);
        self.api_code = cut(api_code, MAX_CODE_BYTES).to_owned();
        self.description = description.map(|text| cut(text, MAX_DESCRIPTION_BYTES).to_owned());
        self.until_ms = now_ms.saturating_add(millis(cool_down(api_code, self.renewals)));
        self.probe_until_ms = 0;
        self.probe_pid = 0;
    }

    /// A wrong-id stop's record that only counts answers: `renewals` wrong-id answers since
    /// `since_ms`; it holds nothing back (`until_ms` 0).
    pub fn counting(&self) -> bool {
        self.until_ms == 0
    }

    /// A wrong-id answer (`api_code`) heard at `now_ms`, by the probe of the stop or another
    /// call: what the key's [`Stop::WrongIds`] record becomes. It counts the answers of a
    /// window; the [`WRONG_IDS_LIMIT`]th starts the stop; the probe's renews it; others, while
    /// the stop holds, change nothing.
    pub fn wrong_id_heard(
        kept: Option<StopState>,
        probe: bool,
        api_code: &str,
        description: Option<&str>,
        now_ms: u64,
    ) -> StopState {
        let window = millis(WRONG_IDS_WINDOW);
        match kept {
            Some(mut state) if state.counting() && now_ms.saturating_sub(state.since_ms) < window => {
                state.renewals = state.renewals.saturating_add(1);
                if state.renewals >= WRONG_IDS_LIMIT {
                    let mut stop = StopState::start(api_code, description, now_ms);
                    stop.since_ms = state.since_ms;
                    return stop;
                }
                state
            }
            Some(mut state) if !state.counting() => {
                if probe {
                    state.renew(api_code, description, now_ms);
                }
                state
            }
            // None, or a count whose window ended: a new count.
            _ => {
                let mut first = StopState::start(api_code, description, now_ms);
                (first.until_ms, first.renewals) = (0, 1);
                first
            }
        }
    }

    /// Refuse while the cool-down runs or a probe's lease does; a lease whose prober
    /// `alive` says is gone (killed while it probed) no longer holds. `alive` is asked only
    /// while a lease holds past the cool-down: not on the path of a call with no probe out.
    pub fn verdict(&self, now_ms: u64, alive: &dyn Fn(u32) -> bool) -> Verdict {
        if now_ms < self.until_ms {
            return Verdict::Refuse;
        }
        let leased = now_ms < self.probe_until_ms && (self.probe_pid == 0 || alive(self.probe_pid));
        if leased {
            Verdict::Refuse
        } else {
            Verdict::MayProbe
        }
    }

    /// The message of a call answered here: not sent, why, since when and until when.
    pub(crate) fn message(&self, stop: Stop, method: Method, proxy: Option<&str>, now_ms: u64) -> String {
        let answer = match self.description.as_deref() {
            Some(text) if !text.is_empty() => format!("{}: {text}", self.api_code),
            _ => self.api_code.clone(),
        };
        let next = if now_ms < self.until_ms {
            format!("until {}, then one call goes out to see whether it has changed", utc(self.until_ms))
        } else {
            format!("while another call, sent at the end of the cool-down, finds out whether it has changed (at the latest {})", utc(self.probe_until_ms))
        };
        format!(
            "{} was not sent: the service answered {answer} (first at {}); the account guard answers {} here {next}, so that the account or address is not banned for a storm of such requests",
            method.name(),
            utc(self.since_ms),
            stop.what(proxy),
        )
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// At most `max` bytes of `text`, cut on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    crate::api::text::truncate(text, max)
}

/// `2026-12-04 23:40:12 UTC` for milliseconds since the Unix epoch (civil-from-days, after
/// H. Hinnant's date algorithms; valid for every date a u64 of milliseconds reaches here).
pub fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answers_that_stop_a_key_and_what_they_hold() {
        for code in ["ERROR_KEY_DOES_NOT_EXIST", "ERROR_IP_NOT_ALLOWED", "ERROR_IP_BANNED", "ERROR_IP_BLOCKED"] {
            assert_eq!(Stop::started_by(code), Some(Stop::Key), "{code}");
        }
        assert_eq!(Stop::started_by("ERROR_ZERO_BALANCE"), Some(Stop::Balance));
        assert_eq!(Stop::started_by("ERROR_PROXY_BANNED"), Some(Stop::Proxy));
        for code in ["ERROR_CAPTCHA_UNSOLVABLE", "ERROR_TOO_MUCH_REQUESTS", "CAPCHA_NOT_READY", ""] {
            assert_eq!(Stop::started_by(code), None, "{code}");
        }
        for method in [Method::GetTaskResult, Method::CreateTask, Method::GetBalance, Method::ReportIncorrectToken] {
            assert!(Stop::Key.holds(method));
            assert_eq!(Stop::Balance.holds(method), method == Method::CreateTask);
            assert_eq!(Stop::Proxy.holds(method), method == Method::CreateTask);
        }
    }

    #[test]
    fn cool_downs_double_up_to_the_ban_and_ip_bans_start_there() {
        let minutes = |code, renewals| cool_down(code, renewals).as_secs() / 60;
        let doubling: Vec<u64> = (0..6).map(|n| minutes("ERROR_KEY_DOES_NOT_EXIST", n)).collect();
        assert_eq!(doubling, [1, 2, 4, 8, 10, 10]);
        assert_eq!(minutes("ERROR_ZERO_BALANCE", 40), 10);
        assert_eq!(minutes("ERROR_IP_BANNED", 0), 10);
        assert_eq!(minutes("ERROR_IP_BLOCKED", 3), 10);
        assert_eq!(minutes("ERROR_PROXY_BANNED", 0), 10);
    }

    #[test]
    fn a_stop_refuses_until_its_cool_down_then_lets_one_probe() {
        let mut stop = StopState::start("ERROR_KEY_DOES_NOT_EXIST", Some("no such key"), 1_000);
        assert_eq!(stop.until_ms, 61_000);
        let (alive, gone) = (&|_| true, &|_| false);
        assert_eq!(stop.verdict(60_999, gone), Verdict::Refuse);
        assert_eq!(stop.verdict(61_000, alive), Verdict::MayProbe);
        stop.probe_until_ms = 61_000 + millis(PROBE_LEASE);
        stop.probe_pid = 42;
        assert_eq!(stop.verdict(62_000, alive), Verdict::Refuse, "one probe at a time");
        assert_eq!(stop.verdict(62_000, gone), Verdict::MayProbe, "a killed prober's lease is free");
        assert_eq!(stop.verdict(stop.probe_until_ms, alive), Verdict::MayProbe, "a lease runs out");
        stop.renew("ERROR_KEY_DOES_NOT_EXIST", Some("no such key"), 70_000);
        assert_eq!((stop.renewals, stop.until_ms, stop.probe_until_ms, stop.probe_pid), (1, 190_000, 0, 0));
        assert_eq!(stop.since_ms, 1_000, "since stays the first answer");
    }

    #[test]
    fn the_message_says_not_sent_why_since_and_until() {
        let stop = StopState::start("ERROR_ZERO_BALANCE", Some("Account has zero balance"), 1_764_891_612_000);
        let message = stop.message(Stop::Balance, Method::CreateTask, None, 1_764_891_613_000);
        assert!(message.starts_with("createTask was not sent: the service answered ERROR_ZERO_BALANCE: Account has zero balance (first at 2025-12-04 23:40:12 UTC)"), "{message}");
        assert!(message.contains("until 2025-12-04 23:41:12 UTC"), "{message}");
        let banned = StopState::start("ERROR_PROXY_BANNED", None, 0);
        let message = banned.message(Stop::Proxy, Method::CreateTask, Some("10.0.0.1:8080"), 1);
        assert!(
            message.contains("createTask with this key and the proxy 10.0.0.1:8080 here until 1970-01-01 00:10:00 UTC"),
            "{message}"
        );
        let long = "x".repeat(1000);
        assert_eq!(StopState::start(&long, Some(&long), 0).description.map(|d| d.len()), Some(MAX_DESCRIPTION_BYTES));
    }

    #[test]
    fn twenty_wrong_ids_within_a_minute_pause_unknown_tasks() {
        let code = "ERROR_NO_SUCH_CAPCHA_ID";
        let mut kept = None;
        for n in 1..WRONG_IDS_LIMIT {
            let state = StopState::wrong_id_heard(kept, false, code, None, u64::from(n) * 1000);
            assert!(state.counting() && state.renewals == n, "{state:?}");
            kept = Some(state);
        }
        let stop = StopState::wrong_id_heard(kept.clone(), false, code, None, 30_000);
        assert!(!stop.counting());
        assert_eq!((stop.since_ms, stop.until_ms, stop.renewals), (1000, 90_000, 0), "the first cool-down");
        assert_eq!(
            StopState::wrong_id_heard(Some(stop.clone()), false, code, None, 31_000),
            stop,
            "in flight: no change"
        );
        let renewed = StopState::wrong_id_heard(Some(stop), true, code, None, 90_000);
        assert_eq!((renewed.renewals, renewed.until_ms), (1, 210_000), "the probe's renews, doubled");
        let late = StopState::wrong_id_heard(kept, false, code, None, 61_000);
        assert_eq!(
            (late.renewals, late.since_ms, late.counting()),
            (1, 61_000, true),
            "a window that ended starts anew"
        );
        for method in [Method::GetTaskResult, Method::CreateTask] {
            assert!(!Stop::WrongIds.holds(method), "the budget checks it, for unknown tasks only");
        }
    }

    #[test]
    fn the_pause_says_which_tasks_and_why() {
        let stop = StopState::start("ERROR_NO_SUCH_CAPCHA_ID", None, 0);
        let message = stop.message(Stop::WrongIds, Method::GetTaskResult, None, 1);
        let why = format!("{WRONG_IDS_LIMIT} wrong-id answers within {} s", WRONG_IDS_WINDOW.as_secs());
        assert!(
            message.contains("for tasks not created or asked about on this machine") && message.contains(&why),
            "{message}"
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(4_102_444_799_000), "2099-12-31 23:59:59 UTC");
    }
}
