// ember-info: a model file's summary, like llama.cpp's model loading banner or gguf-dump.
//   ember-info MODEL.gguf [--all]
#include <cstdio>
#include <cstring>
#include <exception>

#include "common.hpp"
#include "ember/error.hpp"
#include "ember/model_info.hpp"

int main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
        std::fprintf(stderr, "usage: %s MODEL.gguf [--all]\n", argv[0]);
        return argc < 2 ? 2 : 0;
    }
    const bool all = argc > 2 && !std::strcmp(argv[2], "--all");
    try {
        const ember::ModelInfo m = ember::inspect_model(argv[1]);
        std::printf("file          %s (GGUF v%u)\n", m.path.c_str(), m.gguf_version);
        std::printf("architecture  %s\n", m.architecture.c_str());
        if (!m.name.empty()) std::printf("name          %s\n", m.name.c_str());
        std::printf("parameters    %.2f M (%llu)\n", m.n_params / 1e6, static_cast<unsigned long long>(m.n_params));
        std::printf("tensor data   %.2f MiB in %llu tensors:", m.n_tensor_bytes / 1048576.0,
                    static_cast<unsigned long long>(m.n_tensors));
        for (const auto& [type, n] : m.tensor_types) std::printf(" %s x%llu", type.c_str(), static_cast<unsigned long long>(n));
        std::printf("\nlayers        %u\n", m.n_layers);
        std::printf("embedding     %u (heads %u, kv heads %u, ffn %u)\n", m.n_embd, m.n_head, m.n_head_kv, m.n_ff);
        std::printf("context       %u tokens (trained)\n", m.n_ctx_train);
        std::printf("vocabulary    %u tokens (%s)\n", m.n_vocab, m.tokenizer.c_str());
        std::printf("chat template %s\n", m.chat_template.empty() ? "none" : "present");
        if (all)
            for (const auto& [k, v] : m.metadata) std::printf("  %-40s %s\n", k.c_str(), v.c_str());
    } catch (const std::exception& e) {
        return ember_examples::fail(e);
    }
    return 0;
}
