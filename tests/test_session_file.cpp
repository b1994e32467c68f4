// Session state files: a resumed session continues exactly as the saved one would have, and every damaged,
// foreign or oversized file is refused with the session and the file left as they were.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "ember.h"
#include "ember/ember.hpp"
#include "models.hpp"
#include "testdata.hpp"

using namespace ember;
namespace fs = std::filesystem;

namespace {

const Model& stories() { return test::stories_model(); }

std::vector<Token> greedy(Session& s, int n) {
    Sampler g = Sampler::greedy();
    GenerateParams gp;
    gp.max_tokens = n;
    gp.stop_at_eog = false;
    return s.generate(g, gp).tokens;
}


}  // namespace

TEST_CASE("a saved session resumes exactly where it stopped") {
    const Model& m = stories();
    Session a(m);
    a.prefill(m.tokenizer().encode("Once upon a time"));
    greedy(a, 6);
    const std::string path = ember::test::temp_path("resume.embs");
    a.save(path);
    CHECK_FALSE(fs::exists(path + ".tmp"));  // renamed into place

    Session b(m);
    b.load(path);
    CHECK(b.position() == a.position());
    CHECK(b.tokens() == a.tokens());
    const auto la = a.logits(), lb = b.logits();
    CHECK(std::vector<float>(la.begin(), la.end()) == std::vector<float>(lb.begin(), lb.end()));
    CHECK(greedy(b, 12) == greedy(a, 12));  // the restored KV cache gives the same continuation

    // The buffer form is the same bytes as the file.
    Session c(m);
    c.load_state(b.save_state());
    CHECK(c.tokens() == b.tokens());
    fs::remove(path);
}

TEST_CASE("damaged, foreign and oversized session files are refused; session and file unchanged") {
    const Model& m = stories();
    Session src(m);
    src.prefill(m.tokenizer().encode("Once upon a time, there was a park"));
    const std::vector<uint8_t> good = src.save_state();

    Session target(m);
    target.prefill(m.tokenizer().encode("Lily"));
    const std::vector<Token> before = target.tokens();
    const std::vector<float> logits_before(target.logits().begin(), target.logits().end());

    std::vector<std::vector<uint8_t>> variants;
    for (size_t cut : {size_t(0), size_t(3), size_t(4), size_t(20), size_t(31), size_t(32), size_t(33), good.size() / 2,
                       good.size() - 1})
        variants.emplace_back(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut));
    auto extended = good;
    extended.push_back(0);
    variants.push_back(extended);
    for (int k = 0; k < 88; ++k) {  // one flipped bit at spread positions: header, tokens, logits, KV rows
        auto v = good;
        const size_t at = (static_cast<size_t>(k) * 7919u) % v.size();
        v[at] ^= static_cast<uint8_t>(1u << (k % 8));
        variants.push_back(v);
    }
    auto wrong_version = good;
    wrong_version[4] = 2;
    variants.push_back(wrong_version);
    CHECK(variants.size() == 99);

    const std::string path = ember::test::temp_path("damaged.embs");
    int refused = 0;
    for (const auto& v : variants) {
        CAPTURE(refused);
        {
            std::FILE* f = std::fopen(path.c_str(), "wb");
            REQUIRE(f);
            if (!v.empty()) std::fwrite(v.data(), 1, v.size(), f);
            std::fclose(f);
        }
        try {
            target.load(path);
        } catch (const Error& e) {
            ++refused;
            CHECK(e.status() == Status::BadFile);
        }
        CHECK(test::read_file(path) == std::string(v.begin(), v.end()));  // never modified
        CHECK(target.tokens() == before);
        CHECK(std::vector<float>(target.logits().begin(), target.logits().end()) == logits_before);
    }
    CHECK(refused == static_cast<int>(variants.size()));

    // Another model's session (the llama-2 tiny random model), and a context too small for the state.
    const Model other = Model::load(test::testdata("models/llama-2-tiny-random.gguf"));
    Session foreign(other);
    foreign.prefill(other.tokenizer().encode("Hello"));
    CHECK_THROWS_AS(target.load_state(foreign.save_state()), Error);
    SessionParams small;
    small.n_ctx = 4;
    Session tiny(m, small);
    CHECK_THROWS_AS(tiny.load_state(good), Error);
    CHECK(tiny.position() == 0);
    CHECK_THROWS_AS(target.load("/nonexistent/session.embs"), Error);
    fs::remove(path);
}

TEST_CASE("session files through the C ABI") {
    ember_model* model = nullptr;
    REQUIRE(ember_model_load(test::testdata("models/stories260K.gguf").c_str(), nullptr, &model) == EMBER_OK);
    ember_session* a = nullptr;
    ember_session* b = nullptr;
    REQUIRE(ember_session_create(model, nullptr, &a) == EMBER_OK);
    REQUIRE(ember_session_create(model, nullptr, &b) == EMBER_OK);
    const int32_t prompt[] = {1, 403, 407, 261, 378};
    REQUIRE(ember_session_prefill(a, prompt, 5) == EMBER_OK);
    const std::string path = ember::test::temp_path("capi.embs");
    REQUIRE(ember_session_save(a, path.c_str()) == EMBER_OK);
    REQUIRE(ember_session_load(b, path.c_str()) == EMBER_OK);
    CHECK(ember_session_position(b) == 5);
    CHECK(ember_session_load(b, "/nonexistent/x.embs") == EMBER_ERR_IO);
    CHECK(ember_session_load(b, test::testdata("models/stories260K.gguf").c_str()) == EMBER_ERR_BAD_FILE);
    CHECK(ember_session_position(b) == 5);
    CHECK(ember_session_save(nullptr, path.c_str()) == EMBER_ERR_INVALID_ARGUMENT);
    CHECK(ember_session_load(b, nullptr) == EMBER_ERR_INVALID_ARGUMENT);
    ember_session_free(a);
    ember_session_free(b);
    ember_model_free(model);
    fs::remove(path);
}
