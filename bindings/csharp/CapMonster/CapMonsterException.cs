using System;

namespace CapMonster
{
    /// <summary>
    /// The library's return codes (<c>cm_code</c>). The numbers are the C ABI's and never
    /// change; a code added by a newer native library arrives as its number (an enum value
    /// without a name), so compare with the named members and treat others as failures.
    /// The test CodeTableMatchesTheHeader fails when these and include/capmonster.h's
    /// <c>#define CM_*</c> drift apart.
    /// </summary>
    public enum CapMonsterErrorCode
    {
        /// <summary>CM_OK: success (never carried by an exception).</summary>
        Ok = 0,
        /// <summary>CM_ERR_INVALID_ARGUMENT: the library refused an argument (its message names it); nothing was sent.</summary>
        InvalidArgument = 1,
        /// <summary>CM_ERR_API: the service answered with an error: see <see cref="CapMonsterException.ApiErrorCode"/>.</summary>
        Api = 2,
        /// <summary>CM_ERR_NETWORK: connection refused or reset, DNS, TLS, proxy failure, or an answer cut short.</summary>
        Network = 3,
        /// <summary>CM_ERR_TIMEOUT: a request, or a wait, ran out of time.</summary>
        Timeout = 4,
        /// <summary>CM_ERR_HTTP_STATUS: a non-2xx HTTP status without an API error body: see <see cref="CapMonsterException.HttpStatus"/>.</summary>
        HttpStatus = 5,
        /// <summary>CM_ERR_BAD_RESPONSE: the answer was not what the API promises (not JSON, unknown status, too large, ...).</summary>
        BadResponse = 6,
        /// <summary>CM_ERR_BUDGET_EXHAUSTED: the library's getTaskResult budget for the task, or the wait's <see cref="WaitOptions.MaxRequests"/>, is spent.</summary>
        BudgetExhausted = 7,
        /// <summary>CM_ERR_CANCELLED: the call or wait was cancelled (surfaces as <see cref="OperationCanceledException"/>, or a cancelled task).</summary>
        Cancelled = 8,
        /// <summary>CM_ERR_INTERNAL: a bug in the native library (a caught panic).</summary>
        Internal = 9,
    }

    /// <summary>
    /// A call to the CapMonster service, or the native library, failed. <see cref="Code"/>
    /// says how; the other properties carry what the library reported.
    /// </summary>
    public class CapMonsterException : Exception
    {
        /// <summary>Creates an exception with only a code and a message.</summary>
        public CapMonsterException(CapMonsterErrorCode code, string message)
            : this(code, message, null, null, 0, 0, 0)
        {
        }

        /// <summary>Creates an exception carrying everything a failed call reports.</summary>
        public CapMonsterException(CapMonsterErrorCode code, string message, string apiErrorCode,
            string apiErrorDescription, int httpStatus, int requestCount, long taskId)
            : base(message)
        {
            Code = code;
            ApiErrorCode = apiErrorCode;
            ApiErrorDescription = apiErrorDescription;
            HttpStatus = httpStatus;
            RequestCount = requestCount;
            TaskId = taskId;
        }

        /// <summary>What kind of failure (the native <c>cm_code</c>).</summary>
        public CapMonsterErrorCode Code { get; private set; }

        /// <summary>The service's errorCode (e.g. "ERROR_ZERO_BALANCE") when it answered with an error, else null. Codes the documentation does not list are passed through.</summary>
        public string ApiErrorCode { get; private set; }

        /// <summary>
        /// The kind of <see cref="ApiErrorCode"/>: its spelling in the service's error glossary,
        /// the same for every spelling of one error (the native <c>cm_api_error_kind</c>:
        /// "WRONG_CAPTCHA_ID" gives <see cref="ApiErrors.NoSuchTask"/>); compare it with the
        /// <see cref="ApiErrors"/> constants. Null when there is no errorCode or it is outside the glossary.
        /// </summary>
        public string ApiErrorKind
        {
            get { return KindOf(ApiErrorCode); }
        }

        /// <summary>The kind of any errorCode, as <see cref="ApiErrorKind"/>; null outside the glossary.</summary>
        public static string KindOf(string apiErrorCode)
        {
            if (apiErrorCode == null || apiErrorCode.IndexOf('\0') >= 0) return null;
            return Utf8.FromNative(NativeMethods.cm_api_error_kind(Utf8.ToNative(apiErrorCode, "apiErrorCode")));
        }

        /// <summary>The service's errorDescription when it sent one, else null.</summary>
        public string ApiErrorDescription { get; private set; }

        /// <summary>The last HTTP status received; 0 if no answer arrived.</summary>
        public int HttpStatus { get; private set; }

        /// <summary>The HTTP requests the failed call sent, retries included.</summary>
        public int RequestCount { get; private set; }

        /// <summary>The task the call was about; 0 when none.</summary>
        public long TaskId { get; private set; }

        /// <summary>The name of <see cref="Code"/> in the C API, e.g. "CM_ERR_API" ("CM_ERR_UNKNOWN" for a number this library version does not know).</summary>
        public string CodeName
        {
            get { return Utf8.FromNative(NativeMethods.cm_code_name((int)Code)); }
        }

        /// <summary>The failure of a call, read from its native result (which the caller frees).</summary>
        internal static CapMonsterException FromResult(int code, ResultHandle result)
        {
            return new CapMonsterException(
                (CapMonsterErrorCode)code,
                result.ReadString(NativeMethods.cm_result_message),
                result.ReadString(NativeMethods.cm_result_api_error_code),
                result.ReadString(NativeMethods.cm_result_api_error_description),
                NativeMethods.cm_result_http_status(result),
                checked((int)Math.Min(NativeMethods.cm_result_request_count(result), int.MaxValue)),
                NativeMethods.cm_result_task_id(result));
        }

        /// <summary>The failure of a call that returns only a code and no result (cm_cancel_new, cm_waiter_new): the message is the code's name.</summary>
        internal static CapMonsterException FromCode(int code, string what)
        {
            string name = Utf8.FromNative(NativeMethods.cm_code_name(code));
            return new CapMonsterException((CapMonsterErrorCode)code, what + ": " + name);
        }
    }
}
