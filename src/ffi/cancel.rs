//! `cm_cancel`: a token that stops a wait or a call from another thread, also mid-request.

use std::sync::Arc;

use crate::cancel::Cancel;
use crate::ffi::arguments::{handle, out};
use crate::ffi::boundary;
use crate::ffi::handle::{free_arc, into_arc, opaque};
use crate::ffi::library::cm_code;

opaque! {
    /// A cancellation token. Made by `cm_cancel_new`, freed by `cm_cancel_free`; given to
    /// calls and waits through the `cancel` field of their options. Trigger it from any thread,
    /// any number of times. A wait added with `cm_waiter_add` keeps the token alive, so it may
    /// be freed once `cm_waiter_add` has returned.
    pub struct cm_cancel(Arc<Cancel>);
}

/// Creates a token, not triggered, in `*out_cancel`. Free it with `cm_cancel_free`.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_cancel_new(out_cancel: *mut *mut cm_cancel) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::code(|| {
            out(out_cancel, "out_cancel")?.write(into_arc(Arc::new(Cancel::new())));
            Ok(())
        })
    }
}

/// Triggers the token: waits and calls using it return CM_ERR_CANCELLED within milliseconds,
/// also while a request is in flight (its connection is dropped). Idempotent; the token stays
/// triggered. NULL is ignored.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_cancel_trigger(cancel: *const cm_cancel) {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::value((), || {
            handle(cancel, "cancel")?.trigger();
            Ok(())
        })
    }
}

/// Frees the caller's reference to the token. NULL is fine.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_cancel_free(cancel: *mut cm_cancel) {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::value((), || {
            free_arc(cancel);
            Ok(())
        })
    }
}
