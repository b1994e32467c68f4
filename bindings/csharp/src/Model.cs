using System;
using System.Collections.Generic;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Ember
{
    /// <summary>Options of <see cref="Model.Load"/>; a null property keeps ember's default.</summary>
    public sealed class ModelParams
    {
        /// <summary>Default threads for sessions; 0: the hardware threads. Negative is an invalid argument.</summary>
        public int? NThreads { get; set; }
        /// <summary>"cpu", "cuda", or null / "auto" for the best usable one.</summary>
        public string Backend { get; set; }
        /// <summary>Map the file (default true); false reads it into memory once.</summary>
        public bool? UseMmap { get; set; }
        /// <summary>Quantize F32/F16/BF16 weights in memory at load: "q8_0", "q4_0", "q4_k", "q6_k", ... (null: as the file is).</summary>
        public string Quantize { get; set; }
        /// <summary>Loading progress in [0, 1], on the loading thread; return false to cancel (Status.Cancelled).
        /// An exception it throws cancels the load and is rethrown by Load.</summary>
        public Func<float, bool> Progress { get; set; }
    }

    /// <summary>GGUF metadata value types (EMBER_META_*).</summary>
    public enum MetaType { U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12 }

    /// <summary>What a model costs in memory on the CPU backend (ember_estimate_memory).</summary>
    public struct MemoryEstimate
    {
        public ulong Weights, KvCache, Scratch, Total;
    }

    /// <summary>A loaded model: immutable, shareable between threads. Dispose frees it; sessions made from it stay valid.</summary>
    public sealed class Model : IDisposable
    {
        internal readonly ModelHandle Handle;
        readonly Tokenizer _tokenizer;

        Model(ModelHandle handle)
        {
            Handle = handle;
            _tokenizer = new Tokenizer(handle, NativeMethods.ember_model_tokenizer(handle));
        }

        /// <summary>Loads a GGUF file.</summary>
        public static Model Load(string path, ModelParams parameters = null)
        {
            if (path == null) throw new ArgumentNullException("path");
            byte[] path8 = Interop.ToUtf8Z(path, "the path");
            return LoadCore(parameters, (ref ModelParamsNative p, out ModelHandle h) =>
                NativeMethods.ember_model_load(path8, ref p, out h));
        }

        /// <summary>Loads a GGUF file held in memory (the bytes are copied).</summary>
        public static Model LoadFromMemory(byte[] data, ModelParams parameters = null)
        {
            if (data == null) throw new ArgumentNullException("data");
            return LoadCore(parameters, (ref ModelParamsNative p, out ModelHandle h) =>
                NativeMethods.ember_model_load_from_memory(data, (UIntPtr)(ulong)data.LongLength, ref p, out h));
        }

        delegate Status LoadCall(ref ModelParamsNative p, out ModelHandle h);

        static Model LoadCore(ModelParams parameters, LoadCall call)
        {
            Library.EnsureCompatible();
            var p = Interop.InitParams<ModelParamsNative>(NativeMethods.ember_model_params_init_sized);
            IntPtr backend = IntPtr.Zero, quantize = IntPtr.Zero;
            ProgressState state = null;
            GCHandle stateHandle = default(GCHandle);
            try
            {
                if (parameters != null)
                {
                    if (parameters.NThreads.HasValue) p.n_threads = parameters.NThreads.Value;
                    if (parameters.UseMmap.HasValue) p.use_mmap = parameters.UseMmap.Value;
                    if (parameters.Backend != null) p.backend = backend = Interop.AllocUtf8Z(parameters.Backend, "the backend");
                    if (parameters.Quantize != null) p.quantize = quantize = Interop.AllocUtf8Z(parameters.Quantize, "the quantize type");
                    if (parameters.Progress != null)
                    {
                        state = new ProgressState { Callback = parameters.Progress };
                        stateHandle = GCHandle.Alloc(state);
                        p.progress = Marshal.GetFunctionPointerForDelegate(ProgressDelegate);
                        p.progress_user_data = GCHandle.ToIntPtr(stateHandle);
                    }
                }
                ModelHandle h;
                Status st = call(ref p, out h);
                EmberException error = st != Status.Ok ? Interop.Error(st) : null;  // read on this thread, now
                if (state != null && state.Error != null) { h.Dispose(); state.Error.Throw(); }
                if (error != null) { h.Dispose(); throw error; }
                return new Model(h);
            }
            finally
            {
                if (backend != IntPtr.Zero) Marshal.FreeHGlobal(backend);
                if (quantize != IntPtr.Zero) Marshal.FreeHGlobal(quantize);
                if (stateHandle.IsAllocated) stateHandle.Free();
            }
        }

        sealed class ProgressState
        {
            public Func<float, bool> Callback;
            public ExceptionDispatchInfo Error;
        }

        static readonly ProgressFn ProgressDelegate = ProgressTrampoline;

        [MonoPInvokeCallback(typeof(ProgressFn))]
        static bool ProgressTrampoline(float progress, IntPtr userData)
        {
            ProgressState state = null;
            try
            {
                state = (ProgressState)GCHandle.FromIntPtr(userData).Target;
                return state.Callback(progress);
            }
            catch (Exception e)
            {
                if (state != null) state.Error = ExceptionDispatchInfo.Capture(e);
                return false;
            }
        }

        /// <summary>Estimates memory for a GGUF file and a session of nCtx tokens, from its header alone.</summary>
        /// <remarks>The form without quantize, kept for assemblies built against it; EstimateMemory(path, nCtx)
        /// and EstimateMemory(path, nCtx, quantize: "q8_0") call the other.</remarks>
        public static MemoryEstimate EstimateMemory(string path, int nCtx, int nBatch)
        {
            return EstimateMemory(path, nCtx, nBatch, null);
        }

        /// <summary>Estimates memory for a GGUF file and a session of nCtx tokens, from its header alone (nBatch 0:
        /// the default). quantize: the weights as <see cref="ModelParams.Quantize"/> would hold them at load ("q8_0",
        /// "q4_k", ...; null or "": as the file is); an unknown type is Status.InvalidArgument, as the load is.</summary>
        public static MemoryEstimate EstimateMemory(string path, int nCtx, int nBatch = 0, string quantize = null)
        {
            Library.EnsureCompatible();
            var e = new MemoryEstimateNative { struct_size = (uint)Marshal.SizeOf(typeof(MemoryEstimateNative)) };
            byte[] path8 = Interop.ToUtf8Z(path, "the path");
            if (quantize == null)
                Interop.Check(NativeMethods.ember_estimate_memory(path8, nCtx, nBatch, ref e));
            else
                Interop.Check(NativeMethods.ember_estimate_memory_quantized(path8, nCtx, nBatch,
                                                                            Interop.ToUtf8Z(quantize, "the quantize type"), ref e));
            return new MemoryEstimate { Weights = e.weights, KvCache = e.kv_cache, Scratch = e.scratch, Total = e.total };
        }

        /// <summary>
        /// Renders a conversation (a JSON object with "messages", optionally "tools", "add_generation_prompt"...)
        /// through a chat template: templateSource, or this model's own when null.
        /// </summary>
        public string RenderChat(string json, string templateSource = null)
        {
            byte[] tpl = Interop.ToUtf8Z(templateSource, "the template"), js = Interop.ToUtf8Z(json, "the JSON");
            return Interop.ReadText((byte[] b, UIntPtr c, out UIntPtr n) => NativeMethods.ember_chat_render(Handle, tpl, js, b, c, out n));
        }

        /// <summary>Renders a conversation through a given template, no model needed.</summary>
        public static string RenderChatTemplate(string templateSource, string json)
        {
            if (templateSource == null) throw new ArgumentNullException("templateSource");
            Library.EnsureCompatible();
            byte[] tpl = Interop.ToUtf8Z(templateSource, "the template"), js = Interop.ToUtf8Z(json, "the JSON");
            return Interop.ReadText((byte[] b, UIntPtr c, out UIntPtr n) => NativeMethods.ember_chat_render_nomodel(IntPtr.Zero, tpl, js, b, c, out n));
        }

        /// <summary>The model's tokenizer (valid while the model is not disposed).</summary>
        public Tokenizer Tokenizer { get { return _tokenizer; } }

        public int NVocab { get { return NativeMethods.ember_model_n_vocab(Handle); } }
        public int NCtxTrain { get { return NativeMethods.ember_model_n_ctx_train(Handle); } }
        public int NEmbd { get { return NativeMethods.ember_model_n_embd(Handle); } }
        public int NLayers { get { return NativeMethods.ember_model_n_layers(Handle); } }
        /// <summary>Total parameters (elements over all tensors).</summary>
        public long NParams { get { return NativeMethods.ember_model_n_params(Handle); } }
        /// <summary>The tensors' bytes.</summary>
        public long Size { get { return NativeMethods.ember_model_size(Handle); } }

        /// <summary>general.architecture ("llama", "qwen3"...).</summary>
        public string Architecture { get { return Interop.ReadText((byte[] b, UIntPtr c, out UIntPtr n) => NativeMethods.ember_model_architecture(Handle, b, c, out n)); } }
        /// <summary>general.name, "" when absent.</summary>
        public string Name { get { return Interop.ReadText((byte[] b, UIntPtr c, out UIntPtr n) => NativeMethods.ember_model_name(Handle, b, c, out n)); } }
        /// <summary>The backend the weights live on ("cpu"...).</summary>
        public string Backend { get { return Interop.ReadText((byte[] b, UIntPtr c, out UIntPtr n) => NativeMethods.ember_model_backend(Handle, b, c, out n)); } }
        /// <summary>tokenizer.chat_template, "" when the file has none.</summary>
        public string ChatTemplate { get { return Interop.ReadText((byte[] b, UIntPtr c, out UIntPtr n) => NativeMethods.ember_model_chat_template(Handle, b, c, out n)); } }

        /// <summary>A metadata value as text; EmberException with Status.NotFound for an absent key.</summary>
        public string Meta(string key)
        {
            byte[] k = KeyBytes(key);
            return Interop.ReadText((byte[] b, UIntPtr c, out UIntPtr n) => NativeMethods.ember_model_meta(Handle, k, b, c, out n));
        }

        /// <summary>A metadata value as JSON, arrays in full; Status.NotFound for an absent key.</summary>
        public string MetaJson(string key)
        {
            byte[] k = KeyBytes(key);
            return Interop.ReadText((byte[] b, UIntPtr c, out UIntPtr n) => NativeMethods.ember_model_meta_json(Handle, k, b, c, out n));
        }

        /// <summary>A metadata value's GGUF type; Status.NotFound for an absent key.</summary>
        public MetaType MetaType(string key)
        {
            int t;
            Interop.Check(NativeMethods.ember_model_meta_type(Handle, KeyBytes(key), out t));
            return (MetaType)t;
        }

        /// <summary>The metadata keys, in file order.</summary>
        public IReadOnlyList<string> MetaKeys
        {
            get
            {
                int count = NativeMethods.ember_model_meta_count(Handle);
                var keys = new List<string>(Math.Max(count, 0));
                for (int i = 0; i < count; i++)
                {
                    int index = i;
                    keys.Add(Interop.ReadText((byte[] b, UIntPtr c, out UIntPtr n) => NativeMethods.ember_model_meta_key(Handle, index, b, c, out n)));
                }
                return keys;
            }
        }

        static byte[] KeyBytes(string key)
        {
            if (key == null) throw new ArgumentNullException("key");
            return Interop.ToUtf8Z(key, "the key");
        }

        /// <summary>A new session over this model.</summary>
        public Session CreateSession(SessionParams parameters = null) { return new Session(this, parameters); }

        /// <summary>Loads a LoRA adapter for this model; see <see cref="Adapter.Load"/>.</summary>
        public Adapter LoadAdapter(string path) { return Adapter.Load(this, path); }

        /// <summary>A new chat (with a session of its own) over this model.</summary>
        public Chat CreateChat(ChatParams chatParams = null, SessionParams sessionParams = null) { return new Chat(this, chatParams, sessionParams); }

        /// <summary>Frees the model (sessions made from it stay valid; its Tokenizer does not).</summary>
        public void Dispose() { Handle.Dispose(); }
    }
}
