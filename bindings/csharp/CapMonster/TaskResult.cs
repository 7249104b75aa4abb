using System;

namespace CapMonster
{
    /// <summary>
    /// The state of a task: still processing (<see cref="IsReady"/> false) or ready with its
    /// solution. Immutable and safe to share between threads.
    /// </summary>
    /// <remarks>
    /// Design: every value is copied out of the native <c>cm_result</c> when the object is made,
    /// except what <see cref="GetSolutionString"/> needs: the solution's members can be any
    /// names, which only the native library knows without a JSON parser here (the binding
    /// parses nothing itself, so it unescapes exactly as the C API does). So:
    /// <list type="bullet">
    /// <item>a result that is not ready (the bulk of polling) and every failure have their
    /// native result freed before the call returns;</item>
    /// <item>a ready result keeps its native result in a <see cref="ResultHandle"/>, a
    /// finalizable SafeHandle that frees it once this object is unreachable (one per solved
    /// task, about twice the solution's size, reported to the GC as memory pressure).</item>
    /// </list>
    /// That keeps TaskResult free of IDisposable (nothing to forget, values usable any time)
    /// at the cost of finalizer-timed release for solved tasks only.
    /// </remarks>
    public sealed class TaskResult
    {
        // Null unless ready; then owns the native result until finalization.
        private readonly ResultHandle _result;

        internal TaskResult(ResultHandle result, out bool keptHandle)
        {
            TaskId = NativeMethods.cm_result_task_id(result);
            IsReady = NativeMethods.cm_result_is_ready(result) != 0;
            RequestCount = (int)Math.Min(NativeMethods.cm_result_request_count(result), int.MaxValue);
            HttpStatus = NativeMethods.cm_result_http_status(result);
            Message = result.ReadString(NativeMethods.cm_result_message);
            SolutionJson = result.ReadString(NativeMethods.cm_result_solution_json);
            keptHandle = IsReady && SolutionJson != null;
            if (keptHandle)
            {
                // The JSON and its top-level strings, as UTF-8, plus bookkeeping.
                result.AddMemoryPressure(2L * SolutionJson.Length + 256);
                _result = result;
            }
        }

        /// <summary>The task the result is about.</summary>
        public long TaskId { get; private set; }

        /// <summary>True when the task's status was "ready": the solution is there.</summary>
        public bool IsReady { get; private set; }

        /// <summary>The solution object exactly as the service sent it (JSON text); null unless ready.</summary>
        public string SolutionJson { get; private set; }

        /// <summary>The HTTP requests the call sent, retries included (for a wait: all its polls).</summary>
        public int RequestCount { get; private set; }

        /// <summary>The last HTTP status received.</summary>
        public int HttpStatus { get; private set; }

        /// <summary>The library's one-line description of the outcome.</summary>
        public string Message { get; private set; }

        /// <summary>
        /// The top-level string member <paramref name="name"/> of the solution (e.g. "text",
        /// "gRecaptchaResponse", "token"), unescaped; null when not ready, absent, not a
        /// string, or holding a NUL character. Other shapes: parse <see cref="SolutionJson"/>.
        /// </summary>
        /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
        public string GetSolutionString(string name)
        {
            if (name == null) throw new ArgumentNullException("name");
            if (_result == null) return null;
            if (name.IndexOf('\0') >= 0) return null; // no member name the C API can look up
            byte[] field = Utf8.ToNative(name, "name");
            return _result.ReadString(r => NativeMethods.cm_result_solution_string(r, field));
        }

        /// <inheritdoc/>
        public override string ToString()
        {
            return IsReady ? "task " + TaskId + " ready: " + SolutionJson : "task " + TaskId + " processing";
        }
    }
}
