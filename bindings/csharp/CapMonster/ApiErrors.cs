namespace CapMonster
{
    /// <summary>
    /// The codes of the service's error glossary, in its own spelling: compare them with
    /// <see cref="CapMonsterException.ApiErrorKind"/>, which the native library gives for every
    /// spelling of one error (<c>cm_api_error_kind</c>: "WRONG_CAPTCHA_ID" is
    /// <see cref="NoSuchTask"/>). <see cref="CapMonsterException.ApiErrorCode"/> keeps the
    /// service's own spelling.
    /// </summary>
    public static class ApiErrors
    {
        /// <summary>ERROR_KEY_DOES_NOT_EXIST: the client key is unknown or malformed.</summary>
        public const string KeyDoesNotExist = "ERROR_KEY_DOES_NOT_EXIST";
        /// <summary>ERROR_ZERO_BALANCE: no funds.</summary>
        public const string ZeroBalance = "ERROR_ZERO_BALANCE";
        /// <summary>ERROR_TOO_BIG_CAPTCHA_FILESIZE: the image is too big.</summary>
        public const string TooBigCaptchaFilesize = "ERROR_TOO_BIG_CAPTCHA_FILESIZE";
        /// <summary>ERROR_ZERO_CAPTCHA_FILESIZE: the image is too small.</summary>
        public const string ZeroCaptchaFilesize = "ERROR_ZERO_CAPTCHA_FILESIZE";
        /// <summary>ERROR_NO_SUCH_CAPCHA_ID (also spelled WRONG_CAPTCHA_ID): no such task, or it expired.</summary>
        public const string NoSuchTask = "ERROR_NO_SUCH_CAPCHA_ID";
        /// <summary>ERROR_CAPTCHA_UNSOLVABLE: the service could not solve it.</summary>
        public const string CaptchaUnsolvable = "ERROR_CAPTCHA_UNSOLVABLE";
        /// <summary>CAPTCHA_NOT_READY: still solving; never an exception (the task is processing).</summary>
        public const string CaptchaNotReady = "CAPTCHA_NOT_READY";
        /// <summary>ERROR_IP_NOT_ALLOWED: the address is not in the account's list.</summary>
        public const string IpNotAllowed = "ERROR_IP_NOT_ALLOWED";
        /// <summary>ERROR_IP_BANNED: the address is banned.</summary>
        public const string IpBanned = "ERROR_IP_BANNED";
        /// <summary>ERROR_NO_SUCH_METHOD: wrong task type or method.</summary>
        public const string NoSuchMethod = "ERROR_NO_SUCH_METHOD";
        /// <summary>ERROR_TOO_MUCH_REQUESTS: polled too often.</summary>
        public const string TooMuchRequests = "ERROR_TOO_MUCH_REQUESTS";
        /// <summary>ERROR_DOMAIN_NOT_ALLOWED.</summary>
        public const string DomainNotAllowed = "ERROR_DOMAIN_NOT_ALLOWED";
        /// <summary>ERROR_TOKEN_EXPIRED.</summary>
        public const string TokenExpired = "ERROR_TOKEN_EXPIRED";
        /// <summary>ERROR_NO_SLOT_AVAILABLE: no free servers; retry later.</summary>
        public const string NoSlotAvailable = "ERROR_NO_SLOT_AVAILABLE";
        /// <summary>ERROR_RECAPTCHA_INVALID_SITEKEY.</summary>
        public const string RecaptchaInvalidSitekey = "ERROR_RECAPTCHA_INVALID_SITEKEY";
        /// <summary>ERROR_RECAPTCHA_INVALID_DOMAIN.</summary>
        public const string RecaptchaInvalidDomain = "ERROR_RECAPTCHA_INVALID_DOMAIN";
        /// <summary>ERROR_RECAPTCHA_TIMEOUT.</summary>
        public const string RecaptchaTimeout = "ERROR_RECAPTCHA_TIMEOUT";
        /// <summary>ERROR_IP_BLOCKED: the address is blocked.</summary>
        public const string IpBlocked = "ERROR_IP_BLOCKED";
        /// <summary>ERROR_PROXY_CONNECT_REFUSED.</summary>
        public const string ProxyConnectRefused = "ERROR_PROXY_CONNECT_REFUSED";
        /// <summary>ERROR_PROXY_BANNED.</summary>
        public const string ProxyBanned = "ERROR_PROXY_BANNED";
        /// <summary>ERROR_PROXY_MISSING.</summary>
        public const string ProxyMissing = "ERROR_PROXY_MISSING";
        /// <summary>ERROR_PROXY_NOT_AUTHORISED (the service's spelling).</summary>
        public const string ProxyNotAuthorised = "ERROR_PROXY_NOT_AUTHORISED";
        /// <summary>ERROR_PROXY_READ_TIMEOUT.</summary>
        public const string ProxyReadTimeout = "ERROR_PROXY_READ_TIMEOUT";
        /// <summary>ERROR_TASK_NOT_SUPPORTED.</summary>
        public const string TaskNotSupported = "ERROR_TASK_NOT_SUPPORTED";
        /// <summary>ERROR_TASK_ABSENT.</summary>
        public const string TaskAbsent = "ERROR_TASK_ABSENT";
        /// <summary>ERROR_WRONG_USERAGENT: refresh the User-Agent (getUserAgent).</summary>
        public const string WrongUserAgent = "ERROR_WRONG_USERAGENT";
    }
}
