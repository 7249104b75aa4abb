using System;
using System.Runtime.InteropServices;

namespace CapMonster
{
    /// <summary>The fields of the C struct <c>cm_wait_options</c>, in the header's order.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeWaitOptions
    {
        public uint FirstDelayMs;
        public uint IntervalMs;
        public uint TimeoutMs;
        public uint MaxRequests;
        /// <summary>A <c>const cm_cancel *</c>, or <see cref="IntPtr.Zero"/>.</summary>
        public IntPtr Cancel;
    }

    /// <summary>The fields of the C struct <c>cm_call_options</c>, in the header's order.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeCallOptions
    {
        /// <summary>0: the client's request timeout.</summary>
        public uint TimeoutMs;
        /// <summary>A <c>const cm_cancel *</c>, or <see cref="IntPtr.Zero"/>.</summary>
        public IntPtr Cancel;
    }

    /// <summary>The fields of the C struct <c>cm_client_stats</c>, in the header's order.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeClientStats
    {
        public uint Size;
        public uint Reserved;
        public ulong RequestsGetTaskResult, RequestsCreateTask, RequestsGetBalance;
        public ulong RequestsReportIncorrectImage, RequestsReportIncorrectToken, RequestsGetUserAgent;
        public ulong AnswersProcessing, AnswersReady, AnswersApiError, AnswersHttpError;
        public ulong AnswersNetworkError, AnswersTimeout, AnswersOther;
        public ulong Retries, BudgetRefusals, GuardRefusals;
        public ulong ConnectionsOpened, RequestsInFlight, WaitsPending, WaitsFinished;
        public ulong BytesSent, BytesReceived;
        public ulong ConnectionsOpen, ConnectionsIdle;
    }

    /// <summary>
    /// Every function of include/capmonster.h. Rules kept here:
    /// strings go in as NUL-terminated UTF-8 <c>byte[]</c> (see <see cref="Utf8"/>; null is
    /// NULL); strings come back as <see cref="IntPtr"/>, read by <see cref="Utf8.FromNative"/>
    /// and never freed by the marshaller (they belong to a cm_result or are static); objects
    /// made by the library travel in <see cref="SafeHandle"/>s, so the marshaller holds a
    /// reference for the length of each call (a concurrent Dispose frees the object only after
    /// the call returns) and a closed handle throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    internal static class NativeMethods
    {
        // "capmonster" finds libcapmonster.so (Linux), libcapmonster.dylib (macOS) and
        // capmonster.dll (Windows) on the platform's library search path.
        // Winapi: the library's functions are stdcall on 32-bit Windows (CM_CALL in the header)
        // and C functions elsewhere; Winapi is stdcall on 32-bit Windows and the platform's
        // default (cdecl) everywhere else, so one attribute is right on every platform.
        internal const string Library = "capmonster";

        // The codes are CapMonsterErrorCode's, whose numbers a test checks against the header.
        internal const int CM_OK = (int)CapMonsterErrorCode.Ok;
        internal const int CM_ERR_INVALID_ARGUMENT = (int)CapMonsterErrorCode.InvalidArgument;
        internal const int CM_ERR_TIMEOUT = (int)CapMonsterErrorCode.Timeout;
        internal const int CM_ERR_CANCELLED = (int)CapMonsterErrorCode.Cancelled;

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern IntPtr cm_version();

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern IntPtr cm_code_name(int code);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern IntPtr cm_api_error_kind([In] byte[] apiErrorCode);

        // Creation and the setters write a cm_result on every return (success or not): its
        // message is the library's account of a refused argument.
        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_client_new([In] byte[] clientKey, out ClientHandle client, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_client_set_base_url(ClientHandle client, [In] byte[] baseUrl, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_client_set_user_agent_url(ClientHandle client, [In] byte[] userAgentUrl, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_client_set_request_timeout_ms(ClientHandle client, uint timeoutMs, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_client_set_proxy(ClientHandle client, [In] byte[] proxyUrl, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_client_set_ca_file(ClientHandle client, [In] byte[] path, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_client_set_max_connections(ClientHandle client, uint maxConnections, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_client_set_soft_id(ClientHandle client, uint softId, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_client_set_engine(ClientHandle client, uint engine, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_client_end_stops(ClientHandle client, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_client_get_stats(ClientHandle client, ref NativeClientStats stats);

        /// <summary><c>cm_log_callback</c>: stdcall on 32-bit Windows, like every function.</summary>
        [UnmanagedFunctionPointer(CallingConvention.Winapi)]
        internal delegate void LogCallback(IntPtr userData, int level, IntPtr eventName, IntPtr message);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_set_log_callback(int level, LogCallback callback, IntPtr userData);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_set_budget([In] byte[] budget, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern void cm_client_free(IntPtr client);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_cancel_new(out CancelHandle cancel);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern void cm_cancel_trigger(CancelHandle cancel);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern void cm_cancel_free(IntPtr cancel);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern void cm_wait_options_init(ref NativeWaitOptions options);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_wait_options_for_task_type(ref NativeWaitOptions options, [In] byte[] taskType);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_wait_options_for_task(ref NativeWaitOptions options, [In] byte[] taskJson);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_waiter_new(ClientHandle client, out WaiterHandle waiter);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_waiter_add_with_result(WaiterHandle waiter, long taskId, ref NativeWaitOptions options, ulong tag, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_waiter_add_solve(WaiterHandle waiter, [In] byte[] taskJson, [In] byte[] callbackUrl, ref NativeWaitOptions options, ulong tag, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_waiter_next(WaiterHandle waiter, uint timeoutMs, out ulong tag, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern ulong cm_waiter_pending(WaiterHandle waiter);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern void cm_waiter_shutdown(WaiterHandle waiter);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern void cm_waiter_free(IntPtr waiter);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_get_task_result_with(ClientHandle client, long taskId, ref NativeCallOptions options, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_create_task_with(ClientHandle client, [In] byte[] taskJson, [In] byte[] callbackUrl, ref NativeCallOptions options, out long taskId, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_get_balance_with(ClientHandle client, ref NativeCallOptions options, out double balance, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_get_user_agent_with(ClientHandle client, ref NativeCallOptions options, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_report_incorrect_image_with(ClientHandle client, long taskId, ref NativeCallOptions options, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_report_incorrect_token_with(ClientHandle client, long taskId, ref NativeCallOptions options, out ResultHandle result);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_result_code(ResultHandle r);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_result_is_ready(ResultHandle r);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern long cm_result_task_id(ResultHandle r);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern IntPtr cm_result_solution_json(ResultHandle r);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern IntPtr cm_result_solution_string(ResultHandle r, [In] byte[] field);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern IntPtr cm_result_api_error_code(ResultHandle r);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern IntPtr cm_result_text(ResultHandle r);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern IntPtr cm_result_api_error_description(ResultHandle r);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern IntPtr cm_result_message(ResultHandle r);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern uint cm_result_request_count(ResultHandle r);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern int cm_result_http_status(ResultHandle r);

        [DllImport(Library, CallingConvention = CallingConvention.Winapi)]
        internal static extern void cm_result_free(IntPtr r);
    }
}
