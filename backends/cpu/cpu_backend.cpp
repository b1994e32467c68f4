// The CPU backend: weights stay in the file mapping (zero copy), ops run on the device's one worker pool,
// which every stream (session) shares.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <memory>
#include <new>
#include <thread>


#include "backend/backend.hpp"
#include "util/log.hpp"
#include "ember/error.hpp"
#include "kernels.hpp"
#include "tensor/blocks.hpp"
#include "tensor/dequantize.hpp"
#include "tensor/fp16.hpp"
#include "tensor/quantize.hpp"
#include "thread_pool.hpp"
#include "util/host_memory.hpp"

namespace ember::cpu {

using backend::AttentionParams;
using backend::Buffer;
using backend::RopeMode;
using backend::RopeParams;
using backend::SequenceAttention;
using backend::Tensor;

namespace {

[[noreturn]] void shape_error(const char* op) {
    throw Error(Status::Internal, std::string("cpu backend: ") + op + ": tensor shapes do not match");
}

class HostBuffer final : public Buffer {
public:
    explicit HostBuffer(size_t n) : size_(n) {
        const size_t rounded = (std::max<size_t>(n, 1) + 63) / 64 * 64;
        data_ = std::aligned_alloc(64, rounded);
        if (!data_) throw Error(Status::OutOfMemory, "cpu backend: cannot allocate " + std::to_string(n) + " bytes");
        // Measured (one thread, 36–70 MB repacked matrices, medians of 6 alternating runs, GB/s of weights
        // a CPU-second): Q8_0 15.7 → 16.7, Q4_0 20.3 → 22.5, Q4_K 18.3 → 20.1, Q6_K unchanged.
        ask_huge_pages(data_, rounded);
    }
    ~HostBuffer() override { std::free(data_); }
    void* data() noexcept override { return data_; }
    size_t size() const noexcept override { return size_; }

private:
    void* data_;
    size_t size_;
};

float* f32(const Tensor& t) { return static_cast<float*>(t.data); }

// Work items per thread worth waking a worker for, given the cost of one item in element operations.
constexpr int64_t kMinOpsPerThread = 1 << 15;
// Tokens from which attention runs in blocks of queries (decode and small batches: one query at a time).
constexpr int64_t kBlockAttentionMinTokens = 8;
int64_t grain_for(int64_t cost_per_item) { return std::max<int64_t>(1, kMinOpsPerThread / std::max<int64_t>(1, cost_per_item)); }

// The device's repacked weights, found again from the mapped tensors (and their row views) the model keeps:
// lib/ never sees the other layout, and what the repack does not cover reads the mapping as before.
class RepackedWeights {
public:
    struct Hit {
        const Repacked* kernels;
        const uint8_t* data;  // the group holding the tensor's first row
        size_t group_bytes;
    };
    void add(const Tensor& host, const Repacked* kernels, std::unique_ptr<Buffer> copy) {
        std::unique_lock lock(mutex_);
        const auto* begin = static_cast<const uint8_t*>(host.data);
        entries_.emplace(begin, Entry{begin + host.n_bytes(), host.row_bytes(), kernels->group_bytes(host.ne[0]),
                                      kernels, std::move(copy)});
    }
    // The repacked copy of w: w must start on a group and hold whole groups of a repacked tensor.
    std::optional<Hit> find(const Tensor& w) const {
        std::shared_lock lock(mutex_);
        if (entries_.empty() || w.n_rows() % 8) return std::nullopt;
        const auto* p = static_cast<const uint8_t*>(w.data);
        auto it = entries_.upper_bound(p);
        if (it == entries_.begin()) return std::nullopt;
        --it;
        const Entry& e = it->second;
        const size_t offset = static_cast<size_t>(p - it->first);
        if (p + w.n_bytes() > e.end || e.row_bytes != w.row_bytes() || offset % (8 * e.row_bytes)) return std::nullopt;
        return Hit{e.kernels, static_cast<const uint8_t*>(e.copy->data()) + offset / (8 * e.row_bytes) * e.group_bytes,
                   e.group_bytes};
    }

private:
    struct Entry {
        const uint8_t* end;
        size_t row_bytes, group_bytes;
        const Repacked* kernels;
        std::unique_ptr<Buffer> copy;
    };
    mutable std::shared_mutex mutex_;
    std::map<const uint8_t*, Entry> entries_;
};

class CpuStream final : public backend::Stream {
public:
    using Stream::attention;  // the one-sequence form, over the batched one below
    CpuStream(std::shared_ptr<ThreadPool> pool, int n_threads, std::shared_ptr<const RepackedWeights> repacked)
        : pool_(std::move(pool)), n_threads_(n_threads), repacked_(std::move(repacked)) {}

    void write(const Tensor& dst, const void* src, size_t n, size_t offset) override {
        std::memcpy(static_cast<char*>(dst.data) + offset, src, n);
    }
    void read(const Tensor& src, void* dst, size_t n, size_t offset) override {
        std::memcpy(dst, static_cast<const char*>(src.data) + offset, n);
    }
    void sync() override {}

    void get_rows(const Tensor& table, const int32_t* ids, int64_t n, Tensor& out) override {
        if (out.type != TensorType::F32 || out.ne[0] != table.ne[0] || out.n_rows() < n) shape_error("get_rows");
        const int64_t rows = table.n_rows();
        for (int64_t i = 0; i < n; ++i)
            if (ids[i] < 0 || ids[i] >= rows)
                throw Error(Status::InvalidArgument, "token id " + std::to_string(ids[i]) + " is out of range");
        parallel_for(n, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i)
                tensor::dequantize_row(table.type, table.row(ids[i]), f32(out) + i * out.ne[0], table.ne[0]);
        }, grain_for(table.ne[0]));
    }

    void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
        const int64_t n = x.ne[0];
        if (w.ne[0] != n || out.ne[0] != n || out.n_rows() != x.n_rows()) shape_error("rms_norm");
        parallel_for(x.n_rows(), [&](int64_t b, int64_t e) {
            for (int64_t r = b; r < e; ++r) {
                const float* xr = f32(x) + r * n;
                float* o = f32(out) + r * n;
                double sum = 0.0;  // llama.cpp sums squares in double too
                for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(xr[i] * xr[i]);
                const float scale = 1.0f / std::sqrt(static_cast<float>(sum / n) + eps);
                for (int64_t i = 0; i < n; ++i) o[i] = xr[i] * scale * f32(w)[i];
            }
        }, grain_for(3 * n));
    }

    void matmul(const Tensor& w, const Tensor& x, Tensor& out) override {
        const int64_t K = w.ne[0], N = w.n_rows(), T = x.n_rows();
        if (x.ne[0] != K || out.ne[0] != N || out.n_rows() != T) shape_error("matmul");
        float* o = f32(out);
        const PanelGemm* gemm = panel_gemm(w.type);
        if (gemm && T < gemm->min_tokens) gemm = nullptr;
        if (w.type == TensorType::F32 && !gemm) {
            parallel_for(N, [&](int64_t b, int64_t e) {
                for (int64_t n = b; n < e; ++n)
                    for (int64_t t = 0; t < T; ++t)
                        o[t * N + n] = dot_f32(static_cast<const float*>(w.row(n)), f32(x) + t * K, K);
            }, grain_for(K * T));
            return;
        }
        if (const auto hit = repacked_->find(w); hit && (!hit->kernels->max_tokens || T < hit->kernels->max_tokens)) {
            const ActRows acts = prepare_activations(w.type, x, false);
            parallel_for(N / 8, [&](int64_t b, int64_t e) {
                for (int64_t g = b; g < e; ++g)
                    hit->kernels->run(K, hit->data + g * hit->group_bytes, acts, T, o + 8 * g, static_cast<size_t>(N));
            }, grain_for(K * T * 8));
            return;
        }
        const ActRows acts = prepare_activations(w.type, x, gemm != nullptr);
        const size_t wrb = w.row_bytes();
        if (gemm) {
            const int R = gemm->rows;
            const size_t panel_bytes = gemm->panel_bytes(K);
            parallel_for((N + R - 1) / R, [&](int64_t b, int64_t e) {
                thread_local std::vector<uint8_t> panel;
                if (panel.size() < panel_bytes) panel.resize(panel_bytes);
                for (int64_t n = b * R; n < std::min(N, e * R); n += R) {
                    const int rows = static_cast<int>(std::min<int64_t>(R, N - n));
                    gemm->pack(K, w.row(n), wrb, rows, panel.data());
                    gemm->run(K, panel.data(), acts, T, o + n, static_cast<size_t>(N), rows);
                }
            }, grain_for(K * T * R));
            return;
        }
        if (const FusedDot dot = fused_dot(w.type)) {
            parallel_for((N + kMaxTileRows - 1) / kMaxTileRows, [&](int64_t b, int64_t e) {
                for (int64_t n = b * kMaxTileRows; n < std::min(N, e * kMaxTileRows); n += kMaxTileRows) {
                    const int wr = static_cast<int>(std::min<int64_t>(kMaxTileRows, N - n));
                    for (int64_t t = 0; t < T; t += kMaxTileRows) {
                        const int xr = static_cast<int>(std::min<int64_t>(kMaxTileRows, T - t));
                        const int64_t nb = acts.d ? K / tensor::kQK : 0;
                        const ActRows rows{static_cast<const uint8_t*>(acts.q) + t * acts.stride, acts.stride,
                                           acts.d + t * nb, acts.s + t * nb};
                        dot(K, w.row(n), wrb, wr, rows, xr, o + t * N + n, static_cast<size_t>(N));
                    }
                }
            }, grain_for(K * T * kMaxTileRows));
            return;
        }
        // Reference path: both sides dequantized to F32 (same products, other summation order).
        const TensorType at = activation_type(w.type);
        xf_.resize(static_cast<size_t>(K * T));
        parallel_for(T, [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; ++t) tensor::dequantize_row(at, xq_.data() + t * acts.stride, xf_.data() + t * K, K);
        }, grain_for(2 * K));
        parallel_for(N, [&](int64_t b, int64_t e) {
            thread_local std::vector<float> wrow;
            wrow.resize(static_cast<size_t>(K));
            for (int64_t n = b; n < e; ++n) {
                tensor::dequantize_row(w.type, w.row(n), wrow.data(), K);
                for (int64_t t = 0; t < T; ++t) o[t * N + n] = dot_f32(wrow.data(), xf_.data() + t * K, K);
            }
        }, grain_for(K * (T + 4)));
    }

    void rope(Tensor& x, int head_dim, int pos0, const RopeParams& p) override {
        if (x.ne[0] % head_dim != 0 || p.n_rot > head_dim || p.n_rot % 2) shape_error("rope");
        const float* factors = p.freq_factors.data ? f32(p.freq_factors) : nullptr;
        if (factors && p.freq_factors.n_elements() < p.n_rot / 2) shape_error("rope");
        if (p.ext_factor != 0.f && p.n_ctx_orig <= 0) shape_error("rope");
        const int64_t n_heads = x.ne[0] / head_dim, T = x.n_rows();
        const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
        // YaRN's correction dims and magnitude, in float as ggml computes them (backend.hpp, RopeParams).
        float lo = 0.f, hi = 0.f, mscale = p.attn_factor;
        if (p.ext_factor != 0.f) {
            auto dim = [&](float beta) {
                const float turns = static_cast<float>(p.n_ctx_orig) / (beta * 2 * 3.14159265358979323846f);
                return static_cast<float>(p.n_rot) * std::log(turns) / (2 * std::log(p.freq_base));
            };
            lo = std::max(0.f, std::floor(dim(p.beta_fast)));
            hi = std::min(static_cast<float>(p.n_rot - 1), std::ceil(dim(p.beta_slow)));
            mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
        }
        parallel_for(T, [&](int64_t b, int64_t e) {
            std::vector<float> cs(static_cast<size_t>(p.n_rot));
            for (int64_t t = b; t < e; ++t) {
                // cos/sin per pair, built as llama.cpp does: theta multiplied by theta_scale step by step,
                // divided by the pair's frequency factor, then scaled (and with YaRN, mixed with the unscaled
                // angle by the ramp).
                float theta = static_cast<float>(pos0 + t);
                for (int i = 0; i < p.n_rot; i += 2) {
                    const float extrap = factors ? theta / factors[i / 2] : theta;
                    float angle = p.freq_scale * extrap;
                    if (p.ext_factor != 0.f) {
                        const float y = (static_cast<float>(i / 2) - lo) / std::max(0.001f, hi - lo);
                        const float mix = (1 - std::min(1.f, std::max(0.f, y))) * p.ext_factor;
                        angle = angle * (1 - mix) + extrap * mix;
                    }
                    cs[i] = std::cos(angle) * mscale;
                    cs[i + 1] = std::sin(angle) * mscale;
                    theta *= theta_scale;
                }
                for (int64_t h = 0; h < n_heads; ++h) {
                    float* v = f32(x) + t * x.ne[0] + h * head_dim;
                    for (int i = 0; i < p.n_rot; i += 2) {
                        const int a = p.mode == RopeMode::Normal ? i : i / 2;
                        const int c = p.mode == RopeMode::Normal ? i + 1 : i / 2 + p.n_rot / 2;
                        const float x0 = v[a], x1 = v[c];
                        v[a] = x0 * cs[i] - x1 * cs[i + 1];
                        v[c] = x0 * cs[i + 1] + x1 * cs[i];
                    }
                }
            }
        }, grain_for(4 * x.ne[0]));
    }

    void kv_store(const Tensor& k, const Tensor& v, Tensor& k_cache, Tensor& v_cache, int pos0) override {
        const int64_t T = k.n_rows(), n = k.ne[0];
        if (k_cache.ne[0] != n || v.ne[0] != v_cache.ne[0] || pos0 + T > k_cache.n_rows()) shape_error("kv_store");
        if (k_cache.type != TensorType::F16 || v_cache.type != TensorType::F16) shape_error("kv_store");
        auto store = [&](const Tensor& src, Tensor& cache) {
            for (int64_t t = 0; t < T; ++t)
                to_f16(f32(src) + t * src.ne[0], static_cast<uint16_t*>(cache.row(pos0 + t)), src.ne[0]);
        };
        store(k, k_cache);
        store(v, v_cache);
    }

    void attention(const Tensor& q, const SequenceAttention* seqs, size_t n_seqs, const AttentionParams& p,
                   Tensor& out) override {
        if (!attention_shapes_ok(q, seqs, n_seqs, p, out)) shape_error("attention");
        const int64_t hd = p.head_dim;
        const auto rows_of = [](const Tensor& t, int64_t first, int64_t count) {
            Tensor v = t;
            v.data = t.row(first);
            v.ne = {t.ne[0], count, 1, 1};
            return v;
        };
        // A sequence with several queries runs in blocks, filling the threads by itself; single queries
        // (decoding, one per sequence of a batched step) share one dispatch, one (query, head) an item.
        struct Query {
            const SequenceAttention* seq;
            int64_t t;
        };
        std::vector<Query> queries;
        int64_t keys = 0;
        const PanelGemm* qk = panel_gemm(TensorType::F16);
        const PanelGemm* pv = panel_gemm_f16_columns();
        for (size_t i = 0; i < n_seqs; ++i) {
            const SequenceAttention& sq = seqs[i];
            if (sq.count >= kBlockAttentionMinTokens && qk && pv) {
                AttentionParams ps = p;
                ps.n_past = sq.n_past;
                Tensor o = rows_of(out, sq.first, sq.count);
                attention_blocks(rows_of(q, sq.first, sq.count), *sq.k_cache, *sq.v_cache, ps, o, *qk, *pv);
                continue;
            }
            for (int64_t t = 0; t < sq.count; ++t) queries.push_back({&sq, t});
            keys += sq.count * (sq.n_past + 1) + sq.count * (sq.count - 1) / 2;
        }
        if (queries.empty()) return;
        const int group = p.n_head / p.n_head_kv;
        const int64_t mean_keys = keys / static_cast<int64_t>(queries.size());
        parallel_for(static_cast<int64_t>(queries.size()) * p.n_head, [&](int64_t b, int64_t e) {
            thread_local std::vector<float> scores, qh;
            qh.resize(static_cast<size_t>(hd));
            for (int64_t i = b; i < e; ++i) {
                const Query& query = queries[static_cast<size_t>(i / p.n_head)];
                const SequenceAttention& sq = *query.seq;
                const int64_t h = i % p.n_head, kvh = h / group, row = sq.first + query.t;
                const int64_t pos = sq.n_past + query.t;
                const int64_t first = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
                const int64_t n_kv = pos + 1 - first;
                // q rounded to F16 as llama.cpp's F16 K·q product does.
                const float* qsrc = f32(q) + row * q.ne[0] + h * hd;
                for (int64_t d = 0; d < hd; ++d) qh[d] = qsrc[d];
                round_to_f16(qh.data(), hd);
                scores.resize(static_cast<size_t>(n_kv));
                const size_t k_stride = sq.k_cache->row_bytes() / 2, v_stride = sq.v_cache->row_bytes() / 2;  // F16 elements
                dot_f16_rows(static_cast<const uint16_t*>(sq.k_cache->row(first)) + kvh * hd, k_stride, n_kv, qh.data(), hd,
                             scores.data());
                float mx = -INFINITY;
                for (int64_t j = 0; j < n_kv; ++j) {
                    float s = scores[j] * p.scale;
                    if (p.softcap > 0.f) s = p.softcap * std::tanh(s / p.softcap);
                    scores[j] = s;
                    mx = std::max(mx, s);
                }
                const double sum = exp_shifted(scores.data(), n_kv, mx);
                float* o = f32(out) + row * out.ne[0] + h * hd;
                std::fill(o, o + hd, 0.f);
                const float inv = static_cast<float>(1.0 / sum);
                for (int64_t j = 0; j < n_kv; ++j) scores[j] *= inv;
                axpy_f16_rows(scores.data(), static_cast<const uint16_t*>(sq.v_cache->row(first)) + kvh * hd, v_stride, n_kv, o, hd);
            }
        }, grain_for(2 * hd * mean_keys));
    }

    // Prompt attention in blocks: the query rows of a few tokens × the heads sharing one KV head, against
    // every key any of them sees, as two packed-panel GEMMs (S = Q·Kᵀ, then O = P·V) around a softmax of
    // each row over its own causal / sliding-window range. Each K and V row is converted once per block
    // instead of once per query.
    void attention_blocks(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const AttentionParams& p,
                          Tensor& out, const PanelGemm& qk, const PanelGemm& pv) {
        const int64_t T = q.n_rows(), hd = p.head_dim;
        const int group = p.n_head / p.n_head_kv;
        const int64_t tokens = std::max<int64_t>(1, 48 / group);  // about 48 query rows per block
        const int64_t n_blocks = (T + tokens - 1) / tokens;
        const auto first_key = [&](int64_t pos) { return p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0; };
        parallel_for(p.n_head_kv * n_blocks, [&](int64_t b, int64_t e) {
            thread_local std::vector<float> qr, s, o, panel;
            for (int64_t i = b; i < e; ++i) {
                const int64_t kvh = i / n_blocks, t0 = i % n_blocks * tokens, t1 = std::min(T, t0 + tokens);
                const int64_t R = (t1 - t0) * group;
                const int64_t k_lo = first_key(p.n_past + t0), n = p.n_past + t1 - k_lo;
                qr.resize(static_cast<size_t>(R * hd));
                s.resize(static_cast<size_t>(R * n));
                o.resize(static_cast<size_t>(R * hd));
                panel.resize(std::max(qk.panel_bytes(hd), pv.panel_bytes(n)) / sizeof(float));
                for (int64_t r = 0; r < R; ++r) {  // row r: token t0 + r / group, head kvh·group + r % group
                    const float* src = f32(q) + (t0 + r / group) * q.ne[0] + (kvh * group + r % group) * hd;
                    std::copy_n(src, hd, qr.data() + r * hd);
                }
                round_to_f16(qr.data(), R * hd);  // as llama.cpp's F16 K·q product rounds q
                const ActRows queries{qr.data(), static_cast<size_t>(hd) * sizeof(float)};
                for (int64_t k = 0; k < n; k += qk.rows) {
                    const int rows = static_cast<int>(std::min<int64_t>(qk.rows, n - k));
                    const auto* keys = static_cast<const uint16_t*>(k_cache.row(k_lo + k)) + kvh * hd;
                    qk.pack(hd, keys, k_cache.row_bytes(), rows, panel.data());
                    qk.run(hd, panel.data(), queries, R, s.data() + k, static_cast<size_t>(n), rows);
                }
                for (int64_t r = 0; r < R; ++r) {
                    const int64_t pos = p.n_past + t0 + r / group, lo = first_key(pos) - k_lo, hi = pos - k_lo + 1;
                    float* sr = s.data() + r * n;
                    float mx = -INFINITY;
                    for (int64_t j = lo; j < hi; ++j) {
                        float v = sr[j] * p.scale;
                        if (p.softcap > 0.f) v = p.softcap * std::tanh(v / p.softcap);
                        sr[j] = v;
                        mx = std::max(mx, v);
                    }
                    const float inv = static_cast<float>(1.0 / exp_shifted(sr + lo, hi - lo, mx));
                    std::fill(sr, sr + lo, 0.f);
                    for (int64_t j = lo; j < hi; ++j) sr[j] *= inv;
                    std::fill(sr + hi, sr + n, 0.f);
                }
                const ActRows probs{s.data(), static_cast<size_t>(n) * sizeof(float)};
                for (int64_t d = 0; d < hd; d += pv.rows) {
                    const int cols = static_cast<int>(std::min<int64_t>(pv.rows, hd - d));
                    const auto* values = static_cast<const uint16_t*>(v_cache.row(k_lo)) + kvh * hd + d;
                    pv.pack(n, values, v_cache.row_bytes(), cols, panel.data());
                    pv.run(n, panel.data(), probs, R, o.data() + d, static_cast<size_t>(hd), cols);
                }
                for (int64_t r = 0; r < R; ++r)
                    std::copy_n(o.data() + r * hd, hd, f32(out) + (t0 + r / group) * out.ne[0] + (kvh * group + r % group) * hd);
            }
        }, 1);
    }

    void add(const Tensor& a, const Tensor& b, Tensor& out) override {
        if (out.n_elements() != a.n_elements()) shape_error("add");
        if (b.n_elements() == a.n_elements()) {
            elementwise(out, [&](int64_t i) { return f32(a)[i] + f32(b)[i]; });
        } else if (b.n_rows() == 1 && b.ne[0] == a.ne[0]) {
            const int64_t n = a.ne[0];
            elementwise(out, [&](int64_t i) { return f32(a)[i] + f32(b)[i % n]; });
        } else {
            shape_error("add");
        }
    }

    void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) override {
        if (gate.n_elements() != up.n_elements() || out.n_elements() != gate.n_elements()) shape_error("swiglu");
        parallel_for(out.n_elements(), [&](int64_t b, int64_t e) {
            cpu::swiglu(f32(gate) + b, f32(up) + b, f32(out) + b, e - b);
        }, grain_for(8));
    }

    void geglu(const Tensor& gate, const Tensor& up, Tensor& out) override {
        if (gate.n_elements() != up.n_elements() || out.n_elements() != gate.n_elements()) shape_error("geglu");
        parallel_for(out.n_elements(), [&](int64_t b, int64_t e) {
            cpu::geglu(f32(gate) + b, f32(up) + b, f32(out) + b, e - b);
        }, grain_for(8));
    }

    void scale(const Tensor& x, float sc, Tensor& out) override {
        if (out.n_elements() != x.n_elements()) shape_error("scale");
        elementwise(out, [&](int64_t i) { return sc * f32(x)[i]; });
    }

    void softcap(const Tensor& x, float cap, Tensor& out) override {
        if (out.n_elements() != x.n_elements() || !(cap > 0.f)) shape_error("softcap");
        elementwise(out, [&](int64_t i) { return cap * std::tanh(f32(x)[i] / cap); });
    }

    void add_rows_scaled(const Tensor& src, const int32_t* ids, const float* weights, int64_t n, Tensor& dst) override {
        const int64_t E = src.ne[0];
        if (dst.ne[0] != E || src.n_rows() < n) shape_error("add_rows_scaled");
        for (int64_t i = 0; i < n; ++i)
            if (ids[i] < 0 || ids[i] >= dst.n_rows()) shape_error("add_rows_scaled");
        parallel_for(n, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
                float* d = f32(dst) + ids[i] * E;
                const float* r = f32(src) + i * E;
                for (int64_t j = 0; j < E; ++j) d[j] += weights[i] * r[j];
            }
        }, grain_for(2 * E));
    }

private:
    template <typename F>
    void elementwise(Tensor& out, F&& f) {
        float* o = f32(out);
        parallel_for(out.n_elements(), [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) o[i] = f(i);
        }, grain_for(8));
    }

    // The activations rounded the way llama.cpp rounds them before its dot products with weights of type
    // w: 8-bit blocks with their scales widened to float once here (not once per weight row), or, for the
    // packed float kernels (`as_float`), F16/BF16-rounded rows back in F32.
    ActRows prepare_activations(TensorType w, const Tensor& x, bool as_float) {
        const int64_t K = x.ne[0], T = x.n_rows();
        const TensorType at = activation_type(w);
        if (at == TensorType::F32) return {x.data, static_cast<size_t>(K) * 4};
        const size_t xrb = tensor::row_bytes(at, K);
        const bool to_float = as_float && (at == TensorType::F16 || at == TensorType::BF16);
        const bool widen = at == TensorType::Q8_0 || at == TensorType::Q8_1;
        const bool pair_sums = at == TensorType::Q8_K && !to_float;
        const tensor::TypeInfo& ai = tensor::info(at);
        const int64_t nb = widen ? K / ai.block_size : 0, nbk = pair_sums ? K / tensor::kQK_K : 0;
        xq_.resize(xrb * T);
        xf_.resize(to_float ? static_cast<size_t>(K * T) : 0);
        xd_.resize(static_cast<size_t>(nb * T));
        xs_.resize(static_cast<size_t>(nb * T));
        xsum_.resize(static_cast<size_t>(std::max(nb, 4 * nbk) * T));
        parallel_for(T, [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; ++t) {
                uint8_t* row = xq_.data() + t * xrb;
                quantize_activations(at, f32(x) + t * K, row, K);
                if (to_float) tensor::dequantize_row(at, row, xf_.data() + t * K, K);
                for (int64_t i = 0; i < nb; ++i) {
                    const uint8_t* blk = row + i * ai.block_bytes;
                    uint16_t d, sum;
                    std::memcpy(&d, blk, 2);      // every 32-element activation block starts with d (F16)
                    std::memcpy(&sum, blk + 2, 2);  // and, in Q8_1, s = d·Σq (F16)
                    xd_[t * nb + i] = tensor::fp16_to_f32(d);
                    xs_[t * nb + i] = at == TensorType::Q8_1 ? tensor::fp16_to_f32(sum) : 0.f;
                    if (at == TensorType::Q8_0) {  // Σq, and d·Σq for row kernels with a min
                        const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
                        int32_t s = 0;
                        for (int k = 0; k < tensor::kQK; ++k) s += q[k];
                        xsum_[t * nb + i] = s;
                        xs_[t * nb + i] = xd_[t * nb + i] * static_cast<float>(s);
                    }
                }
                for (int64_t i = 0; i < nbk; ++i) {  // |Σq| of 32 values ≤ 4064: 16 bits each
                    const auto& blk = reinterpret_cast<const tensor::block_q8_K*>(row)[i];
                    for (int p = 0; p < 4; ++p) {
                        const int16_t* bs = blk.bsums + 4 * p;
                        const auto lo = static_cast<uint16_t>(bs[0] + bs[1]), hi = static_cast<uint16_t>(bs[2] + bs[3]);
                        xsum_[static_cast<size_t>((t * nbk + i) * 4 + p)] = static_cast<int32_t>(lo | (uint32_t{hi} << 16));
                    }
                }
            }
        }, grain_for(3 * K));
        if (to_float) return {xf_.data(), static_cast<size_t>(K) * 4};
        if (pair_sums) return {xq_.data(), xrb, nullptr, nullptr, xsum_.data()};
        if (!widen) return {xq_.data(), xrb};
        return {xq_.data(), xrb, xd_.data(), xs_.data(), xsum_.data()};
    }

    void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
        pool_->parallel_for(n_threads_, n, fn, grain);
    }

    std::shared_ptr<ThreadPool> pool_;
    int n_threads_;
    std::shared_ptr<const RepackedWeights> repacked_;
    std::vector<uint8_t> xq_;
    std::vector<float> xf_, xd_, xs_;
    std::vector<int32_t> xsum_;
};

class CpuDevice final : public backend::Device {
public:
    std::string name() const override { return "cpu"; }
    std::string description() const override {
        return std::string("CPU, ") + std::to_string(std::thread::hardware_concurrency()) + " threads" +
               (cpu_features().avx2 ? ", AVX2" : ", scalar kernels");
    }
    std::unique_ptr<Buffer> alloc(size_t n) override { return std::make_unique<HostBuffer>(n); }
    size_t available_memory() const override { return host_memory_available(); }
    // The mapping is already host memory. Types with a repacked kernel also get a repacked copy, which
    // matmuls use in its place; a file mapping's pages are then dropped, so the weights stay resident once
    // (what still reads them — an embedding row, a long prompt on the packed panels — faults them back).
    // Without room for a copy, matmuls read the mapping.
    Tensor weight(const Tensor& host, bool file_mapping) override {
        const Repacked* kernels = repacked(host.type);
        // Only while the copy leaves at least as much memory free as it takes.
        if (kernels && host.n_rows() >= 8 && host.n_rows() % 8 == 0 && 2 * host.n_bytes() < available_memory()) {
            try {
                const size_t group_bytes = kernels->group_bytes(host.ne[0]), rows_bytes = 8 * host.row_bytes();
                auto copy = std::make_unique<HostBuffer>(host.n_rows() / 8 * group_bytes);
                int n_threads = ThreadPool::clamp(0);
                try {
                    pool_->reserve(n_threads);
                } catch (const Error&) {
                    n_threads = pool_->size();  // fewer threads, same result
                }
                pool_->parallel_for(n_threads, host.n_rows() / 8, [&](int64_t b, int64_t e) {
                    kernels->repack(static_cast<const uint8_t*>(host.data) + b * rows_bytes, host.row_bytes(), 8 * (e - b),
                                    host.ne[0], static_cast<uint8_t*>(copy->data()) + b * group_bytes);
                }, 4);
                repacked_->add(host, kernels, std::move(copy));
                if (file_mapping) drop_file_pages(host.data, host.n_bytes());
            } catch (const Error&) {
            }
        }
        return host;
    }
    bool supports(TensorType t) const override { return t != TensorType::Q8_1 && t != TensorType::Q8_K; }
    std::unique_ptr<backend::Stream> stream(const backend::StreamParams& p) override {
        const int n = ThreadPool::clamp(p.n_threads);
        if (p.n_threads > n)
            detail::log(LogLevel::Warn, "cpu: " + std::to_string(p.n_threads) + " threads asked; clamped to " +
                                            std::to_string(n) + " (4x the hardware threads)");
        pool_->reserve(n);
        return std::make_unique<CpuStream>(pool_, n, repacked_);
    }

private:
    std::shared_ptr<ThreadPool> pool_ = std::make_shared<ThreadPool>();
    std::shared_ptr<RepackedWeights> repacked_ = std::make_shared<RepackedWeights>();
};

}  // namespace

}  // namespace ember::cpu

namespace ember::backend {
// Called by the registry (see backends/CMakeLists.txt, which lists the built-in backends).
void register_cpu_backend() {
    register_backend({kApiVersion, "cpu", [] { return 1; }, [] { return std::make_unique<cpu::CpuDevice>(); }});
}
}  // namespace ember::backend
