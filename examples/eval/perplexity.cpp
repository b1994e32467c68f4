// ember-eval perplexity: llama-perplexity's method, so the figures compare. The whole file is tokenized
// once (BOS as the vocabulary says); it is cut into non-overlapping chunks of n_ctx tokens; each chunk
// starts from an empty cache with its first token replaced by BOS, and only the second half is scored (each
// scored token then sees at least n_ctx/2 tokens of context).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "ember/ember.hpp"
#include "eval.hpp"

namespace ember_eval {

using ember::Error;
using ember::Status;
using ember::Token;

int run_perplexity(const Common& c, const PerplexityOptions& o) {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) throw Error(Status::Io, "cannot open " + o.file);
    std::stringstream ss;
    ss << in.rdbuf();

    ember::ModelParams mp;
    mp.backend = c.backend;
    mp.n_threads = c.threads;
    mp.quantize = c.quantize;
    const ember::Model model = ember::Model::load(o.model, mp);
    const auto& tok = model.tokenizer();
    Stopwatch tokenize_clock;
    const std::vector<Token> tokens = tok.encode(ss.str(), true, false);
    std::fprintf(stderr, "tokenized %zu bytes into %zu tokens in %.2f s\n", ss.str().size(), tokens.size(),
                 tokenize_clock.wall_s());
    const int n_ctx = o.n_ctx;
    if (static_cast<long>(tokens.size()) < 2L * n_ctx)
        throw Error(Status::InvalidArgument, "the text has " + std::to_string(tokens.size()) +
                                                 " tokens; perplexity at -c " + std::to_string(n_ctx) +
                                                 " needs at least " + std::to_string(2L * n_ctx));
    const long available = static_cast<long>(tokens.size()) / n_ctx;
    const long n_chunks = o.chunks > 0 ? std::min<long>(o.chunks, available) : available;
    const int first = n_ctx / 2;

    ember::SessionParams sp;
    sp.n_ctx = n_ctx;
    sp.n_batch = std::min(n_ctx, 512);
    ember::Session session(model, sp);
    const int n_vocab = model.n_vocab();

    std::fprintf(stderr, "%ld chunks of %d tokens, scoring the last %d of each\n", n_chunks, n_ctx,
                 n_ctx - 1 - first);
    double nll = 0, nll2 = 0;
    long count = 0;
    Stopwatch clock;
    std::vector<Token> chunk(n_ctx);
    for (long ci = 0; ci < n_chunks; ++ci) {
        std::copy_n(tokens.begin() + ci * n_ctx, n_ctx, chunk.begin());
        if (tok.add_bos() && tok.bos() >= 0) chunk[0] = tok.bos();
        session.reset();
        session.prefill(chunk, true);
        for (int i = first; i < n_ctx - 1; ++i) {
            const auto logits = session.logits_at(i);
            // -log softmax(logits)[next], in double: max, then the log of the shifted sum.
            float mx = logits[0];
            for (int v = 1; v < n_vocab; ++v) mx = std::max(mx, logits[v]);
            double sum = 0;
            for (int v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(logits[v]) - mx);
            const double x = std::log(sum) + mx - logits[chunk[i + 1]];
            nll += x;
            nll2 += x * x;
            ++count;
        }
        if (ci == 0) {
            const double s = clock.wall_s();
            std::fprintf(stderr, "%.2f s per chunk, about %.1f minutes for %ld\n", s, s * n_chunks / 60.0, n_chunks);
        }
        std::fprintf(stderr, "[%ld]%.4f,", ci + 1, std::exp(nll / count));
        std::fflush(stderr);
    }
    std::fprintf(stderr, "\n");
    const double mean = nll / count;
    const double ppl = std::exp(mean);
    const double var = nll2 / count - mean * mean;
    const double err = var > 0 && count > 1 ? std::sqrt(var / (count - 1)) * ppl : 0.0;
    const double wall = clock.wall_s();
    std::printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, err);
    std::printf("%ld chunks, %ld tokens scored, %.1f s wall, %.1f s CPU, %.1f tokens/s\n", n_chunks, count, wall,
                clock.cpu_s(), n_chunks * n_ctx / std::max(1e-9, wall));
    return 0;
}

}  // namespace ember_eval
