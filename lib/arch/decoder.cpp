#include "arch/decoder.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ember/error.hpp"

namespace ember::arch {

namespace {

// RoPE scaling, read as llama.cpp reads it for the architectures ember runs (llama-model.cpp's
// load_hparams, then llama-context.cpp):
//   rope.scaling.type    none | linear | yarn; absent: linear (which without a factor scales nothing).
//                        "llama3" is accepted as unscaled: Llama 3.1's per-frequency factors are in
//                        rope_freqs.weight whatever the type says. Others are refused. (Phi-3's LongRoPE
//                        files carry no type: their long/short factor tensors are read with rope_freqs.)
//   rope.scaling.factor  (older files: rope.scale_linear) positions × 1/factor; absent or 0: 1.
//   rope.scaling.attn_factor  multiplies cos/sin whatever the type (default 1).
//   yarn: rope.scaling.original_context_length (default context_length) places the ramp; llama.cpp's
//   defaults ext_factor 1, beta_fast 32, beta_slow 1 apply (it reads the yarn_* keys only for other
//   architectures), and the rope op's magnitude 1 + 0.1·ln(factor) is kept: llama.cpp sets the op's
//   attn_factor to mscale(factor) / (1 + 0.1·ln(factor)), with mscale(s) = 1 + 0.1·ln(s) for s > 1,
//   else 1, which cancels for factors above 1.
void read_rope_scaling(const gguf::File& f, const std::string& prefix, int n_ctx_train, backend::RopeParams& rope) {
    const std::string a = prefix + ".";
    const std::string type = f.get_string(a + "rope.scaling.type", "linear");
    if (type != "none" && type != "linear" && type != "yarn" && type != "llama3")
        throw Error(Status::Unsupported, prefix + ": rope scaling '" + type + "' is not supported yet");
    const float factor = static_cast<float>(f.has(a + "rope.scaling.factor") ? f.get_float(a + "rope.scaling.factor")
                                                                              : f.get_float(a + "rope.scale_linear", 0.0));
    if (!(factor >= 0.f) || !std::isfinite(factor)) throw Error(Status::BadFile, prefix + ": bad rope.scaling.factor");
    rope.freq_scale = type == "none" || type == "llama3" || factor == 0.f ? 1.f : 1.f / factor;
    const float attn_factor = static_cast<float>(f.get_float(a + "rope.scaling.attn_factor", 1.0));
    if (!std::isfinite(attn_factor)) throw Error(Status::BadFile, prefix + ": bad rope.scaling.attn_factor");
    rope.attn_factor = attn_factor;
    if (type != "yarn") return;
    rope.ext_factor = 1.f;
    rope.beta_fast = 32.f;
    rope.beta_slow = 1.f;
    const uint64_t orig = f.get_uint(a + "rope.scaling.original_context_length", static_cast<uint64_t>(n_ctx_train));
    rope.n_ctx_orig = orig ? static_cast<int>(std::min<uint64_t>(orig, 1u << 30)) : n_ctx_train;
    if (rope.n_ctx_orig <= 0) throw Error(Status::BadFile, prefix + ": bad rope.scaling.original_context_length");
    const float s = 1.f / rope.freq_scale;
    const float mscale = s <= 1.f ? 1.f : 0.1f * std::log(s) + 1.f;
    rope.attn_factor = mscale * (1.f / (1.f + 0.1f * std::log(s))) * attn_factor;
}

}  // namespace

Decoder::Decoder(const DecoderSpec& spec, const gguf::File& f, WeightLoader& w) : spec_(spec) {
    const std::string a = spec.prefix + ".";
    auto u = [&](const std::string& key) { return static_cast<int>(f.get_uint(a + key)); };
    hp_.n_layer = u("block_count");
    hp_.n_embd = u("embedding_length");
    hp_.n_head = u("attention.head_count");
    hp_.n_head_kv = f.has(a + "attention.head_count_kv") ? u("attention.head_count_kv") : hp_.n_head;
    hp_.n_ff = u("feed_forward_length");
    hp_.n_ctx_train = static_cast<int>(f.get_uint(a + "context_length", 2048));
    hp_.norm_eps = static_cast<float>(f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
    if (hp_.n_layer <= 0 || hp_.n_embd <= 0 || hp_.n_head <= 0 || hp_.n_head_kv <= 0 || hp_.n_ff <= 0 ||
        hp_.n_layer > 1024 || hp_.n_head % hp_.n_head_kv != 0 || hp_.n_embd % hp_.n_head != 0)
        throw Error(Status::BadFile, spec.prefix + ": inconsistent hyperparameters");
    hp_.head_dim = static_cast<int>(f.get_uint(a + "attention.key_length", hp_.n_embd / hp_.n_head));
    if (f.get_uint(a + "attention.value_length", hp_.head_dim) != static_cast<uint64_t>(hp_.head_dim))
        throw Error(Status::Unsupported, spec.prefix + ": value heads of another size than key heads");
    hp_.rope.n_rot = static_cast<int>(f.get_uint(a + "rope.dimension_count", hp_.head_dim));
    hp_.rope.freq_base = static_cast<float>(f.get_float(a + "rope.freq_base", 10000.0));
    hp_.rope.mode = spec.rope;
    if (hp_.rope.n_rot > hp_.head_dim || hp_.rope.n_rot % 2 || hp_.rope.n_rot <= 0)
        throw Error(Status::BadFile, spec.prefix + ": rope dimension count does not fit the head size");
    read_rope_scaling(f, spec.prefix, hp_.n_ctx_train, hp_.rope);
    hp_.rope.freq_factors = w.optional("rope_freqs.weight", {hp_.rope.n_rot / 2});
    if (hp_.rope.freq_factors.data && hp_.rope.freq_factors.type != tensor::TensorType::F32)
        throw Error(Status::BadFile, "rope_freqs.weight must be F32");
    if (!hp_.rope.freq_factors.data) {
        // LongRoPE, as llama.cpp chooses (get_rope_factors): rope_freqs first; otherwise the long factors for a
        // context longer than the original one, the short factors (either may be absent: no factors) else.
        const backend::Tensor short_f = w.optional("rope_factors_short.weight", {hp_.rope.n_rot / 2});
        const backend::Tensor long_f = w.optional("rope_factors_long.weight", {hp_.rope.n_rot / 2});
        for (const backend::Tensor* t : {&short_f, &long_f})
            if (t->data && t->type != tensor::TensorType::F32) throw Error(Status::BadFile, "rope factors must be F32");
        if (short_f.data || long_f.data) {
            hp_.long_rope = true;
            hp_.rope.freq_factors = short_f;
            hp_.rope_long_factors = long_f;
            const uint64_t orig = f.get_uint(a + "rope.scaling.original_context_length", static_cast<uint64_t>(hp_.n_ctx_train));
            hp_.long_rope_ctx = static_cast<int>(std::min<uint64_t>(orig, 1u << 30));
        }
    }
    hp_.rope_swa = hp_.rope;
    if (spec.swa_pattern > 0) {
        hp_.swa_window = static_cast<int>(f.get_uint(a + "attention.sliding_window", 0));
        hp_.swa_pattern = static_cast<int>(f.get_uint(a + "attention.sliding_window_pattern", spec.swa_pattern));
        if (spec.rope_base_swa) {  // Gemma 3: the local layers' own base, and no position scaling there
            hp_.rope_swa.freq_base = static_cast<float>(f.get_float(a + "rope.freq_base_swa", 10000.0));
            hp_.rope_swa.freq_scale = 1.f;
        }
        if (hp_.swa_window < 0 || hp_.swa_pattern < 0) throw Error(Status::BadFile, spec.prefix + ": bad sliding window");
    }
    hp_.attn_softcap = static_cast<float>(f.get_float(a + "attn_logit_softcapping", 0.0));
    hp_.final_softcap = static_cast<float>(f.get_float(a + "final_logit_softcapping", 0.0));
    if (!(hp_.attn_softcap >= 0.f) || !(hp_.final_softcap >= 0.f) || !std::isfinite(hp_.attn_softcap) ||
        !std::isfinite(hp_.final_softcap))
        throw Error(Status::BadFile, spec.prefix + ": soft-capping values must be finite and not negative");
    hp_.gelu_ffn = spec.gemma;
    if (spec.gemma) hp_.embd_scale = std::sqrt(static_cast<float>(hp_.n_embd));
    hp_.n_expert = static_cast<int>(f.get_uint(a + "expert_count", 0));
    if (hp_.n_expert > 0) {
        hp_.n_expert_used = static_cast<int>(f.get_uint(a + "expert_used_count"));
        hp_.n_ff_exp = static_cast<int>(f.get_uint(a + "expert_feed_forward_length", static_cast<uint64_t>(hp_.n_ff)));
        hp_.expert_weights_norm = f.get_bool(a + "expert_weights_norm", true);
        if (hp_.n_expert > 1024 || hp_.n_expert_used < 1 || hp_.n_expert_used > hp_.n_expert || hp_.n_ff_exp <= 0)
            throw Error(Status::BadFile, spec.prefix + ": inconsistent expert counts");
    }

    const int64_t E = hp_.n_embd, HD = hp_.head_dim, Q = HD * hp_.n_head, KV = HD * hp_.n_head_kv;
    embd_ = w.get("token_embd.weight", {E, -1});
    hp_.n_vocab = static_cast<int>(embd_.ne[1]);
    auto layer = WeightLoader::layer;
    // What a LoRA adapter on each projection changes: the views the forward pass uses.
    auto lora = [&](int i, const char* name, std::vector<LoraTarget> targets) { lora_targets_[layer(i, name)] = std::move(targets); };
    for (int i = 0; i < hp_.n_layer; ++i) {
        AttentionWeights at;
        at.norm = w.get(layer(i, "attn_norm.weight"), {E});
        if (spec.fused_qkv) {  // views into the one tensor: the forward pass never knows it was fused
            const backend::Tensor qkv = w.get(layer(i, "attn_qkv.weight"), {E, Q + 2 * KV});
            at.wq = row_slice(qkv, 0, Q);
            at.wk = row_slice(qkv, Q, KV);
            at.wv = row_slice(qkv, Q + KV, KV);
            lora(i, "attn_qkv.weight", {{i, Proj::Q, 0, Q}, {i, Proj::K, Q, KV}, {i, Proj::V, Q + KV, KV}});
        } else {
            at.wq = w.get(layer(i, "attn_q.weight"), {E, Q});
            at.wk = w.get(layer(i, "attn_k.weight"), {E, KV});
            at.wv = w.get(layer(i, "attn_v.weight"), {E, KV});
            lora(i, "attn_q.weight", {{i, Proj::Q, 0, Q}});
            lora(i, "attn_k.weight", {{i, Proj::K, 0, KV}});
            lora(i, "attn_v.weight", {{i, Proj::V, 0, KV}});
        }
        at.wo = w.get(layer(i, "attn_output.weight"), {Q, E});
        lora(i, "attn_output.weight", {{i, Proj::O, 0, E}});
        if (spec.qkv_bias) {
            at.bq = w.get(layer(i, "attn_q.bias"), {Q});
            at.bk = w.get(layer(i, "attn_k.bias"), {KV});
            at.bv = w.get(layer(i, "attn_v.bias"), {KV});
        }
        if (spec.qk_norm) {
            at.q_norm = w.get(layer(i, "attn_q_norm.weight"), {HD});
            at.k_norm = w.get(layer(i, "attn_k_norm.weight"), {HD});
        }
        if (spec.post_norms) at.post_norm = w.get(layer(i, "post_attention_norm.weight"), {E});
        FfnWeights ff;
        ff.norm = w.get(layer(i, "ffn_norm.weight"), {E});
        if (hp_.n_expert > 0) {
            const int64_t X = hp_.n_expert, FE = hp_.n_ff_exp;
            ff.router = w.get(layer(i, "ffn_gate_inp.weight"), {E, X});
            ff.gate = w.get(layer(i, "ffn_gate_exps.weight"), {E, FE, X});
            ff.up = w.get(layer(i, "ffn_up_exps.weight"), {E, FE, X});
            ff.down = w.get(layer(i, "ffn_down_exps.weight"), {FE, E, X});
        } else if (spec.fused_gate_up) {
            const backend::Tensor gate_up = w.get(layer(i, "ffn_up.weight"), {E, 2 * hp_.n_ff});
            ff.gate = row_slice(gate_up, 0, hp_.n_ff);
            ff.up = row_slice(gate_up, hp_.n_ff, hp_.n_ff);
            ff.down = w.get(layer(i, "ffn_down.weight"), {hp_.n_ff, E});
            lora(i, "ffn_up.weight", {{i, Proj::Gate, 0, hp_.n_ff}, {i, Proj::Up, hp_.n_ff, hp_.n_ff}});
            lora(i, "ffn_down.weight", {{i, Proj::Down, 0, E}});
        } else {
            ff.gate = w.get(layer(i, "ffn_gate.weight"), {E, hp_.n_ff});
            ff.up = w.get(layer(i, "ffn_up.weight"), {E, hp_.n_ff});
            ff.down = w.get(layer(i, "ffn_down.weight"), {hp_.n_ff, E});
            lora(i, "ffn_gate.weight", {{i, Proj::Gate, 0, hp_.n_ff}});
            lora(i, "ffn_up.weight", {{i, Proj::Up, 0, hp_.n_ff}});
            lora(i, "ffn_down.weight", {{i, Proj::Down, 0, E}});
        }
        if (spec.post_norms) ff.post_norm = w.get(layer(i, "post_ffw_norm.weight"), {E});
        attn_.push_back(at);
        ffn_.push_back(ff);
    }
    out_norm_ = w.get("output_norm.weight", {E});
    output_ = w.optional("output.weight", {E, hp_.n_vocab});
    if (!output_.data) output_ = embd_;  // tied embeddings
}

void Decoder::forward(Workspace& ws, std::span<const Token> tokens, int n_past, bool all_logits,
                      const std::function<bool()>& aborted) const {
    const int32_t n = static_cast<int32_t>(tokens.size());
    const SeqRows seq{0, n, n_past, &ws};
    std::vector<int32_t> out_rows;
    if (all_logits) {
        out_rows.resize(static_cast<size_t>(n));
        std::iota(out_rows.begin(), out_rows.end(), 0);
    } else {
        out_rows.push_back(n - 1);
    }
    run(ws, tokens, std::span<const SeqRows>(&seq, 1), out_rows, aborted);
}

void Decoder::forward_batch(Workspace& ws, std::span<const BatchSeq> seqs,
                            const std::function<bool()>& aborted) const {
    std::vector<Token> tokens;
    std::vector<SeqRows> rows(seqs.size());
    std::vector<int32_t> last(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i) {
        const int64_t first = static_cast<int64_t>(tokens.size()), count = static_cast<int64_t>(seqs[i].tokens.size());
        tokens.insert(tokens.end(), seqs[i].tokens.begin(), seqs[i].tokens.end());
        rows[i] = {first, count, seqs[i].n_past, seqs[i].cache};
        last[i] = static_cast<int32_t>(first + count - 1);
    }
    run(ws, tokens, rows, last, aborted);
}

void Decoder::run(Workspace& ws, std::span<const Token> tokens, std::span<const SeqRows> seqs,
                  std::span<const int32_t> out_rows, const std::function<bool()>& aborted) const {
    const int64_t n = static_cast<int64_t>(tokens.size());
    backend::Tensor x = rows_of(ws.x, n);
    ws.stream->get_rows(embd_, tokens.data(), n, x);
    if (hp_.embd_scale > 0.f) ws.stream->scale(x, hp_.embd_scale, x);
    for (int l = 0; l < hp_.n_layer; ++l) {
        if (aborted && aborted()) throw Error(Status::Cancelled, "cancelled");
        attention_block(ws, hp_, attn_[l], l, n, seqs);
        ffn_block(ws, hp_, ffn_[l], l, n, seqs);
    }
    output_block(ws, hp_, out_norm_, output_, n, out_rows);
}

}  // namespace ember::arch
