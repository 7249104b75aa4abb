using System;

namespace CapMonster
{
    /// <summary>
    /// How <see cref="CapMonsterClient.WaitResult"/> polls: sleep <see cref="FirstDelay"/>,
    /// then ask every <see cref="Interval"/> (measured from each answer) until the task is
    /// ready, <see cref="Timeout"/> has passed since the call, or <see cref="MaxRequests"/>
    /// requests are spent. A plain mutable object: every factory returns a new instance, so
    /// changing one never affects another.
    /// </summary>
    /// <remarks>
    /// Times travel to the native library as whole milliseconds (rounded up, so a wait is never
    /// shorter than asked). Values that cannot be expressed that way (negative, or over
    /// <see cref="uint.MaxValue"/> ms) are refused by the setters; values the library refuses
    /// (an <see cref="Interval"/> or <see cref="MaxRequests"/> of 0) make the wait throw
    /// <see cref="CapMonsterException"/> with <see cref="CapMonsterErrorCode.InvalidArgument"/>.
    /// </remarks>
    public sealed class WaitOptions
    {
        private uint _firstDelayMs;
        private uint _intervalMs;
        private uint _timeoutMs;
        private uint _maxRequests;

        /// <summary>The library defaults (<c>cm_wait_options_init</c>): 1 s first delay, 2 s interval, 180 s timeout, 120 requests.</summary>
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
        /// The official SDKs' schedule for <paramref name="taskType"/> (<c>cm_wait_options_for_task_type</c>),
        /// e.g. "ImageToTextTask": 350 ms / 200 ms / 10 s. "...Proxyless" names share their base
        /// type's schedule; unknown types get the defaults.
        /// </summary>
        /// <exception cref="ArgumentNullException"><paramref name="taskType"/> is null.</exception>
        public static WaitOptions ForTaskType(string taskType)
        {
            if (taskType == null) throw new ArgumentNullException("taskType");
            byte[] type = Utf8.ToNative(taskType, "taskType");
            NativeWaitOptions native = new NativeWaitOptions();
            int code = NativeMethods.cm_wait_options_for_task_type(ref native, type);
            if (code != NativeMethods.CM_OK)
            {
                throw CapMonsterException.FromCode(code, "cm_wait_options_for_task_type refused the task type");
            }
            return new WaitOptions(native);
        }

        /// <summary>Sleep before the first request.</summary>
        public TimeSpan FirstDelay
        {
            get { return FromMilliseconds(_firstDelayMs); }
            set { _firstDelayMs = ToMilliseconds(value, "value", false); }
        }

        /// <summary>Sleep between an answer and the next request; at least 1 ms. Doubled (up to 60 s) when the service says to slow down.</summary>
        public TimeSpan Interval
        {
            get { return FromMilliseconds(_intervalMs); }
            set { _intervalMs = ToMilliseconds(value, "value", false); }
        }

        /// <summary>The whole wait, from the call; then <see cref="CapMonsterErrorCode.Timeout"/>. <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> means the longest the library supports (about 49.7 days).</summary>
        public TimeSpan Timeout
        {
            get { return _timeoutMs == uint.MaxValue ? System.Threading.Timeout.InfiniteTimeSpan : FromMilliseconds(_timeoutMs); }
            set { _timeoutMs = ToMilliseconds(value, "value", true); }
        }

        /// <summary>The most requests this wait may send; at least 1. The process-wide budget of 120 per task applies as well.</summary>
        public int MaxRequests
        {
            get { return _maxRequests > int.MaxValue ? int.MaxValue : (int)_maxRequests; }
            set
            {
                if (value < 0) throw new ArgumentOutOfRangeException("value", value, "MaxRequests cannot be negative.");
                _maxRequests = (uint)value;
            }
        }

        /// <summary>A copy of these options.</summary>
        public WaitOptions Clone()
        {
            return new WaitOptions(ToNative(IntPtr.Zero));
        }

        /// <inheritdoc/>
        public override string ToString()
        {
            return string.Format("FirstDelay={0}ms Interval={1}ms Timeout={2}ms MaxRequests={3}",
                _firstDelayMs, _intervalMs, _timeoutMs, _maxRequests);
        }

        internal NativeWaitOptions ToNative(IntPtr cancel)
        {
            NativeWaitOptions native = new NativeWaitOptions();
            native.FirstDelayMs = _firstDelayMs;
            native.IntervalMs = _intervalMs;
            native.TimeoutMs = _timeoutMs;
            native.MaxRequests = _maxRequests;
            native.Cancel = cancel;
            return native;
        }

        private void Load(NativeWaitOptions native)
        {
            _firstDelayMs = native.FirstDelayMs;
            _intervalMs = native.IntervalMs;
            _timeoutMs = native.TimeoutMs;
            _maxRequests = native.MaxRequests;
        }

        private static TimeSpan FromMilliseconds(uint ms)
        {
            return TimeSpan.FromTicks(ms * TimeSpan.TicksPerMillisecond);
        }

        /// <summary>A span as whole milliseconds, rounded up.</summary>
        internal static uint ToMilliseconds(TimeSpan value, string paramName, bool allowInfinite)
        {
            if (allowInfinite && value == System.Threading.Timeout.InfiniteTimeSpan) return uint.MaxValue;
            if (value < TimeSpan.Zero)
            {
                throw new ArgumentOutOfRangeException(paramName, value, "The time span cannot be negative.");
            }
            long ms = value.Ticks / TimeSpan.TicksPerMillisecond;
            if (value.Ticks % TimeSpan.TicksPerMillisecond != 0) ms++;
            if (ms > uint.MaxValue)
            {
                throw new ArgumentOutOfRangeException(paramName, value, "The time span is over uint.MaxValue milliseconds (about 49.7 days).");
            }
            return (uint)ms;
        }
    }
}
