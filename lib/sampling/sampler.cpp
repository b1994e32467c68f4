#include "ember/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <optional>
#include <numeric>
#include <random>
#include <unordered_map>
#include <vector>

#include "ember/error.hpp"
#include "sampling/grammar.hpp"

namespace ember {

struct Sampler::State {
    SamplerParams p;
    std::mt19937_64 rng;
    uint64_t seed_used = 0;
    std::deque<Token> history;
    std::vector<std::pair<float, Token>> cand;  // (logit, token), reused between calls

    struct GrammarUse {
        std::string text;
        std::shared_ptr<const grammar::Grammar> g;
        std::shared_ptr<const grammar::TokenTexts> texts;
        grammar::State state;
    };
    std::optional<GrammarUse> gram;
    std::vector<Token> allowed, rejected;  // reused by the vocabulary filter

    // The grammar's state after token t, or nullopt when its text cannot continue it.
    std::optional<grammar::State> grammar_after(Token t) const {
        if (t < 0 || t >= static_cast<Token>(gram->texts->kind.size())) return std::nullopt;
        const auto i = static_cast<size_t>(t);
        switch (gram->texts->kind[i]) {
            case grammar::TokenTexts::kEog:
                return grammar::complete(gram->state) ? std::optional(gram->state) : std::nullopt;
            case grammar::TokenTexts::kNever: return std::nullopt;
            default: return grammar::advance(*gram->g, gram->state, gram->texts->text(i));
        }
    }

    // The OS seed is drawn once, so reset() replays the same draws and seed() can reproduce them.
    void choose_seed() {
        if (p.seed != SamplerParams::kRandomSeed) {
            seed_used = p.seed;
            return;
        }
        std::random_device rd;
        seed_used = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    }
    void seed() { rng.seed(seed_used); }
    void candidates(std::span<const float> logits);
    Token choose();
    void remember(Token t) {
        if (p.penalty_last_n == 0) return;
        history.push_back(t);
        while (history.size() > static_cast<size_t>(p.penalty_last_n)) history.pop_front();
    }
    // Uniform in [0, 1) from raw bits: std distributions differ between standard libraries.
    double uniform() { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
};

Sampler::Sampler(const SamplerParams& params) : s_(std::make_unique<State>()) {
    const auto finite = [](float v) { return std::isfinite(v); };
    if (!finite(params.temperature) || !finite(params.top_p) || !finite(params.min_p) || !finite(params.repeat_penalty) ||
        !finite(params.frequency_penalty) || !finite(params.presence_penalty))
        throw Error(Status::InvalidArgument, "sampler: parameters must be finite numbers (no NaN or infinity)");
    if (params.top_p < 0.f || params.min_p < 0.f || params.repeat_penalty <= 0.f || params.penalty_last_n < 0)
        throw Error(Status::InvalidArgument, "sampler: parameters out of range");
    if (!params.grammar.empty())
        throw Error(Status::InvalidArgument, "sampler: a grammar needs the vocabulary: use Sampler(tokenizer, params)");
    s_->p = params;
    s_->choose_seed();
    s_->seed();
}

Sampler::Sampler(const Tokenizer& vocab, const SamplerParams& params)
    : Sampler([&] {
          SamplerParams p = params;
          p.grammar.clear();
          return p;
      }()) {
    set_grammar(vocab, params.grammar);
}

void Sampler::set_grammar(const Tokenizer& vocab, std::string_view gbnf) {
    if (gbnf.empty()) {
        s_->gram.reset();
        s_->p.grammar.clear();
        return;
    }
    State::GrammarUse u;
    u.text = std::string(gbnf);
    u.g = grammar::parse(gbnf);
    u.state = grammar::start(*u.g);
    u.texts = grammar::TokenTexts::of(vocab);
    s_->gram = std::move(u);
    s_->p.grammar = s_->gram->text;
}

bool Sampler::has_grammar() const noexcept { return s_->gram.has_value(); }
bool Sampler::grammar_done() const noexcept { return s_->gram && grammar::finished(s_->gram->state); }

Sampler Sampler::greedy() {
    SamplerParams p;
    p.temperature = 0.f;
    p.seed = 0;
    return Sampler(p);
}

Sampler::~Sampler() = default;
Sampler::Sampler(Sampler&&) noexcept = default;
Sampler& Sampler::operator=(Sampler&&) noexcept = default;
const SamplerParams& Sampler::params() const noexcept { return s_->p; }
uint64_t Sampler::seed() const noexcept { return s_->seed_used; }

void Sampler::accept(Token t) {
    if (s_->gram) {
        std::optional<grammar::State> next = s_->grammar_after(t);
        if (!next) throw Error(Status::InvalidArgument, "sampler: token " + std::to_string(t) + " does not continue the grammar");
        s_->gram->state = std::move(*next);
    }
    s_->remember(t);
}

void Sampler::reset() {
    s_->history.clear();
    s_->seed();
    if (s_->gram) s_->gram->state = grammar::start(*s_->gram->g);
}

// The candidates (logit, token) of `logits` after the penalties; NaN logits become -infinity.
void Sampler::State::candidates(std::span<const float> logits) {
    auto& c = cand;
    c.resize(logits.size());
    // A NaN logit (a broken model) is never chosen: it would break the orderings below.
    size_t n_nan = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
        const float l = logits[i];
        n_nan += std::isnan(l);
        c[i] = {std::isnan(l) ? -INFINITY : l, static_cast<Token>(i)};
    }
    if (n_nan == logits.size()) throw Error(Status::InvalidArgument, "sampler: every logit is NaN");

    // Penalties over the recent history (llama.cpp's repetition/frequency/presence rule).
    if (!history.empty() && (p.repeat_penalty != 1.f || p.frequency_penalty != 0.f || p.presence_penalty != 0.f)) {
        std::unordered_map<Token, int> count;
        for (Token t : history) ++count[t];
        for (auto [t, n] : count) {
            if (t < 0 || static_cast<size_t>(t) >= c.size()) continue;
            float& l = c[static_cast<size_t>(t)].first;
            l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
            l -= static_cast<float>(n) * p.frequency_penalty + p.presence_penalty;
        }
    }
}

// Truncation and the draw over `cand` (reordered).
Token Sampler::State::choose() {
    auto& c = cand;
    auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
    if (p.temperature <= 0.f) return std::min_element(c.begin(), c.end(), by_logit)->second;
    size_t n = c.size();
    if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) n = static_cast<size_t>(p.top_k);
    std::partial_sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(n), c.end(), by_logit);
    while (n > 1 && c[n - 1].first == -INFINITY) --n;  // forbidden tokens (a grammar, a bias) are never drawn
    // Softmax over the survivors at temperature 1 for top-p / min-p, as llama.cpp does.
    auto probs = [&](size_t m, float temp) {
        std::vector<double> pr(m);
        double sum = 0;
        for (size_t i = 0; i < m; ++i) sum += pr[i] = std::exp((c[i].first - c[0].first) / temp);
        for (auto& x : pr) x /= sum;
        return pr;
    };
    if (p.top_p < 1.f) {
        const auto pr = probs(n, 1.f);
        double cum = 0;
        size_t keep = n;
        for (size_t i = 0; i < n; ++i) {
            cum += pr[i];
            if (cum >= p.top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (p.min_p > 0.f) {
        const float floor = c[0].first + std::log(p.min_p);  // p_i >= min_p · p_max  ⇔  l_i >= l_max + ln(min_p)
        size_t keep = 1;
        while (keep < n && c[keep].first >= floor) ++keep;
        n = keep;
    }
    const auto pr = probs(n, p.temperature);
    double u = uniform(), cum = 0;
    for (size_t i = 0; i < n; ++i) {
        cum += pr[i];
        if (u < cum) return c[i].second;
    }
    return c[n - 1].second;
}

Token Sampler::sample(std::span<const float> logits) {
    if (logits.empty()) throw Error(Status::InvalidArgument, "sampler: no logits");
    State& s = *s_;
    s.candidates(logits);
    Token chosen = s.choose();
    if (s.gram) {
        std::optional<grammar::State> next = s.grammar_after(chosen);
        if (!next) {
            // The chain's choice does not fit: filter the whole vocabulary (the tokens still possible) and draw again.
            s.candidates(logits);
            s.allowed.clear();
            s.rejected.clear();
            const auto n_text = static_cast<Token>(s.gram->texts->kind.size());
            for (const auto& [l, t] : s.cand)
                if (l != -INFINITY) {
                    if (t < n_text) s.allowed.push_back(t);
                    else s.rejected.push_back(t);  // beyond the vocabulary: no text to match
                }
            grammar::reject(*s.gram->g, s.gram->state, *s.gram->texts, s.allowed, s.rejected);
            for (const Token t : s.rejected) s.cand[static_cast<size_t>(t)].first = -INFINITY;
            if (std::none_of(s.cand.begin(), s.cand.end(), [](const auto& c) { return c.first != -INFINITY; }))
                throw Error(Status::InvalidArgument, "sampler: no token can continue the grammar");
            chosen = s.choose();
            next = s.grammar_after(chosen);
            if (!next) throw Error(Status::Internal, "sampler: the grammar refused a token its filter allowed");
        }
        s.gram->state = std::move(*next);
    }
    s.remember(chosen);
    return chosen;
}

}  // namespace ember
