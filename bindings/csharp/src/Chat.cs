using System;
using System.Runtime.InteropServices;

namespace Ember
{
    /// <summary>What a chat does when its context fills (EMBER_CHAT_*).</summary>
    public enum ChatStrategy { Window = 0, Budget = 1, Summary = 2 }

    /// <summary>Chat options; a null property keeps ember's default.</summary>
    public sealed class ChatParams
    {
        /// <summary>System message; null or "": none.</summary>
        public string System { get; set; }
        /// <summary>Default true; false answers each turn alone.</summary>
        public bool? History { get; set; }
        /// <summary>Context positions kept for the reply; default 256.</summary>
        public int? Reserve { get; set; }
        public ChatStrategy? Strategy { get; set; }
    }

    /// <summary>A conversation with the model's own template over a session of its own. One thread at a time.</summary>
    public sealed class Chat : IDisposable
    {
        internal readonly ChatHandle Handle;

        public Chat(Model model, ChatParams parameters = null, SessionParams sessionParams = null)
        {
            if (model == null) throw new ArgumentNullException("model");
            Library.EnsureCompatible();
            // First, so that a refused system message (a NUL in it) leaves nothing allocated behind.
            IntPtr system = parameters != null ? Interop.AllocUtf8Z(parameters.System, "the system message") : IntPtr.Zero;
            GCHandle abortState = default(GCHandle);
            try
            {
                var sp = sessionParams != null ? sessionParams.ToNative(out abortState) : SessionParams.Defaults();
                var cp = Interop.InitParams<ChatParamsNative>(NativeMethods.ember_chat_params_init_sized);
                if (parameters != null)
                {
                    cp.system = system;
                    if (parameters.History.HasValue) cp.history = parameters.History.Value;
                    if (parameters.Reserve.HasValue) cp.reserve = parameters.Reserve.Value;
                    if (parameters.Strategy.HasValue) cp.strategy = (int)parameters.Strategy.Value;
                }
                ChatHandle h;
                Status st = NativeMethods.ember_chat_create(model.Handle, ref sp, ref cp, out h);
                if (st != Status.Ok)
                {
                    var e = Interop.Error(st);
                    h.Dispose();
                    throw e;
                }
                h.CallbackState = abortState;
                Handle = h;
            }
            catch
            {
                if (abortState.IsAllocated) abortState.Free();  // no handle took it over
                throw;
            }
            finally
            {
                if (system != IntPtr.Zero) Marshal.FreeHGlobal(system);
            }
        }

        /// <summary>
        /// One turn: adds user, streams the reply through onText (optional; return false to stop) and adds it to the
        /// conversation. The reply's text is in the result's Text. On failure the conversation is as it was.
        /// </summary>
        public GenerateResult Say(string user, Sampler sampler, GenerateOptions options = null, Func<string, int, bool> onText = null)
        {
            return Generator.Run(Call(user, sampler), options, onText);
        }

        /// <summary>One turn as an enumerable of text pieces; see <see cref="TextStream"/>.</summary>
        public TextStream Stream(string user, Sampler sampler, GenerateOptions options = null)
        {
            return new TextStream(new WorkerSource(Call(user, sampler), options));
        }

        GenerateCall Call(string user, Sampler sampler)
        {
            if (user == null) throw new ArgumentNullException("user");
            if (sampler == null) throw new ArgumentNullException("sampler");
            byte[] u = Interop.ToUtf8Z(user, "the message");
            return (ref GenerateParamsNative p, ref GenerateResultNative r) =>
            {
                Status st = NativeMethods.ember_chat_say_ex(Handle, sampler.Handle, u, ref p, ref r);
                if (st == Status.Cancelled)
                {
                    var e = Interop.Error(st);
                    AbortState.RethrowFrom(Handle);
                    throw e;
                }
                return st;
            };
        }

        /// <summary>Messages in the conversation (user and assistant turns).</summary>
        public int NMessages { get { return NativeMethods.ember_chat_n_messages(Handle); } }

        public void Reset() { Interop.Check(NativeMethods.ember_chat_reset(Handle)); }
        public void Save(string path) { Interop.Check(NativeMethods.ember_chat_save(Handle, Interop.ToUtf8Z(path, "the path"))); }
        public void Load(string path) { Interop.Check(NativeMethods.ember_chat_load(Handle, Interop.ToUtf8Z(path, "the path"))); }

        public void Dispose() { Handle.Dispose(); }
    }
}
