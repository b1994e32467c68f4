using System;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Ember
{
    /// <summary>Session options; a null property keeps ember's default.</summary>
    public sealed class SessionParams
    {
        /// <summary>KV cache size in tokens; 0 (default): the model's training context, at most 4096.</summary>
        public int? NCtx { get; set; }
        /// <summary>Prompt tokens per forward pass; default 512.</summary>
        public int? NBatch { get; set; }
        /// <summary>0 (default): the model's default.</summary>
        public int? NThreads { get; set; }
        /// <summary>Polled while the session evaluates tokens; return true to stop the call (Status.Cancelled).
        /// An exception it throws stops the call too and is rethrown in its place.</summary>
        public Func<bool> Abort { get; set; }

        internal SessionParamsNative ToNative(out GCHandle abortState)
        {
            var p = Interop.InitParams<SessionParamsNative>(NativeMethods.ember_session_params_init_sized);
            abortState = default(GCHandle);
            if (NCtx.HasValue) p.n_ctx = NCtx.Value;
            if (NBatch.HasValue) p.n_batch = NBatch.Value;
            if (NThreads.HasValue) p.n_threads = NThreads.Value;
            if (Abort != null)
            {
                abortState = GCHandle.Alloc(new AbortState { Callback = Abort });
                p.abort = AbortState.Pointer;
                p.abort_user_data = GCHandle.ToIntPtr(abortState);
            }
            return p;
        }

        internal static SessionParamsNative Defaults()
        {
            return Interop.InitParams<SessionParamsNative>(NativeMethods.ember_session_params_init_sized);
        }
    }

    internal sealed class AbortState
    {
        public Func<bool> Callback;
        public volatile ExceptionDispatchInfo Error;

        static readonly AbortFn Delegate = Trampoline;
        internal static readonly IntPtr Pointer = Marshal.GetFunctionPointerForDelegate(Delegate);

        [MonoPInvokeCallback(typeof(AbortFn))]
        static bool Trampoline(IntPtr userData)
        {
            AbortState s = null;
            try
            {
                s = (AbortState)GCHandle.FromIntPtr(userData).Target;
                return s.Callback();
            }
            catch (Exception e)
            {
                if (s != null) s.Error = ExceptionDispatchInfo.Capture(e);
                return true;
            }
        }

        /// <summary>After a call failed: the abort callback's exception, if it threw one (taken once).</summary>
        internal static void RethrowFrom(EmberHandle h)
        {
            if (!h.CallbackState.IsAllocated) return;
            var s = h.CallbackState.Target as AbortState;
            if (s == null) return;
            var e = s.Error;
            if (e == null) return;
            s.Error = null;
            e.Throw();
        }
    }

    /// <summary>
    /// One conversation over a model: KV cache, position, logits. Used by one thread at a time, except
    /// <see cref="Cancel"/> and <see cref="ClearCancel"/> (any thread). Disposing frees it; it keeps the model's
    /// weights alive on its own, so the Model may be disposed first.
    /// </summary>
    public sealed class Session : IDisposable
    {
        internal readonly SessionHandle Handle;

        /// <summary>A session over model (null parameters: defaults).</summary>
        public Session(Model model, SessionParams parameters = null)
        {
            if (model == null) throw new ArgumentNullException("model");
            Library.EnsureCompatible();
            GCHandle abortState = default(GCHandle);
            var p = parameters != null ? parameters.ToNative(out abortState) : SessionParams.Defaults();
            SessionHandle h;
            Status st = NativeMethods.ember_session_create(model.Handle, ref p, out h);
            if (st != Status.Ok)
            {
                var e = Interop.Error(st);
                h.Dispose();
                if (abortState.IsAllocated) abortState.Free();
                throw e;
            }
            h.CallbackState = abortState;
            Handle = h;
        }

        void Check(Status st)
        {
            if (st == Status.Ok) return;
            var e = Interop.Error(st);
            if (st == Status.Cancelled) AbortState.RethrowFrom(Handle);
            throw e;
        }

        /// <summary>Evaluates tokens at the current position (Status.ContextFull when they do not fit: nothing is evaluated).</summary>
        public void Prefill(int[] tokens)
        {
            if (tokens == null) throw new ArgumentNullException("tokens");
            Check(NativeMethods.ember_session_prefill_ex(Handle, tokens, tokens.Length, 0));
        }

        /// <summary>Prefill keeping every token's logits for <see cref="LogitsAt"/>.</summary>
        public void PrefillAll(int[] tokens)
        {
            if (tokens == null) throw new ArgumentNullException("tokens");
            Check(NativeMethods.ember_session_prefill_ex(Handle, tokens, tokens.Length, NativeMethods.PrefillAllLogits));
        }

        /// <summary>Evaluates one token.</summary>
        public void Decode(int token) { Check(NativeMethods.ember_session_decode(Handle, token)); }

        /// <summary>A copy of the last evaluated position's logits (NVocab floats).</summary>
        public float[] Logits()
        {
            IntPtr p;
            int n;
            Check(NativeMethods.ember_session_logits(Handle, out p, out n));
            return CopyLogits(p, n);
        }

        /// <summary>A copy of the logits of the i-th token of the last <see cref="PrefillAll"/>.</summary>
        public float[] LogitsAt(int i)
        {
            IntPtr p;
            int n;
            Check(NativeMethods.ember_session_logits_at(Handle, i, out p, out n));
            return CopyLogits(p, n);
        }

        static float[] CopyLogits(IntPtr p, int n)
        {
            var logits = new float[n];
            if (n > 0) Marshal.Copy(p, logits, 0, n);
            return logits;
        }

        /// <summary>Tokens in the cache.</summary>
        public int Position { get { return NativeMethods.ember_session_position(Handle); } }
        /// <summary>The context size.</summary>
        public int NCtx { get { return NativeMethods.ember_session_n_ctx(Handle); } }

        /// <summary>Forgets the tokens from position on (and the logits).</summary>
        public void Rewind(int position) { Check(NativeMethods.ember_session_rewind(Handle, position)); }
        public void Reset() { Check(NativeMethods.ember_session_reset(Handle)); }

        /// <summary>Any thread: the running call (and every later one until <see cref="ClearCancel"/>) stops with Status.Cancelled.</summary>
        public void Cancel() { Interop.Check(NativeMethods.ember_session_cancel(Handle)); }
        /// <summary>Any thread: lets the session run again after <see cref="Cancel"/>.</summary>
        public void ClearCancel() { Interop.Check(NativeMethods.ember_session_clear_cancel(Handle)); }

        /// <summary>
        /// Samples, evaluates and streams tokens from the current logits (prefill first). onText (optional) gets each
        /// piece of text and the token that completed it; return false to stop (StopReason.Callback; that token is
        /// not evaluated). An exception it throws ends generation and is rethrown here, as thrown.
        /// </summary>
        public GenerateResult Generate(Sampler sampler, GenerateOptions options = null, Func<string, int, bool> onText = null)
        {
            return Generator.Run(Call(sampler), options, onText);
        }

        /// <summary>Generation as an enumerable of text pieces; see <see cref="TextStream"/>.</summary>
        public TextStream Stream(Sampler sampler, GenerateOptions options = null)
        {
            if (sampler == null) throw new ArgumentNullException("sampler");
            return new TextStream(new GenerationSource(Handle, sampler.Handle, options));
        }

        GenerateCall Call(Sampler sampler)
        {
            if (sampler == null) throw new ArgumentNullException("sampler");
            return (ref GenerateParamsNative p, ref GenerateResultNative r) =>
            {
                Status st = NativeMethods.ember_session_generate_ex(Handle, sampler.Handle, ref p, ref r);
                if (st == Status.Cancelled)
                {
                    var e = Interop.Error(st);  // before anything else touches this thread's last error
                    AbortState.RethrowFrom(Handle);
                    throw e;
                }
                return st;
            };
        }

        /// <summary>Saves the state (tokens, KV cache, logits) to path, atomically.</summary>
        public void Save(string path) { Check(NativeMethods.ember_session_save(Handle, Interop.ToUtf8Z(path, "the path"))); }
        /// <summary>Restores a state saved by <see cref="Save"/> (Status.BadFile for a mismatched or damaged file).</summary>
        public void Load(string path) { Check(NativeMethods.ember_session_load(Handle, Interop.ToUtf8Z(path, "the path"))); }

        /// <summary>
        /// Applies LoRA adapters, each with its scale, to every token evaluated from now on:
        /// <c>SetAdapters((lora, 1f), (other, 0.5f))</c>; no arguments remove them. A scale of 0 gives the base
        /// model's logits exactly. Tokens already cached keep what they were computed with: <see cref="Reset"/>
        /// or <see cref="Rewind"/> to recompute them. Each adapter must be loaded for this session's model and
        /// appear once, scales finite in [-1000, 1000]: otherwise Status.InvalidArgument, and the session keeps
        /// its adapters. A disposed adapter is ObjectDisposedException. The session keeps the adapters alive.
        /// </summary>
        public void SetAdapters(params (Adapter Adapter, float Scale)[] adapters)
        {
            if (adapters == null) throw new ArgumentNullException("adapters");
            int n = adapters.Length;
            var raw = new IntPtr[n];
            var scales = new float[n];
            var held = new bool[n];
            try
            {
                for (int i = 0; i < n; i++)
                {
                    var a = adapters[i].Adapter;
                    if (a == null) throw new ArgumentNullException("adapters", "adapter " + i + " is null");
                    // Held until the call returns, so a concurrent Dispose cannot free it under ember.
                    a.Handle.DangerousAddRef(ref held[i]);
                    raw[i] = a.Handle.DangerousGetHandle();
                    scales[i] = adapters[i].Scale;
                }
                Check(NativeMethods.ember_session_set_adapters(Handle, n == 0 ? null : raw, n == 0 ? null : scales, n));
            }
            finally
            {
                for (int i = 0; i < n; i++)
                    if (held[i]) adapters[i].Adapter.Handle.DangerousRelease();
            }
        }

        /// <summary>Frees the session (deferred by ember while a call on it runs). Twice is fine.</summary>
        public void Dispose() { Handle.Dispose(); }
    }
}
