//! The service's error glossary: every `errorCode` its documentation lists, in its own
//! spelling (`CAPCHA`, `TOO_MUCH`, `AUTHORISED` are the service's), and the other spellings of
//! the same error. The one place the bindings learn which codes are one error: they ask
//! `kind` (through `cm_api_error_kind`) and keep no list of their own.

use std::ffi::CStr;

/// Every code of the glossary, as the documentation spells it. `CAPTCHA_NOT_READY` is in the
/// glossary but is no failure: a getTaskResult answer carrying it means "processing".
pub const GLOSSARY: &[&CStr] = &[
    c"ERROR_KEY_DOES_NOT_EXIST",
    c"ERROR_ZERO_BALANCE",
    c"ERROR_TOO_BIG_CAPTCHA_FILESIZE",
    c"ERROR_ZERO_CAPTCHA_FILESIZE",
    c"ERROR_NO_SUCH_CAPCHA_ID",
    c"ERROR_CAPTCHA_UNSOLVABLE",
    c"CAPTCHA_NOT_READY",
    c"ERROR_IP_NOT_ALLOWED",
    c"ERROR_IP_BANNED",
    c"ERROR_NO_SUCH_METHOD",
    c"ERROR_TOO_MUCH_REQUESTS",
    c"ERROR_DOMAIN_NOT_ALLOWED",
    c"ERROR_TOKEN_EXPIRED",
    c"ERROR_NO_SLOT_AVAILABLE",
    c"ERROR_RECAPTCHA_INVALID_SITEKEY",
    c"ERROR_RECAPTCHA_INVALID_DOMAIN",
    c"ERROR_RECAPTCHA_TIMEOUT",
    c"ERROR_IP_BLOCKED",
    c"ERROR_PROXY_CONNECT_REFUSED",
    c"ERROR_PROXY_BANNED",
    c"ERROR_PROXY_MISSING",
    c"ERROR_PROXY_NOT_AUTHORISED",
    c"ERROR_PROXY_READ_TIMEOUT",
    c"ERROR_TASK_NOT_SUPPORTED",
    c"ERROR_TASK_ABSENT",
    c"ERROR_WRONG_USERAGENT",
];

/// Other spellings the service answers with, and the glossary code each is the same error as.
/// `WRONG_CAPTCHA_ID` is what getTaskResult may say for a task id it does not know.
const ALIASES: &[(&str, &CStr)] = &[("WRONG_CAPTCHA_ID", c"ERROR_NO_SUCH_CAPCHA_ID")];

/// The glossary's spelling of the error `code` is (itself, or the code an alias stands for);
/// `None` for a code outside the glossary. Exact, case-sensitive: the service's codes are.
/// NUL-terminated, for the C ABI.
pub fn kind(code: &str) -> Option<&'static CStr> {
    GLOSSARY
        .iter()
        .copied()
        .find(|known| known.to_bytes() == code.as_bytes())
        .or_else(|| ALIASES.iter().find(|(alias, _)| *alias == code).map(|&(_, known)| known))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_its_own_kind_and_the_aliases_name_theirs() {
        for code in GLOSSARY {
            assert_eq!(kind(code.to_str().unwrap()), Some(*code));
        }
        assert_eq!(kind("WRONG_CAPTCHA_ID"), Some(c"ERROR_NO_SUCH_CAPCHA_ID"));
        for (alias, known) in ALIASES {
            assert!(GLOSSARY.contains(known) && kind(alias) == Some(*known), "{alias}");
            assert!(!GLOSSARY.iter().any(|code| code.to_bytes() == alias.as_bytes()), "{alias}");
        }
        for other in ["", "ERROR_FROM_THE_FUTURE", "error_zero_balance", "ERROR_NO_SUCH_CAPTCHA_ID"] {
            assert_eq!(kind(other), None, "{other}");
        }
    }
}
