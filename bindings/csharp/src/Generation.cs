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
            var p = Interop.InitParams<GenerateParamsNative>(NativeMethods.ember_generate_params_init);
            var r = new GenerateResultNative { struct_size = (uint)Marshal.SizeOf(typeof(GenerateResultNative)), stop_index = -1 };
            var state = new State { OnText = onText };
            var stateHandle = GCHandle.Alloc(state);
            IntPtr[] stops = null;
            IntPtr stopArray = IntPtr.Zero;
            GCHandle biasTokens = default(GCHandle), biasValues = default(GCHandle);
            try
            {
                if (options != null)
                {
                    if (options.MaxTokens.HasValue) p.max_tokens = options.MaxTokens.Value;
                    if (options.StopAtEog.HasValue) p.stop_at_eog = options.StopAtEog.Value ? 1 : 0;
                    if (options.Stop != null && options.Stop.Count > 0)
                    {
                        stops = new IntPtr[options.Stop.Count];
                        for (int i = 0; i < stops.Length; i++)
                        {
                            if (options.Stop[i] == null) throw new ArgumentException("a stop string is null", "options");
                            stops[i] = Interop.AllocUtf8Z(options.Stop[i]);
                        }
                        stopArray = Marshal.AllocHGlobal(IntPtr.Size * stops.Length);
                        Marshal.Copy(stops, 0, stopArray, stops.Length);
                        p.stop = stopArray;
                        p.n_stop = stops.Length;
                    }
                    if (options.Bias != null && options.Bias.Count > 0)
                    {
                        var ids = new int[options.Bias.Count];
                        var values = new float[ids.Length];
                        int i = 0;
                        foreach (var kv in options.Bias) { ids[i] = kv.Key; values[i] = kv.Value; i++; }
                        biasTokens = GCHandle.Alloc(ids, GCHandleType.Pinned);
                        biasValues = GCHandle.Alloc(values, GCHandleType.Pinned);
                        p.bias_tokens = biasTokens.AddrOfPinnedObject();
                        p.bias_values = biasValues.AddrOfPinnedObject();
                        p.n_bias = ids.Length;
                    }
                }
                p.stream = StreamPointer;
                p.stream_user_data = GCHandle.ToIntPtr(stateHandle);

                Status st = call(ref p, ref r);
                EmberException error = st != Status.Ok ? Interop.Error(st) : null;  // this thread, right now
                GC.KeepAlive(StreamDelegate);
                if (state.Error != null) state.Error.Throw();  // the callback's own exception, as thrown
                if (error != null) throw error;
                return new GenerateResult
                {
                    NGenerated = r.n_generated,
                    Stop = (StopReason)r.stop_reason,
                    StopIndex = r.stop_index,
                    Text = state.Text.ToString(),
                };
            }
            finally
            {
                stateHandle.Free();
                if (stops != null) foreach (var s in stops) if (s != IntPtr.Zero) Marshal.FreeHGlobal(s);
                if (stopArray != IntPtr.Zero) Marshal.FreeHGlobal(stopArray);
                if (biasTokens.IsAllocated) biasTokens.Free();
                if (biasValues.IsAllocated) biasValues.Free();
            }
        }
    }

    /// <summary>
    /// Generated text as an enumerable: each piece is handed over as ember streams it, and generation goes on only
    /// when the consumer asks for the next one. Leaving the loop early (break, or Dispose) stops generation
    /// cleanly: the token whose piece was the last taken is not evaluated, and <see cref="Result"/> says
    /// StopReason.Callback. Generation runs on a worker thread (one per stream, for its lifetime), so the session
    /// must not be used otherwise until the enumeration ends; <see cref="Session.Cancel"/> still works from any
    /// thread. Errors (Status.Cancelled...) are thrown from MoveNext. Enumerate once.
    /// </summary>
    public sealed class TextStream : IEnumerable<string>, IDisposable
    {
        readonly Core _core;

        internal TextStream(GenerateCall call, GenerateOptions options) { _core = new Core(call, options); }

        ~TextStream() { _core.RequestStop(); }  // abandoned mid-way: let the worker finish, never block it forever

        /// <summary>How generation ended; null until it has.</summary>
        public GenerateResult Result { get { return _core.Result; } }

        public IEnumerator<string> GetEnumerator()
        {
            if (!_core.TryClaim()) throw new InvalidOperationException("a TextStream can be enumerated once");
            return new Enumerator(this);
        }

        IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }

        /// <summary>Stops generation (if running) and waits for the worker to finish.</summary>
        public void Dispose()
        {
            _core.StopAndJoin();
            GC.SuppressFinalize(this);
        }

        sealed class Enumerator : IEnumerator<string>
        {
            readonly TextStream _owner;  // keeps the finalizable TextStream alive while enumerating
            string _current;
            public Enumerator(TextStream owner) { _owner = owner; }
            public string Current { get { return _current; } }
            object IEnumerator.Current { get { return _current; } }
            public bool MoveNext() { return _owner._core.MoveNext(out _current); }
            public void Reset() { throw new NotSupportedException(); }
            public void Dispose() { _owner.Dispose(); }
        }

        // What the worker thread references: never the TextStream itself, so an abandoned stream is finalized.
        sealed class Core
        {
            readonly object _lock = new object();
            readonly GenerateCall _call;
            readonly GenerateOptions _options;
            Thread _worker;
            bool _claimed, _started, _hasPiece, _done, _stop;
            string _piece;
            ExceptionDispatchInfo _error;
            volatile GenerateResult _result;

            public Core(GenerateCall call, GenerateOptions options) { _call = call; _options = options; }

            public GenerateResult Result { get { return _result; } }

            public bool TryClaim()
            {
                lock (_lock) { if (_claimed) return false; _claimed = true; return true; }
            }

            public bool MoveNext(out string piece)
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

            public void RequestStop()
            {
                lock (_lock) { _stop = true; Monitor.PulseAll(_lock); }
            }

            public void StopAndJoin()
            {
                RequestStop();
                Thread w;
                lock (_lock) { w = _worker; }
                if (w != null && w != Thread.CurrentThread) w.Join();
            }
        }
    }
}
