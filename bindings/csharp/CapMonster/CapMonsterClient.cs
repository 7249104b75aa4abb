using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace CapMonster
{
    /// <summary>
    /// A client of the CapMonster Cloud API over the native libcapmonster (include/capmonster.h):
    /// create tasks, read and wait for their results, read the balance.
    /// </summary>
    /// <remarks>
    /// <para>Thread-safe: one client can serve many threads at once; it keeps one pool of
    /// keep-alive connections. Every call blocks its thread (HTTP requests are bounded by
    /// <see cref="CapMonsterClientOptions.RequestTimeout"/>); <see cref="WaitResultAsync"/>
    /// runs the wait on a dedicated thread.</para>
    /// <para>The service allows 120 getTaskResult requests per task; the native library counts
    /// them per (client key, task) across the whole process and never sends the 121st
    /// (<see cref="CapMonsterErrorCode.BudgetExhausted"/>).</para>
    /// <para>Dispose ends waits in progress (they throw <see cref="ObjectDisposedException"/>);
    /// other calls in progress finish first, and the native client is freed after the last one.</para>
    /// </remarks>
    public sealed class CapMonsterClient : IDisposable
    {
        private static readonly Action<object> TriggerCancel =
            state => NativeMethods.cm_cancel_trigger((CancelHandle)state);

        private readonly ClientHandle _handle;
        private readonly object _gate = new object();
        // The cancel tokens of the waits in progress, triggered by Dispose.
        private readonly HashSet<CancelHandle> _waits = new HashSet<CancelHandle>();
        private volatile bool _disposed;

        /// <summary>A client of the official service with the default settings.</summary>
        /// <param name="clientKey">Your account key.</param>
        /// <exception cref="ArgumentNullException"><paramref name="clientKey"/> is null.</exception>
        /// <exception cref="CapMonsterException">The library refused the key (e.g. empty): <see cref="CapMonsterErrorCode.InvalidArgument"/>.</exception>
        public CapMonsterClient(string clientKey) : this(clientKey, null)
        {
        }

        /// <summary>A client with <paramref name="options"/> (null: the defaults).</summary>
        /// <param name="clientKey">Your account key (the emulator accepts any non-empty one).</param>
        /// <param name="options">Base URL, request timeout, proxy, CA file, connection cap; read once, here.</param>
        /// <exception cref="ArgumentNullException"><paramref name="clientKey"/> is null.</exception>
        /// <exception cref="ArgumentException">A string holds a NUL character, or <see cref="CapMonsterClientOptions.Proxy"/> is set with <see cref="CapMonsterClientOptions.UseProxy"/> false.</exception>
        /// <exception cref="ArgumentOutOfRangeException"><see cref="CapMonsterClientOptions.RequestTimeout"/> is negative or too large.</exception>
        /// <exception cref="CapMonsterException">The library refused the key or a setting (<see cref="CapMonsterErrorCode.InvalidArgument"/>, with the library's message naming the argument, e.g. "base_url must start with https:// (or http:// to a loopback host)"): an empty key, a malformed or non-loopback http:// base URL, a zero timeout, a bad proxy URL, a missing CA file, a zero <see cref="CapMonsterClientOptions.MaxConnections"/>. A malformed proxy variable in the environment is not refused here: the calls that would use it throw, naming the variable.</exception>
        public CapMonsterClient(string clientKey, CapMonsterClientOptions options)
        {
            if (clientKey == null) throw new ArgumentNullException("clientKey");
            if (options == null) options = new CapMonsterClientOptions();
            if (!options.UseProxy && options.Proxy != null)
            {
                throw new ArgumentException("Proxy must be null when UseProxy is false.", "options");
            }

            // Everything is converted (and refused) before the native client exists.
            byte[] baseUrl = Utf8.ToNative(options.BaseUrl, "options.BaseUrl");
            byte[] proxy = Utf8.ToNative(options.Proxy, "options.Proxy");
            byte[] caFile = Utf8.ToNative(options.CaFile, "options.CaFile");
            uint timeoutMs = options.RequestTimeout.HasValue
                ? WaitOptions.ToMilliseconds(options.RequestTimeout.Value, "options.RequestTimeout", true)
                : 0;
            byte[] key = Utf8.ToNative(clientKey, "clientKey");

            uint? maxConnections = options.MaxConnections.HasValue
                ? (uint)Math.Max(options.MaxConnections.Value, 0)
                : (uint?)null;

            ClientHandle handle = null;
            try
            {
                // Every refusal is the library's: its code and its message, naming the argument
                // (which never repeats a proxy's credentials).
                ResultHandle result;
                Check(NativeMethods.cm_client_new(key, out handle, out result), result);
                if (baseUrl != null)
                {
                    Check(NativeMethods.cm_client_set_base_url(handle, baseUrl, out result), result);
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
            }
            catch
            {
                if (handle != null) handle.Dispose();
                throw;
            }
            finally
            {
                Array.Clear(key, 0, key.Length);
                if (proxy != null) Array.Clear(proxy, 0, proxy.Length);
            }
            _handle = handle;
        }

        /// <summary>The native library's version, e.g. "0.1.0".</summary>
        public static string NativeVersion
        {
            get { return Utf8.FromNative(NativeMethods.cm_version()); }
        }

        /// <summary>
        /// Asks once for the state of a task. The request counts in the task's budget of 120.
        /// </summary>
        /// <returns>The task, ready (with its solution) or still processing.</returns>
        /// <exception cref="CapMonsterException">The service or the network failed; see <see cref="CapMonsterException.Code"/>.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public TaskResult GetTaskResult(long taskId)
        {
            ThrowIfDisposed();
            ResultHandle result;
            int code = NativeMethods.cm_get_task_result(_handle, taskId, out result);
            return ToTaskResult(code, result);
        }

        /// <summary>
        /// Polls a task until it is ready, following <paramref name="options"/> (null: <see cref="WaitOptions.Default"/>).
        /// Network errors, request timeouts, HTTP 5xx and 429 and ERROR_TOO_MUCH_REQUESTS are
        /// retried at the next poll; any other failure ends the wait at once.
        /// </summary>
        /// <returns>The ready task.</returns>
        /// <exception cref="CapMonsterException">The service reported an error, the wait timed out, its requests were spent, or an answer was bad.</exception>
        /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (a sleep is cut short at once; a request in flight finishes first).</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed, also while waiting.</exception>
        public TaskResult WaitResult(long taskId, WaitOptions options = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            ThrowIfDisposed();
            cancellationToken.ThrowIfCancellationRequested();
            WaitOptions schedule = options ?? new WaitOptions();

            int code;
            ResultHandle result = null;
            bool handedOver = false;
            try
            {
                using (CancelHandle cancel = NewCancel())
                {
                    StartWait(cancel);
                    try
                    {
                        // Disposed before the native cancel is freed: no callback can run on a freed token.
                        using (cancellationToken.Register(TriggerCancel, cancel))
                        {
                            bool added = false;
                            try
                            {
                                // The struct holds a raw pointer: keep the token alive around the call.
                                cancel.DangerousAddRef(ref added);
                                NativeWaitOptions native = schedule.ToNative(cancel.DangerousGetHandle());
                                code = NativeMethods.cm_wait_result(_handle, taskId, ref native, out result);
                            }
                            finally
                            {
                                if (added) cancel.DangerousRelease();
                            }
                        }
                    }
                    finally
                    {
                        EndWait(cancel);
                    }
                }

                if (code == NativeMethods.CM_ERR_CANCELLED)
                {
                    if (cancellationToken.IsCancellationRequested)
                    {
                        throw new OperationCanceledException(
                            "The wait for task " + taskId + " was cancelled.", cancellationToken);
                    }
                    if (_disposed)
                    {
                        throw new ObjectDisposedException(GetType().FullName,
                            "The client was disposed while waiting for task " + taskId + ".");
                    }
                }
                handedOver = true;
                return ToTaskResult(code, result);
            }
            finally
            {
                if (!handedOver && result != null) result.Dispose();
            }
        }

        /// <summary>
        /// <see cref="WaitResult"/> on a dedicated thread (waits last seconds to minutes and
        /// would starve the thread pool). Cancelling <paramref name="cancellationToken"/>
        /// triggers the native cancel: the task ends promptly as canceled.
        /// <paramref name="options"/> is copied now: changing it later has no effect.
        /// </summary>
        /// <exception cref="ObjectDisposedException">The client was disposed (thrown at once).</exception>
        public Task<TaskResult> WaitResultAsync(long taskId, WaitOptions options = null, CancellationToken cancellationToken = default(CancellationToken))
        {
            ThrowIfDisposed();
            WaitOptions schedule = options == null ? new WaitOptions() : options.Clone();
            return Task.Factory.StartNew(
                () => WaitResult(taskId, schedule, cancellationToken),
                cancellationToken,
                TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach,
                TaskScheduler.Default);
        }

        /// <summary>
        /// Creates a task. Never retried: a duplicate would be a second paid task.
        /// </summary>
        /// <param name="taskJson">The API's <c>task</c> object as JSON, with its "type", e.g. <c>{"type":"ImageToTextTask","body":"&lt;base64&gt;"}</c>.</param>
        /// <param name="callbackUrl">An http(s) URL the service will POST the result to; null for none.</param>
        /// <returns>The new task's id.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="taskJson"/> is null.</exception>
        /// <exception cref="CapMonsterException">The JSON was refused (<see cref="CapMonsterErrorCode.InvalidArgument"/>), or the service or network failed.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public long CreateTask(string taskJson, string callbackUrl = null)
        {
            if (taskJson == null) throw new ArgumentNullException("taskJson");
            byte[] json = Utf8.ToNative(taskJson, "taskJson");
            byte[] callback = Utf8.ToNative(callbackUrl, "callbackUrl");
            ThrowIfDisposed();
            long taskId;
            ResultHandle result;
            int code = NativeMethods.cm_create_task(_handle, json, callback, out taskId, out result);
            using (result)
            {
                if (code != NativeMethods.CM_OK) throw CapMonsterException.FromResult(code, result);
                return taskId;
            }
        }

        /// <summary>The account balance in US dollars.</summary>
        /// <exception cref="CapMonsterException">The service or the network failed.</exception>
        /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
        public decimal GetBalance()
        {
            ThrowIfDisposed();
            double balance;
            ResultHandle result;
            int code = NativeMethods.cm_get_balance(_handle, out balance, out result);
            using (result)
            {
                if (code != NativeMethods.CM_OK) throw CapMonsterException.FromResult(code, result);
                if (double.IsNaN(balance) || balance <= (double)decimal.MinValue || balance >= (double)decimal.MaxValue)
                {
                    throw new CapMonsterException(CapMonsterErrorCode.BadResponse,
                        "The balance " + balance + " does not fit a decimal.");
                }
                return (decimal)balance;
            }
        }

        /// <summary>
        /// Ends waits in progress (they throw <see cref="ObjectDisposedException"/>) and frees
        /// the native client once no call uses it. Calling it again does nothing.
        /// </summary>
        public void Dispose()
        {
            lock (_gate)
            {
                if (_disposed) return;
                _disposed = true;
                foreach (CancelHandle cancel in _waits) NativeMethods.cm_cancel_trigger(cancel);
            }
            _handle.Dispose();
        }

        private void ThrowIfDisposed()
        {
            if (_disposed) throw new ObjectDisposedException(GetType().FullName);
        }

        /// <summary>Frees the result of a creation or a setter; throws the library's code and message unless CM_OK.</summary>
        private static void Check(int code, ResultHandle result)
        {
            using (result)
            {
                if (code != NativeMethods.CM_OK) throw CapMonsterException.FromResult(code, result);
            }
        }

        private static CancelHandle NewCancel()
        {
            CancelHandle cancel;
            int code = NativeMethods.cm_cancel_new(out cancel);
            if (code != NativeMethods.CM_OK)
            {
                if (cancel != null) cancel.Dispose();
                throw CapMonsterException.FromCode(code, "cm_cancel_new failed");
            }
            return cancel;
        }

        private void StartWait(CancelHandle cancel)
        {
            lock (_gate)
            {
                ThrowIfDisposed();
                _waits.Add(cancel);
            }
        }

        private void EndWait(CancelHandle cancel)
        {
            lock (_gate)
            {
                _waits.Remove(cancel);
            }
        }

        /// <summary>A TaskResult, or the exception, from a call's code and result; frees the result unless the TaskResult keeps it.</summary>
        private static TaskResult ToTaskResult(int code, ResultHandle result)
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
    }
}
