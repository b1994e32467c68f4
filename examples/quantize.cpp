// ember-quantize: a GGUF model (or a Hugging Face folder, read as the GGUF llama.cpp's converter writes for
// it) quantized into another GGUF, choosing each tensor's type as llama.cpp's llama-quantize does for the
// same mix.
//   ember-quantize IN.gguf|HF_DIR OUT.gguf TYPE [--threads N] [--allow-requantize] [--pure]
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "common.hpp"
#include "ember/quantize.hpp"

int main(int argc, char** argv) {
    std::string types;
    for (const auto& t : ember::quantize_types()) types += (types.empty() ? "" : " ") + t;
    CLI::App app{"ember-quantize: re-quantize a GGUF model or a Hugging Face folder (llama-quantize's mixes: " + types + ")"};
    std::string in, out;
    ember::QuantizeParams p;
    app.add_option("IN", in, "input GGUF, or a Hugging Face model folder")->required();
    app.add_option("OUT", out, "output GGUF (written to a temporary file, then renamed)")->required();
    app.add_option("TYPE", p.type, "target: " + types)->required();
    app.add_option("-t,--threads", p.n_threads, "threads (0: all hardware threads)")->check(CLI::Range(0, 4096));
    app.add_flag("--allow-requantize", p.allow_requantize, "re-quantize tensors that are already quantized");
    app.add_flag("--pure", p.pure, "every quantizable tensor gets the base type (no per-tensor mix)");
    bool quiet = false;
    app.add_flag("-q,--quiet", quiet, "no progress line");
    CLI11_PARSE(app, argc, argv);

    int last = -1;
    if (!quiet) p.progress = ember_examples::percent_progress("quantizing", last);
    try {
        const double t0 = ember_examples::now_ms();
        const ember::QuantizeResult r = ember::quantize_model(in, out, p);
        const double ms = ember_examples::now_ms() - t0;
        if (!quiet) std::fprintf(stderr, "\n");
        std::printf("%s -> %s (%s, file type %u)\n", in.c_str(), out.c_str(), r.type.c_str(), r.file_type);
        std::printf("tensors       %s\n", ember_examples::tensor_types(r).c_str());
        const double n = static_cast<double>(r.n_elements ? r.n_elements : 1);
        std::printf("model size    %8.2f MiB (%.2f BPW)\n", r.tensor_bytes_in / 1048576.0, r.tensor_bytes_in * 8.0 / n);
        std::printf("quant size    %8.2f MiB (%.2f BPW)\n", r.tensor_bytes_out / 1048576.0, r.tensor_bytes_out * 8.0 / n);
        std::printf("file          %llu -> %llu bytes\n", static_cast<unsigned long long>(r.file_bytes_in),
                    static_cast<unsigned long long>(r.file_bytes_out));
        if (r.n_fallback)
            std::printf("fallback      %d of %zu tensors: row length not a multiple of the type's block\n", r.n_fallback,
                        r.tensors.size());
        std::printf("time          %.1f s\n", ms / 1000.0);
        return 0;
    } catch (const std::exception& e) {
        if (!quiet) std::fprintf(stderr, "\n");
        return ember_examples::fail(e);
    }
}
