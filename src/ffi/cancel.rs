//! `cm_cancel`: a token that stops a wait or a call from another thread, also mid-request.
//!
//! Ownership: `Arc<Cancel>` (`SharedArc`), made by `cm_cancel_new`; `cm_cancel_free` drops the
//! caller's reference. A wait or call holds its own reference while it runs, so freeing the
//! token during one that already started is safe. Trigger it from any thread, any number of
//! times.

use crate::cancel::Cancel;
use crate::ffi::boundary::{catch, out_arg, with_code};
use crate::ffi::handle::{borrow, free_arc, into_arc, Castable, SharedArc};
use crate::ffi::library::cm_code;

/// A cancellation token. Opaque.
pub struct cm_cancel {
    _private: [u8; 0],
}

impl Castable for cm_cancel {
    type RustType = Cancel;
    type Ownership = SharedArc;
}

/// Creates a token, not triggered. Free it with `cm_cancel_free`.
///
/// # Safety
/// `out_cancel` is NULL or writable.
#[no_mangle]
pub unsafe extern "system" fn cm_cancel_new(out_cancel: *mut *mut cm_cancel) -> cm_code {
    with_code(|| {
        out_arg(out_cancel, "out_cancel")?;
        // SAFETY: checked not NULL; writable by contract.
        unsafe { out_cancel.write(into_arc(std::sync::Arc::new(Cancel::new()))) };
        Ok(())
    })
}

/// Triggers the token: waits and calls using it return CM_ERR_CANCELLED within milliseconds,
/// also while a request is in flight (its connection is dropped). Thread-safe, idempotent;
/// the token stays triggered. NULL is ignored.
///
/// # Safety
/// `cancel` is NULL or a live token.
#[no_mangle]
pub unsafe extern "system" fn cm_cancel_trigger(cancel: *const cm_cancel) {
    // SAFETY: the caller's contract.
    if let Ok(cancel) = unsafe { borrow(cancel, "cancel") } {
        catch((), || cancel.trigger());
    }
}

/// Frees the caller's reference to the token. NULL is fine.
///
/// # Safety
/// `cancel` is NULL or a live token, not used again by the caller afterwards.
#[no_mangle]
pub unsafe extern "system" fn cm_cancel_free(cancel: *mut cm_cancel) {
    // SAFETY: the caller's contract.
    catch((), || unsafe { free_arc(cancel) });
}
