// ember's C ABI over the C++ API: argument checks, one catch-all per entry point, per-thread last error.
// Nothing here may throw past an exported function or abort.
#include "ember.h"

// The header maps the *_params_init names to the sized forms at call sites; here both are defined.
#undef ember_model_params_init
#undef ember_session_params_init
#undef ember_generate_params_init
#undef ember_chat_params_init
#undef ember_sampler_params_init

#include <atomic>
#include <cmath>
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
static_assert(EMBER_ERR_BUFFER_TOO_SMALL == static_cast<int>(ember::Status::BufferTooSmall));
static_assert(EMBER_ERR_NOT_FOUND == static_cast<int>(ember::Status::NotFound));
static_assert(EMBER_ERR_CALLBACK == static_cast<int>(ember::Status::Callback));
static_assert(EMBER_TOKEN_ATTR_UNKNOWN == ember::kTokenUnknown && EMBER_TOKEN_ATTR_UNUSED == ember::kTokenUnused &&
              EMBER_TOKEN_ATTR_NORMAL == ember::kTokenNormal && EMBER_TOKEN_ATTR_CONTROL == ember::kTokenControl &&
              EMBER_TOKEN_ATTR_USER_DEFINED == ember::kTokenUserDefined && EMBER_TOKEN_ATTR_BYTE == ember::kTokenByte &&
              EMBER_TOKEN_ATTR_LSTRIP == ember::kTokenLStrip && EMBER_TOKEN_ATTR_RSTRIP == ember::kTokenRStrip);
static_assert(EMBER_META_F64 == static_cast<int>(ember::MetaType::F64) && EMBER_META_ARRAY == static_cast<int>(ember::MetaType::Array));
static_assert(EMBER_SPECIAL_FIM_SEP == static_cast<int>(ember::SpecialToken::FimSep));
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

struct ember_adapter {
    ember::Adapter adapter;
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
    return v >= EMBER_OK && v <= EMBER_ERR_CALLBACK ? static_cast<ember_status>(v) : EMBER_ERR_INTERNAL;
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
constexpr size_t kGenerateParamsV1 = EMBER_FIELD_END(ember_generate_params, n_bias);
constexpr size_t kGenerateResultV1 = EMBER_FIELD_END(ember_generate_result, stop_index);

// A caller's struct larger than ours comes from a newer header: take it when every byte we do not know is
// zero (the default of every field appended from ABI 1 on), refuse it otherwise. Bounded: no header of ours
// will grow a struct past 64 KiB.
ember_status check_unknown_tail(const void* in, size_t caller_size, size_t our_size, const char* where) noexcept {
    if (caller_size > 65536) return fail(EMBER_ERR_INVALID_ARGUMENT, where, "struct_size is absurd (over 64 KiB)");
    const auto* bytes = static_cast<const unsigned char*>(in);
    for (size_t i = our_size; i < caller_size; ++i)
        if (bytes[i] != 0) {
            char msg[200];  // no allocation: this function must not throw
            std::snprintf(msg, sizeof msg, "the struct sets a field at byte %zu that this library (ember %s, %zu-byte struct) "
                          "does not know; it was built for a newer ember", i, ember::version(), our_size);
            return fail(EMBER_ERR_UNSUPPORTED, where, msg);
        }
    return EMBER_OK;
}

// Fields are only ever appended (and never into an earlier version's tail padding), so a prefix copy of
// struct_size bytes takes exactly the fields the caller knows about.
template <typename T>
ember_status read_params(const T* in, T& out, size_t min_size, const char* where) noexcept {
    if (!in) return EMBER_OK;
    if (in->struct_size < min_size) {
        char msg[160];  // no allocation: this function must not throw
        std::snprintf(msg, sizeof msg, "struct_size %u is below %zu; initialise the struct with its *_params_init function",
                      static_cast<unsigned>(in->struct_size), min_size);
        return fail(EMBER_ERR_INVALID_ARGUMENT, where, msg);
    }
    if (in->struct_size > sizeof(T))
        if (const ember_status st = check_unknown_tail(in, in->struct_size, sizeof(T), where); st != EMBER_OK) return st;
    std::memcpy(static_cast<void*>(&out), in, std::min<size_t>(in->struct_size, sizeof(T)));
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
        return fail(EMBER_ERR_BUFFER_TOO_SMALL, where, msg);
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
// EMBER_CATCH_AS(where) and EMBER_REQUIRE_AS(where, ...) are for a helper shared by several entry points:
// the message names `where`, the function the caller called, rather than the helper.
#define EMBER_CATCH_AS(where)                                                                    \
    }                                                                                            \
    catch (const ember::Error& e) {                                                              \
        return fail(from_cpp(e.status()), where, e.what());                                      \
    }                                                                                            \
    catch (const std::bad_alloc&) {                                                              \
        return fail(EMBER_ERR_OUT_OF_MEMORY, where, "out of memory");                            \
    }                                                                                            \
    catch (const std::exception& e) {                                                            \
        return fail(EMBER_ERR_INTERNAL, where, e.what());                                        \
    }                                                                                            \
    catch (...) {                                                                                \
        return fail(EMBER_ERR_INTERNAL, where, "unknown exception");                             \
    }
#define EMBER_CATCH EMBER_CATCH_AS(__func__)

// Argument checks: EMBER_ERR_INVALID_ARGUMENT naming the function and the condition that failed.
#define EMBER_REQUIRE_AS(where, cond, message)                                 \
    do {                                                                       \
        if (!(cond)) return fail(EMBER_ERR_INVALID_ARGUMENT, where, message); \
    } while (0)
#define EMBER_REQUIRE(cond, message) EMBER_REQUIRE_AS(__func__, cond, message)
#define EMBER_REQUIRE_PTR(p) EMBER_REQUIRE((p) != nullptr, #p " is NULL")
#define EMBER_REQUIRE_PTR_AS(where, p) EMBER_REQUIRE_AS(where, (p) != nullptr, #p " is NULL")

// The definitions below take their C linkage from their declarations in ember.h, so helpers may sit
// between them in anonymous namespaces (which must not have C linkage).

// ----------------------------------------------------------------------------------------------------------
// Status, errors, version
// ----------------------------------------------------------------------------------------------------------

EMBER_API const char* ember_status_string(ember_status status) {
    const int v = static_cast<int>(status);
    if (v < EMBER_OK || v > EMBER_ERR_CALLBACK) return "unknown status";
    return ember::status_name(static_cast<ember::Status>(v));
}

EMBER_API const char* ember_last_error(void) { return t_error_static ? t_error_static : t_error.c_str(); }

EMBER_API const char* ember_version(void) { return ember::version(); }

EMBER_API uint32_t ember_abi_version(void) { return EMBER_ABI_VERSION; }

EMBER_API uint32_t ember_version_number(void) {
    // Parsed from the library's own version string, so the number can never disagree with it.
    uint32_t parts[3] = {0, 0, 0};
    const char* v = ember::version();
    for (int i = 0; i < 3 && *v; ++i) {
        while (*v >= '0' && *v <= '9') parts[i] = parts[i] * 10 + static_cast<uint32_t>(*v++ - '0');
        if (*v == '.') ++v;
    }
    return parts[0] * 1000000u + parts[1] * 1000u + parts[2];
}

EMBER_API void ember_set_log_callback(ember_log_fn callback, void* user_data) {
    try {
        if (!callback) {
            ember::set_log_callback({});
            return;
        }
        ember::set_log_callback([callback, user_data](ember::LogLevel level, std::string_view message) {
            const std::string text(message);  // NUL-terminated for C
            callback(static_cast<int32_t>(level), text.c_str(), user_data);
        });
    } catch (...) {
        // Out of memory copying a small function object: keep the previous callback.
    }
}

namespace {
// The names from ember::backends(), kept for the process's lifetime so ember_backend_name can hand out
// static strings.
const std::vector<std::string>& backend_names() noexcept {
    static const std::vector<std::string> names = [] {
        try {
            return ember::backends();
        } catch (...) {
            return std::vector<std::string>{};
        }
    }();
    return names;
}
}  // namespace

EMBER_API int32_t ember_backend_count(void) { return static_cast<int32_t>(backend_names().size()); }

EMBER_API const char* ember_backend_name(int32_t index) {
    const auto& names = backend_names();
    return index >= 0 && static_cast<size_t>(index) < names.size() ? names[static_cast<size_t>(index)].c_str() : nullptr;
}

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
    params->quantize = nullptr;
    return EMBER_OK;
}

namespace {
// A caller's model params (already read and checked) as the C++ API takes them.
ember::ModelParams to_cpp(const ember_model_params& p) {
    ember::ModelParams mp;
    mp.backend = p.backend && *p.backend ? p.backend : "auto";
    mp.n_threads = p.n_threads;
    mp.use_mmap = p.use_mmap;
    if (p.quantize) mp.quantize = p.quantize;
    if (p.progress) {
        const ember_progress_fn fn = p.progress;
        void* const ud = p.progress_user_data;
        mp.progress = [fn, ud](float f) { return fn(f, ud); };
    }
    return mp;
}

ember_model* new_model_handle(ember::Model model) {
    ember::Tokenizer tok = model.tokenizer();
    return new ember_model{std::move(model), ember_tokenizer{std::move(tok), false}};
}
}  // namespace

EMBER_API ember_status ember_model_load(const char* path, const ember_model_params* params, ember_model** out) {
    EMBER_TRY
    if (out) *out = nullptr;
    EMBER_REQUIRE_PTR(out);
    EMBER_REQUIRE_PTR(path);
    ember_model_params p;
    ember_model_params_init(&p);
    if (const ember_status st = read_params(params, p, kModelParamsV1, __func__); st != EMBER_OK) return st;
    EMBER_REQUIRE(p.n_threads >= 0, "params->n_threads is negative");
    EMBER_REQUIRE(p.quantize == nullptr || strnlen(p.quantize, 65) <= 64, "params->quantize is longer than 64 bytes");
    *out = new_model_handle(ember::Model::load(path, to_cpp(p)));
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_model_load_from_memory(const void* data, size_t size, const ember_model_params* params,
                                                    ember_model** out) {
    EMBER_TRY
    if (out) *out = nullptr;
    EMBER_REQUIRE_PTR(out);
    EMBER_REQUIRE(data || size == 0, "data is NULL but size is not 0");
    ember_model_params p;
    ember_model_params_init(&p);
    if (const ember_status st = read_params(params, p, kModelParamsV1, __func__); st != EMBER_OK) return st;
    EMBER_REQUIRE(p.n_threads >= 0, "params->n_threads is negative");
    EMBER_REQUIRE(p.quantize == nullptr || strnlen(p.quantize, 65) <= 64, "params->quantize is longer than 64 bytes");
    const std::span<const uint8_t> bytes(static_cast<const uint8_t*>(data), data ? size : 0);
    *out = new_model_handle(ember::Model::load_from_memory(bytes, to_cpp(p)));
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API void ember_model_free(ember_model* model) { delete model; }

EMBER_API const ember_tokenizer* ember_model_tokenizer(const ember_model* model) {
    return model ? &model->tokenizer : nullptr;
}

// Getters answer -1 for a NULL handle and leave the last error alone (so reading a value between a failed
// call and ember_last_error loses nothing). Their expressions cannot throw.
#define EMBER_GETTER(fn, result, type, arg, expr)    \
    EMBER_API result fn(const type* arg) {           \
        if (!arg) return -1;                         \
        return static_cast<result>(expr);            \
    }
#define EMBER_INT_GETTER(fn, type, arg, expr) EMBER_GETTER(fn, int32_t, type, arg, expr)

EMBER_INT_GETTER(ember_model_n_vocab, ember_model, model, model->model.n_vocab())
EMBER_INT_GETTER(ember_model_n_ctx_train, ember_model, model, model->model.n_ctx_train())
EMBER_INT_GETTER(ember_model_n_embd, ember_model, model, model->model.n_embd())
EMBER_INT_GETTER(ember_model_n_layers, ember_model, model, model->model.n_layers())
EMBER_GETTER(ember_model_n_params, int64_t, ember_model, model, model->model.info().n_params)
EMBER_GETTER(ember_model_size, int64_t, ember_model, model, model->model.info().n_tensor_bytes)

// The text getters: a model's string through the two-call pattern.
#define EMBER_MODEL_TEXT(fn, expr)                                                         \
    EMBER_API ember_status fn(const ember_model* model, char* buf, size_t cap, size_t* needed) { \
        EMBER_TRY                                                                          \
        EMBER_REQUIRE_PTR(needed);                                                         \
        *needed = 0;                                                                       \
        EMBER_REQUIRE_PTR(model);                                                          \
        return write_text(expr, buf, cap, needed, __func__);                               \
        EMBER_CATCH                                                                        \
    }
EMBER_MODEL_TEXT(ember_model_architecture, model->model.info().architecture)
EMBER_MODEL_TEXT(ember_model_name, model->model.info().name)
EMBER_MODEL_TEXT(ember_model_backend, model->model.backend())
EMBER_MODEL_TEXT(ember_model_chat_template, model->model.chat_template())

EMBER_API ember_status ember_model_meta(const ember_model* model, const char* key, char* buf, size_t cap,
                                        size_t* needed) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(needed);
    *needed = 0;
    EMBER_REQUIRE_PTR(model);
    EMBER_REQUIRE_PTR(key);
    const std::optional<std::string> v = model->model.meta(key);
    if (!v) return fail(EMBER_ERR_NOT_FOUND, __func__, ("no metadata key \"" + std::string(key) + "\"").c_str());
    return write_text(*v, buf, cap, needed, __func__);
    EMBER_CATCH
}

EMBER_INT_GETTER(ember_model_meta_count, ember_model, model, model->model.info().metadata.size())

EMBER_API ember_status ember_model_meta_key(const ember_model* model, int32_t index, char* buf, size_t cap,
                                            size_t* needed) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(needed);
    *needed = 0;
    EMBER_REQUIRE_PTR(model);
    const auto& md = model->model.info().metadata;
    EMBER_REQUIRE(index >= 0 && static_cast<size_t>(index) < md.size(), "index is outside [0, ember_model_meta_count)");
    return write_text(md[static_cast<size_t>(index)].first, buf, cap, needed, __func__);
    EMBER_CATCH
}

EMBER_API ember_status ember_model_meta_type(const ember_model* model, const char* key, int32_t* type) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(type);
    *type = -1;
    EMBER_REQUIRE_PTR(model);
    EMBER_REQUIRE_PTR(key);
    const std::optional<ember::MetaType> t = model->model.meta_type(key);
    if (!t) return fail(EMBER_ERR_NOT_FOUND, __func__, ("no metadata key \"" + std::string(key) + "\"").c_str());
    *type = static_cast<int32_t>(*t);
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_model_meta_json(const ember_model* model, const char* key, char* buf, size_t cap,
                                             size_t* needed) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(needed);
    *needed = 0;
    EMBER_REQUIRE_PTR(model);
    EMBER_REQUIRE_PTR(key);
    const std::optional<std::string> v = model->model.meta_json(key);
    if (!v) return fail(EMBER_ERR_NOT_FOUND, __func__, ("no metadata key \"" + std::string(key) + "\"").c_str());
    return write_text(*v, buf, cap, needed, __func__);
    EMBER_CATCH
}

namespace {
// ember_estimate_memory and ember_estimate_memory_quantized: `where` is the one the caller called.
ember_status estimate_memory_as(const char* where, const char* path, int32_t n_ctx, int32_t n_batch,
                                const char* quantize, ember_memory_estimate* out) noexcept {
    EMBER_TRY
    EMBER_REQUIRE_PTR_AS(where, out);
    EMBER_REQUIRE_PTR_AS(where, path);
    constexpr size_t kV1 = EMBER_FIELD_END(ember_memory_estimate, total);
    EMBER_REQUIRE_AS(where, out->struct_size >= kV1 && out->struct_size <= sizeof(ember_memory_estimate),
                     "out->struct_size must be sizeof(ember_memory_estimate)");
    EMBER_REQUIRE_AS(where, n_batch >= 0, "n_batch is negative");
    EMBER_REQUIRE_AS(where, quantize == nullptr || strnlen(quantize, 65) <= 64, "quantize is longer than 64 bytes");
    const ember::MemoryEstimate e = ember::estimate_memory(ember::inspect_model(path), n_ctx, n_batch ? n_batch : 512,
                                                           quantize ? quantize : "");
    ember_memory_estimate full;
    full.struct_size = out->struct_size;
    full.weights = e.weights;
    full.kv_cache = e.kv_cache;
    full.scratch = e.scratch;
    full.total = e.total;
    std::memcpy(static_cast<void*>(out), &full, out->struct_size);  // only what the caller's struct holds
    return EMBER_OK;
    EMBER_CATCH_AS(where)
}
}  // namespace

EMBER_API ember_status ember_estimate_memory(const char* path, int32_t n_ctx, int32_t n_batch, ember_memory_estimate* out) {
    return estimate_memory_as(__func__, path, n_ctx, n_batch, nullptr, out);
}

EMBER_API ember_status ember_estimate_memory_quantized(const char* path, int32_t n_ctx, int32_t n_batch,
                                                       const char* quantize, ember_memory_estimate* out) {
    return estimate_memory_as(__func__, path, n_ctx, n_batch, quantize, out);
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
        return fail(EMBER_ERR_BUFFER_TOO_SMALL, __func__, msg.c_str());
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
    return tokenizer && tokenizer->tok.is_end_of_generation(token);
}

EMBER_API uint32_t ember_token_attr(const ember_tokenizer* tokenizer, int32_t token) {
    return tokenizer ? tokenizer->tok.attributes(token) : 0u;
}

EMBER_API int32_t ember_token_special(const ember_tokenizer* tokenizer, int32_t which) {
    if (!tokenizer || which < EMBER_SPECIAL_BOS || which > EMBER_SPECIAL_FIM_SEP) return -1;
    return tokenizer->tok.special(static_cast<ember::SpecialToken>(which));
}

EMBER_INT_GETTER(ember_tokenizer_add_bos, ember_tokenizer, tokenizer, tokenizer->tok.add_bos() ? 1 : 0)
EMBER_INT_GETTER(ember_tokenizer_add_eos, ember_tokenizer, tokenizer, tokenizer->tok.add_eos() ? 1 : 0)

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

namespace {
// ember_session_prefill and ember_session_prefill_ex: `where` is the one the caller called.
ember_status session_prefill_as(const char* where, ember_session* session, const int32_t* tokens, int32_t n,
                                uint32_t flags) noexcept {
    EMBER_TRY
    EMBER_REQUIRE_PTR_AS(where, session);
    const InUse<ember_session> in_use(session);
    EMBER_REQUIRE_PTR_AS(where, tokens);
    EMBER_REQUIRE_AS(where, n > 0, "n must be positive");
    EMBER_REQUIRE_AS(where, (flags & ~EMBER_PREFILL_ALL_LOGITS) == 0, "unknown flags");
    session->session->prefill(std::span<const ember::Token>(tokens, static_cast<size_t>(n)),
                              (flags & EMBER_PREFILL_ALL_LOGITS) != 0);
    return EMBER_OK;
    EMBER_CATCH_AS(where)
}
}  // namespace

EMBER_API ember_status ember_session_prefill_ex(ember_session* session, const int32_t* tokens, int32_t n,
                                                uint32_t flags) {
    return session_prefill_as(__func__, session, tokens, n, flags);
}

EMBER_API ember_status ember_session_prefill(ember_session* session, const int32_t* tokens, int32_t n) {
    return session_prefill_as(__func__, session, tokens, n, 0);
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

EMBER_API ember_status ember_session_logits_at(const ember_session* session, int32_t i, const float** out,
                                               int32_t* n_vocab) {
    EMBER_TRY
    if (out) *out = nullptr;
    if (n_vocab) *n_vocab = 0;
    EMBER_REQUIRE_PTR(out);
    EMBER_REQUIRE_PTR(n_vocab);
    EMBER_REQUIRE_PTR(session);
    const std::span<const float> l = session->session->logits_at(i);
    *out = l.data();
    *n_vocab = static_cast<int32_t>(l.size());
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_session_tokens(const ember_session* session, int32_t* out, int32_t cap, int32_t* n_out) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(n_out);
    *n_out = 0;
    EMBER_REQUIRE_PTR(session);
    EMBER_REQUIRE(cap >= 0, "cap is negative");
    EMBER_REQUIRE(out || cap == 0, "out is NULL but cap is not 0");
    const std::vector<ember::Token>& toks = session->session->tokens();
    *n_out = static_cast<int32_t>(toks.size());
    if (!out) return EMBER_OK;  // size query
    if (toks.size() > static_cast<size_t>(cap))
        return fail(EMBER_ERR_BUFFER_TOO_SMALL, __func__, "buffer too small for the session's tokens; *n_out says how many");
    if (!toks.empty()) std::memcpy(out, toks.data(), toks.size() * sizeof(int32_t));
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_INT_GETTER(ember_session_position, ember_session, session, session->session->position())
EMBER_INT_GETTER(ember_session_n_ctx, ember_session, session, session->session->n_ctx())

// ----------------------------------------------------------------------------------------------------------
// LoRA adapters
// ----------------------------------------------------------------------------------------------------------

EMBER_API ember_status ember_adapter_load(const ember_model* model, const char* path, ember_adapter** out) {
    EMBER_TRY
    if (out) *out = nullptr;
    EMBER_REQUIRE_PTR(out);
    EMBER_REQUIRE_PTR(model);
    EMBER_REQUIRE_PTR(path);
    *out = new ember_adapter{ember::Adapter::load(model->model, path)};
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API void ember_adapter_free(ember_adapter* adapter) { delete adapter; }

EMBER_INT_GETTER(ember_adapter_rank, ember_adapter, adapter, adapter->adapter.rank())
EMBER_INT_GETTER(ember_adapter_n_targets, ember_adapter, adapter, adapter->adapter.n_targets())

EMBER_API ember_status ember_session_set_adapters(ember_session* session, const ember_adapter* const* adapters,
                                                  const float* scales, int32_t n) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(session);
    const InUse<ember_session> in_use(session);
    EMBER_REQUIRE(n >= 0 && n <= 64, "n must be in [0, 64]");
    EMBER_REQUIRE(n == 0 || (adapters && scales), "adapters or scales is NULL but n is not 0");
    std::vector<ember::AdapterScale> list;
    for (int32_t i = 0; i < n; ++i) {
        EMBER_REQUIRE(adapters[i] != nullptr, "an adapter is NULL");
        EMBER_REQUIRE(std::isfinite(scales[i]), "a scale is NaN or infinite");
        list.push_back({adapters[i]->adapter, scales[i]});
    }
    session->session->set_adapters(list);  // checks the rest: model, duplicates, range
    return EMBER_OK;
    EMBER_CATCH
}

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

namespace {

// The stream callbacks as the C++ API takes them. The text gets a NUL after it (a std::string_view from
// the library need not have one).
std::function<bool(std::string_view, ember::Token)> on_text_of(ember_token_callback callback, void* user_data) {
    if (!callback) return {};
    return [callback, user_data, text = std::string()](std::string_view piece, ember::Token t) mutable {
        text.assign(piece);
        return callback(text.c_str(), text.size(), t, user_data);
    };
}

std::function<bool(std::string_view, ember::Token)> on_text_of(ember_stream_fn stream, void* user_data) {
    if (!stream) return {};
    return [stream, user_data, text = std::string()](std::string_view piece, ember::Token t) mutable {
        text.assign(piece);
        const int32_t r = stream(text.c_str(), text.size(), t, user_data);
        if (r == EMBER_STREAM_CONTINUE) return true;
        if (r == EMBER_STREAM_STOP) return false;
        throw ember::Error(ember::Status::Callback, "the stream callback returned " + std::to_string(r) + " (an error)");
    };
}

int32_t stop_reason(ember::GenerateResult::Stop s) noexcept {
    switch (s) {
        case ember::GenerateResult::Stop::Length: return EMBER_STOP_LENGTH;
        case ember::GenerateResult::Stop::EndOfGeneration: return EMBER_STOP_EOG;
        case ember::GenerateResult::Stop::Callback: return EMBER_STOP_CALLBACK;
        case ember::GenerateResult::Stop::ContextFull: return EMBER_STOP_CONTEXT_FULL;
        case ember::GenerateResult::Stop::StopString: return EMBER_STOP_STRING;
    }
    return EMBER_STOP_LENGTH;
}

// Reads and checks a caller's generate params into the C++ form (stream callback aside).
ember_status read_generate_params(const ember_generate_params* in, int32_t n_vocab, ember_generate_params& p,
                                  ember::GenerateParams& gp, const char* where) {
    ember_generate_params_init(&p);
    if (const ember_status st = read_params(in, p, kGenerateParamsV1, where); st != EMBER_OK) return st;
    if (p.n_stop < 0 || p.n_stop > 64) return fail(EMBER_ERR_INVALID_ARGUMENT, where, "n_stop is outside [0, 64]");
    if (p.n_stop > 0 && !p.stop) return fail(EMBER_ERR_INVALID_ARGUMENT, where, "stop is NULL but n_stop is not 0");
    if (p.n_bias < 0 || p.n_bias > n_vocab) return fail(EMBER_ERR_INVALID_ARGUMENT, where, "n_bias is outside [0, n_vocab]");
    if (p.n_bias > 0 && (!p.bias_tokens || !p.bias_values))
        return fail(EMBER_ERR_INVALID_ARGUMENT, where, "bias_tokens or bias_values is NULL but n_bias is not 0");
    gp.max_tokens = p.max_tokens;
    gp.stop_at_eog = p.stop_at_eog != 0;
    for (int32_t i = 0; i < p.n_stop; ++i) {
        if (!p.stop[i]) return fail(EMBER_ERR_INVALID_ARGUMENT, where, "a stop string is NULL");
        gp.stop.emplace_back(p.stop[i]);
    }
    for (int32_t i = 0; i < p.n_bias; ++i) gp.logit_bias.emplace_back(p.bias_tokens[i], p.bias_values[i]);
    if (p.tokens_cap < 0 || (p.tokens_cap > 0 && !p.tokens))
        return fail(EMBER_ERR_INVALID_ARGUMENT, where, "tokens_cap is negative, or tokens is NULL but tokens_cap is not 0");
    return EMBER_OK;
}

// Hands the sampled ids to the caller's array, as far as it reaches.
void copy_tokens(const ember::GenerateResult& r, const ember_generate_params& p) noexcept {
    const size_t n = std::min(r.tokens.size(), static_cast<size_t>(p.tokens_cap));
    if (n) std::memcpy(p.tokens, r.tokens.data(), n * sizeof(int32_t));
}

// Copies what the caller's result struct holds.
void write_generate_result(const ember::GenerateResult& r, ember_generate_result* out) noexcept {
    if (!out) return;
    ember_generate_result full;
    full.struct_size = out->struct_size;
    full.n_generated = static_cast<int32_t>(r.tokens.size());
    full.stop_reason = stop_reason(r.stop);
    full.stop_index = r.stop == ember::GenerateResult::Stop::StopString ? r.stop_index : -1;
    std::memcpy(static_cast<void*>(out), &full, std::min<size_t>(out->struct_size, sizeof full));
}

ember_status check_result_struct(const ember_generate_result* out, const char* where) noexcept {
    if (out && (out->struct_size < kGenerateResultV1 || out->struct_size > 65536))
        return fail(EMBER_ERR_INVALID_ARGUMENT, where, "result->struct_size must be sizeof(ember_generate_result)");
    return EMBER_OK;
}

}  // namespace

EMBER_API ember_status ember_generate_params_init(ember_generate_params* params) {
    clear_error();
    EMBER_REQUIRE_PTR(params);
    std::memset(static_cast<void*>(params), 0, sizeof *params);
    params->struct_size = sizeof *params;
    params->max_tokens = ember::GenerateParams{}.max_tokens;
    params->stop_at_eog = 1;
    return EMBER_OK;
}

EMBER_API ember_status ember_session_generate_ex(ember_session* session, ember_sampler* sampler,
                                                 const ember_generate_params* params, ember_generate_result* result) {
    EMBER_TRY
    if (const ember_status st = check_result_struct(result, __func__); st != EMBER_OK) return st;
    ember::GenerateResult r;
    write_generate_result(r, result);
    EMBER_REQUIRE_PTR(session);
    EMBER_REQUIRE_PTR(sampler);
    const InUse<ember_session> session_in_use(session);
    const InUse<ember_sampler> sampler_in_use(sampler);
    ember_generate_params p;
    ember::GenerateParams gp;
    if (const ember_status st = read_generate_params(params, session->session->model().n_vocab(), p, gp, __func__); st != EMBER_OK)
        return st;
    try {
        session->session->generate(sampler->sampler, gp, on_text_of(p.stream, p.stream_user_data), r);
    } catch (...) {
        write_generate_result(r, result);  // what was sampled before the failure
        copy_tokens(r, p);
        throw;
    }
    copy_tokens(r, p);
    write_generate_result(r, result);
    return EMBER_OK;
    EMBER_CATCH
}

struct ember_generation {
    ember_generation(ember_session* s, ember_sampler* smp) : session_in_use(s), sampler_in_use(smp) {}
    // Held for the generation's lifetime: a free of either handle meanwhile is deferred until this one goes.
    InUse<ember_session> session_in_use;
    InUse<ember_sampler> sampler_in_use;
    std::optional<ember::Generation> gen;
    ember_generate_params params;  // for its tokens array
    std::string text;              // the piece last handed out
};

EMBER_API ember_status ember_generation_start(ember_session* session, ember_sampler* sampler,
                                              const ember_generate_params* params, ember_generation** out) {
    EMBER_TRY
    if (out) *out = nullptr;
    EMBER_REQUIRE_PTR(out);
    EMBER_REQUIRE_PTR(session);
    EMBER_REQUIRE_PTR(sampler);
    auto g = std::make_unique<ember_generation>(session, sampler);
    ember::GenerateParams gp;
    if (const ember_status st = read_generate_params(params, session->session->model().n_vocab(), g->params, gp, __func__);
        st != EMBER_OK)
        return st;
    EMBER_REQUIRE(g->params.stream == nullptr, "params->stream must be NULL: a generation hands its pieces out");
    g->gen.emplace(session->session->start_generation(sampler->sampler, gp));
    *out = g.release();
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_generation_next(ember_generation* generation, const char** text, size_t* len,
                                             int32_t* token) {
    EMBER_TRY
    if (text) *text = nullptr;
    if (len) *len = 0;
    if (token) *token = -1;
    EMBER_REQUIRE_PTR(generation);
    EMBER_REQUIRE_PTR(text);
    EMBER_REQUIRE_PTR(len);
    EMBER_REQUIRE_PTR(token);
    std::optional<ember::Generation::Piece> p;
    try {
        p = generation->gen->next();
    } catch (...) {
        copy_tokens(generation->gen->result(), generation->params);
        throw;
    }
    copy_tokens(generation->gen->result(), generation->params);
    if (!p) return EMBER_OK;
    generation->text = std::move(p->text);
    *text = generation->text.c_str();
    *len = generation->text.size();
    *token = p->token;
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_generation_result(const ember_generation* generation, ember_generate_result* result) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(generation);
    EMBER_REQUIRE_PTR(result);
    if (const ember_status st = check_result_struct(result, __func__); st != EMBER_OK) return st;
    write_generate_result(generation->gen->result(), result);
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API void ember_generation_free(ember_generation* generation) {
    try {
        delete generation;  // lets go of the session and sampler (a free asked meanwhile happens now)
    } catch (...) {
        // Destructors here do not throw; nothing may escape a C entry point regardless.
    }
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
    ember::GenerateResult r;
    try {
        session->session->generate(sampler->sampler, gp, on_text_of(callback, user_data), r);
    } catch (...) {
        if (n_generated) *n_generated = static_cast<int32_t>(r.tokens.size());  // sampled (and streamed) before it
        throw;
    }
    if (n_generated) *n_generated = static_cast<int32_t>(r.tokens.size());
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
    const ember::ChatTurn t = chat->chat->say(user, sampler->sampler, gp, on_text_of(callback, user_data));
    if (n_generated) *n_generated = static_cast<int32_t>(t.reply.tokens.size());
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_chat_say_ex(ember_chat* chat, ember_sampler* sampler, const char* user,
                                         const ember_generate_params* params, ember_generate_result* result) {
    EMBER_TRY
    if (const ember_status st = check_result_struct(result, __func__); st != EMBER_OK) return st;
    write_generate_result(ember::GenerateResult{}, result);
    EMBER_REQUIRE_PTR(chat);
    EMBER_REQUIRE_PTR(sampler);
    EMBER_REQUIRE_PTR(user);
    const InUse<ember_chat> chat_in_use(chat);
    const InUse<ember_sampler> sampler_in_use(sampler);
    ember_generate_params p;
    ember::GenerateParams gp;
    if (const ember_status st = read_generate_params(params, chat->chat->session().model().n_vocab(), p, gp, __func__); st != EMBER_OK)
        return st;
    const ember::ChatTurn t = chat->chat->say(user, sampler->sampler, gp, on_text_of(p.stream, p.stream_user_data));
    copy_tokens(t.reply, p);
    write_generate_result(t.reply, result);
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

EMBER_API ember_status ember_chat_cancel(ember_chat* chat) {
    clear_error();
    EMBER_REQUIRE_PTR(chat);
    chat->chat->session().cancel();
    return EMBER_OK;
}

EMBER_API ember_status ember_chat_clear_cancel(ember_chat* chat) {
    clear_error();
    EMBER_REQUIRE_PTR(chat);
    chat->chat->session().clear_cancel();
    return EMBER_OK;
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

EMBER_API ember_status ember_sampler_set_grammar(ember_sampler* sampler, const ember_model* model, const char* gbnf) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(sampler);
    EMBER_REQUIRE_PTR(model);
    sampler->sampler.set_grammar(model->model.tokenizer(), gbnf ? gbnf : "");
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_sampler_set_json_schema(ember_sampler* sampler, const ember_model* model,
                                                     const char* schema_json) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(sampler);
    EMBER_REQUIRE_PTR(model);
    const std::string gbnf = schema_json && *schema_json ? ember::json_schema_to_grammar(schema_json) : ember::json_grammar();
    sampler->sampler.set_grammar(model->model.tokenizer(), gbnf);
    return EMBER_OK;
    EMBER_CATCH
}

EMBER_API ember_status ember_json_schema_to_grammar(const char* schema_json, char* buf, size_t cap, size_t* needed) {
    EMBER_TRY
    EMBER_REQUIRE_PTR(needed);
    *needed = 0;
    EMBER_REQUIRE_PTR(schema_json);
    return write_text(ember::json_schema_to_grammar(schema_json), buf, cap, needed, __func__);
    EMBER_CATCH
}

EMBER_API ember_status ember_sampler_seed(const ember_sampler* sampler, uint64_t* seed) {
    clear_error();
    EMBER_REQUIRE_PTR(seed);
    *seed = 0;
    EMBER_REQUIRE_PTR(sampler);
    *seed = sampler->sampler.seed();
    return EMBER_OK;
}


// ----------------------------------------------------------------------------------------------------------
// Sized initialisers: exactly `size` bytes written, whatever the caller's header version.
// ----------------------------------------------------------------------------------------------------------

namespace {
template <typename T>
ember_status init_sized(ember_status (*init)(T*), T* params, size_t size, size_t min_size, const char* where) noexcept {
    if (!params) return fail(EMBER_ERR_INVALID_ARGUMENT, where, "params is NULL");
    if (size < min_size || size > 65536) {
        char msg[128];
        std::snprintf(msg, sizeof msg, "size %zu is outside [%zu, 65536]: pass sizeof(*params)", size, min_size);
        return fail(EMBER_ERR_INVALID_ARGUMENT, where, msg);
    }
    T full;
    init(&full);
    std::memset(static_cast<void*>(params), 0, size);  // fields only the caller knows: zero, their default
    std::memcpy(static_cast<void*>(params), &full, std::min(size, sizeof full));
    params->struct_size = static_cast<uint32_t>(size);
    return EMBER_OK;
}
}  // namespace

EMBER_API ember_status ember_model_params_init_sized(ember_model_params* params, size_t size) {
    clear_error();
    return init_sized(ember_model_params_init, params, size, kModelParamsV1, __func__);
}
EMBER_API ember_status ember_session_params_init_sized(ember_session_params* params, size_t size) {
    clear_error();
    return init_sized(ember_session_params_init, params, size, kSessionParamsV1, __func__);
}
EMBER_API ember_status ember_generate_params_init_sized(ember_generate_params* params, size_t size) {
    clear_error();
    return init_sized(ember_generate_params_init, params, size, kGenerateParamsV1, __func__);
}
EMBER_API ember_status ember_chat_params_init_sized(ember_chat_params* params, size_t size) {
    clear_error();
    return init_sized(ember_chat_params_init, params, size, kChatParamsV1, __func__);
}
EMBER_API ember_status ember_sampler_params_init_sized(ember_sampler_params* params, size_t size) {
    clear_error();
    return init_sized(ember_sampler_params_init, params, size, kSamplerParamsV1, __func__);
}
