using System;
using System.Collections;
using System.Collections.Generic;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace Ember
{
    /// <summary>Why generation ended (EMBER_STOP_*).</summary>
    public enum StopReason
    {
        /// <summary>MaxTokens reached.</summary>
        Length = 0,
        /// <summary>An end-of-generation token was sampled (not evaluated).</summary>
        Eog = 1,
        /// <summary>The callback (or the consumer of a stream) stopped it.</summary>
        Callback = 2,
        /// <summary>No room left in the context.</summary>
        ContextFull = 3,
        /// <summary>The text reached a stop string (<see cref="GenerateResult.StopIndex"/> says which).</summary>
        StopString = 4,
    }

    /// <summary>Options of Generate / Stream / Say; a null property keeps ember's default.</summary>
    public sealed class GenerateOptions
    {
        /// <summary>Default 256; &lt; 0: until the context is full.</summary>
        public int? MaxTokens { get; set; }
        /// <summary>Default true; false generates end-of-generation tokens like any other.</summary>
        public bool? StopAtEog { get; set; }
        /// <summary>Stop strings (non-empty, at most 64): generation ends where the text first contains one, which is not streamed.</summary>
        public IList<string> Stop { get; set; }
        /// <summary>Logit bias: added to a token's logit before sampling (float.NegativeInfinity forbids it).</summary>
        public IDictionary<int, float> Bias { get; set; }
    }

    /// <summary>How a generation ended.</summary>
    public sealed class GenerateResult
    {
        /// <summary>Tokens sampled, including the one that ended generation.</summary>
        public int NGenerated { get; internal set; }
        public StopReason Stop { get; internal set; }
        /// <summary>With StopReason.StopString, the index into GenerateOptions.Stop; else -1.</summary>
        public int StopIndex { get; internal set; }
        /// <summary>All the text streamed.</summary>
        public string Text { get; internal set; }

        public override string ToString() { return string.Format("GenerateResult(NGenerated={0}, Stop={1}, StopIndex={2})", NGenerated, Stop, StopIndex); }
    }

    internal delegate Status GenerateCall(ref GenerateParamsNative p, ref GenerateResultNative r);

    /// <summary>GenerateOptions as an ember_generate_params, owning the unmanaged copies its pointers reach
    /// (ember copies them when a call or a generation starts, so Dispose may follow right after).</summary>
    internal sealed class NativeGenerateParams : IDisposable
    {
        public GenerateParamsNative Params;
        IntPtr[] _stops;
        IntPtr _stopArray, _biasTokens, _biasValues;

        public NativeGenerateParams(GenerateOptions options)
        {
            Params = Interop.InitParams<GenerateParamsNative>(NativeMethods.ember_generate_params_init_sized);
            if (options == null) return;
            try
            {
                if (options.MaxTokens.HasValue) Params.max_tokens = options.MaxTokens.Value;
                if (options.StopAtEog.HasValue) Params.stop_at_eog = options.StopAtEog.Value ? 1 : 0;
                if (options.Stop != null && options.Stop.Count > 0)
                {
                    _stops = new IntPtr[options.Stop.Count];
                    for (int i = 0; i < _stops.Length; i++)
                    {
                        if (options.Stop[i] == null) throw new ArgumentException("a stop string is null", "options");
                        _stops[i] = Interop.AllocUtf8Z(options.Stop[i], "a stop string");
                    }
                    _stopArray = Marshal.AllocHGlobal(IntPtr.Size * _stops.Length);
                    Marshal.Copy(_stops, 0, _stopArray, _stops.Length);
                    Params.stop = _stopArray;
                    Params.n_stop = _stops.Length;
                }
                if (options.Bias != null && options.Bias.Count > 0)
                {
                    var ids = new int[options.Bias.Count];
                    var values = new float[ids.Length];
                    int i = 0;
                    foreach (var kv in options.Bias) { ids[i] = kv.Key; values[i] = kv.Value; i++; }
                    _biasTokens = Marshal.AllocHGlobal(sizeof(int) * ids.Length);
                    Marshal.Copy(ids, 0, _biasTokens, ids.Length);
                    _biasValues = Marshal.AllocHGlobal(sizeof(float) * values.Length);
                    Marshal.Copy(values, 0, _biasValues, values.Length);
                    Params.bias_tokens = _biasTokens;
                    Params.bias_values = _biasValues;
                    Params.n_bias = ids.Length;
                }
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            if (_stops != null) foreach (var s in _stops) if (s != IntPtr.Zero) Marshal.FreeHGlobal(s);
            _stops = null;
            if (_stopArray != IntPtr.Zero) Marshal.FreeHGlobal(_stopArray);
            if (_biasTokens != IntPtr.Zero) Marshal.FreeHGlobal(_biasTokens);
            if (_biasValues != IntPtr.Zero) Marshal.FreeHGlobal(_biasValues);
            _stopArray = _biasTokens = _biasValues = IntPtr.Zero;
            Params.stop = Params.bias_tokens = Params.bias_values = IntPtr.Zero;
            Params.n_stop = Params.n_bias = 0;
        }

        internal static GenerateResultNative NewResult()
        {
            return new GenerateResultNative { struct_size = (uint)Marshal.SizeOf(typeof(GenerateResultNative)), stop_index = -1 };
        }

        internal static GenerateResult ToResult(GenerateResultNative r, string text)
        {
            return new GenerateResult { NGenerated = r.n_generated, Stop = (StopReason)r.stop_reason, StopIndex = r.stop_index, Text = text };
        }
    }

    /// <summary>ember_*_generate_ex around a managed callback: options marshalled, the exception of a callback
    /// kept on this side of the boundary and rethrown once the native call has returned.</summary>
    internal static class Generator
    {
        sealed class State
        {
            public Func<string, int, bool> OnText;
            public StringBuilder Text = new StringBuilder();
            public ExceptionDispatchInfo Error;
        }

        // One static delegate for the process: it can never be collected while native code holds its pointer.
        static readonly StreamFn StreamDelegate = StreamTrampoline;
        static readonly IntPtr StreamPointer = Marshal.GetFunctionPointerForDelegate(StreamDelegate);

        [MonoPInvokeCallback(typeof(StreamFn))]
        static int StreamTrampoline(IntPtr text, UIntPtr len, int token, IntPtr userData)
        {
            State s = null;
            try
            {
                s = (State)GCHandle.FromIntPtr(userData).Target;
                string piece = Interop.FromUtf8(text, checked((int)len.ToUInt64()));
                s.Text.Append(piece);
                if (s.OnText != null && !s.OnText(piece, token)) return NativeMethods.StreamStop;
                return NativeMethods.StreamContinue;
            }
            catch (Exception e)
            {
                // Never unwind into C: keep it, end generation with EMBER_ERR_CALLBACK, rethrow after the call.
                if (s != null) s.Error = ExceptionDispatchInfo.Capture(e);
                return NativeMethods.StreamError;
            }
        }

        internal static GenerateResult Run(GenerateCall call, GenerateOptions options, Func<string, int, bool> onText)
        {
            var r = NativeGenerateParams.NewResult();
            var state = new State { OnText = onText };
            using (var np = new NativeGenerateParams(options))
            {
                var stateHandle = GCHandle.Alloc(state);
                try
                {
                    var p = np.Params;
                    p.stream = StreamPointer;
                    p.stream_user_data = GCHandle.ToIntPtr(stateHandle);

                    Status st = call(ref p, ref r);
                    EmberException error = st != Status.Ok ? Interop.Error(st) : null;  // this thread, right now
                    GC.KeepAlive(StreamDelegate);
                    if (state.Error != null) state.Error.Throw();  // the callback's own exception, as thrown
                    if (error != null) throw error;
                    return NativeGenerateParams.ToResult(r, state.Text.ToString());
                }
                finally { stateHandle.Free(); }
            }
        }
    }

    /// <summary>
    /// Generated text as an enumerable: each piece is handed over as ember produces it, and generation goes on
    /// only when the consumer asks for the next one. Leaving the loop early (break, or Dispose) stops generation
    /// cleanly: the token whose piece was the last taken is not evaluated, and <see cref="Result"/> says
    /// StopReason.Callback. A session's stream runs on the consumer's thread, one step per MoveNext (an
    /// ember_generation); a chat's runs on a worker thread (one per stream, for its lifetime). Either way the
    /// session (or chat) must not be used otherwise until the enumeration ends; <see cref="Session.Cancel"/>
    /// still works from any thread. Errors (Status.Cancelled...) are thrown from MoveNext. Enumerate once.
    /// </summary>
    public sealed class TextStream : IEnumerable<string>, IDisposable
    {
        readonly StreamSource _source;
        int _claimed;

        internal TextStream(StreamSource source)
        {
            _source = source;
            if (!source.NeedsFinalizer) GC.SuppressFinalize(this);
        }

        ~TextStream() { _source.Abandon(); }  // abandoned mid-way: let a worker finish, never block it forever

        /// <summary>How generation ended; null until it has.</summary>
        public GenerateResult Result { get { return _source.Result; } }

        public IEnumerator<string> GetEnumerator()
        {
            if (Interlocked.Exchange(ref _claimed, 1) != 0) throw new InvalidOperationException("a TextStream can be enumerated once");
            return new Enumerator(this);
        }

        IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }

        /// <summary>Stops generation (if running) and frees what it holds.</summary>
        public void Dispose()
        {
            _source.Stop();
            GC.SuppressFinalize(this);
        }

        sealed class Enumerator : IEnumerator<string>
        {
            readonly TextStream _owner;  // keeps the TextStream (finalizable for a worker) alive while enumerating
            string _current;
            public Enumerator(TextStream owner) { _owner = owner; }
            public string Current { get { return _current; } }
            object IEnumerator.Current { get { return _current; } }
            public bool MoveNext() { return _owner._source.MoveNext(out _current); }
            public void Reset() { throw new NotSupportedException(); }
            public void Dispose() { _owner.Dispose(); }
        }
    }

    /// <summary>What a TextStream pulls its pieces from.</summary>
    internal abstract class StreamSource
    {
        /// <summary>Whether an abandoned TextStream must tell this source (a worker to release).</summary>
        internal virtual bool NeedsFinalizer { get { return false; } }
        internal abstract GenerateResult Result { get; }
        /// <summary>The next piece, or false once generation has ended; throws its failure.</summary>
        internal abstract bool MoveNext(out string piece);
        /// <summary>Ends generation (StopReason.Callback if it was running) and frees what it holds. Twice is fine.</summary>
        internal abstract void Stop();
        /// <summary>From the TextStream's finalizer.</summary>
        internal virtual void Abandon() { }
    }

    /// <summary>
    /// A session's stream: an ember_generation stepped by MoveNext on the consumer's thread, no callback and no
    /// thread. The GenerationHandle frees the generation on Stop, at the end, or (abandoned) in its finalizer.
    /// </summary>
    internal sealed class GenerationSource : StreamSource
    {
        readonly object _lock = new object();  // MoveNext against a Stop from another thread
        readonly SessionHandle _session;
        readonly SamplerHandle _sampler;
        readonly GenerateOptions _options;
        readonly StringBuilder _text = new StringBuilder();
        GenerationHandle _gen;
        bool _started, _ended;
        volatile GenerateResult _result;

        internal GenerationSource(SessionHandle session, SamplerHandle sampler, GenerateOptions options)
        {
            _session = session;
            _sampler = sampler;
            _options = options;
        }

        internal override GenerateResult Result { get { return _result; } }

        internal override bool MoveNext(out string piece)
        {
            piece = null;
            lock (_lock)
            {
                if (_ended) return false;
                if (!_started)
                {
                    _started = true;
                    try { Start(); }
                    catch { _ended = true; throw; }
                }
                IntPtr text;
                UIntPtr len;
                int token;
                Status st = NativeMethods.ember_generation_next(_gen, out text, out len, out token);
                if (st != Status.Ok)
                {
                    var e = Interop.Error(st);  // this thread, right now
                    try
                    {
                        if (st == Status.Cancelled) AbortState.RethrowFrom(_session);  // an abort callback's own exception
                        throw e;
                    }
                    finally { Finish(null); }
                }
                if (text == IntPtr.Zero)
                {
                    Finish(ReadResult(false));
                    return false;
                }
                piece = Interop.FromUtf8(text, checked((int)len.ToUInt64()));
                _text.Append(piece);
                return true;
            }
        }

        void Start()
        {
            bool sessionRef = false, samplerRef = false;
            try
            {
                // Held by the generation until it is freed: a Session/Sampler disposed meanwhile is released after.
                _session.DangerousAddRef(ref sessionRef);
                _sampler.DangerousAddRef(ref samplerRef);
                GenerationHandle h;
                Status st;
                using (var np = new NativeGenerateParams(_options))
                    st = NativeMethods.ember_generation_start(_session, _sampler, ref np.Params, out h);
                if (st != Status.Ok)
                {
                    var e = Interop.Error(st);
                    h.Dispose();
                    if (st == Status.Cancelled) AbortState.RethrowFrom(_session);
                    throw e;
                }
                h.Hold(_session, _sampler);
                sessionRef = samplerRef = false;
                _gen = h;
            }
            finally
            {
                if (sessionRef) _session.DangerousRelease();
                if (samplerRef) _sampler.DangerousRelease();
            }
        }

        GenerateResult ReadResult(bool stopped)
        {
            var r = NativeGenerateParams.NewResult();
            Interop.Check(NativeMethods.ember_generation_result(_gen, ref r));
            if (stopped)
            {
                // The consumer stopped it: as a stream callback returning EMBER_STREAM_STOP would.
                r.stop_reason = (int)StopReason.Callback;
                r.stop_index = -1;
            }
            return NativeGenerateParams.ToResult(r, _text.ToString());
        }

        void Finish(GenerateResult result)
        {
            _ended = true;
            _result = result;
            if (_gen != null) _gen.Dispose();
        }

        internal override void Stop()
        {
            lock (_lock)
            {
                if (_ended) return;
                _ended = true;
                if (_gen == null) return;  // never started: no result
                try { _result = ReadResult(true); }
                finally { _gen.Dispose(); }
            }
        }
    }

    /// <summary>
    /// A chat's stream (ember has no chat generation to step): ember_chat_say_ex runs on a worker thread whose
    /// stream callback hands each piece over and waits until the consumer asks for the next one. The worker
    /// never references the TextStream, so an abandoned stream is finalized and releases it.
    /// </summary>
    internal sealed class WorkerSource : StreamSource
    {
        readonly object _lock = new object();
        readonly GenerateCall _call;
        readonly GenerateOptions _options;
        Thread _worker;
        bool _started, _hasPiece, _done, _stop;
        string _piece;
        ExceptionDispatchInfo _error;
        volatile GenerateResult _result;

        internal WorkerSource(GenerateCall call, GenerateOptions options) { _call = call; _options = options; }

        internal override bool NeedsFinalizer { get { return true; } }
        internal override GenerateResult Result { get { return _result; } }

        internal override bool MoveNext(out string piece)
        {
            lock (_lock)
            {
                if (!_started)
                {
                    _started = true;
                    if (_stop) _done = true;
                    else
                    {
                        _worker = new Thread(Work) { IsBackground = true, Name = "ember stream" };
                        _worker.Start();
                    }
                }
                else if (_hasPiece)
                {
                    _hasPiece = false;  // the consumer wants more: the callback holding the last piece continues
                    Monitor.PulseAll(_lock);
                }
                while (!_hasPiece && !_done) Monitor.Wait(_lock);
                if (_hasPiece) { piece = _piece; return true; }
                piece = null;
                if (_error != null) { var e = _error; _error = null; e.Throw(); }
                return false;
            }
        }

        void Work()
        {
            GenerateResult result = null;
            ExceptionDispatchInfo error = null;
            try { result = Generator.Run(_call, _options, Hand); }
            catch (Exception e) { error = ExceptionDispatchInfo.Capture(e); }
            lock (_lock)
            {
                _result = result;
                _error = error;
                _done = true;
                Monitor.PulseAll(_lock);
            }
        }

        // The stream callback, on the worker: hand the piece over, wait until it is taken and more is asked for.
        bool Hand(string text, int token)
        {
            lock (_lock)
            {
                if (_stop) return false;
                _piece = text;
                _hasPiece = true;
                Monitor.PulseAll(_lock);
                while (_hasPiece && !_stop) Monitor.Wait(_lock);
                return !_stop;
            }
        }

        internal override void Abandon()
        {
            lock (_lock) { _stop = true; Monitor.PulseAll(_lock); }
        }

        internal override void Stop()
        {
            Abandon();
            Thread w;
            lock (_lock) { w = _worker; }
            if (w != null && w != Thread.CurrentThread) w.Join();
        }
    }
}
