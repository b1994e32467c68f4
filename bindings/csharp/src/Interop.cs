using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Ember
{
    /// <summary>Marks a static method native code calls back into (Mono's AOT looks the attribute up by name).</summary>
    [AttributeUsage(AttributeTargets.Method)]
    internal sealed class MonoPInvokeCallbackAttribute : Attribute
    {
        public MonoPInvokeCallbackAttribute(Type delegateType) { DelegateType = delegateType; }
        public Type DelegateType { get; private set; }
    }

    internal delegate Status TextCall(byte[] buf, UIntPtr cap, out UIntPtr needed);

    internal static class Interop
    {
        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, false);

        /// <summary>s as a NUL-terminated UTF-8 C string (null for null). A NUL character in s is
        /// Status.InvalidArgument, naming `what`: C would read only up to it, silently taking another value than
        /// the caller gave. Every string passed to C as a `const char*` without a length goes through here (or
        /// AllocUtf8Z, which calls it); text C takes with a length (ember_tokenize) uses ToUtf8.</summary>
        internal static byte[] ToUtf8Z(string s, string what)
        {
            if (s == null) return null;
            if (s.IndexOf('\0') >= 0)
                throw new EmberException(Status.InvalidArgument, what + " contains a NUL character (C would cut it there)");
            int n = Utf8.GetByteCount(s);
            var b = new byte[n + 1];
            Utf8.GetBytes(s, 0, s.Length, b, 0);
            return b;
        }

        /// <summary>UTF-8 bytes without a terminator, NUL characters and all: for C parameters with a length.</summary>
        internal static byte[] ToUtf8(string s) { return s == null ? null : Utf8.GetBytes(s); }

        internal static string FromUtf8(byte[] b, int offset, int count) { return Utf8.GetString(b, offset, count); }

        /// <summary>A NUL-terminated UTF-8 string owned by native code (Marshal.PtrToStringUTF8 is not in netstandard2.0).</summary>
        internal static string FromUtf8Z(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0) n++;
            return FromUtf8(p, n);
        }

        internal static string FromUtf8(IntPtr p, int n)
        {
            if (n == 0) return "";
            var b = new byte[n];
            Marshal.Copy(p, b, 0, n);
            return Utf8.GetString(b);
        }

        /// <summary>An unmanaged NUL-terminated UTF-8 copy; free with Marshal.FreeHGlobal. A NUL character in s is
        /// Status.InvalidArgument, as for ToUtf8Z.</summary>
        internal static IntPtr AllocUtf8Z(string s, string what)
        {
            if (s == null) return IntPtr.Zero;
            var b = ToUtf8Z(s, what);
            IntPtr p = Marshal.AllocHGlobal(b.Length);
            Marshal.Copy(b, 0, p, b.Length);
            return p;
        }

        /// <summary>Throws EmberException for a failed status, with this thread's ember_last_error().</summary>
        internal static void Check(Status st)
        {
            if (st != Status.Ok) throw Error(st);
        }

        /// <summary>Must be called right after the failing call, on the same thread.</summary>
        internal static EmberException Error(Status st)
        {
            string msg = FromUtf8Z(NativeMethods.ember_last_error());
            if (string.IsNullOrEmpty(msg)) msg = Library.StatusString(st);
            return new EmberException(st, msg);
        }

        /// <summary>The two-call text pattern: a size query, then a buffer that large (again if it grew meanwhile).</summary>
        internal static string ReadText(TextCall call)
        {
            UIntPtr needed;
            Check(call(null, UIntPtr.Zero, out needed));
            for (int attempt = 0; ; attempt++)
            {
                ulong size = needed.ToUInt64();
                if (size == 0) return "";
                if (size > int.MaxValue) throw new EmberException(Status.OutOfMemory, "ember: text of " + size + " bytes is too large for a .NET string");
                var buf = new byte[size];
                Status st = call(buf, needed, out needed);
                if (st == Status.BufferTooSmall && attempt < 8) continue;
                Check(st);
                return FromUtf8(buf, 0, (int)size - 1);
            }
        }

        internal delegate Status InitFn(IntPtr p);

        /// <summary>The struct_size the library's *_params_init writes (its own sizeof), for layout checks.</summary>
        internal static uint NativeStructSize(InitFn init)
        {
            IntPtr p = Marshal.AllocHGlobal(4096);
            try
            {
                for (int i = 0; i < 4096; i += 8) Marshal.WriteInt64(p, i, 0);
                Check(init(p));
                return (uint)Marshal.ReadInt32(p);
            }
            finally { Marshal.FreeHGlobal(p); }
        }

        internal delegate Status SizedInitFn(IntPtr p, UIntPtr size);

        /// <summary>A params struct filled by its *_params_init_sized with our struct's size: the library writes
        /// exactly that many bytes (its defaults for the fields we share, zero for any it does not know).</summary>
        internal static T InitParams<T>(SizedInitFn init) where T : struct
        {
            int size = Marshal.SizeOf(typeof(T));
            IntPtr p = Marshal.AllocHGlobal(size);
            try
            {
                Check(init(p, (UIntPtr)(uint)size));
                return (T)Marshal.PtrToStructure(p, typeof(T));
            }
            finally { Marshal.FreeHGlobal(p); }
        }
    }
}
