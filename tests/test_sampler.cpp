// Sampler chain: greedy, truncation rules, penalties, seeding.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <vector>

#include "ember/error.hpp"
#include "ember/sampler.hpp"

using namespace ember;

namespace {
std::vector<float> ramp(int n) {  // logit i = i / 4: token n-1 is the most likely
    std::vector<float> l(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) l[static_cast<size_t>(i)] = static_cast<float>(i) / 4.f;
    return l;
}
std::vector<Token> draw(Sampler& s, const std::vector<float>& logits, int n) {
    std::vector<Token> out;
    for (int i = 0; i < n; ++i) out.push_back(s.sample(logits));
    return out;
}
}  // namespace

TEST_CASE("greedy takes the largest logit, lowest id on ties") {
    Sampler g = Sampler::greedy();
    CHECK(g.sample(std::vector<float>{0.1f, 3.f, -1.f, 2.9f}) == 1);
    CHECK(g.sample(std::vector<float>{2.f, 5.f, 5.f}) == 1);
    SamplerParams p;
    p.temperature = 1.f;
    p.top_k = 1;  // top-k 1 is greedy whatever the seed
    p.seed = 7;
    Sampler k1(p);
    CHECK(k1.sample(std::vector<float>{0.1f, 3.f, -1.f, 2.9f}) == 1);
}

TEST_CASE("same seed, same tokens; different seeds differ") {
    SamplerParams p;
    p.temperature = 1.5f;
    p.top_k = 0;
    p.top_p = 1.f;
    p.min_p = 0.f;
    p.seed = 1234;
    const auto logits = ramp(64);
    Sampler a(p), b(p);
    const auto ta = draw(a, logits, 200), tb = draw(b, logits, 200);
    CHECK(ta == tb);
    p.seed = 1235;
    Sampler c(p);
    CHECK(draw(c, logits, 200) != ta);
    a.reset();  // reseeds: the sequence starts over
    CHECK(draw(a, logits, 200) == ta);
    CHECK(std::set<Token>(ta.begin(), ta.end()).size() > 10);  // it really samples
}

TEST_CASE("top-k, top-p and min-p keep only the head of the distribution") {
    const auto logits = ramp(100);
    SamplerParams p;
    p.temperature = 1.f;
    p.seed = 99;
    p.top_p = 1.f;
    p.min_p = 0.f;
    p.top_k = 3;
    Sampler k(p);
    for (Token t : draw(k, logits, 300)) CHECK(t >= 97);

    p.top_k = 0;
    p.top_p = 0.5f;  // probabilities ∝ e^{i/4}: the top 3 hold 1 - e^{-3/4} ≈ 0.53 ≥ 0.5
    Sampler tp(p);
    for (Token t : draw(tp, logits, 300)) CHECK(t >= 97);

    p.top_p = 1.f;
    p.min_p = 0.5f;  // keeps p_i ≥ p_max/2 ⇔ i/4 ≥ 99/4 - ln 2 ⇔ i ≥ 96.2
    Sampler mp(p);
    const auto drawn = draw(mp, logits, 300);
    for (Token t : drawn) CHECK(t >= 97);
    CHECK(std::set<Token>(drawn.begin(), drawn.end()).size() == 3);
}

TEST_CASE("repetition, frequency and presence penalties") {
    SamplerParams p;
    p.temperature = 0.f;
    p.repeat_penalty = 2.f;
    p.penalty_last_n = 4;
    Sampler s(p);
    const std::vector<float> logits{1.f, 1.5f, -1.f};
    CHECK(s.sample(logits) == 1);  // recorded: 1.5 / 2 = 0.75 < 1 next time
    CHECK(s.sample(logits) == 0);
    s.accept(0);                   // both penalised now: 0.5 vs 0.75
    CHECK(s.sample(logits) == 1);

    SamplerParams f;
    f.temperature = 0.f;
    f.frequency_penalty = 0.3f;
    f.presence_penalty = 0.1f;
    Sampler fs(f);
    fs.accept(1);
    fs.accept(1);  // 1.5 - 2·0.3 - 0.1 = 0.8 < 1.0
    CHECK(fs.sample(logits) == 0);
}

TEST_CASE("bad parameters and inputs are errors") {
    SamplerParams p;
    p.repeat_penalty = 0.f;
    CHECK_THROWS_AS(Sampler{p}, Error);
    p = {};
    p.top_p = -1.f;
    CHECK_THROWS_AS(Sampler{p}, Error);
    p = {};
    p.temperature = NAN;
    CHECK_THROWS_AS(Sampler{p}, Error);
    Sampler g = Sampler::greedy();
    CHECK_THROWS_AS(g.sample(std::vector<float>{}), Error);
}
