// ember-info: a model file's summary, like llama.cpp's model loading banner or gguf-dump.
//   ember-info MODEL.gguf|HF_FOLDER [--all] [--ctx N [--batch N] [--quantize TYPE]]
//   (--ctx: memory needed for N tokens of context; --quantize: with the weights quantized at load to TYPE,
//   as ember-generate --quantize TYPE loads them)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "common.hpp"
#include "ember/error.hpp"
#include "ember/model_info.hpp"

int main(int argc, char** argv) {
    const char* path = nullptr;
    bool all = false;
    const char* quantize = "";
    int n_ctx = 0, n_batch = 512;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--all")) all = true;
        else if (!std::strcmp(argv[i], "--ctx") && i + 1 < argc) n_ctx = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) n_batch = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--quantize") && i + 1 < argc) quantize = argv[++i];
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else path = nullptr, i = argc;  // anything else: usage
    }
    if (!path) {
        std::fprintf(stderr, "usage: %s MODEL.gguf|HF_FOLDER [--all] [--ctx N [--batch N] [--quantize TYPE]]\n", argv[0]);
        return argc > 1 && (!std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) ? 0 : 2;
    }
    try {
        const ember::ModelInfo m = ember::inspect_model(path);
        if (m.gguf_version)
            std::printf("file          %s (GGUF v%u)\n", m.path.c_str(), m.gguf_version);
        else  // read from a folder, not a GGUF file
            std::printf("file          %s (Hugging Face folder)\n", m.path.c_str());
        std::printf("architecture  %s\n", m.architecture.c_str());
        if (!m.name.empty()) std::printf("name          %s\n", m.name.c_str());
        std::printf("parameters    %.2f M (%llu)\n", m.n_params / 1e6, static_cast<unsigned long long>(m.n_params));
        std::printf("tensor data   %.2f MiB in %llu tensors:", m.n_tensor_bytes / 1048576.0,
                    static_cast<unsigned long long>(m.n_tensors));
        for (const auto& [type, n] : m.tensor_types) std::printf(" %s x%llu", type.c_str(), static_cast<unsigned long long>(n));
        std::printf("\nlayers        %u\n", m.n_layers);
        std::printf("embedding     %u (heads %u, kv heads %u, head size %u, ffn %u)\n", m.n_embd, m.n_head, m.n_head_kv,
                    m.head_dim, m.n_ff);
        if (m.n_expert) std::printf("experts       %u of ffn %u\n", m.n_expert, m.n_ff_exp);
        std::printf("context       %u tokens (trained)\n", m.n_ctx_train);
        std::printf("vocabulary    %u tokens (%s)\n", m.n_vocab, m.tokenizer.c_str());
        std::printf("chat template %s\n", m.chat_template.empty() ? "none" : "present");
        if (n_ctx) {
            const ember::MemoryEstimate e = ember::estimate_memory(m, n_ctx, n_batch, quantize);
            auto mib = [](uint64_t b) { return b / 1048576.0; };
            std::printf("memory        %.1f MiB at %d tokens of context: weights %.1f%s%s + KV cache %.1f (F16) + scratch %.1f"
                        " (batch %d)\n", mib(e.total), n_ctx, mib(e.weights), *quantize ? " quantized to " : "", quantize,
                        mib(e.kv_cache), mib(e.scratch), std::min(n_batch, n_ctx));
        }
        if (all)
            for (const auto& [k, v] : m.metadata) std::printf("  %-40s %s\n", k.c_str(), v.c_str());
    } catch (const std::exception& e) {
        return ember_examples::fail(e);
    }
    return 0;
}
