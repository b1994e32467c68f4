using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace Ember
{
    /// <summary>Log levels of <see cref="Library.SetLogCallback"/>.</summary>
    public enum LogLevel { Error = 0, Warn = 1, Info = 2 }

    /// <summary>Process-wide facts of the loaded libember and the ABI check.</summary>
    public static class Library
    {
        /// <summary>The ABI this binding was written for (EMBER_ABI_VERSION of its ember.h).</summary>
        public const uint BindingAbiVersion = NativeMethods.AbiVersion;

        static readonly object Gate = new object();
        static volatile bool _abiChecked;

        /// <summary>
        /// Compares ember_abi_version() with the ABI this binding was written for, once; every entry point that
        /// creates an object calls it. Throws EmberException (Status.Unsupported) naming both on a mismatch, and
        /// DllNotFoundException (with a hint) when libember cannot be found.
        /// </summary>
        public static void EnsureCompatible()
        {
            if (_abiChecked) return;
            lock (Gate)
            {
                if (_abiChecked) return;
                uint loaded;
                try { loaded = NativeMethods.ember_abi_version(); }
                catch (DllNotFoundException e)
                {
                    throw new DllNotFoundException("ember: libember could not be loaded (" + e.Message + "); put the directory holding " +
                                                   "libember.so on LD_LIBRARY_PATH (or PATH / DYLD_LIBRARY_PATH)", e);
                }
                CheckAbi(loaded);
                _abiChecked = true;
            }
        }

        /// <summary>The check itself, for a given library ABI (public so tests can exercise the refusal).</summary>
        public static void CheckAbi(uint loadedAbi)
        {
            if (loadedAbi != BindingAbiVersion)
                throw new EmberException(Status.Unsupported, string.Format(
                    "ember: the loaded libember has ABI version {0}, but this C# binding was written for ABI version {1}; " +
                    "use a libember.so.{1} (or a binding built for ABI {0})", loadedAbi, BindingAbiVersion));
        }

        /// <summary>ember_abi_version() of the loaded library.</summary>
        public static uint AbiVersion { get { return NativeMethods.ember_abi_version(); } }

        /// <summary>"MAJOR.MINOR.PATCH" of the loaded library.</summary>
        public static string Version { get { EnsureCompatible(); return Interop.FromUtf8Z(NativeMethods.ember_version()); } }

        /// <summary>MAJOR * 1000000 + MINOR * 1000 + PATCH of the loaded library.</summary>
        public static uint VersionNumber { get { EnsureCompatible(); return NativeMethods.ember_version_number(); } }

        /// <summary>The backends the library was built with, "cpu" first.</summary>
        public static IReadOnlyList<string> Backends
        {
            get
            {
                EnsureCompatible();
                int n = NativeMethods.ember_backend_count();
                var list = new List<string>(Math.Max(n, 0));
                for (int i = 0; i < n; i++)
                {
                    string name = Interop.FromUtf8Z(NativeMethods.ember_backend_name(i));
                    if (name != null) list.Add(name);
                }
                return list;
            }
        }

        /// <summary>ember_status_string.</summary>
        public static string StatusString(Status status)
        {
            try { return Interop.FromUtf8Z(NativeMethods.ember_status_string(status)); }
            catch (DllNotFoundException) { return status.ToString(); }
        }

        // --- diagnostics hook: one static trampoline, kept alive by this field for the process's lifetime.
        static readonly LogFn LogTrampolineDelegate = LogTrampoline;
        static volatile Action<LogLevel, string> _log;

        /// <summary>
        /// Receives ember's warnings and notes (from any thread, one call at a time); null removes the hook. The
        /// callback must not call into ember; an exception it throws is swallowed (it cannot cross into C).
        /// </summary>
        public static void SetLogCallback(Action<LogLevel, string> callback)
        {
            EnsureCompatible();
            lock (Gate)
            {
                _log = callback;
                if (callback == null) NativeMethods.ember_set_log_callback(IntPtr.Zero, IntPtr.Zero);
                else NativeMethods.ember_set_log_callback(Marshal.GetFunctionPointerForDelegate(LogTrampolineDelegate), IntPtr.Zero);
            }
        }

        [MonoPInvokeCallback(typeof(LogFn))]
        static void LogTrampoline(int level, IntPtr message, IntPtr userData)
        {
            try
            {
                var cb = _log;
                if (cb != null) cb((LogLevel)level, Interop.FromUtf8Z(message));
            }
            catch (Exception) { /* must not unwind into native code */ }
        }
    }
}
