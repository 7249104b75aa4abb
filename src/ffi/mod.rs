//! The C ABI (`include/capmonster.h`): thin `extern "system"` wrappers over the safe core.
//!
//! Rules every function here follows:
//! - it is `extern "system"`: stdcall on 32-bit Windows, which VB6/VBA `Declare` and MQL4
//!   `#import` can only call, and the C convention everywhere else (so Linux and 64-bit Windows
//!   see plain C functions). The header marks each declaration `CM_CALL` to match; build.rs
//!   refuses an `extern "C"` function in src/ (it would be cdecl on 32-bit Windows);
//! - its body runs inside the panic boundary (`boundary`): no unwind crosses into C;
//! - every pointer from C is checked for NULL and every string for UTF-8 before use; no Rust
//!   enum, `&T` or `Box<T>` appears in a signature;
//! - calls that talk to the service hand back a `cm_result` on every return except a NULL
//!   `out_result`, so errors need no thread-local state.
//!
//! One file per C type, as in rustls-ffi: `client`, `cancel`, `result`, `wait` (options and
//! `cm_wait_result`), `waiter`, `calls` (the single API calls and their options), `library`
//! (version, codes). `handle` is the one way from a C pointer to its Rust value.

#![allow(non_camel_case_types)]

// In this order in the header: library-wide, then each type, then the calls.
pub mod library;
pub mod client;
pub mod cancel;
pub mod wait;
pub mod waiter;
pub mod calls;
pub mod result;

/// cbindgen:ignore
pub(crate) mod boundary;
/// cbindgen:ignore
pub(crate) mod handle;

pub use calls::cm_call_options;
pub use cancel::cm_cancel;
pub use client::cm_client;
pub use library::cm_code;
pub use result::cm_result;
pub use wait::cm_wait_options;
pub use waiter::cm_waiter;
