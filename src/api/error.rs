//! The one error type of the safe core, and the stable numeric codes it maps to.
//!
//! The numbers are the ABI: they are never reused or renumbered. A new kind of
//! failure gets a new number at the end.

use std::ffi::CStr;
use std::fmt;

/// Builds [`Code`] from the C constants of `codes.rs`: each variant takes its constant's
/// number, and its name is the constant's name.
macro_rules! code_table {
    ($($(#[$doc:meta])* $variant:ident = $constant:ident,)*) => {
        /// What went wrong, as a stable number (the C `cm_code`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum Code {
            $($(#[$doc])* $variant = crate::api::codes::$constant,)*
        }

        impl Code {
            /// Every failure code, in number order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The C name of the code, e.g. `c"CM_ERR_API"`, NUL-terminated for the C ABI.
            pub const fn c_name(self) -> &'static CStr {
                match self {
                    $(Code::$variant => match CStr::from_bytes_with_nul(concat!(stringify!($constant), "\0").as_bytes()) {
                        Ok(name) => name,
                        Err(_) => panic!("a constant's name has no NUL byte"),
                    },)*
                }
            }
        }
    };
}

code_table! {
    InvalidArgument = CM_ERR_INVALID_ARGUMENT,
    Api = CM_ERR_API,
    Network = CM_ERR_NETWORK,
    Timeout = CM_ERR_TIMEOUT,
    HttpStatus = CM_ERR_HTTP_STATUS,
    BadResponse = CM_ERR_BAD_RESPONSE,
    BudgetExhausted = CM_ERR_BUDGET_EXHAUSTED,
    Cancelled = CM_ERR_CANCELLED,
    Internal = CM_ERR_INTERNAL,
}

impl Code {
    /// The C name of the code, e.g. `"CM_ERR_API"`.
    pub fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("CM_ERR_UNKNOWN")
    }
}

/// The service's own error: `errorCode` and `errorDescription` of an answer with `errorId != 0`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// e.g. `ERROR_CAPTCHA_UNSOLVABLE`; `None` when the service sent `errorId != 0` without one.
    pub code: Option<String>,
    pub description: Option<String>,
}

/// A failed call: a code, one human-readable line, and what the service said, if anything.
///
/// Messages never contain the client key or proxy credentials: the client scrubs
/// every message that could carry text from outside (see `Client::scrub`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
    pub api: Option<ApiError>,
    /// The HTTP status of the answer that caused this error, when there was one.
    pub http_status: Option<u16>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), api: None, http_status: None }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(Code::InvalidArgument, message)
    }

    pub fn bad_response(message: impl Into<String>) -> Self {
        Error::new(Code::BadResponse, message)
    }

    pub fn api(code: Option<String>, description: Option<String>, http_status: u16) -> Self {
        let name = code.as_deref().unwrap_or("an error without errorCode");
        let message = match description.as_deref() {
            Some(text) if !text.is_empty() => format!("the service answered {name}: {text}"),
            _ => format!("the service answered {name}"),
        };
        Error { code: Code::Api, message, api: Some(ApiError { code, description }), http_status: Some(http_status) }
    }

    /// The service's errorCode, when this is an API error that has one.
    pub fn api_code(&self) -> Option<&str> {
        self.api.as_ref().and_then(|api| api.code.as_deref())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for Error {}

/// The text of a caught panic, for a `CM_ERR_INTERNAL` message.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}
