//! Library-wide functions: the version and the names of the return codes.

use std::ffi::{c_char, CStr};

use crate::api::error::Code;
use crate::ffi::boundary;

pub use crate::api::codes::*;

/// The library's version as MAJOR.MINOR.PATCH.
pub const CM_VERSION_MAJOR: u32 = 0;
pub const CM_VERSION_MINOR: u32 = 2;
pub const CM_VERSION_PATCH: u32 = 0;

const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(version) => version,
    Err(_) => panic!("the package version contains a NUL byte"),
};

/// The library's version as "MAJOR.MINOR.PATCH" (the CM_VERSION_* macros of the header the
/// library was built with). Static storage: never free it.
#[no_mangle]
pub extern "system" fn cm_version() -> *const c_char {
    boundary::value(VERSION.as_ptr(), || Ok(VERSION.as_ptr()))
}

/// The name of a code, e.g. "CM_ERR_API"; "CM_ERR_UNKNOWN" for any other number. Static
/// storage: never free it.
#[no_mangle]
pub extern "system" fn cm_code_name(code: i32) -> *const c_char {
    boundary::value(c"CM_ERR_UNKNOWN".as_ptr(), || Ok(code_name(code).as_ptr()))
}

pub(crate) fn code_name(code: i32) -> &'static CStr {
    if code == CM_OK {
        return c"CM_OK";
    }
    Code::ALL.iter().find(|c| **c as i32 == code).map_or(c"CM_ERR_UNKNOWN", |c| c.c_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_macros_match_cargo_toml() {
        assert_eq!(CM_VERSION_MAJOR.to_string(), env!("CARGO_PKG_VERSION_MAJOR"));
        assert_eq!(CM_VERSION_MINOR.to_string(), env!("CARGO_PKG_VERSION_MINOR"));
        assert_eq!(CM_VERSION_PATCH.to_string(), env!("CARGO_PKG_VERSION_PATCH"));
        assert_eq!(VERSION.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn every_code_has_its_name() {
        let names: Vec<_> = (-1..=10).map(|code| code_name(code).to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "CM_ERR_UNKNOWN",
                "CM_OK",
                "CM_ERR_INVALID_ARGUMENT",
                "CM_ERR_API",
                "CM_ERR_NETWORK",
                "CM_ERR_TIMEOUT",
                "CM_ERR_HTTP_STATUS",
                "CM_ERR_BAD_RESPONSE",
                "CM_ERR_BUDGET_EXHAUSTED",
                "CM_ERR_CANCELLED",
                "CM_ERR_INTERNAL",
                "CM_ERR_UNKNOWN"
            ]
        );
        assert_eq!(code_name(i32::MIN).to_str().unwrap(), "CM_ERR_UNKNOWN");
        assert_eq!(code_name(i32::MAX).to_str().unwrap(), "CM_ERR_UNKNOWN");
    }
}
