// Out of memory where it hurts: on the C layer's error paths and inside the CPU pool's jobs. This binary
// replaces the global operator new with one that fails on demand.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // malloc/free behind replaced new/delete is the point
#endif
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "ember.h"
#include "testdata.hpp"

namespace {

enum class Fail { Never, Always, OffMainThread };
std::atomic<Fail> g_fail{Fail::Never};
std::thread::id g_main;

bool should_fail() noexcept {
    switch (g_fail.load(std::memory_order_relaxed)) {
        case Fail::Never: return false;
        case Fail::Always: return true;
        case Fail::OffMainThread: return std::this_thread::get_id() != g_main;
    }
    return false;
}

// Allocations fail (as configured) for the lifetime of this object.
struct FailingAllocations {
    explicit FailingAllocations(Fail how) {
        g_main = std::this_thread::get_id();
        g_fail = how;
    }
    ~FailingAllocations() { g_fail = Fail::Never; }
};

const std::string kStories = ember::test::testdata("models/stories260K.gguf");

}  // namespace

void* operator new(std::size_t n) {
    if (should_fail()) throw std::bad_alloc();
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

TEST_CASE("the C layer reports errors without allocating when memory is gone") {
    ember_sampler_params p;
    ember_sampler_params_init(&p);
    p.struct_size = 3;  // an error whose message used to be built in a noexcept function
    ember_sampler* s = nullptr;
    ember_status st;
    {
        FailingAllocations oom(Fail::Always);
        st = ember_sampler_create(&p, &s);
    }
    CHECK(st == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(s == nullptr);
    CHECK(std::strlen(ember_last_error()) > 0);

    ember_tokenizer* tok = nullptr;
    REQUIRE(ember_tokenizer_load(kStories.c_str(), &tok) == EMBER_OK);
    char buf[1];
    size_t needed = 0;
    {
        FailingAllocations oom(Fail::Always);
        st = ember_token_piece(tok, 403, 0, buf, sizeof buf, &needed);  // a short piece; the buffer too small
    }
    CHECK(st == EMBER_ERR_BUFFER_TOO_SMALL);
    CHECK(needed > 1);
    {
        FailingAllocations oom(Fail::Always);
        st = ember_tokenizer_load(kStories.c_str(), &tok);
    }
    CHECK(st == EMBER_ERR_OUT_OF_MEMORY);
    ember_tokenizer_free(tok);
}

TEST_CASE("an allocation failing inside a pool job reaches the caller as OUT_OF_MEMORY") {
    ember_model_params mp;
    ember_model_params_init(&mp);
    mp.n_threads = 2;
    ember_model* m = nullptr;
    REQUIRE(ember_model_load(kStories.c_str(), &mp, &m) == EMBER_OK);
    std::vector<int32_t> prompt(64, 403);  // long enough that ops run on the workers too
    prompt[0] = 1;

    // The reference: the same prompt with memory to spare.
    ember_session* ref = nullptr;
    REQUIRE(ember_session_create(m, nullptr, &ref) == EMBER_OK);
    REQUIRE(ember_session_prefill(ref, prompt.data(), 64) == EMBER_OK);
    const float* want = nullptr;
    int32_t n = 0;
    REQUIRE(ember_session_logits(ref, &want, &n) == EMBER_OK);

    for (Fail how : {Fail::OffMainThread, Fail::Always}) {
        CAPTURE(static_cast<int>(how));
        ember_model* fresh = nullptr;  // a fresh pool: its workers allocate their scratch on first use
        REQUIRE(ember_model_load(kStories.c_str(), &mp, &fresh) == EMBER_OK);
        ember_session* s = nullptr;
        REQUIRE(ember_session_create(fresh, nullptr, &s) == EMBER_OK);
        ember_status st;
        {
            FailingAllocations oom(how);
            st = ember_session_prefill(s, prompt.data(), 64);
        }
        if (how == Fail::Always) {
            CHECK(st == EMBER_ERR_OUT_OF_MEMORY);
        } else {
            // Whether a worker takes a chunk before the caller has taken them all depends on scheduling;
            // either way the failure reaches the caller and the session stays consistent.
            CHECK((st == EMBER_ERR_OUT_OF_MEMORY || st == EMBER_OK));
        }
        CHECK(ember_session_position(s) == (st == EMBER_OK ? 64 : 0));
        REQUIRE(ember_session_rewind(s, 0) == EMBER_OK);
        // With memory back, the same session gives the reference's logits.
        REQUIRE(ember_session_prefill(s, prompt.data(), 64) == EMBER_OK);
        const float* got = nullptr;
        REQUIRE(ember_session_logits(s, &got, &n) == EMBER_OK);
        CHECK(std::memcmp(got, want, sizeof(float) * static_cast<size_t>(n)) == 0);
        ember_session_free(s);
        ember_model_free(fresh);
    }
    ember_session_free(ref);
    ember_model_free(m);
}

TEST_CASE("quantizing at load with no memory left is OUT_OF_MEMORY, and memory back loads again") {
    // Allocations start failing at the first progress report, which comes as quantization begins: the
    // converted tensors' buffers, the conversion threads and the error's own message all fail.
    ember_model_params mp;
    ember_model_params_init(&mp);
    mp.n_threads = 2;
    mp.quantize = "q8_0";
    mp.progress = [](float, void*) -> bool {
        g_main = std::this_thread::get_id();
        g_fail = Fail::Always;
        return true;
    };
    ember_model* m = reinterpret_cast<ember_model*>(1);
    const ember_status st = ember_model_load(kStories.c_str(), &mp, &m);
    g_fail = Fail::Never;
    CHECK(st == EMBER_ERR_OUT_OF_MEMORY);
    CHECK(m == nullptr);
    mp.progress = nullptr;
    REQUIRE(ember_model_load(kStories.c_str(), &mp, &m) == EMBER_OK);
    ember_model_free(m);
}
