// The folder's weights as GGUF tensors. Most stay where the mapping has them (F32, F16 and BF16 are
// types the backends take); the rest are converted once here, as llama.cpp's converter would:
//   - Llama-family Q and K rows reordered so RoPE rotates adjacent pairs (HF rotates halves), which keeps
//     one layout and one RoPE mode per architecture whatever file it came from;
//   - 1-D tensors (norms, biases) as F32, which the ops read; Gemma's norms as 1 + w;
//   - per-expert matrices stacked into one [.., .., n_expert] tensor;
//   - a tensor whose bytes are not aligned to its element size, copied (the format does not align);
//   - FP8 (E4M3) weights with block scales (`weight_scale_inv`, the "fine-grained FP8" checkpoints),
//     dequantized once to BF16, which keeps their 3-bit mantissas exactly up to the scale's rounding.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>

#include "ember/error.hpp"
#include "hf/hf.hpp"
#include "tensor/dequantize.hpp"
#include "tensor/fp16.hpp"

namespace ember::hf {

uint8_t* Storage::copy(size_t n_bytes) {
    copies.push_back(std::make_unique_for_overwrite<uint8_t[]>(std::max<size_t>(n_bytes, 1)));
    return copies.back().get();
}

void permute_rope_rows(const uint8_t* src, uint8_t* dst, int64_t heads, int64_t head_dim, size_t row_bytes) {
    const int64_t half = head_dim / 2;
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t j = 0; j < 2; ++j)
            for (int64_t i = 0; i < half; ++i)
                std::memcpy(dst + static_cast<size_t>(h * head_dim + 2 * i + j) * row_bytes,
                            src + static_cast<size_t>(h * head_dim + j * half + i) * row_bytes, row_bytes);
}

namespace {

using tensor::TensorType;
using safetensors::TensorInfo;

std::string in_quotes(const std::string& s) { return "'" + s.substr(0, 200) + "'"; }

TensorType type_of(const TensorInfo& t) {
    const auto type = safetensors::tensor_type(t.dtype);
    if (!type)
        throw Error(Status::Unsupported, "tensor " + in_quotes(t.name) + " is " + safetensors::dtype_name(t.dtype) +
                                             " (F32, F16 and BF16 weights are read)");
    return *type;
}

gguf::TensorInfo view(const std::string& name, TensorType type, std::vector<int64_t> ne, const uint8_t* data) {
    if (ne.empty() || ne.size() > 4) throw Error(Status::BadFile, "tensor " + in_quotes(name) + " has " + std::to_string(ne.size()) + " dimensions");
    gguf::TensorInfo g;
    g.name = name;
    g.type = type;
    g.n_dims = static_cast<int>(ne.size());
    for (size_t d = 0; d < ne.size(); ++d) g.ne[d] = ne[d];
    g.data = data;
    return g;
}

// E4M3 ("fn": no infinities; S.1111.111 is NaN): 4 exponent bits biased by 7, 3 mantissa bits. A table,
// since a model's every weight byte goes through it at load.
const std::array<float, 256>& fp8_e4m3() {
    static const std::array<float, 256> table = [] {
        std::array<float, 256> t{};
        for (int v = 0; v < 256; ++v) {
            const int e = (v >> 3) & 15, m = v & 7;
            const float mag = e == 0 ? std::ldexp(static_cast<float>(m), -9) : std::ldexp(static_cast<float>(8 + m), e - 10);
            t[static_cast<size_t>(v)] = v & 0x80 ? -mag : mag;
        }
        return t;
    }();
    return table;
}

constexpr std::string_view kScaleSuffix = "_scale_inv";

// One block size per dimension from the scale's shape: the checkpoints' 128 when it fits, else the
// size that gives exactly that many blocks.
int64_t block_of(int64_t n, int64_t blocks) {
    if (blocks > 0 && (n + 127) / 128 == blocks) return 128;
    const int64_t b = blocks > 0 ? (n + blocks - 1) / blocks : 0;
    return b > 0 && (n + b - 1) / b == blocks ? b : 0;
}

// An FP8 matrix times its per-block scales (W = q · scale_inv), as BF16.
gguf::TensorInfo dequantize_fp8(const std::string& name, const TensorInfo& t, const safetensors::Folder& folder, Storage& st) {
    const TensorInfo* sc = folder.find(t.name + std::string(kScaleSuffix));
    if (!sc) throw Error(Status::Unsupported, "tensor " + in_quotes(t.name) + " is F8_E4M3 without a " + std::string(kScaleSuffix) + " tensor");
    if (t.shape.size() != 2 || sc->shape.size() != 2 || (sc->dtype != safetensors::Dtype::F32 && sc->dtype != safetensors::Dtype::BF16))
        throw Error(Status::Unsupported, "tensor " + in_quotes(t.name) + ": FP8 weights are read as matrices with F32 or BF16 block scales");
    const int64_t rows = t.shape[0], cols = t.shape[1];
    const int64_t br = block_of(rows, sc->shape[0]), bc = block_of(cols, sc->shape[1]);
    if (!br || !bc) throw Error(Status::BadFile, "tensor " + in_quotes(sc->name) + " does not tile " + in_quotes(t.name) + " in blocks");
    std::vector<float> scale(static_cast<size_t>(sc->n_elements));
    tensor::dequantize_row(*safetensors::tensor_type(sc->dtype), sc->data, scale.data(), static_cast<int64_t>(scale.size()));
    std::vector<int64_t> ne = t.ne();
    if (!st.convert) return view(name, TensorType::BF16, ne, nullptr);
    auto* out = reinterpret_cast<uint16_t*>(st.copy(static_cast<size_t>(rows * cols) * 2));
    const auto& fp8 = fp8_e4m3();
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            const uint8_t q = t.data[r * cols + c];
            if ((q & 0x7F) == 0x7F) throw Error(Status::BadFile, "tensor " + in_quotes(t.name) + " holds a NaN");
            out[r * cols + c] = tensor::f32_to_bf16(fp8[q] * scale[static_cast<size_t>(r / br * sc->shape[1] + c / bc)]);
        }
    return view(name, TensorType::BF16, ne, reinterpret_cast<uint8_t*>(out));
}

// Llama-family Q/K rows: row h·hd + j·hd/2 + i of HF (half j of head h) becomes row h·hd + 2i + j.
uint8_t* permute_qk(const Config& cfg, const std::string& name, const std::string& hf_name, const uint8_t* src, int64_t rows,
                    size_t row_bytes, Storage& st) {
    const int64_t heads = name.ends_with(".attn_q.weight") ? cfg.n_head : cfg.n_head_kv;
    if (rows != heads * cfg.head_dim || cfg.head_dim % 2)
        throw Error(Status::BadFile, "tensor " + in_quotes(hf_name) + " does not have heads × head_dim rows");
    uint8_t* out = st.copy(static_cast<size_t>(rows) * row_bytes);
    permute_rope_rows(src, out, heads, cfg.head_dim, row_bytes);
    return out;
}

// One HF tensor as the GGUF tensor `name`.
gguf::TensorInfo convert(const Config& cfg, const std::string& name, const TensorInfo& t, Storage& st) {
    const bool permute = (cfg.arch->flags & kPermuteQK) && (name.ends_with(".attn_q.weight") || name.ends_with(".attn_k.weight"));
    if (t.dtype == safetensors::Dtype::F8_E4M3) {
        gguf::TensorInfo g = dequantize_fp8(name, t, st.folder, st);
        if (permute && g.data) g.data = permute_qk(cfg, name, t.name, g.data, g.ne[1], static_cast<size_t>(g.ne[0]) * 2, st);
        return g;
    }
    TensorType type = type_of(t);
    const std::vector<int64_t> ne = t.ne();
    const size_t esize = safetensors::dtype_size(t.dtype);
    if (!st.convert) return view(name, ne.size() == 1 ? TensorType::F32 : type, ne, ne.size() == 1 || permute ? nullptr : t.data);
    if (ne.size() == 1) {  // norms and biases: F32, Gemma's norms with the 1 folded in
        float* out = reinterpret_cast<float*>(st.copy(static_cast<size_t>(ne[0]) * sizeof(float)));
        tensor::dequantize_row(type, t.data, out, ne[0]);  // F16/BF16 widen; F32 copies (any alignment)
        if ((cfg.arch->flags & kGemma) && name.ends_with("norm.weight"))
            for (int64_t i = 0; i < ne[0]; ++i) out[i] += 1.0f;
        return view(name, TensorType::F32, ne, reinterpret_cast<uint8_t*>(out));
    }
    if (permute)
        return view(name, type, ne, permute_qk(cfg, name, t.name, t.data, ne.size() == 2 ? ne[1] : 0, static_cast<size_t>(ne[0]) * esize, st));
    if (reinterpret_cast<uintptr_t>(t.data) % esize != 0) {
        uint8_t* out = st.copy(t.n_bytes);
        std::memcpy(out, t.data, t.n_bytes);
        return view(name, type, ne, out);
    }
    return view(name, type, ne, t.data);  // zero copy
}

// Per-expert matrices (expert e at index e) as one 3-D tensor.
gguf::TensorInfo stack(const Config& cfg, const std::string& name, const std::map<int, const TensorInfo*>& experts,
                       Storage& st) {
    if (static_cast<int>(experts.size()) != cfg.n_expert || experts.rbegin()->first != cfg.n_expert - 1)
        throw Error(Status::BadFile, "tensor " + in_quotes(name) + ": the folder has " + std::to_string(experts.size()) +
                                         " of its " + std::to_string(cfg.n_expert) + " experts");
    const TensorInfo& first = *experts.begin()->second;
    for (const auto& [e, t] : experts)
        if (t->dtype != first.dtype || t->shape != first.shape || t->shape.size() != 2)
            throw Error(Status::BadFile, "tensor " + in_quotes(t->name) + " differs in type or shape from expert 0's");
    uint8_t* out = st.convert ? st.copy(first.n_bytes * experts.size()) : nullptr;
    for (const auto& [e, t] : experts)
        if (out) std::memcpy(out + first.n_bytes * static_cast<size_t>(e), t->data, t->n_bytes);
    std::vector<int64_t> ne = first.ne();
    ne.push_back(cfg.n_expert);
    return view(name, type_of(first), ne, out);
}

}  // namespace

std::vector<gguf::TensorInfo> map_tensors(const Config& cfg, Storage& st) {
    std::vector<gguf::TensorInfo> out;
    std::map<std::string, std::map<int, const TensorInfo*>> experts;
    std::map<std::string, std::string> seen;  // GGUF name → HF name
    for (const TensorInfo* t : st.folder.tensors()) {
        int e = -1;
        const std::string name = gguf_name(*cfg.arch, t->name, e);
        if (name.empty()) {
            if (t->name.ends_with("rotary_emb.inv_freq")) continue;  // older checkpoints save the RoPE table
            if (t->name.ends_with(kScaleSuffix)) {  // an FP8 weight's scales, read with it
                const TensorInfo* w = st.folder.find(std::string_view(t->name).substr(0, t->name.size() - kScaleSuffix.size()));
                if (w && w->dtype == safetensors::Dtype::F8_E4M3) continue;
            }
            throw Error(Status::Unsupported, "tensor " + in_quotes(t->name) + " has no place in a " + cfg.arch->arch + " model");
        }
        if (e >= cfg.n_expert)
            throw Error(Status::BadFile, "tensor " + in_quotes(t->name) + " names expert " + std::to_string(e) + " of " +
                                             std::to_string(cfg.n_expert));
        if (e >= 0) {
            if (!experts[name].emplace(e, t).second) throw Error(Status::BadFile, "tensor " + in_quotes(t->name) + " twice");
            continue;
        }
        if (!seen.emplace(name, t->name).second)
            throw Error(Status::BadFile, "tensors " + in_quotes(seen[name]) + " and " + in_quotes(t->name) + " are both " + name);
        if (name == "output.weight" && cfg.tied) continue;  // tied: the embedding serves, as transformers does
        out.push_back(convert(cfg, name, *t, st));
    }
    for (const auto& [name, group] : experts) out.push_back(stack(cfg, name, group, st));
    if (!cfg.tied && !seen.count("output.weight"))
        throw Error(Status::BadFile, "tie_word_embeddings is false but the folder has no lm_head.weight");
    for (const auto& [name, values] : cfg.generated) {
        auto* f = reinterpret_cast<float*>(st.copy(values.size() * sizeof(float)));  // tiny: always made
        std::copy(values.begin(), values.end(), f);
        out.push_back(view(name, TensorType::F32, {static_cast<int64_t>(values.size())}, reinterpret_cast<uint8_t*>(f)));
    }
    return out;
}

}  // namespace ember::hf
