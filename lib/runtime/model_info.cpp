#include "ember/model_info.hpp"

#include "runtime/model_info.hpp"

namespace ember {

ModelInfo inspect_model(const std::string& path) { return describe_model(gguf::File::open(path), path); }

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
    m.n_ctx_train = u32(a + "context_length");
    m.tokenizer = f.get_string("tokenizer.ggml.model", "");
    if (const auto* tok = f.find("tokenizer.ggml.tokens")) m.n_vocab = static_cast<uint32_t>(tok->size());
    m.chat_template = f.get_string("tokenizer.chat_template", "");
    for (const auto& [k, v] : f.metadata()) m.metadata.emplace_back(k, v.describe());
    return m;
}

}  // namespace ember
