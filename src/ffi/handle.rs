//! Opaque C types and the ownership behind their pointers, as rustls-ffi's `Castable`.
//!
//! [`opaque!`] declares each C type: its name, the Rust value behind it and how the caller
//! holds that value, a `Box` (one owner, freed once) or an `Arc` (the library may keep
//! references of its own, e.g. a waiter keeps its client, a wait keeps its cancel token).
//! Handing a value to C and taking it back are here; reading a handle argument is
//! [`arguments`](super::arguments)'s. Nothing else casts a handle.

use std::sync::Arc;

/// The caller owns the only reference: `Box::into_raw` / `Box::from_raw`.
pub(crate) struct OwnedBox;
/// The caller owns one reference of several: `Arc::into_raw` / `Arc::from_raw`.
pub(crate) struct SharedArc;

/// Pairs an opaque C type with its Rust value and ownership.
pub(crate) trait Castable {
    type RustType;
    type Ownership;
}

/// Declares an opaque C type: `pub struct cm_x(Box<Value>);` or `pub struct cm_x(Arc<Value>);`.
///
/// C sees an incomplete struct; Rust gets a zero-sized struct that is never built, only
/// pointed to, and its [`Castable`] impl. The doc comment, which the header keeps, says who
/// makes and frees the object. cbindgen does not expand macros: build.rs's copy of the sources
/// drops the `opaque! {` line and its closing `}`, and cbindgen then reads the tuple struct
/// as the opaque type it is.
macro_rules! opaque {
    ($(#[$doc:meta])* pub struct $name:ident(Box<$value:ty>);) => {
        $crate::ffi::handle::opaque!(@declare $(#[$doc])* $name, $value, OwnedBox);
    };
    ($(#[$doc:meta])* pub struct $name:ident(Arc<$value:ty>);) => {
        $crate::ffi::handle::opaque!(@declare $(#[$doc])* $name, $value, SharedArc);
    };
    (@declare $(#[$doc:meta])* $name:ident, $value:ty, $ownership:ident) => {
        $(#[$doc])*
        pub struct $name {
            _private: [u8; 0],
        }

        impl $crate::ffi::handle::Castable for $name {
            type RustType = $value;
            type Ownership = $crate::ffi::handle::$ownership;
        }
    };
}
pub(crate) use opaque;

/// The Rust value a handle points to (a `Box`'s or an `Arc`'s contents both sit there).
pub(crate) fn value_ptr<C: Castable>(ptr: *const C) -> *const C::RustType {
    ptr.cast()
}

/// Hands a new value to C.
pub(crate) fn into_box<C: Castable<Ownership = OwnedBox>>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// Takes back and drops a boxed value. NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or a live handle from [`into_box`], not used again.
pub(crate) unsafe fn free_box<C: Castable<Ownership = OwnedBox>>(ptr: *mut C) {
    if !ptr.is_null() {
        // SAFETY: made by Box::into_raw in into_box; the caller gives it up.
        drop(unsafe { Box::from_raw(ptr.cast::<C::RustType>()) });
    }
}

/// Hands one reference of a shared value to C.
pub(crate) fn into_arc<C: Castable<Ownership = SharedArc>>(value: Arc<C::RustType>) -> *mut C {
    Arc::into_raw(value).cast_mut().cast()
}

/// A reference of the library's own to a shared value, `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle from [`into_arc`].
pub(crate) unsafe fn clone_arc<C: Castable<Ownership = SharedArc>>(ptr: *const C) -> Option<Arc<C::RustType>> {
    if ptr.is_null() {
        return None;
    }
    let ptr = value_ptr(ptr);
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
        drop(unsafe { Arc::from_raw(value_ptr(ptr)) });
    }
}
