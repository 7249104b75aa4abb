using System;

namespace CapMonster
{
    /// <summary>
    /// How <see cref="CapMonsterClient.WaitResultAsync"/> polls: sleep <see cref="FirstDelay"/>,
    /// then ask every <see cref="Interval"/> (measured from each answer) until the task is
    /// ready, <see cref="Timeout"/> has passed since the call, or <see cref="MaxRequests"/>
    /// requests are spent. A plain mutable object: every factory returns a new instance, so
    /// changing one never affects another.
    /// </summary>
    /// <remarks>
    /// The native library judges every value (<c>cm_wait_options</c> in capmonster.h); the
    /// properties keep what you set and are converted when a wait starts:
    /// <list type="bullet">
    /// <item>times become whole milliseconds, rounded up (a wait is never shorter than asked);</item>
    /// <item>a negative time becomes 0 and a negative <see cref="MaxRequests"/> becomes 0, a time
    /// over <see cref="uint.MaxValue"/> ms becomes <see cref="uint.MaxValue"/> ms, and
    /// <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> for <see cref="Timeout"/> is
    /// <see cref="uint.MaxValue"/> ms, the longest the library takes;</item>
    /// <item>values the library refuses make the wait fail with
    /// <see cref="CapMonsterErrorCode.InvalidArgument"/> and the library's message, naming the field.</item>
    /// </list>
    /// </remarks>
    public sealed class WaitOptions
    {
        /// <summary>The library defaults (<c>cm_wait_options_init</c>).</summary>
        public WaitOptions()
        {
            NativeWaitOptions native = new NativeWaitOptions();
            NativeMethods.cm_wait_options_init(ref native);
            Load(native);
        }

        private WaitOptions(NativeWaitOptions native)
        {
            Load(native);
        }

        /// <summary>A new instance holding the library defaults; same as <c>new WaitOptions()</c>.</summary>
        public static WaitOptions Default
        {
            get { return new WaitOptions(); }
        }

        /// <summary>
        /// The official SDKs' schedule for <paramref name="taskType"/>, exactly as
        /// <c>cm_wait_options_for_task_type</c> gives it. A type the library does not know, or a
        /// name it cannot read (null, not UTF-8 because it holds a lone surrogate, or holding a
        /// NUL character, which C strings cannot carry), gets the library's defaults
        /// (<see cref="Default"/>): the same as Go's <c>WaitOptionsFor</c>.
        /// </summary>
        public static WaitOptions ForTaskType(string taskType)
        {
            if (taskType != null && taskType.IndexOf('\0') >= 0) return new WaitOptions();
            NativeWaitOptions native = new NativeWaitOptions();
            int code = NativeMethods.cm_wait_options_for_task_type(ref native, Utf8.ToNative(taskType, "taskType"));
            // Refused (CM_ERR_INVALID_ARGUMENT: a name C cannot read): the library's defaults,
            // whatever the struct holds now.
            return code == NativeMethods.CM_OK ? new WaitOptions(native) : new WaitOptions();
        }

        /// <summary>
        /// The official SDKs' schedule for a task as created, exactly as
        /// <c>cm_wait_options_for_task</c> gives it: by its "type", the "class" of a CustomTask or
        /// ComplexImageTask (e.g. "Imperva": 1 s, 1 s, 15 s) and "nocache": true (e.g. a reCAPTCHA
        /// task: 10 s before the first poll). A class without a schedule of its own gets its
        /// type's, an unknown type the library's defaults: the same as Go's <c>WaitOptionsForTask</c>.
        /// </summary>
        /// <param name="taskJson">The task JSON as given to <see cref="CapMonsterClient.CreateTask(string, string, System.Threading.CancellationToken)"/>.</param>
        /// <exception cref="ArgumentException"><paramref name="taskJson"/> holds a NUL character.</exception>
        /// <exception cref="CapMonsterException">The library refused the JSON, as CreateTask would (<see cref="CapMonsterErrorCode.InvalidArgument"/>).</exception>
        public static WaitOptions ForTask(string taskJson)
        {
            NativeWaitOptions native = new NativeWaitOptions();
            int code = NativeMethods.cm_wait_options_for_task(ref native, Utf8.ToNative(taskJson, "taskJson"));
            if (code != NativeMethods.CM_OK)
                throw new CapMonsterException((CapMonsterErrorCode)code, "the library refused the task JSON (cm_wait_options_for_task)");
            return new WaitOptions(native);
        }

        /// <summary>
        /// <see cref="ForTask"/> for a task already encoded; the library's defaults for one it
        /// refuses (a solve's createTask then refuses it, in the library's words).
        /// </summary>
        internal static WaitOptions ForTaskOrDefault(byte[] taskJson)
        {
            NativeWaitOptions native = new NativeWaitOptions();
            int code = NativeMethods.cm_wait_options_for_task(ref native, taskJson);
            return code == NativeMethods.CM_OK ? new WaitOptions(native) : new WaitOptions();
        }

        /// <summary>Sleep before the first request.</summary>
        public TimeSpan FirstDelay { get; set; }

        /// <summary>Sleep between an answer and the next request. The library lengthens it when the service says to slow down.</summary>
        public TimeSpan Interval { get; set; }

        /// <summary>The whole wait, from the call; then <see cref="CapMonsterErrorCode.Timeout"/>. <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: the longest the library takes.</summary>
        public TimeSpan Timeout { get; set; }

        /// <summary>The most requests this wait may send. The library's budget per task applies as well.</summary>
        public int MaxRequests { get; set; }

        /// <summary>A copy of these options.</summary>
        public WaitOptions Clone()
        {
            return (WaitOptions)MemberwiseClone();
        }

        /// <inheritdoc/>
        public override string ToString()
        {
            return string.Format("FirstDelay={0} Interval={1} Timeout={2} MaxRequests={3}",
                FirstDelay, Interval, Timeout, MaxRequests);
        }

        internal NativeWaitOptions ToNative(IntPtr cancel)
        {
            NativeWaitOptions native = new NativeWaitOptions();
            native.FirstDelayMs = ToMilliseconds(FirstDelay);
            native.IntervalMs = ToMilliseconds(Interval);
            native.TimeoutMs = Timeout == System.Threading.Timeout.InfiniteTimeSpan ? uint.MaxValue : ToMilliseconds(Timeout);
            native.MaxRequests = MaxRequests < 0 ? 0u : (uint)MaxRequests;
            native.Cancel = cancel;
            return native;
        }

        private void Load(NativeWaitOptions native)
        {
            FirstDelay = FromMilliseconds(native.FirstDelayMs);
            Interval = FromMilliseconds(native.IntervalMs);
            Timeout = FromMilliseconds(native.TimeoutMs);
            MaxRequests = native.MaxRequests > int.MaxValue ? int.MaxValue : (int)native.MaxRequests;
        }

        private static TimeSpan FromMilliseconds(uint ms)
        {
            return TimeSpan.FromTicks(ms * TimeSpan.TicksPerMillisecond);
        }

        /// <summary>
        /// A span as whole milliseconds for a uint32 field of the C API: rounded up, negative as
        /// 0, beyond the field's range as its maximum. The library then judges the value.
        /// </summary>
        internal static uint ToMilliseconds(TimeSpan value)
        {
            if (value <= TimeSpan.Zero) return 0;
            long ms = value.Ticks / TimeSpan.TicksPerMillisecond;
            if (value.Ticks % TimeSpan.TicksPerMillisecond != 0) ms++;
            return ms > uint.MaxValue ? uint.MaxValue : (uint)ms;
        }
    }
}
