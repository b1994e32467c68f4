// ember's C ABI over the C++ API: argument checks, one catch-all per entry point, per-thread last error.
// Nothing here may throw past an exported function or abort.
#include "ember.h"

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ember/ember.hpp"

// The C enum and the C++ enum must agree number for number.
static_assert(EMBER_OK == static_cast<int>(ember::Status::Ok));
static_assert(EMBER_ERR_INVALID_ARGUMENT == static_cast<int>(ember::Status::InvalidArgument));
static_assert(EMBER_ERR_BAD_FILE == static_cast<int>(ember::Status::BadFile));
static_assert(EMBER_ERR_UNSUPPORTED == static_cast<int>(ember::Status::Unsupported));
static_assert(EMBER_ERR_OUT_OF_MEMORY == static_cast<int>(ember::Status::OutOfMemory));
static_assert(EMBER_ERR_CONTEXT_FULL == static_cast<int>(ember::Status::ContextFull));
static_assert(EMBER_ERR_CANCELLED == static_cast<int>(ember::Status::Cancelled));
static_assert(EMBER_ERR_BACKEND == static_cast<int>(ember::Status::Backend));
static_assert(EMBER_ERR_INTERNAL == static_cast<int>(ember::Status::Internal));
static_assert(EMBER_ERR_IO == static_cast<int>(ember::Status::Io));
static_assert(EMBER_SEED_RANDOM == ember::SamplerParams::kRandomSeed);
static_assert(sizeof(int32_t) == sizeof(ember::Token));

// ----------------------------------------------------------------------------------------------------------
// Handles
// ----------------------------------------------------------------------------------------------------------

struct ember_tokenizer {
    ember::Tokenizer tok;
    bool owned;  // false: borrowed from a model, ember_tokenizer_free ignores it
};

struct ember_model {
    ember::Model model;
    ember_tokenizer tokenizer;  // borrowed view handed out by ember_model_tokenizer
};

// A handle whose running call may call back into the caller (abort, token callbacks): a free from inside
// such a callback is deferred to the end of the call, which it cancels, instead of pulling the object out
// from under it.
struct ember_deferred_free {
    std::mutex mutex;
    int running = 0;        // calls in progress on this handle
    bool free_asked = false;
};

struct ember_session : ember_deferred_free {
    std::optional<ember::Session> session;
};

struct ember_chat : ember_deferred_free {
    std::optional<ember::Chat> chat;
};

struct ember_sampler : ember_deferred_free {
    explicit ember_sampler(ember::Sampler s) : sampler(std::move(s)) {}
    ember::Sampler sampler;
};

namespace {

// ----------------------------------------------------------------------------------------------------------
// Last error
// ----------------------------------------------------------------------------------------------------------

thread_local std::string t_error;
thread_local const char* t_error_static = nullptr;  // used when copying the message itself ran out of memory

void clear_error() noexcept {
    t_error.clear();  // keeps the capacity; never throws
    t_error_static = nullptr;
}

ember_status fail(ember_status status, const char* where, const char* message) noexcept {
    try {
        t_error.assign(where);
        t_error += ": ";
        t_error += message;
        t_error_static = nullptr;
    } catch (...) {
        t_error_static = "out of memory while recording an error";
    }
    return status;
}

// Marks a handle in use for one call; the last call to end frees it if a free was asked meanwhile.
template <typename Handle>
class InUse {
public:
    explicit InUse(Handle* h) : h_(h) {
        if (!h_) return;
        std::lock_guard lock(h_->mutex);
        ++h_->running;
    }
    ~InUse() {
        if (!h_) return;
        bool free_now;
        {
            std::lock_guard lock(h_->mutex);
            free_now = --h_->running == 0 && h_->free_asked;
        }
        if (free_now) delete h_;
    }
    InUse(const InUse&) = delete;
    InUse& operator=(const InUse&) = delete;

private:
    Handle* h_;
};

// Frees h now, or, when a call is running on it (a free from its own callback), when that call ends.
template <typename Handle, typename OnDefer>
void free_or_defer(Handle* h, OnDefer on_defer) noexcept {
    if (!h) return;
    {
        std::lock_guard lock(h->mutex);
        if (h->running > 0) {
            h->free_asked = true;
            on_defer(*h);
            return;
        }
    }
    delete h;
}

// A caller's session params (already read and checked) as the C++ API takes them.
ember::SessionParams to_cpp(const ember_session_params& p) {
    ember::SessionParams sp;
    sp.n_ctx = p.n_ctx;
    sp.n_batch = p.n_batch;
    sp.n_threads = p.n_threads;
    if (p.abort) sp.abort = [fn = p.abort, ud = p.abort_user_data] { return fn(ud); };
    return sp;
}

ember_status from_cpp(ember::Status s) noexcept {
    const int v = static_cast<int>(s);
    return v >= EMBER_OK && v <= EMBER_ERR_IO ? static_cast<ember_status>(v) : EMBER_ERR_INTERNAL;
}

// ----------------------------------------------------------------------------------------------------------
// Params: a caller's struct may be older (smaller) than ours; copy what it has over our defaults.
// ----------------------------------------------------------------------------------------------------------

// The end of a struct's last field in its first released version: the smallest struct_size accepted.
#define EMBER_FIELD_END(T, field) (offsetof(T, field) + sizeof(static_cast<T*>(nullptr)->field))
constexpr size_t kModelParamsV1 = EMBER_FIELD_END(ember_model_params, progress_user_data);
constexpr size_t kSessionParamsV1 = EMBER_FIELD_END(ember_session_params, abort_user_data);
constexpr size_t kSamplerParamsV1 = EMBER_FIELD_END(ember_sampler_params, seed);
constexpr size_t kChatParamsV1 = EMBER_FIELD_END(ember_chat_params, strategy);

// Fields are only ever appended (and never into an earlier version's tail padding), so a prefix copy of
// struct_size bytes takes exactly the fields the caller knows about.
template <typename T>
ember_status read_params(const T* in, T& out, size_t min_size, const char* where) noexcept {
    if (!in) return EMBER_OK;
    if (in->struct_size < min_size || in->struct_size > sizeof(T)) {
        char msg[160];  // no allocation: this function must not throw
        std::snprintf(msg, sizeof msg, "struct_size %u is outside [%zu, %zu]; initialise the struct with its *_params_init function",
                      static_cast<unsigned>(in->struct_size), min_size, sizeof(T));
        return fail(EMBER_ERR_INVALID_ARGUMENT, where, msg);
    }
    std::memcpy(static_cast<void*>(&out), in, in->struct_size);
    out.struct_size = sizeof(T);
    return EMBER_OK;
}

// ----------------------------------------------------------------------------------------------------------
// Two-call buffers
// ----------------------------------------------------------------------------------------------------------

ember_status write_text(std::string_view text, char* buf, size_t cap, size_t* needed, const char* where) noexcept {
    *needed = text.size() + 1;
    if (!buf && cap == 0) return EMBER_OK;  // size query
    if (!buf) return fail(EMBER_ERR_INVALID_ARGUMENT, where, "buf is NULL but cap is not 0");
    if (cap < text.size() + 1) {
        char msg[128];  // no allocation: this function must not throw
        std::snprintf(msg, sizeof msg, "buffer too small: %zu bytes needed (with the NUL), %zu given", text.size() + 1, cap);
        return fail(EMBER_ERR_INVALID_ARGUMENT, where, msg);
    }
    if (!text.empty()) std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    return EMBER_OK;
}

}  // namespace

// One catch-all per entry point: ember::Error keeps its status, everything else is mapped, nothing escapes.
#define EMBER_TRY \
    clear_error(); \
    try {
#define EMBER_CATCH                                                                              \
    }                                                                                            \
    catch (const ember::Error& e) {                                                              \
        return fail(from_cpp(e.status()), __func__, e.what());                                   \
    }                                                                                            \
    catch (const std::bad_alloc&) {                                                              \
        return fail(EMBER_ERR_OUT_OF_MEMORY, __func__, "out of memory");                         \
    }                                                                                            \
    catch (const std::exception& e) {                                                            \
        return fail(EMBER_ERR_INTERNAL, __func__, e.what());                                     \
    }                                                                                            \
    catch (...) {                                                                                \
        return fail(EMBER_ERR_INTERNAL, __func__, "unknown exception");                          \
    }

// Argument checks: EMBER_ERR_INVALID_ARGUMENT naming the function and the condition that failed.
#define EMBER_REQUIRE(cond, message) \
    do {                             \
        if (!(cond)) return fail(EMBER_ERR_INVALID_ARGUMENT, __func__, message); \
    } while (0)
#define EMBER_REQUIRE_PTR(p) EMBER_REQUIRE((p) != nullptr, #p " is NULL")

extern "C" {

// ----------------------------------------------------------------------------------------------------------
// Status, errors, version
// ----------------------------------------------------------------------------------------------------------

EMBER_API const char* ember_status_string(ember_status status) {
    const int v = static_cast<int>(status);
    if (v < EMBER_OK || v > EMBER_ERR_IO) return "unknown status";
    return ember::status_name(static_cast<ember::Status>(v));
}

EMBER_API const char* ember_last_error(void) { return t_error_static ? t_error_static : t_error.c_str(); }

EMBER_API const char* ember_version(void) { return ember::version(); }

EMBER_API uint32_t ember_abi_version(void) { return EMBER_ABI_VERSION; }

// ----------------------------------------------------------------------------------------------------------
// Models
// ----------------------------------------------------------------------------------------------------------

EMBER_API ember_status ember_model_params_init(ember_model_params* params) {
    clear_error();
    EMBER_REQUIRE_PTR(params);
    std::memset(static_cast<void*>(params), 0, sizeof *params);
    params->struct_size = sizeof *params;
    params->n_threads = 0;
    params->backend = nullptr;
    params->progress = nullptr;
    params->progress_user_data = nullptr;
    params->use_mmap = true;
    return EMBER_OK;
}

EMBER_API ember_status ember_model_load(const char* path, const ember_model_params* params, ember_model** out) {
    EMBER_TRY
    if (out) *out = nullptr;
    EMBER_REQUIRE_PTR(out);
    EMBER_REQUIRE_PTR(path);
    ember_model_params p;
    ember_model_params_init(&p);
    if (const ember_status st = read_params(params, p, kModelParamsV1, __func__); st != EMBER_OK) return st;
    EMBER_REQUIRE(p.n_threads >= 0, "params->n_threads is negative");

    ember::ModelParams mp;
    mp.backend = p.backend && *p.backend ? p.backend : "auto";
    mp.n_threads = p.n_threads;
    mp.use_mmap = p.use_mmap;
    if (p.progress) {
        const ember_progress_fn fn = p.progress;
        void* const ud = p.progress_user_data;
        mp.progress = [fn, ud](float f) { return fn(f, ud); };
    }
    ember::Model model = ember::Model::load(path, mp);
    ember::Tokenizer tok = model.tokenizer();
    *out = new ember_model{std::move(model), ember_tokenizer{std::move(tok), false}};
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API void ember_model_free(ember_model* model) { delete model; }

EMBER_API const ember_tokenizer* ember_model_tokenizer(const ember_model* model) {
    clear_error();
    if (!model) {
        fail(EMBER_ERR_INVALID_ARGUMENT, __func__, "model is NULL");
        return nullptr;
    }
    return &model->tokenizer;
}

#define EMBER_INT_GETTER(fn, type, arg, expr)                           \
    EMBER_API int32_t fn(const type* arg) {                             \
        clear_error();                                                  \
        if (!arg) {                                                     \
            fail(EMBER_ERR_INVALID_ARGUMENT, __func__, #arg " is NULL"); \
            return -1;                                                  \
        }                                                               \
        return static_cast<int32_t>(expr);                              \
    }

EMBER_INT_GETTER(ember_model_n_vocab, ember_model, model, model->model.n_vocab())
EMBER_INT_GETTER(ember_model_n_ctx_train, ember_model, model, model->model.n_ctx_train())
EMBER_INT_GETTER(ember_model_n_embd, ember_model, model, model->model.n_embd())
EMBER_INT_GETTER(ember_model_n_layers, ember_model, model, model->model.n_layers())

EMBER_API ember_status ember_model_meta(const ember_model* model, const char* key, char* buf, size_t cap,
                                        size_t* needed) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(needed);
    *needed = 0;
    EMBER_REQUIRE_PTR(model);
    EMBER_REQUIRE_PTR(key);
    const std::optional<std::string> v = model->model.meta(key);
    if (!v) return fail(EMBER_ERR_INVALID_ARGUMENT, __func__, ("no metadata key \"" + std::string(key) + "\"").c_str());
    return write_text(*v, buf, cap, needed, __func__);
    EMBER_CATCH
}

EMBER_API ember_status ember_model_chat_template(const ember_model* model, char* buf, size_t cap, size_t* needed) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(needed);
    *needed = 0;
    EMBER_REQUIRE_PTR(model);
    return write_text(model->model.chat_template(), buf, cap, needed, __func__);
    EMBER_CATCH
}

EMBER_API ember_status ember_estimate_memory(const char* path, int32_t n_ctx, int32_t n_batch, ember_memory_estimate* out) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(out);
    EMBER_REQUIRE_PTR(path);
    constexpr size_t kV1 = EMBER_FIELD_END(ember_memory_estimate, total);
    EMBER_REQUIRE(out->struct_size >= kV1 && out->struct_size <= sizeof(ember_memory_estimate),
                  "out->struct_size must be sizeof(ember_memory_estimate)");
    EMBER_REQUIRE(n_batch >= 0, "n_batch is negative");
    const ember::MemoryEstimate e = ember::estimate_memory(ember::inspect_model(path), n_ctx, n_batch ? n_batch : 512);
    ember_memory_estimate full;
    full.struct_size = out->struct_size;
    full.weights = e.weights;
    full.kv_cache = e.kv_cache;
    full.scratch = e.scratch;
    full.total = e.total;
    std::memcpy(static_cast<void*>(out), &full, out->struct_size);  // only what the caller's struct holds
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_chat_render(const ember_model* model, const char* template_source, const char* json,
                                         char* buf, size_t cap, size_t* needed) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(needed);
    *needed = 0;
    EMBER_REQUIRE_PTR(json);
    EMBER_REQUIRE(model || template_source, "model and template_source are both NULL");
    std::map<std::string, std::string> tokens;
    std::string source = template_source ? template_source : model->model.chat_template();
    if (source.empty()) source = ember::ChatTemplate::chatml();
    if (model) tokens = ember::chat_template_tokens(model->model.tokenizer());
    const std::string text = ember::ChatTemplate(source).render(json, tokens);
    return write_text(text, buf, cap, needed, __func__);
    EMBER_CATCH
}

// ----------------------------------------------------------------------------------------------------------
// Tokenizers
// ----------------------------------------------------------------------------------------------------------

EMBER_API ember_status ember_tokenizer_load(const char* path, ember_tokenizer** out) {
    EMBER_TRY
    if (out) *out = nullptr;
    EMBER_REQUIRE_PTR(out);
    EMBER_REQUIRE_PTR(path);
    *out = new ember_tokenizer{ember::Tokenizer::from_gguf(path), true};
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API void ember_tokenizer_free(ember_tokenizer* tokenizer) {
    if (tokenizer && tokenizer->owned) delete tokenizer;
}

EMBER_INT_GETTER(ember_tokenizer_n_vocab, ember_tokenizer, tokenizer, tokenizer->tok.n_vocab())

EMBER_API ember_status ember_tokenize(const ember_tokenizer* tokenizer, const char* text, size_t len, int32_t* out,
                                      int32_t cap, uint32_t flags, int32_t* n_out) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(n_out);
    *n_out = 0;
    EMBER_REQUIRE_PTR(tokenizer);
    EMBER_REQUIRE(text || len == 0, "text is NULL but len is not 0");
    EMBER_REQUIRE(cap >= 0, "cap is negative");
    EMBER_REQUIRE(out || cap == 0, "out is NULL but cap is not 0");
    EMBER_REQUIRE((flags & ~(EMBER_TOKENIZE_ADD_SPECIAL | EMBER_TOKENIZE_PARSE_SPECIAL)) == 0, "unknown flags");
    const std::vector<ember::Token> toks =
        tokenizer->tok.encode(std::string_view(text ? text : "", len), (flags & EMBER_TOKENIZE_ADD_SPECIAL) != 0,
                              (flags & EMBER_TOKENIZE_PARSE_SPECIAL) != 0);
    EMBER_REQUIRE(toks.size() <= static_cast<size_t>(std::numeric_limits<int32_t>::max()), "too many tokens");
    *n_out = static_cast<int32_t>(toks.size());
    if (!out) return EMBER_OK;  // size query
    if (toks.size() > static_cast<size_t>(cap)) {
        const std::string msg = "buffer too small: " + std::to_string(toks.size()) + " tokens needed, " +
                                std::to_string(cap) + " given";
        return fail(EMBER_ERR_INVALID_ARGUMENT, __func__, msg.c_str());
    }
    if (!toks.empty()) std::memcpy(out, toks.data(), toks.size() * sizeof(int32_t));
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_detokenize(const ember_tokenizer* tokenizer, const int32_t* tokens, int32_t n,
                                        uint32_t flags, char* buf, size_t cap, size_t* needed) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(needed);
    *needed = 0;
    EMBER_REQUIRE_PTR(tokenizer);
    EMBER_REQUIRE(n >= 0, "n is negative");
    EMBER_REQUIRE(tokens || n == 0, "tokens is NULL but n is not 0");
    EMBER_REQUIRE((flags & ~EMBER_DETOKENIZE_RENDER_SPECIAL) == 0, "unknown flags");
    const std::span<const ember::Token> span(tokens, tokens ? static_cast<size_t>(n) : 0);
    const std::string text = tokenizer->tok.decode(span, (flags & EMBER_DETOKENIZE_RENDER_SPECIAL) != 0);
    return write_text(text, buf, cap, needed, __func__);
    EMBER_CATCH
}

EMBER_API ember_status ember_token_piece(const ember_tokenizer* tokenizer, int32_t token, uint32_t flags, char* buf,
                                         size_t cap, size_t* needed) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(needed);
    *needed = 0;
    EMBER_REQUIRE_PTR(tokenizer);
    EMBER_REQUIRE((flags & ~EMBER_DETOKENIZE_RENDER_SPECIAL) == 0, "unknown flags");
    const std::string piece = tokenizer->tok.piece(token, (flags & EMBER_DETOKENIZE_RENDER_SPECIAL) != 0);
    return write_text(piece, buf, cap, needed, __func__);
    EMBER_CATCH
}

EMBER_INT_GETTER(ember_token_bos, ember_tokenizer, tokenizer, tokenizer->tok.bos())
EMBER_INT_GETTER(ember_token_eos, ember_tokenizer, tokenizer, tokenizer->tok.eos())
EMBER_INT_GETTER(ember_token_eot, ember_tokenizer, tokenizer, tokenizer->tok.eot())

EMBER_API bool ember_token_is_eog(const ember_tokenizer* tokenizer, int32_t token) {
    clear_error();
    if (!tokenizer) {
        fail(EMBER_ERR_INVALID_ARGUMENT, __func__, "tokenizer is NULL");
        return false;
    }
    return tokenizer->tok.is_end_of_generation(token);
}

// ----------------------------------------------------------------------------------------------------------
// Sessions
// ----------------------------------------------------------------------------------------------------------

EMBER_API ember_status ember_session_params_init(ember_session_params* params) {
    clear_error();
    EMBER_REQUIRE_PTR(params);
    std::memset(static_cast<void*>(params), 0, sizeof *params);
    const ember::SessionParams d;
    params->struct_size = sizeof *params;
    params->n_ctx = d.n_ctx;
    params->n_batch = d.n_batch;
    params->n_threads = d.n_threads;
    params->abort = nullptr;
    params->abort_user_data = nullptr;
    return EMBER_OK;
}

EMBER_API ember_status ember_session_create(const ember_model* model, const ember_session_params* params,
                                            ember_session** out) {
    EMBER_TRY
    if (out) *out = nullptr;
    EMBER_REQUIRE_PTR(out);
    EMBER_REQUIRE_PTR(model);
    ember_session_params p;
    ember_session_params_init(&p);
    if (const ember_status st = read_params(params, p, kSessionParamsV1, __func__); st != EMBER_OK) return st;
    EMBER_REQUIRE(p.n_ctx >= 0, "params->n_ctx is negative");
    EMBER_REQUIRE(p.n_batch >= 0, "params->n_batch is negative");
    EMBER_REQUIRE(p.n_threads >= 0, "params->n_threads is negative");

    auto h = std::make_unique<ember_session>();
    h->session.emplace(model->model, to_cpp(p));
    *out = h.release();
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API void ember_session_free(ember_session* session) {
    free_or_defer(session, [](ember_session& s) { s.session->cancel(); });
}

EMBER_API ember_status ember_session_prefill(ember_session* session, const int32_t* tokens, int32_t n) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(session);
    const InUse<ember_session> in_use(session);
    EMBER_REQUIRE_PTR(tokens);
    EMBER_REQUIRE(n > 0, "n must be positive");
    session->session->prefill(std::span<const ember::Token>(tokens, static_cast<size_t>(n)));
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_session_decode(ember_session* session, int32_t token) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(session);
    const InUse<ember_session> in_use(session);
    session->session->decode(token);
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_session_logits(const ember_session* session, const float** out, int32_t* n_vocab) {
    EMBER_TRY
    if (out) *out = nullptr;
    if (n_vocab) *n_vocab = 0;
    EMBER_REQUIRE_PTR(out);
    EMBER_REQUIRE_PTR(n_vocab);
    EMBER_REQUIRE_PTR(session);
    const std::span<const float> l = session->session->logits();
    *out = l.data();
    *n_vocab = static_cast<int32_t>(l.size());
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_INT_GETTER(ember_session_position, ember_session, session, session->session->position())
EMBER_INT_GETTER(ember_session_n_ctx, ember_session, session, session->session->n_ctx())

EMBER_API ember_status ember_session_rewind(ember_session* session, int32_t position) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(session);
    session->session->rewind(position);
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_session_reset(ember_session* session) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(session);
    session->session->reset();
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_session_cancel(ember_session* session) {
    clear_error();
    EMBER_REQUIRE_PTR(session);
    session->session->cancel();  // thread-safe and sticky until ember_session_clear_cancel
    return EMBER_OK;
}

EMBER_API ember_status ember_session_clear_cancel(ember_session* session) {
    clear_error();
    EMBER_REQUIRE_PTR(session);
    session->session->clear_cancel();
    return EMBER_OK;
}

EMBER_API ember_status ember_session_generate(ember_session* session, ember_sampler* sampler, int32_t max_tokens,
                                              ember_token_callback callback, void* user_data, int32_t* n_generated) {
    if (n_generated) *n_generated = 0;
    EMBER_TRY
    EMBER_REQUIRE_PTR(session);
    EMBER_REQUIRE_PTR(sampler);
    const InUse<ember_session> session_in_use(session);
    const InUse<ember_sampler> sampler_in_use(sampler);
    ember::GenerateParams gp;
    gp.max_tokens = max_tokens;
    std::function<bool(std::string_view, ember::Token)> on_text;
    if (callback)
        on_text = [callback, user_data](std::string_view text, ember::Token t) {
            return callback(text.data(), text.size(), t, user_data);
        };
    const int start = session->session->position();
    try {
        const ember::GenerateResult r = session->session->generate(sampler->sampler, gp, on_text);
        if (n_generated) *n_generated = static_cast<int32_t>(r.tokens.size());
    } catch (...) {
        // The tokens evaluated before the failure stay in the session: count those.
        if (n_generated) *n_generated = static_cast<int32_t>(session->session->position() - start);
        throw;
    }
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_session_save(const ember_session* session, const char* path) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(session);
    EMBER_REQUIRE_PTR(path);
    session->session->save(path);
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_session_load(ember_session* session, const char* path) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(session);
    const InUse<ember_session> in_use(session);
    EMBER_REQUIRE_PTR(path);
    session->session->load(path);
    return EMBER_OK;
    EMBER_CATCH
}

// ----------------------------------------------------------------------------------------------------------
// Chats
// ----------------------------------------------------------------------------------------------------------

EMBER_API ember_status ember_chat_params_init(ember_chat_params* params) {
    clear_error();
    EMBER_REQUIRE_PTR(params);
    std::memset(static_cast<void*>(params), 0, sizeof *params);
    params->struct_size = sizeof *params;
    params->system = nullptr;
    params->history = true;
    params->reserve = ember::ChatParams{}.reserve;
    params->strategy = EMBER_CHAT_WINDOW;
    return EMBER_OK;
}

EMBER_API ember_status ember_chat_create(const ember_model* model, const ember_session_params* session_params,
                                         const ember_chat_params* params, ember_chat** out) {
    EMBER_TRY
    if (out) *out = nullptr;
    EMBER_REQUIRE_PTR(out);
    EMBER_REQUIRE_PTR(model);
    ember_session_params sp;
    ember_session_params_init(&sp);
    if (const ember_status st = read_params(session_params, sp, kSessionParamsV1, __func__); st != EMBER_OK) return st;
    ember_chat_params p;
    ember_chat_params_init(&p);
    if (const ember_status st = read_params(params, p, kChatParamsV1, __func__); st != EMBER_OK) return st;
    EMBER_REQUIRE(sp.n_ctx >= 0 && sp.n_batch >= 0 && sp.n_threads >= 0, "session_params has a negative field");
    EMBER_REQUIRE(p.strategy >= EMBER_CHAT_WINDOW && p.strategy <= EMBER_CHAT_SUMMARY, "params->strategy is unknown");
    ember::ChatParams c;
    c.system = p.system ? p.system : "";
    c.history = p.history;
    c.reserve = p.reserve;
    c.strategy = static_cast<ember::ContextStrategy>(p.strategy);
    auto h = std::make_unique<ember_chat>();
    h->chat.emplace(model->model, to_cpp(sp), c);
    *out = h.release();
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API void ember_chat_free(ember_chat* chat) {
    free_or_defer(chat, [](ember_chat& c) { c.chat->session().cancel(); });
}

EMBER_API ember_status ember_chat_say(ember_chat* chat, ember_sampler* sampler, const char* user, int32_t max_tokens,
                                      ember_token_callback callback, void* user_data, int32_t* n_generated) {
    if (n_generated) *n_generated = 0;
    EMBER_TRY
    EMBER_REQUIRE_PTR(chat);
    EMBER_REQUIRE_PTR(sampler);
    EMBER_REQUIRE_PTR(user);
    const InUse<ember_chat> chat_in_use(chat);
    const InUse<ember_sampler> sampler_in_use(sampler);
    ember::GenerateParams gp;
    gp.max_tokens = max_tokens;
    std::function<bool(std::string_view, ember::Token)> on_text;
    if (callback)
        on_text = [callback, user_data](std::string_view text, ember::Token t) {
            return callback(text.data(), text.size(), t, user_data);
        };
    const ember::ChatTurn t = chat->chat->say(user, sampler->sampler, gp, on_text);
    if (n_generated) *n_generated = static_cast<int32_t>(t.reply.tokens.size());
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_chat_reset(ember_chat* chat) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(chat);
    chat->chat->reset();
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_INT_GETTER(ember_chat_n_messages, ember_chat, chat, chat->chat->messages().size())

EMBER_API ember_status ember_chat_save(const ember_chat* chat, const char* path) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(chat);
    EMBER_REQUIRE_PTR(path);
    chat->chat->save(path);
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_chat_load(ember_chat* chat, const char* path) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(chat);
    const InUse<ember_chat> in_use(chat);
    EMBER_REQUIRE_PTR(path);
    chat->chat->load(path);
    return EMBER_OK;
    EMBER_CATCH
}

// ----------------------------------------------------------------------------------------------------------
// Samplers
// ----------------------------------------------------------------------------------------------------------

EMBER_API ember_status ember_sampler_params_init(ember_sampler_params* params) {
    clear_error();
    EMBER_REQUIRE_PTR(params);
    std::memset(static_cast<void*>(params), 0, sizeof *params);
    const ember::SamplerParams d;
    params->struct_size = sizeof *params;
    params->temperature = d.temperature;
    params->top_k = d.top_k;
    params->top_p = d.top_p;
    params->min_p = d.min_p;
    params->repeat_penalty = d.repeat_penalty;
    params->penalty_last_n = d.penalty_last_n;
    params->frequency_penalty = d.frequency_penalty;
    params->presence_penalty = d.presence_penalty;
    params->seed = d.seed;
    return EMBER_OK;
}

EMBER_API ember_status ember_sampler_create(const ember_sampler_params* params, ember_sampler** out) {
    EMBER_TRY
    if (out) *out = nullptr;
    EMBER_REQUIRE_PTR(out);
    ember_sampler_params p;
    ember_sampler_params_init(&p);
    if (const ember_status st = read_params(params, p, kSamplerParamsV1, __func__); st != EMBER_OK) return st;
    ember::SamplerParams sp;
    sp.temperature = p.temperature;
    sp.top_k = p.top_k;
    sp.top_p = p.top_p;
    sp.min_p = p.min_p;
    sp.repeat_penalty = p.repeat_penalty;
    sp.penalty_last_n = p.penalty_last_n;
    sp.frequency_penalty = p.frequency_penalty;
    sp.presence_penalty = p.presence_penalty;
    sp.seed = p.seed;
    *out = new ember_sampler(ember::Sampler(sp));
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_sampler_create_greedy(ember_sampler** out) {
    EMBER_TRY
    if (out) *out = nullptr;
    EMBER_REQUIRE_PTR(out);
    *out = new ember_sampler(ember::Sampler::greedy());
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API void ember_sampler_free(ember_sampler* sampler) {
    free_or_defer(sampler, [](ember_sampler&) {});  // a generate using it runs to its end, then frees it
}

EMBER_API ember_status ember_sampler_sample(ember_sampler* sampler, const float* logits, int32_t n, int32_t* token) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(token);
    *token = -1;
    EMBER_REQUIRE_PTR(sampler);
    EMBER_REQUIRE_PTR(logits);
    EMBER_REQUIRE(n > 0, "n must be positive");
    *token = sampler->sampler.sample(std::span<const float>(logits, static_cast<size_t>(n)));
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_sampler_accept(ember_sampler* sampler, int32_t token) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(sampler);
    EMBER_REQUIRE(token >= 0, "token is negative");
    sampler->sampler.accept(token);
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_sampler_reset(ember_sampler* sampler) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(sampler);
    sampler->sampler.reset();
    return EMBER_OK;
    EMBER_CATCH
}

}  // extern "C"
