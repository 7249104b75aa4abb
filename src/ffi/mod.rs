//! The C ABI (`include/capmonster.h`): thin `extern "system"` wrappers over the safe core.
//!
//! Rules every function here follows:
//! - it is `extern "system"`: stdcall on 32-bit Windows, which VB6/VBA `Declare` and MQL4
//!   `#import` can only call, and the C convention everywhere else (so Linux and 64-bit Windows
//!   see plain C functions). The header marks each declaration `CM_CALL` to match; build.rs
//!   refuses an `extern "C"` function in src/ (it would be cdecl on 32-bit Windows);
//! - its body runs in the panic boundary, through one of the shapes of `boundary` (a value,
//!   a code, a code and a `cm_result`): no unwind crosses into C;
//! - it reads every argument through `arguments`, which checks each pointer for NULL and
//!   each string for UTF-8; no Rust enum, `&T` or `Box<T>` appears in a signature;
//! - calls that talk to the service hand back a `cm_result` on every return except a NULL
//!   `out_result`, so errors need no thread-local state;
//! - its contract with C is the header's preamble (cbindgen.toml), written once: pointers NULL
//!   or valid, strings NUL-terminated, each object freed once and never while another call uses
//!   it. The exports taking pointers are `unsafe fn`, and their `# Safety` section refers to
//!   that preamble; build.rs checks the section and leaves it out of the header.
//!
//! One file per C type, as in rustls-ffi: `client`, `cancel`, `result` (with the value behind
//! it in `call_result`, below the panic boundary that builds it), `wait` (options and
//! `cm_wait_result`), `waiter`, `calls` (the single API calls and their options), `library`
//! (version, codes), `log` (the log callback), `stats` (a client's counters). `handle`
//! declares the opaque types (`opaque!`) and moves their ownership across the boundary.

#![allow(non_camel_case_types)]

// In this order in the header: library-wide, then each type, then the calls.
pub mod library;
pub mod log;
pub mod client;
pub mod stats;
pub mod cancel;
pub mod wait;
pub mod waiter;
pub mod calls;
pub mod call_result;
pub mod result;

/// cbindgen:ignore
pub(crate) mod arguments;
/// cbindgen:ignore
pub(crate) mod boundary;
/// cbindgen:ignore
pub(crate) mod handle;

pub use calls::cm_call_options;
pub use cancel::cm_cancel;
pub use client::cm_client;
pub use library::cm_code;
pub use log::{cm_log_callback, cm_log_level};
pub use result::cm_result;
pub use stats::cm_client_stats;
pub use wait::cm_wait_options;
pub use waiter::cm_waiter;

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    /// The one way, kept: each export's body goes through `boundary` (or is another export
    /// with defaults filled in), only `arguments` and `handle` test a pointer for NULL, and only
    /// `boundary` catches a panic. Reads the sources as text (this file, which holds no
    /// export, is left out: it names what it looks for).
    #[test]
    fn every_export_goes_through_the_boundary_and_the_argument_checks() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
        let mut exports = 0;
        for entry in fs::read_dir(&dir).expect("src/ffi is readable") {
            let path = entry.expect("src/ffi is readable").path();
            let file = path.file_name().and_then(|name| name.to_str()).expect("a UTF-8 file name").to_owned();
            if file == "mod.rs" {
                continue;
            }
            let text = fs::read_to_string(&path).expect("sources are UTF-8");
            if !["arguments.rs", "handle.rs"].contains(&file.as_str()) {
                assert!(!text.contains("is_null()"), "{file}: a NULL check outside arguments.rs");
            }
            if file != "boundary.rs" {
                assert!(!text.contains("catch_unwind"), "{file}: a panic boundary outside boundary.rs");
            }
            for export in text.split("#[no_mangle]").skip(1) {
                let body = &export[..export.find("\n}\n").expect("an export ends with `}` at column 0")];
                let name = body.split("fn ").nth(1).and_then(|rest| rest.split('(').next()).unwrap_or_default();
                let forwards = body.contains("unsafe { cm_");
                assert!(body.contains("boundary::") || forwards, "{file}: {name} does not go through boundary");
                exports += 1;
            }
        }
        assert!(exports >= 40, "found only {exports} exports");
    }
}
