// ember-eval: the evaluations a course or a model comparison runs — MMLU, perplexity, MT-Bench — as one
// program over the public API. Each subcommand is one file; this header is what they share.
#pragma once

#include <string>
#include <vector>

namespace ember_eval {

// Options shared by every subcommand.
struct Common {
    int threads = 0;                // 0: the hardware threads
    std::string backend = "auto";
    std::string quantize;           // ModelParams::quantize ("": as the file is)
};

struct MmluOptions {
    std::vector<std::string> models;
    std::string subjects;           // comma-separated, or "all"; empty: the default ten
    std::string data;               // folder holding dev/ and test/
    int shots = 0;
    int limit = 0;                  // questions per subject; 0: all
    int n_ctx = 2048;
    bool verbose = false;
    std::string out;                // folder for results.json and answers.jsonl ("" for none)
    bool plot = false;
};

struct PerplexityOptions {
    std::string model;
    std::string file;
    int n_ctx = 512;
    int chunks = 0;                 // 0: every whole chunk of the file
};

struct MtBenchOptions {
    std::string model;
    std::string data;               // question.jsonl, judge_prompts.jsonl, reference_answer_gpt-4.jsonl
    std::string out;                // answers and judgments, JSONL, resumable
    bool history = true;
    int limit = 0;                  // first N questions; 0: all 80
    int max_tokens = 1024;
    int n_ctx = 4096;
    std::string judge_url;          // OpenAI-compatible base URL, e.g. https://api.openai.com/v1
    std::string judge_model = "gpt-4";
    std::string judge_key;
    int judge_max_tokens = 2048;    // FastChat's
};

int run_mmlu(const Common& c, const MmluOptions& o);
int run_perplexity(const Common& c, const PerplexityOptions& o);
int run_mt_bench(const Common& c, const MtBenchOptions& o);

// Wall and CPU time (user + system of the whole process) since construction, in seconds.
class Stopwatch {
public:
    Stopwatch();
    double wall_s() const;
    double cpu_s() const;

private:
    double wall0_, cpu0_;
};

// The model's file name without folder and ".gguf": how results name it.
std::string model_name(const std::string& path);

}  // namespace ember_eval
