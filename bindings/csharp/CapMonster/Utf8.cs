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
        private const int MaxNativeLength = 16 << 20;

        /// <summary>
        /// <paramref name="value"/> as NUL-terminated UTF-8, or null (a NULL pointer) for null:
        /// the library judges NULL itself. A string holding U+0000 would be cut short by the C
        /// side without anyone noticing, so it is refused: <see cref="ArgumentException"/> naming
        /// <paramref name="paramName"/>. A lone surrogate (a string that is not valid UTF-16) is
        /// encoded as its three bytes (generalized UTF-8), which are not UTF-8: the library then
        /// refuses the value with its own code and message, as it does for Go's invalid strings,
        /// instead of the binding replacing the character or inventing a rule of its own.
        /// </summary>
        internal static byte[] ToNative(string value, string paramName)
        {
            if (value == null) return null;
            if (value.IndexOf('\0') >= 0)
            {
                throw new ArgumentException("The string contains a NUL character, which C strings cannot hold.", paramName);
            }
            int length = 0;
            for (int i = 0; i < value.Length; i++)
            {
                char c = value[i];
                if (c < 0x80) length += 1;
                else if (c < 0x800) length += 2;
                else if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                {
                    length += 4;
                    i++;
                }
                else length += 3; // the BMP, and lone surrogates
            }
            var bytes = new byte[length + 1]; // bytes[length] stays 0
            int n = 0;
            for (int i = 0; i < value.Length; i++)
            {
                int c = value[i];
                if (c < 0x80)
                {
                    bytes[n++] = (byte)c;
                    continue;
                }
                if (c < 0x800)
                {
                    bytes[n++] = (byte)(0xC0 | (c >> 6));
                    bytes[n++] = (byte)(0x80 | (c & 0x3F));
                    continue;
                }
                if (char.IsHighSurrogate((char)c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                {
                    int cp = char.ConvertToUtf32((char)c, value[++i]);
                    bytes[n++] = (byte)(0xF0 | (cp >> 18));
                    bytes[n++] = (byte)(0x80 | ((cp >> 12) & 0x3F));
                    bytes[n++] = (byte)(0x80 | ((cp >> 6) & 0x3F));
                    bytes[n++] = (byte)(0x80 | (cp & 0x3F));
                    continue;
                }
                bytes[n++] = (byte)(0xE0 | (c >> 12));
                bytes[n++] = (byte)(0x80 | ((c >> 6) & 0x3F));
                bytes[n++] = (byte)(0x80 | (c & 0x3F));
            }
            return bytes;
        }

        /// <summary>
        /// Copies the NUL-terminated UTF-8 string at <paramref name="text"/> (null for NULL).
        /// The memory stays the library's: it is neither freed nor kept.
        /// </summary>
        internal static string FromNative(IntPtr text)
        {
            if (text == IntPtr.Zero) return null;
            int length = 0;
            // The library caps what it hands out (answers at 1 MiB); the bound keeps a broken
            // pointer from sending this loop through the whole address space.
            while (Marshal.ReadByte(text, length) != 0)
            {
                if (++length > MaxNativeLength) throw new InvalidOperationException("A string from the native library has no end within 16 MiB.");
            }
            if (length == 0) return string.Empty;
            byte[] bytes = new byte[length];
            Marshal.Copy(text, bytes, 0, length);
            return Encoding.UTF8.GetString(bytes);
        }
    }
}
