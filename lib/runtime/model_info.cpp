#include "ember/model_info.hpp"

#include "runtime/model_info.hpp"

#include <algorithm>

#include "arch/arch.hpp"
#include "ember/error.hpp"
#include "hf/folder.hpp"
#include "quantize/plan.hpp"

namespace ember {

ModelInfo inspect_model(const std::string& path) { return describe_model(hf::open_model_file(path, true, hf::Read::Layout), path); }

MemoryEstimate estimate_memory(const ModelInfo& info, int n_ctx, int n_batch, const std::string& quantize) {
    if (n_ctx < 1 || n_ctx > (1 << 24) || n_batch < 1 || n_batch > (1 << 24))
        throw Error(Status::InvalidArgument, "estimate_memory: n_ctx and n_batch must be in [1, 2^24]");
    if (!quantize.empty()) quantize::find_mix(quantize);  // a bad name before the file is read
    arch::HParams hp;
    hp.n_layer = static_cast<int>(info.n_layers);
    hp.n_embd = static_cast<int>(info.n_embd);
    hp.n_head = static_cast<int>(info.n_head);
    hp.n_head_kv = static_cast<int>(info.n_head_kv);
    hp.head_dim = static_cast<int>(info.head_dim);
    hp.n_ff = static_cast<int>(info.n_ff);
    hp.n_expert = static_cast<int>(info.n_expert);
    hp.n_ff_exp = static_cast<int>(info.n_ff_exp);
    hp.n_vocab = static_cast<int>(info.n_vocab);
    const arch::SessionBytes b = arch::session_bytes(hp, n_ctx, std::min(n_batch, n_ctx));
    MemoryEstimate e;
    e.weights = info.n_tensor_bytes;
    if (!quantize.empty()) {  // the tensors as Model::load would quantize them (one plan for both)
        const gguf::File f = hf::open_model_file(info.path, true, hf::Read::Layout);
        e.weights = quantize::plan_load(f, quantize, hf::is_folder(info.path)).result.tensor_bytes_out;
    }
    e.kv_cache = static_cast<uint64_t>(b.kv_cache);
    e.scratch = static_cast<uint64_t>(b.scratch);
    e.total = e.weights + e.kv_cache + e.scratch;
    return e;
}

ModelInfo describe_model(const gguf::File& f, const std::string& path) {
    ModelInfo m;
    m.path = path;
    m.gguf_version = f.version();
    m.architecture = f.get_string("general.architecture", "");
    m.name = f.get_string("general.name", "");
    for (const auto& t : f.tensors()) {
        m.n_params += t.n_elements;
        m.n_tensor_bytes += t.n_bytes;
        ++m.tensor_types[tensor::type_name(t.type)];
    }
    m.n_tensors = f.tensors().size();
    const std::string a = m.architecture + ".";
    auto u32 = [&](const std::string& key) { return static_cast<uint32_t>(f.get_uint(key, 0)); };
    m.n_layers = u32(a + "block_count");
    m.n_embd = u32(a + "embedding_length");
    m.n_head = u32(a + "attention.head_count");
    m.n_head_kv = f.has(a + "attention.head_count_kv") ? u32(a + "attention.head_count_kv") : m.n_head;
    m.n_ff = u32(a + "feed_forward_length");
    m.head_dim = f.has(a + "attention.key_length") ? u32(a + "attention.key_length") : m.n_head ? m.n_embd / m.n_head : 0;
    m.n_expert = u32(a + "expert_count");
    m.n_ff_exp = f.has(a + "expert_feed_forward_length") ? u32(a + "expert_feed_forward_length") : m.n_ff;
    m.n_ctx_train = u32(a + "context_length");
    m.tokenizer = f.get_string("tokenizer.ggml.model", "");
    if (const auto* tok = f.find("tokenizer.ggml.tokens")) m.n_vocab = static_cast<uint32_t>(tok->size());
    m.chat_template = f.get_string("tokenizer.chat_template", "");
    for (const auto& [k, v] : f.metadata()) m.metadata.emplace_back(k, v.describe());
    return m;
}

}  // namespace ember
