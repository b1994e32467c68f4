// The architectures a folder may hold: config.json's model_type → ember's architecture, what differs
// from the Llama layout, and the tensor names that differ from the shared ones below. The names are the
// ones llama.cpp's convert_hf_to_gguf.py maps (gguf-py's tensor_mapping).
#include <charconv>

#include "ember/error.hpp"
#include "hf/hf.hpp"

namespace ember::hf {

namespace {

// Shared by every architecture: the Llama layout.
constexpr NameRule kGlobal[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};
constexpr NameRule kLayer[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};

constexpr NameRule kNone[] = {{"", ""}};
constexpr NameRule kGemmaNames[] = {  // norms around both blocks
    {"post_attention_layernorm.weight", "post_attention_norm.weight"},
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
};
constexpr NameRule kPhi3[] = {  // already fused the way the GGUF form keeps them
    {"self_attn.qkv_proj.weight", "attn_qkv.weight"},
    {"mlp.gate_up_proj.weight", "ffn_up.weight"},
};
constexpr NameRule kMixtral[] = {
    {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"},
    {"block_sparse_moe.experts.{e}.w1.weight", "ffn_gate_exps.weight"},
    {"block_sparse_moe.experts.{e}.w3.weight", "ffn_up_exps.weight"},
    {"block_sparse_moe.experts.{e}.w2.weight", "ffn_down_exps.weight"},
};
constexpr NameRule kQwenMoe[] = {
    {"mlp.gate.weight", "ffn_gate_inp.weight"},
    {"mlp.experts.{e}.gate_proj.weight", "ffn_gate_exps.weight"},
    {"mlp.experts.{e}.up_proj.weight", "ffn_up_exps.weight"},
    {"mlp.experts.{e}.down_proj.weight", "ffn_down_exps.weight"},
};

constexpr ArchMap kArchs[] = {
    {"llama", "llama", kPermuteQK | kNoBias | kVocabSizeKey | kRopeDimsKey, kNone},
    {"mistral", "llama", kPermuteQK | kNoBias | kVocabSizeKey | kRopeDimsKey, kNone},
    {"mixtral", "llama", kPermuteQK | kNoBias | kVocabSizeKey | kRopeDimsKey, kMixtral},
    {"qwen2", "qwen2", 0, kNone},
    {"qwen3", "qwen3", kNoBias, kNone},
    {"qwen3_moe", "qwen3moe", kNoBias, kQwenMoe},
    {"gemma2", "gemma2", kGemma | kSoftcap | kSlidingLayers | kNoBias | kNoRopeBaseKey, kGemmaNames},
    {"gemma3_text", "gemma3", kGemma | kSlidingLayers | kSwaRope | kNoBias, kGemmaNames},
    {"phi3", "phi3", kRopeDimsKey | kPhi3Keys, kPhi3},
};

// Matches `name` against `pattern`, where "{e}" matches a decimal number (stored in `expert`).
bool match(std::string_view pattern, std::string_view name, int& expert) {
    const size_t at = pattern.find("{e}");
    if (at == std::string_view::npos) return pattern == name;
    const std::string_view head = pattern.substr(0, at), tail = pattern.substr(at + 3);
    if (name.size() <= head.size() + tail.size() || name.substr(0, head.size()) != head ||
        name.substr(name.size() - tail.size()) != tail)
        return false;
    const std::string_view num = name.substr(head.size(), name.size() - head.size() - tail.size());
    if (num.size() > 4 || (num.size() > 1 && num[0] == '0')) return false;
    const auto r = std::from_chars(num.data(), num.data() + num.size(), expert);
    return r.ec == std::errc() && r.ptr == num.data() + num.size();
}

const char* find_rule(std::span<const NameRule> rules, std::string_view name, int& expert) {
    for (const NameRule& r : rules)
        if (*r.hf && match(r.hf, name, expert)) return r.gguf;
    return nullptr;
}

}  // namespace

const ArchMap& find_arch(const std::string& model_type) {
    for (const ArchMap& a : kArchs)
        if (model_type == a.model_type) return a;
    throw Error(Status::Unsupported, "config.json: model_type '" + model_type.substr(0, 64) +
                                         "' is not an architecture ember runs from a Hugging Face folder");
}

const ArchMap& find_arch_of(const std::string& arch) {
    for (const ArchMap& a : kArchs)
        if (arch == a.arch) return a;
    throw Error(Status::Unsupported, "architecture '" + arch.substr(0, 64) + "' has no Hugging Face names in ember");
}

std::string gguf_name(const ArchMap& a, const std::string& hf_name, int& expert) {
    expert = -1;
    std::string_view name = hf_name;
    static constexpr std::string_view kLayers = "model.layers.";
    if (name.substr(0, kLayers.size()) != kLayers) {
        const char* g = find_rule(kGlobal, name, expert);
        return g ? g : "";
    }
    name.remove_prefix(kLayers.size());
    int layer = -1;
    const auto r = std::from_chars(name.data(), name.data() + name.size(), layer);
    if (r.ec != std::errc() || layer < 0 || r.ptr == name.data() + name.size() || *r.ptr != '.' ||
        (name[0] == '0' && r.ptr - name.data() > 1))
        return "";
    name.remove_prefix(static_cast<size_t>(r.ptr - name.data()) + 1);
    const char* g = find_rule(a.rules, name, expert);
    if (!g) g = find_rule(kLayer, name, expert);
    return g ? "blk." + std::to_string(layer) + "." + g : "";
}

}  // namespace ember::hf
