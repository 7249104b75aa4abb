//! `cm_waiter`: many waits driven by the library's own threads, their outcomes taken with
//! `cm_waiter_next` (or when `cm_waiter_fd` is readable).

use std::ffi::c_char;
use std::time::Duration;

use crate::api::error::{Code, Error};
use crate::ffi::arguments::{handle, optional_text, out, shared, text};
use crate::ffi::boundary;
use crate::ffi::client::cm_client;
use crate::ffi::handle::{free_box, into_box, opaque};
use crate::ffi::library::cm_code;
use crate::ffi::result::{cm_result, CallResult};
use crate::ffi::wait::cm_wait_options;
use crate::wait::waiter::{Next, Waiter};

opaque! {
    /// A set of waits that the library drives on its own threads. Made by `cm_waiter_new`,
    /// freed by `cm_waiter_free`. It keeps its client alive, so the client may be freed first.
    pub struct cm_waiter(Box<Waiter>);
}

/// Creates a waiter on `client` in `*out_waiter`, to free with `cm_waiter_free`. Its waits
/// share the client's connections and budget; the client's waiters share at most
/// `max_connections` threads, started as they are needed.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_new(client: *const cm_client, out_waiter: *mut *mut cm_waiter) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::code(|| {
            let mut out_waiter = out(out_waiter, "out_waiter")?;
            let waiter = Waiter::new(&shared(client, "client")?)?;
            out_waiter.write(into_box(waiter));
            Ok(())
        })
    }
}

/// Adds a wait for `task_id`: it runs exactly as `cm_wait_result` would (schedule, retries,
/// back-off, budget, `options->cancel`, the deadline counted from now) and comes out of
/// `cm_waiter_next` with `tag`. The arguments are checked as `cm_wait_result` checks them
/// (CM_ERR_INVALID_ARGUMENT, nothing queued); the options are copied (NULL: the defaults).
/// Never blocks on the network. CM_ERR_CANCELLED after `cm_waiter_shutdown`.
/// `cm_waiter_add_with_result` also says why a wait was refused.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_add(
    waiter: *mut cm_waiter,
    task_id: i64,
    options: *const cm_wait_options,
    tag: u64,
) -> cm_code {
    // SAFETY: forwarded contract.
    unsafe { cm_waiter_add_with_result(waiter, task_id, options, tag, std::ptr::null_mut()) }
}

/// `cm_waiter_add`, and given an `out_result` (NULL is allowed, as for the setters) a result
/// on every return: on a refusal its message says why, naming the argument or saying that the
/// waiter is shut down.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_add_with_result(
    waiter: *mut cm_waiter,
    task_id: i64,
    options: *const cm_wait_options,
    tag: u64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, task_id, || {
            let (waiter, (schedule, cancel)) = (handle(waiter, "waiter")?, cm_wait_options::read(options));
            waiter.add(task_id, &schedule, cancel, tag)?;
            Ok(CallResult::ok(&format!("the wait for task {task_id} was added")).with_task_id(task_id))
        })
    }
}

/// Adds a solve: creates the task `task_json` (as `cm_create_task` does) on a thread of the
/// library, then waits for it exactly as `cm_waiter_add` would, the deadline counted from the
/// creation; it comes out of `cm_waiter_next` once, with `tag`: the wait's outcome (its task
/// id, its solution, the wait's request count), or the createTask's failure (task id 0; its
/// message, service error and request count). So an event loop solves without a thread of its
/// own per call. `callback_url` may be NULL; `options` as for `cm_waiter_add` (NULL: the
/// defaults; `cm_wait_options_for_task` gives the task type's schedule), its `cancel` stopping
/// the createTask too. The options are checked now (CM_ERR_INVALID_ARGUMENT, nothing queued),
/// the task when it is sent. Never blocks on the network; the createTask requests of one
/// client's waiter run on at most `max_connections` threads. CM_ERR_CANCELLED after
/// `cm_waiter_shutdown`, which also ends the solves not yet created (CM_ERR_CANCELLED, no
/// request sent) and cancels the createTask requests in flight. `out_result` (NULL is allowed)
/// says why a solve was refused.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_add_solve(
    waiter: *mut cm_waiter,
    task_json: *const c_char,
    callback_url: *const c_char,
    options: *const cm_wait_options,
    tag: u64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            let (waiter, task_json, callback_url, (schedule, cancel)) = (
                handle(waiter, "waiter")?,
                text(task_json, "task_json")?,
                optional_text(callback_url, "callback_url")?,
                cm_wait_options::read(options),
            );
            waiter.add_solve(task_json, callback_url, &schedule, cancel, tag)?;
            Ok(CallResult::ok("the solve was added"))
        })
    }
}

/// Takes one finished wait: CM_OK with its `*out_tag` and `*out_result` (the wait's own
/// outcome is `cm_result_code`; free it with `cm_result_free`); CM_ERR_TIMEOUT with
/// `*out_result` NULL when none finished within `timeout_ms` (0: do not block);
/// CM_ERR_CANCELLED with `*out_result` NULL once the waiter is shut down and every wait has
/// come out. `*out_result` is written on every return but a NULL `out_result`. Any number of
/// threads may call it at once; each finished wait goes to exactly one caller.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_next(
    waiter: *mut cm_waiter,
    timeout_ms: u32,
    out_tag: *mut u64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::code(|| {
            // Written first, so that every return but this refusal leaves it defined.
            let mut out_result = out(out_result, "out_result")?;
            out_result.write(std::ptr::null_mut());
            let (mut out_tag, waiter) = (out(out_tag, "out_tag")?, handle(waiter, "waiter")?);
            match waiter.next(Duration::from_millis(u64::from(timeout_ms))) {
                Next::Finished(finished) => {
                    out_tag.write(finished.tag);
                    out_result.write(CallResult::from_task_report(finished.report, finished.task_id).into_raw());
                    Ok(())
                }
                Next::TimedOut => Err(Error::new(Code::Timeout, "no wait finished in time")),
                Next::ShutDown => Err(Error::new(Code::Cancelled, "the waiter is shut down")),
            }
        })
    }
}

/// A file descriptor that is readable while at least one finished wait is queued, and not
/// otherwise: put it in poll/epoll/select or an event loop, then call `cm_waiter_next` with
/// timeout 0. Owned by the waiter: never close it, never read from or write to it (the
/// library keeps its state). A shutdown makes it readable only through the cancelled waits it
/// queues: with none pending nothing arrives, so a loop that shuts its waiter down calls
/// `cm_waiter_next` itself to see CM_ERR_CANCELLED. -1 for NULL or where the platform has none.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_fd(waiter: *const cm_waiter) -> i32 {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(-1, || Ok(handle(waiter, "waiter")?.fd().unwrap_or(-1))) }
}

/// Waits added and not yet taken by `cm_waiter_next` (running or finished). 0 for NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_pending(waiter: *const cm_waiter) -> u64 {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe { boundary::value(0, || Ok(handle(waiter, "waiter")?.pending())) }
}

/// Cancels every wait (sleeping ones at once, requests in flight within milliseconds); each
/// still comes out of `cm_waiter_next` with CM_ERR_CANCELLED. Afterwards `cm_waiter_add` is
/// refused and `cm_waiter_next` returns CM_ERR_CANCELLED once the queue is empty, so a
/// dispatcher thread can drain and stop. Idempotent; NULL is ignored.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_shutdown(waiter: *mut cm_waiter) {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::value((), || {
            handle(waiter, "waiter")?.shutdown();
            Ok(())
        })
    }
}

/// Shuts the waiter down, frees what is queued, and, for the client's last waiter, ends the
/// library's threads. NULL is fine. A thread blocked in `cm_waiter_next` on it must have
/// returned first: `cm_waiter_shutdown` wakes it.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_free(waiter: *mut cm_waiter) {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::value((), || {
            free_box(waiter);
            Ok(())
        })
    }
}
