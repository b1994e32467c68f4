#include "arch/blocks.hpp"

#include <cmath>

namespace ember::arch {

void attention_block(Workspace& ws, const HParams& hp, const AttentionWeights& w, int layer, int64_t n, int n_past) {
    auto& s = *ws.stream;
    backend::Tensor x = rows_of(ws.x, n), h = rows_of(ws.h, n), q = rows_of(ws.q, n), k = rows_of(ws.k, n),
                    v = rows_of(ws.v, n), a = rows_of(ws.attn, n);
    s.rms_norm(x, w.norm, hp.norm_eps, h);
    s.matmul(w.wq, h, q);
    s.matmul(w.wk, h, k);
    s.matmul(w.wv, h, v);
    if (w.bq.data) {
        s.add(q, w.bq, q);
        s.add(k, w.bk, k);
        s.add(v, w.bv, v);
    }
    if (w.q_norm.data) {  // per head: the rows viewed as [head_dim, heads · tokens]
        backend::Tensor qh = q, kh = k;
        qh.ne = {hp.head_dim, n * hp.n_head, 1, 1};
        kh.ne = {hp.head_dim, n * hp.n_head_kv, 1, 1};
        s.rms_norm(qh, w.q_norm, hp.norm_eps, qh);
        s.rms_norm(kh, w.k_norm, hp.norm_eps, kh);
    }
    s.rope(q, hp.head_dim, n_past, hp.rope);
    s.rope(k, hp.head_dim, n_past, hp.rope);
    s.kv_store(k, v, ws.k_cache[layer], ws.v_cache[layer], n_past);
    backend::AttentionParams p;
    p.n_head = hp.n_head;
    p.n_head_kv = hp.n_head_kv;
    p.head_dim = hp.head_dim;
    p.n_past = n_past;
    p.scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
    s.attention(q, ws.k_cache[layer], ws.v_cache[layer], p, a);
    s.matmul(w.wo, a, h);
    s.add(x, h, x);
}

void ffn_block(Workspace& ws, const HParams& hp, const FfnWeights& w, int64_t n) {
    auto& s = *ws.stream;
    backend::Tensor x = rows_of(ws.x, n), h = rows_of(ws.h, n), g = rows_of(ws.gate, n), u = rows_of(ws.up, n);
    s.rms_norm(x, w.norm, hp.norm_eps, h);
    s.matmul(w.gate, h, g);
    s.matmul(w.up, h, u);
    s.swiglu(g, u, g);
    s.matmul(w.down, g, h);
    s.add(x, h, x);
}

void output_block(Workspace& ws, const HParams& hp, const backend::Tensor& norm, const backend::Tensor& output,
                  int64_t n, bool all_logits) {
    auto& s = *ws.stream;
    const int64_t rows = all_logits ? n : 1;
    backend::Tensor x = rows_of(ws.x, n);
    if (!all_logits) {  // only the last token's row
        x.data = ws.x.row(n - 1);
        x.ne[1] = 1;
    }
    backend::Tensor h = rows_of(ws.h, rows);
    s.rms_norm(x, norm, hp.norm_eps, h);
    ws.ensure_logit_rows(rows);
    backend::Tensor logits = rows_of(ws.logits, rows);
    s.matmul(output, h, logits);
}

}  // namespace ember::arch
