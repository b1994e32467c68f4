// ember-bench: prefill and decode speed in llama-bench's style, each figure set beside a limit measured
// in the same run: decode against memory read bandwidth, prefill against the FP32 FMA peak.
//   ember-bench [-m MODEL] [-t 1,2] [-p 512] [-n 128] [-r 5] [-s 8]
// -s N adds lines per thread count: N sessions decoding at once, each on a thread of its own (they share
// the model's one worker pool), with their total tokens/s and the CPU time they cost.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common.hpp"
#include "ember/ember.hpp"

using namespace ember;
using namespace ember_examples;

namespace {

std::vector<int> parse_list(const std::string& s) {
    std::vector<int> v;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) v.push_back(std::stoi(item));
    return v;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

#if defined(__x86_64__)
// Sums 64-bit words with 32-byte loads on four independent chains: the fastest way to read memory.
__attribute__((target("avx2"))) uint64_t sum_words(const uint64_t* p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
        a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
        a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
    }
    alignas(32) uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
    uint64_t s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; i < n; ++i) s += p[i];
    return s;
}
#else
uint64_t sum_words(const uint64_t* p, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; ++i) s += p[i];
    return s;
}
#endif

// Read bandwidth in GB/s with n threads over a buffer far larger than the caches.
double read_bandwidth(int n_threads, int reps) {
    const size_t n = size_t(512) << 20 >> 3;  // 512 MiB of uint64
    std::vector<uint64_t> buf(n, 1);
    std::vector<double> gbps;
    std::vector<uint64_t> sums(static_cast<size_t>(n_threads));
    for (int r = 0; r < reps + 1; ++r) {
        const double t0 = now_ms();
        std::vector<std::thread> th;
        for (int t = 0; t < n_threads; ++t)
            th.emplace_back([&, t] {
                const size_t b = n * t / n_threads, e = n * (t + 1) / n_threads;
                sums[static_cast<size_t>(t)] = sum_words(buf.data() + b, e - b);
            });
        for (auto& x : th) x.join();
        const double ms = now_ms() - t0;
        if (r > 0) gbps.push_back(n * 8 / (ms / 1e3) / 1e9);  // the first pass warms the pages
    }
    return std::accumulate(sums.begin(), sums.end(), uint64_t(0)) ? median(gbps) : 0;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) double fma_loop(long iters) {
    __m256 a[8];
    for (int i = 0; i < 8; ++i) a[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
    const __m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    for (long k = 0; k < iters; ++k)
        for (int i = 0; i < 8; ++i) a[i] = _mm256_fmadd_ps(a[i], m, c);
    float out[8];
    __m256 s = a[0];
    for (int i = 1; i < 8; ++i) s = _mm256_add_ps(s, a[i]);
    _mm256_storeu_ps(out, s);
    return out[0];
}
#endif

// FP32 FMA peak in GFLOP/s with n threads (0 when this CPU has no AVX2/FMA).
double fma_peak(int n_threads, int reps) {
#if defined(__x86_64__)
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    const long iters = 20'000'000;
    std::vector<double> g;
    for (int r = 0; r < reps; ++r) {
        const double t0 = now_ms();
        std::vector<std::thread> th;
        std::vector<double> sink(static_cast<size_t>(n_threads));
        for (int t = 0; t < n_threads; ++t) th.emplace_back([&, t] { sink[static_cast<size_t>(t)] = fma_loop(iters); });
        for (auto& x : th) x.join();
        const double s = (now_ms() - t0) / 1e3;
        g.push_back(double(iters) * 8 * 8 * 2 * n_threads / s / 1e9);
    }
    return median(g);
#else
    (void)n_threads;
    (void)reps;
    return 0;
#endif
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// n_sessions sessions decode `gen` at once from threads of their own; prints total t/s and CPU cost.
void concurrent_decode(const Model& model, int n_threads, int n_sessions, const std::vector<Token>& gen) {
    SessionParams sp;
    sp.n_threads = n_threads;
    sp.n_ctx = static_cast<int>(gen.size()) + 1;
    std::vector<Session> sessions;
    for (int i = 0; i < n_sessions; ++i) sessions.emplace_back(model, sp);
    const double cpu0 = cpu_seconds(), t0 = now_ms();
    std::vector<std::thread> th;
    for (auto& s : sessions)
        th.emplace_back([&s, &gen] {
            for (Token t : gen) s.decode(t);
        });
    for (auto& t : th) t.join();
    const double wall = (now_ms() - t0) / 1e3, cpu = cpu_seconds() - cpu0;
    const double total = static_cast<double>(gen.size()) * n_sessions;
    std::printf("%d sessions at once, %d threads each: tg%zu %.1f t/s in total, %.2f s wall, %.2f s CPU (%.1f ms CPU a token)\n",
                n_sessions, n_threads, gen.size(), total / wall, wall, cpu, 1e3 * cpu / total);

    // The same tokens through Session::decode_batch: one step serves every session.
    std::vector<Session> batched;
    for (int i = 0; i < n_sessions; ++i) batched.emplace_back(model, sp);
    std::vector<Session*> ptrs;
    for (auto& s : batched) ptrs.push_back(&s);
    const double cpu1 = cpu_seconds(), t1 = now_ms();
    for (Token t : gen) Session::decode_batch(ptrs, std::vector<Token>(ptrs.size(), t));
    const double wall_b = (now_ms() - t1) / 1e3, cpu_b = cpu_seconds() - cpu1;
    std::printf("%d sessions in one batch,  %d threads:      tg%zu %.1f t/s in total, %.2f s wall, %.2f s CPU (%.1f ms CPU a token)\n",
                n_sessions, n_threads, gen.size(), total / wall_b, wall_b, cpu_b, 1e3 * cpu_b / total);
}

}  // namespace

int main(int argc, char** argv) {
    std::string model_path = default_model(), backend = "auto";
    std::vector<int> threads{1, 2};
    int n_prompt = 512, n_gen = 128, reps = 5, n_sessions = 0;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto next = [&]() -> std::string {
                if (i + 1 >= argc) throw Error(Status::InvalidArgument, "missing value after " + a);
                return argv[++i];
            };
            if (a == "-m") model_path = next();
            else if (a == "-t") threads = parse_list(next());
            else if (a == "-p") n_prompt = std::stoi(next());
            else if (a == "-n") n_gen = std::stoi(next());
            else if (a == "-r") reps = std::stoi(next());
            else if (a == "-s") n_sessions = std::stoi(next());
            else if (a == "--backend") backend = next();
            else {
                std::fprintf(stderr, "usage: %s [-m MODEL] [-t 1,2] [-p 512] [-n 128] [-r 5] [-s SESSIONS] [--backend NAME]\n", argv[0]);
                return a == "-h" || a == "--help" ? 0 : 2;
            }
        }
        ModelParams mp;
        mp.backend = backend;
        Model model = Model::load(model_path, mp);
        const ModelInfo& info = model.info();
        std::mt19937 rng(42);
        std::uniform_int_distribution<int> pick(0, model.n_vocab() - 1);
        std::vector<Token> prompt(static_cast<size_t>(n_prompt)), gen(static_cast<size_t>(n_gen));
        for (auto& t : prompt) t = pick(rng);
        for (auto& t : gen) t = pick(rng);

        std::printf("model: %s | %.2f MiB | %.2f M params | backend %s | %d reps, median\n\n", model_path.c_str(),
                    info.n_tensor_bytes / 1048576.0, info.n_params / 1e6, model.backend().c_str(), reps);
        std::printf("| threads | test   |     t/s | limit (same run)            | of limit |\n");
        std::printf("|--------:|:-------|--------:|:----------------------------|---------:|\n");
        for (int nt : threads) {
            SessionParams sp;
            sp.n_threads = nt;
            sp.n_ctx = n_prompt + n_gen + 1;
            sp.n_batch = n_prompt;
            Session s(model, sp);
            std::vector<double> pp, tg;
            for (int r = 0; r < reps + 1; ++r) {  // the first run warms caches and pages
                s.reset();
                double t0 = now_ms();
                s.prefill(prompt);
                const double pp_s = (now_ms() - t0) / 1e3;
                s.reset();
                t0 = now_ms();
                for (Token t : gen) s.decode(t);
                const double tg_s = (now_ms() - t0) / 1e3;
                if (r > 0) {
                    pp.push_back(n_prompt / pp_s);
                    tg.push_back(n_gen / tg_s);
                }
            }
            const int hw_threads = nt > 0 ? nt : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
            const double bw = read_bandwidth(hw_threads, 3);
            const double peak = fma_peak(hw_threads, 3);
            const double pp_tps = median(pp), tg_tps = median(tg);
            // Decode reads every weight once per token; prefill does 2 FLOPs per parameter per token.
            const double tg_bound = bw * 1e9 / static_cast<double>(info.n_tensor_bytes);
            const double pp_gflops = pp_tps * 2.0 * static_cast<double>(info.n_params) / 1e9;
            char limit[64];
            std::snprintf(limit, sizeof limit, "%.1f GFLOP/s FP32 FMA peak", peak);
            std::printf("| %7d | pp%-4d | %7.1f | %-27s | %7.1f%% |\n", nt, n_prompt, pp_tps, limit,
                        peak > 0 ? 100.0 * pp_gflops / peak : 0.0);
            std::snprintf(limit, sizeof limit, "%.1f GB/s read = %.0f t/s", bw, tg_bound);
            std::printf("| %7d | tg%-4d | %7.1f | %-27s | %7.1f%% |\n", nt, n_gen, tg_tps, limit, 100.0 * tg_tps / tg_bound);
        }
        if (n_sessions > 0) {
            std::printf("\n");
            for (int nt : threads) concurrent_decode(model, nt, n_sessions, gen);
        }
    } catch (const std::exception& e) {
        return ember_examples::fail(e);
    }
    return 0;
}
