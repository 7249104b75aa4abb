//! Polling schedules per task: the official SDKs' table. Data, not code: one row per type
//! (`for_task_type`), and per type and `class` with the `nocache` first delay
//! (`for_task`); `...Proxyless` names share their base type's row.

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

/// The schedule for a task type; unknown types get [`DEFAULT`].
pub fn for_task_type(task_type: &str) -> Schedule {
    type_row(without_proxyless(task_type)).map_or(DEFAULT, |row| row.schedule)
}

/// The row of a type alone (`base`: without `Proxyless`).
fn type_row(base: &str) -> Option<&'static Row> {
    ROWS.iter().find(|row| row.task_type.eq_ignore_ascii_case(base) && row.class.is_none())
}

/// `task_type` without a `Proxyless` suffix (any case).
fn without_proxyless(task_type: &str) -> &str {
    task_type
        .len()
        .checked_sub("Proxyless".len())
        .filter(|&cut| task_type.is_char_boundary(cut) && task_type[cut..].eq_ignore_ascii_case("Proxyless"))
        .map_or(task_type, |cut| &task_type[..cut])
}

/// One row of the official Python SDK's table: the task it is for (type, and the `class`
/// of a CustomTask or ComplexImageTask), its schedule, and the first delay it gives a task
/// created with `nocache` (zero: the row has none, the usual first delay applies).
struct Row {
    task_type: &'static str,
    class: Option<&'static str>,
    schedule: Schedule,
    first_delay_nocache: Duration,
}

const fn row(
    task_type: &'static str,
    class: Option<&'static str>,
    first_delay_ms: u64,
    first_delay_nocache_ms: u64,
    interval_ms: u64,
    timeout_s: u64,
) -> Row {
    Row {
        task_type,
        class,
        schedule: schedule(first_delay_ms, interval_ms, timeout_s),
        first_delay_nocache: Duration::from_millis(first_delay_nocache_ms),
    }
}

/// Rows by type and class, as the official Python SDK (capmonstercloudclient 4.3.1) picks
/// them: its request classes give the type and class, `GetResultTimeouts.py` the times
/// (first delay, first delay with nocache, interval, timeout). The rows without a class are
/// the type's own, also for a class without a row; the SDK has none for CustomTask and
/// ComplexImageTask alone, the .NET client's are used. Matched case-insensitively, after
/// removing a `Proxyless` suffix.
const ROWS: &[Row] = &[
    row("RecaptchaV2Task", None, 1000, 10_000, 3000, 180),
    row("RecaptchaV2EnterpriseTask", None, 1000, 10_000, 3000, 180),
    row("RecaptchaV3Task", None, 1000, 10_000, 3000, 180),
    // The SDK maps this type to its V3 row (180 s), not to its unused 150 s V3 Enterprise one.
    row("RecaptchaV3EnterpriseTask", None, 1000, 10_000, 3000, 180),
    row("ImageToTextTask", None, 350, 0, 200, 10),
    row("FunCaptchaTask", None, 1000, 10_000, 1000, 80),
    row("HCaptchaTask", None, 1000, 10_000, 3000, 180),
    row("GeeTestTask", None, 1000, 0, 1000, 80),
    row("TurnstileTask", None, 1000, 0, 1000, 80),
    row("AmazonTask", None, 1000, 10_000, 3000, 180),
    row("BinanceTask", None, 1000, 0, 1000, 20),
    row("MTCaptchaTask", None, 1000, 10_000, 3000, 180),
    row("YidunTask", None, 1000, 10_000, 3000, 180),
    row("ProsopoTask", None, 1000, 10_000, 3000, 180),
    row("ComplexImageTask", None, 350, 0, 200, 10),
    row("ComplexImageTask", Some("recaptcha"), 350, 0, 200, 10),
    row("ComplexImageTask", Some("hcaptcha"), 350, 0, 200, 10),
    row("ComplexImageTask", Some("funcaptcha"), 350, 0, 200, 10),
    row("ComplexImageTask", Some("recognition"), 350, 0, 200, 10),
    row("CustomTask", None, 1000, 0, 3000, 180),
    row("CustomTask", Some("DataDome"), 1000, 0, 3000, 180),
    row("CustomTask", Some("TenDI"), 1000, 10_000, 3000, 180),
    row("CustomTask", Some("Basilisk"), 1000, 10_000, 3000, 100),
    row("CustomTask", Some("Imperva"), 1000, 0, 1000, 15),
    row("CustomTask", Some("Temu"), 1000, 10_000, 3000, 180),
    row("CustomTask", Some("altcha"), 1000, 0, 1000, 50),
    row("CustomTask", Some("Castle"), 1000, 0, 1000, 60),
    row("CustomTask", Some("tspd"), 1000, 0, 1000, 60),
    row("CustomTask", Some("HUNT"), 1000, 0, 3000, 180),
    row("CustomTask", Some("alibaba"), 1000, 0, 3000, 120),
    row("CustomTask", Some("friendly"), 1000, 0, 3000, 180),
];

/// What of a task picks its schedule: its `type`, its `class` and its `nocache` flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskHead {
    pub task_type: String,
    pub class: Option<String>,
    pub nocache: bool,
}

impl TaskHead {
    /// Reads the head of `task_json`, the `task` object as given to createTask: a JSON
    /// object with a non-empty string `type`; `class` counts when it is a string, `nocache`
    /// when it is `true`. Other members, of any size, are skipped. Err: why it is not a task.
    pub fn parse(task_json: &str) -> Result<TaskHead, String> {
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
            #[serde(default, borrow)]
            class: Option<&'a serde_json::value::RawValue>,
            #[serde(default, borrow)]
            nocache: Option<&'a serde_json::value::RawValue>,
        }
        let task = task_json.trim();
        if !task.starts_with('{') {
            return Err("task_json must be a JSON object".into());
        }
        let head: Head = serde_json::from_str(task).map_err(|e| {
            format!(
                "task_json must be a JSON object with a string \"type\" member: {}",
                crate::api::text::truncate(&e.to_string(), 200)
            )
        })?;
        if head.kind.is_empty() {
            return Err("task_json has an empty \"type\"".into());
        }
        let class = head.class.and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
        let nocache = head.nocache.is_some_and(|raw| raw.get() == "true");
        Ok(TaskHead { task_type: head.kind.into_owned(), class, nocache })
    }
}

/// The schedule for a task as created: the row of its type and class (a CustomTask or
/// ComplexImageTask whose class has no row gets its type's, as [`for_task_type`] gives it;
/// an unknown type gets [`DEFAULT`]), its first delay the row's `nocache` one when the task
/// has `nocache` and the row gives one.
pub fn for_task(task: &TaskHead) -> Schedule {
    let base = without_proxyless(&task.task_type);
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let class_row = task.class.as_deref().and_then(|class| {
        ROWS.iter().find(|row| same(row.task_type, base) && row.class.is_some_and(|c| same(c, class)))
    });
    match class_row.or_else(|| type_row(base)) {
        Some(row) if task.nocache && !row.first_delay_nocache.is_zero() => {
            Schedule { first_delay: row.first_delay_nocache, ..row.schedule }
        }
        Some(row) => row.schedule,
        None => DEFAULT,
    }
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
