using System;
using System.Runtime.InteropServices;
using System.Text;

namespace CapMonster
{
    /// <summary>
    /// UTF-8 marshalling by hand: netstandard2.0 has no Marshal.PtrToStringUTF8, and
    /// UnmanagedType.LPUTF8Str is not honoured by every runtime the binding targets (older
    /// Mono, .NET Framework before 4.7), so both directions are done here, the same way on
    /// all of them.
    /// </summary>
    internal static class Utf8
    {
        // Throws on lone surrogates instead of silently sending U+FFFD.
        private static readonly Encoding Strict = new UTF8Encoding(false, true);

        /// <summary>
        /// <paramref name="value"/> as NUL-terminated UTF-8, or null (a NULL pointer) for null.
        /// A string holding U+0000 would be cut short by the C side without anyone noticing,
        /// so it is refused: <see cref="ArgumentException"/> naming <paramref name="paramName"/>.
        /// </summary>
        internal static byte[] ToNative(string value, string paramName)
        {
            if (value == null) return null;
            if (value.IndexOf('\0') >= 0)
            {
                throw new ArgumentException("The string contains a NUL character, which C strings cannot hold.", paramName);
            }
            byte[] bytes;
            try
            {
                int length = Strict.GetByteCount(value);
                bytes = new byte[length + 1];
                Strict.GetBytes(value, 0, value.Length, bytes, 0);
            }
            catch (EncoderFallbackException e)
            {
                throw new ArgumentException("The string is not valid UTF-16 (a lone surrogate).", paramName, e);
            }
            return bytes; // bytes[length] is already 0
        }

        /// <summary>
        /// Copies the NUL-terminated UTF-8 string at <paramref name="text"/> (null for NULL).
        /// The memory stays the library's: it is neither freed nor kept.
        /// </summary>
        internal static string FromNative(IntPtr text)
        {
            if (text == IntPtr.Zero) return null;
            int length = 0;
            while (Marshal.ReadByte(text, length) != 0) length++;
            if (length == 0) return string.Empty;
            byte[] bytes = new byte[length];
            Marshal.Copy(text, bytes, 0, length);
            return Encoding.UTF8.GetString(bytes);
        }
    }
}
