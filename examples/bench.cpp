// ember-bench: prefill and decode speed in llama-bench's habits, each figure set beside a limit measured
// in the same run: decode against memory read bandwidth (the median of passes right before each of its runs), prefill
// against the arithmetic peak its weights run on (measured right before each prefill test): 8-bit integer
// multiply-adds (vpmaddubsw) for quantized weights, FP32 FMA for F32/F16/BF16 ones. Prefill's arithmetic is
// counted as 2 operations per non-embedding parameter per token (the embedding table is looked up, and a
// tied output matrix runs for the last token only).
//   ember-bench [-m MODEL]... [-t 1,2] [-p 512] [-n 128] [-r 5] [-o md|csv|json] [-s 8] [--backend NAME]
// Each test runs once to warm up (pp: the whole prompt; tg: one token, as llama-bench), then -r times:
// mean ± sample standard deviation of the per-run t/s, and the median. -o json prints one JSON array whose
// objects carry llama-bench's field names (model_filename, model_type, model_size, model_n_params,
// n_threads, n_prompt, n_gen, avg_ts, stddev_ts, samples_ts, ...) plus ember's: median_ts, and the limits:
// read_bw_gbs, achieved_gbs, pct_of_read_bw for a decode test; peak_kind ("int8" or "fp32"), peak_gops,
// achieved_gops, pct_of_peak for a prefill one. -s N adds lines per model and thread count (after the table; on
// stderr with -o csv/json): N sessions decoding at once, each on a thread of its own (they share the
// model's one worker pool), with their total tokens/s and the CPU time they cost.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "ember/ember.hpp"

using namespace ember;
using namespace ember_examples;

namespace {

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

// Read bandwidth in GB/s with n threads over a buffer far larger than the caches, one pass at a time, so
// that a decode test can sample it right before each of its runs: neighbours on a shared machine move it
// by a third within minutes, and one figure taken before the test would not describe the runs.
class ReadBandwidth {
public:
    explicit ReadBandwidth(int n_threads) : n_threads_(n_threads), buf_(kWords, 1) { (void)pass(); }  // maps the pages
    double pass() {
        std::vector<uint64_t> sums(static_cast<size_t>(n_threads_));
        const double t0 = now_ms();
        std::vector<std::thread> th;
        for (int t = 0; t < n_threads_; ++t)
            th.emplace_back([&, t] {
                const size_t b = kWords * t / n_threads_, e = kWords * (t + 1) / n_threads_;
                sums[static_cast<size_t>(t)] = sum_words(buf_.data() + b, e - b);
            });
        for (auto& x : th) x.join();
        const double ms = now_ms() - t0;
        // The words are all 1: a sum that is not the count would mean the loop did not read them.
        return std::accumulate(sums.begin(), sums.end(), uint64_t(0)) == kWords ? kWords * 8 / (ms / 1e3) / 1e9 : 0;
    }

private:
    static constexpr size_t kWords = size_t(512) << 20 >> 3;  // 512 MiB
    int n_threads_;
    std::vector<uint64_t> buf_;
};

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

#if defined(__x86_64__)
// vpmaddubsw on eight independent chains: 32 multiply-adds (64 operations) each.
__attribute__((target("avx2"))) double int8_loop(long iters) {
    __m256i a[8];
    for (int i = 0; i < 8; ++i) a[i] = _mm256_set1_epi8(static_cast<char>(1 + i));
    const __m256i b = _mm256_set1_epi8(1);
    for (long k = 0; k < iters; ++k)
        for (int i = 0; i < 8; ++i) a[i] = _mm256_maddubs_epi16(a[i], b);
    __m256i s = a[0];
    for (int i = 1; i < 8; ++i) s = _mm256_add_epi16(s, a[i]);
    return _mm256_extract_epi16(s, 0);
}
#endif

// An arithmetic peak in G operations/s with n threads (0 when this CPU has no AVX2/FMA): FP32 FMA
// (2 per lane) or 8-bit multiply-adds (2 per byte pair).
double arithmetic_peak(bool int8, int n_threads, int reps) {
#if defined(__x86_64__)
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    const long iters = 20'000'000;
    std::vector<double> g;
    for (int r = 0; r < reps; ++r) {
        const double t0 = now_ms();
        std::vector<std::thread> th;
        std::vector<double> sink(static_cast<size_t>(n_threads));
        for (int t = 0; t < n_threads; ++t)
            th.emplace_back([&, t] { sink[static_cast<size_t>(t)] = int8 ? int8_loop(iters) : fma_loop(iters); });
        for (auto& x : th) x.join();
        const double s = (now_ms() - t0) / 1e3;
        g.push_back(double(iters) * 8 * (int8 ? 64 : 16) * n_threads / s / 1e9);
    }
    return median(g);
#else
    (void)int8;
    (void)n_threads;
    (void)reps;
    return 0;
#endif
}

// Whether most of a model's weight tensors are quantized (their matmuls run on 8-bit products).
bool quantized_weights(const ModelInfo& info) {
    uint64_t q = 0, f = 0;
    for (const auto& [type, n] : info.tensor_types)
        (type == "F32" || type == "F16" || type == "BF16" ? f : q) += n;
    return q > f - std::min<uint64_t>(f, 2ull * info.n_layers + 1);  // not counting the F32 norms
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// n_sessions sessions decode `gen` at once from threads of their own; prints total t/s and CPU cost.
void concurrent_decode(FILE* to, const Model& model, int n_threads, int n_sessions, const std::vector<Token>& gen) {
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
    std::fprintf(to, "%d sessions at once, %d threads each: tg%zu %.1f t/s in total, %.2f s wall, %.2f s CPU (%.1f ms CPU a token)\n",
                n_sessions, n_threads, gen.size(), total / wall, wall, cpu, 1e3 * cpu / total);

    // The same tokens through Session::decode_batch: one step serves every session.
    std::vector<Session> batched;
    for (int i = 0; i < n_sessions; ++i) batched.emplace_back(model, sp);
    std::vector<Session*> ptrs;
    for (auto& s : batched) ptrs.push_back(&s);
    const double cpu1 = cpu_seconds(), t1 = now_ms();
    for (Token t : gen) Session::decode_batch(ptrs, std::vector<Token>(ptrs.size(), t));
    const double wall_b = (now_ms() - t1) / 1e3, cpu_b = cpu_seconds() - cpu1;
    std::fprintf(to, "%d sessions in one batch,  %d threads:      tg%zu %.1f t/s in total, %.2f s wall, %.2f s CPU (%.1f ms CPU a token)\n",
                n_sessions, n_threads, gen.size(), total / wall_b, wall_b, cpu_b, 1e3 * cpu_b / total);
}

using json = nlohmann::ordered_json;

// The same n random tokens for every test of a model (and every run of the program).
std::vector<Token> random_tokens(const Model& model, int n) {
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> pick(0, model.n_vocab() - 1);
    std::vector<Token> t(static_cast<size_t>(n));
    for (auto& x : t) x = pick(rng);
    return t;
}

std::string base_name(const std::string& path) { return path.substr(path.find_last_of('/') + 1); }

// The CPU's name as /proc/cpuinfo gives it ("model name"; "unknown" elsewhere).
std::string cpu_name() {
    std::ifstream f("/proc/cpuinfo");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
            std::string v = line.substr(line.find(':') + 1);
            v.erase(0, v.find_first_not_of(" \t"));
            return v;
        }
    return "unknown";
}

// llama.cpp's names for general.file_type (llama_model_ftype_name).
std::string ftype_name(const Model& m) {
    static const std::map<std::string, const char*> names{
        {"0", "all F32"},       {"1", "F16"},           {"2", "Q4_0"},          {"3", "Q4_1"},
        {"7", "Q8_0"},          {"8", "Q5_0"},          {"9", "Q5_1"},          {"10", "Q2_K - Medium"},
        {"11", "Q3_K - Small"}, {"12", "Q3_K - Medium"}, {"13", "Q3_K - Large"}, {"14", "Q4_K - Small"},
        {"15", "Q4_K - Medium"}, {"16", "Q5_K - Small"}, {"17", "Q5_K - Medium"}, {"18", "Q6_K"},
        {"32", "BF16"}};
    const auto ft = m.meta("general.file_type");
    if (!ft) return "?";
    const auto it = names.find(*ft);
    return it != names.end() ? it->second : "file type " + *ft;
}

// "llama 135M Q4_1": llama-bench's model_type, the size from the parameter count.
std::string model_type(const Model& m) {
    const double p = static_cast<double>(m.info().n_params);
    char size[32];
    if (p < 1e9) std::snprintf(size, sizeof size, "%.0fM", p / 1e6);
    else std::snprintf(size, sizeof size, "%.1fB", p / 1e9);
    return m.info().architecture + " " + size + " " + ftype_name(m);
}

std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char b[32];
    std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return b;
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); }

// The sample standard deviation (n - 1), 0 for one sample: llama-bench's.
double stddev(const std::vector<double>& v) {
    if (v.size() < 2) return 0;
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / static_cast<double>(v.size() - 1));
}

// One test: warm-up, then `reps` timed runs of `run` (it returns seconds) over n_tokens tokens.
json measure(int reps, int n_tokens, const std::function<void()>& warm, const std::function<double()>& run) {
    warm();
    std::vector<double> ns, ts;
    for (int r = 0; r < reps; ++r) {
        const double s = run();
        ns.push_back(s * 1e9);
        ts.push_back(n_tokens / s);
    }
    json j;
    j["avg_ns"] = static_cast<uint64_t>(mean(ns));
    j["stddev_ns"] = static_cast<uint64_t>(stddev(ns));
    j["avg_ts"] = mean(ts);
    j["stddev_ts"] = stddev(ts);
    j["median_ts"] = median(ts);
    j["samples_ns"] = json::array();
    for (double x : ns) j["samples_ns"].push_back(static_cast<uint64_t>(x));
    j["samples_ts"] = ts;
    return j;
}

void print_md_row(const json& r, int name_width) {
    const bool pp = r["n_prompt"].get<int>() > 0;
    char test[32], tps[48], limit[64], of[16];
    std::snprintf(test, sizeof test, "%s%d", pp ? "pp" : "tg", pp ? r["n_prompt"].get<int>() : r["n_gen"].get<int>());
    std::snprintf(tps, sizeof tps, "%.2f ± %.2f", r["avg_ts"].get<double>(), r["stddev_ts"].get<double>());
    if (pp) {
        std::snprintf(limit, sizeof limit, "%.0f GOP/s %s peak", r["peak_gops"].get<double>(),
                      r["peak_kind"].get<std::string>() == "int8" ? "int8" : "FP32 FMA");
        std::snprintf(of, sizeof of, "%.1f%%", r["pct_of_peak"].get<double>());
    } else {
        const double bw = r["read_bw_gbs"].get<double>();
        std::snprintf(limit, sizeof limit, "%.1f GB/s read = %.0f t/s", bw, bw * 1e9 / r["model_size"].get<double>());
        std::snprintf(of, sizeof of, "%.1f%%", r["pct_of_read_bw"].get<double>());
    }
    std::printf("| %-*s | %9.2f MiB | %8.2f M | %-7s | %7d | %6s | %19s | %9.2f | %-28s | %8s |\n", name_width,
                base_name(r["model_filename"].get<std::string>()).c_str(),
                r["model_size"].get<double>() / 1048576.0, r["model_n_params"].get<double>() / 1e6,
                r["backends"].get<std::string>().c_str(), r["n_threads"].get<int>(), test, tps,
                r["median_ts"].get<double>(), limit, of);
    std::fflush(stdout);
}

// CSV: one header of every key seen (first-seen order), a row per test, arrays space-separated.
void print_csv(const json& results) {
    std::vector<std::string> cols;
    for (const auto& r : results)
        for (const auto& [k, v] : r.items())
            if (std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
    auto cell = [](const json& v) {
        std::string s;
        if (v.is_string()) s = v.get<std::string>();
        else if (v.is_array())
            for (const auto& x : v) s += (s.empty() ? "" : " ") + x.dump();
        else if (!v.is_null()) s = v.dump();
        std::string q = "\"";
        for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        return q + "\"";
    };
    for (size_t i = 0; i < cols.size(); ++i) std::printf("%s%s", i ? "," : "", cols[i].c_str());
    std::printf("\n");
    for (const auto& r : results) {
        for (size_t i = 0; i < cols.size(); ++i)
            std::printf("%s%s", i ? "," : "", r.contains(cols[i]) ? cell(r[cols[i]]).c_str() : "");
        std::printf("\n");
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ember-bench: prefill (pp) and decode (tg) tokens/s in llama-bench's habits, beside the machine's "
                 "measured read bandwidth and arithmetic peak (int8 or FP32 FMA)"};
    std::vector<std::string> models{default_model()};
    std::vector<int> threads{1, 2}, prompts{512}, gens{128};
    int reps = 5, n_sessions = 0;
    std::string backend = "auto", output = "md", quantize;
    app.add_option("-m,--model", models, "GGUF model (repeat for several)")->capture_default_str();
    app.add_option("-t,--threads", threads, "thread counts, comma-separated (0: all hardware threads)")
        ->delimiter(',')->capture_default_str()->check(CLI::Range(0, 4096));
    app.add_option("-p,--n-prompt", prompts, "prompt lengths for prefill tests (0: none)")
        ->delimiter(',')->capture_default_str()->check(CLI::Range(0, 1 << 20));
    app.add_option("-n,--n-gen", gens, "tokens for decode tests (0: none)")
        ->delimiter(',')->capture_default_str()->check(CLI::Range(0, 1 << 20));
    app.add_option("-r,--repetitions", reps, "timed runs per test")->capture_default_str()->check(CLI::Range(1, 1000));
    app.add_option("-o,--output", output, "md, csv or json")->capture_default_str()->check(CLI::IsMember({"md", "csv", "json"}));
    app.add_option("-s,--sessions", n_sessions, "also N sessions decoding at once, per thread count")->check(CLI::Range(0, 1024));
    app.add_option("--backend", backend, "cpu, cuda or auto")->capture_default_str();
    app.add_option("--quantize", quantize, kQuantizeHelp);
    CLI11_PARSE(app, argc, argv);
    prompts.erase(std::remove(prompts.begin(), prompts.end(), 0), prompts.end());
    gens.erase(std::remove(gens.begin(), gens.end(), 0), gens.end());

    try {
        const std::string cpu = cpu_name();
        json results = json::array();
        int name_width = 5;
        for (const auto& m : models) name_width = std::max(name_width, static_cast<int>(base_name(m).size()));
        if (output == "md") {
            std::printf("ember-bench | CPU: %s | %d runs a test after a warm-up: t/s mean ± stddev, median\n\n", cpu.c_str(), reps);
            std::printf("| %-*s | %13s | %10s | %-7s | %7s | %6s | %18s | %9s | %-28s | %8s |\n", name_width, "model", "size", "params",
                        "backend", "threads", "test", "t/s", "median", "limit (same run)", "of limit");
            std::printf("|%s|%s:|%s:|%s|%s:|%s|%s:|%s:|%s|%s:|\n", std::string(static_cast<size_t>(name_width) + 2, '-').c_str(), std::string(14, '-').c_str(),
                        std::string(11, '-').c_str(), std::string(9, '-').c_str(), std::string(8, '-').c_str(),
                        std::string(8, '-').c_str(), std::string(19, '-').c_str(), std::string(10, '-').c_str(),
                        std::string(30, '-').c_str(), std::string(9, '-').c_str());
        }
        const int max_tokens = std::max(prompts.empty() ? 0 : *std::max_element(prompts.begin(), prompts.end()),
                                        gens.empty() ? 0 : *std::max_element(gens.begin(), gens.end()));
        for (const std::string& path : models) {
            ModelParams mp;
            mp.backend = backend;
            mp.quantize = quantize;
            const Model model = Model::load(path, mp);
            const ModelInfo& info = model.info();
            const std::vector<Token> tokens = random_tokens(model, max_tokens);

            for (int nt : threads) {
                const int hw_threads = nt > 0 ? nt : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
                auto base = [&](int n_prompt, int n_gen) {
                    json r;
                    r["cpu_info"] = cpu;
                    r["backends"] = model.backend();
                    r["model_filename"] = path;
                    r["model_type"] = model_type(model);
                    r["model_size"] = info.n_tensor_bytes;
                    r["model_n_params"] = info.n_params;
                    r["n_threads"] = hw_threads;
                    r["n_prompt"] = n_prompt;
                    r["n_gen"] = n_gen;
                    r["test_time"] = utc_now();
                    return r;
                };
                for (int np : prompts) {
                    SessionParams sp;
                    sp.n_threads = nt;
                    sp.n_ctx = np + 1;
                    sp.n_batch = std::min(np, 512);  // llama-bench's default n_ubatch
                    Session s(model, sp);
                    const std::span<const Token> prompt(tokens.data(), static_cast<size_t>(np));
                    json r = base(np, 0);
                    const bool int8 = quantized_weights(info);
                    const double peak = arithmetic_peak(int8, hw_threads, 3);
                    r.update(measure(
                        reps, np, [&] {
                            s.reset();
                            s.prefill(prompt);
                        },
                        [&] {
                            s.reset();
                            const double t0 = now_ms();
                            s.prefill(prompt);
                            return (now_ms() - t0) / 1e3;
                        }));
                    // 2 operations per non-embedding parameter per token.
                    const double embedding = double(info.n_vocab) * info.n_embd;
                    const double gops = r["avg_ts"].get<double>() * 2.0 * (double(info.n_params) - embedding) / 1e9;
                    r["peak_kind"] = int8 ? "int8" : "fp32";
                    r["peak_gops"] = peak;
                    r["achieved_gops"] = gops;
                    r["pct_of_peak"] = peak > 0 ? 100.0 * gops / peak : 0.0;
                    if (output == "md") print_md_row(r, name_width);
                    results.push_back(std::move(r));
                }
                for (int ng : gens) {
                    SessionParams sp;
                    sp.n_threads = nt;
                    sp.n_ctx = ng + 1;
                    Session s(model, sp);
                    json r = base(0, ng);
                    ReadBandwidth probe(hw_threads);
                    std::vector<double> bws;
                    r.update(measure(
                        reps, ng, [&] {
                            s.reset();
                            s.decode(tokens[0]);
                        },
                        [&] {
                            bws.push_back(probe.pass());
                            s.reset();
                            const double t0 = now_ms();
                            for (int i = 0; i < ng; ++i) s.decode(tokens[static_cast<size_t>(i)]);
                            return (now_ms() - t0) / 1e3;
                        }));
                    // Decode reads every weight once per token.
                    const double gbs = r["avg_ts"].get<double>() * static_cast<double>(info.n_tensor_bytes) / 1e9;
                    const double bw = median(bws);  // sampled right before each run
                    r["read_bw_gbs"] = bw;
                    r["achieved_gbs"] = gbs;
                    r["pct_of_read_bw"] = bw > 0 ? 100.0 * gbs / bw : 0.0;
                    if (output == "md") print_md_row(r, name_width);
                    results.push_back(std::move(r));
                }
            }
        }
        if (n_sessions > 0 && !gens.empty()) {  // after the table, the models loaded again
            FILE* to = output == "md" ? stdout : stderr;
            for (const std::string& path : models) {
                ModelParams mp;
                mp.backend = backend;
                mp.quantize = quantize;
                const Model model = Model::load(path, mp);
                std::fprintf(to, "\n%s:\n", path.c_str());
                for (int nt : threads) concurrent_decode(to, model, nt, n_sessions, random_tokens(model, gens.front()));
            }
        }
        if (output == "json") std::printf("%s\n", results.dump(2).c_str());
        else if (output == "csv") print_csv(results);
    } catch (const std::exception& e) {
        return ember_examples::fail(e);
    }
    return 0;
}
