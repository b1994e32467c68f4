// Callers that could take the host down: absurd thread counts and contexts, fork(), re-entry from
// callbacks, racy cancels, FIFOs, files truncated under a model, padded vocabularies, non-finite sampler
// parameters. Each must end in a status (or work), never in a hang, a crash or an exhausted machine.
// Anything that could hang or exhaust the machine before its fix runs in a child under limits (child.hpp).
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "child.hpp"
#include "ember.h"
#include "gguf/reader.hpp"
#include "gguf/writer.hpp"
#include "testdata.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kStories = ember::test::testdata("models/stories260K.gguf");
const std::vector<int32_t> kOnceUponATime = {1, 403, 407, 261, 378};  // golden/stories260K-once.json

ember_model* load(const std::string& path, int32_t n_threads = 1, bool use_mmap = true) {
    ember_model_params mp;
    ember_model_params_init(&mp);
    mp.n_threads = n_threads;
    mp.use_mmap = use_mmap;
    ember_model* m = nullptr;
    const ember_status st = ember_model_load(path.c_str(), &mp, &m);
    if (st != EMBER_OK) FAIL_CHECK("ember_model_load: " << ember_last_error());
    return m;
}

ember_session* session(ember_model* m, int32_t n_threads = 1, int32_t n_ctx = 0) {
    ember_session_params sp;
    ember_session_params_init(&sp);
    sp.n_threads = n_threads;
    sp.n_ctx = n_ctx;
    ember_session* s = nullptr;
    const ember_status st = ember_session_create(m, &sp, &s);
    if (st != EMBER_OK) FAIL_CHECK("ember_session_create: " << ember_last_error());
    return s;
}

std::vector<int32_t> greedy(ember_session* s, int32_t n) {
    ember_sampler* g = nullptr;
    REQUIRE(ember_sampler_create_greedy(&g) == EMBER_OK);
    std::vector<int32_t> out;
    auto cb = [](const char*, size_t, int32_t t, void* ud) {
        static_cast<std::vector<int32_t>*>(ud)->push_back(t);
        return true;
    };
    int32_t n_gen = 0;
    const ember_status st = ember_session_generate(s, g, n, cb, &out, &n_gen);
    ember_sampler_free(g);
    CHECK_MESSAGE(st == EMBER_OK, ember_last_error());
    return out;
}


// stories260K rewritten through `change` (metadata and tensors as they are unless it replaces them).
std::string rewrite_stories(const char* name, const std::function<void(const ember::gguf::File&, ember::gguf::Writer&)>& change,
                            const std::function<bool(const std::string&)>& keep_tensor = {}) {
    const auto f = ember::gguf::File::open(kStories);
    ember::gguf::Writer w(f.alignment());
    for (const auto& [k, v] : f.metadata())
        if (k != "general.alignment") w.set(k, v);
    for (const auto& t : f.tensors())
        if (!keep_tensor || keep_tensor(t.name))
            w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.n_bytes);
    change(f, w);
    const std::string path = ember::test::temp_path(name);
    w.write(path);
    return path;
}

}  // namespace

TEST_CASE("n_threads = 100000 for the model and its session: clamped, not 100000 threads") {
    // In a child under `ulimit -v 4000000` and a timeout: before the fix this created threads until the
    // system refused one and then hung, or left the machine unable to fork.
    const auto r = ember::test::run_in_child([] {
        ember_model_params mp;
        ember_model_params_init(&mp);
        mp.n_threads = 100000;
        ember_model* m = nullptr;
        if (ember_model_load(kStories.c_str(), &mp, &m) != EMBER_OK) return 10;
        ember_session_params sp;
        ember_session_params_init(&sp);
        ember_session* s = nullptr;
        if (ember_session_create(m, &sp, &s) != EMBER_OK) return 11;  // the model's 100000
        ember_session* s2 = nullptr;
        sp.n_threads = 100000;
        if (ember_session_create(m, &sp, &s2) != EMBER_OK) return 12;
        const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
        // The pool's workers, this thread, and a sanitizer's helper thread at most.
        if (ember::test::thread_count() > static_cast<int>(4 * hw) + 2) return 13;
        if (ember_session_prefill(s2, kOnceUponATime.data(), 5) != EMBER_OK) return 14;
        ember_session_free(s2);
        ember_session_free(s);
        ember_model_free(m);
        return 0;
    }, 60, size_t(4000000) * 1024);
    CHECK_MESSAGE(r.ok(), r.describe());
}

TEST_CASE("sessions of one model share one worker pool: eight sessions, no more threads than one") {
    ember_model* m = load(kStories, 2);
    ember_session* first = session(m, 2);
    REQUIRE(ember_session_prefill(first, kOnceUponATime.data(), 5) == EMBER_OK);
    const int threads_one = ember::test::thread_count();
    std::vector<ember_session*> more;
    for (int i = 0; i < 7; ++i) {
        more.push_back(session(m, 2));
        REQUIRE(ember_session_prefill(more.back(), kOnceUponATime.data(), 5) == EMBER_OK);
    }
    CHECK(ember::test::thread_count() == threads_one);
    // Sessions on eight threads at once take turns on the pool and agree with one alone.
    const std::vector<int32_t> expected = greedy(first, 12);
    std::vector<std::vector<int32_t>> got(more.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < more.size(); ++i) threads.emplace_back([&, i] { got[i] = greedy(more[i], 12); });
    for (auto& t : threads) t.join();
    for (const auto& g : got) CHECK(g == expected);
    for (auto* s : more) ember_session_free(s);
    ember_session_free(first);
    ember_model_free(m);
}

TEST_CASE("a session made before fork() works in the child" * doctest::skip(ember::test::kThreadSanitized)) {
    ember_model* m = load(kStories, 2);
    ember_session* s = session(m, 2);
    // A long prompt, so ops are large enough to run on the workers.
    std::vector<int32_t> prompt(64, 403);
    prompt[0] = 1;
    REQUIRE(ember_session_prefill(s, prompt.data(), 64) == EMBER_OK);
    REQUIRE(ember_session_rewind(s, 0) == EMBER_OK);
    const auto r = ember::test::run_in_child([&] {
        if (ember_session_prefill(s, prompt.data(), 64) != EMBER_OK) return 10;
        ember_session* fresh = session(m, 2);
        if (ember_session_prefill(fresh, prompt.data(), 64) != EMBER_OK) return 11;
        return 0;
    }, 30);
    CHECK_MESSAGE(r.ok(), r.describe());
    REQUIRE(ember_session_prefill(s, prompt.data(), 64) == EMBER_OK);  // the parent goes on as before
    ember_session_free(s);
    ember_model_free(m);
}

TEST_CASE("an embedding padded past the vocabulary: padding rows are never sampled") {
    // 8 extra rows whose logits beat every real token's (large output weights along the final hidden state).
    constexpr int64_t kPad = 8;
    const std::string path = rewrite_stories("padded.gguf", [](const ember::gguf::File& f, ember::gguf::Writer& w) {
        for (const char* name : {"token_embd.weight", "output.weight"}) {
            const auto* t = f.find_tensor(name);
            REQUIRE(t);
            REQUIRE(t->type == ember::tensor::TensorType::F32);
            const int64_t dim = t->ne[0], rows = t->ne[1];
            std::vector<float> data(static_cast<size_t>(dim * (rows + kPad)), 0.f);
            std::memcpy(data.data(), t->data, t->n_bytes);
            for (int64_t r = rows; r < rows + kPad; ++r)
                for (int64_t i = 0; i < dim; ++i) data[static_cast<size_t>(r * dim + i)] = (i % 2 ? 50.f : -50.f);
            w.add_tensor(name, t->type, {dim, rows + kPad}, data.data(), data.size() * sizeof(float));
        }
    }, [](const std::string& name) { return name != "token_embd.weight" && name != "output.weight"; });
    ember_model* m = load(path);
    REQUIRE(m);
    CHECK(ember_model_n_vocab(m) == 512);  // tokens, not embedding rows
    ember_session* s = session(m);
    REQUIRE(ember_session_prefill(s, kOnceUponATime.data(), 5) == EMBER_OK);
    const float* logits = nullptr;
    int32_t n = 0;
    REQUIRE(ember_session_logits(s, &logits, &n) == EMBER_OK);
    CHECK(n == 512);
    const std::vector<int32_t> toks = greedy(s, 20);
    CHECK(toks.size() == 20);
    for (int32_t t : toks) CHECK(t < 512);
    CHECK(ember_session_decode(s, 512 + 3) == EMBER_ERR_INVALID_ARGUMENT);  // a padding row is no token
    ember_session_free(s);
    ember_model_free(m);
    fs::remove(path);
}

TEST_CASE("use_mmap = false: the model survives its file being truncated after load") {
    const std::string path = ember::test::temp_path("truncated.gguf");
    fs::copy_file(kStories, path, fs::copy_options::overwrite_existing);
    ember_model* m = load(path, 1, false);
    ember_session* s = session(m);
    fs::resize_file(path, 4096);  // with use_mmap = true this would be SIGBUS on the next weight read
    REQUIRE(ember_session_prefill(s, kOnceUponATime.data(), 5) == EMBER_OK);
    CHECK(greedy(s, 8).size() == 8);
    ember_session_free(s);
    ember_model_free(m);
    fs::remove(path);
}

namespace {
struct Reentry {
    ember_session* s = nullptr;
    ember_sampler* sampler = nullptr;
    int calls = 0;
    ember_status nested = EMBER_OK;
    enum { Reset, Prefill, Generate, FreeSession, FreeSampler } what = Reset;
};
bool reenter(const char*, size_t, int32_t, void* ud) {
    auto* r = static_cast<Reentry*>(ud);
    ++r->calls;
    if (r->calls != 2) return true;
    const int32_t tok = 403;
    switch (r->what) {
        case Reentry::Reset: r->nested = ember_session_reset(r->s); break;
        case Reentry::Prefill: r->nested = ember_session_prefill(r->s, &tok, 1); break;
        case Reentry::Generate: r->nested = ember_session_generate(r->s, r->sampler, 4, nullptr, nullptr, nullptr); break;
        case Reentry::FreeSession: ember_session_free(r->s); break;
        case Reentry::FreeSampler: ember_sampler_free(r->sampler); break;
    }
    return true;
}
// A session after its prompt, a greedy sampler, and what the callback will do on its second call.
Reentry start_reentry(ember_model* m, decltype(Reentry::what) what) {
    Reentry r;
    r.what = what;
    r.s = session(m);
    REQUIRE(ember_sampler_create_greedy(&r.sampler) == EMBER_OK);
    REQUIRE(ember_session_prefill(r.s, kOnceUponATime.data(), 5) == EMBER_OK);
    return r;
}
}  // namespace

TEST_CASE("re-entering a session from its own streaming callback") {
    ember_model* m = load(kStories);
    for (auto what : {Reentry::Reset, Reentry::Prefill, Reentry::Generate}) {
        CAPTURE(static_cast<int>(what));
        Reentry r = start_reentry(m, what);
        int32_t n_gen = 0;
        CHECK(ember_session_generate(r.s, r.sampler, 6, reenter, &r, &n_gen) == EMBER_OK);
        CHECK(r.nested == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(n_gen == 6);
        CHECK(ember_session_position(r.s) == 5 + 6);  // the nested call changed nothing
        ember_session_free(r.s);
        ember_sampler_free(r.sampler);
    }
    SUBCASE("freeing the session from its callback: deferred, the call stops with CANCELLED") {
        Reentry r = start_reentry(m, Reentry::FreeSession);
        CHECK(ember_session_generate(r.s, r.sampler, 20, reenter, &r, nullptr) == EMBER_ERR_CANCELLED);
        CHECK(r.calls == 2);  // no callback after the free
        ember_sampler_free(r.sampler);
    }
    SUBCASE("freeing the sampler from the callback: deferred until generate returns") {
        Reentry r = start_reentry(m, Reentry::FreeSampler);
        int32_t n_gen = 0;
        CHECK(ember_session_generate(r.s, r.sampler, 6, reenter, &r, &n_gen) == EMBER_OK);
        CHECK(n_gen == 6);
        ember_session_free(r.s);
    }
    ember_model_free(m);
}

TEST_CASE("a cancel that lands before a call starts is not lost") {
    ember_model* m = load(kStories);
    ember_session* s = session(m);
    REQUIRE(ember_session_cancel(s) == EMBER_OK);  // the Stop button, pressed just before the call
    CHECK(ember_session_prefill(s, kOnceUponATime.data(), 5) == EMBER_ERR_CANCELLED);
    CHECK(ember_session_decode(s, 1) == EMBER_ERR_CANCELLED);
    CHECK(ember_session_position(s) == 0);
    CHECK(ember_session_reset(s) == EMBER_OK);  // evaluates nothing: allowed
    REQUIRE(ember_session_clear_cancel(s) == EMBER_OK);
    CHECK(ember_session_prefill(s, kOnceUponATime.data(), 5) == EMBER_OK);
    CHECK(ember_session_clear_cancel(nullptr) == EMBER_ERR_INVALID_ARGUMENT);
    ember_session_free(s);
    ember_model_free(m);
}

TEST_CASE("a FIFO as the model path fails at once instead of blocking") {
    const std::string fifo = ember::test::temp_path("fifo.gguf");
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    const auto r = ember::test::run_in_child([&] {
        ember_model* m = nullptr;
        if (ember_model_load(fifo.c_str(), nullptr, &m) != EMBER_ERR_IO || m) return 10;
        ember_tokenizer* t = nullptr;
        if (ember_tokenizer_load(fifo.c_str(), &t) != EMBER_ERR_IO) return 11;
        return 0;
    }, 10);
    CHECK_MESSAGE(r.ok(), r.describe());
    CHECK(ember_model_load(fs::temp_directory_path().c_str(), nullptr, nullptr) == EMBER_ERR_INVALID_ARGUMENT);
    ember_model* m = nullptr;
    CHECK(ember_model_load(fs::temp_directory_path().c_str(), nullptr, &m) == EMBER_ERR_IO);  // a directory
    fs::remove(fifo);
}

TEST_CASE("sampler parameters: NaN and infinities are INVALID_ARGUMENT") {
    auto make = [](auto set) {
        ember_sampler_params p;
        ember_sampler_params_init(&p);
        set(p);
        ember_sampler* s = nullptr;
        const ember_status st = ember_sampler_create(&p, &s);
        ember_sampler_free(s);
        return st;
    };
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (float v : bad) {
        CAPTURE(v);
        CHECK(make([v](ember_sampler_params& p) { p.temperature = v; }) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(make([v](ember_sampler_params& p) { p.top_p = v; }) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(make([v](ember_sampler_params& p) { p.min_p = v; }) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(make([v](ember_sampler_params& p) { p.repeat_penalty = v; }) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(make([v](ember_sampler_params& p) { p.frequency_penalty = v; }) == EMBER_ERR_INVALID_ARGUMENT);
        CHECK(make([v](ember_sampler_params& p) { p.presence_penalty = v; }) == EMBER_ERR_INVALID_ARGUMENT);
    }
    // NaN logits (a broken model) are never chosen; all-NaN is an error.
    ember_sampler* g = nullptr;
    REQUIRE(ember_sampler_create_greedy(&g) == EMBER_OK);
    const float logits[] = {NAN, 1.f, NAN, 3.f, 2.f};
    int32_t tok = -1;
    CHECK(ember_sampler_sample(g, logits, 5, &tok) == EMBER_OK);
    CHECK(tok == 3);
    const float nans[] = {NAN, NAN};
    CHECK(ember_sampler_sample(g, nans, 2, &tok) == EMBER_ERR_INVALID_ARGUMENT);
    ember_sampler_free(g);
}

TEST_CASE("a context larger than the machine's memory is OUT_OF_MEMORY at session creation") {
    // 64 layers of stories260K (its 5 repeated): 16 KiB of KV cache per token, 256 GiB at n_ctx = 2^24.
    // Each layer's 2 GiB buffer alone passes the kernel's overcommit check, so before the fix the session
    // was created and the OOM killer came later.
    constexpr int kLayers = 64;
    const std::string path = rewrite_stories("deep.gguf", [](const ember::gguf::File& f, ember::gguf::Writer& w) {
        w.set("llama.block_count", ember::gguf::Value::u32(kLayers));
        for (int l = 5; l < kLayers; ++l)
            for (const auto& t : f.tensors()) {
                const std::string prefix = "blk." + std::to_string(l % 5) + ".";
                if (t.name.rfind(prefix, 0) != 0) continue;
                w.add_tensor("blk." + std::to_string(l) + "." + t.name.substr(prefix.size()), t.type,
                             std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.n_bytes);
            }
    });
    ember_model* m = load(path);
    REQUIRE(m);
    ember_session_params sp;
    ember_session_params_init(&sp);
    sp.n_ctx = 1 << 24;
    ember_session* s = nullptr;
    CHECK(ember_session_create(m, &sp, &s) == EMBER_ERR_OUT_OF_MEMORY);
    CHECK(s == nullptr);
    CHECK(std::string(ember_last_error()).find("KV cache") != std::string::npos);
    sp.n_ctx = 256;  // a sane context on the same model works
    REQUIRE(ember_session_create(m, &sp, &s) == EMBER_OK);
    CHECK(ember_session_prefill(s, kOnceUponATime.data(), 5) == EMBER_OK);
    ember_session_free(s);
    ember_model_free(m);
    fs::remove(path);
}

TEST_CASE("memory estimate before loading: the KV cache a session of n_ctx tokens will allocate") {
    ember_memory_estimate e;
    std::memset(&e, 0, sizeof e);
    e.struct_size = sizeof e;
    REQUIRE(ember_estimate_memory(kStories.c_str(), 1000, 0, &e) == EMBER_OK);
    // stories260K: 5 layers, 4 KV heads of 8: K and V of 32 F16 values per layer and token.
    CHECK(e.kv_cache == uint64_t(2) * 5 * 32 * 2 * 1000);
    uint64_t tensor_bytes = 0;
    const auto file = ember::gguf::File::open(kStories);
    for (const auto& t : file.tensors()) tensor_bytes += t.n_bytes;
    CHECK(e.weights == tensor_bytes);
    CHECK(e.scratch > 0);
    CHECK(e.total == e.weights + e.kv_cache + e.scratch);
    ember_memory_estimate twice = e;
    REQUIRE(ember_estimate_memory(kStories.c_str(), 2000, 0, &twice) == EMBER_OK);
    CHECK(twice.kv_cache == 2 * e.kv_cache);
    // Bad arguments: a status, never a crash.
    CHECK(ember_estimate_memory(kStories.c_str(), 0, 0, &e) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_estimate_memory(kStories.c_str(), 1 << 25, 0, &e) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_estimate_memory(kStories.c_str(), 100, -1, &e) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_estimate_memory(nullptr, 100, 0, &e) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_estimate_memory(kStories.c_str(), 100, 0, nullptr) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_estimate_memory("/nonexistent.gguf", 100, 0, &e) == EMBER_ERR_IO);
    e.struct_size = 3;
    CHECK(ember_estimate_memory(kStories.c_str(), 100, 0, &e) == EMBER_ERR_INVALID_ARGUMENT);
}
