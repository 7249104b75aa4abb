//! The one way an export reads its arguments: every pointer from C is checked here, and only
//! here, for NULL and every string for UTF-8.
//!
//! A check fails with a [`Refusal`] naming the C parameter. It costs no allocation: an export
//! that answers with a code or a `cm_result` turns it into an [`Error`] (`?` does,
//! CM_ERR_INVALID_ARGUMENT with "{name} is NULL" or "{name} is not valid UTF-8 (at byte N)"),
//! and an accessor just returns its documented default.
//!
//! Each function is `unsafe`: the pointer is NULL or valid, as the header's rules promise for
//! every argument of an export.

use std::ffi::{c_char, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::api::error::Error;
use crate::ffi::handle::{clone_arc, value_ptr, Castable, SharedArc};

/// An argument refused before anything was done.
#[derive(Debug)]
pub(crate) enum Refusal {
    Null(&'static str),
    NotUtf8 { name: &'static str, valid_up_to: usize },
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Error {
        Error::invalid_argument(match refusal {
            Refusal::Null(name) => format!("{name} is NULL"),
            Refusal::NotUtf8 { name, valid_up_to } => format!("{name} is not valid UTF-8 (at byte {valid_up_to})"),
        })
    }
}

/// The value behind a handle, borrowed for the call. `name` is the C parameter's.
///
/// # Safety
/// `ptr` is NULL or a live handle of type `C` made by this library.
pub(crate) unsafe fn handle<'a, C: Castable>(ptr: *const C, name: &'static str) -> Result<&'a C::RustType, Refusal> {
    // SAFETY: the caller's contract: NULL or a live handle, whose value sits at the pointer.
    unsafe { value_ptr(ptr).as_ref() }.ok_or(Refusal::Null(name))
}

/// A reference of the library's own to the value behind a shared handle, which it keeps
/// beyond the call (a waiter keeps its client).
///
/// # Safety
/// As for [`handle`].
pub(crate) unsafe fn shared<C: Castable<Ownership = SharedArc>>(
    ptr: *const C,
    name: &'static str,
) -> Result<Arc<C::RustType>, Refusal> {
    // SAFETY: forwarded contract.
    unsafe { clone_arc(ptr) }.ok_or(Refusal::Null(name))
}

/// Like [`shared`], but NULL means "none" (a `cancel` field of the options).
///
/// # Safety
/// As for [`handle`].
pub(crate) unsafe fn optional_shared<C: Castable<Ownership = SharedArc>>(ptr: *const C) -> Option<Arc<C::RustType>> {
    // SAFETY: forwarded contract.
    unsafe { clone_arc(ptr) }
}

/// A C string as UTF-8.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, name: &'static str) -> Result<&'a str, Refusal> {
    if ptr.is_null() {
        return Err(Refusal::Null(name));
    }
    // SAFETY: not NULL, NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| Refusal::NotUtf8 { name, valid_up_to: e.valid_up_to() })
}

/// Like [`text`], but NULL means "not given".
///
/// # Safety
/// As for [`text`].
pub(crate) unsafe fn optional_text<'a>(ptr: *const c_char, name: &'static str) -> Result<Option<&'a str>, Refusal> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { text(ptr, name) }.map(Some)
}

/// A struct the caller passes by pointer (`cm_wait_options`, `cm_call_options`), copied;
/// `None` for NULL, which means "the defaults".
///
/// # Safety
/// `ptr` is NULL or readable.
pub(crate) unsafe fn optional_struct<T: Copy>(ptr: *const T) -> Option<T> {
    // SAFETY: the caller's contract; the options structs are plain integers and pointers, so
    // every bit pattern is a valid value.
    (!ptr.is_null()).then(|| unsafe { ptr.read() })
}

/// An out-parameter, checked before anything is done or sent.
///
/// # Safety
/// `ptr` is NULL or writable for `'a`.
pub(crate) unsafe fn out<'a, T>(ptr: *mut T, name: &'static str) -> Result<Out<'a, T>, Refusal> {
    NonNull::new(ptr).map(|ptr| Out { ptr, lifetime: PhantomData }).ok_or(Refusal::Null(name))
}

/// Like [`out`], but NULL means "not wanted" (the `out_result` of the setters).
///
/// # Safety
/// As for [`out`].
pub(crate) unsafe fn optional_out<'a, T>(ptr: *mut T) -> Option<Out<'a, T>> {
    NonNull::new(ptr).map(|ptr| Out { ptr, lifetime: PhantomData })
}

/// A checked out-parameter: writable, by the contract accepted when it was checked.
pub(crate) struct Out<'a, T> {
    ptr: NonNull<T>,
    lifetime: PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    /// Stores `value` (the old contents, possibly uninitialised, are not dropped).
    pub(crate) fn write(&mut self, value: T) {
        // SAFETY: not NULL and writable: `out`'s contract.
        unsafe { self.ptr.as_ptr().write(value) }
    }
}

/// A versioned struct the library fills (`cm_client_stats`): its first member, a `uint32_t`,
/// is the size the caller's version of the struct has (`sizeof`); the library writes what fits
/// of its own version, so a program built against an older header gets the members it knows.
///
/// # Safety
/// `ptr` is NULL, or readable for 4 bytes and then writable for the size it holds.
pub(crate) unsafe fn fill_versioned<T: Copy>(ptr: *mut T, name: &'static str, value: &T) -> Result<(), Error> {
    let ptr = NonNull::new(ptr).ok_or(Refusal::Null(name))?;
    // SAFETY: the caller's contract: the size member is readable.
    let size = unsafe { ptr.as_ptr().cast::<u32>().read_unaligned() } as usize;
    if size < 2 * std::mem::size_of::<u32>() {
        return Err(Error::invalid_argument(format!("{name}->size is {size}: set it to sizeof the struct")));
    }
    let amount = size.min(std::mem::size_of::<T>());
    // SAFETY: the caller's contract: writable for `size` bytes, and `amount` is no more; the
    // source is a whole `T`. The size member is written too, with the caller's own value.
    unsafe { std::ptr::copy_nonoverlapping((value as *const T).cast::<u8>(), ptr.as_ptr().cast::<u8>(), amount) };
    // SAFETY: as above; the caller's size stays what it set.
    unsafe { ptr.as_ptr().cast::<u32>().write_unaligned(size as u32) };
    Ok(())
}
