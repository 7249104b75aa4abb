using System;
using System.Runtime.InteropServices;
using System.Text;

namespace CapMonster.Tests
{
    /// <summary>
    /// Asks the C API directly what it says about a value, so that tests compare the binding's
    /// exceptions with the library's own words instead of with copies of them.
    /// </summary>
    public static class NativeProbe
    {
        private const string Library = "capmonster";

        [StructLayout(LayoutKind.Sequential)]
        private struct WaitOptionsC
        {
            public uint FirstDelayMs, IntervalMs, TimeoutMs, MaxRequests;
            public IntPtr Cancel;
        }

        [DllImport(Library)] private static extern int cm_client_new(byte[] key, out IntPtr client, out IntPtr result);
        [DllImport(Library)] private static extern int cm_client_set_base_url(IntPtr client, byte[] url, out IntPtr result);
        [DllImport(Library)] private static extern int cm_client_set_request_timeout_ms(IntPtr client, uint ms, out IntPtr result);
        [DllImport(Library)] private static extern int cm_client_set_max_connections(IntPtr client, uint n, out IntPtr result);
        [DllImport(Library)] private static extern void cm_client_free(IntPtr client);
        [DllImport(Library)] private static extern IntPtr cm_api_error_glossary(uint index);
        [DllImport(Library)] private static extern int cm_cancel_new(out IntPtr cancel);
        [DllImport(Library)] private static extern void cm_cancel_trigger(IntPtr cancel);
        [DllImport(Library)] private static extern void cm_cancel_free(IntPtr cancel);
        [DllImport(Library)] private static extern int cm_wait_result(IntPtr client, long taskId, ref WaitOptionsC options, out IntPtr result);
        [DllImport(Library)] private static extern IntPtr cm_result_message(IntPtr result);
        [DllImport(Library)] private static extern void cm_result_free(IntPtr result);
        [DllImport(Library)] internal static extern IntPtr cm_code_name(int code);

        public static string Text(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0) n++;
            var bytes = new byte[n];
            Marshal.Copy(p, bytes, 0, n);
            return Encoding.UTF8.GetString(bytes);
        }

        private static byte[] Z(string s)
        {
            return s == null ? null : Encoding.UTF8.GetBytes(s + "\0");
        }

        private static string Take(IntPtr result)
        {
            string message = Text(cm_result_message(result));
            cm_result_free(result);
            return message;
        }

        /// <summary>cm_client_new's message for <paramref name="key"/> (NUL-terminated bytes, or null).</summary>
        public static string ClientNewMessage(byte[] key)
        {
            IntPtr client, result;
            cm_client_new(key, out client, out result);
            cm_client_free(client);
            return Take(result);
        }

        private static string OnClient(Func<IntPtr, IntPtr> setter)
        {
            IntPtr client, result;
            cm_client_new(Z("probe-key"), out client, out result);
            cm_result_free(result);
            try
            {
                return Take(setter(client));
            }
            finally
            {
                cm_client_free(client);
            }
        }

        public static string BaseUrlMessage(string url)
        {
            return OnClient(c => { IntPtr r; cm_client_set_base_url(c, Z(url), out r); return r; });
        }

        public static string RequestTimeoutMessage(uint ms)
        {
            return OnClient(c => { IntPtr r; cm_client_set_request_timeout_ms(c, ms, out r); return r; });
        }

        public static string MaxConnectionsMessage(uint n)
        {
            return OnClient(c => { IntPtr r; cm_client_set_max_connections(c, n, out r); return r; });
        }

        /// <summary>cm_wait_result's message for these options, with a cancel triggered beforehand so that nothing is sent.</summary>
        public static string WaitMessage(long taskId, uint firstMs, uint intervalMs, uint timeoutMs, uint maxRequests)
        {
            IntPtr cancel;
            cm_cancel_new(out cancel);
            cm_cancel_trigger(cancel);
            try
            {
                return OnClient(c =>
                {
                    var o = new WaitOptionsC { FirstDelayMs = firstMs, IntervalMs = intervalMs, TimeoutMs = timeoutMs, MaxRequests = maxRequests, Cancel = cancel };
                    IntPtr r;
                    cm_wait_result(c, taskId, ref o, out r);
                    return r;
                });
            }
            finally
            {
                cm_cancel_free(cancel);
            }
        }

        /// <summary>The codes of the library's error glossary (cm_api_error_glossary).</summary>
        public static string[] Glossary()
        {
            var codes = new System.Collections.Generic.List<string>();
            for (uint i = 0; ; i++)
            {
                IntPtr code = cm_api_error_glossary(i);
                if (code == IntPtr.Zero) return codes.ToArray();
                codes.Add(Marshal.PtrToStringAnsi(code));
            }
        }
    }
}
