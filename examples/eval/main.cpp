// ember-eval: MMLU (accuracy, timing, plots across models), perplexity (llama-perplexity's method) and
// MT-Bench (two-turn answers judged by any OpenAI-compatible endpoint, history on and off).
//   ember-eval mmlu -m A.gguf [-m B.gguf ...] [--subjects LIST|all] [-k SHOTS] [--limit N] [--verbose]
//                   [--out DIR] [--plot]
//   ember-eval perplexity -m MODEL -f TEXT [-c 512] [--chunks N]
//   ember-eval mt-bench -m MODEL --out DIR [--no-history] [--judge-url URL --judge-model NAME]
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "../common.hpp"
#include "eval.hpp"

namespace ember_eval {

namespace {
double process_cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
    return sec(ru.ru_utime) + sec(ru.ru_stime);
}

// ../shared/testdata/eval beside a checkout, else tests/data/eval of the source tree.
std::string default_data(const std::string& sub) {
    for (const std::string& base : {std::string(EMBER_SOURCE_DIR) + "/../shared/testdata/eval/",
                                   std::string(EMBER_SOURCE_DIR) + "/tests/data/eval/"})
        if (std::filesystem::exists(base + sub)) return base + sub;
    return sub;
}
}  // namespace

Stopwatch::Stopwatch() : wall0_(ember_examples::now_ms() / 1e3), cpu0_(process_cpu_s()) {}
double Stopwatch::wall_s() const { return ember_examples::now_ms() / 1e3 - wall0_; }
double Stopwatch::cpu_s() const { return process_cpu_s() - cpu0_; }

std::string model_name(const std::string& path) {
    std::string n = std::filesystem::path(path).filename().string();
    if (n.size() > 5 && n.ends_with(".gguf")) n.resize(n.size() - 5);
    return n;
}

}  // namespace ember_eval

int main(int argc, char** argv) {
    using namespace ember_eval;
    CLI::App app{"ember-eval: MMLU, perplexity and MT-Bench over ember"};
    app.require_subcommand(1);
    Common common;
    auto add_common = [&](CLI::App* sub) {
        sub->add_option("-t,--threads", common.threads, "threads (0: all hardware threads)")->check(CLI::Range(0, 1024));
        sub->add_option("--backend", common.backend, "cpu, cuda or auto");
        sub->add_option("--quantize", common.quantize, ember_examples::kQuantizeHelp);
    };

    MmluOptions mmlu;
    mmlu.data = default_data("mmlu");
    auto* m = app.add_subcommand("mmlu", "multiple-choice accuracy on MMLU, with timing and plots");
    m->add_option("-m,--model", mmlu.models, "GGUF model (repeat to compare several)")->required();
    m->add_option("--subjects", mmlu.subjects, "comma-separated subjects, or 'all' for the 57 (default: ten)");
    m->add_option("-k,--shots", mmlu.shots, "dev-set examples before each question")->check(CLI::Range(0, 5));
    m->add_option("--limit", mmlu.limit, "questions per subject (0: all)")->check(CLI::Range(0, 100000));
    m->add_option("-c,--ctx", mmlu.n_ctx, "context size; shots are dropped for a question that does not fit")
        ->check(CLI::Range(64, 131072));
    m->add_option("--data", mmlu.data, "MMLU folder with dev/ and test/ CSVs")->capture_default_str();
    m->add_flag("--verbose", mmlu.verbose, "print every question, the model's answer and the correct one");
    m->add_option("--out", mmlu.out, "write results.json and answers.jsonl here");
    m->add_flag("--plot", mmlu.plot, "draw the plots into --out (needs python3 and matplotlib)");
    add_common(m);

    PerplexityOptions ppl;
    auto* p = app.add_subcommand("perplexity", "perplexity the way llama-perplexity computes it");
    p->add_option("-m,--model", ppl.model, "GGUF model")->required();
    p->add_option("-f,--file", ppl.file, "text file")->required();
    p->add_option("-c,--ctx", ppl.n_ctx, "chunk size in tokens")->check(CLI::Range(16, 131072));
    p->add_option("--chunks", ppl.chunks, "chunks to score (0: all)")->check(CLI::Range(0, 1000000));
    add_common(p);

    MtBenchOptions mt;
    mt.data = default_data("mt_bench");
    if (const char* k = std::getenv("EMBER_JUDGE_KEY")) mt.judge_key = k;
    else if (const char* k2 = std::getenv("OPENAI_API_KEY")) mt.judge_key = k2;
    auto* b = app.add_subcommand("mt-bench", "two-turn MT-Bench answers, judged by an OpenAI-compatible endpoint");
    b->add_option("-m,--model", mt.model, "GGUF model")->required();
    b->add_option("--out", mt.out, "answers, judgments and report (resumes what is there)")->required();
    b->add_option("--data", mt.data, "MT-Bench folder")->capture_default_str();
    b->add_flag("!--no-history", mt.history, "answer turn 2 without turn 1");
    b->add_option("--limit", mt.limit, "first N questions (0: all)")->check(CLI::Range(0, 100000));
    b->add_option("-n,--max-tokens", mt.max_tokens, "tokens per answer")->check(CLI::Range(1, 65536));
    b->add_option("-c,--ctx", mt.n_ctx, "context size")->check(CLI::Range(64, 131072));
    b->add_option("--judge-url", mt.judge_url, "OpenAI-compatible base URL (answers only when absent)");
    b->add_option("--judge-model", mt.judge_model, "the judge's model name")->capture_default_str();
    b->add_option("--judge-max-tokens", mt.judge_max_tokens, "longest judgment")->check(CLI::Range(16, 65536))
        ->capture_default_str();
    b->add_option("--judge-key", mt.judge_key, "API key (default: $EMBER_JUDGE_KEY or $OPENAI_API_KEY)");
    add_common(b);

    CLI11_PARSE(app, argc, argv);
    try {
        if (m->parsed()) return run_mmlu(common, mmlu);
        if (p->parsed()) return run_perplexity(common, ppl);
        return run_mt_bench(common, mt);
    } catch (const std::exception& e) {
        return ember_examples::fail(e);
    }
}
