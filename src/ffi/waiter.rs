//! `cm_waiter`: many waits driven by the library's own threads, their outcomes taken with
//! `cm_waiter_next` (or when `cm_waiter_fd` is readable).
//!
//! Ownership: `Box<Waiter>` (`OwnedBox`), made by `cm_waiter_new`, freed by `cm_waiter_free`.
//! It holds a reference to its client, so the client may be freed first. Every function but
//! `cm_waiter_free` may be called from many threads at once.

use std::time::Duration;

use crate::api::error::{Code, Error};
use crate::ffi::boundary::{catch, out_arg, with_code, with_result};
use crate::ffi::client::cm_client;
use crate::ffi::handle::{borrow, clone_arc, free_box, into_box, Castable, OwnedBox};
use crate::ffi::library::cm_code;
use crate::ffi::result::{cm_result, CallResult};
use crate::ffi::wait::{cm_wait_options, wait_options};
use crate::wait::waiter::{Next, Waiter};

/// A set of waits that the library drives on its own threads. Opaque.
pub struct cm_waiter {
    _private: [u8; 0],
}

impl Castable for cm_waiter {
    type RustType = Waiter;
    type Ownership = OwnedBox;
}

/// Creates a waiter on `client`. Its waits share the client's connections and budget; the
/// client's waiters share at most `max_connections` threads, started as they are needed.
///
/// # Safety
/// `client` is NULL or a live client; `out_waiter` is NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_new(client: *const cm_client, out_waiter: *mut *mut cm_waiter) -> cm_code {
    with_code(|| {
        out_arg(out_waiter, "out_waiter")?;
        // SAFETY: the caller's contract.
        let client = unsafe { clone_arc(client) }.ok_or_else(|| Error::invalid_argument("client is NULL"))?;
        let waiter = Waiter::new(&client)?;
        // SAFETY: checked not NULL above; writable by contract.
        unsafe { out_waiter.write(into_box(waiter)) };
        Ok(())
    })
}

/// Adds a wait for `task_id`: it runs exactly as `cm_wait_result` would (schedule, retries,
/// back-off, budget, `options->cancel`, the deadline counted from now) and comes out of
/// `cm_waiter_next` with `tag`. The arguments are checked as `cm_wait_result` checks them
/// (CM_ERR_INVALID_ARGUMENT, nothing queued); the options are copied (NULL: the defaults).
/// Never blocks on the network. CM_ERR_CANCELLED after `cm_waiter_shutdown`.
/// `cm_waiter_add_with_result` also says why a wait was refused.
///
/// # Safety
/// `waiter` is NULL or a live waiter; `options` is NULL or readable, its `cancel` NULL or a
/// live token.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_add(
    waiter: *mut cm_waiter,
    task_id: i64,
    options: *const cm_wait_options,
    tag: u64,
) -> cm_code {
    // SAFETY: forwarded contract.
    with_code(|| unsafe { add(waiter, task_id, options, tag) })
}

/// `cm_waiter_add`, and given an `out_result` (NULL is allowed, as for the setters) a result
/// on every return: on a refusal its message says why, naming the argument or saying that the
/// waiter is shut down.
///
/// # Safety
/// As `cm_waiter_add`; `out_result` is NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_add_with_result(
    waiter: *mut cm_waiter,
    task_id: i64,
    options: *const cm_wait_options,
    tag: u64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    if out_result.is_null() {
        // SAFETY: forwarded contract.
        return unsafe { cm_waiter_add(waiter, task_id, options, tag) };
    }
    with_result(out_result, task_id, || {
        // SAFETY: forwarded contract.
        unsafe { add(waiter, task_id, options, tag) }?;
        Ok(CallResult::ok(&format!("the wait for task {task_id} was added")).with_task_id(task_id))
    })
}

/// # Safety
/// As `cm_waiter_add`.
unsafe fn add(waiter: *mut cm_waiter, task_id: i64, options: *const cm_wait_options, tag: u64) -> Result<(), Error> {
    // SAFETY: the caller's contract.
    let (waiter, options) = unsafe { (borrow(waiter, "waiter")?, wait_options(options)) };
    // SAFETY: the caller's contract for options.cancel.
    let cancel = unsafe { clone_arc(options.cancel) };
    waiter.add(task_id, &options.schedule(), cancel, tag)
}

/// Takes one finished wait: CM_OK with its `*out_tag` and `*out_result` (the wait's own
/// outcome is `cm_result_code`); CM_ERR_TIMEOUT with `*out_result` NULL when none finished
/// within `timeout_ms` (0: do not block); CM_ERR_CANCELLED with `*out_result` NULL once the
/// waiter is shut down and every wait has come out. Each finished wait goes to exactly one
/// caller.
///
/// # Safety
/// `waiter` is NULL or a live waiter; `out_tag` and `out_result` are NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_next(
    waiter: *mut cm_waiter,
    timeout_ms: u32,
    out_tag: *mut u64,
    out_result: *mut *mut cm_result,
) -> cm_code {
    with_code(|| {
        out_arg(out_result, "out_result")?;
        // SAFETY: checked not NULL; writable by contract. Written first, so that every
        // return but this refusal leaves it defined.
        unsafe { out_result.write(std::ptr::null_mut()) };
        out_arg(out_tag, "out_tag")?;
        // SAFETY: the caller's contract.
        let waiter = unsafe { borrow(waiter, "waiter") }?;
        match waiter.next(Duration::from_millis(u64::from(timeout_ms))) {
            Next::Finished(finished) => {
                let result = CallResult::from_task_report(finished.report, finished.task_id);
                // SAFETY: both checked not NULL above; writable by contract.
                unsafe {
                    out_tag.write(finished.tag);
                    out_result.write(result.into_raw());
                }
                Ok(())
            }
            Next::TimedOut => Err(Error::new(Code::Timeout, "no wait finished in time")),
            Next::ShutDown => Err(Error::new(Code::Cancelled, "the waiter is shut down")),
        }
    })
}

/// A file descriptor that is readable while at least one finished wait is queued, and not
/// otherwise: put it in poll/epoll/select or an event loop, then call `cm_waiter_next` with
/// timeout 0. Owned by the waiter: never close it, never read from or write to it (the
/// library keeps its state). A shutdown makes it readable only through the cancelled waits it
/// queues: with none pending nothing arrives, so a loop that shuts its waiter down calls
/// `cm_waiter_next` itself to see CM_ERR_CANCELLED. -1 for NULL or where the platform has none.
///
/// # Safety
/// `waiter` is NULL or a live waiter.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_fd(waiter: *const cm_waiter) -> i32 {
    // SAFETY: the caller's contract.
    catch(-1, || unsafe { borrow(waiter, "waiter") }.ok().and_then(Waiter::fd).unwrap_or(-1))
}

/// Waits added and not yet taken by `cm_waiter_next` (running or finished). 0 for NULL.
///
/// # Safety
/// `waiter` is NULL or a live waiter.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_pending(waiter: *const cm_waiter) -> u64 {
    // SAFETY: the caller's contract.
    catch(0, || unsafe { borrow(waiter, "waiter") }.map_or(0, Waiter::pending))
}

/// Cancels every wait (sleeping ones at once, requests in flight within milliseconds); each
/// still comes out of `cm_waiter_next` with CM_ERR_CANCELLED. Afterwards `cm_waiter_add` is
/// refused and `cm_waiter_next` returns CM_ERR_CANCELLED once the queue is empty, so a
/// dispatcher thread can drain and stop. Idempotent; NULL is ignored.
///
/// # Safety
/// `waiter` is NULL or a live waiter.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_shutdown(waiter: *mut cm_waiter) {
    // SAFETY: the caller's contract.
    if let Ok(waiter) = unsafe { borrow(waiter, "waiter") } {
        catch((), || waiter.shutdown());
    }
}

/// Shuts the waiter down, frees what is queued, and, for the client's last waiter, ends the
/// library's threads. NULL is fine.
///
/// # Safety
/// `waiter` is NULL or a live waiter that no other call is using, not used again afterwards.
#[no_mangle]
pub unsafe extern "system" fn cm_waiter_free(waiter: *mut cm_waiter) {
    // SAFETY: the caller's contract.
    catch((), || unsafe { free_box(waiter) });
}
