// ember-convert: a Hugging Face model folder (config.json, *.safetensors, tokenizer.json) written as the GGUF
// llama.cpp's convert_hf_to_gguf.py writes for it, so that ember and llama.cpp both run it.
//   ember-convert HF_DIR OUT.gguf [--outtype f16|bf16|q8_0|f32|Q4_K_M|...] [-t N]
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "common.hpp"
#include "ember/quantize.hpp"

int main(int argc, char** argv) {
    std::string types;
    for (const auto& t : ember::quantize_types()) types += (types.empty() ? "" : " ") + t;
    CLI::App app{"ember-convert: a Hugging Face model folder to GGUF (as llama.cpp's convert_hf_to_gguf.py)"};
    std::string in, out;
    ember::QuantizeParams p;
    p.type = "f16";
    app.add_option("HF_DIR", in, "the model folder: config.json, *.safetensors, tokenizer.json")->required();
    app.add_option("OUT", out, "output GGUF (written to a temporary file, then renamed)")->required();
    app.add_option("--outtype", p.type,
                   "f32, f16, bf16 or q8_0 (convert_hf_to_gguf.py's), or any of ember-quantize's mixes: " + types)
        ->capture_default_str();
    app.add_option("-t,--threads", p.n_threads, "threads (0: all hardware threads)")->check(CLI::Range(0, 4096));
    bool quiet = false;
    app.add_flag("-q,--quiet", quiet, "no progress line");
    CLI11_PARSE(app, argc, argv);

    int last = -1;
    if (!quiet) p.progress = ember_examples::percent_progress("converting", last);
    try {
        const double t0 = ember_examples::now_ms();
        const ember::QuantizeResult r = ember::convert_model(in, out, p);
        const double ms = ember_examples::now_ms() - t0;
        if (!quiet) std::fprintf(stderr, "\n");
        std::printf("%s -> %s (%s, file type %u)\n", in.c_str(), out.c_str(), r.type.c_str(), r.file_type);
        std::printf("tensors   %s\n", ember_examples::tensor_types(r).c_str());
        std::printf("weights   %.2f M parameters, %.2f MiB in the folder -> %.2f MiB\n", static_cast<double>(r.n_elements) / 1e6,
                    r.tensor_bytes_in / 1048576.0, r.tensor_bytes_out / 1048576.0);
        std::printf("file      %llu bytes\n", static_cast<unsigned long long>(r.file_bytes_out));
        if (r.n_fallback)
            std::printf("fallback  %d of %zu tensors: row length not a multiple of the type's block\n", r.n_fallback,
                        r.tensors.size());
        std::printf("time      %.1f s\n", ms / 1000.0);
        return 0;
    } catch (const std::exception& e) {
        if (!quiet && last >= 0) std::fprintf(stderr, "\n");
        return ember_examples::fail(e);
    }
}
