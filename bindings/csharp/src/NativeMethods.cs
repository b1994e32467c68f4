// The P/Invoke declarations of capi/ember.h (ABI 1). Structs match the header field for field (struct_size
// first); C `bool` is one byte. Strings cross as UTF-8 bytes (byte[] in, IntPtr/byte[] out): never through
// the runtime's string marshalling, which is not UTF-8 on every runtime/platform.
using System;
using System.Runtime.InteropServices;

namespace Ember
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct ModelParamsNative
    {
        public uint struct_size;
        public int n_threads;
        public IntPtr backend;            // const char*
        public IntPtr progress;           // ember_progress_fn
        public IntPtr progress_user_data;
        [MarshalAs(UnmanagedType.U1)] public bool use_mmap;
        public IntPtr quantize;           // const char*, NULL: none
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct SessionParamsNative
    {
        public uint struct_size;
        public int n_ctx;
        public int n_batch;
        public int n_threads;
        public IntPtr abort;              // ember_abort_fn
        public IntPtr abort_user_data;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct GenerateParamsNative
    {
        public uint struct_size;
        public int max_tokens;
        public int stop_at_eog;
        public IntPtr stream;             // ember_stream_fn
        public IntPtr stream_user_data;
        public IntPtr stop;               // const char* const*
        public int n_stop;
        public IntPtr bias_tokens;        // const int32_t*
        public IntPtr bias_values;        // const float*
        public int n_bias;
        public IntPtr tokens;             // int32_t*, optional: the sampled ids
        public int tokens_cap;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct GenerateResultNative
    {
        public uint struct_size;
        public int n_generated;
        public int stop_reason;
        public int stop_index;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct ChatParamsNative
    {
        public uint struct_size;
        public IntPtr system;             // const char*
        [MarshalAs(UnmanagedType.U1)] public bool history;
        public int reserve;
        public int strategy;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct SamplerParamsNative
    {
        public uint struct_size;
        public float temperature;
        public int top_k;
        public float top_p;
        public float min_p;
        public float repeat_penalty;
        public int penalty_last_n;
        public float frequency_penalty;
        public float presence_penalty;
        public ulong seed;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct MemoryEstimateNative
    {
        public uint struct_size;
        public ulong weights;
        public ulong kv_cache;
        public ulong scratch;
        public ulong total;
    }

    // Callback types (cdecl, as every C function pointer on the platforms ember supports).
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal delegate bool ProgressFn(float progress, IntPtr userData);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    [return: MarshalAs(UnmanagedType.U1)]
    internal delegate bool AbortFn(IntPtr userData);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate int StreamFn(IntPtr text, UIntPtr len, int token, IntPtr userData);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void LogFn(int level, IntPtr message, IntPtr userData);

    internal static class NativeMethods
    {
        internal const string Lib = "ember"; // libember.so (Mono/.NET on Linux), ember.dll, libember.dylib
        internal const uint AbiVersion = 1;

        internal const uint TokenizeAddSpecial = 1, TokenizeParseSpecial = 2;
        internal const uint DetokenizeRenderSpecial = 1;
        internal const uint PrefillAllLogits = 1;
        internal const int StreamContinue = 0, StreamStop = 1, StreamError = 2;
        internal const ulong SeedRandom = ulong.MaxValue;

        // --- status, errors, version
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr ember_status_string(Status status);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr ember_last_error();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr ember_version();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern uint ember_abi_version();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern uint ember_version_number();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void ember_set_log_callback(IntPtr callback, IntPtr userData);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_backend_count();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr ember_backend_name(int index);

        // --- models
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_params_init(IntPtr p);  // the library's full size (layout checks)
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_params_init_sized(IntPtr p, UIntPtr size);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_load(byte[] path, ref ModelParamsNative p, out ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_load_from_memory(byte[] data, UIntPtr size, ref ModelParamsNative p, out ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void ember_model_free(IntPtr model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern IntPtr ember_model_tokenizer(ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_model_n_vocab(ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_model_n_ctx_train(ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_model_n_embd(ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_model_n_layers(ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern long ember_model_n_params(ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern long ember_model_size(ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_architecture(ModelHandle model, byte[] buf, UIntPtr cap, out UIntPtr needed);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_name(ModelHandle model, byte[] buf, UIntPtr cap, out UIntPtr needed);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_backend(ModelHandle model, byte[] buf, UIntPtr cap, out UIntPtr needed);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_meta(ModelHandle model, byte[] key, byte[] buf, UIntPtr cap, out UIntPtr needed);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_model_meta_count(ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_meta_key(ModelHandle model, int index, byte[] buf, UIntPtr cap, out UIntPtr needed);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_meta_type(ModelHandle model, byte[] key, out int type);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_meta_json(ModelHandle model, byte[] key, byte[] buf, UIntPtr cap, out UIntPtr needed);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_model_chat_template(ModelHandle model, byte[] buf, UIntPtr cap, out UIntPtr needed);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_estimate_memory(byte[] path, int nCtx, int nBatch, ref MemoryEstimateNative out_);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_estimate_memory_quantized(byte[] path, int nCtx, int nBatch, byte[] quantize, ref MemoryEstimateNative out_);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_chat_render(ModelHandle model, byte[] templateSource, byte[] json, byte[] buf, UIntPtr cap, out UIntPtr needed);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, EntryPoint = "ember_chat_render")] internal static extern Status ember_chat_render_nomodel(IntPtr model, byte[] templateSource, byte[] json, byte[] buf, UIntPtr cap, out UIntPtr needed);

        // --- tokenizers (IntPtr: a tokenizer is either owned (TokenizerHandle) or borrowed from a model)
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_tokenizer_load(byte[] path, out TokenizerHandle tokenizer);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void ember_tokenizer_free(IntPtr tokenizer);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_tokenizer_n_vocab(IntPtr tokenizer);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_tokenize(IntPtr tokenizer, byte[] text, UIntPtr len, int[] out_, int cap, uint flags, out int nOut);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_detokenize(IntPtr tokenizer, int[] tokens, int n, uint flags, byte[] buf, UIntPtr cap, out UIntPtr needed);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_token_piece(IntPtr tokenizer, int token, uint flags, byte[] buf, UIntPtr cap, out UIntPtr needed);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_token_bos(IntPtr tokenizer);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_token_eos(IntPtr tokenizer);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_token_eot(IntPtr tokenizer);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] [return: MarshalAs(UnmanagedType.U1)] internal static extern bool ember_token_is_eog(IntPtr tokenizer, int token);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern uint ember_token_attr(IntPtr tokenizer, int token);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_token_special(IntPtr tokenizer, int which);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_tokenizer_add_bos(IntPtr tokenizer);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_tokenizer_add_eos(IntPtr tokenizer);

        // --- sessions
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_params_init(IntPtr p);  // the library's full size (layout checks)
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_params_init_sized(IntPtr p, UIntPtr size);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_create(ModelHandle model, ref SessionParamsNative p, out SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void ember_session_free(IntPtr session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_prefill_ex(SessionHandle session, int[] tokens, int n, uint flags);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_decode(SessionHandle session, int token);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_logits(SessionHandle session, out IntPtr logits, out int nVocab);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_logits_at(SessionHandle session, int i, out IntPtr logits, out int nVocab);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_session_position(SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_session_n_ctx(SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_rewind(SessionHandle session, int position);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_reset(SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_cancel(SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_clear_cancel(SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_generate_params_init(IntPtr p);  // the library's full size (layout checks)
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_generate_params_init_sized(IntPtr p, UIntPtr size);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_generate_ex(SessionHandle session, SamplerHandle sampler, ref GenerateParamsNative p, ref GenerateResultNative result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_generation_start(SessionHandle session, SamplerHandle sampler, ref GenerateParamsNative p, out GenerationHandle generation);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_generation_next(GenerationHandle generation, out IntPtr text, out UIntPtr len, out int token);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_generation_result(GenerationHandle generation, ref GenerateResultNative result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void ember_generation_free(IntPtr generation);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_save(SessionHandle session, byte[] path);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_load(SessionHandle session, byte[] path);

        // --- LoRA adapters
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_adapter_load(ModelHandle model, byte[] path, out AdapterHandle adapter);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void ember_adapter_free(IntPtr adapter);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_adapter_rank(AdapterHandle adapter);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_adapter_n_targets(AdapterHandle adapter);
        // adapters: raw pointers of AdapterHandles the caller holds (DangerousAddRef) for the call's duration
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_session_set_adapters(SessionHandle session, IntPtr[] adapters, float[] scales, int n);

        // --- chats
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_chat_params_init(IntPtr p);  // the library's full size (layout checks)
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_chat_params_init_sized(IntPtr p, UIntPtr size);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_chat_create(ModelHandle model, ref SessionParamsNative sp, ref ChatParamsNative p, out ChatHandle chat);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void ember_chat_free(IntPtr chat);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_chat_say_ex(ChatHandle chat, SamplerHandle sampler, byte[] user, ref GenerateParamsNative p, ref GenerateResultNative result);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_chat_reset(ChatHandle chat);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern int ember_chat_n_messages(ChatHandle chat);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_chat_save(ChatHandle chat, byte[] path);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_chat_load(ChatHandle chat, byte[] path);

        // --- samplers
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_sampler_params_init(IntPtr p);  // the library's full size (layout checks)
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_sampler_params_init_sized(IntPtr p, UIntPtr size);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_sampler_create(ref SamplerParamsNative p, out SamplerHandle sampler);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_sampler_create_greedy(out SamplerHandle sampler);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern void ember_sampler_free(IntPtr sampler);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_sampler_sample(SamplerHandle sampler, float[] logits, int n, out int token);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_sampler_accept(SamplerHandle sampler, int token);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_sampler_reset(SamplerHandle sampler);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_sampler_seed(SamplerHandle sampler, out ulong seed);
        // gbnf / schemaJson: NUL-terminated UTF-8, null removes the grammar (any JSON value for a schema)
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_sampler_set_grammar(SamplerHandle sampler, ModelHandle model, byte[] gbnf);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_sampler_set_json_schema(SamplerHandle sampler, ModelHandle model, byte[] schemaJson);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)] internal static extern Status ember_json_schema_to_grammar(byte[] schemaJson, byte[] buf, UIntPtr cap, out UIntPtr needed);
    }
}
