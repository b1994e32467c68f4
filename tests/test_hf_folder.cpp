// Hugging Face folders loaded directly (tests/data/hf, made by make_fixtures.py with transformers as the
// independent reference): the tokenizer gives transformers' ids, every prompt position's logits match
// transformers' float32 logits, greedy continuations are equal. Hostile config.json / tokenizer.json
// files end in ember::Error.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "ember/ember.hpp"
#include "hf/folder.hpp"
#include "testdata.hpp"

using namespace ember;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Fixture {
    const char* name;
    // Allowed |ember − transformers| over all logits, relative to the largest |logit| (at least 1).
    //  F32 weights: ember keeps keys and values in an F16 cache (relative rounding 2^-11 ≈ 4.9e-4), which
    //  moves the attention outputs and so the logits by a few 1e-4 of their scale; the float sums agree far
    //  closer (~1e-6). 1e-3 is twice the cache's rounding.
    //  BF16 weights: the golden is the same weights run in float32, and ember rounds the activations to
    //  BF16 for BF16 dot products, as llama.cpp does (2^-9 ≈ 2e-3 per element): 2e-2.
    float rel_tol;
};
constexpr Fixture kFixtures[] = {
    {"llama", 1e-3f},   {"qwen2", 1e-3f},  {"qwen3", 1e-3f},  {"qwen3-bf16", 2e-2f}, {"qwen3_moe", 1e-3f},
    {"mixtral", 1e-3f}, {"phi3", 1e-3f},   {"gemma2", 1e-3f}, {"gemma3", 1e-3f},
};

std::string dir_of(const char* name) { return test::testdata(std::string("hf/") + name); }

json golden_of(const char* name) { return json::parse(std::ifstream(dir_of(name) + "/golden.json")); }

}  // namespace

TEST_CASE("HF folder: tokenizer.json encodes as transformers does") {
    for (const Fixture& f : kFixtures) {
        CAPTURE(std::string(f.name));
        const json g = golden_of(f.name);
        const Tokenizer tok = Tokenizer::from_gguf(dir_of(f.name));  // a folder works where a GGUF file does
        CHECK(tok.encode(g["prompt"].get<std::string>(), true, true) == g["prompt_ids"].get<std::vector<Token>>());
        for (const json& c : g["tokenizer"]) {
            const std::string text = c["text"].get<std::string>();
            CAPTURE(text);
            CHECK(tok.encode(text, false, true) == c["ids"].get<std::vector<Token>>());
            CHECK(tok.encode(text, true, true) == c["ids_special"].get<std::vector<Token>>());
        }
    }
}

TEST_CASE("HF folder: logits and greedy tokens match transformers") {
    for (const Fixture& f : kFixtures) {
        CAPTURE(std::string(f.name));
        const json g = golden_of(f.name);
        const Model model = Model::load(dir_of(f.name));
        const auto prompt = g["prompt_ids"].get<std::vector<Token>>();
        const auto& want = g["logits"];
        REQUIRE(want.size() == prompt.size());
        REQUIRE(want[0].size() == static_cast<size_t>(model.n_vocab()));

        Session s(model);
        s.prefill(prompt, true);
        float scale = 1.f, max_diff = 0.f;
        for (const auto& row : want)
            for (const auto& x : row) scale = std::max(scale, std::fabs(x.get<float>()));
        for (size_t i = 0; i < prompt.size(); ++i) {
            const auto got = s.logits_at(static_cast<int>(i));
            for (size_t v = 0; v < got.size(); ++v) max_diff = std::max(max_diff, std::fabs(got[v] - want[i][v].get<float>()));
        }
        MESSAGE(std::string(f.name) << ": max |logit diff| " << max_diff << " (logit scale " << scale << ", relative "
                       << max_diff / scale << ", tolerance " << f.rel_tol << ")");
        CHECK(max_diff <= f.rel_tol * scale);

        std::vector<Token> got;
        Sampler greedy = Sampler::greedy();
        for (size_t i = 0; i < g["greedy"].size(); ++i) {
            const Token t = greedy.sample(s.logits());
            got.push_back(t);
            s.decode(t);
        }
        CHECK(got == g["greedy"].get<std::vector<Token>>());
    }
}
