//! Library-wide functions: the version and the names of the return codes.

use std::ffi::{c_char, CStr};

use crate::error::Code;
use crate::ffi::boundary::catch;

/// A return code: `CM_OK` or one of the `CM_ERR_*` values. Numbers are never reused or
/// renumbered; new codes are added at the end.
pub type cm_code = i32;

/// Success.
pub const CM_OK: cm_code = 0;
/// An argument was NULL, not UTF-8, empty or out of range; nothing was sent.
pub const CM_ERR_INVALID_ARGUMENT: cm_code = 1;
/// The service answered with an error (`errorId != 0`): see `cm_result_api_error_code`.
pub const CM_ERR_API: cm_code = 2;
/// Connection refused or reset, DNS, TLS, or an answer cut short.
pub const CM_ERR_NETWORK: cm_code = 3;
/// A request, or a wait, ran out of time.
pub const CM_ERR_TIMEOUT: cm_code = 4;
/// A non-2xx HTTP status without an API error body (3xx included: redirects are not followed).
pub const CM_ERR_HTTP_STATUS: cm_code = 5;
/// The answer was not what the API promises (not JSON, unknown status, too large, ...).
pub const CM_ERR_BAD_RESPONSE: cm_code = 6;
/// The task's 120 getTaskResult requests, or the wait's `max_requests`, are spent.
pub const CM_ERR_BUDGET_EXHAUSTED: cm_code = 7;
/// The wait's `cm_cancel` was triggered.
pub const CM_ERR_CANCELLED: cm_code = 8;
/// A bug in the library (a caught panic). Please report it.
pub const CM_ERR_INTERNAL: cm_code = 9;

/// The library's version as MAJOR.MINOR.PATCH.
pub const CM_VERSION_MAJOR: u32 = 0;
pub const CM_VERSION_MINOR: u32 = 2;
pub const CM_VERSION_PATCH: u32 = 0;

const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(version) => version,
    Err(_) => panic!("the package version contains a NUL byte"),
};

/// The library's version, e.g. "0.1.0". Static storage: never free it.
#[no_mangle]
pub extern "C" fn cm_version() -> *const c_char {
    VERSION.as_ptr()
}

/// The name of a code, e.g. "CM_ERR_API"; "CM_ERR_UNKNOWN" for any other number. Static
/// storage: never free it.
#[no_mangle]
pub extern "C" fn cm_code_name(code: i32) -> *const c_char {
    catch(c"CM_ERR_UNKNOWN".as_ptr(), || code_name(code).as_ptr())
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
    fn constants_match_the_core_codes() {
        let constants = [
            CM_ERR_INVALID_ARGUMENT,
            CM_ERR_API,
            CM_ERR_NETWORK,
            CM_ERR_TIMEOUT,
            CM_ERR_HTTP_STATUS,
            CM_ERR_BAD_RESPONSE,
            CM_ERR_BUDGET_EXHAUSTED,
            CM_ERR_CANCELLED,
            CM_ERR_INTERNAL,
        ];
        assert_eq!(constants.to_vec(), Code::ALL.map(|code| code as cm_code).to_vec());
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
