using System;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace CapMonster
{
    /// <summary>
    /// A client of the CapMonster Cloud API over the native libcapmonster (include/capmonster.h):
    /// create tasks, read and wait for their results, read the balance.
    /// </summary>
    /// <remarks>
    /// <para>Thread-safe: one client serves many threads and waits at once, on one pool of
    /// connections. <see cref="WaitResultAsync"/> holds no thread: every wait of the client runs
    /// in one native <c>cm_waiter</c>, and one dispatcher thread completes the waits' tasks.
    /// The single calls block their thread for one request (their Async forms block a thread
    /// pool thread).</para>
    /// <para>A <see cref="CancellationToken"/> reaches whatever its call is doing, a request in
    /// flight included: the call ends with <see cref="OperationCanceledException"/> within
    /// milliseconds.</para>
    /// <para>The native library is the one judge of every value: its refusals arrive as
    /// <see cref="CapMonsterException"/> with its code and its message, unchanged.</para>
    /// <para>Dispose ends pending waits (their tasks end as cancelled); single calls in progress
    /// finish first, and the native client is freed after the last one.</para>
    /// </remarks>
    public sealed class CapMonsterClient : IDisposable
    {
        private static readonly Action<object> TriggerCancel = TriggerCancelSafely;

        private readonly ClientHandle _handle;
        private readonly WaitEngine _waits;
        private volatile bool _disposed;

        /// <summary>A client of the official service with the default settings.</summary>
        /// <param name="clientKey">Your account key.</param>
        /// <exception cref="CapMonsterException">The library refused the key: <see cref="CapMonsterErrorCode.InvalidArgument"/> with its message.</exception>
        public CapMonsterClient(string clientKey) : this(clientKey, null)
        {
        }

        /// <summary>A client with <paramref name="options"/> (null: the defaults).</summary>
        /// <param name="clientKey">Your account key (the emulator accepts any the library accepts).</param>
        /// <param name="options">Base URL, request timeout, proxy, CA file, connection cap; read once, here.</param>
        /// <exception cref="ArgumentException">A string holds a NUL character (C strings cannot), or <see cref="CapMonsterClientOptions.Proxy"/> is set with <see cref="CapMonsterClientOptions.UseProxy"/> false.</exception>
        /// <exception cref="CapMonsterException">The library refused the key or a setting: its code and its message, naming the argument. A malformed proxy variable in the environment is not refused here: the calls that would use it throw, naming the variable.</exception>
        public CapMonsterClient(string clientKey, CapMonsterClientOptions options)
        {
            if (options == null) options = new CapMonsterClientOptions();
            if (!options.UseProxy && options.Proxy != null)
            {
                throw new ArgumentException("Proxy must be null when UseProxy is false.", "options");
            }

            // Everything is converted (and NUL characters refused) before the native client exists.
            byte[] baseUrl = Utf8.ToNative(options.BaseUrl, "options.BaseUrl");
            byte[] userAgentUrl = Utf8.ToNative(options.UserAgentUrl, "options.UserAgentUrl");
            byte[] proxy = Utf8.ToNative(options.Proxy, "options.Proxy");
            byte[] caFile = Utf8.ToNative(options.CaFile, "options.CaFile");
            byte[] key = Utf8.ToNative(clientKey, "clientKey");
            // Values C cannot hold are mapped (see the options' documentation); the library judges them.
            uint timeoutMs = options.RequestTimeout.HasValue
                ? (options.RequestTimeout.Value == Timeout.InfiniteTimeSpan ? uint.MaxValue : WaitOptions.ToMilliseconds(options.RequestTimeout.Value))
                : 0;
            uint? maxConnections = options.MaxConnections.HasValue
                ? (uint)Math.Max(options.MaxConnections.Value, 0)
                : (uint?)null;

            ClientHandle handle = null;
            try
            {
                ResultHandle result;
                Check(NativeMethods.cm_client_new(key, out handle, out result), result);
                if (baseUrl != null)
                {
                    Check(NativeMethods.cm_client_set_base_url(handle, baseUrl, out result), result);
                }
                if (userAgentUrl != null)
                {
                    Check(NativeMethods.cm_client_set_user_agent_url(handle, userAgentUrl, out result), result);
                }
                if (options.RequestTimeout.HasValue)
                {
                    Check(NativeMethods.cm_client_set_request_timeout_ms(handle, timeoutMs, out result), result);
                }
                if (proxy != null || !options.UseProxy)
                {
                    // NULL (UseProxy false): no proxy, whatever the environment says.
                    Check(NativeMethods.cm_client_set_proxy(handle, proxy, out result), result);
                }
                if (caFile != null)
                {
                    Check(NativeMethods.cm_client_set_ca_file(handle, caFile, out result), result);
                }
                if (maxConnections.HasValue)
                {
                    Check(NativeMethods.cm_client_set_max_connections(handle, maxConnections.Value, out result), result);
                }
                if (options.SoftId.HasValue)
                {
                    Check(NativeMethods.cm_client_set_soft_id(handle, options.SoftId.Value, out result), result);
                }
                if (options.Engine.HasValue)
                {
                    Check(NativeMethods.cm_client_set_engine(handle, (uint)options.Engine.Value, out result), result);
                }
            }
            catch
            {
                if (handle != null) handle.Dispose();
                throw;
            }
            finally
            {
                // Secrets do not linger in managed memory longer than needed.
                if (key != null) Array.Clear(key, 0, key.Length);
                if (proxy != null) Array.Clear(proxy, 0, proxy.Length);
            }
            _handle = handle;
            _waits = new WaitEngine(handle);
        }

        /// <summary>
        /// Chooses where the request budget and the account guard's stops are kept, in place of
        /// the <c>CAPMONSTER_BUDGET</c> variable (<c>cm_set_budget</c>): "shared" (the machine's
        /// file, the default), "process", or a "redis://..." / "rediss://..." URL shared by every
        /// host that names it; null goes back to the variable's choice. Only before the
        /// process's first client: later the library refuses it and nothing changes.
        /// </summary>
        /// <exception cref="CapMonsterException">The library refused the value, or a client exists already (<see cref="CapMonsterErrorCode.InvalidArgument"/>).</exception>
        public static void SetBudget(string budget)
        {
            ResultHandle result;
            Check(NativeMethods.cm_set_budget(Utf8.ToNative(budget, "budget"), out result), result);
        }

        /// <summary>The native library's version, e.g. "0.2.0".</summary>
        public static string NativeVersion
        {
            get { return Utf8.FromNative(NativeMethods.cm_version()); }
        }

        /// <summary>
        /// Asks once for the state of a task. The request counts in the task's budget.
        /// </summary>
        /// <returns>The task, ready (with its solution) or still processing.</returns>
        /// <exception cref="CapMonsterException">The library refused the id, or the service or the network failed; see <see cref="CapMonsterException.Code"/>.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled: before the call (nothing sent) or during it (the request in flight is dropped; it still counts in the budget).</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public TaskResult GetTaskResult(long taskId, CancellationToken cancellationToken = default(CancellationToken))
        {
            ThrowIfDisposed();
            cancellationToken.ThrowIfCancellationRequested();
            ResultHandle result = null;
            try
            {
                int code;
                using (var call = new CallCancel(cancellationToken))
                {
                    NativeCallOptions options = call.Options();
                    code = NativeMethods.cm_get_task_result_with(_handle, taskId, ref options, out result);
                }
                ThrowIfCancelled(code, result, cancellationToken);
                ResultHandle owned = result;
                result = null;
                return ToTaskResult(code, owned);
            }
            finally
            {
                if (result != null) result.Dispose();
            }
        }

        /// <summary><see cref="GetTaskResult"/> on a thread-pool thread; the token stops the request in flight.</summary>
        /// <exception cref="ObjectDisposedException">The client was disposed (thrown at once).</exception>
        public Task<TaskResult> GetTaskResultAsync(long taskId, CancellationToken cancellationToken = default(CancellationToken))
        {
            ThrowIfDisposed();
            return Run(() => GetTaskResult(taskId, cancellationToken), cancellationToken);
        }

        /// <summary>
        /// Polls a task until it is ready, following <paramref name="options"/> (null: <see cref="WaitOptions.Default"/>),
        /// on the client's native waiter: no thread is held while the wait runs. Network errors,
        /// request timeouts, HTTP 5xx and 429 and ERROR_TOO_MUCH_REQUESTS are retried at the
        /// next poll; any other failure ends the wait at once. <paramref name="options"/> is
        /// read now: changing it later has no effect.
        /// </summary>
        /// <returns>
        /// A task that ends with the ready result; faulted with <see cref="CapMonsterException"/>
        /// (the library's code and message) when the library refused the options or the wait
        /// failed; cancelled when <paramref name="cancellationToken"/> was cancelled (the task
        /// ends at once, carrying the token; the native wait, asleep or mid-request, is stopped
        /// and freed when the library hands it back, within milliseconds) or the client was
        /// disposed (every pending task has ended when Dispose returns).
        /// </returns>
        /// <exception cref="ObjectDisposedException">The client was disposed (thrown at once).</exception>
        public Task<TaskResult> WaitResultAsync(long taskId, WaitOptions options = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            ThrowIfDisposed();
            return _waits.Add(taskId, options ?? new WaitOptions(), cancellationToken);
        }

        /// <summary>
        /// <see cref="WaitResultAsync"/>, blocking the calling thread until it ends.
        /// </summary>
        /// <returns>The ready task.</returns>
        /// <exception cref="CapMonsterException">The library refused the options, or the service reported an error, the wait timed out, its requests were spent, or an answer was bad.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (carried by the exception), or the client was disposed while waiting.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed before the call.</exception>
        public TaskResult WaitResult(long taskId, WaitOptions options = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            // GetResult throws the task's exception itself, not an AggregateException.
            return WaitResultAsync(taskId, options, cancellationToken).GetAwaiter().GetResult();
        }

        /// <summary>
        /// Creates a task and waits until it is ready, both in the library
        /// (<c>cm_waiter_add_solve</c>): the createTask is sent on one of the library's threads (at
        /// most the client's connection cap), then the task is polled as by
        /// <see cref="WaitResultAsync"/>, the timeout counted from the creation. No thread is held
        /// meanwhile. Like <see cref="CreateTask(string, string, CancellationToken)"/>, the
        /// createTask is never retried.
        /// </summary>
        /// <param name="taskJson">The API's <c>task</c> object as JSON, as for <see cref="CreateTask(string, string, CancellationToken)"/>.</param>
        /// <param name="callbackUrl">A URL the service will POST the result to; null for none.</param>
        /// <param name="options">How to poll; null: the task's own schedule (<see cref="WaitOptions.ForTask"/>), or the library's defaults for a task it cannot read. Read now.</param>
        /// <param name="cancellationToken">Stops the solve wherever it is, the createTask in flight included (a task created meanwhile is lost; the library's message says so).</param>
        /// <returns>
        /// A task that ends with the ready result; faulted with <see cref="CapMonsterException"/>
        /// (the library's code and message) when the library refused the options, the createTask
        /// failed (<see cref="CapMonsterException.TaskId"/> 0: the library refused the task or the
        /// URL, or the service or the network failed) or the wait failed (its task's id);
        /// cancelled as a task of <see cref="WaitResultAsync"/> is.
        /// </returns>
        /// <exception cref="ArgumentException">A string holds a NUL character (thrown at once).</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed (thrown at once).</exception>
        public Task<TaskResult> SolveAsync(string taskJson, string callbackUrl = null, WaitOptions options = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            byte[] json = Utf8.ToNative(taskJson, "taskJson");
            byte[] callback = Utf8.ToNative(callbackUrl, "callbackUrl");
            ThrowIfDisposed();
            return _waits.AddSolve(json, callback, options ?? WaitOptions.ForTaskOrDefault(json), cancellationToken);
        }

        /// <summary>
        /// <see cref="SolveAsync"/>, blocking the calling thread until it ends.
        /// </summary>
        /// <returns>The ready task.</returns>
        /// <exception cref="ArgumentException">A string holds a NUL character.</exception>
        /// <exception cref="CapMonsterException">The library refused the options, the createTask failed (<see cref="CapMonsterException.TaskId"/> 0), or the wait failed.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (carried by the exception), or the client was disposed meanwhile.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed before the call.</exception>
        public TaskResult Solve(string taskJson, string callbackUrl = null, WaitOptions options = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            return SolveAsync(taskJson, callbackUrl, options, cancellationToken).GetAwaiter().GetResult();
        }

        /// <summary>
        /// Creates a task. Never retried: a duplicate would be a second paid task.
        /// </summary>
        /// <param name="taskJson">The API's <c>task</c> object as JSON, with its "type", e.g. <c>{"type":"ImageToTextTask","body":"&lt;base64&gt;"}</c>.</param>
        /// <param name="callbackUrl">A URL the service will POST the result to; null for none.</param>
        /// <param name="cancellationToken">Stops the call, also mid-request: the task may then have been created and charged (the exception's message says so).</param>
        /// <returns>The new task's id.</returns>
        /// <exception cref="ArgumentException">A string holds a NUL character.</exception>
        /// <exception cref="CapMonsterException">The library refused the JSON or the URL (<see cref="CapMonsterErrorCode.InvalidArgument"/>), or the service or network failed.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the message is the library's.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public long CreateTask(string taskJson, string callbackUrl = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            return CreateTask(Utf8.ToNative(taskJson, "taskJson"), Utf8.ToNative(callbackUrl, "callbackUrl"), cancellationToken);
        }

        /// <summary>
        /// <see cref="CreateTask(string, string, CancellationToken)"/> that also gives the official
        /// SDKs' schedule for the task as created (<see cref="WaitOptions.ForTask"/>), to pass to
        /// <see cref="WaitResult"/>.
        /// </summary>
        /// <exception cref="ArgumentException">A string holds a NUL character.</exception>
        /// <exception cref="CapMonsterException">As <see cref="CreateTask(string, string, CancellationToken)"/>.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public long CreateTask(string taskJson, out WaitOptions waitOptions, string callbackUrl = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            long taskId = CreateTask(taskJson, callbackUrl, cancellationToken);
            // The library took the task, so it takes it here too: the same rules.
            waitOptions = WaitOptions.ForTask(taskJson);
            return taskId;
        }

        /// <summary><see cref="CreateTask(string, string, CancellationToken)"/> on a thread-pool thread; the token stops the request in flight.</summary>
        /// <exception cref="ArgumentException">A string holds a NUL character (thrown at once).</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed (thrown at once).</exception>
        public Task<long> CreateTaskAsync(string taskJson, string callbackUrl = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            byte[] json = Utf8.ToNative(taskJson, "taskJson");
            byte[] callback = Utf8.ToNative(callbackUrl, "callbackUrl");
            ThrowIfDisposed();
            return Run(() => CreateTask(json, callback, cancellationToken), cancellationToken);
        }

        /// <summary>The account balance in US dollars.</summary>
        /// <exception cref="CapMonsterException">The service or the network failed.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public decimal GetBalance(CancellationToken cancellationToken = default(CancellationToken))
        {
            ThrowIfDisposed();
            cancellationToken.ThrowIfCancellationRequested();
            double balance;
            ResultHandle result;
            int code;
            using (var call = new CallCancel(cancellationToken))
            {
                NativeCallOptions options = call.Options();
                code = NativeMethods.cm_get_balance_with(_handle, ref options, out balance, out result);
            }
            using (result)
            {
                ThrowIfCancelled(code, result, cancellationToken);
                if (code != NativeMethods.CM_OK) throw CapMonsterException.FromResult(code, result);
                if (double.IsNaN(balance) || balance <= (double)decimal.MinValue || balance >= (double)decimal.MaxValue)
                {
                    // A .NET limit, not a rule of the library's: decimal cannot hold every double.
                    throw new CapMonsterException(CapMonsterErrorCode.BadResponse,
                        "The balance " + balance + " does not fit a decimal.");
                }
                return (decimal)balance;
            }
        }

        /// <summary><see cref="GetBalance"/> on a thread-pool thread; the token stops the request in flight.</summary>
        /// <exception cref="ObjectDisposedException">The client was disposed (thrown at once).</exception>
        public Task<decimal> GetBalanceAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            ThrowIfDisposed();
            return Run(() => GetBalance(cancellationToken), cancellationToken);
        }

        /// <summary>
        /// The browser User-Agent the service's workers use now, to put in a task's "userAgent"
        /// (getUserAgent, <c>cm_get_user_agent_with</c>): a GET of the official page or of
        /// <see cref="CapMonsterClientOptions.UserAgentUrl"/>, through the client's proxy; no key is sent.
        /// </summary>
        /// <exception cref="CapMonsterException">The answer is not one User-Agent (an HTML page, an empty or oversized body: <see cref="CapMonsterErrorCode.BadResponse"/>), or the network failed.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public string GetUserAgent(CancellationToken cancellationToken = default(CancellationToken))
        {
            ThrowIfDisposed();
            cancellationToken.ThrowIfCancellationRequested();
            ResultHandle result;
            int code;
            using (var call = new CallCancel(cancellationToken))
            {
                NativeCallOptions options = call.Options();
                code = NativeMethods.cm_get_user_agent_with(_handle, ref options, out result);
            }
            using (result)
            {
                ThrowIfCancelled(code, result, cancellationToken);
                if (code != NativeMethods.CM_OK) throw CapMonsterException.FromResult(code, result);
                return result.ReadString(NativeMethods.cm_result_text);
            }
        }

        /// <summary><see cref="GetUserAgent"/> on a thread-pool thread; the token stops the request in flight.</summary>
        /// <exception cref="ObjectDisposedException">The client was disposed (thrown at once).</exception>
        public Task<string> GetUserAgentAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            ThrowIfDisposed();
            return Run(() => GetUserAgent(cancellationToken), cancellationToken);
        }

        /// <summary>
        /// Tells the service that the text it gave for an image captcha was wrong
        /// (reportIncorrectImageCaptcha). Never retried.
        /// </summary>
        /// <exception cref="CapMonsterException">The library refused the id, or the service did not accept the report (e.g. <c>ERROR_NO_SUCH_CAPCHA_ID</c>), or the network failed.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the message is the library's.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public void ReportIncorrectImage(long taskId, CancellationToken cancellationToken = default(CancellationToken))
        {
            Report(NativeMethods.cm_report_incorrect_image_with, taskId, cancellationToken);
        }

        /// <summary><see cref="ReportIncorrectImage"/> on a thread-pool thread; the token stops the request in flight.</summary>
        /// <exception cref="ObjectDisposedException">The client was disposed (thrown at once).</exception>
        public Task ReportIncorrectImageAsync(long taskId, CancellationToken cancellationToken = default(CancellationToken))
        {
            ThrowIfDisposed();
            return Run(() => { ReportIncorrectImage(taskId, cancellationToken); return true; }, cancellationToken);
        }

        /// <summary>
        /// Tells the service that a token it gave (reCAPTCHA, Turnstile, ...) was refused by the
        /// site (reportIncorrectTokenCaptcha). Never retried.
        /// </summary>
        /// <exception cref="CapMonsterException">The library refused the id, or the service did not accept the report, or the network failed.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the message is the library's.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public void ReportIncorrectToken(long taskId, CancellationToken cancellationToken = default(CancellationToken))
        {
            Report(NativeMethods.cm_report_incorrect_token_with, taskId, cancellationToken);
        }

        /// <summary><see cref="ReportIncorrectToken"/> on a thread-pool thread; the token stops the request in flight.</summary>
        /// <exception cref="ObjectDisposedException">The client was disposed (thrown at once).</exception>
        public Task ReportIncorrectTokenAsync(long taskId, CancellationToken cancellationToken = default(CancellationToken))
        {
            ThrowIfDisposed();
            return Run(() => { ReportIncorrectToken(taskId, cancellationToken); return true; }, cancellationToken);
        }

        /// <summary>
        /// Ends the library's account guard stops of this client's key and endpoint, in every
        /// process of the user (<c>cm_client_end_stops</c>): call it once the key, the address
        /// whitelist or the balance is fixed, so that calls go out at once rather than after the
        /// cool-down. Stops of banned proxies stay (their ban is the target's). While a stop is
        /// in force, a call it holds throws the service's own error
        /// (<see cref="CapMonsterException.ApiErrorCode"/> and description) with
        /// <see cref="CapMonsterException.RequestCount"/> 0 and <see cref="CapMonsterException.HttpStatus"/> 0.
        /// </summary>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public void EndStops()
        {
            ThrowIfDisposed();
            ResultHandle result;
            Check(NativeMethods.cm_client_end_stops(_handle, out result), result);
        }

        /// <summary>
        /// The client's counters since it was created (<c>cm_client_get_stats</c>): requests per
        /// method, answers per class, retries, refusals, connections, waits, bytes. Cheap: no
        /// lock, nothing sent.
        /// </summary>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public ClientStats Stats
        {
            get
            {
                ThrowIfDisposed();
                var stats = new NativeClientStats();
                stats.Size = (uint)Marshal.SizeOf(typeof(NativeClientStats));
                int code = NativeMethods.cm_client_get_stats(_handle, ref stats);
                if (code != NativeMethods.CM_OK) throw new InvalidOperationException("cm_client_get_stats returned " + code);
                return new ClientStats(stats);
            }
        }

        /// <summary>
        /// Shuts the client's waiter down: every pending wait's task ends as cancelled before this
        /// returns (the library hands them back within milliseconds). Frees the native client
        /// once no call uses it. Calling it again does nothing.
        /// </summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _waits.Close();
            _handle.Dispose();
        }

        /// <summary>The client's wait engine, for tests.</summary>
        internal WaitEngine Waits
        {
            get { return _waits; }
        }

        private delegate int ReportCall(ClientHandle client, long taskId, ref NativeCallOptions options, out ResultHandle result);

        private void Report(ReportCall call, long taskId, CancellationToken cancellationToken)
        {
            ThrowIfDisposed();
            cancellationToken.ThrowIfCancellationRequested();
            ResultHandle result;
            int code;
            using (var cancel = new CallCancel(cancellationToken))
            {
                NativeCallOptions options = cancel.Options();
                code = call(_handle, taskId, ref options, out result);
            }
            using (result)
            {
                ThrowIfCancelled(code, result, cancellationToken);
                if (code != NativeMethods.CM_OK) throw CapMonsterException.FromResult(code, result);
            }
        }

        private long CreateTask(byte[] json, byte[] callback, CancellationToken cancellationToken)
        {
            ThrowIfDisposed();
            cancellationToken.ThrowIfCancellationRequested();
            long taskId;
            ResultHandle result;
            int code;
            using (var call = new CallCancel(cancellationToken))
            {
                NativeCallOptions options = call.Options();
                code = NativeMethods.cm_create_task_with(_handle, json, callback, ref options, out taskId, out result);
            }
            using (result)
            {
                ThrowIfCancelled(code, result, cancellationToken);
                if (code != NativeMethods.CM_OK) throw CapMonsterException.FromResult(code, result);
                return taskId;
            }
        }

        /// <summary>
        /// A single call on the thread pool. With the token given to StartNew, an
        /// OperationCanceledException carrying it leaves the task Canceled (not Faulted), and a
        /// token cancelled before the call starts sends nothing.
        /// </summary>
        private static Task<T> Run<T>(Func<T> call, CancellationToken cancellationToken)
        {
            return Task.Factory.StartNew(call, cancellationToken, TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
        }

        private void ThrowIfDisposed()
        {
            if (_disposed) throw new ObjectDisposedException(GetType().FullName);
        }

        /// <summary>A call stopped by its token: OperationCanceledException with the library's message and the token.</summary>
        private static void ThrowIfCancelled(int code, ResultHandle result, CancellationToken cancellationToken)
        {
            if (code == NativeMethods.CM_ERR_CANCELLED && cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(result.ReadString(NativeMethods.cm_result_message), cancellationToken);
            }
        }

        /// <summary>Frees the result of a creation or a setter; throws the library's code and message unless CM_OK.</summary>
        private static void Check(int code, ResultHandle result)
        {
            using (result)
            {
                if (code != NativeMethods.CM_OK) throw CapMonsterException.FromResult(code, result);
            }
        }

        internal static CancelHandle NewCancel()
        {
            CancelHandle cancel;
            int code = NativeMethods.cm_cancel_new(out cancel);
            if (code != NativeMethods.CM_OK)
            {
                if (cancel != null) cancel.Dispose();
                throw CapMonsterException.FromCode(code, "cm_cancel_new");
            }
            return cancel;
        }

        /// <summary>A token's callback: must not throw (it runs inside the canceller's Cancel()).</summary>
        private static void TriggerCancelSafely(object state)
        {
            try
            {
                NativeMethods.cm_cancel_trigger((CancelHandle)state);
            }
            catch (Exception)
            {
                // The call already ended and freed its cancel (ObjectDisposedException).
            }
        }

        /// <summary>A TaskResult, or the exception, from a call's code and result; frees the result unless the TaskResult keeps it.</summary>
        internal static TaskResult ToTaskResult(int code, ResultHandle result)
        {
            bool kept = false;
            try
            {
                if (code != NativeMethods.CM_OK) throw CapMonsterException.FromResult(code, result);
                return new TaskResult(result, out kept);
            }
            finally
            {
                if (!kept && result != null) result.Dispose();
            }
        }

        /// <summary>
        /// The native cancel of one single call, triggered by its token; nothing at all for a
        /// token that can never be cancelled. Dispose unregisters first (waiting for a callback
        /// in progress), then frees the cancel.
        /// </summary>
        private struct CallCancel : IDisposable
        {
            private readonly CancelHandle _cancel;
            private readonly CancellationTokenRegistration _registration;
            private bool _referenced;

            internal CallCancel(CancellationToken cancellationToken)
            {
                _cancel = null;
                _registration = default(CancellationTokenRegistration);
                _referenced = false;
                if (!cancellationToken.CanBeCanceled) return;
                _cancel = NewCancel();
                try
                {
                    // The struct handed to C holds a raw pointer: keep the token alive until Dispose.
                    _cancel.DangerousAddRef(ref _referenced);
                    _registration = cancellationToken.Register(TriggerCancel, _cancel);
                }
                catch
                {
                    if (_referenced) _cancel.DangerousRelease();
                    _cancel.Dispose();
                    throw;
                }
            }

            internal NativeCallOptions Options()
            {
                NativeCallOptions options = new NativeCallOptions();
                options.Cancel = _cancel == null ? IntPtr.Zero : _cancel.DangerousGetHandle();
                return options;
            }

            public void Dispose()
            {
                if (_cancel == null) return;
                _registration.Dispose();
                if (_referenced) _cancel.DangerousRelease();
                _cancel.Dispose();
            }
        }
    }
}
