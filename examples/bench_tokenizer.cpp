// ember-bench-tokenizer: encode speed per vocabulary, and a check that encoding time grows linearly
// with the input (time per MB of the first 1/8, 1/4, 1/2 and all of the text should be flat).
//   ember-bench-tokenizer [-m VOCAB.gguf]... [-r REPS] [TEXT_FILE]
// Defaults: the llama-spm, gpt-2, starcoder and bert-bge vocabularies in tests/data/vocab,
// 5 repetitions, ../shared/testdata/text/war-and-peace.txt. Reported figures are medians, by the
// wall clock and by the process's CPU time (std::clock; encoding is single-threaded, so on a busy
// machine the CPU figure is the steadier one, and the linearity table uses it).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "common.hpp"
#include "ember/error.hpp"
#include "ember/tokenizer.hpp"

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Timing {
    double wall;  // median seconds
    double cpu;   // median CPU seconds
    size_t n_tokens;
};

Timing time_encode(const ember::Tokenizer& tok, std::string_view text, int reps) {
    std::vector<double> wall, cpu;
    size_t n = 0;
    for (int r = 0; r < reps; ++r) {
        const std::clock_t c0 = std::clock();
        const auto t0 = std::chrono::steady_clock::now();
        const auto ids = tok.encode(text, false, false);
        wall.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        cpu.push_back(static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
        n = ids.size();
    }
    return {median(wall), median(cpu), n};
}

std::string base_name(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    std::string b = slash == std::string::npos ? path : path.substr(slash + 1);
    if (b.size() > 5 && b.compare(b.size() - 5, 5, ".gguf") == 0) b.resize(b.size() - 5);
    if (b.rfind("ggml-vocab-", 0) == 0) b.erase(0, 11);
    return b;
}

// Cuts at a UTF-8 character boundary at or before `n`.
std::string_view prefix(std::string_view s, size_t n) {
    if (n >= s.size()) return s;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return s.substr(0, n);
}

void usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s [-m VOCAB.gguf]... [-r REPS] [TEXT_FILE]\n"
                 "  -m FILE   a GGUF with a vocabulary (repeatable); default: llama-spm, gpt-2, starcoder,\n"
                 "            bert-bge from tests/data/vocab\n"
                 "  -r REPS   repetitions per measurement, median reported (default 5)\n"
                 "  TEXT_FILE default ../shared/testdata/text/war-and-peace.txt\n",
                 argv0);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> vocabs;
    std::string text_path = "../shared/testdata/text/war-and-peace.txt";
    int reps = 5;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if ((a == "-m" || a == "-r") && i + 1 >= argc) {
            usage(argv[0]);
            return 1;
        }
        if (a == "-m") {
            vocabs.emplace_back(argv[++i]);
        } else if (a == "-r") {
            reps = std::atoi(argv[++i]);
            if (reps < 1) {
                std::fprintf(stderr, "error: -r needs a positive number\n");
                return 1;
            }
        } else if (a == "-h" || a == "--help") {
            usage(argv[0]);
            return 0;
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "error: unknown option %s\n", a.c_str());
            usage(argv[0]);
            return 1;
        } else {
            text_path = a;
        }
    }
    if (vocabs.empty()) {
        for (const char* n : {"llama-spm", "gpt-2", "starcoder", "bert-bge"}) {
            vocabs.push_back(std::string("tests/data/vocab/ggml-vocab-") + n + ".gguf");
        }
    }

    std::ifstream in(text_path, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "error: cannot read %s\n", text_path.c_str());
        return 1;
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const double mb = static_cast<double>(text.size()) / 1e6;
    std::printf("text: %s (%.2f MB), %d repetitions, median reported\n\n", text_path.c_str(), mb, reps);

    try {
        std::vector<std::pair<std::string, ember::Tokenizer>> toks;
        for (const auto& path : vocabs) toks.emplace_back(base_name(path), ember::Tokenizer::from_gguf(path));

        std::printf("%-20s %-6s %9s %9s %9s %11s %9s %11s\n", "vocab", "model", "tokens", "wall s", "MB/s",
                    "tokens/s", "cpu MB/s", "cpu tok/s");
        for (const auto& [name, tok] : toks) {
            const Timing t = time_encode(tok, text, reps);
            const double n = static_cast<double>(t.n_tokens);
            std::printf("%-20s %-6s %9zu %9.3f %9.2f %11.0f %9.2f %11.0f\n", name.c_str(), tok.model_name().c_str(),
                        t.n_tokens, t.wall, mb / t.wall, n / t.wall, mb / t.cpu, n / t.cpu);
            std::fflush(stdout);
        }

        std::printf("\nlinearity: CPU seconds per MB for a growing prefix of the text (should stay flat)\n");
        std::printf("%-20s %12s %12s %12s %12s %8s\n", "vocab", "1/8", "1/4", "1/2", "1/1", "max/min");
        for (const auto& [name, tok] : toks) {
            std::printf("%-20s", name.c_str());
            double lo = 1e30, hi = 0;
            for (size_t div : {8u, 4u, 2u, 1u}) {
                const std::string_view part = prefix(text, text.size() / div);
                const double spm = time_encode(tok, part, reps).cpu / (static_cast<double>(part.size()) / 1e6);
                lo = std::min(lo, spm);
                hi = std::max(hi, spm);
                std::printf(" %10.4f s", spm);
                std::fflush(stdout);
            }
            std::printf(" %8.2f\n", hi / lo);
        }
    } catch (const std::exception& e) {
        return ember_examples::fail(e);
    }
    return 0;
}
