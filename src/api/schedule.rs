//! Polling schedules per task type: the official SDKs' table (../shared/capmonster-api.md).
//! Data, not code: one row per type; `...Proxyless` names share their base type's row.

use std::time::Duration;

use crate::api::REQUESTS_PER_TASK;

/// When to poll: first delay, interval, total timeout, and the cap of requests for one wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub first_delay: Duration,
    pub interval: Duration,
    pub timeout: Duration,
    pub max_requests: u32,
}

const fn schedule(first_delay_ms: u64, interval_ms: u64, timeout_s: u64) -> Schedule {
    Schedule {
        first_delay: Duration::from_millis(first_delay_ms),
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_secs(timeout_s),
        max_requests: REQUESTS_PER_TASK,
    }
}

/// The library's own defaults: 1 s first delay, 2 s interval (the service's documented
/// minimum), 180 s timeout, all 120 requests.
pub const DEFAULT: Schedule = schedule(1000, 2000, 180);

/// (task type, schedule), matched case-insensitively after removing a `Proxyless` suffix.
const TABLE: &[(&str, Schedule)] = &[
    ("RecaptchaV2Task", schedule(1000, 3000, 180)),
    ("RecaptchaV2EnterpriseTask", schedule(1000, 3000, 180)),
    ("RecaptchaV3Task", schedule(1000, 3000, 180)),
    ("RecaptchaV3EnterpriseTask", schedule(1000, 3000, 180)),
    ("ImageToTextTask", schedule(350, 200, 10)),
    ("ComplexImageTask", schedule(350, 200, 10)),
    ("FunCaptchaTask", schedule(1000, 1000, 80)),
    ("HCaptchaTask", schedule(1000, 3000, 180)),
    ("GeeTestTask", schedule(1000, 1000, 80)),
    ("TurnstileTask", schedule(1000, 1000, 80)),
    ("AmazonTask", schedule(1000, 3000, 180)),
    ("MTCaptchaTask", schedule(1000, 3000, 180)),
    ("YidunTask", schedule(1000, 3000, 180)),
    ("ProsopoTask", schedule(1000, 3000, 180)),
    ("BinanceTask", schedule(1000, 1000, 20)),
    ("CustomTask", schedule(1000, 3000, 180)),
];

/// The schedule for a task type; unknown types get [`DEFAULT`].
pub fn for_task_type(task_type: &str) -> Schedule {
    let base = task_type
        .len()
        .checked_sub("Proxyless".len())
        .filter(|&cut| task_type.is_char_boundary(cut) && task_type[cut..].eq_ignore_ascii_case("Proxyless"))
        .map_or(task_type, |cut| &task_type[..cut]);
    TABLE.iter().find(|(name, _)| name.eq_ignore_ascii_case(base)).map_or(DEFAULT, |&(_, schedule)| schedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_rows() {
        assert_eq!(for_task_type("ImageToTextTask"), schedule(350, 200, 10));
        assert_eq!(for_task_type("RecaptchaV3TaskProxyless"), schedule(1000, 3000, 180));
        assert_eq!(for_task_type("TurnstileTaskProxyless"), for_task_type("TurnstileTask"));
        assert_eq!(for_task_type("BinanceTask").timeout, Duration::from_secs(20));
        assert_eq!(for_task_type("CustomTask"), schedule(1000, 3000, 180));
        assert_eq!(for_task_type("imagetotexttask"), for_task_type("ImageToTextTask"));
    }

    #[test]
    fn unknown_types_get_the_defaults() {
        for name in ["", "Proxyless", "NoSuchTask", "ImageToTextTaskX", "é"] {
            assert_eq!(for_task_type(name), DEFAULT, "{name}");
        }
        assert_eq!(DEFAULT.max_requests, 120);
    }
}
