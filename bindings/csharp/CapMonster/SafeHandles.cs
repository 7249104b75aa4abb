using System;
using System.Runtime.InteropServices;

namespace CapMonster
{
    /// <summary>A <c>cm_client *</c>; released with <c>cm_client_free</c>.</summary>
    /// <remarks>
    /// The P/Invoke marshaller adds a reference to a SafeHandle argument for the length of
    /// the call, so disposing the client while a call on it runs on another thread frees the
    /// native client only when that call has returned: the header's "free a client only when
    /// no call on it is running" holds without any locking here.
    /// </remarks>
    internal sealed class ClientHandle : SafeHandle
    {
        // The marshaller makes instances for out parameters through this constructor.
        public ClientHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cm_client_free(handle);
            return true;
        }
    }

    /// <summary>A <c>cm_cancel *</c>; released with <c>cm_cancel_free</c>.</summary>
    internal sealed class CancelHandle : SafeHandle
    {
        public CancelHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cm_cancel_free(handle);
            return true;
        }
    }

    /// <summary>A <c>cm_waiter *</c>; released with <c>cm_waiter_free</c>.</summary>
    /// <remarks>
    /// The header allows cm_waiter_free only when no other call uses the waiter: the marshaller's
    /// reference around each call (the dispatcher blocked in cm_waiter_next, an add) delays the
    /// free until that call has returned.
    /// </remarks>
    internal sealed class WaiterHandle : SafeHandle
    {
        public WaiterHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cm_waiter_free(handle);
            return true;
        }
    }

    /// <summary>A <c>cm_result *</c>; released with <c>cm_result_free</c>.</summary>
    /// <remarks>
    /// Every service call hands one back on every return, success or failure; it arrives in
    /// this handle straight from the out parameter, so it is freed by Dispose (or, failing
    /// that, by the finalizer) whatever exception is thrown afterwards.
    /// </remarks>
    internal sealed class ResultHandle : SafeHandle
    {
        private long _memoryPressure;

        public ResultHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        /// <summary>
        /// Tells the GC about native memory this handle keeps alive, for handles left to the
        /// finalizer (see <see cref="TaskResult"/>). Call at most once.
        /// </summary>
        internal void AddMemoryPressure(long bytes)
        {
            if (bytes > 0 && _memoryPressure == 0)
            {
                GC.AddMemoryPressure(bytes);
                _memoryPressure = bytes;
            }
        }

        /// <summary>
        /// Reads a string the library lends out of this result (<paramref name="accessor"/>
        /// returns the borrowed pointer). The reference held around the call and the copy
        /// keeps the result alive until the bytes are copied, even if the owner became
        /// unreachable meanwhile.
        /// </summary>
        internal string ReadString(Func<ResultHandle, IntPtr> accessor)
        {
            bool added = false;
            try
            {
                DangerousAddRef(ref added);
                return Utf8.FromNative(accessor(this));
            }
            finally
            {
                if (added) DangerousRelease();
            }
        }

        protected override bool ReleaseHandle()
        {
            NativeMethods.cm_result_free(handle);
            if (_memoryPressure > 0)
            {
                GC.RemoveMemoryPressure(_memoryPressure);
                _memoryPressure = 0;
            }
            return true;
        }
    }
}
