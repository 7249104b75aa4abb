//! One typed way from a C pointer to the Rust value behind it, as rustls-ffi's `Castable`.
//!
//! Each opaque C type names its Rust type and how the caller holds it: a `Box` (one owner,
//! freed once) or an `Arc` (the library may keep references of its own, e.g. a waiter keeps
//! its client, a wait keeps its cancel token). Nothing else casts a handle.

use std::sync::Arc;

use crate::api::error::Error;

/// The caller owns the only reference: `Box::into_raw` / `Box::from_raw`.
pub(crate) struct OwnedBox;
/// The caller owns one reference of several: `Arc::into_raw` / `Arc::from_raw`.
pub(crate) struct SharedArc;

/// Pairs an opaque C type with its Rust value and ownership.
pub(crate) trait Castable {
    type RustType;
    type Ownership;
}

/// The value behind a handle argument, borrowed for the call.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `C` made by this library.
pub(crate) unsafe fn borrow<'a, C: Castable>(ptr: *const C, name: &str) -> Result<&'a C::RustType, Error> {
    // SAFETY: the caller's contract: a live handle whose pointee is a C::RustType (a Box's or
    // an Arc's contents both sit at the pointer).
    unsafe { (ptr as *const C::RustType).as_ref() }.ok_or_else(|| Error::invalid_argument(format!("{name} is NULL")))
}

/// Hands a new value to C.
pub(crate) fn into_box<C: Castable<Ownership = OwnedBox>>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)) as *mut C
}

/// Takes back and drops a boxed value. NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or a live handle from [`into_box`], not used again.
pub(crate) unsafe fn free_box<C: Castable<Ownership = OwnedBox>>(ptr: *mut C) {
    if !ptr.is_null() {
        // SAFETY: made by Box::into_raw in into_box; the caller gives it up.
        drop(unsafe { Box::from_raw(ptr as *mut C::RustType) });
    }
}

/// Hands one reference of a shared value to C.
pub(crate) fn into_arc<C: Castable<Ownership = SharedArc>>(value: Arc<C::RustType>) -> *mut C {
    Arc::into_raw(value) as *mut C
}

/// A reference of the library's own to a shared value, `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle from [`into_arc`].
pub(crate) unsafe fn clone_arc<C: Castable<Ownership = SharedArc>>(ptr: *const C) -> Option<Arc<C::RustType>> {
    if ptr.is_null() {
        return None;
    }
    let ptr = ptr as *const C::RustType;
    // SAFETY: a live pointer from Arc::into_raw: add a reference, then take it over.
    unsafe {
        Arc::increment_strong_count(ptr);
        Some(Arc::from_raw(ptr))
    }
}

/// Drops the caller's reference. NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or a live handle from [`into_arc`], not used again by the caller.
pub(crate) unsafe fn free_arc<C: Castable<Ownership = SharedArc>>(ptr: *const C) {
    if !ptr.is_null() {
        // SAFETY: made by Arc::into_raw in into_arc; the caller gives its reference up.
        drop(unsafe { Arc::from_raw(ptr as *const C::RustType) });
    }
}
