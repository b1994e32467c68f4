// Sampling under a grammar with real vocabularies: stories260K (SentencePiece with byte fallback, 512
// tokens) through Session::generate, GPT-2's 50k byte-level BPE vocabulary with random logits.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/error.hpp"
#include "ember/grammar.hpp"
#include "ember/sampler.hpp"
#include "ember/session.hpp"
#include "models.hpp"
#include "testdata.hpp"

using namespace ember;
using ember::test::stories_model;
using ember::test::testdata;

namespace {

SamplerParams hot(uint64_t seed, std::string grammar = {}) {
    SamplerParams p;
    p.temperature = 1.5f;  // high: the grammar, not the model, must keep the text in line
    p.top_k = 0;
    p.top_p = 1.f;
    p.min_p = 0.f;
    p.seed = seed;
    p.grammar = std::move(grammar);
    return p;
}

GenerateResult run(const std::string& gbnf, uint64_t seed, int max_tokens = 64) {
    Session s(stories_model());
    const Tokenizer& tok = stories_model().tokenizer();
    s.prefill(tok.encode("Once upon a time"));
    Sampler smp(tok, hot(seed, gbnf));
    GenerateParams gp;
    gp.max_tokens = max_tokens;
    return s.generate(smp, gp);
}

const Tokenizer& gpt2() {
    static const Tokenizer t = Tokenizer::from_gguf(testdata("vocab/ggml-vocab-gpt-2.gguf"));
    return t;
}

}  // namespace

TEST_CASE("grammar sampling: yes or no, for many seeds at high temperature") {
    std::set<std::string> seen;
    for (uint64_t seed = 1; seed <= 40; ++seed) {
        const GenerateResult r = run(R"(root ::= "yes" | "no")", seed);
        CAPTURE(seed);
        CHECK((r.text == "yes" || r.text == "no"));
        CHECK(r.stop == GenerateResult::Stop::EndOfGeneration);  // the grammar ended it, not max_tokens
        seen.insert(r.text);
    }
    CHECK(seen.size() == 2);  // both reachable: the grammar filters, it does not pick
}

TEST_CASE("grammar sampling: an enum schema yields one of its values") {
    const std::string gbnf = json_schema_to_grammar(R"({"enum": ["red", "green", "blue", 42]})");
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        const GenerateResult r = run(gbnf, seed);
        CAPTURE(seed);
        CHECK(std::set<std::string>{"\"red\"", "\"green\"", "\"blue\"", "42"}.count(r.text) == 1);
    }
}

TEST_CASE("grammar sampling: a grammar with text after completion lets the model stop or go on") {
    // [0-9]+ is complete after a digit but may go on: generation ends at an end token or max_tokens.
    for (uint64_t seed = 1; seed <= 10; ++seed) {
        const GenerateResult r = run("root ::= [0-9]+", seed, 12);
        CAPTURE(r.text);
        CHECK(!r.text.empty());
        CHECK(r.text.find_first_not_of("0123456789") == std::string::npos);
    }
}

TEST_CASE("grammar sampling: stop_at_eog off still ends when the grammar is finished") {
    Session s(stories_model());
    const Tokenizer& tok = stories_model().tokenizer();
    s.prefill(tok.encode("Hello"));
    Sampler smp(tok, hot(3, R"(root ::= "ok")"));
    GenerateParams gp;
    gp.max_tokens = 50;
    gp.stop_at_eog = false;
    const GenerateResult r = s.generate(smp, gp);
    CHECK(r.text == "ok");
    CHECK(r.stop == GenerateResult::Stop::EndOfGeneration);
    CHECK(smp.grammar_done());
    smp.reset();  // the grammar restarts
    CHECK_FALSE(smp.grammar_done());
}

TEST_CASE("grammar sampling: when no token can continue, sample throws and the state is kept") {
    const Tokenizer& tok = stories_model().tokenizer();
    Sampler smp(tok, hot(1, R"(root ::= "yes")"));
    // Logits for only the first three ids (<unk>, <s>, </s>): none can write "yes".
    const std::vector<float> few{1.f, 2.f, 3.f};
    CHECK_THROWS_AS(smp.sample(few), Error);
    // The sampler still works with the full vocabulary.
    std::vector<float> all(static_cast<size_t>(tok.n_vocab()), 0.f);
    std::string text;
    while (!smp.grammar_done()) text += tok.piece(smp.sample(all), false);
    CHECK(text == "yes");
    // accept() of a token that does not fit is refused.
    Sampler other(tok, hot(1, R"(root ::= "yes")"));
    CHECK_THROWS_AS(other.accept(tok.encode("no", false, false).at(0)), Error);
}

TEST_CASE("grammar sampling: API contracts") {
    const Tokenizer& tok = stories_model().tokenizer();
    CHECK_THROWS_AS(Sampler(hot(1, "root ::= \"a\"")), Error);  // a grammar needs the vocabulary
    Sampler s(tok, hot(1));
    CHECK_FALSE(s.has_grammar());
    try {
        s.set_grammar(tok, "root ::= \"a\"\nbad ::= [");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.status() == Status::InvalidArgument);
        CHECK(std::string(e.what()).find("line 2, column 9") != std::string::npos);
    }
    CHECK_FALSE(s.has_grammar());  // a bad grammar leaves the sampler as it was
    s.set_grammar(tok, "root ::= \"a\"");
    CHECK(s.has_grammar());
    CHECK(s.params().grammar == "root ::= \"a\"");
    s.set_grammar(tok, "");
    CHECK_FALSE(s.has_grammar());
}

TEST_CASE("grammar sampling: JSON on GPT-2's 50k vocabulary parses when complete") {
    const Tokenizer& tok = gpt2();
    REQUIRE(tok.n_vocab() > 50000);
    const Token eos = tok.eos();
    REQUIRE(tok.is_end_of_generation(eos));
    std::mt19937 rng(5);
    std::normal_distribution<float> noise(0.f, 2.f);
    std::vector<float> logits(static_cast<size_t>(tok.n_vocab()));
    int completed = 0, steps = 0;
    double grammar_s = 0;
    for (const bool object_only : {false, true})
        for (uint64_t seed = 1; seed <= 6; ++seed) {
            Sampler smp(tok, hot(seed, json_grammar(object_only)));
            std::string text;
            bool ended = false;
            for (int i = 0; i < 120 && !smp.grammar_done(); ++i) {
                for (auto& l : logits) l = noise(rng);
                logits[static_cast<size_t>(eos)] = 12.f;  // ends as soon as the grammar allows it
                const auto t0 = std::chrono::steady_clock::now();
                const Token t = smp.sample(logits);
                grammar_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                ++steps;
                if (t == eos) {
                    ended = true;
                    break;
                }
                text += tok.piece(t, false);
            }
            ended = ended || smp.grammar_done();
            CAPTURE(text);
            if (ended) {  // ended by the grammar or an end token it allowed: a whole JSON value
                ++completed;
                CHECK(nlohmann::json::accept(text));
                if (object_only) CHECK(nlohmann::json::parse(text).is_object());
            }
        }
    CHECK(completed >= 6);
    // The same chain without a grammar, for scale.
    Sampler plain(hot(1));
    double plain_s = 0;
    for (int i = 0; i < 100; ++i) {
        for (auto& l : logits) l = noise(rng);
        const auto t0 = std::chrono::steady_clock::now();
        (void)plain.sample(logits);
        plain_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    MESSAGE("JSON grammar, 50k vocabulary: " << steps << " steps, " << 1e3 * grammar_s / steps
            << " ms a step (random logits, the end token favoured: most steps filter the whole vocabulary); "
            << 1e3 * plain_s / 100 << " ms a step without a grammar");
}
