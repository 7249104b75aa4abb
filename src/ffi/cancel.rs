//! `cm_cancel`: a token that stops a `cm_wait_result` from another thread.
//!
//! Ownership: an `Arc<Cancel>` made by `cm_cancel_new`; `cm_cancel_free` drops the caller's
//! reference. A wait holds its own reference while it runs, so freeing the token during a
//! wait that already started is safe. Trigger it from any thread, any number of times.

use std::sync::Arc;

use crate::cancel::Cancel;
use crate::ffi::boundary::{catch, out_arg, with_code};
use crate::ffi::library::cm_code;

/// A cancellation token. Opaque.
pub struct cm_cancel {
    _private: [u8; 0],
}

/// Creates a token, not triggered. Free it with `cm_cancel_free`.
///
/// # Safety
/// `out_cancel` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cm_cancel_new(out_cancel: *mut *mut cm_cancel) -> cm_code {
    with_code(|| {
        out_arg(out_cancel, "out_cancel")?;
        // SAFETY: checked not NULL; writable by contract.
        unsafe { out_cancel.write(Arc::into_raw(Arc::new(Cancel::new())) as *mut cm_cancel) };
        Ok(())
    })
}

/// Triggers the token: waits using it return CM_ERR_CANCELLED promptly. Thread-safe,
/// idempotent; the token stays triggered. NULL is ignored.
///
/// # Safety
/// `cancel` is NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn cm_cancel_trigger(cancel: *const cm_cancel) {
    // SAFETY: the caller's contract: NULL or a live Arc<Cancel> pointer.
    if let Some(cancel) = unsafe { (cancel as *const Cancel).as_ref() } {
        catch((), || cancel.trigger());
    }
}

/// Frees the caller's reference to the token. NULL is fine.
///
/// # Safety
/// `cancel` is NULL or a live token, not used again by the caller afterwards.
#[no_mangle]
pub unsafe extern "C" fn cm_cancel_free(cancel: *mut cm_cancel) {
    if !cancel.is_null() {
        // SAFETY: made by Arc::into_raw in cm_cancel_new; the caller gives up its reference.
        catch((), || drop(unsafe { Arc::from_raw(cancel as *const Cancel) }));
    }
}

/// Takes a reference of its own to a token from C, for the length of a wait.
///
/// # Safety
/// `cancel` is NULL or a live token.
pub(crate) unsafe fn share(cancel: *const cm_cancel) -> Option<Arc<Cancel>> {
    if cancel.is_null() {
        return None;
    }
    let cancel = cancel as *const Cancel;
    // SAFETY: a live pointer from Arc::into_raw: add a reference, then take it over.
    unsafe {
        Arc::increment_strong_count(cancel);
        Some(Arc::from_raw(cancel))
    }
}
