/* Small C wrappers for the Go binding (included by each cgo preamble; everything here is static).
 *
 * ember_last_error() is per OS thread and a goroutine may move to another OS thread between two cgo calls,
 * so every wrapper of a call that can fail reads the message in the same cgo call: on failure *err receives
 * a malloc'd copy of it (the Go side frees it). Callbacks get a runtime/cgo.Handle (an integer, never a Go
 * pointer) as their user_data and reach Go through the exported trampolines of callbacks.go. */
#ifndef EMBER_GO_SHIM_H
#define EMBER_GO_SHIM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

#if EMBER_ABI_VERSION != 1
#error "the ember Go binding is written for EMBER_ABI_VERSION 1"
#endif

/* The exported Go trampolines (callbacks.go). */
extern int32_t emberGoStream(char* text, size_t len, int32_t token, void* user_data);
extern int32_t emberGoProgress(float progress, void* user_data);

static int32_t ember_go_stream_c(const char* text, size_t len, int32_t token, void* user_data) {
    return emberGoStream((char*)text, len, token, user_data);
}

static bool ember_go_progress_c(float progress, void* user_data) {
    return emberGoProgress(progress, user_data) != 0;
}

static inline char* ember_go_copy_error(void) {
    const char* msg = ember_last_error();
    return strdup(msg ? msg : "");
}

#define EMBER_GO_CALL(expr)                                                                                \
    do {                                                                                                   \
        ember_status status_ = (expr);                                                                     \
        if (status_ != EMBER_OK && err != NULL) *err = ember_go_copy_error();                              \
        return status_;                                                                                    \
    } while (0)

/* A text getter of the two-call pattern, by number (one Go helper serves them all). */
enum {
    EMBER_GO_TEXT_ARCH = 0,
    EMBER_GO_TEXT_NAME = 1,
    EMBER_GO_TEXT_BACKEND = 2,
    EMBER_GO_TEXT_META = 3,
    EMBER_GO_TEXT_META_JSON = 4,
    EMBER_GO_TEXT_META_KEY = 5,
    EMBER_GO_TEXT_CHAT_TEMPLATE = 6,
    EMBER_GO_TEXT_DETOKENIZE = 7,
    EMBER_GO_TEXT_PIECE = 8,
    EMBER_GO_TEXT_JSON_SCHEMA_GRAMMAR = 9 /* key: the schema */
};

typedef struct ember_go_text_args {
    const ember_model* model;
    const ember_tokenizer* tokenizer;
    const char* key;
    int32_t index;
    const int32_t* tokens;
    int32_t n_tokens;
    uint32_t flags;
} ember_go_text_args;

static inline ember_status ember_go_text(int which, const ember_go_text_args* a, char* buf, size_t cap, size_t* needed,
                                         char** err) {
    switch (which) {
    case EMBER_GO_TEXT_ARCH: EMBER_GO_CALL(ember_model_architecture(a->model, buf, cap, needed));
    case EMBER_GO_TEXT_NAME: EMBER_GO_CALL(ember_model_name(a->model, buf, cap, needed));
    case EMBER_GO_TEXT_BACKEND: EMBER_GO_CALL(ember_model_backend(a->model, buf, cap, needed));
    case EMBER_GO_TEXT_META: EMBER_GO_CALL(ember_model_meta(a->model, a->key, buf, cap, needed));
    case EMBER_GO_TEXT_META_JSON: EMBER_GO_CALL(ember_model_meta_json(a->model, a->key, buf, cap, needed));
    case EMBER_GO_TEXT_META_KEY: EMBER_GO_CALL(ember_model_meta_key(a->model, a->index, buf, cap, needed));
    case EMBER_GO_TEXT_CHAT_TEMPLATE: EMBER_GO_CALL(ember_model_chat_template(a->model, buf, cap, needed));
    case EMBER_GO_TEXT_DETOKENIZE:
        EMBER_GO_CALL(ember_detokenize(a->tokenizer, a->tokens, a->n_tokens, a->flags, buf, cap, needed));
    case EMBER_GO_TEXT_PIECE: EMBER_GO_CALL(ember_token_piece(a->tokenizer, a->index, a->flags, buf, cap, needed));
    case EMBER_GO_TEXT_JSON_SCHEMA_GRAMMAR: EMBER_GO_CALL(ember_json_schema_to_grammar(a->key, buf, cap, needed));
    default: break;
    }
    if (err != NULL) *err = strdup("ember Go binding: unknown text getter");
    return EMBER_ERR_INTERNAL;
}

/* Models */
static inline ember_status ember_go_model_load(const char* path, const void* data, size_t size, int32_t n_threads,
                                               int set_threads, const char* backend, int32_t use_mmap,
                                               const char* quantize, uintptr_t progress, ember_model** out,
                                               char** err) {
    ember_model_params p;
    ember_status s = ember_model_params_init(&p);
    if (s != EMBER_OK) {
        if (err != NULL) *err = ember_go_copy_error();
        return s;
    }
    if (set_threads) p.n_threads = n_threads;
    p.backend = backend;
    if (use_mmap >= 0) p.use_mmap = use_mmap != 0;
    p.quantize = quantize;
    if (progress != 0) {
        p.progress = ember_go_progress_c;
        p.progress_user_data = (void*)progress;
    }
    if (path != NULL) EMBER_GO_CALL(ember_model_load(path, &p, out));
    EMBER_GO_CALL(ember_model_load_from_memory(data, size, &p, out));
}

/* ember_estimate_memory, or ember_estimate_memory_quantized when quantize is not NULL. */
static inline ember_status ember_go_estimate_memory(const char* path, int32_t n_ctx, int32_t n_batch,
                                                    const char* quantize, ember_memory_estimate* out, char** err) {
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    if (quantize != NULL) EMBER_GO_CALL(ember_estimate_memory_quantized(path, n_ctx, n_batch, quantize, out));
    EMBER_GO_CALL(ember_estimate_memory(path, n_ctx, n_batch, out));
}

static inline ember_status ember_go_meta_type(const ember_model* m, const char* key, int32_t* type, char** err) {
    EMBER_GO_CALL(ember_model_meta_type(m, key, type));
}

static inline ember_status ember_go_tokenizer_load(const char* path, ember_tokenizer** out, char** err) {
    EMBER_GO_CALL(ember_tokenizer_load(path, out));
}

static inline ember_status ember_go_tokenize(const ember_tokenizer* t, const char* text, size_t len, int32_t* out,
                                             int32_t cap, uint32_t flags, int32_t* n_out, char** err) {
    EMBER_GO_CALL(ember_tokenize(t, text, len, out, cap, flags, n_out));
}

/* Sessions */
static inline ember_status ember_go_session_create(const ember_model* m, int32_t n_ctx, int32_t n_batch,
                                                   int32_t n_threads, ember_session** out, char** err) {
    ember_session_params p;
    ember_status s = ember_session_params_init(&p);
    if (s != EMBER_OK) {
        if (err != NULL) *err = ember_go_copy_error();
        return s;
    }
    if (n_ctx != 0) p.n_ctx = n_ctx;
    if (n_batch != 0) p.n_batch = n_batch;
    if (n_threads != 0) p.n_threads = n_threads;
    EMBER_GO_CALL(ember_session_create(m, &p, out));
}

static inline ember_status ember_go_prefill(ember_session* s, const int32_t* tokens, int32_t n, uint32_t flags,
                                            char** err) {
    EMBER_GO_CALL(ember_session_prefill_ex(s, tokens, n, flags));
}

static inline ember_status ember_go_decode(ember_session* s, int32_t token, char** err) {
    EMBER_GO_CALL(ember_session_decode(s, token));
}

/* Copies the logits into out (cap floats) in the same call; *n receives n_vocab. all < 0: the last ones. */
static inline ember_status ember_go_logits(const ember_session* s, int32_t at, float* out, int32_t cap, int32_t* n,
                                           char** err) {
    const float* p = NULL;
    ember_status st = at < 0 ? ember_session_logits(s, &p, n) : ember_session_logits_at(s, at, &p, n);
    if (st != EMBER_OK) {
        if (err != NULL) *err = ember_go_copy_error();
        return st;
    }
    if (out != NULL && cap >= *n) memcpy(out, p, (size_t)*n * sizeof(float));
    return EMBER_OK;
}

static inline ember_status ember_go_rewind(ember_session* s, int32_t position, char** err) {
    EMBER_GO_CALL(ember_session_rewind(s, position));
}

static inline ember_status ember_go_cancel(ember_session* s, int32_t clear, char** err) {
    if (clear) EMBER_GO_CALL(ember_session_clear_cancel(s));
    EMBER_GO_CALL(ember_session_cancel(s));
}

static inline ember_status ember_go_session_save(ember_session* s, const char* path, int32_t load, char** err) {
    if (load) EMBER_GO_CALL(ember_session_load(s, path));
    EMBER_GO_CALL(ember_session_save(s, path));
}

/* Generation: the params and result built here, on the C stack, so no Go memory holds a handle. */
/* LoRA adapters */
static inline ember_status ember_go_adapter_load(const ember_model* m, const char* path, ember_adapter** out,
                                                 char** err) {
    EMBER_GO_CALL(ember_adapter_load(m, path, out));
}

static inline ember_status ember_go_set_adapters(ember_session* s, ember_adapter** adapters, const float* scales,
                                                 int32_t n, char** err) {
    EMBER_GO_CALL(ember_session_set_adapters(s, (const ember_adapter* const*)adapters, scales, n));
}

typedef struct ember_go_gen_out {
    int32_t n_generated;
    int32_t stop_reason;
    int32_t stop_index;
} ember_go_gen_out;

static inline ember_status ember_go_generate(ember_session* session, ember_chat* chat, const char* user,
                                             ember_sampler* sampler, int32_t max_tokens, int32_t stop_at_eog,
                                             uintptr_t stream, char** stop, int32_t n_stop,
                                             const int32_t* bias_tokens, const float* bias_values, int32_t n_bias,
                                             ember_go_gen_out* out, char** err) {
    ember_generate_params p;
    ember_status s = ember_generate_params_init(&p);
    if (s != EMBER_OK) {
        if (err != NULL) *err = ember_go_copy_error();
        return s;
    }
    p.max_tokens = max_tokens;
    p.stop_at_eog = stop_at_eog;
    if (stream != 0) {
        p.stream = ember_go_stream_c;
        p.stream_user_data = (void*)stream;
    }
    p.stop = (const char* const*)stop;
    p.n_stop = n_stop;
    p.bias_tokens = bias_tokens;
    p.bias_values = bias_values;
    p.n_bias = n_bias;
    ember_generate_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.stop_index = -1;
    if (chat != NULL) s = ember_chat_say_ex(chat, sampler, user, &p, &r);
    else s = ember_session_generate_ex(session, sampler, &p, &r);
    if (s != EMBER_OK && err != NULL) *err = ember_go_copy_error();
    out->n_generated = r.n_generated;
    out->stop_reason = r.stop_reason;
    out->stop_index = r.stop_index;
    return s;
}

/* Samplers */
static inline ember_status ember_go_sampler_create(int greedy, float temperature, int32_t top_k, float top_p,
                                                   float min_p, float repeat_penalty, int32_t penalty_last_n,
                                                   float frequency_penalty, float presence_penalty, uint64_t seed,
                                                   ember_sampler** out, char** err) {
    if (greedy) EMBER_GO_CALL(ember_sampler_create_greedy(out));
    ember_sampler_params p;
    ember_status s = ember_sampler_params_init(&p);
    if (s != EMBER_OK) {
        if (err != NULL) *err = ember_go_copy_error();
        return s;
    }
    p.temperature = temperature;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = repeat_penalty;
    p.penalty_last_n = penalty_last_n;
    p.frequency_penalty = frequency_penalty;
    p.presence_penalty = presence_penalty;
    p.seed = seed;
    EMBER_GO_CALL(ember_sampler_create(&p, out));
}

static inline ember_status ember_go_sampler_defaults(ember_sampler_params* p) { return ember_sampler_params_init(p); }

static inline ember_status ember_go_sampler_sample(ember_sampler* s, const float* logits, int32_t n, int32_t* token,
                                                   char** err) {
    EMBER_GO_CALL(ember_sampler_sample(s, logits, n, token));
}

static inline ember_status ember_go_sampler_accept(ember_sampler* s, int32_t token, int32_t reset, char** err) {
    if (reset) EMBER_GO_CALL(ember_sampler_reset(s));
    EMBER_GO_CALL(ember_sampler_accept(s, token));
}

/* json: gbnf is a JSON Schema (ember_sampler_set_json_schema); NULL removes the grammar / allows any JSON. */
static inline ember_status ember_go_sampler_set_grammar(ember_sampler* s, const ember_model* m, const char* gbnf,
                                                        int32_t json, char** err) {
    if (json) EMBER_GO_CALL(ember_sampler_set_json_schema(s, m, gbnf));
    EMBER_GO_CALL(ember_sampler_set_grammar(s, m, gbnf));
}

static inline ember_status ember_go_sampler_seed(const ember_sampler* s, uint64_t* seed, char** err) {
    EMBER_GO_CALL(ember_sampler_seed(s, seed));
}

/* Chats */
static inline ember_status ember_go_chat_create(const ember_model* m, int32_t n_ctx, int32_t n_batch,
                                                int32_t n_threads, const char* system, int32_t history,
                                                int32_t reserve, int32_t strategy, ember_chat** out, char** err) {
    ember_session_params sp;
    ember_chat_params cp;
    ember_status s = ember_session_params_init(&sp);
    if (s == EMBER_OK) s = ember_chat_params_init(&cp);
    if (s != EMBER_OK) {
        if (err != NULL) *err = ember_go_copy_error();
        return s;
    }
    if (n_ctx != 0) sp.n_ctx = n_ctx;
    if (n_batch != 0) sp.n_batch = n_batch;
    if (n_threads != 0) sp.n_threads = n_threads;
    cp.system = system;
    cp.history = history != 0;
    if (reserve != 0) cp.reserve = reserve;
    cp.strategy = strategy;
    EMBER_GO_CALL(ember_chat_create(m, &sp, &cp, out));
}

static inline ember_status ember_go_chat_reset(ember_chat* c, char** err) { EMBER_GO_CALL(ember_chat_reset(c)); }

static inline ember_status ember_go_chat_save(ember_chat* c, const char* path, int32_t load, char** err) {
    if (load) EMBER_GO_CALL(ember_chat_load(c, path));
    EMBER_GO_CALL(ember_chat_save(c, path));
}

#endif
