// Architectures: one file each, built from the shared blocks in arch/blocks.hpp. An architecture reads
// its hyperparameters and weights from the file (validating names and shapes) and runs a forward pass
// through backend ops only.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "arch/lora.hpp"
#include "backend/backend.hpp"
#include "ember/tokenizer.hpp"
#include "gguf/reader.hpp"

namespace ember::arch {

struct HParams {
    int n_layer = 0;
    int n_embd = 0;
    int n_head = 0;
    int n_head_kv = 0;
    int head_dim = 0;
    int n_ff = 0;
    int n_vocab = 0;
    int n_ctx_train = 0;
    float norm_eps = 1e-5f;
    backend::RopeParams rope;
    bool gelu_ffn = false;          // GELU(tanh)-gated feed-forward instead of SwiGLU (Gemma)
    float embd_scale = 0.f;         // 0: none; Gemma multiplies the embeddings by √n_embd
    float attn_softcap = 0.f;       // 0: none; Gemma 2 caps attention logits: c·tanh(s/c)
    float final_softcap = 0.f;      // 0: none; Gemma 2 caps the output logits the same way
    int swa_window = 0;             // sliding-window size of the local layers (0: every layer global)
    int swa_pattern = 0;            // layer l is local when l % swa_pattern < swa_pattern - 1
    backend::RopeParams rope_swa;   // RoPE of the local layers (Gemma 3 gives them their own base)
    // LongRoPE (Phi-3 128k, Phi-3.5): rope.freq_factors holds the short factors; a session whose context is
    // longer than long_rope_ctx (the original context) turns by these instead (data == nullptr: none).
    bool long_rope = false;
    backend::Tensor rope_long_factors;
    int long_rope_ctx = 0;
    int n_expert = 0;               // mixture of experts: experts per layer (0: a dense FFN)
    int n_expert_used = 0;          // experts each token is routed to
    int n_ff_exp = 0;               // an expert's FFN width
    bool expert_weights_norm = true;  // the chosen experts' router weights renormalized to sum 1

    bool is_swa(int layer) const noexcept {
        return swa_window > 0 && swa_pattern > 0 && layer % swa_pattern < swa_pattern - 1;
    }
};

// Bytes a session needs beside the weights: its KV cache (F16) for n_ctx tokens and its scratch
// (activations for n_batch tokens, one row of logits). One formula for the check before allocating
// and for the estimate a user reads before loading (estimate_memory).
struct SessionBytes {
    double kv_cache = 0, scratch = 0;
};
SessionBytes session_bytes(const HParams& hp, int n_ctx, int n_batch);

// Per-session buffers the forward pass works in: activations for one batch and the KV cache.
struct Workspace {
    backend::Device* device = nullptr;
    backend::Stream* stream = nullptr;
    int n_ctx = 0;
    int n_batch = 0;
    std::vector<backend::Tensor> k_cache, v_cache;  // per layer, [head_dim·n_head_kv, n_ctx] F16
    backend::Tensor x, h, q, k, v, attn, gate, up;  // [width, n_batch] F32
    backend::Tensor router, moe_rows;               // MoE only: router logits, one expert's gathered rows
    backend::Tensor logits;                         // [n_vocab, rows] F32, grown on demand
    std::vector<std::unique_ptr<backend::Buffer>> buffers;
    std::unique_ptr<backend::Buffer> logits_buffer;
    // The session's LoRA adapters (empty: none, and the forward pass runs no op for them).
    std::vector<ActiveLora> loras;
    // LoRA scratch, made on first use: A·x [rank, n_batch] and B·(A·x) [lora_width, n_batch].
    backend::Tensor lora_ax, lora_out;
    int64_t lora_width = 0;  // the widest projection output
    std::unique_ptr<backend::Buffer> lora_buffer;

    void ensure_logit_rows(int64_t rows);
    void ensure_lora_rank(int rank);  // scratch for adapters of rank ≤ `rank` (throws OutOfMemory)
};

// A [ne0, count] view of rows first .. first + count - 1 of t (rows counted over ne[1..3]): a slice of a
// fused weight, or one expert's matrix in a 3-D expert tensor.
inline backend::Tensor row_slice(const backend::Tensor& t, int64_t first, int64_t count) {
    backend::Tensor v = t;
    v.data = t.row(first);
    v.ne = {t.ne[0], count, 1, 1};
    return v;
}

// A [ne0, rows] view of the first rows of a workspace tensor.
inline backend::Tensor rows_of(const backend::Tensor& t, int64_t rows) {
    backend::Tensor v = t;
    v.ne = {t.ne[0], rows, 1, 1};
    return v;
}

class Architecture {
public:
    virtual ~Architecture() = default;
    const HParams& hparams() const noexcept { return hp_; }
    // Creates the workspace for a session.
    Workspace make_workspace(backend::Device& dev, backend::Stream& stream, int n_ctx, int n_batch) const;
    // Runs tokens at positions n_past..; writes logits for the last token, or for every token when
    // all_logits, into ws.logits rows (row i: token i, or row 0 for the last token alone).
    virtual void forward(Workspace& ws, std::span<const Token> tokens, int n_past, bool all_logits,
                         const std::function<bool()>& aborted) const = 0;
    // Several sequences in one pass, each weight read once for all their tokens: sequence i evaluates
    // seqs[i].tokens (one token, or a chunk of a prompt) at positions seqs[i].n_past.., storing its keys and
    // values in, and attending over, seqs[i].cache's KV cache. The activations use `ws`, which must hold
    // the tokens of all sequences together (≤ its n_batch rows); ws.logits row i gets the logits of
    // sequence i's last token.
    struct BatchSeq {
        std::span<const Token> tokens;
        int n_past = 0;
        Workspace* cache = nullptr;
    };
    virtual void forward_batch(Workspace& ws, std::span<const BatchSeq> seqs,
                               const std::function<bool()>& aborted) const = 0;
    // The projections a LoRA adapter on the file's tensor `name` changes; empty when it may change none
    // (embeddings, norms, experts, a tensor the model does not have).
    std::span<const LoraTarget> lora_targets(const std::string& name) const;

protected:
    HParams hp_;
    std::map<std::string, std::vector<LoraTarget>, std::less<>> lora_targets_;  // filled by the loader
};

// Creates the architecture named by general.architecture and loads its weights onto the device.
// Throws ember::Error: Unsupported (unknown architecture), BadFile (missing/misshapen tensors).
std::unique_ptr<Architecture> load_architecture(const gguf::File& file, backend::Device& dev,
                                                const std::function<bool(float)>& progress);

// Reads a tensor by name, checking its shape (-1 matches any size), and hands it to the device.
class WeightLoader {
public:
    WeightLoader(const gguf::File& file, backend::Device& dev, const std::function<bool(float)>& progress);
    backend::Tensor get(const std::string& name, std::vector<int64_t> shape);       // throws when missing
    backend::Tensor optional(const std::string& name, std::vector<int64_t> shape);  // data == nullptr when absent
    // Per-layer name: "blk.<i>.<suffix>".
    static std::string layer(int i, const char* suffix) { return "blk." + std::to_string(i) + "." + suffix; }

private:
    const gguf::File& file_;
    backend::Device& dev_;
    const std::function<bool(float)>& progress_;
    uint64_t loaded_bytes_ = 0, total_bytes_ = 0;
};

}  // namespace ember::arch
