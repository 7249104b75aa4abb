//! Library-wide functions: the version, the names of the return codes, the service's error
//! glossary, and the choice of where the request budget counts.

use std::ffi::{c_char, CStr};

use crate::api::error::Code;
use crate::api::glossary;
use crate::ffi::arguments::{optional_text, text};
use crate::ffi::boundary;
use crate::ffi::call_result::CallResult;
use crate::ffi::result::cm_result;

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

/// The kind of the service's error `api_error_code` (a `cm_result_api_error_code`): its
/// spelling in the service's error glossary, the same for every spelling of one error
/// ("WRONG_CAPTCHA_ID" and "ERROR_NO_SUCH_CAPCHA_ID" both give "ERROR_NO_SUCH_CAPCHA_ID");
/// NULL for a code outside the glossary, NULL, or not UTF-8. Static storage: never free it.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_api_error_kind(api_error_code: *const c_char) -> *const c_char {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::value(std::ptr::null(), || {
            let code = text(api_error_code, "api_error_code")?;
            Ok(glossary::kind(code).map_or(std::ptr::null(), CStr::as_ptr))
        })
    }
}

/// The `index`th code of the service's error glossary (from 0), in the service's spelling
/// (e.g. "ERROR_NO_SUCH_CAPCHA_ID"); NULL past the last. Every one is its own
/// `cm_api_error_kind`. Static storage: never free it.
#[no_mangle]
pub extern "system" fn cm_api_error_glossary(index: u32) -> *const c_char {
    boundary::value(std::ptr::null(), || {
        Ok(glossary::GLOSSARY.get(index as usize).map_or(std::ptr::null(), |code| code.as_ptr()))
    })
}

/// Chooses where the request budget (and the account guard's stops) are kept, in place of the
/// CAPMONSTER_BUDGET variable: "shared" (the machine's file, the default), "process" (this
/// process alone), or `"redis://[user:password@]host:port/db"` / `"rediss://..."` (Redis, shared
/// by every host that names it; docs/redis.md). NULL goes back to the variable's choice. Call it
/// before the first cm_client_new of the process: the budget is made then, and a later call is
/// CM_ERR_INVALID_ARGUMENT and changes nothing. A value none of these is also
/// CM_ERR_INVALID_ARGUMENT; a Redis URL is checked, not reached (an unreachable Redis is said in
/// the first client's first result). A URL's password never appears in a message.
/// `out_result` may be NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_set_budget(budget: *const c_char, out_result: *mut *mut cm_result) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            let budget = optional_text(budget, "budget")?;
            crate::budget::choose(budget)?;
            Ok(CallResult::ok(if budget.is_some() { "budget chosen" } else { "budget left to CAPMONSTER_BUDGET" }))
        })
    }
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
