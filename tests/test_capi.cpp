// The C ABI, exercised through ember.h only (the hostile files are built with the internal GGUF writer):
// bad input gets a status and a message, never a crash; the happy paths match the golden outputs.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "ember.h"
#include <nlohmann/json.hpp>

#include "gguf/reader.hpp"
#include "gguf/value.hpp"
#include "gguf/writer.hpp"
#include "testdata.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kStories = ember::test::testdata("models/stories260K.gguf");

// The first 16 of "greedy_tokens" in testdata/golden/stories260K-once.json (prompt "Once upon a time", BOS).
const std::vector<int32_t> kGoldenGreedy16 = {432, 383, 286, 261, 376, 298, 315, 421,
                                              395, 317, 426, 338, 401, 396, 267, 337};
const std::vector<int32_t> kOnceUponATime = {1, 403, 407, 261, 378};  // "prompt_tokens" in the same file

std::string last_error() { return ember_last_error(); }

// One model for the whole file (loading is cheap, but the handle also checks sharing across tests).
ember_model* stories() {
    static ember_model* m = [] {
        ember_model* out = nullptr;
        REQUIRE(ember_model_load(kStories.c_str(), nullptr, &out) == EMBER_OK);
        return out;
    }();
    return m;
}

std::vector<int32_t> tokenize(const ember_tokenizer* tok, const std::string& text, uint32_t flags) {
    int32_t n = 0;
    REQUIRE(ember_tokenize(tok, text.data(), text.size(), nullptr, 0, flags, &n) == EMBER_OK);
    std::vector<int32_t> out(static_cast<size_t>(n));
    REQUIRE(ember_tokenize(tok, text.data(), text.size(), out.data(), n, flags, &n) == EMBER_OK);
    REQUIRE(static_cast<size_t>(n) == out.size());
    return out;
}

struct Session {
    ember_session* s = nullptr;
    // One thread by default: the tests run beside others on a small shared machine.
    explicit Session(const ember_session_params* p = nullptr) {
        ember_session_params one;
        ember_session_params_init(&one);
        one.n_threads = 1;
        REQUIRE(ember_session_create(stories(), p ? p : &one, &s) == EMBER_OK);
    }
    ~Session() { ember_session_free(s); }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
};

struct Sampler {
    ember_sampler* s = nullptr;
    explicit Sampler(const ember_sampler_params* p) { REQUIRE(ember_sampler_create(p, &s) == EMBER_OK); }
    Sampler() { REQUIRE(ember_sampler_create_greedy(&s) == EMBER_OK); }
    ~Sampler() { ember_sampler_free(s); }
    Sampler(const Sampler&) = delete;
    Sampler& operator=(const Sampler&) = delete;
};

// Prefill the prompt, then sample → stop at end of generation → decode, n times (the example's loop).
std::vector<int32_t> run(ember_sampler* sampler, const std::vector<int32_t>& prompt, int n) {
    Session s;
    REQUIRE(ember_session_prefill(s.s, prompt.data(), static_cast<int32_t>(prompt.size())) == EMBER_OK);
    const ember_tokenizer* tok = ember_model_tokenizer(stories());
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
        const float* logits = nullptr;
        int32_t n_vocab = 0, t = -1;
        REQUIRE(ember_session_logits(s.s, &logits, &n_vocab) == EMBER_OK);
        REQUIRE(ember_sampler_sample(sampler, logits, n_vocab, &t) == EMBER_OK);
        out.push_back(t);
        if (ember_token_is_eog(tok, t)) break;
        REQUIRE(ember_session_decode(s.s, t) == EMBER_OK);
    }
    return out;
}

// A copy of stories260K written through `edit`, for files that parse but do not load.
template <typename Edit>
std::string rewritten_stories(const std::string& name, Edit edit) {
    const ember::gguf::File f = ember::gguf::File::open(kStories);
    ember::gguf::Writer w(f.alignment());
    for (const auto& [k, v] : f.metadata())
        if (k != "general.alignment") w.set(k, v);
    for (const auto& t : f.tensors()) edit(w, t);
    const fs::path dir = fs::temp_directory_path() / ("ember-test-capi-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string path = (dir / name).string();
    w.write(path);
    return path;
}

void add_as_is(ember::gguf::Writer& w, const ember::gguf::TensorInfo& t) {
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.n_bytes);
}

}  // namespace

TEST_CASE("status codes, strings, versions") {
    CHECK(EMBER_OK == 0);
    CHECK(EMBER_ERR_INVALID_ARGUMENT == 1);
    CHECK(EMBER_ERR_BAD_FILE == 2);
    CHECK(EMBER_ERR_UNSUPPORTED == 3);
    CHECK(EMBER_ERR_OUT_OF_MEMORY == 4);
    CHECK(EMBER_ERR_CONTEXT_FULL == 5);
    CHECK(EMBER_ERR_CANCELLED == 6);
    CHECK(EMBER_ERR_BACKEND == 7);
    CHECK(EMBER_ERR_INTERNAL == 8);
    CHECK(EMBER_ERR_IO == 9);
    CHECK(std::string(ember_status_string(EMBER_OK)) == "ok");
    CHECK(std::string(ember_status_string(EMBER_ERR_CONTEXT_FULL)) == "context full");
    CHECK(std::string(ember_status_string(static_cast<ember_status>(99))) == "unknown status");
    CHECK(std::string(ember_status_string(static_cast<ember_status>(-1))) == "unknown status");
    CHECK(ember_abi_version() == EMBER_ABI_VERSION);
    const std::string v = ember_version();
    CHECK(std::count(v.begin(), v.end(), '.') == 2);
}

TEST_CASE("params: init, NULL for defaults, struct_size checked") {
    ember_model_params mp;
    std::memset(&mp, 0xAB, sizeof mp);
    REQUIRE(ember_model_params_init(&mp) == EMBER_OK);
    CHECK(mp.struct_size == sizeof mp);
    CHECK(mp.n_threads == 0);
    CHECK(mp.backend == nullptr);
    CHECK(!mp.progress);
    CHECK(mp.progress_user_data == nullptr);

    ember_session_params sp;
    REQUIRE(ember_session_params_init(&sp) == EMBER_OK);
    CHECK(sp.struct_size == sizeof sp);
    CHECK(sp.n_ctx == 0);
    CHECK(sp.n_batch == 512);
    CHECK(sp.n_threads == 0);
    CHECK(!sp.abort);

    ember_sampler_params smp;
    REQUIRE(ember_sampler_params_init(&smp) == EMBER_OK);
    CHECK(smp.struct_size == sizeof smp);
    CHECK(smp.temperature == doctest::Approx(0.8f));
    CHECK(smp.top_k == 40);
    CHECK(smp.top_p == doctest::Approx(0.95f));
    CHECK(smp.min_p == doctest::Approx(0.05f));
    CHECK(smp.repeat_penalty == 1.0f);
    CHECK(smp.penalty_last_n == 64);
    CHECK(smp.frequency_penalty == 0.0f);
    CHECK(smp.presence_penalty == 0.0f);
    CHECK(smp.seed == EMBER_SEED_RANDOM);

    // (name): the exported functions themselves, not the header's sized macros.
    CHECK((ember_model_params_init)(nullptr) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK((ember_session_params_init)(nullptr) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK((ember_sampler_params_init)(nullptr) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_model_params_init_sized(nullptr, sizeof(ember_model_params)) == EMBER_ERR_INVALID_ARGUMENT);

    // A caller whose struct is older (smaller) than the library's: exactly its bytes are written.
    {
        unsigned char raw[sizeof(ember_model_params) + 16];
        std::memset(raw, 0xAB, sizeof raw);
        const size_t v1 = offsetof(ember_model_params, use_mmap);  // the struct before use_mmap was appended
        REQUIRE(ember_model_params_init_sized(reinterpret_cast<ember_model_params*>(raw), v1) == EMBER_OK);
        ember_model_params older;
        std::memcpy(&older, raw, v1);
        CHECK(older.struct_size == v1);
        CHECK(older.n_threads == 0);
        CHECK(older.backend == nullptr);
        for (size_t i = v1; i < sizeof raw; ++i) CHECK(raw[i] == 0xAB);  // nothing past its end
        ember_model* m = nullptr;
        CHECK(ember_model_load(kStories.c_str(), &older, &m) == EMBER_OK);
        ember_model_free(m);
    }
    // A caller whose struct is newer (larger): the fields only it knows are zeroed, their default.
    {
        struct Newer {
            ember_sampler_params known;
            int64_t appended;
        } newer;
        std::memset(&newer, 0xAB, sizeof newer);
        REQUIRE(ember_sampler_params_init_sized(&newer.known, sizeof newer) == EMBER_OK);
        CHECK(newer.known.struct_size == sizeof newer);
        CHECK(newer.appended == 0);
        CHECK(newer.known.top_k == 40);
        ember_sampler* smp = nullptr;
        CHECK(ember_sampler_create(&newer.known, &smp) == EMBER_OK);
        ember_sampler_free(smp);
    }
    ember_session_params tiny;
    CHECK(ember_session_params_init_sized(&tiny, 3) == EMBER_ERR_INVALID_ARGUMENT);

    // struct_size 0 (never initialised), smaller than the first version, or larger than the library's.
    for (uint32_t bad : {0u, 4u, 0xFFFFFFFFu, 1u << 20}) {
        CAPTURE(bad);
        ember_model* m = reinterpret_cast<ember_model*>(1);
        mp.struct_size = bad;
        CHECK(ember_model_load(kStories.c_str(), &mp, &m) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(m == nullptr);
        CHECK(last_error().find("struct_size") != std::string::npos);

        ember_session* s = reinterpret_cast<ember_session*>(1);
        sp.struct_size = bad;
        CHECK(ember_session_create(stories(), &sp, &s) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(s == nullptr);

        ember_sampler* smpl = reinterpret_cast<ember_sampler*>(1);
        smp.struct_size = bad;
        CHECK(ember_sampler_create(&smp, &smpl) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(smpl == nullptr);
    }
    // A newer caller than the library: a larger struct is taken when the fields this library does not know
    // hold their default (zero), and refused, naming the byte, when one is set.
    {
        struct Newer {
            ember_session_params known;
            int64_t appended;
        } newer;
        ember_session_params_init(&newer.known);
        newer.known.struct_size = sizeof newer;
        newer.known.n_threads = 1;
        newer.appended = 0;
        ember_session* s = nullptr;
        CHECK(ember_session_create(stories(), &newer.known, &s) == EMBER_OK);
        ember_session_free(s);
        newer.appended = 7;
        CHECK(ember_session_create(stories(), &newer.known, &s) == EMBER_ERR_UNSUPPORTED);
        CHECK(s == nullptr);
        CHECK(last_error().find("newer ember") != std::string::npos);
        newer.known.struct_size = 1u << 20;  // absurd: never read that far
        CHECK(ember_session_create(stories(), &newer.known, &s) == EMBER_ERR_INVALID_ARGUMENT);
    }

    // An older caller: its struct ends before use_mmap, which then takes its default. The bytes past its
    // struct_size are garbage here and must not be read.
    {
        ember_model_params older;
        ember_model_params_init(&older);
        older.use_mmap = false;
        std::memset(&older.use_mmap, 0xAB, sizeof older.use_mmap);
        older.struct_size = static_cast<uint32_t>(offsetof(ember_model_params, use_mmap));
        ember_model* m = nullptr;
        CHECK(ember_model_load(kStories.c_str(), &older, &m) == EMBER_OK);
        ember_model_free(m);
        ember_model_params read_in;
        ember_model_params_init(&read_in);
        CHECK(read_in.use_mmap);
        read_in.use_mmap = false;
        CHECK(ember_model_load(kStories.c_str(), &read_in, &m) == EMBER_OK);
        CHECK(ember_model_n_vocab(m) == 512);
        ember_model_free(m);
    }

    // NULL params: defaults.
    ember_session* s = nullptr;
    ember_sampler* smpl = nullptr;
    CHECK(ember_sampler_create(nullptr, &smpl) == EMBER_OK);
    ember_sampler_free(smpl);
    REQUIRE(ember_session_create(stories(), nullptr, &s) == EMBER_OK);
    CHECK(ember_session_n_ctx(s) > 0);
    ember_session_free(s);

    // Values out of range.
    ember_sampler_params_init(&smp);
    smp.top_p = -1.f;
    CHECK(ember_sampler_create(&smp, &smpl) == EMBER_ERR_INVALID_ARGUMENT);
    ember_sampler_params_init(&smp);
    smp.temperature = NAN;
    CHECK(ember_sampler_create(&smp, &smpl) == EMBER_ERR_INVALID_ARGUMENT);
    ember_session_params_init(&sp);
    sp.n_ctx = -5;
    CHECK(ember_session_create(stories(), &sp, &s) == EMBER_ERR_INVALID_ARGUMENT);
    ember_model_params_init(&mp);
    mp.backend = "no-such-backend";
    ember_model* m = nullptr;
    CHECK(ember_model_load(kStories.c_str(), &mp, &m) != EMBER_OK);
    CHECK(m == nullptr);
    CHECK(!last_error().empty());
}

TEST_CASE("bad files: a status and a message, never a crash") {
    ember_model* m = reinterpret_cast<ember_model*>(1);
    ember_tokenizer* t = reinterpret_cast<ember_tokenizer*>(1);

    const std::string readme = ember::test::testdata("README.md");
    CHECK(ember_model_load(readme.c_str(), nullptr, &m) == EMBER_ERR_BAD_FILE);
    CHECK(m == nullptr);
    CHECK(!last_error().empty());
    CHECK(ember_tokenizer_load(readme.c_str(), &t) == EMBER_ERR_BAD_FILE);
    CHECK(t == nullptr);

    CHECK(ember_model_load("/nonexistent/dir/model.gguf", nullptr, &m) == EMBER_ERR_IO);
    CHECK(m == nullptr);
    CHECK(!last_error().empty());
    CHECK(ember_tokenizer_load("/nonexistent/dir/model.gguf", &t) == EMBER_ERR_IO);
    CHECK(ember_model_load("", nullptr, &m) != EMBER_OK);

    // A directory is not a file either.
    CHECK(ember_model_load(fs::temp_directory_path().c_str(), nullptr, &m) != EMBER_OK);
    CHECK(m == nullptr);

    SUBCASE("a missing tensor") {
        const std::string path = rewritten_stories("no-attn-q.gguf", [](auto& w, const auto& ti) {
            if (ti.name != "blk.0.attn_q.weight") add_as_is(w, ti);
        });
        CHECK(ember_model_load(path.c_str(), nullptr, &m) == EMBER_ERR_BAD_FILE);
        CHECK(m == nullptr);
        CHECK(last_error().find("blk.0.attn_q.weight") != std::string::npos);
        // The vocabulary alone still loads from it.
        REQUIRE(ember_tokenizer_load(path.c_str(), &t) == EMBER_OK);
        CHECK(ember_tokenizer_n_vocab(t) == 512);
        ember_tokenizer_free(t);
        fs::remove(path);
    }
    SUBCASE("a tensor of the wrong shape") {
        const std::string path = rewritten_stories("bad-output-norm.gguf", [](auto& w, const auto& ti) {
            if (ti.name != "output_norm.weight") return add_as_is(w, ti);
            REQUIRE(ti.n_dims == 1);
            std::vector<uint8_t> twice(ti.n_bytes * 2);
            std::memcpy(twice.data(), ti.data, ti.n_bytes);
            std::memcpy(twice.data() + ti.n_bytes, ti.data, ti.n_bytes);
            w.add_tensor(ti.name, ti.type, {ti.ne[0] * 2}, twice.data(), twice.size());
        });
        CHECK(ember_model_load(path.c_str(), nullptr, &m) == EMBER_ERR_BAD_FILE);
        CHECK(m == nullptr);
        CHECK(last_error().find("output_norm.weight") != std::string::npos);
        fs::remove(path);
    }
    SUBCASE("the unchanged rewrite loads (the edits above are what fails)") {
        const std::string path = rewritten_stories("same.gguf", add_as_is);
        REQUIRE(ember_model_load(path.c_str(), nullptr, &m) == EMBER_OK);
        CHECK(ember_model_n_vocab(m) == 512);
        ember_model_free(m);
        fs::remove(path);
    }
}

TEST_CASE("NULL handles and NULL out-pointers: EMBER_ERR_INVALID_ARGUMENT for every function") {
    ember_model* model = stories();
    const ember_tokenizer* tok = ember_model_tokenizer(model);
    REQUIRE(tok != nullptr);
    Session s;
    Sampler greedy;
    const int32_t toks[2] = {1, 403};
    char buf[64];
    size_t needed = 0;
    int32_t n = 0, t = 0;
    const float* logits = nullptr;
    float fl[4] = {0, 1, 2, 3};
    const auto inval = [](ember_status st) {
        const bool ok = st == EMBER_ERR_INVALID_ARGUMENT && !last_error().empty();
        return ok;
    };

    // Models.
    ember_model* m = nullptr;
    CHECK(inval(ember_model_load(nullptr, nullptr, &m)));
    CHECK(inval(ember_model_load(kStories.c_str(), nullptr, nullptr)));
    ember_model_free(nullptr);
    CHECK(ember_model_tokenizer(nullptr) == nullptr);
    CHECK(!last_error().empty());
    CHECK(ember_model_n_vocab(nullptr) == -1);
    CHECK(ember_model_n_ctx_train(nullptr) == -1);
    CHECK(ember_model_n_embd(nullptr) == -1);
    CHECK(ember_model_n_layers(nullptr) == -1);
    CHECK(inval(ember_model_meta(nullptr, "general.architecture", buf, sizeof buf, &needed)));
    CHECK(inval(ember_model_meta(model, nullptr, buf, sizeof buf, &needed)));
    CHECK(inval(ember_model_meta(model, "general.architecture", buf, sizeof buf, nullptr)));
    CHECK(inval(ember_model_meta(model, "general.architecture", nullptr, 10, &needed)));
    CHECK(inval(ember_model_chat_template(nullptr, buf, sizeof buf, &needed)));
    CHECK(inval(ember_model_chat_template(model, buf, sizeof buf, nullptr)));

    // Tokenizers.
    ember_tokenizer* owned = nullptr;
    CHECK(inval(ember_tokenizer_load(nullptr, &owned)));
    CHECK(inval(ember_tokenizer_load(kStories.c_str(), nullptr)));
    ember_tokenizer_free(nullptr);
    CHECK(ember_tokenizer_n_vocab(nullptr) == -1);
    CHECK(inval(ember_tokenize(nullptr, "a", 1, &t, 1, 0, &n)));
    CHECK(inval(ember_tokenize(tok, nullptr, 1, &t, 1, 0, &n)));
    CHECK(inval(ember_tokenize(tok, "a", 1, &t, 1, 0, nullptr)));
    CHECK(inval(ember_tokenize(tok, "a", 1, nullptr, 4, 0, &n)));
    CHECK(inval(ember_tokenize(tok, "a", 1, &t, -1, 0, &n)));
    CHECK(inval(ember_tokenize(tok, "a", 1, &t, 1, 0x80, &n)));  // unknown flag
    CHECK(inval(ember_detokenize(nullptr, toks, 2, 0, buf, sizeof buf, &needed)));
    CHECK(inval(ember_detokenize(tok, nullptr, 2, 0, buf, sizeof buf, &needed)));
    CHECK(inval(ember_detokenize(tok, toks, -1, 0, buf, sizeof buf, &needed)));
    CHECK(inval(ember_detokenize(tok, toks, 2, 0, buf, sizeof buf, nullptr)));
    CHECK(inval(ember_detokenize(tok, toks, 2, 0, nullptr, 5, &needed)));
    CHECK(inval(ember_detokenize(tok, toks, 2, 0x10, buf, sizeof buf, &needed)));
    CHECK(inval(ember_token_piece(nullptr, 403, 0, buf, sizeof buf, &needed)));
    CHECK(inval(ember_token_piece(tok, 403, 0, buf, sizeof buf, nullptr)));
    CHECK(inval(ember_token_piece(tok, 403, 0, nullptr, 5, &needed)));
    CHECK(inval(ember_token_piece(tok, 403, 0x10, buf, sizeof buf, &needed)));
    CHECK(ember_token_bos(nullptr) == -1);
    CHECK(ember_token_eos(nullptr) == -1);
    CHECK(ember_token_eot(nullptr) == -1);
    CHECK(!ember_token_is_eog(nullptr, 2));
    CHECK(!last_error().empty());

    // Sessions.
    ember_session* sess = nullptr;
    CHECK(inval(ember_session_create(nullptr, nullptr, &sess)));
    CHECK(inval(ember_session_create(model, nullptr, nullptr)));
    ember_session_free(nullptr);
    CHECK(inval(ember_session_prefill(nullptr, toks, 2)));
    CHECK(inval(ember_session_prefill(s.s, nullptr, 2)));
    CHECK(inval(ember_session_prefill(s.s, toks, 0)));
    CHECK(inval(ember_session_prefill(s.s, toks, -3)));
    CHECK(inval(ember_session_decode(nullptr, 1)));
    CHECK(inval(ember_session_logits(nullptr, &logits, &n)));
    CHECK(inval(ember_session_logits(s.s, nullptr, &n)));
    CHECK(inval(ember_session_logits(s.s, &logits, nullptr)));
    CHECK(inval(ember_session_logits(s.s, &logits, &n)));  // nothing evaluated yet
    CHECK(logits == nullptr);
    CHECK(ember_session_position(nullptr) == -1);
    CHECK(ember_session_n_ctx(nullptr) == -1);
    CHECK(inval(ember_session_rewind(nullptr, 0)));
    CHECK(inval(ember_session_reset(nullptr)));
    CHECK(inval(ember_session_cancel(nullptr)));
    CHECK(inval(ember_session_generate(nullptr, greedy.s, 4, nullptr, nullptr, &n)));
    CHECK(inval(ember_session_generate(s.s, nullptr, 4, nullptr, nullptr, &n)));
    CHECK(n == 0);
    CHECK(ember_session_position(s.s) == 0);

    // Samplers.
    ember_sampler* smp = nullptr;
    CHECK(inval(ember_sampler_create(nullptr, nullptr)));
    CHECK(inval(ember_sampler_create_greedy(nullptr)));
    ember_sampler_free(nullptr);
    CHECK(inval(ember_sampler_sample(nullptr, fl, 4, &t)));
    CHECK(inval(ember_sampler_sample(greedy.s, nullptr, 4, &t)));
    CHECK(inval(ember_sampler_sample(greedy.s, fl, 0, &t)));
    CHECK(inval(ember_sampler_sample(greedy.s, fl, 4, nullptr)));
    CHECK(inval(ember_sampler_accept(nullptr, 1)));
    CHECK(inval(ember_sampler_accept(greedy.s, -1)));
    CHECK(inval(ember_sampler_reset(nullptr)));
    (void)smp;

    // And the valid calls still work afterwards.
    CHECK(ember_sampler_sample(greedy.s, fl, 4, &t) == EMBER_OK);
    CHECK(t == 3);
    CHECK(last_error().empty());
}

TEST_CASE("model facts, metadata and the two-call buffer pattern") {
    ember_model* m = stories();
    CHECK(ember_model_n_vocab(m) == 512);
    CHECK(ember_model_n_layers(m) == 5);
    CHECK(ember_model_n_embd(m) == 64);
    CHECK(ember_model_n_ctx_train(m) > 0);

    size_t needed = 0;
    REQUIRE(ember_model_meta(m, "general.architecture", nullptr, 0, &needed) == EMBER_OK);  // size query
    CHECK(needed == 6);                                                                     // "llama" + NUL
    std::vector<char> buf(needed);
    char small[3] = {'x', 'y', 'z'};
    CHECK(ember_model_meta(m, "general.architecture", small, sizeof small, &needed) == EMBER_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == 6);
    CHECK(small[0] == 'x');  // untouched
    CHECK(last_error().find("too small") != std::string::npos);
    // Exactly the text's length is one byte short: the NUL needs room too.
    CHECK(ember_model_meta(m, "general.architecture", buf.data(), 5, &needed) == EMBER_ERR_BUFFER_TOO_SMALL);
    REQUIRE(ember_model_meta(m, "general.architecture", buf.data(), buf.size(), &needed) == EMBER_OK);
    CHECK(std::string(buf.data()) == "llama");
    CHECK(last_error().empty());

    CHECK(ember_model_meta(m, "no.such.key", nullptr, 0, &needed) == EMBER_ERR_NOT_FOUND);
    CHECK(needed == 0);
    CHECK(last_error().find("no.such.key") != std::string::npos);

    // Numbers come back in decimal.
    REQUIRE(ember_model_meta(m, "llama.block_count", nullptr, 0, &needed) == EMBER_OK);
    buf.resize(needed);
    REQUIRE(ember_model_meta(m, "llama.block_count", buf.data(), buf.size(), &needed) == EMBER_OK);
    CHECK(std::string(buf.data()) == "5");

    // stories260K has no chat template: "" with needed = 1.
    REQUIRE(ember_model_chat_template(m, nullptr, 0, &needed) == EMBER_OK);
    CHECK(needed == 1);
    char one = 'x';
    REQUIRE(ember_model_chat_template(m, &one, 1, &needed) == EMBER_OK);
    CHECK(one == '\0');
}

TEST_CASE("memory estimates: each function's messages name it; bad quantize types fail cleanly") {
    const auto fresh = [] {
        ember_memory_estimate e;
        std::memset(&e, 0xAB, sizeof e);
        e.struct_size = sizeof e;
        return e;
    };
    // The message starts with the function the caller called, never the other one.
    const auto named = [](const char* fn) {
        const std::string msg = last_error();
        CAPTURE(msg);
        return msg.rfind(std::string(fn) + ": ", 0) == 0;
    };
    ember_memory_estimate e = fresh();
    // Argument checks, and errors from the estimate itself (n_ctx out of range, no such file).
    CHECK(ember_estimate_memory(nullptr, 256, 0, &e) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_estimate_memory"));
    CHECK(ember_estimate_memory(kStories.c_str(), 256, 0, nullptr) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_estimate_memory"));
    CHECK(ember_estimate_memory(kStories.c_str(), 0, 0, &e) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_estimate_memory"));
    CHECK(ember_estimate_memory("/nonexistent.gguf", 256, 0, &e) == EMBER_ERR_IO);
    CHECK(named("ember_estimate_memory"));
    CHECK(ember_estimate_memory_quantized(nullptr, 256, 0, "q8_0", &e) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_estimate_memory_quantized"));
    CHECK(ember_estimate_memory_quantized(kStories.c_str(), 256, -1, nullptr, &e) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_estimate_memory_quantized"));
    CHECK(ember_estimate_memory_quantized(kStories.c_str(), 0, 0, "q8_0", &e) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_estimate_memory_quantized"));
    CHECK(ember_estimate_memory_quantized("/nonexistent.gguf", 256, 0, nullptr, &e) == EMBER_ERR_IO);
    CHECK(named("ember_estimate_memory_quantized"));

    // NULL and "" are the file's own types: the plain estimate.
    ember_memory_estimate plain = fresh();
    REQUIRE(ember_estimate_memory(kStories.c_str(), 256, 0, &plain) == EMBER_OK);
    CHECK(last_error().empty());
    for (const char* same : {static_cast<const char*>(nullptr), ""}) {
        e = fresh();
        REQUIRE(ember_estimate_memory_quantized(kStories.c_str(), 256, 0, same, &e) == EMBER_OK);
        CHECK(e.weights == plain.weights);
        CHECK(e.total == plain.total);
    }
    // Q8_0 of stories260K's F32 weights: fewer bytes, the session's share unchanged.
    e = fresh();
    REQUIRE(ember_estimate_memory_quantized(kStories.c_str(), 256, 0, "Q8_0", &e) == EMBER_OK);
    CHECK(e.weights < plain.weights);
    CHECK(e.weights > 0);
    CHECK(e.kv_cache == plain.kv_cache);
    CHECK(e.scratch == plain.scratch);
    CHECK(e.total == e.weights + e.kv_cache + e.scratch);

    // Unknown names, at and past the 64-byte bound, and a long one: a status naming the function.
    const std::string at_bound(64, 'q'), past_bound(65, 'q'), huge(1 << 20, 'Q');
    for (const char* bad : {"Q9_9", "q8", " q8_0", "q8_0 ", "\xff\xfe", at_bound.c_str(), past_bound.c_str(), huge.c_str()}) {
        CAPTURE(std::string(bad).substr(0, 80));
        e = fresh();
        CHECK(ember_estimate_memory_quantized(kStories.c_str(), 256, 0, bad, &e) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(named("ember_estimate_memory_quantized"));
    }
    CHECK(ember_estimate_memory_quantized(kStories.c_str(), 256, 0, past_bound.c_str(), &e) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(last_error().find("longer than 64 bytes") != std::string::npos);
}

TEST_CASE("prefill: ember_session_prefill's and ember_session_prefill_ex's messages each name the function called") {
    // The message starts with the function the caller called, never the other one (prefill shares its
    // checks with prefill_ex).
    const auto named = [](const char* fn) {
        const std::string msg = last_error();
        CAPTURE(msg);
        return msg.rfind(std::string(fn) + ": ", 0) == 0;
    };
    ember_session_params sp;
    ember_session_params_init(&sp);
    sp.n_ctx = 8;
    sp.n_threads = 1;
    Session s(&sp);
    const std::vector<int32_t> ten = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
    const int32_t bad_id[2] = {403, 512};

    // Argument checks.
    CHECK(ember_session_prefill(nullptr, ten.data(), 2) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_session_prefill"));
    CHECK(ember_session_prefill(s.s, nullptr, 2) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_session_prefill"));
    CHECK(ember_session_prefill(s.s, ten.data(), 0) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_session_prefill"));
    CHECK(ember_session_prefill(s.s, ten.data(), -3) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_session_prefill"));
    CHECK(ember_session_prefill_ex(nullptr, ten.data(), 2, 0) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_session_prefill_ex"));
    CHECK(ember_session_prefill_ex(s.s, nullptr, 2, 0) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_session_prefill_ex"));
    CHECK(ember_session_prefill_ex(s.s, ten.data(), -3, 0) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_session_prefill_ex"));
    CHECK(ember_session_prefill_ex(s.s, ten.data(), 2, 4u) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_session_prefill_ex"));
    CHECK(last_error().find("unknown flags") != std::string::npos);

    // Errors from the session itself: ids out of range, a full context, a cancelled session.
    CHECK(ember_session_prefill(s.s, bad_id, 2) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_session_prefill"));
    CHECK(ember_session_prefill_ex(s.s, bad_id, 2, EMBER_PREFILL_ALL_LOGITS) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(named("ember_session_prefill_ex"));
    CHECK(ember_session_prefill(s.s, ten.data(), 10) == EMBER_ERR_CONTEXT_FULL);
    CHECK(named("ember_session_prefill"));
    CHECK(ember_session_prefill_ex(s.s, ten.data(), 10, 0) == EMBER_ERR_CONTEXT_FULL);
    CHECK(named("ember_session_prefill_ex"));
    REQUIRE(ember_session_cancel(s.s) == EMBER_OK);
    CHECK(ember_session_prefill(s.s, ten.data(), 2) == EMBER_ERR_CANCELLED);
    CHECK(named("ember_session_prefill"));
    CHECK(ember_session_prefill_ex(s.s, ten.data(), 2, 0) == EMBER_ERR_CANCELLED);
    CHECK(named("ember_session_prefill_ex"));
    REQUIRE(ember_session_clear_cancel(s.s) == EMBER_OK);
    CHECK(ember_session_position(s.s) == 0);

    // And both still work, clearing the last error.
    REQUIRE(ember_session_prefill(s.s, ten.data(), 2) == EMBER_OK);
    CHECK(last_error().empty());
    REQUIRE(ember_session_prefill_ex(s.s, ten.data() + 2, 2, EMBER_PREFILL_ALL_LOGITS) == EMBER_OK);
    CHECK(last_error().empty());
    CHECK(ember_session_position(s.s) == 4);
}

TEST_CASE("tokenizer: golden ids, round trip, two-call, out-of-range ids") {
    const ember_tokenizer* tok = ember_model_tokenizer(stories());
    CHECK(ember_tokenizer_n_vocab(tok) == 512);
    CHECK(ember_token_bos(tok) == 1);
    CHECK(ember_token_eos(tok) == 2);
    CHECK(ember_token_is_eog(tok, 2));
    CHECK(!ember_token_is_eog(tok, 403));
    CHECK(!ember_token_is_eog(tok, -1));
    CHECK(!ember_token_is_eog(tok, 512));

    const std::string text = "Once upon a time";
    CHECK(tokenize(tok, text, EMBER_TOKENIZE_ADD_SPECIAL) == kOnceUponATime);
    CHECK(tokenize(tok, text, EMBER_TOKENIZE_ADD_SPECIAL | EMBER_TOKENIZE_PARSE_SPECIAL) == kOnceUponATime);
    CHECK(tokenize(tok, text, 0) == std::vector<int32_t>(kOnceUponATime.begin() + 1, kOnceUponATime.end()));
    CHECK(tokenize(tok, "", 0).empty());
    int32_t n = -1;
    CHECK(ember_tokenize(tok, nullptr, 0, nullptr, 0, 0, &n) == EMBER_OK);
    CHECK(n == 0);

    // Too small: the needed count comes back and the buffer is untouched.
    int32_t out[3] = {-7, -7, -7};
    CHECK(ember_tokenize(tok, text.data(), text.size(), out, 3, EMBER_TOKENIZE_ADD_SPECIAL, &n) ==
          EMBER_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 5);
    CHECK(out[0] == -7);
    CHECK(last_error().find("too small") != std::string::npos);

    // Detokenize: two calls.
    size_t needed = 0;
    REQUIRE(ember_detokenize(tok, kOnceUponATime.data(), 5, 0, nullptr, 0, &needed) == EMBER_OK);
    CHECK(needed == text.size() + 1);
    std::string buf(needed, '\xff');
    CHECK(ember_detokenize(tok, kOnceUponATime.data(), 5, 0, buf.data(), needed - 1, &needed) ==
          EMBER_ERR_BUFFER_TOO_SMALL);
    CHECK(needed == text.size() + 1);
    REQUIRE(ember_detokenize(tok, kOnceUponATime.data(), 5, 0, buf.data(), buf.size(), &needed) == EMBER_OK);
    CHECK(std::string(buf.c_str()) == text);
    // Rendering the BOS.
    REQUIRE(ember_detokenize(tok, kOnceUponATime.data(), 5, EMBER_DETOKENIZE_RENDER_SPECIAL, nullptr, 0, &needed) == EMBER_OK);
    buf.assign(needed, '\0');
    REQUIRE(ember_detokenize(tok, kOnceUponATime.data(), 5, EMBER_DETOKENIZE_RENDER_SPECIAL, buf.data(), buf.size(), &needed) == EMBER_OK);
    CHECK(std::string(buf.c_str()) == "<s>" + text);
    REQUIRE(ember_detokenize(tok, nullptr, 0, 0, nullptr, 0, &needed) == EMBER_OK);
    CHECK(needed == 1);

    // Pieces.
    char piece[32];
    REQUIRE(ember_token_piece(tok, 403, 0, piece, sizeof piece, &needed) == EMBER_OK);
    CHECK(std::string(piece) == " Once");
    REQUIRE(ember_token_piece(tok, 1, 0, piece, sizeof piece, &needed) == EMBER_OK);
    CHECK(std::string(piece).empty());
    REQUIRE(ember_token_piece(tok, 1, EMBER_DETOKENIZE_RENDER_SPECIAL, piece, sizeof piece, &needed) == EMBER_OK);
    CHECK(std::string(piece) == "<s>");

    // Out-of-range ids.
    for (int32_t bad : {-1, 512, INT32_MIN, INT32_MAX}) {
        CAPTURE(bad);
        const int32_t ids[3] = {1, bad, 403};
        CHECK(ember_detokenize(tok, ids, 3, 0, nullptr, 0, &needed) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(!last_error().empty());
        CHECK(ember_token_piece(tok, bad, 0, piece, sizeof piece, &needed) == EMBER_ERR_INVALID_ARGUMENT);
    }

    // A standalone tokenizer from a vocab-only file; and freeing a borrowed one is ignored.
    ember_tokenizer* own = nullptr;
    REQUIRE(ember_tokenizer_load(ember::test::testdata("vocab/ggml-vocab-llama-spm.gguf").c_str(), &own) == EMBER_OK);
    CHECK(ember_tokenizer_n_vocab(own) == 32000);
    CHECK(tokenize(own, "Hello world", EMBER_TOKENIZE_ADD_SPECIAL).front() == 1);
    ember_tokenizer_free(own);
    ember_tokenizer_free(const_cast<ember_tokenizer*>(tok));
    CHECK(ember_tokenizer_n_vocab(ember_model_tokenizer(stories())) == 512);
}

TEST_CASE("greedy generation matches the golden tokens") {
    const ember_tokenizer* tok = ember_model_tokenizer(stories());
    const auto prompt = tokenize(tok, "Once upon a time", EMBER_TOKENIZE_ADD_SPECIAL);
    REQUIRE(prompt == kOnceUponATime);

    SUBCASE("ember_session_generate, streaming") {
        Session s;
        Sampler greedy;
        REQUIRE(ember_session_prefill(s.s, prompt.data(), 5) == EMBER_OK);
        CHECK(ember_session_position(s.s) == 5);
        const float* logits = nullptr;
        int32_t n_vocab = 0;
        REQUIRE(ember_session_logits(s.s, &logits, &n_vocab) == EMBER_OK);
        CHECK(n_vocab == 512);
        CHECK(std::max_element(logits, logits + n_vocab) - logits == kGoldenGreedy16[0]);

        struct Out {
            std::string text;
            std::vector<int32_t> tokens;
        } out;
        int32_t n_gen = 0;
        auto cb = [](const char* text, size_t len, int32_t token, void* ud) -> bool {
            auto* o = static_cast<Out*>(ud);
            o->text.append(text, len);
            o->tokens.push_back(token);
            return true;
        };
        REQUIRE(ember_session_generate(s.s, greedy.s, 16, cb, &out, &n_gen) == EMBER_OK);
        CHECK(n_gen == 16);
        CHECK(out.tokens == kGoldenGreedy16);  // every piece here is whole text, one callback per token
        CHECK(ember_session_position(s.s) == 5 + 16);
        size_t needed = 0;
        REQUIRE(ember_detokenize(tok, kGoldenGreedy16.data(), 16, 0, nullptr, 0, &needed) == EMBER_OK);
        std::string expect(needed, '\0');
        REQUIRE(ember_detokenize(tok, kGoldenGreedy16.data(), 16, 0, expect.data(), needed, &needed) == EMBER_OK);
        expect.resize(needed - 1);
        CHECK(out.text == expect);
        CHECK(out.text.rfind(", there was a little girl", 0) == 0);
    }
    SUBCASE("sample → decode by hand") {
        Sampler greedy;
        CHECK(run(greedy.s, prompt, 16) == kGoldenGreedy16);
    }
    SUBCASE("a callback returning false stops at once") {
        Session s;
        Sampler greedy;
        REQUIRE(ember_session_prefill(s.s, prompt.data(), 5) == EMBER_OK);
        int calls = 0;
        int32_t n_gen = 0;
        auto stop = [](const char*, size_t, int32_t, void* ud) -> bool { return ++*static_cast<int*>(ud) < 3; };
        REQUIRE(ember_session_generate(s.s, greedy.s, 16, stop, &calls, &n_gen) == EMBER_OK);
        CHECK(calls == 3);
        CHECK(n_gen == 3);
        CHECK(ember_session_position(s.s) == 5 + 2);  // the third token was not evaluated
    }
    SUBCASE("NULL callback and NULL n_generated are fine") {
        Session s;
        Sampler greedy;
        REQUIRE(ember_session_prefill(s.s, prompt.data(), 5) == EMBER_OK);
        REQUIRE(ember_session_generate(s.s, greedy.s, 4, nullptr, nullptr, nullptr) == EMBER_OK);
        CHECK(ember_session_position(s.s) == 9);
    }
    SUBCASE("generate without logits fails cleanly") {
        Session s;
        Sampler greedy;
        int32_t n_gen = -1;
        CHECK(ember_session_generate(s.s, greedy.s, 4, nullptr, nullptr, &n_gen) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(n_gen == 0);
        CHECK(ember_session_position(s.s) == 0);
    }
}

TEST_CASE("seeded sampling: same seed, same tokens; different seeds, different tokens") {
    ember_sampler_params p;
    ember_sampler_params_init(&p);
    p.temperature = 1.0f;
    auto with_seed = [&](uint64_t seed) {
        p.seed = seed;
        Sampler s(&p);
        return run(s.s, kOnceUponATime, 32);
    };
    const auto a = with_seed(42), b = with_seed(42), c = with_seed(43), d = with_seed(1234567);
    CHECK(a.size() == 32);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(c != d);

    // Reset reseeds: the same sampler replays its sequence.
    p.seed = 42;
    Sampler s(&p);
    const auto first = run(s.s, kOnceUponATime, 32);
    REQUIRE(ember_sampler_reset(s.s) == EMBER_OK);
    CHECK(run(s.s, kOnceUponATime, 32) == first);
    CHECK(first == a);

    // accept feeds the penalties: a huge repeat penalty on the greedy favourite changes the choice.
    ember_sampler_params_init(&p);
    p.temperature = 0.f;
    p.repeat_penalty = 1000.f;
    Sampler pen(&p);
    const float logits[4] = {0.5f, 3.f, 1.f, 2.f};
    int32_t t = -1;
    REQUIRE(ember_sampler_sample(pen.s, logits, 4, &t) == EMBER_OK);
    CHECK(t == 1);
    REQUIRE(ember_sampler_accept(pen.s, 3) == EMBER_OK);
    REQUIRE(ember_sampler_sample(pen.s, logits, 4, &t) == EMBER_OK);
    CHECK(t == 2);  // 1 and 3 are in the history now
}

TEST_CASE("context limits, out-of-range ids and rewinding leave the session as it was") {
    ember_session_params sp;
    ember_session_params_init(&sp);
    sp.n_ctx = 8;
    sp.n_threads = 1;
    Session s(&sp);
    CHECK(ember_session_n_ctx(s.s) == 8);
    const std::vector<int32_t> ten = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};

    CHECK(ember_session_prefill(s.s, ten.data(), 10) == EMBER_ERR_CONTEXT_FULL);
    CHECK(last_error().find("do not fit") != std::string::npos);
    CHECK(ember_session_position(s.s) == 0);

    REQUIRE(ember_session_prefill(s.s, ten.data(), 5) == EMBER_OK);
    const float* logits = nullptr;
    int32_t n_vocab = 0;
    REQUIRE(ember_session_logits(s.s, &logits, &n_vocab) == EMBER_OK);
    const std::vector<float> before(logits, logits + n_vocab);

    CHECK(ember_session_prefill(s.s, ten.data() + 5, 4) == EMBER_ERR_CONTEXT_FULL);
    CHECK(ember_session_position(s.s) == 5);

    for (int32_t bad : {-1, 512}) {
        CAPTURE(bad);
        const int32_t ids[2] = {403, bad};
        CHECK(ember_session_prefill(s.s, ids, 2) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(last_error().find("out of range") != std::string::npos);
        CHECK(ember_session_decode(s.s, bad) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(ember_session_position(s.s) == 5);
    }
    REQUIRE(ember_session_logits(s.s, &logits, &n_vocab) == EMBER_OK);
    CHECK(std::vector<float>(logits, logits + n_vocab) == before);

    // Generation stops (successfully) when the context is full.
    Sampler greedy;
    int32_t n_gen = 0;
    REQUIRE(ember_session_generate(s.s, greedy.s, -1, nullptr, nullptr, &n_gen) == EMBER_OK);
    CHECK(n_gen == 3);
    CHECK(ember_session_position(s.s) == 8);
    CHECK(ember_session_decode(s.s, 403) == EMBER_ERR_CONTEXT_FULL);
    CHECK(ember_session_position(s.s) == 8);

    // Rewind and reset.
    CHECK(ember_session_rewind(s.s, 9) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_rewind(s.s, -1) == EMBER_ERR_INVALID_ARGUMENT);
    REQUIRE(ember_session_rewind(s.s, 4) == EMBER_OK);
    CHECK(ember_session_position(s.s) == 4);
    CHECK(ember_session_logits(s.s, &logits, &n_vocab) == EMBER_ERR_INVALID_ARGUMENT);  // forgotten with the tokens
    REQUIRE(ember_session_decode(s.s, ten[4]) == EMBER_OK);
    REQUIRE(ember_session_logits(s.s, &logits, &n_vocab) == EMBER_OK);
    float max_diff = 0;
    for (int i = 0; i < n_vocab; ++i) max_diff = std::max(max_diff, std::fabs(logits[i] - before[static_cast<size_t>(i)]));
    CHECK(max_diff < 1e-4f);
    REQUIRE(ember_session_reset(s.s) == EMBER_OK);
    CHECK(ember_session_position(s.s) == 0);
}

TEST_CASE("cancellation: abort callback, ember_session_cancel, progress callback") {
    SUBCASE("abort callback returning true") {
        struct Ctl {
            std::atomic<int> polls{0};
            int allow = 0;  // polls answered false before answering true
        } ctl;
        ember_session_params sp;
        ember_session_params_init(&sp);
        sp.n_threads = 1;
        sp.abort = [](void* ud) {
            auto* c = static_cast<Ctl*>(ud);
            return c->polls.fetch_add(1) >= c->allow;
        };
        sp.abort_user_data = &ctl;
        Session s(&sp);
        CHECK(ember_session_prefill(s.s, kOnceUponATime.data(), 5) == EMBER_ERR_CANCELLED);
        CHECK(last_error().find("cancel") != std::string::npos);
        CHECK(ember_session_position(s.s) == 0);
        CHECK(ctl.polls.load() >= 1);

        // Let the prompt through, then stop generation part-way.
        ctl.allow = 1 << 30;
        REQUIRE(ember_session_prefill(s.s, kOnceUponATime.data(), 5) == EMBER_OK);
        ctl.allow = ctl.polls.load() + 40;
        Sampler greedy;
        int32_t n_gen = -1;
        CHECK(ember_session_generate(s.s, greedy.s, 200, nullptr, nullptr, &n_gen) == EMBER_ERR_CANCELLED);
        CHECK(n_gen >= 1);
        CHECK(n_gen < 200);
        // What was evaluated stays; the last token sampled was being evaluated when the abort came.
        CHECK(ember_session_position(s.s) == 5 + n_gen - 1);
    }
    SUBCASE("ember_session_cancel from another thread stops a running generate") {
        Session s;
        Sampler greedy;
        REQUIRE(ember_session_prefill(s.s, kOnceUponATime.data(), 5) == EMBER_OK);
        struct Sync {
            ember_session* s;
            std::mutex mu;
            std::condition_variable cv;
            bool first = false, cancelled = false;
            int calls = 0;
        } sync{s.s, {}, {}, false, false, 0};
        std::thread canceller([&sync] {
            std::unique_lock lk(sync.mu);
            sync.cv.wait(lk, [&] { return sync.first; });
            CHECK(ember_session_cancel(sync.s) == EMBER_OK);
            sync.cancelled = true;
            sync.cv.notify_all();
        });
        // On the first piece of text, wait until the other thread has cancelled; the next decode stops.
        auto cb = [](const char*, size_t, int32_t, void* ud) -> bool {
            auto* y = static_cast<Sync*>(ud);
            std::unique_lock lk(y->mu);
            ++y->calls;
            y->first = true;
            y->cv.notify_all();
            y->cv.wait(lk, [&] { return y->cancelled; });
            return true;
        };
        int32_t n_gen = -1;
        CHECK(ember_session_generate(s.s, greedy.s, 50, cb, &sync, &n_gen) == EMBER_ERR_CANCELLED);
        canceller.join();
        CHECK(sync.calls == 1);
        CHECK(n_gen == 1);  // the token the callback received counts, though its evaluation was cancelled
        CHECK(ember_session_position(s.s) == 5);
        // The cancel sticks until cleared; then the session runs again.
        CHECK(ember_session_generate(s.s, greedy.s, 3, nullptr, nullptr, &n_gen) == EMBER_ERR_CANCELLED);
        CHECK(n_gen == 0);
        REQUIRE(ember_session_clear_cancel(s.s) == EMBER_OK);
        REQUIRE(ember_session_generate(s.s, greedy.s, 3, nullptr, nullptr, &n_gen) == EMBER_OK);
        CHECK(n_gen == 3);
    }
    SUBCASE("progress callback: called up to 1, and false cancels the load") {
        struct Prog {
            int calls = 0;
            float last = -1;
            bool answer = true;
        } prog;
        ember_model_params mp;
        ember_model_params_init(&mp);
        mp.progress = [](float p, void* ud) {
            auto* g = static_cast<Prog*>(ud);
            ++g->calls;
            g->last = p;
            return g->answer;
        };
        mp.progress_user_data = &prog;
        ember_model* m = nullptr;
        REQUIRE(ember_model_load(kStories.c_str(), &mp, &m) == EMBER_OK);
        CHECK(prog.calls > 0);
        CHECK(prog.last == doctest::Approx(1.0f));
        ember_model_free(m);

        prog = Prog{};
        prog.answer = false;
        m = reinterpret_cast<ember_model*>(1);
        CHECK(ember_model_load(kStories.c_str(), &mp, &m) == EMBER_ERR_CANCELLED);
        CHECK(m == nullptr);
        CHECK(prog.calls == 1);
        CHECK(last_error().find("cancel") != std::string::npos);
    }
}

TEST_CASE("the last error is per thread") {
    ember_model* m = nullptr;
    REQUIRE(ember_model_load("/nonexistent/a.gguf", nullptr, &m) == EMBER_ERR_IO);
    const std::string mine = last_error();
    REQUIRE(mine.find("/nonexistent/a.gguf") != std::string::npos);

    std::string theirs_before, theirs_after;
    std::thread other([&] {
        theirs_before = ember_last_error();
        ember_sampler* s = nullptr;
        (void)ember_sampler_create_greedy(nullptr);
        theirs_after = ember_last_error();
        (void)s;
    });
    other.join();
    CHECK(theirs_before.empty());
    CHECK(theirs_after.find("out is NULL") != std::string::npos);
    CHECK(last_error() == mine);  // untouched by the other thread

    // A getter leaves it alone; a successful call that returns a status clears it.
    CHECK(ember_model_n_vocab(stories()) == 512);
    CHECK(ember_model_n_vocab(nullptr) == -1);
    CHECK(last_error() == mine);
    int32_t type = 0;
    CHECK(ember_model_meta_type(stories(), "general.architecture", &type) == EMBER_OK);
    CHECK(last_error().empty());
}

TEST_CASE("a model freed before its session: the session keeps working") {
    ember_model* m = nullptr;
    REQUIRE(ember_model_load(kStories.c_str(), nullptr, &m) == EMBER_OK);
    ember_session_params sp;
    ember_session_params_init(&sp);
    sp.n_threads = 1;
    ember_session* s = nullptr;
    REQUIRE(ember_session_create(m, &sp, &s) == EMBER_OK);
    ember_model_free(m);
    Sampler greedy;
    REQUIRE(ember_session_prefill(s, kOnceUponATime.data(), 5) == EMBER_OK);
    int32_t n_gen = 0;
    REQUIRE(ember_session_generate(s, greedy.s, 4, nullptr, nullptr, &n_gen) == EMBER_OK);
    CHECK(n_gen == 4);
    ember_session_free(s);
}

TEST_CASE("chat templates through the C ABI: the model's own, a given one, errors") {
    const std::string conv = R"({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true})";
    size_t needed = 0;
    // stories260K has no template: ChatML, with its BOS/EOS available as variables.
    REQUIRE(ember_chat_render(stories(), nullptr, conv.c_str(), nullptr, 0, &needed) == EMBER_OK);
    std::string out(needed, '\0');
    REQUIRE(ember_chat_render(stories(), nullptr, conv.c_str(), out.data(), out.size(), &needed) == EMBER_OK);
    out.resize(needed - 1);
    CHECK(out == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    const char* tmpl = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}{{ eos_token }}";
    char buf[64];
    REQUIRE(ember_chat_render(stories(), tmpl, conv.c_str(), buf, sizeof buf, &needed) == EMBER_OK);
    CHECK(std::string(buf) == "<s>[user] Hi</s>");
    REQUIRE(ember_chat_render(nullptr, tmpl, conv.c_str(), buf, sizeof buf, &needed) == EMBER_OK);
    CHECK(std::string(buf) == "[user] Hi");  // no model: no special tokens
    // Errors: a status and a message naming the line, never a crash.
    CHECK(ember_chat_render(nullptr, "line one\n{% if %}", conv.c_str(), buf, sizeof buf, &needed) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(last_error().find("line 2") != std::string::npos);
    CHECK(ember_chat_render(nullptr, "{{ raise_exception('no') }}", conv.c_str(), buf, sizeof buf, &needed) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_chat_render(nullptr, "{% for i in range(100000) %}{% for j in range(100000) %}{{ 'xxxxxxxx' }}{% endfor %}{% endfor %}",
                            conv.c_str(), buf, sizeof buf, &needed) == EMBER_ERR_OUT_OF_MEMORY);
    CHECK(ember_chat_render(nullptr, tmpl, "{not json", buf, sizeof buf, &needed) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_chat_render(nullptr, nullptr, conv.c_str(), buf, sizeof buf, &needed) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_chat_render(stories(), nullptr, nullptr, buf, sizeof buf, &needed) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_chat_render(stories(), nullptr, conv.c_str(), buf, sizeof buf, nullptr) == EMBER_ERR_INVALID_ARGUMENT);
}

TEST_CASE("chats through the C ABI: turns, save and load, bad arguments") {
    ember_chat_params cp;
    REQUIRE(ember_chat_params_init(&cp) == EMBER_OK);
    cp.system = "Be brief.";
    cp.strategy = EMBER_CHAT_BUDGET;
    cp.reserve = 64;
    ember_session_params sp;
    ember_session_params_init(&sp);
    sp.n_ctx = 256;
    sp.n_threads = 1;
    ember_chat* chat = nullptr;
    REQUIRE(ember_chat_create(stories(), &sp, &cp, &chat) == EMBER_OK);
    Sampler greedy;
    std::string text;
    auto collect = [](const char* t, size_t n, int32_t, void* ud) {
        static_cast<std::string*>(ud)->append(t, n);
        return true;
    };
    for (int turn = 0; turn < 12; ++turn) {  // far past 256 tokens: the strategy keeps it fitting
        int32_t n_gen = 0;
        REQUIRE(ember_chat_say(chat, greedy.s, "Tell me a story", 24, collect, &text, &n_gen) == EMBER_OK);
        CHECK(n_gen > 0);
    }
    CHECK(ember_chat_n_messages(chat) == 24);
    CHECK_FALSE(text.empty());
    const std::string path = (fs::temp_directory_path() / ("ember-capi-chat-" + std::to_string(getpid()))).string();
    REQUIRE(ember_chat_save(chat, path.c_str()) == EMBER_OK);
    ember_chat* again = nullptr;
    sp.n_ctx = 512;  // the default reserve (256) needs more room; any context holding the state will do
    REQUIRE(ember_chat_create(stories(), &sp, nullptr, &again) == EMBER_OK);
    REQUIRE(ember_chat_load(again, path.c_str()) == EMBER_OK);
    CHECK(ember_chat_n_messages(again) == 24);
    CHECK(ember_chat_load(again, kStories.c_str()) == EMBER_ERR_BAD_FILE);
    CHECK(ember_chat_n_messages(again) == 24);
    CHECK(ember_chat_reset(again) == EMBER_OK);
    CHECK(ember_chat_n_messages(again) == 0);

    // Bad arguments.
    ember_chat* bad = nullptr;
    cp.strategy = 7;
    CHECK(ember_chat_create(stories(), &sp, &cp, &bad) == EMBER_ERR_INVALID_ARGUMENT);
    cp.strategy = EMBER_CHAT_WINDOW;
    cp.reserve = 100000;
    CHECK(ember_chat_create(stories(), &sp, &cp, &bad) == EMBER_ERR_INVALID_ARGUMENT);
    cp.struct_size = 2;
    CHECK(ember_chat_create(stories(), &sp, &cp, &bad) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(bad == nullptr);
    CHECK(ember_chat_create(nullptr, nullptr, nullptr, &bad) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_chat_say(chat, greedy.s, nullptr, 4, nullptr, nullptr, nullptr) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_chat_say(nullptr, greedy.s, "x", 4, nullptr, nullptr, nullptr) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_chat_n_messages(nullptr) == -1);

    // Freeing the chat from its own callback is deferred until the turn returns (it stops, cancelled).
    struct Kill {
        ember_chat* c;
        int calls = 0;
    } k{chat};
    auto kill = [](const char*, size_t, int32_t, void* ud) {
        auto* kk = static_cast<Kill*>(ud);
        if (++kk->calls == 2) ember_chat_free(kk->c);
        return true;
    };
    CHECK(ember_chat_say(chat, greedy.s, "More", 20, kill, &k, nullptr) == EMBER_ERR_CANCELLED);
    CHECK(k.calls == 2);
    ember_chat_free(again);
    fs::remove(path);
}

// ---- ABI additions for the bindings (issue 14) ------------------------------------------------------------

namespace {
std::string text_of(ember_status (*fn)(const ember_model*, char*, size_t, size_t*), const ember_model* m) {
    size_t needed = 0;
    REQUIRE(fn(m, nullptr, 0, &needed) == EMBER_OK);
    std::string s(needed, '\0');
    REQUIRE(fn(m, s.data(), s.size(), &needed) == EMBER_OK);
    s.resize(needed - 1);
    return s;
}

std::string meta_json(const ember_model* m, const char* key) {
    size_t needed = 0;
    REQUIRE(ember_model_meta_json(m, key, nullptr, 0, &needed) == EMBER_OK);
    std::string s(needed, '\0');
    REQUIRE(ember_model_meta_json(m, key, s.data(), s.size(), &needed) == EMBER_OK);
    s.resize(needed - 1);
    return s;
}

struct Streamed {
    std::string text;
    std::vector<int32_t> tokens;
    int stop_after = -1;     // return EMBER_STREAM_STOP on this call
    int error_after = -1;    // return EMBER_STREAM_ERROR on this call
    bool nul_terminated = true;
};

int32_t stream_cb(const char* text, size_t len, int32_t token, void* ud) {
    auto* s = static_cast<Streamed*>(ud);
    s->nul_terminated = s->nul_terminated && text[len] == '\0';
    s->text.append(text, len);
    s->tokens.push_back(token);
    const int calls = static_cast<int>(s->tokens.size());
    if (calls == s->error_after) return EMBER_STREAM_ERROR;
    if (calls == s->stop_after) return EMBER_STREAM_STOP;
    return EMBER_STREAM_CONTINUE;
}
}  // namespace

TEST_CASE("versions, backends and the log hook") {
    CHECK(EMBER_ERR_BUFFER_TOO_SMALL == 10);
    CHECK(EMBER_ERR_NOT_FOUND == 11);
    CHECK(EMBER_ERR_CALLBACK == 12);
    CHECK(std::string(ember_status_string(EMBER_ERR_CALLBACK)) == "callback error");
    CHECK(ember_version_number() == EMBER_VERSION_NUMBER);
    CHECK(std::to_string(EMBER_VERSION_MAJOR) + "." + std::to_string(EMBER_VERSION_MINOR) + "." +
              std::to_string(EMBER_VERSION_PATCH) == ember_version());
    REQUIRE(ember_backend_count() >= 1);
    CHECK(std::string(ember_backend_name(0)) == "cpu");
    CHECK(ember_backend_name(-1) == nullptr);
    CHECK(ember_backend_name(ember_backend_count()) == nullptr);

    struct Log {
        std::mutex mu;
        std::vector<std::pair<int, std::string>> lines;
    } log;
    ember_set_log_callback(
        [](int32_t level, const char* msg, void* ud) {
            auto* l = static_cast<Log*>(ud);
            std::lock_guard lk(l->mu);
            l->lines.emplace_back(level, msg);
        },
        &log);
    ember_session_params sp;
    ember_session_params_init(&sp);
    sp.n_threads = 100000;  // clamped, and said so
    ember_session* s = nullptr;
    REQUIRE(ember_session_create(stories(), &sp, &s) == EMBER_OK);
    ember_session_free(s);
    ember_set_log_callback(nullptr, nullptr);
    REQUIRE(ember_session_create(stories(), &sp, &s) == EMBER_OK);  // no listener now: nothing recorded
    ember_session_free(s);
    bool clamped = false, chose_ctx = false;
    for (const auto& [level, msg] : log.lines) {
        clamped = clamped || (level == EMBER_LOG_WARN && msg.find("clamped") != std::string::npos);
        chose_ctx = chose_ctx || (level == EMBER_LOG_INFO && msg.find("n_ctx 0 chose") != std::string::npos);
    }
    CHECK(clamped);
    CHECK(chose_ctx);
    CHECK(log.lines.size() == 2);
}

TEST_CASE("model info, metadata enumeration, types and JSON") {
    ember_model* m = stories();
    CHECK(text_of(ember_model_architecture, m) == "llama");
    CHECK(text_of(ember_model_backend, m) == "cpu");
    (void)text_of(ember_model_name, m);  // may be empty; must not fail
    CHECK(ember_model_n_params(m) > 200000);
    CHECK(ember_model_n_params(m) < 400000);
    CHECK(ember_model_size(m) > 0);
    CHECK(ember_model_n_params(nullptr) == -1);

    const int32_t n = ember_model_meta_count(m);
    REQUIRE(n > 5);
    bool saw_arch = false, saw_tokens = false;
    for (int32_t i = 0; i < n; ++i) {
        size_t needed = 0;
        REQUIRE(ember_model_meta_key(m, i, nullptr, 0, &needed) == EMBER_OK);
        std::string key(needed, '\0');
        REQUIRE(ember_model_meta_key(m, i, key.data(), key.size(), &needed) == EMBER_OK);
        key.resize(needed - 1);
        int32_t type = -1;
        REQUIRE(ember_model_meta_type(m, key.c_str(), &type) == EMBER_OK);
        CHECK(type >= EMBER_META_U8);
        CHECK(type <= EMBER_META_F64);
        if (key == "general.architecture") saw_arch = type == EMBER_META_STRING;
        if (key == "tokenizer.ggml.tokens") saw_tokens = type == EMBER_META_ARRAY;
    }
    CHECK(saw_arch);
    CHECK(saw_tokens);
    size_t needed = 0;
    CHECK(ember_model_meta_key(m, n, nullptr, 0, &needed) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_model_meta_key(m, -1, nullptr, 0, &needed) == EMBER_ERR_INVALID_ARGUMENT);
    int32_t type = 0;
    CHECK(ember_model_meta_type(m, "no.such.key", &type) == EMBER_ERR_NOT_FOUND);
    CHECK(type == -1);
    CHECK(ember_model_meta_json(m, "no.such.key", nullptr, 0, &needed) == EMBER_ERR_NOT_FOUND);

    // JSON: the whole array, parsed back by an independent parser and compared with the tokenizer.
    CHECK(meta_json(m, "general.architecture") == "\"llama\"");
    const nlohmann::json tokens = nlohmann::json::parse(meta_json(m, "tokenizer.ggml.tokens"));
    REQUIRE(tokens.is_array());
    CHECK(tokens.size() == 512);
    const ember_tokenizer* tok = ember_model_tokenizer(m);
    size_t pn = 0;
    std::string piece(64, '\0');
    REQUIRE(ember_token_piece(tok, 403, EMBER_DETOKENIZE_RENDER_SPECIAL, piece.data(), piece.size(), &pn) == EMBER_OK);
    CHECK(tokens[403].get<std::string>().find(std::string(piece.c_str()).substr(1)) != std::string::npos);
    const nlohmann::json scores = nlohmann::json::parse(meta_json(m, "tokenizer.ggml.scores"));
    CHECK(scores.size() == 512);
    CHECK(scores[0].is_number());
    const nlohmann::json ctx = nlohmann::json::parse(meta_json(m, "llama.context_length"));
    CHECK(ctx.get<int>() == ember_model_n_ctx_train(m));
}

TEST_CASE("GGUF metadata JSON: hostile strings stay valid JSON") {
    ember::gguf::Value v = ember::gguf::Value::string(std::string("a\"b\\c\n\x01\xff\xc3(\xe2\x82\xac", 13));
    const nlohmann::json j = nlohmann::json::parse(v.to_json());  // throws on invalid UTF-8 or escapes
    CHECK(j.get<std::string>() == "a\"b\\c\n\x01\xEF\xBF\xBD\xEF\xBF\xBD(\xE2\x82\xAC");
    CHECK(ember::gguf::Value::f32(std::nanf("")).to_json() == "null");
    CHECK(ember::gguf::Value::i64(-5).to_json() == "-5");
    CHECK(ember::gguf::Value::u64(~uint64_t{0}).to_json() == "18446744073709551615");
    CHECK(ember::gguf::Value::boolean(true).to_json() == "true");
    CHECK(ember::gguf::Value::arrays({ember::gguf::Value::i32s({1, -2}), ember::gguf::Value::strings({"x"})}).to_json() ==
          "[[1,-2],[\"x\"]]");
}

TEST_CASE("tokens: attributes, special roles, add_bos/add_eos") {
    const ember_tokenizer* tok = ember_model_tokenizer(stories());
    const int32_t bos = ember_token_bos(tok);
    REQUIRE(bos >= 0);
    CHECK(ember_token_special(tok, EMBER_SPECIAL_BOS) == bos);
    CHECK(ember_token_special(tok, EMBER_SPECIAL_EOS) == ember_token_eos(tok));
    CHECK(ember_token_special(tok, 99) == -1);
    CHECK(ember_token_special(nullptr, EMBER_SPECIAL_BOS) == -1);
    CHECK((ember_token_attr(tok, bos) & EMBER_TOKEN_ATTR_CONTROL) != 0);
    CHECK((ember_token_attr(tok, 403) & EMBER_TOKEN_ATTR_NORMAL) != 0);
    CHECK(ember_token_attr(tok, -1) == 0);
    CHECK(ember_token_attr(tok, 512) == 0);
    CHECK(ember_tokenizer_add_bos(tok) == 1);  // tokenize with ADD_SPECIAL starts with BOS
    CHECK(tokenize(tok, "Once", EMBER_TOKENIZE_ADD_SPECIAL)[0] == bos);
    CHECK(ember_tokenizer_add_eos(tok) == 0);
    CHECK(ember_tokenizer_add_bos(nullptr) == -1);
}

TEST_CASE("load from memory: the same model as from the file; hostile bytes fail cleanly") {
    std::ifstream in(kStories, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(bytes.size() > 1000);
    ember_model* m = nullptr;
    REQUIRE(ember_model_load_from_memory(bytes.data(), bytes.size(), nullptr, &m) == EMBER_OK);
    std::fill(bytes.begin(), bytes.end(), '\0');  // copied: the model must not need them any more
    ember_session_params sp;
    ember_session_params_init(&sp);
    sp.n_threads = 1;
    ember_session* s = nullptr;
    REQUIRE(ember_session_create(m, &sp, &s) == EMBER_OK);
    REQUIRE(ember_session_prefill(s, kOnceUponATime.data(), 5) == EMBER_OK);
    Sampler greedy;
    Streamed got;
    ember_generate_params gp;
    ember_generate_params_init(&gp);
    gp.max_tokens = 16;
    gp.stop_at_eog = 0;
    gp.stream = stream_cb;
    gp.stream_user_data = &got;
    REQUIRE(ember_session_generate_ex(s, greedy.s, &gp, nullptr) == EMBER_OK);
    std::vector<int32_t> sampled = got.tokens;
    CHECK(sampled.size() <= 16);
    CHECK(std::vector<int32_t>(kGoldenGreedy16.begin(), kGoldenGreedy16.begin() + static_cast<long>(sampled.size())) ==
          sampled);  // every streamed token is the golden one (a held-back piece may merge two)
    ember_session_free(s);
    ember_model_free(m);

    const char junk[] = "GGUF\x03\0\0\0garbage";
    CHECK(ember_model_load_from_memory(junk, sizeof junk, nullptr, &m) == EMBER_ERR_BAD_FILE);
    CHECK(m == nullptr);
    CHECK(last_error().find("<memory>") != std::string::npos);
    CHECK(ember_model_load_from_memory(nullptr, 10, nullptr, &m) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_model_load_from_memory(nullptr, 0, nullptr, &m) == EMBER_ERR_BAD_FILE);
}

TEST_CASE("generate_ex: stop reasons, stop strings, logit bias, stream errors") {
    const ember_tokenizer* tok = ember_model_tokenizer(stories());
    const auto fresh = [](Session& s) { REQUIRE(ember_session_prefill(s.s, kOnceUponATime.data(), 5) == EMBER_OK); };
    ember_generate_params gp;
    ember_generate_result r;
    const auto init = [&](Streamed& got) {
        ember_generate_params_init(&gp);
        gp.stop_at_eog = 0;
        gp.stream = stream_cb;
        gp.stream_user_data = &got;
        r.struct_size = sizeof r;
    };
    Sampler greedy;
    // The reference text: 16 greedy tokens.
    std::string reference;
    {
        Session s;
        fresh(s);
        Streamed got;
        init(got);
        gp.max_tokens = 16;
        int32_t ids[16] = {};
        gp.tokens = ids;
        gp.tokens_cap = 16;
        REQUIRE(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_OK);
        CHECK(r.n_generated == 16);
        CHECK(std::vector<int32_t>(ids, ids + 16) == kGoldenGreedy16);
        CHECK(r.stop_reason == EMBER_STOP_LENGTH);
        CHECK(r.stop_index == -1);
        CHECK(got.nul_terminated);
        CHECK(ember_session_position(s.s) == 5 + 16);
        reference = got.text;
        size_t needed = 0;
        std::string text(256, '\0');
        REQUIRE(ember_detokenize(tok, kGoldenGreedy16.data(), 16, 0, text.data(), text.size(), &needed) == EMBER_OK);
        CHECK(reference == std::string(text.c_str()));
    }
    REQUIRE(reference.size() > 20);
    SUBCASE("a stop string ends generation; it and what follows are not streamed") {
        const std::string stop = reference.substr(10, 4);
        const char* stops[] = {"never appears here", stop.c_str()};
        Session s;
        fresh(s);
        Streamed got;
        init(got);
        gp.max_tokens = 16;
        gp.stop = stops;
        gp.n_stop = 2;
        REQUIRE(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_OK);
        CHECK(r.stop_reason == EMBER_STOP_STRING);
        CHECK(r.stop_index == 1);
        CHECK(got.text == reference.substr(0, reference.find(stop)));
        CHECK(r.n_generated < 16);
        CHECK(ember_session_position(s.s) == 5 + r.n_generated - 1);  // the stopping token is not evaluated
    }
    SUBCASE("the stream callback stops, or reports an error") {
        Session s;
        fresh(s);
        Streamed got;
        init(got);
        gp.max_tokens = 16;
        got.stop_after = 3;
        REQUIRE(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_OK);
        CHECK(r.stop_reason == EMBER_STOP_CALLBACK);
        CHECK(got.tokens.size() == 3);
        Streamed bad;
        init(bad);
        bad.error_after = 2;
        CHECK(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_ERR_CALLBACK);
        CHECK(bad.tokens.size() == 2);
        CHECK(r.n_generated >= 2);
        CHECK(last_error().find("stream callback") != std::string::npos);
    }
    SUBCASE("logit bias: -infinity forbids the greedy choice") {
        Session s;
        fresh(s);
        Streamed got;
        init(got);
        gp.max_tokens = 1;
        const int32_t ids[] = {kGoldenGreedy16[0]};
        const float vals[] = {-INFINITY};
        gp.bias_tokens = ids;
        gp.bias_values = vals;
        gp.n_bias = 1;
        REQUIRE(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_OK);
        REQUIRE(got.tokens.size() == 1);
        CHECK(got.tokens[0] != kGoldenGreedy16[0]);
        const int32_t bad_ids[] = {512};
        gp.bias_tokens = bad_ids;
        CHECK(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_ERR_INVALID_ARGUMENT);
        const float nan_vals[] = {NAN};
        gp.bias_tokens = ids;
        gp.bias_values = nan_vals;
        CHECK(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_ERR_INVALID_ARGUMENT);
        gp.n_bias = 100000;
        CHECK(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_ERR_INVALID_ARGUMENT);
    }
    SUBCASE("a full context is a stop reason, not silence") {
        ember_session_params sp;
        ember_session_params_init(&sp);
        sp.n_threads = 1;
        sp.n_ctx = 8;
        Session s(&sp);
        fresh(s);
        Streamed got;
        init(got);
        gp.max_tokens = 100;
        REQUIRE(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_OK);
        CHECK(r.stop_reason == EMBER_STOP_CONTEXT_FULL);
        CHECK(ember_session_position(s.s) == 8);
        REQUIRE(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_OK);
        CHECK(r.n_generated == 0);
        CHECK(r.stop_reason == EMBER_STOP_CONTEXT_FULL);
    }
    SUBCASE("bad params") {
        Session s;
        fresh(s);
        Streamed got;
        init(got);
        gp.n_stop = 1;
        gp.stop = nullptr;
        CHECK(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_ERR_INVALID_ARGUMENT);
        const char* empty[] = {""};
        gp.stop = empty;
        CHECK(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_ERR_INVALID_ARGUMENT);
        gp.n_stop = 65;
        CHECK(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_ERR_INVALID_ARGUMENT);
        gp.n_stop = 0;
        r.struct_size = 3;
        CHECK(ember_session_generate_ex(s.s, greedy.s, &gp, &r) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(ember_session_generate_ex(nullptr, greedy.s, nullptr, nullptr) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(ember_session_generate_ex(s.s, greedy.s, nullptr, nullptr) == EMBER_OK);  // defaults
    }
}

TEST_CASE("all logits, the seed in use, chat_say_ex") {
    Session s;
    REQUIRE(ember_session_prefill_ex(s.s, kOnceUponATime.data(), 5, EMBER_PREFILL_ALL_LOGITS) == EMBER_OK);
    const float* last = nullptr;
    const float* at = nullptr;
    int32_t nv = 0, nv2 = 0;
    REQUIRE(ember_session_logits(s.s, &last, &nv) == EMBER_OK);
    REQUIRE(ember_session_logits_at(s.s, 4, &at, &nv2) == EMBER_OK);
    CHECK(nv == nv2);
    CHECK(std::equal(last, last + nv, at));
    // Position 0's logits predict token 1 ("Once" after BOS): compare with a fresh one-token prefill.
    REQUIRE(ember_session_logits_at(s.s, 0, &at, &nv2) == EMBER_OK);
    std::vector<float> first(at, at + nv2);
    Session s1;
    REQUIRE(ember_session_prefill(s1.s, kOnceUponATime.data(), 1) == EMBER_OK);
    REQUIRE(ember_session_logits(s1.s, &last, &nv) == EMBER_OK);
    for (int i = 0; i < nv; ++i) CHECK(first[static_cast<size_t>(i)] == doctest::Approx(last[i]).epsilon(1e-3));
    CHECK(ember_session_logits_at(s.s, 5, &at, &nv2) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_logits_at(s.s, -1, &at, &nv2) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_prefill_ex(s.s, kOnceUponATime.data(), 1, 4u) == EMBER_ERR_INVALID_ARGUMENT);
    int32_t n_tok = 0;
    REQUIRE(ember_session_tokens(s.s, nullptr, 0, &n_tok) == EMBER_OK);
    CHECK(n_tok == 5);
    std::vector<int32_t> cached(5, -1);
    CHECK(ember_session_tokens(s.s, cached.data(), 4, &n_tok) == EMBER_ERR_BUFFER_TOO_SMALL);
    CHECK(cached[0] == -1);
    REQUIRE(ember_session_tokens(s.s, cached.data(), 5, &n_tok) == EMBER_OK);
    CHECK(cached == kOnceUponATime);

    // The seed drawn for EMBER_SEED_RANDOM reproduces the run.
    ember_sampler_params p;
    ember_sampler_params_init(&p);
    CHECK(p.seed == UINT64_MAX);
    p.temperature = 1.0f;
    Sampler random(&p);
    uint64_t seed = 0;
    REQUIRE(ember_sampler_seed(random.s, &seed) == EMBER_OK);
    p.seed = seed;
    Sampler again(&p);
    CHECK(run(random.s, kOnceUponATime, 12) == run(again.s, kOnceUponATime, 12));
    CHECK(ember_sampler_seed(nullptr, &seed) == EMBER_ERR_INVALID_ARGUMENT);

    ember_chat* chat = nullptr;
    ember_session_params sp;
    ember_session_params_init(&sp);
    sp.n_threads = 1;
    REQUIRE(ember_chat_create(stories(), &sp, nullptr, &chat) == EMBER_OK);
    Sampler greedy;
    Streamed got;
    ember_generate_params gp;
    ember_generate_params_init(&gp);
    gp.max_tokens = 8;
    gp.stop_at_eog = 0;
    gp.stream = stream_cb;
    gp.stream_user_data = &got;
    ember_generate_result r;
    r.struct_size = sizeof r;
    REQUIRE(ember_chat_say_ex(chat, greedy.s, "Hello", &gp, &r) == EMBER_OK);
    CHECK(r.n_generated == 8);
    CHECK(r.stop_reason == EMBER_STOP_LENGTH);
    CHECK(!got.text.empty());
    CHECK(ember_chat_n_messages(chat) == 2);
    ember_chat_free(chat);
}

TEST_CASE("generations: pieces one at a time, early stop, stop strings, misuse") {
    Sampler greedy;
    const ember_tokenizer* tok = ember_model_tokenizer(stories());
    std::string reference;
    {
        size_t needed = 0;
        std::string text(256, '\0');
        REQUIRE(ember_detokenize(tok, kGoldenGreedy16.data(), 16, 0, text.data(), text.size(), &needed) == EMBER_OK);
        reference = text.c_str();
    }
    ember_generate_params gp;
    ember_generate_params_init(&gp);
    gp.max_tokens = 16;
    gp.stop_at_eog = 0;
    const auto drain = [](ember_generation* g, int max_pieces, std::string& text, std::vector<int32_t>& toks) {
        for (int i = 0; i < max_pieces; ++i) {
            const char* piece = nullptr;
            size_t len = 0;
            int32_t t = -1;
            REQUIRE(ember_generation_next(g, &piece, &len, &t) == EMBER_OK);
            if (!piece) return false;
            CHECK(piece[len] == '\0');
            text.append(piece, len);
            toks.push_back(t);
        }
        return true;
    };
    SUBCASE("the golden tokens, then the end") {
        Session s;
        REQUIRE(ember_session_prefill(s.s, kOnceUponATime.data(), 5) == EMBER_OK);
        int32_t ids[16] = {};
        gp.tokens = ids;
        gp.tokens_cap = 16;
        ember_generation* g = nullptr;
        REQUIRE(ember_generation_start(s.s, greedy.s, &gp, &g) == EMBER_OK);
        std::string text;
        std::vector<int32_t> toks;
        CHECK_FALSE(drain(g, 100, text, toks));
        CHECK(text == reference);
        CHECK(toks == kGoldenGreedy16);
        CHECK(std::vector<int32_t>(ids, ids + 16) == kGoldenGreedy16);
        ember_generate_result r;
        r.struct_size = sizeof r;
        REQUIRE(ember_generation_result(g, &r) == EMBER_OK);
        CHECK(r.n_generated == 16);
        CHECK(r.stop_reason == EMBER_STOP_LENGTH);
        CHECK(ember_session_position(s.s) == 5 + 16);
        const char* piece = reinterpret_cast<const char*>(1);
        size_t len = 9;
        int32_t t = 0;
        CHECK(ember_generation_next(g, &piece, &len, &t) == EMBER_OK);  // ended stays ended
        CHECK(piece == nullptr);
        ember_generation_free(g);
    }
    SUBCASE("stopping after 3 pieces leaves the third token unevaluated") {
        Session s;
        REQUIRE(ember_session_prefill(s.s, kOnceUponATime.data(), 5) == EMBER_OK);
        ember_generation* g = nullptr;
        REQUIRE(ember_generation_start(s.s, greedy.s, &gp, &g) == EMBER_OK);
        std::string text;
        std::vector<int32_t> toks;
        CHECK(drain(g, 3, text, toks));
        ember_generation_free(g);
        CHECK(ember_session_position(s.s) == 5 + 3 - 1);
    }
    SUBCASE("a cancel before a step refuses it; the generation goes on coherently once cleared") {
        Session s;
        REQUIRE(ember_session_prefill(s.s, kOnceUponATime.data(), 5) == EMBER_OK);
        ember_generation* g = nullptr;
        REQUIRE(ember_generation_start(s.s, greedy.s, &gp, &g) == EMBER_OK);
        std::string text;
        std::vector<int32_t> toks;
        CHECK(drain(g, 2, text, toks));
        REQUIRE(ember_session_cancel(s.s) == EMBER_OK);
        const char* piece = nullptr;
        size_t len = 0;
        int32_t t = 0;
        CHECK(ember_generation_next(g, &piece, &len, &t) == EMBER_ERR_CANCELLED);
        REQUIRE(ember_session_clear_cancel(s.s) == EMBER_OK);
        CHECK(ember_session_position(s.s) == 5 + 1);  // the first piece's token; the second's waits
        REQUIRE(ember_generation_next(g, &piece, &len, &t) == EMBER_OK);
        REQUIRE(piece != nullptr);
        CHECK(t == kGoldenGreedy16[2]);  // the second token was evaluated first: the text goes on as it should
        ember_generation_free(g);
    }
    SUBCASE("a step that fails while evaluating ends the generation") {
        static std::atomic<bool> stop_now{false};
        ember_session_params sp;
        ember_session_params_init(&sp);
        sp.n_threads = 1;
        sp.abort = [](void*) { return stop_now.load(); };
        Session s(&sp);
        REQUIRE(ember_session_prefill(s.s, kOnceUponATime.data(), 5) == EMBER_OK);
        ember_generation* g = nullptr;
        REQUIRE(ember_generation_start(s.s, greedy.s, &gp, &g) == EMBER_OK);
        std::string text;
        std::vector<int32_t> toks;
        CHECK(drain(g, 2, text, toks));
        stop_now = true;
        const char* piece = nullptr;
        size_t len = 0;
        int32_t t = 0;
        CHECK(ember_generation_next(g, &piece, &len, &t) == EMBER_ERR_CANCELLED);
        stop_now = false;
        CHECK(ember_session_position(s.s) == 5 + 1);
        CHECK(ember_generation_next(g, &piece, &len, &t) == EMBER_OK);
        CHECK(piece == nullptr);  // ended: its second piece's token never reached the cache
        ember_generation_free(g);
    }
    SUBCASE("a stop string") {
        Session s;
        REQUIRE(ember_session_prefill(s.s, kOnceUponATime.data(), 5) == EMBER_OK);
        const std::string stop = reference.substr(10, 4);
        const char* stops[] = {stop.c_str()};
        gp.stop = stops;
        gp.n_stop = 1;
        ember_generation* g = nullptr;
        REQUIRE(ember_generation_start(s.s, greedy.s, &gp, &g) == EMBER_OK);
        std::string text;
        std::vector<int32_t> toks;
        CHECK_FALSE(drain(g, 100, text, toks));
        CHECK(text == reference.substr(0, reference.find(stop)));
        ember_generate_result r;
        r.struct_size = sizeof r;
        REQUIRE(ember_generation_result(g, &r) == EMBER_OK);
        CHECK(r.stop_reason == EMBER_STOP_STRING);
        ember_generation_free(g);
    }
    SUBCASE("misuse: a callback given, the session used meanwhile, the session freed first") {
        ember_session_params sp;
        ember_session_params_init(&sp);
        sp.n_threads = 1;
        ember_session* s = nullptr;
        REQUIRE(ember_session_create(stories(), &sp, &s) == EMBER_OK);
        REQUIRE(ember_session_prefill(s, kOnceUponATime.data(), 5) == EMBER_OK);
        ember_generation* g = nullptr;
        ember_generate_params with_cb = gp;
        with_cb.stream = stream_cb;
        CHECK(ember_generation_start(s, greedy.s, &with_cb, &g) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(g == nullptr);
        REQUIRE(ember_generation_start(s, greedy.s, &gp, &g) == EMBER_OK);
        std::string text;
        std::vector<int32_t> toks;
        CHECK(drain(g, 2, text, toks));
        REQUIRE(ember_session_decode(s, 403) == EMBER_OK);  // the session moves under the generation
        const char* piece = nullptr;
        size_t len = 0;
        int32_t t = 0;
        CHECK(ember_generation_next(g, &piece, &len, &t) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(last_error().find("changed") != std::string::npos);
        ember_session_free(s);  // deferred: the generation still holds it, and now it is cancelled
        CHECK(ember_generation_next(g, &piece, &len, &t) == EMBER_ERR_CANCELLED);
        ember_generation_free(g);  // the session goes now
        ember_generation_free(nullptr);
        CHECK(ember_generation_next(nullptr, &piece, &len, &t) == EMBER_ERR_INVALID_ARGUMENT);
    }
}

TEST_CASE("LoRA adapters through the C ABI: load, set with scales, switch, free, bad arguments") {
    const std::string dir = ember::test::testdata("hf/");
    ember_model* model = nullptr;
    REQUIRE(ember_model_load((dir + "llama").c_str(), nullptr, &model) == EMBER_OK);
    ember_adapter *a = nullptr, *b = nullptr;
    REQUIRE(ember_adapter_load(model, (dir + "llama-lora").c_str(), &a) == EMBER_OK);
    REQUIRE(ember_adapter_load(model, (dir + "llama-lora2/adapter.gguf").c_str(), &b) == EMBER_OK);
    CHECK(ember_adapter_rank(a) == 4);
    CHECK(ember_adapter_rank(b) == 8);
    CHECK(ember_adapter_n_targets(a) == 14);

    const auto golden = nlohmann::json::parse(std::ifstream(dir + "llama-lora/golden.json"));
    const auto prompt = golden["prompt_ids"].get<std::vector<int32_t>>();
    const auto want = golden["logits"].back().get<std::vector<float>>();
    ember_session* s = nullptr;
    REQUIRE(ember_session_create(model, nullptr, &s) == EMBER_OK);
    auto last_logits = [&] {
        REQUIRE(ember_session_reset(s) == EMBER_OK);
        REQUIRE(ember_session_prefill(s, prompt.data(), static_cast<int32_t>(prompt.size())) == EMBER_OK);
        const float* l = nullptr;
        int32_t n = 0;
        REQUIRE(ember_session_logits(s, &l, &n) == EMBER_OK);
        return std::vector<float>(l, l + n);
    };
    const std::vector<float> base = last_logits();
    const ember_adapter* both[] = {a, b};
    const float zero[] = {0.f, 0.f}, one[] = {1.f, 0.f};
    CHECK(ember_session_set_adapters(s, both, zero, 2) == EMBER_OK);
    CHECK(last_logits() == base);  // scale 0: bit for bit
    CHECK(ember_session_set_adapters(s, both, one, 2) == EMBER_OK);
    const std::vector<float> with_a = last_logits();
    float diff = 0.f, moved = 0.f;
    for (size_t v = 0; v < want.size(); ++v) {
        diff = std::max(diff, std::fabs(with_a[v] - want[v]));
        moved = std::max(moved, std::fabs(base[v] - want[v]));
    }
    CHECK(diff < 3e-3f);  // peft's merged logits (scale ~2.4; test_lora holds the full comparison)
    CHECK(moved > 0.1f);

    // Bad arguments: the session keeps its adapters.
    const float nan[] = {std::nanf(""), 1.f}, inf[] = {INFINITY, 1.f}, huge[] = {1e9f, 1.f};
    const ember_adapter* with_null[] = {a, nullptr};
    const ember_adapter* twice[] = {a, a};
    CHECK(ember_session_set_adapters(nullptr, both, one, 2) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_set_adapters(s, both, one, -1) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_set_adapters(s, both, one, 65) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_set_adapters(s, nullptr, one, 1) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_set_adapters(s, both, nullptr, 1) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_set_adapters(s, with_null, one, 2) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_set_adapters(s, both, nan, 2) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_set_adapters(s, both, inf, 2) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_set_adapters(s, both, huge, 2) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_set_adapters(s, twice, one, 2) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(last_error().find("again") != std::string::npos);
    ember_adapter* foreign = nullptr;  // loaded for another model
    REQUIRE(ember_adapter_load(stories(), (dir + "llama-lora").c_str(), &foreign) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(foreign == nullptr);
    CHECK(last_error().find("ember_adapter_load") == 0);
    ember_model* other = nullptr;
    REQUIRE(ember_model_load((dir + "llama").c_str(), nullptr, &other) == EMBER_OK);
    REQUIRE(ember_adapter_load(other, (dir + "llama-lora").c_str(), &foreign) == EMBER_OK);
    const ember_adapter* wrong[] = {foreign};
    CHECK(ember_session_set_adapters(s, wrong, one, 1) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(last_logits() == with_a);
    ember_adapter_free(foreign);
    ember_model_free(other);

    ember_adapter* out = nullptr;
    CHECK(ember_adapter_load(nullptr, (dir + "llama-lora").c_str(), &out) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_adapter_load(model, nullptr, &out) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_adapter_load(model, (dir + "llama-lora").c_str(), nullptr) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_adapter_load(model, (dir + "qwen3-lora/adapter.gguf").c_str(), &out) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_adapter_load(model, kStories.c_str(), &out) == EMBER_ERR_BAD_FILE);
    CHECK(ember_adapter_load(model, (dir + "no-such-adapter").c_str(), &out) == EMBER_ERR_IO);
    CHECK(out == nullptr);

    // Freed adapters and model: the session keeps what it uses.
    ember_adapter_free(a);
    ember_adapter_free(b);
    ember_model_free(model);
    CHECK(last_logits() == with_a);
    CHECK(ember_session_set_adapters(s, nullptr, nullptr, 0) == EMBER_OK);
    CHECK(last_logits() == base);
    ember_session_free(s);
}

TEST_CASE("grammars: ember_sampler_set_grammar, ember_sampler_set_json_schema, ember_json_schema_to_grammar") {
    ember_sampler_params p;
    ember_sampler_params_init(&p);
    p.temperature = 1.5f;
    p.top_k = 0;
    p.top_p = 1.f;
    p.min_p = 0.f;
    auto generate = [](ember_sampler* smp, std::string& text) {
        Session s;
        REQUIRE(ember_session_prefill(s.s, kOnceUponATime.data(), static_cast<int32_t>(kOnceUponATime.size())) == EMBER_OK);
        auto cb = [](const char* t, size_t len, int32_t, void* ud) -> bool {
            static_cast<std::string*>(ud)->append(t, len);
            return true;
        };
        int32_t n = 0;
        return ember_session_generate(s.s, smp, 32, cb, &text, &n);
    };
    for (uint64_t seed = 1; seed <= 8; ++seed) {
        p.seed = seed;
        Sampler smp(&p);
        REQUIRE(ember_sampler_set_grammar(smp.s, stories(), "root ::= \"yes\" | \"no\"") == EMBER_OK);
        std::string text;
        REQUIRE(generate(smp.s, text) == EMBER_OK);
        CHECK((text == "yes" || text == "no"));
        REQUIRE(ember_sampler_set_json_schema(smp.s, stories(), R"({"enum": ["red", "green"]})") == EMBER_OK);
        text.clear();
        REQUIRE(generate(smp.s, text) == EMBER_OK);
        CHECK((text == "\"red\"" || text == "\"green\""));
    }
    Sampler smp(&p);
    // Bad grammars and schemas: INVALID_ARGUMENT with line and column; the sampler keeps its grammar.
    REQUIRE(ember_sampler_set_grammar(smp.s, stories(), "root ::= \"ok\"") == EMBER_OK);
    CHECK(ember_sampler_set_grammar(smp.s, stories(), "root ::= \"a\"\nx ::= (") == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(last_error().find("line 2") != std::string::npos);
    CHECK(ember_sampler_set_json_schema(smp.s, stories(), "{\"type\": 3}") == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_sampler_set_grammar(nullptr, stories(), "root ::= \"a\"") == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_sampler_set_grammar(smp.s, nullptr, "root ::= \"a\"") == EMBER_ERR_INVALID_ARGUMENT);
    std::string text;
    REQUIRE(generate(smp.s, text) == EMBER_OK);
    CHECK(text == "ok");
    // accept() of a token the grammar refuses; reset restarts it; NULL removes it.
    REQUIRE(ember_sampler_reset(smp.s) == EMBER_OK);
    CHECK(ember_sampler_accept(smp.s, 1) == EMBER_ERR_INVALID_ARGUMENT);  // <s> is no text
    REQUIRE(ember_sampler_set_grammar(smp.s, stories(), nullptr) == EMBER_OK);
    CHECK(ember_sampler_accept(smp.s, 1) == EMBER_OK);
    // The converter, two-call pattern.
    size_t needed = 0;
    REQUIRE(ember_json_schema_to_grammar(R"({"type":"boolean"})", nullptr, 0, &needed) == EMBER_OK);
    std::string gbnf(needed, '\0');
    REQUIRE(ember_json_schema_to_grammar(R"({"type":"boolean"})", gbnf.data(), gbnf.size(), &needed) == EMBER_OK);
    CHECK(gbnf.find("root ::= boolean") == 0);
    CHECK(ember_json_schema_to_grammar("{", nullptr, 0, &needed) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_json_schema_to_grammar(nullptr, nullptr, 0, &needed) == EMBER_ERR_INVALID_ARGUMENT);
}
