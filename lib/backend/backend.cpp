#include "backend/backend.hpp"

#include <algorithm>

namespace ember::backend {

bool attention_shapes_ok(const Tensor& q, const SequenceAttention* seqs, size_t n_seqs, const AttentionParams& p,
                         const Tensor& out) noexcept {
    const int64_t hd = p.head_dim;
    if (hd <= 0 || p.n_head <= 0 || p.n_head_kv <= 0 || p.n_head % p.n_head_kv || q.ne[0] != hd * p.n_head ||
        out.ne[0] != q.ne[0] || out.n_rows() != q.n_rows() || (n_seqs && !seqs))
        return false;
    for (size_t i = 0; i < n_seqs; ++i) {
        const SequenceAttention& sq = seqs[i];
        if (!sq.k_cache || !sq.v_cache || sq.k_cache->ne[0] != hd * p.n_head_kv || sq.v_cache->ne[0] != hd * p.n_head_kv ||
            sq.k_cache->type != TensorType::F16 || sq.v_cache->type != TensorType::F16 || sq.first < 0 ||
            sq.count < 0 || sq.first + sq.count > q.n_rows() || sq.n_past < 0 ||
            sq.n_past + sq.count > std::min(sq.k_cache->n_rows(), sq.v_cache->n_rows()))
            return false;
    }
    return true;
}

}  // namespace ember::backend
