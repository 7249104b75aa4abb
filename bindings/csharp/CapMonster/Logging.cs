using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace CapMonster
{
    /// <summary>The level of a log line, most severe first (the header's CM_LOG_*).</summary>
    public enum LogLevel
    {
        /// <summary>A call failed in a way the program should see (network, TLS, proxy).</summary>
        Error = 1,
        /// <summary>Something was refused or stopped: the budget, the account guard, a failed wait.</summary>
        Warn = 2,
        /// <summary>A wait's start, retries and end; the service's errors; the guard's stops.</summary>
        Info = 3,
        /// <summary>Each request sent and its answer.</summary>
        Debug = 4,
        /// <summary>Everything, also each request's count in the budget.</summary>
        Trace = 5,
    }

    /// <summary>
    /// The library's log hook (<c>cm_set_log_callback</c>), process-wide.
    /// </summary>
    public static class CapMonsterLog
    {
        private static readonly object Gate = new object();
        // Kept here so that the collector never frees the delegate the library holds.
        private static NativeMethods.LogCallback _native;
        private static Action<LogLevel, string, string> _handler;

        /// <summary>
        /// Sends the library's lines of <paramref name="level"/> and above to
        /// <paramref name="handler"/> (level, stable event name such as "request" or
        /// "wait.end", one-line message); null removes it. Lines never hold the client key or
        /// proxy credentials. The handler runs on the library's threads, possibly several at
        /// once; it must not make blocking calls into the library (they could wait for the
        /// thread it runs on). An exception it throws is caught and loses that line only.
        /// </summary>
        public static void SetHandler(LogLevel level, Action<LogLevel, string, string> handler)
        {
            lock (Gate)
            {
                if (handler == null)
                {
                    NativeMethods.cm_set_log_callback((int)LogLevel.Error, null, IntPtr.Zero);
                    Volatile.Write(ref _handler, null);
                    // The old delegate stays referenced: a line already started on another
                    // thread may still call it.
                    return;
                }
                Volatile.Write(ref _handler, handler);
                if (_native == null) _native = OnLine;
                int code = NativeMethods.cm_set_log_callback((int)level, _native, IntPtr.Zero);
                if (code != NativeMethods.CM_OK) throw new ArgumentOutOfRangeException("level", level, "not a LogLevel");
            }
        }

        private static void OnLine(IntPtr userData, int level, IntPtr eventName, IntPtr message)
        {
            try
            {
                var handler = Volatile.Read(ref _handler);
                if (handler != null) handler((LogLevel)level, Utf8.FromNative(eventName), Utf8.FromNative(message));
            }
            catch (Exception)
            {
                // An exception must not unwind into the library's native frames.
            }
        }
    }

    /// <summary>A client's counters (<see cref="CapMonsterClient.Stats"/>). Each is exact; read
    /// while calls run, two may differ by the calls in flight.</summary>
    public sealed class ClientStats
    {
        internal ClientStats(NativeClientStats s)
        {
            RequestsGetTaskResult = s.RequestsGetTaskResult;
            RequestsCreateTask = s.RequestsCreateTask;
            RequestsGetBalance = s.RequestsGetBalance;
            RequestsReportIncorrectImage = s.RequestsReportIncorrectImage;
            RequestsReportIncorrectToken = s.RequestsReportIncorrectToken;
            RequestsGetUserAgent = s.RequestsGetUserAgent;
            AnswersProcessing = s.AnswersProcessing;
            AnswersReady = s.AnswersReady;
            AnswersApiError = s.AnswersApiError;
            AnswersHttpError = s.AnswersHttpError;
            AnswersNetworkError = s.AnswersNetworkError;
            AnswersTimeout = s.AnswersTimeout;
            AnswersOther = s.AnswersOther;
            Retries = s.Retries;
            BudgetRefusals = s.BudgetRefusals;
            GuardRefusals = s.GuardRefusals;
            ConnectionsOpened = s.ConnectionsOpened;
            RequestsInFlight = s.RequestsInFlight;
            WaitsPending = s.WaitsPending;
            WaitsFinished = s.WaitsFinished;
            BytesSent = s.BytesSent;
            BytesReceived = s.BytesReceived;
            ConnectionsOpen = s.ConnectionsOpen;
            ConnectionsIdle = s.ConnectionsIdle;
        }

        /// <summary>getTaskResult requests sent (resends included).</summary>
        public ulong RequestsGetTaskResult { get; private set; }
        /// <summary>createTask requests sent.</summary>
        public ulong RequestsCreateTask { get; private set; }
        /// <summary>getBalance requests sent.</summary>
        public ulong RequestsGetBalance { get; private set; }
        /// <summary>reportIncorrectImageCaptcha requests sent.</summary>
        public ulong RequestsReportIncorrectImage { get; private set; }
        /// <summary>reportIncorrectTokenCaptcha requests sent.</summary>
        public ulong RequestsReportIncorrectToken { get; private set; }
        /// <summary>getUserAgent requests sent.</summary>
        public ulong RequestsGetUserAgent { get; private set; }
        /// <summary>Answers saying the task is still processing.</summary>
        public ulong AnswersProcessing { get; private set; }
        /// <summary>Successful answers (a ready task, a created task, a balance, ...).</summary>
        public ulong AnswersReady { get; private set; }
        /// <summary>Answers carrying the service's error.</summary>
        public ulong AnswersApiError { get; private set; }
        /// <summary>Answers with an HTTP error status.</summary>
        public ulong AnswersHttpError { get; private set; }
        /// <summary>Requests that got no answer: connection, TLS or proxy failures.</summary>
        public ulong AnswersNetworkError { get; private set; }
        /// <summary>Requests that ran out of time.</summary>
        public ulong AnswersTimeout { get; private set; }
        /// <summary>Unreadable answers and requests cancelled in flight.</summary>
        public ulong AnswersOther { get; private set; }
        /// <summary>Resends on a stale connection, and a wait's polls after a failed one.</summary>
        public ulong Retries { get; private set; }
        /// <summary>getTaskResult requests refused by the budget of 120 per task.</summary>
        public ulong BudgetRefusals { get; private set; }
        /// <summary>Calls the account guard answered locally.</summary>
        public ulong GuardRefusals { get; private set; }
        /// <summary>TCP connections opened so far.</summary>
        public ulong ConnectionsOpened { get; private set; }
        /// <summary>Requests in flight now.</summary>
        public ulong RequestsInFlight { get; private set; }
        /// <summary>Waits started and not finished.</summary>
        public ulong WaitsPending { get; private set; }
        /// <summary>Waits finished.</summary>
        public ulong WaitsFinished { get; private set; }
        /// <summary>Bytes the client's sockets sent (HTTP, and TLS records over TLS).</summary>
        public ulong BytesSent { get; private set; }
        /// <summary>Bytes the client's sockets received (HTTP, and TLS records over TLS).</summary>
        public ulong BytesReceived { get; private set; }
        /// <summary>Connections open now.</summary>
        public ulong ConnectionsOpen { get; private set; }
        /// <summary>Open connections carrying no request now.</summary>
        public ulong ConnectionsIdle { get; private set; }
    }
}
