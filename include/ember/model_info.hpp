// ember — what a model file holds, read from its header alone (no weights are loaded).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ember {

struct ModelInfo {
    std::string path;
    uint32_t gguf_version = 0;  // 0: a Hugging Face folder
    std::string architecture;   // general.architecture, e.g. "llama"
    std::string name;           // general.name, may be empty
    uint64_t n_params = 0;      // total elements over all tensors
    uint64_t n_tensor_bytes = 0;
    uint64_t n_tensors = 0;
    std::map<std::string, uint64_t> tensor_types;  // type name → tensor count
    uint32_t n_layers = 0;
    uint32_t n_embd = 0;
    uint32_t n_head = 0;
    uint32_t n_head_kv = 0;
    uint32_t n_ff = 0;
    uint32_t head_dim = 0;      // attention.key_length, else n_embd / n_head
    uint32_t n_expert = 0;      // mixture of experts: experts per layer (0: dense)
    uint32_t n_ff_exp = 0;      // an expert's FFN width
    uint32_t n_ctx_train = 0;   // context length the model was trained with
    uint32_t n_vocab = 0;
    std::string tokenizer;      // tokenizer.ggml.model: "llama", "gpt2", ...
    std::string chat_template;  // empty when the file carries none
    std::vector<std::pair<std::string, std::string>> metadata;  // every key, value rendered short
};

// Reads and validates a GGUF file's header (or a Hugging Face folder, weights mapped). Throws ember::Error.
ModelInfo inspect_model(const std::string& path);

// What running a model costs in memory on the CPU backend, from its header alone (before loading):
// the weights (mapped from the file, or for the types the CPU repacks at load, copied once and the file's
// pages let go; Q4_K's copy is 2.8% larger), the KV cache of one session of n_ctx tokens (F16), and that
// session's scratch (activations for n_batch tokens, a row of logits). Each extra session adds
// kv_cache + scratch.
struct MemoryEstimate {
    uint64_t weights = 0;
    uint64_t kv_cache = 0;
    uint64_t scratch = 0;
    uint64_t total = 0;
};
// quantize: as ModelParams::quantize ("": the weights as the file has them; else e.g. "q8_0"): the weights
// are those a load quantizing to it holds, tensor by tensor (the file at info.path is read again for its
// tensors' types and shapes). Throws ember::Error: InvalidArgument for n_ctx or n_batch outside [1, 2^24],
// an unknown quantize type or an already quantized tensor it would re-quantize (as the load would); as
// inspect_model when the file is read again.
MemoryEstimate estimate_memory(const ModelInfo& info, int n_ctx, int n_batch = 512, const std::string& quantize = "");

}  // namespace ember
