/* ember — the stable C ABI (C99). Everything a binding needs, nothing it must not see.
 *
 * Conventions (they hold for every function below unless its comment says otherwise):
 *
 *  - Status codes. Functions return ember_status. On failure, ember_last_error() holds a message for this
 *    thread. No function aborts, and no C++ exception crosses this boundary.
 *  - Last error. Every function that returns ember_status first clears this thread's last error and sets
 *    it on failure, so it describes the latest such call on this thread. Functions that return anything else
 *    (getters, ember_last_error, the *_free functions...) never touch it, so reading a value between a
 *    failing call and ember_last_error loses nothing. (A Go binding must still read the error in the same
 *    cgo call: goroutines move between OS threads between calls.)
 *  - Handles are opaque. Each one a function returns through an out-pointer is owned by the caller and has
 *    a matching *_free (NULL is fine there); borrowed pointers say so and must not be freed. On failure an
 *    out-handle is set to NULL.
 *  - Pointers are validated: a NULL handle, a NULL required out-pointer or a NULL input buffer gives
 *    EMBER_ERR_INVALID_ARGUMENT, never a crash.
 *  - Params structs start with uint32_t struct_size. Fill them with *_params_init (which sets struct_size
 *    to the size this header was compiled with), then change fields. *_params_init is a macro passing
 *    sizeof(*params) to *_params_init_sized, which writes exactly that many bytes: the defaults of the fields
 *    caller and library share, zero for fields only the caller knows. So a program built against an older
 *    header never has a newer library write past its struct. A binding that declares the structs itself
 *    calls *_params_init_sized with its own struct's size (the plain exported *_params_init symbols write
 *    the library's full size, for callers of the same version). Passing NULL means defaults. A library
 *    newer than the caller's header reads only the fields the caller's struct_size covers and defaults the
 *    rest. A library older than the caller's header accepts the larger struct when every byte it does not
 *    know is zero (fields appended from ABI 1 on have zero as their default), and otherwise fails with
 *    EMBER_ERR_UNSUPPORTED naming the field's offset: a program that sets a new field on an old library
 *    hears so instead of being silently ignored. A struct_size smaller than the struct's first version is
 *    EMBER_ERR_INVALID_ARGUMENT. New fields are only ever appended.
 *  - Caller buffers use a two-call pattern. For text: `needed` receives the bytes required INCLUDING the
 *    terminating NUL (the text's length is needed - 1; it may contain NUL bytes). For tokens: `n_out`
 *    receives the number of tokens. Passing buf = NULL and cap = 0 is a size query and returns EMBER_OK.
 *    A non-NULL buffer that is too small gives EMBER_ERR_BUFFER_TOO_SMALL with `needed`/`n_out` set to the
 *    required size and the buffer left untouched; call again with a buffer that large.
 *  - Flags: unknown bits are EMBER_ERR_INVALID_ARGUMENT, so new flags can be added safely.
 *  - Threads: a model and a tokenizer may be used from any number of threads at once; a session or a sampler
 *    by one thread at a time (ember_session_cancel and ember_session_clear_cancel may be called from any
 *    thread). A second call on a session while one runs is refused with EMBER_ERR_INVALID_ARGUMENT. All
 *    sessions of a model share one pool of worker threads, so many sessions cost no more threads than one.
 *  - Callbacks (progress, abort, token) run inside an ember call. From a callback you may read the session
 *    (position, n_ctx, logits), use tokenizers, call ember_session_cancel, and free the session or sampler
 *    the call is using: that free is deferred until the running call returns, and a freed session's call
 *    stops with EMBER_ERR_CANCELLED. Any other call on the session running the callback (prefill, decode,
 *    generate, rewind, reset) returns EMBER_ERR_INVALID_ARGUMENT ("the session is busy").
 *  - fork(): a child process may go on using models and sessions made before fork(); its first call starts
 *    fresh worker threads (the parent's do not exist in the child), leaving the parent's small pool state
 *    unfreed in the child.
 *  - Booleans: new structs and callbacks use int32_t (0/1) rather than bool, which marshals uniformly in
 *    every language; the bool fields of the first structs are one byte (C99 _Bool).
 *  - Numbers are bounded: thread counts above 4 x the hardware threads are clamped to that; a context whose
 *    KV cache would not fit in the memory the machine has available is EMBER_ERR_OUT_OF_MEMORY at session
 *    creation; non-finite sampler parameters are EMBER_ERR_INVALID_ARGUMENT.
 */
#ifndef EMBER_H
#define EMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* EMBER_API marks exported functions. Define EMBER_SHARED when using (or building) ember as a shared
 * library on Windows; the build defines EMBER_BUILD. With GCC/Clang the functions are always exported. */
#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(EMBER_SHARED) && defined(EMBER_BUILD)
#    define EMBER_API __declspec(dllexport)
#  elif defined(EMBER_SHARED)
#    define EMBER_API __declspec(dllimport)
#  else
#    define EMBER_API
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define EMBER_API __attribute__((visibility("default")))
#else
#  define EMBER_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when an existing symbol or struct layout changes incompatibly (appending fields does not). It is
 * the shared library's SONAME version (libember.so.1). */
#define EMBER_ABI_VERSION 1u

/* The version of this header; ember_version_number() gives the loaded library's. */
#define EMBER_VERSION_MAJOR 0
#define EMBER_VERSION_MINOR 1
#define EMBER_VERSION_PATCH 0
#define EMBER_VERSION_NUMBER (EMBER_VERSION_MAJOR * 1000000 + EMBER_VERSION_MINOR * 1000 + EMBER_VERSION_PATCH)

/* ---------------------------------------------------------------------------------------------------------
 * Status and errors
 * ------------------------------------------------------------------------------------------------------- */

/* The numbers are part of the ABI and equal ember::Status in the C++ API. */
typedef enum ember_status {
    EMBER_OK = 0,
    EMBER_ERR_INVALID_ARGUMENT = 1, /* a NULL pointer, a value out of range, a buffer too small */
    EMBER_ERR_BAD_FILE = 2,         /* malformed file, missing or misshapen tensor */
    EMBER_ERR_UNSUPPORTED = 3,      /* architecture, tensor type or backend not supported */
    EMBER_ERR_OUT_OF_MEMORY = 4,
    EMBER_ERR_CONTEXT_FULL = 5,     /* the tokens do not fit in the session's context */
    EMBER_ERR_CANCELLED = 6,        /* a progress/abort callback or ember_session_cancel stopped the call */
    EMBER_ERR_BACKEND = 7,          /* the device failed */
    EMBER_ERR_INTERNAL = 8,         /* a bug in ember */
    EMBER_ERR_IO = 9,               /* the file could not be opened or read */
    EMBER_ERR_BUFFER_TOO_SMALL = 10, /* a caller's buffer is too small; `needed`/`n_out` hold the size */
    EMBER_ERR_NOT_FOUND = 11,       /* a metadata key (or the like) that is not there */
    EMBER_ERR_CALLBACK = 12         /* a caller's callback returned EMBER_STREAM_ERROR */
} ember_status;

/* A static, human-readable name for a status ("ok", "invalid argument", ...); "unknown status" otherwise. */
EMBER_API const char* ember_status_string(ember_status status);

/* This thread's last error message, "" when the latest call succeeded. Owned by ember; valid until the next
 * ember call on this thread. Never NULL. */
EMBER_API const char* ember_last_error(void);

/* The library version, "MAJOR.MINOR.PATCH". Static; never NULL. */
EMBER_API const char* ember_version(void);

/* EMBER_ABI_VERSION of the library actually loaded (compare with the header's to detect a mismatch). */
EMBER_API uint32_t ember_abi_version(void);

/* The loaded library's version as MAJOR * 1000000 + MINOR * 1000 + PATCH (compare with EMBER_VERSION_NUMBER). */
EMBER_API uint32_t ember_version_number(void);

/* Diagnostics: warnings and notes the library would otherwise keep to itself (a thread count clamped, a
 * metadata key ignored, a backend falling back). Nothing is printed by default. The callback may be called
 * from any thread, one call at a time; it must not call back into ember. NULL removes it. */
#define EMBER_LOG_ERROR 0
#define EMBER_LOG_WARN 1
#define EMBER_LOG_INFO 2
typedef void (*ember_log_fn)(int32_t level, const char* message, void* user_data);
EMBER_API void ember_set_log_callback(ember_log_fn callback, void* user_data);

/* The backends this library was built with: ember_backend_count() names, "cpu" first. A static string, or
 * NULL for an index out of range. Whether a device is usable is known only when loading ("auto" picks). */
EMBER_API int32_t ember_backend_count(void);
EMBER_API const char* ember_backend_name(int32_t index);

/* ---------------------------------------------------------------------------------------------------------
 * Handles and callbacks
 * ------------------------------------------------------------------------------------------------------- */

typedef struct ember_model ember_model;         /* immutable after load; share it between threads */
typedef struct ember_tokenizer ember_tokenizer; /* immutable; thread-safe */
typedef struct ember_session ember_session;     /* one conversation: KV cache, position, logits */
typedef struct ember_sampler ember_sampler;     /* chooses tokens from logits; keeps penalty history + RNG */
/* ember_adapter (a LoRA adapter) is declared with its functions below. */

/* Weight loading progress in [0, 1]. Return false to cancel: the load fails with EMBER_ERR_CANCELLED. */
typedef bool (*ember_progress_fn)(float progress, void* user_data);
/* Polled while a session evaluates tokens. Return true to stop: the call fails with EMBER_ERR_CANCELLED. */
typedef bool (*ember_abort_fn)(void* user_data);
/* Receives generated text as it completes (UTF-8, never a split character; NUL-terminated, len bytes before
 * the NUL) and the token that completed it. Return false to stop generating. */
typedef bool (*ember_token_callback)(const char* text, size_t len, int32_t token, void* user_data);

/* ember_token_callback's successor for ember_session_generate_ex and ember_chat_say_ex: the same text, and
 * a return value that can also report an error (a binding's exception) so the call ends with
 * EMBER_ERR_CALLBACK instead of generating on. */
#define EMBER_STREAM_CONTINUE 0
#define EMBER_STREAM_STOP 1  /* end generation normally (stop reason EMBER_STOP_CALLBACK) */
#define EMBER_STREAM_ERROR 2 /* end it with EMBER_ERR_CALLBACK; any other value counts as this too */
typedef int32_t (*ember_stream_fn)(const char* text, size_t len, int32_t token, void* user_data);

/* ---------------------------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------------------------- */

typedef struct ember_model_params {
    uint32_t struct_size;        /* sizeof(ember_model_params), set by ember_model_params_init */
    int32_t n_threads;           /* default threads for sessions; 0: the hardware threads; at most 4x those */
    const char* backend;         /* "cpu", "cuda", or NULL / "auto" for the best usable one; copied */
    ember_progress_fn progress;  /* optional, called on the loading thread */
    void* progress_user_data;
    /* Appended after the first version (callers with the shorter struct get the default, true). */
    bool use_mmap;               /* map the file, zero copy (default); false reads it into memory once.
                                  * A mapped file that shrinks while the model is loaded (truncated or rewritten
                                  * in place) raises SIGBUS when its lost pages are read, killing the process, as
                                  * with any mmap-based loader. If the file may change under you, use false. */
    /* Appended in ABI 1 after use_mmap (older callers get the default, NULL). */
    const char* quantize;        /* NULL or "": weights as the file has them. Else an ember-quantize type
                                  * ("q8_0", "q4_0", "q4_k_m" or its alias "q4_k", "q6_k", ...; any case):
                                  * F32/F16/BF16 weights quantized in memory at load, each tensor to the type
                                  * ember-quantize would write (llama-quantize's rules), so the model runs as
                                  * that file would. An unknown name or an already quantized input tensor is
                                  * EMBER_ERR_INVALID_ARGUMENT; no memory for the result, OUT_OF_MEMORY. Copied;
                                  * at most 64 bytes. */
} ember_model_params;

/* Fills *params with defaults and sets struct_size. */
EMBER_API ember_status ember_model_params_init(ember_model_params* params);
EMBER_API ember_status ember_model_params_init_sized(ember_model_params* params, size_t size);
#define ember_model_params_init(params) ember_model_params_init_sized((params), sizeof *(params))

/* Loads a GGUF model from a regular file, or a Hugging Face model folder (config.json, *.safetensors,
 * tokenizer.json) from a directory; a FIFO or device, or a directory without config.json, is EMBER_ERR_IO,
 * without blocking.
 * params may be NULL (defaults). On success *out is a new model the caller owns: free it
 * with ember_model_free. Fails with EMBER_ERR_IO, BAD_FILE, UNSUPPORTED, OUT_OF_MEMORY or CANCELLED; *out is
 * NULL then. */
EMBER_API ember_status ember_model_load(const char* path, const ember_model_params* params, ember_model** out);

/* Loads a GGUF file held in memory (size bytes at data); the bytes are copied, so the caller may free them
 * when this returns. params->use_mmap does not apply. Otherwise as ember_model_load. */
EMBER_API ember_status ember_model_load_from_memory(const void* data, size_t size, const ember_model_params* params,
                                                    ember_model** out);

/* Frees a model. NULL is fine. Sessions created from it stay valid (they keep the weights alive), but the
 * tokenizer borrowed with ember_model_tokenizer does not. */
EMBER_API void ember_model_free(ember_model* model);

/* The model's tokenizer, borrowed: owned by the model, valid until ember_model_free, never to be freed
 * (ember_tokenizer_free ignores it). NULL when model is NULL. */
EMBER_API const ember_tokenizer* ember_model_tokenizer(const ember_model* model);

/* Hyperparameters; -1 when model is NULL. */
EMBER_API int32_t ember_model_n_vocab(const ember_model* model);
EMBER_API int32_t ember_model_n_ctx_train(const ember_model* model);
EMBER_API int32_t ember_model_n_embd(const ember_model* model);
EMBER_API int32_t ember_model_n_layers(const ember_model* model);

/* Total parameters (elements over all tensors) and the tensors' bytes; -1 when model is NULL. */
EMBER_API int64_t ember_model_n_params(const ember_model* model);
EMBER_API int64_t ember_model_size(const ember_model* model);

/* general.architecture ("llama", "qwen3", "gemma3"...), general.name ("" when absent), and the backend the
 * weights live on ("cpu"...), two-call pattern. */
EMBER_API ember_status ember_model_architecture(const ember_model* model, char* buf, size_t cap, size_t* needed);
EMBER_API ember_status ember_model_name(const ember_model* model, char* buf, size_t cap, size_t* needed);
EMBER_API ember_status ember_model_backend(const ember_model* model, char* buf, size_t cap, size_t* needed);

/* A metadata value as text (strings as stored, numbers in decimal, arrays summarised as "[string x 512]"),
 * two-call pattern. A key the file does not have gives EMBER_ERR_NOT_FOUND with *needed = 0. */
EMBER_API ember_status ember_model_meta(const ember_model* model, const char* key, char* buf, size_t cap,
                                        size_t* needed);

/* Metadata enumeration: the number of keys (-1 when model is NULL) and the key at `index` (file order),
 * two-call pattern; an index out of range is EMBER_ERR_INVALID_ARGUMENT. */
EMBER_API int32_t ember_model_meta_count(const ember_model* model);
EMBER_API ember_status ember_model_meta_key(const ember_model* model, int32_t index, char* buf, size_t cap,
                                            size_t* needed);

/* A metadata value's GGUF type (EMBER_META_*), EMBER_ERR_NOT_FOUND for an absent key. */
#define EMBER_META_U8 0
#define EMBER_META_I8 1
#define EMBER_META_U16 2
#define EMBER_META_I16 3
#define EMBER_META_U32 4
#define EMBER_META_I32 5
#define EMBER_META_F32 6
#define EMBER_META_BOOL 7
#define EMBER_META_STRING 8
#define EMBER_META_ARRAY 9
#define EMBER_META_U64 10
#define EMBER_META_I64 11
#define EMBER_META_F64 12
EMBER_API ember_status ember_model_meta_type(const ember_model* model, const char* key, int32_t* type);

/* A metadata value as JSON, arrays in full (a string, number, true/false, or an array of those; bytes that
 * are not UTF-8 become U+FFFD, non-finite floats null), two-call pattern; EMBER_ERR_NOT_FOUND when absent. */
EMBER_API ember_status ember_model_meta_json(const ember_model* model, const char* key, char* buf, size_t cap,
                                             size_t* needed);

/* The chat template (tokenizer.chat_template), two-call pattern; "" (needed = 1) when the file has none. */
EMBER_API ember_status ember_model_chat_template(const ember_model* model, char* buf, size_t cap, size_t* needed);

/* What a model costs in memory on the CPU backend, in bytes, read from its header alone (before loading). */
typedef struct ember_memory_estimate {
    uint32_t struct_size; /* set by the caller to sizeof(ember_memory_estimate); ember fills what fits */
    uint64_t weights;     /* the tensors (mapped from the file, or repacked once at load) */
    uint64_t kv_cache;    /* one session's KV cache of n_ctx tokens (F16) */
    uint64_t scratch;     /* that session's activations for n_batch tokens and a row of logits */
    uint64_t total;       /* the sum; each further session adds kv_cache + scratch */
} ember_memory_estimate;

/* Estimates memory for a GGUF file and a session of n_ctx tokens (1 .. 2^24), evaluating n_batch tokens per
 * pass (0: the default, 512). Reads the header only. */
EMBER_API ember_status ember_estimate_memory(const char* path, int32_t n_ctx, int32_t n_batch, ember_memory_estimate* out);

/* As ember_estimate_memory for a model loaded with ember_model_params.quantize = `quantize` (NULL or "": as
 * the file has its weights, the same as ember_estimate_memory): the weights are the tensors that load
 * holds, each of the type it gives it. An unknown type, or one that would re-quantize an already quantized
 * tensor, is EMBER_ERR_INVALID_ARGUMENT, as the load is. At most 64 bytes. */
EMBER_API ember_status ember_estimate_memory_quantized(const char* path, int32_t n_ctx, int32_t n_batch,
                                                       const char* quantize, ember_memory_estimate* out);

/* Renders a conversation through a chat template, as Hugging Face's apply_chat_template does, two-call
 * pattern. `json` is one JSON object: "messages" (required: [{"role": ..., "content": ...}, ...], with any
 * further fields the template reads, e.g. "tool_calls"), and optionally "tools", "add_generation_prompt"
 * (default false), "bos_token", "eos_token", "now" (the time strftime_now sees). JSON rather than C structs:
 * every binding language has JSON at hand, and new message fields need no new ABI.
 * template_source: a Jinja template, or NULL for the model's own (ChatML when its file has none). model may
 * be NULL when template_source is given; when set, its BOS and EOS tokens are the default bos_token and
 * eos_token. A template error or raise_exception() is EMBER_ERR_INVALID_ARGUMENT with the template line in
 * the message; a template hitting the engine's size limits is EMBER_ERR_OUT_OF_MEMORY. Rendering is
 * sandboxed and bounded in time and memory. */
EMBER_API ember_status ember_chat_render(const ember_model* model, const char* template_source, const char* json,
                                         char* buf, size_t cap, size_t* needed);

/* ---------------------------------------------------------------------------------------------------------
 * Tokenizers
 * ------------------------------------------------------------------------------------------------------- */

#define EMBER_TOKENIZE_ADD_SPECIAL 1u   /* add BOS/EOS as the vocabulary asks */
#define EMBER_TOKENIZE_PARSE_SPECIAL 2u /* text such as "<|im_start|>" becomes its special token */

#define EMBER_DETOKENIZE_RENDER_SPECIAL 1u /* print control tokens (BOS, EOS, <|im_end|>...) as their text */

/* Loads only the vocabulary of a GGUF file (vocab-only files work). On success *out is owned by the caller:
 * free it with ember_tokenizer_free. */
EMBER_API ember_status ember_tokenizer_load(const char* path, ember_tokenizer** out);

/* Frees a tokenizer from ember_tokenizer_load. NULL is fine; a tokenizer borrowed from a model is ignored. */
EMBER_API void ember_tokenizer_free(ember_tokenizer* tokenizer);

/* Number of tokens in the vocabulary; -1 when tokenizer is NULL. */
EMBER_API int32_t ember_tokenizer_n_vocab(const ember_tokenizer* tokenizer);

/* Text (len bytes, no NUL needed; text may be NULL when len is 0) to token ids, two-call pattern over
 * out/cap/n_out (n_out counts tokens). flags: EMBER_TOKENIZE_*. */
EMBER_API ember_status ember_tokenize(const ember_tokenizer* tokenizer, const char* text, size_t len, int32_t* out,
                                      int32_t cap, uint32_t flags, int32_t* n_out);

/* Token ids to text, two-call pattern (needed includes the NUL). tokens may be NULL when n is 0. An id
 * outside [0, n_vocab) is EMBER_ERR_INVALID_ARGUMENT. flags: EMBER_DETOKENIZE_*. */
EMBER_API ember_status ember_detokenize(const ember_tokenizer* tokenizer, const int32_t* tokens, int32_t n,
                                        uint32_t flags, char* buf, size_t cap, size_t* needed);

/* The bytes of one token as detokenizing it would produce them (a piece may be part of a UTF-8 character),
 * two-call pattern. flags: EMBER_DETOKENIZE_*; without RENDER_SPECIAL a control token's piece is "". */
EMBER_API ember_status ember_token_piece(const ember_tokenizer* tokenizer, int32_t token, uint32_t flags, char* buf,
                                         size_t cap, size_t* needed);

/* Special tokens; -1 when the vocabulary has none or tokenizer is NULL. */
EMBER_API int32_t ember_token_bos(const ember_tokenizer* tokenizer);
EMBER_API int32_t ember_token_eos(const ember_tokenizer* tokenizer);
EMBER_API int32_t ember_token_eot(const ember_tokenizer* tokenizer); /* end of turn, e.g. <|im_end|> */

/* True for tokens that end generation (EOS, EOT and the like); false for others, ids out of range, NULL. */
EMBER_API bool ember_token_is_eog(const ember_tokenizer* tokenizer, int32_t token);

/* A token's attribute bits (llama.cpp's numbering); 0 for an id out of range or a NULL tokenizer. */
#define EMBER_TOKEN_ATTR_UNKNOWN 1u
#define EMBER_TOKEN_ATTR_UNUSED 2u
#define EMBER_TOKEN_ATTR_NORMAL 4u
#define EMBER_TOKEN_ATTR_CONTROL 8u       /* BOS, EOS, <|im_start|>...: printed only when rendering specials */
#define EMBER_TOKEN_ATTR_USER_DEFINED 16u /* added tokens, matched whole in text */
#define EMBER_TOKEN_ATTR_BYTE 32u         /* <0xXX> byte fallback */
#define EMBER_TOKEN_ATTR_LSTRIP 128u
#define EMBER_TOKEN_ATTR_RSTRIP 256u
EMBER_API uint32_t ember_token_attr(const ember_tokenizer* tokenizer, int32_t token);

/* The token with a special role, -1 when the vocabulary has none (or tokenizer is NULL, or `which` is
 * unknown). */
#define EMBER_SPECIAL_BOS 0
#define EMBER_SPECIAL_EOS 1
#define EMBER_SPECIAL_EOT 2
#define EMBER_SPECIAL_EOM 3
#define EMBER_SPECIAL_UNK 4
#define EMBER_SPECIAL_SEP 5
#define EMBER_SPECIAL_PAD 6
#define EMBER_SPECIAL_MASK 7
#define EMBER_SPECIAL_FIM_PRE 8
#define EMBER_SPECIAL_FIM_SUF 9
#define EMBER_SPECIAL_FIM_MID 10
#define EMBER_SPECIAL_FIM_PAD 11
#define EMBER_SPECIAL_FIM_REP 12
#define EMBER_SPECIAL_FIM_SEP 13
EMBER_API int32_t ember_token_special(const ember_tokenizer* tokenizer, int32_t which);

/* Whether EMBER_TOKENIZE_ADD_SPECIAL adds BOS / EOS for this vocabulary: 1 or 0; -1 when tokenizer is NULL. */
EMBER_API int32_t ember_tokenizer_add_bos(const ember_tokenizer* tokenizer);
EMBER_API int32_t ember_tokenizer_add_eos(const ember_tokenizer* tokenizer);

/* ---------------------------------------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------------------------------------- */

typedef struct ember_session_params {
    uint32_t struct_size;   /* sizeof(ember_session_params), set by ember_session_params_init */
    int32_t n_ctx;          /* KV cache size in tokens; 0: the model's training context, at most 4096.
                             * More than the machine's available memory holds: EMBER_ERR_OUT_OF_MEMORY */
    int32_t n_batch;        /* prompt tokens per forward pass; default 512 */
    int32_t n_threads;      /* 0: the model's default; at most 4x the hardware threads */
    ember_abort_fn abort;   /* optional, called on the thread running the session call */
    void* abort_user_data;
} ember_session_params;

EMBER_API ember_status ember_session_params_init(ember_session_params* params);
EMBER_API ember_status ember_session_params_init_sized(ember_session_params* params, size_t size);
#define ember_session_params_init(params) ember_session_params_init_sized((params), sizeof *(params))

/* Creates a session over a model; params may be NULL. On success *out is owned by the caller: free it with
 * ember_session_free. The session keeps the model's weights alive. */
EMBER_API ember_status ember_session_create(const ember_model* model, const ember_session_params* params,
                                            ember_session** out);

/* Frees a session. NULL is fine. From a callback, or from another thread while a call runs on the session,
 * the running call is cancelled and the free waits until it returns; no call may start on it afterwards. */
EMBER_API void ember_session_free(ember_session* session);

/* Evaluates n tokens at the current position; afterwards ember_session_logits belongs to the last one.
 * EMBER_ERR_CONTEXT_FULL when they do not fit (nothing is evaluated), EMBER_ERR_INVALID_ARGUMENT for n <= 0
 * or an id outside [0, n_vocab). After any failure (CANCELLED included) the session holds what it held
 * before the call: same position, same cached tokens. */
EMBER_API ember_status ember_session_prefill(ember_session* session, const int32_t* tokens, int32_t n);

/* ember_session_prefill with flags: EMBER_PREFILL_ALL_LOGITS keeps every token's logits for
 * ember_session_logits_at (perplexity, scoring), until the next call that changes the session. */
#define EMBER_PREFILL_ALL_LOGITS 1u
EMBER_API ember_status ember_session_prefill_ex(ember_session* session, const int32_t* tokens, int32_t n,
                                                uint32_t flags);

/* Evaluates one token; same rules as ember_session_prefill. */
EMBER_API ember_status ember_session_decode(ember_session* session, int32_t token);

/* The logits of the last evaluated position: *out points at *n_vocab floats owned by the session, valid
 * until the next call that changes the session (prefill, decode, generate, rewind, reset, free).
 * EMBER_ERR_INVALID_ARGUMENT when nothing has been evaluated since creation, rewind or reset. */
EMBER_API ember_status ember_session_logits(const ember_session* session, const float** out, int32_t* n_vocab);

/* The logits of the i-th token (0 <= i < n) of the last ember_session_prefill_ex with
 * EMBER_PREFILL_ALL_LOGITS, as ember_session_logits gives them; EMBER_ERR_INVALID_ARGUMENT otherwise. */
EMBER_API ember_status ember_session_logits_at(const ember_session* session, int32_t i, const float** out,
                                               int32_t* n_vocab);

/* The tokens in the session's cache, in order, two-call pattern over out/cap/n_out (n_out counts tokens). */
EMBER_API ember_status ember_session_tokens(const ember_session* session, int32_t* out, int32_t cap, int32_t* n_out);

/* Tokens in the cache / the context size; -1 when session is NULL. */
EMBER_API int32_t ember_session_position(const ember_session* session);
EMBER_API int32_t ember_session_n_ctx(const ember_session* session);

/* Forgets the tokens from `position` on (0 <= position <= current position). Logits are forgotten too:
 * evaluate a token before sampling again. */
EMBER_API ember_status ember_session_rewind(ember_session* session, int32_t position);

/* ember_session_rewind(session, 0). */
EMBER_API ember_status ember_session_reset(ember_session* session);

/* Thread-safe and sticky: the prefill/decode/generate call running on the session stops with
 * EMBER_ERR_CANCELLED, and so does every later one until ember_session_clear_cancel, so a Stop button
 * pressed just before a call starts is not lost. Rewind and reset still work on a cancelled session. */
EMBER_API ember_status ember_session_cancel(ember_session* session);

/* Thread-safe: lets the session run again after ember_session_cancel. */
EMBER_API ember_status ember_session_clear_cancel(ember_session* session);

/* Samples, evaluates and streams up to max_tokens tokens (< 0: until the context is full) from the current
 * logits (so prefill first). Stops early at an end-of-generation token, when the context is full, or when
 * callback returns false. callback (optional) receives UTF-8 text as it completes. *n_generated (optional,
 * may be NULL) receives the number of tokens sampled, including an end-of-generation token that stopped it;
 * that token, and the token whose callback returned false, are not evaluated into the session. On failure
 * (e.g. CANCELLED) the tokens evaluated before it stay in the session and *n_generated counts those. */
EMBER_API ember_status ember_session_generate(ember_session* session, ember_sampler* sampler, int32_t max_tokens,
                                              ember_token_callback callback, void* user_data, int32_t* n_generated);

/* Why generation ended. */
#define EMBER_STOP_LENGTH 0       /* max_tokens reached */
#define EMBER_STOP_EOG 1          /* an end-of-generation token was sampled (not evaluated) */
#define EMBER_STOP_CALLBACK 2     /* the callback returned EMBER_STREAM_STOP (or false) */
#define EMBER_STOP_CONTEXT_FULL 3 /* no room left in the context (nothing more could be generated) */
#define EMBER_STOP_STRING 4       /* the text reached a stop string (stop_index says which) */

typedef struct ember_generate_params {
    uint32_t struct_size;      /* sizeof(ember_generate_params), set by ember_generate_params_init */
    int32_t max_tokens;        /* default 256; < 0: until the context is full */
    int32_t stop_at_eog;       /* default 1; 0: end-of-generation tokens are generated like any other */
    ember_stream_fn stream;    /* optional, called on the generating thread */
    void* stream_user_data;
    /* Stop strings (UTF-8, non-empty, at most 64): generation ends where the text first contains one;
     * neither it nor what follows is streamed. Text that may begin one is held back until it cannot. */
    const char* const* stop;
    int32_t n_stop;
    /* Logit bias: bias_values[i] is added to token bias_tokens[i]'s logit before sampling (-INFINITY
     * forbids it). Ids in [0, n_vocab), values not NaN, n_bias in [0, n_vocab]. */
    const int32_t* bias_tokens;
    const float* bias_values;
    int32_t n_bias;
    /* Optional: the sampled token ids are written here, the first tokens_cap of them (result->n_generated
     * says how many were sampled; a token whose piece streams no text is still listed). */
    int32_t* tokens;
    int32_t tokens_cap;
} ember_generate_params;

EMBER_API ember_status ember_generate_params_init(ember_generate_params* params);
EMBER_API ember_status ember_generate_params_init_sized(ember_generate_params* params, size_t size);
#define ember_generate_params_init(params) ember_generate_params_init_sized((params), sizeof *(params))

typedef struct ember_generate_result {
    uint32_t struct_size;  /* set by the caller to sizeof(ember_generate_result); ember fills what fits */
    int32_t n_generated;   /* tokens sampled, including the one that ended generation; also on failure
                            * (e.g. a cancel from another thread): every token streamed is counted */
    int32_t stop_reason;   /* EMBER_STOP_*; meaningful on EMBER_OK */
    int32_t stop_index;    /* with EMBER_STOP_STRING, the index into params->stop; else -1 */
} ember_generate_result;

/* ember_session_generate with options and a stop reason. params may be NULL (defaults); result may be NULL.
 * The token that ended generation (end of generation, stop string, callback) is not evaluated into the
 * session. A full context is EMBER_OK with EMBER_STOP_CONTEXT_FULL. EMBER_ERR_CALLBACK when the stream
 * callback returned EMBER_STREAM_ERROR. On failure the tokens evaluated before it stay in the session. */
EMBER_API ember_status ember_session_generate_ex(ember_session* session, ember_sampler* sampler,
                                                 const ember_generate_params* params, ember_generate_result* result);

/* A generation driven one piece at a time: ember_session_generate_ex's sampling, stop strings, UTF-8
 * hold-back and stop reasons, with no callback and no thread (an iterator for bindings and event loops).
 * params as for ember_session_generate_ex, except that `stream` must be NULL; its `tokens` array is filled
 * as generation goes. The generation keeps the session and sampler alive: freeing them first is deferred
 * until ember_generation_free (and cancels a session). Use the session for nothing else meanwhile. */
typedef struct ember_generation ember_generation;
EMBER_API ember_status ember_generation_start(ember_session* session, ember_sampler* sampler,
                                              const ember_generate_params* params, ember_generation** out);

/* The next piece: *text (NUL-terminated UTF-8, *len bytes; owned by the generation, valid until the next
 * call on it) and the token that completed it; *text is NULL once generation has ended. The token of the
 * piece returned is evaluated at the following call, so stopping early leaves the session as a stream
 * callback returning EMBER_STREAM_STOP would. Fails as generate does (CANCELLED...); the session keeps
 * what was evaluated. A call refused before it started (a session already cancelled) changes nothing; one
 * that failed while evaluating ends the generation (later calls give NULL text). */
EMBER_API ember_status ember_generation_next(ember_generation* generation, const char** text, size_t* len,
                                             int32_t* token);

/* The result so far (complete once ember_generation_next has returned NULL text). */
EMBER_API ember_status ember_generation_result(const ember_generation* generation, ember_generate_result* result);

/* Frees a generation. NULL is fine. */
EMBER_API void ember_generation_free(ember_generation* generation);

/* Saves the session's state (tokens, KV cache, last logits) to `path` atomically (temporary file, flush,
 * rename), so a killed program can resume without re-evaluating. */
EMBER_API ember_status ember_session_save(const ember_session* session, const char* path);

/* Restores a state saved by ember_session_save. EMBER_ERR_BAD_FILE for a file that is truncated, corrupted
 * (checksum), of another format version, made with another model, or longer than this session's context;
 * EMBER_ERR_IO when it cannot be read. On any failure the session holds what it held before, and the file
 * is never modified. */
EMBER_API ember_status ember_session_load(ember_session* session, const char* path);

/* ---------------------------------------------------------------------------------------------------------
 * LoRA adapters: low-rank updates of a model's projections, loaded once for a model and applied per session
 * with a scale, several at once, switched between requests without reloading the model.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct ember_adapter ember_adapter; /* immutable after load; share it between threads and sessions */

/* Loads a LoRA adapter for `model` from a GGUF adapter file (as llama.cpp's convert_lora_to_gguf.py writes it)
 * or a PEFT folder (adapter_config.json + adapter_model.safetensors). It may change the attention (q, k, v, o)
 * and dense feed-forward (gate, up, down) projections. On success *out is owned by the caller: free it with
 * ember_adapter_free; it keeps the model's weights alive. Fails with EMBER_ERR_IO, EMBER_ERR_BAD_FILE (a
 * malformed adapter: a lora_a without its lora_b, ranks that disagree, rank 0 or above 65536),
 * EMBER_ERR_INVALID_ARGUMENT (an adapter made for another model: architecture, tensor names or shapes),
 * EMBER_ERR_UNSUPPORTED (LoRA on embeddings or norms, DoRA, trained biases...); *out is NULL then. */
EMBER_API ember_status ember_adapter_load(const ember_model* model, const char* path, ember_adapter** out);

/* Frees an adapter. NULL is fine. Sessions using it keep it alive until they stop using it. */
EMBER_API void ember_adapter_free(ember_adapter* adapter);

/* The adapter's largest rank, and how many projections it changes; -1 when adapter is NULL. */
EMBER_API int32_t ember_adapter_rank(const ember_adapter* adapter);
EMBER_API int32_t ember_adapter_n_targets(const ember_adapter* adapter);

/* Sets the adapters applied to every token the session evaluates from now on: adapters[i] with scales[i]
 * (each projection gets scales[i] * alpha / rank * B·(A·x), as llama.cpp and PEFT compute it). n in [0, 64];
 * n = 0 removes them (adapters and scales may then be NULL). Each adapter must be loaded for this session's
 * model and appear once; scales finite, in [-1000, 1000]. On failure the session keeps its adapters. A
 * scale of 0 runs nothing for that adapter, so the output is the base model's bit for bit. The model and its
 * other sessions are unaffected. The KV cache is kept: tokens already cached keep the keys and values
 * computed under the previous adapters; ember_session_reset (or rewind) to recompute them. Saved sessions
 * do not record adapters. */
EMBER_API ember_status ember_session_set_adapters(ember_session* session, const ember_adapter* const* adapters,
                                                  const float* scales, int32_t n);

/* ---------------------------------------------------------------------------------------------------------
 * Chats: a conversation over one session with the model's own template, the KV cache reused across turns,
 * and a context strategy so that a conversation of any length never fails with EMBER_ERR_CONTEXT_FULL.
 * ------------------------------------------------------------------------------------------------------- */

typedef struct ember_chat ember_chat;

#define EMBER_CHAT_WINDOW 0  /* leave out the oldest turns down to half the room, then keep that start */
#define EMBER_CHAT_BUDGET 1  /* keep as many recent turns as fit (re-prefills every turn once full) */
#define EMBER_CHAT_SUMMARY 2 /* as WINDOW, and the model summarises the turns left out into a kept note */

typedef struct ember_chat_params {
    uint32_t struct_size;  /* sizeof(ember_chat_params), set by ember_chat_params_init */
    const char* system;    /* system message, copied; NULL or "": none */
    bool history;          /* default true; false answers each turn alone */
    int32_t reserve;       /* context positions kept for the reply; default 256, in [1, n_ctx) */
    int32_t strategy;      /* EMBER_CHAT_*; default EMBER_CHAT_WINDOW */
} ember_chat_params;

EMBER_API ember_status ember_chat_params_init(ember_chat_params* params);
EMBER_API ember_status ember_chat_params_init_sized(ember_chat_params* params, size_t size);
#define ember_chat_params_init(params) ember_chat_params_init_sized((params), sizeof *(params))

/* Creates a chat (with a session of its own, from session_params; either params may be NULL). Free it with
 * ember_chat_free. Like a session, a chat keeps the model's weights alive: the model may be freed first. */
EMBER_API ember_status ember_chat_create(const ember_model* model, const ember_session_params* session_params,
                                         const ember_chat_params* params, ember_chat** out);
EMBER_API void ember_chat_free(ember_chat* chat);

/* One turn: adds `user`, evaluates only what the KV cache lacks, streams the reply through callback (as
 * ember_session_generate does; max_tokens < 0: until the context is full) and adds it to the conversation.
 * On failure the conversation is as it was. Callbacks may free the chat (deferred, as for sessions). */
EMBER_API ember_status ember_chat_say(ember_chat* chat, ember_sampler* sampler, const char* user, int32_t max_tokens,
                                      ember_token_callback callback, void* user_data, int32_t* n_generated);

/* ember_chat_say with ember_session_generate_ex's options and result. */
EMBER_API ember_status ember_chat_say_ex(ember_chat* chat, ember_sampler* sampler, const char* user,
                                         const ember_generate_params* params, ember_generate_result* result);

EMBER_API ember_status ember_chat_reset(ember_chat* chat);

/* Thread-safe, sticky: as ember_session_cancel / ember_session_clear_cancel for the chat's session. */
EMBER_API ember_status ember_chat_cancel(ember_chat* chat);
EMBER_API ember_status ember_chat_clear_cancel(ember_chat* chat);
/* Messages in the conversation (user and assistant turns); -1 when chat is NULL. */
EMBER_API int32_t ember_chat_n_messages(const ember_chat* chat);

/* The conversation and its KV cache, saved atomically / restored with the checks of ember_session_load. */
EMBER_API ember_status ember_chat_save(const ember_chat* chat, const char* path);
EMBER_API ember_status ember_chat_load(ember_chat* chat, const char* path);

/* ---------------------------------------------------------------------------------------------------------
 * Samplers: penalties -> top-k -> top-p -> min-p -> temperature -> draw (llama.cpp's order)
 * ------------------------------------------------------------------------------------------------------- */

#define EMBER_SEED_RANDOM UINT64_MAX /* seed from the OS (ember_sampler_seed tells which); any other value is a seed */

typedef struct ember_sampler_params {
    uint32_t struct_size;     /* sizeof(ember_sampler_params), set by ember_sampler_params_init */
    float temperature;        /* default 0.8; <= 0: greedy */
    int32_t top_k;            /* default 40; <= 0: off */
    float top_p;              /* default 0.95; >= 1: off */
    float min_p;              /* default 0.05; <= 0: off */
    float repeat_penalty;     /* default 1.0 (off) */
    int32_t penalty_last_n;   /* default 64: how many recent tokens the penalties look at */
    float frequency_penalty;  /* default 0 */
    float presence_penalty;   /* default 0 */
    uint64_t seed;            /* default EMBER_SEED_RANDOM */
} ember_sampler_params;

EMBER_API ember_status ember_sampler_params_init(ember_sampler_params* params);
EMBER_API ember_status ember_sampler_params_init_sized(ember_sampler_params* params, size_t size);
#define ember_sampler_params_init(params) ember_sampler_params_init_sized((params), sizeof *(params))

/* Creates a sampler; params may be NULL (defaults). EMBER_ERR_INVALID_ARGUMENT for values out of range or not
 * finite (NaN, infinities).
 * On success *out is owned by the caller: free it with ember_sampler_free. */
EMBER_API ember_status ember_sampler_create(const ember_sampler_params* params, ember_sampler** out);

/* A sampler that always takes the highest logit (lowest id on ties). Free with ember_sampler_free. */
EMBER_API ember_status ember_sampler_create_greedy(ember_sampler** out);

/* Frees a sampler. NULL is fine. */
EMBER_API void ember_sampler_free(ember_sampler* sampler);

/* Picks a token from n logits (one position's, n > 0) into *token and records it for the penalties. */
EMBER_API ember_status ember_sampler_sample(ember_sampler* sampler, const float* logits, int32_t n, int32_t* token);

/* Records a token chosen elsewhere (token >= 0) so the penalties see it. */
EMBER_API ember_status ember_sampler_accept(ember_sampler* sampler, int32_t token);

/* Forgets the history and reseeds with the seed in use (so a reset sampler repeats its draws). */
EMBER_API ember_status ember_sampler_reset(ember_sampler* sampler);

/* The seed in use: params->seed, or the one drawn from the OS for EMBER_SEED_RANDOM (pass it back as the seed
 * to reproduce a run). */
EMBER_API ember_status ember_sampler_seed(const ember_sampler* sampler, uint64_t* seed);

/* Grammar-constrained sampling. Only tokens whose text continues the grammar can be sampled; an
 * end-of-generation token only where its text is complete; generation (ember_session_generate*, chats,
 * ember_generation_*) ends with EMBER_STOP_EOG once the grammar is finished (nothing may
 * follow). Sampled and accepted tokens advance the grammar, so ember_sampler_accept of a token that does not
 * fit is EMBER_ERR_INVALID_ARGUMENT (and prompt tokens should not be accepted after setting one);
 * ember_sampler_reset restarts it. When no token can continue it, sampling fails with
 * EMBER_ERR_INVALID_ARGUMENT and generation stops with that error.
 *
 * Sets the grammar, GBNF text (llama.cpp's format: grammars/README.md), matched against the model's
 * vocabulary; NULL or "" removes it. A bad grammar is EMBER_ERR_INVALID_ARGUMENT, its message (ember_last_error)
 * naming the line and column, and the sampler keeps the grammar it had. */
EMBER_API ember_status ember_sampler_set_grammar(ember_sampler* sampler, const ember_model* model, const char* gbnf);

/* As ember_sampler_set_grammar, with the grammar of the JSON documents that a JSON Schema (a subset: type,
 * properties/required, additionalProperties, items, prefixItems and items arrays (tuples), minItems/maxItems,
 * minLength/maxLength, enum, const, anyOf/oneOf; README "Grammars and JSON") accepts. schema_json NULL or "":
 * any JSON value; "{\"type\":\"object\"}": any object. */
EMBER_API ember_status ember_sampler_set_json_schema(ember_sampler* sampler, const ember_model* model,
                                                     const char* schema_json);

/* The GBNF grammar of a JSON Schema (as ember_sampler_set_json_schema uses it), two-call pattern. */
EMBER_API ember_status ember_json_schema_to_grammar(const char* schema_json, char* buf, size_t cap, size_t* needed);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_H */
