using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

// The tests and bench/csharp look at the engine's table (when native waits come out).
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("CapMonster.Tests")]
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("Scale")]

namespace CapMonster
{
    /// <summary>
    /// The waits of one client on one native <c>cm_waiter</c>: the library polls on its own
    /// threads (at most the client's connection cap); one dispatcher thread here blocks in
    /// <c>cm_waiter_next</c> and completes the <see cref="TaskCompletionSource{TResult}"/> of each
    /// finished wait, found by its tag. A pending wait costs a few small objects, no thread.
    /// </summary>
    /// <remarks>
    /// Lifetime: the waiter and the dispatcher start with the first wait. <see cref="Close"/> calls
    /// <c>cm_waiter_shutdown</c>: the library cancels every wait, each still comes out of
    /// <c>cm_waiter_next</c> (its task ends as cancelled), then <c>cm_waiter_next</c> reports the
    /// shutdown, the dispatcher stops and frees the waiter.
    /// </remarks>
    internal sealed class WaitEngine
    {
        // How long the dispatcher blocks per cm_waiter_next; only bounds each native call (a
        // shutdown wakes it at once).
        private const uint NextTimeoutMs = 30000;

        /// <summary>The dispatcher thread's name.</summary>
        internal const string DispatcherName = "cm-dispatcher";
        // How long Close waits for the library to hand back the cancelled waits; it promises
        // milliseconds, this only keeps Dispose from hanging on a library bug.
        private static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(10);

        private readonly ClientHandle _client;
        private readonly object _gate = new object();
        // Pending waits by tag. Tags are never reused (a 64-bit counter).
        private readonly Dictionary<ulong, PendingWait> _waits = new Dictionary<ulong, PendingWait>();
        private WaiterHandle _waiter;
        private Thread _dispatcher;
        private ulong _lastTag;
        private bool _closed;

        internal WaitEngine(ClientHandle client)
        {
            _client = client;
        }

        /// <summary>Waits pending in the native waiter (added, not yet dispatched); 0 before the first wait.</summary>
        internal long Pending
        {
            get
            {
                lock (_gate) return _waits.Count;
            }
        }

        /// <summary>The dispatcher thread, for tests (null before the first wait).</summary>
        internal Thread Dispatcher
        {
            get
            {
                lock (_gate) return _dispatcher;
            }
        }

        /// <summary>One native add (<c>cm_waiter_add_with_result</c> or <c>cm_waiter_add_solve</c>) with the wait's options and tag.</summary>
        private delegate int NativeAdd(WaiterHandle waiter, ref NativeWaitOptions options, ulong tag, out ResultHandle result);

        /// <summary>A wait for <paramref name="taskId"/>.</summary>
        internal Task<TaskResult> Add(long taskId, WaitOptions options, CancellationToken cancellationToken)
        {
            return Add((WaiterHandle waiter, ref NativeWaitOptions native, ulong tag, out ResultHandle result) =>
                NativeMethods.cm_waiter_add_with_result(waiter, taskId, ref native, tag, out result), options, cancellationToken);
        }

        /// <summary>
        /// A solve: the library creates the task (UTF-8, NUL-terminated <paramref name="taskJson"/>;
        /// <paramref name="callbackUrl"/> null for none) on its threads, then waits for it. A failed
        /// createTask ends the task with the library's CapMonsterException, task id 0.
        /// </summary>
        internal Task<TaskResult> AddSolve(byte[] taskJson, byte[] callbackUrl, WaitOptions options, CancellationToken cancellationToken)
        {
            return Add((WaiterHandle waiter, ref NativeWaitOptions native, ulong tag, out ResultHandle result) =>
                NativeMethods.cm_waiter_add_solve(waiter, taskJson, callbackUrl, ref native, tag, out result), options, cancellationToken);
        }

        private Task<TaskResult> Add(NativeAdd add, WaitOptions options, CancellationToken cancellationToken)
        {
            // Nothing sent for a token already cancelled.
            if (cancellationToken.IsCancellationRequested) return Task.FromCanceled<TaskResult>(cancellationToken);

            var wait = new PendingWait(cancellationToken);
            NativeWaitOptions native = options.ToNative(IntPtr.Zero);
            // A token that can never be cancelled needs no native cancel: Close reaches every
            // wait through cm_waiter_shutdown.
            if (cancellationToken.CanBeCanceled) wait.Cancel = CapMonsterClient.NewCancel();

            WaiterHandle waiter;
            ulong tag;
            try
            {
                lock (_gate)
                {
                    if (_closed) throw new ObjectDisposedException(typeof(CapMonsterClient).FullName);
                    if (_waiter == null) Start();
                    tag = ++_lastTag;
                    // In the table before the library knows the wait: it may finish at once.
                    _waits.Add(tag, wait);
                    waiter = _waiter;
                }
            }
            catch
            {
                if (wait.Cancel != null) wait.Cancel.Dispose();
                throw;
            }

            int code;
            ResultHandle added = null; // says why when the add is refused
            bool cancelRef = false;
            try
            {
                if (wait.Cancel != null)
                {
                    // The struct holds a raw pointer: keep the token alive around the call (the
                    // library takes its own reference).
                    wait.Cancel.DangerousAddRef(ref cancelRef);
                    native.Cancel = wait.Cancel.DangerousGetHandle();
                }
                code = add(waiter, ref native, tag, out added);
            }
            catch (ObjectDisposedException)
            {
                // Close ran meanwhile and the dispatcher already freed the waiter.
                code = NativeMethods.CM_ERR_CANCELLED;
            }
            finally
            {
                if (cancelRef) wait.Cancel.DangerousRelease();
            }

            if (code != NativeMethods.CM_OK)
            {
                lock (_gate) _waits.Remove(tag);
                if (code == NativeMethods.CM_ERR_CANCELLED)
                {
                    // Shut down by a concurrent Dispose: the wait ends as the pending ones do.
                    wait.Finish(null);
                }
                else
                {
                    wait.Fail(CapMonsterException.FromResult(code, added));
                }
                if (added != null) added.Dispose();
                return wait.Task;
            }
            if (added != null) added.Dispose();
            if (cancellationToken.CanBeCanceled) wait.Register();
            return wait.Task;
        }

        /// <summary>
        /// Shuts the waiter down and waits (bounded) until every pending wait has come out as
        /// cancelled and the dispatcher has freed the waiter. Idempotent.
        /// </summary>
        internal void Close()
        {
            Thread dispatcher;
            lock (_gate)
            {
                if (_closed) return;
                _closed = true;
                dispatcher = _dispatcher;
                if (_waiter != null) NativeMethods.cm_waiter_shutdown(_waiter);
            }
            if (dispatcher == null || dispatcher == Thread.CurrentThread) return;
            if (!dispatcher.Join(DrainLimit))
            {
                // The library did not hand the waits back: end their tasks here; the dispatcher
                // keeps the waiter until it does.
                foreach (PendingWait wait in TakeAll()) wait.Finish(null);
            }
        }

        // Under _gate.
        private void Start()
        {
            WaiterHandle waiter;
            int code = NativeMethods.cm_waiter_new(_client, out waiter);
            if (code != NativeMethods.CM_OK)
            {
                if (waiter != null) waiter.Dispose();
                throw CapMonsterException.FromCode(code, "cm_waiter_new");
            }
            // A small stack: the loop calls nothing deep, and only one such thread exists per client.
            var thread = new Thread(Dispatch, 256 * 1024);
            thread.IsBackground = true;
            // Short enough for the kernel's 15-character thread names (the library's own are "capmonster-wait").
            thread.Name = DispatcherName;
            try
            {
                thread.Start();
            }
            catch
            {
                waiter.Dispose();
                throw;
            }
            _waiter = waiter;
            _dispatcher = thread;
        }

        /// <summary>The dispatcher thread: never lets an exception out (that would end the process).</summary>
        private void Dispatch()
        {
            WaiterHandle waiter;
            lock (_gate) waiter = _waiter;
            try
            {
                // Ends when the library says the waiter is shut down and empty; bounded per turn
                // by NextTimeoutMs.
                for (;;)
                {
                    ulong tag;
                    ResultHandle result;
                    int code = NativeMethods.cm_waiter_next(waiter, NextTimeoutMs, out tag, out result);
                    if (code == NativeMethods.CM_ERR_TIMEOUT)
                    {
                        if (result != null) result.Dispose();
                        continue;
                    }
                    if (code != NativeMethods.CM_OK)
                    {
                        // CM_ERR_CANCELLED: shut down and drained. Anything else is a bug either
                        // side; stopping beats spinning.
                        if (result != null) result.Dispose();
                        break;
                    }
                    Deliver(tag, result);
                }
            }
            catch (Exception)
            {
                // Only a bug gets here (the native calls report through codes): the pending
                // tasks are ended below rather than left hanging.
            }
            // No more waits on a waiter nobody dispatches.
            lock (_gate) _closed = true;
            foreach (PendingWait wait in TakeAll()) wait.Finish(null);
            waiter.Dispose();
        }

        private void Deliver(ulong tag, ResultHandle result)
        {
            PendingWait wait;
            lock (_gate)
            {
                if (_waits.TryGetValue(tag, out wait)) _waits.Remove(tag);
            }
            if (wait == null)
            {
                result.Dispose();
                return;
            }
            try
            {
                wait.Finish(result);
            }
            catch (Exception e)
            {
                // Reading the result failed (a bug): the wait still ends, with the reason.
                result.Dispose();
                wait.Fail(e);
            }
        }

        private List<PendingWait> TakeAll()
        {
            lock (_gate)
            {
                var all = new List<PendingWait>(_waits.Values);
                _waits.Clear();
                return all;
            }
        }

        /// <summary>
        /// One wait: its task, its native cancel (when its token can be cancelled) and the token's
        /// registration. Continuations never run on the dispatcher or inside Cancel()
        /// (RunContinuationsAsynchronously). The entry stays in the table until the library hands
        /// the wait back, also when its task already ended as cancelled.
        /// </summary>
        private sealed class PendingWait : TaskCompletionSource<TaskResult>
        {
            private static readonly Action<object> Trigger = state => ((PendingWait)state).TriggerCancel();

            private readonly CancellationToken _token;
            private CancellationTokenRegistration _registration;
            private bool _registered;
            private bool _finished;

            internal PendingWait(CancellationToken token)
                : base(TaskCreationOptions.RunContinuationsAsynchronously)
            {
                _token = token;
            }

            /// <summary>The wait's cm_cancel, or null when its token cannot be cancelled.</summary>
            internal CancelHandle Cancel;

            /// <summary>After cm_waiter_add: the token's cancellation triggers the native cancel.</summary>
            internal void Register()
            {
                // Runs the callback at once if the token is already cancelled.
                CancellationTokenRegistration registration = _token.Register(Trigger, this);
                bool finished;
                lock (this)
                {
                    finished = _finished;
                    if (!finished)
                    {
                        _registration = registration;
                        _registered = true;
                    }
                }
                if (finished) registration.Dispose();
            }

            /// <summary>
            /// The token's callback, on the thread that cancels: stops the native wait (asleep or
            /// mid-request), then ends the task at once rather than after three thread hand-offs
            /// (library worker, dispatcher, pool). The wait still comes out of cm_waiter_next
            /// within milliseconds; Finish frees what it holds then. Must not throw.
            /// </summary>
            private void TriggerCancel()
            {
                try
                {
                    NativeMethods.cm_cancel_trigger(Cancel);
                }
                catch (Exception)
                {
                    // The wait ended and freed its cancel meanwhile (ObjectDisposedException):
                    // nothing is left to stop.
                }
                // Continuations go to the thread pool (RunContinuationsAsynchronously), never
                // inline in the canceller's Cancel().
                TrySetCanceled(_token);
            }

            /// <summary>
            /// Ends the task from the wait's native result (null: it never reached the library, or
            /// the library never handed it back), and frees what the wait holds.
            /// </summary>
            internal void Finish(ResultHandle result)
            {
                Release();
                if (Task.IsCompleted)
                {
                    // Already cancelled by its token: the outcome is not wanted, free it now
                    // rather than at finalization.
                    if (result != null) result.Dispose();
                    return;
                }
                int code = result == null ? NativeMethods.CM_ERR_CANCELLED : NativeMethods.cm_result_code(result);
                if (code == NativeMethods.CM_ERR_CANCELLED)
                {
                    if (result != null) result.Dispose();
                    // Cancelled by the token (then the task carries it) or by Dispose's shutdown.
                    if (_token.IsCancellationRequested) TrySetCanceled(_token);
                    else TrySetCanceled();
                    return;
                }
                // Frees the result unless the TaskResult keeps it; throws the wait's failure.
                TaskResult value;
                try
                {
                    value = CapMonsterClient.ToTaskResult(code, result);
                }
                catch (CapMonsterException e)
                {
                    TrySetException(e);
                    return;
                }
                TrySetResult(value);
            }

            internal void Fail(Exception error)
            {
                Release();
                TrySetException(error);
            }

            private void Release()
            {
                CancellationTokenRegistration registration;
                bool registered;
                lock (this)
                {
                    _finished = true;
                    registration = _registration;
                    registered = _registered;
                    _registered = false;
                }
                // Waits for a callback running on another thread, so the cancel is freed after it.
                if (registered) registration.Dispose();
                if (Cancel != null) Cancel.Dispose();
            }
        }
    }
}
