// The backend plugin interface: what a device must provide to run a decoder transformer.
//
// Registry → Device (memory, weights) → Stream (one per Session: ordered ops, private scratch).
// Ops are enqueued on a Stream and may run asynchronously; only read() and sync() wait. No op returns a
// value to the host, so a CUDA stream can capture a whole decode step into a graph and replay it.
// Model code calls these ops and never asks which device it is on.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/types.hpp"

namespace ember::backend {

constexpr int kApiVersion = 1;

using tensor::TensorType;

// A tensor in device memory. ne[0] is the row length; rows are contiguous.
struct Tensor {
    TensorType type = TensorType::F32;
    std::array<int64_t, 4> ne{0, 1, 1, 1};
    void* data = nullptr;

    int64_t n_rows() const noexcept { return ne[1] * ne[2] * ne[3]; }
    int64_t n_elements() const noexcept { return ne[0] * n_rows(); }
    size_t row_bytes() const noexcept { return tensor::row_bytes(type, ne[0]); }
    size_t n_bytes() const noexcept { return row_bytes() * static_cast<size_t>(n_rows()); }
    // Row r of a 2-D view (rows counted over ne[1..3]).
    void* row(int64_t r) const noexcept { return static_cast<char*>(data) + row_bytes() * static_cast<size_t>(r); }
};

// Device memory, freed with the object.
class Buffer {
public:
    virtual ~Buffer() = default;
    virtual void* data() noexcept = 0;
    virtual size_t size() const noexcept = 0;
};

enum class RopeMode { Normal, NeoX };  // pairs (2i, 2i+1) or (i, i + n_rot/2)

// Pair i of a head turns by θ_i = freq_scale · p · freq_base^(-2i/n_rot) / freq_factors[i] at position p,
// and cos/sin are multiplied by attn_factor.
// YaRN (ext_factor ≠ 0), as ggml's rope op: with θe_i = θ_i / freq_scale (no interpolation) and
// ramp_i = 1 − clamp((i − lo) / max(0.001, hi − lo), 0, 1), the pair turns by
// θ_i · (1 − m) + θe_i · m, m = ramp_i · ext_factor, and cos/sin are multiplied by
// attn_factor · (1 + 0.1 · ln(1 / freq_scale)). The correction dims are
// lo = max(0, floor(d(beta_fast))), hi = min(n_rot − 1, ceil(d(beta_slow))),
// d(b) = n_rot · ln(n_ctx_orig / (2π·b)) / (2 · ln(freq_base)).
struct RopeParams {
    int n_rot = 0;              // rotated dimensions per head (≤ head size)
    float freq_base = 10000.f;
    float freq_scale = 1.f;     // linear scaling: position × freq_scale
    RopeMode mode = RopeMode::Normal;
    Tensor freq_factors;        // optional, F32 [n_rot / 2] (Llama 3.1's rope_freqs); data == nullptr: none
    float ext_factor = 0.f;     // YaRN: 0 off (plain interpolation), 1 the full ramp
    float attn_factor = 1.f;    // magnitude of cos/sin
    float beta_fast = 32.f;     // YaRN ramp ends, in rotations over n_ctx_orig
    float beta_slow = 1.f;
    int n_ctx_orig = 0;         // YaRN: the context the model was trained for
};

// Attention of n_tokens queries at positions n_past.. over the cache rows 0 .. n_past + n_tokens - 1.
struct AttentionParams {
    int n_head = 0;
    int n_head_kv = 0;
    int head_dim = 0;
    int n_past = 0;             // tokens already in the cache before this batch
    float scale = 1.f;          // usually 1/sqrt(head_dim)
    float softcap = 0.f;        // 0: none (Gemma 2 caps attention logits)
    int window = 0;             // 0: full causal; else sliding window size
};

// One sequence of a batched step's attention: its query rows first .. first + count - 1, at positions
// n_past.., against its own cache.
struct SequenceAttention {
    int64_t first = 0;
    int64_t count = 0;
    int n_past = 0;
    const Tensor* k_cache = nullptr;
    const Tensor* v_cache = nullptr;
};

// Whether an attention call's shapes fit together: heads (n_head a positive multiple of n_head_kv), q and
// out [head_dim·n_head, rows], and each sequence's rows inside q, its F16 caches [head_dim·n_head_kv, ≥
// n_past + count]. Every backend checks these same rules before its own.
bool attention_shapes_ok(const Tensor& q, const SequenceAttention* seqs, size_t n_seqs, const AttentionParams& p,
                         const Tensor& out) noexcept;

// Per-session execution: ordered ops on one device queue with scratch of its own.
class Stream {
public:
    virtual ~Stream() = default;

    virtual void write(const Tensor& dst, const void* src, size_t n_bytes, size_t offset = 0) = 0;
    virtual void read(const Tensor& src, void* dst, size_t n_bytes, size_t offset = 0) = 0;  // waits
    virtual void sync() = 0;

    // out[t] = table[ids[t]] as F32. ids: I32 host values copied in by the caller via write().
    virtual void get_rows(const Tensor& table, const int32_t* ids, int64_t n, Tensor& out) = 0;
    // out = x / rms(x) * w, per row; w is F32 of length ne[0].
    virtual void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) = 0;
    // out[t][n] = Σ_k w[n][k] · x[t][k]; w may be any quantized type, x and out are F32.
    virtual void matmul(const Tensor& w, const Tensor& x, Tensor& out) = 0;
    // In-place rotary embedding of x viewed as [head_dim, n_heads, n_tokens] at positions pos0 + t.
    virtual void rope(Tensor& x, int head_dim, int pos0, const RopeParams& p) = 0;
    // Stores k and v ([head_dim·n_head_kv, n_tokens], F32) into the caches at rows pos0.. .
    virtual void kv_store(const Tensor& k, const Tensor& v, Tensor& k_cache, Tensor& v_cache, int pos0) = 0;
    // out [head_dim·n_head, n_tokens] = softmax(q·Kᵀ·scale + causal mask) · V, with grouped-query heads.
    void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const AttentionParams& p, Tensor& out) {
        const SequenceAttention seq{0, q.n_rows(), p.n_past, &k_cache, &v_cache};
        attention(q, &seq, 1, p, out);
    }
    // The same for the rows of several sequences at once (a batched step: one op, not one per sequence);
    // each sequence's n_past replaces p.n_past. The sequences' rows do not overlap.
    virtual void attention(const Tensor& q, const SequenceAttention* seqs, size_t n_seqs, const AttentionParams& p,
                           Tensor& out) = 0;
    // out = a + b elementwise; b has a's shape, or one row that is added to every row of a (a bias).
    virtual void add(const Tensor& a, const Tensor& b, Tensor& out) = 0;
    virtual void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) = 0;  // silu(gate) · up
    virtual void geglu(const Tensor& gate, const Tensor& up, Tensor& out) = 0;   // gelu(gate) · up (tanh form)
    virtual void scale(const Tensor& x, float s, Tensor& out) = 0;                 // out = s · x
    virtual void softcap(const Tensor& x, float cap, Tensor& out) = 0;             // out = cap · tanh(x / cap)
    // dst[ids[i]] += weights[i] · src[i] for rows i < n (ids distinct; host values, as get_rows): the
    // scatter back of rows a mixture-of-experts block gathered for one expert.
    virtual void add_rows_scaled(const Tensor& src, const int32_t* ids, const float* weights, int64_t n,
                                 Tensor& dst) = 0;
};

struct StreamParams {
    int n_threads = 0;  // CPU: threads this stream's ops use (0: the hardware threads; at most 4× those)
};

class Device {
public:
    virtual ~Device() = default;
    virtual std::string name() const = 0;
    virtual std::string description() const = 0;

    virtual std::unique_ptr<Buffer> alloc(size_t n_bytes) = 0;  // throws ember::Error(OutOfMemory)
    // Bytes this device can still allocate without trouble (for a host: memory available to this process).
    virtual size_t available_memory() const = 0;
    // Makes a weight usable by this device. `host` points at the file's bytes, which outlive the model:
    // a host device may keep the pointer, others copy (and may repack) into memory they own. When those
    // bytes are a read-only file mapping (`file_mapping`), a device done with them may drop their pages
    // (madvise DONTNEED): they fault back in from the file if read again.
    virtual Tensor weight(const Tensor& host, bool file_mapping) = 0;
    virtual bool supports(TensorType weight_type) const = 0;
    virtual std::unique_ptr<Stream> stream(const StreamParams& p) = 0;
};

// What a plugin provides to the registry.
struct BackendInfo {
    int api_version = kApiVersion;
    std::string name;                                  // "cpu", "cuda"
    std::function<int()> score;                        // < 0: unusable here; higher is preferred
    std::function<std::unique_ptr<Device>()> create;
};

void register_backend(BackendInfo info);
std::vector<std::string> available_backends();  // usable on this machine, best first
// "auto" or "" picks the best usable backend. Throws ember::Error(Unsupported) for an unknown or unusable name.
std::unique_ptr<Device> create_device(const std::string& name);

}  // namespace ember::backend
