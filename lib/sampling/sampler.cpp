#include "ember/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <numeric>
#include <random>
#include <unordered_map>
#include <vector>

#include "ember/error.hpp"

namespace ember {

struct Sampler::State {
    SamplerParams p;
    std::mt19937_64 rng;
    uint64_t seed_used = 0;
    std::deque<Token> history;
    std::vector<std::pair<float, Token>> cand;  // (logit, token), reused between calls

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
    s_->p = params;
    s_->choose_seed();
    s_->seed();
}

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
    if (s_->p.penalty_last_n == 0) return;
    s_->history.push_back(t);
    while (s_->history.size() > static_cast<size_t>(s_->p.penalty_last_n)) s_->history.pop_front();
}

void Sampler::reset() {
    s_->history.clear();
    s_->seed();
}

Token Sampler::sample(std::span<const float> logits) {
    if (logits.empty()) throw Error(Status::InvalidArgument, "sampler: no logits");
    const SamplerParams& p = s_->p;
    auto& c = s_->cand;
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
    if (!s_->history.empty() && (p.repeat_penalty != 1.f || p.frequency_penalty != 0.f || p.presence_penalty != 0.f)) {
        std::unordered_map<Token, int> count;
        for (Token t : s_->history) ++count[t];
        for (auto [t, n] : count) {
            if (t < 0 || static_cast<size_t>(t) >= c.size()) continue;
            float& l = c[static_cast<size_t>(t)].first;
            l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
            l -= static_cast<float>(n) * p.frequency_penalty + p.presence_penalty;
        }
    }

    auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
    Token chosen;
    if (p.temperature <= 0.f) {
        chosen = std::min_element(c.begin(), c.end(), by_logit)->second;
    } else {
        size_t n = c.size();
        if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) n = static_cast<size_t>(p.top_k);
        std::partial_sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(n), c.end(), by_logit);
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
        double u = s_->uniform(), cum = 0;
        chosen = c[n - 1].second;
        for (size_t i = 0; i < n; ++i) {
            cum += pr[i];
            if (u < cum) {
                chosen = c[i].second;
                break;
            }
        }
    }
    accept(chosen);
    return chosen;
}

}  // namespace ember
