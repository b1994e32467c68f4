// Internals of the folder reader: the per-architecture table (architectures.cpp), config.json read as
// GGUF keys (config.cpp) and the weights mapped onto GGUF's tensors (tensors.cpp).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "gguf/reader.hpp"
#include "hf/folder.hpp"
#include "hf/json.hpp"
#include "safetensors/reader.hpp"

namespace ember::hf {

// A Hugging Face tensor name (without "model.layers.<i>." for a layer's tensors) and its GGUF name
// (without "blk.<i>."). "{e}" in `hf` stands for an expert's number: those tensors are stacked into one
// 3-D GGUF tensor, expert e at index e.
struct NameRule {
    const char* hf;
    const char* gguf;
};

enum ArchFlags : unsigned {
    kPermuteQK = 1u << 0,   // Q/K rows reordered from HF's rotate-half pairing to RoPE on adjacent pairs
    kGemma = 1u << 1,       // norm weights stored as w where the model multiplies by 1 + w; GELU(tanh)
    kSoftcap = 1u << 2,     // attention and final logit soft-capping (Gemma 2)
    kSlidingLayers = 1u << 3,  // local (sliding-window) layers by layer_types / the pattern (Gemma 2, 3)
    kSwaRope = 1u << 4,     // the local layers' own RoPE base (Gemma 3)
    kNoBias = 1u << 5,      // attention_bias / mlp_bias must be off (Llama's GGUF form has no biases)
    // Keys only some of llama.cpp's converter classes write (the others leave them to the readers' defaults):
    kVocabSizeKey = 1u << 6,   // <arch>.vocab_size (its Llama class)
    kRopeDimsKey = 1u << 7,    // rope.dimension_count even when it is head_dim (Llama, Phi-3)
    kPhi3Keys = 1u << 8,       // attention.sliding_window (0: none), rope.scaling.original_context_length
    kNoRopeBaseKey = 1u << 9,  // no rope.freq_base when it is llama.cpp's default 10000 (Gemma 2)
};

struct ArchMap {
    const char* model_type;  // config.json's model_type
    const char* arch;        // ember's (GGUF's) architecture
    unsigned flags;
    std::span<const NameRule> rules;  // searched before the shared Llama-style names
};

// The row for config.json's model_type; Unsupported when there is none.
const ArchMap& find_arch(const std::string& model_type);
// The GGUF name for a Hugging Face tensor name ("" when none); `expert` gets the expert number of a
// per-expert tensor, else -1.
std::string gguf_name(const ArchMap& a, const std::string& hf_name, int& expert);

// What config.json says, as GGUF keys plus what the tensor mapping needs.
struct Config {
    const ArchMap* arch = nullptr;
    Keys keys;
    int n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_expert = 0;
    bool tied = false;
    // F32 tensors made from config.json: Llama 3.1's rope_freqs, LongRoPE's rope_factors_long/short.
    std::vector<std::pair<std::string, std::vector<float>>> generated;
};
Config read_config(const Json& cfg, const std::string& what);

// Owns the folder's mappings and the converted copies an assembled File points into.
struct Storage {
    safetensors::Folder folder;
    bool convert = true;  // false: names, types and shapes only; converted tensors get no data
    std::vector<std::unique_ptr<uint8_t[]>> copies;
    uint8_t* copy(size_t n_bytes);
};

// Llama-family Q/K rows reordered for RoPE on adjacent pairs: row h·hd + j·hd/2 + i (half j of head h, HF's
// order) becomes row h·hd + 2i + j. src and dst hold heads × head_dim rows of row_bytes each.
void permute_rope_rows(const uint8_t* src, uint8_t* dst, int64_t heads, int64_t head_dim, size_t row_bytes);

// The row for ember's (GGUF's) architecture name: the first whose `arch` it is; Unsupported when none.
const ArchMap& find_arch_of(const std::string& arch);

// The GGUF tensors of the folder's weights, then Config::generated.
std::vector<gguf::TensorInfo> map_tensors(const Config& cfg, Storage& st);

// What tokenizer_config.json (and config.json) add to a tokenizer's keys, whichever file gave the tokens
// (tokenizer.json or tokenizer.model): the special tokens by name (else by config.json's ids),
// add_bos_token / add_eos_token when given, the chat template. `ids`: token text → id.
void config_keys(const Json& tcfg, const Json& cfg, const std::unordered_map<std::string, int32_t>& ids, Keys& out);

}  // namespace ember::hf
