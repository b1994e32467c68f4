#include "arch/blocks.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ember/error.hpp"

namespace ember::arch {

namespace {

// A block's output h joins the residual x, through the post-norm when the architecture has one.
void add_residual(backend::Stream& s, const HParams& hp, const backend::Tensor& post_norm, backend::Tensor& h,
                  backend::Tensor& x) {
    if (post_norm.data) s.rms_norm(h, post_norm, hp.norm_eps, h);
    s.add(x, h, x);
}

// y += Σ scale·B·(A·x) for projection p of `layer`, over the adapters of each sequence's session (x, y: the
// step's rows). Neighbouring sequences with the same adapters share the ops; a step whose sessions have none
// runs none. The scale goes on A·x (r values a token) rather than on B·(A·x).
void add_lora(Workspace& ws, std::span<const SeqRows> seqs, int layer, Proj p, const backend::Tensor& x,
              const backend::Tensor& y) {
    auto& s = *ws.stream;
    for (size_t i = 0, j; i < seqs.size(); i = j) {
        const std::vector<ActiveLora>& loras = seqs[i].cache->loras;
        for (j = i + 1; j < seqs.size() && seqs[j].cache->loras == loras;) ++j;
        const int64_t first = seqs[i].first, count = seqs[j - 1].first + seqs[j - 1].count - first;
        for (const ActiveLora& a : loras) {
            const LoraPair& w = a.weights->layers[static_cast<size_t>(layer)][static_cast<size_t>(p)];
            if (!w.a.data) continue;
            const int64_t rank = w.a.ne[1], n_out = w.b.ne[1];
            if (rank > ws.lora_ax.ne[0] || n_out > ws.lora_width || count > ws.n_batch)
                throw Error(Status::Internal, "LoRA scratch too small for the step");
            backend::Tensor ax = ws.lora_ax, out = ws.lora_out;
            ax.ne = {rank, count, 1, 1};
            out.ne = {n_out, count, 1, 1};
            s.matmul(w.a, row_slice(x, first, count), ax);
            s.scale(ax, a.scale * w.scale, ax);
            s.matmul(w.b, ax, out);
            backend::Tensor ys = row_slice(y, first, count);
            s.add(ys, out, ys);
        }
    }
}

void gated(backend::Stream& s, const HParams& hp, backend::Tensor& g, const backend::Tensor& u) {
    if (hp.gelu_ffn) s.geglu(g, u, g);
    else s.swiglu(g, u, g);
}

// Mixture of experts over the normed rows h (n tokens): router → softmax → top-k → (renormalized)
// weights; each expert runs once over the tokens routed to it, and its weighted output is added to x.
void moe(Workspace& ws, const HParams& hp, const FfnWeights& w, const backend::Tensor& h, backend::Tensor& x,
         int64_t n) {
    auto& s = *ws.stream;
    const int n_exp = hp.n_expert, k = hp.n_expert_used;
    backend::Tensor logits = rows_of(ws.router, n);
    s.matmul(w.router, h, logits);
    std::vector<float> r(static_cast<size_t>(n * n_exp));
    s.read(logits, r.data(), r.size() * sizeof(float));  // routing is decided on the host

    std::vector<std::vector<int32_t>> tokens(static_cast<size_t>(n_exp));
    std::vector<std::vector<float>> weights(static_cast<size_t>(n_exp));
    std::vector<int> order(static_cast<size_t>(n_exp));
    for (int64_t t = 0; t < n; ++t) {
        float* p = r.data() + t * n_exp;
        const float mx = *std::max_element(p, p + n_exp);
        float sum = 0.f;
        for (int e = 0; e < n_exp; ++e) sum += p[e] = std::exp(p[e] - mx);
        for (int e = 0; e < n_exp; ++e) p[e] /= sum;
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
        float chosen = 0.f;
        for (int i = 0; i < k; ++i) chosen += p[order[i]];
        for (int i = 0; i < k; ++i) {
            const int e = order[i];
            tokens[e].push_back(static_cast<int32_t>(t));
            weights[e].push_back(hp.expert_weights_norm ? p[e] / chosen : p[e]);
        }
    }
    const int64_t ff = hp.n_ff_exp;
    for (int e = 0; e < n_exp; ++e) {
        const int64_t m = static_cast<int64_t>(tokens[e].size());
        if (m == 0) continue;
        backend::Tensor in = rows_of(ws.moe_rows, m), g = rows_of(ws.gate, m), u = rows_of(ws.up, m);
        g.ne[0] = u.ne[0] = ff;
        s.get_rows(h, tokens[e].data(), m, in);  // this expert's tokens, gathered
        s.matmul(row_slice(w.gate, e * ff, ff), in, g);
        s.matmul(row_slice(w.up, e * ff, ff), in, u);
        gated(s, hp, g, u);
        s.matmul(row_slice(w.down, e * hp.n_embd, hp.n_embd), g, in);
        s.add_rows_scaled(in, tokens[e].data(), weights[e].data(), m, x);
    }
}

}  // namespace

void attention_block(Workspace& ws, const HParams& hp, const AttentionWeights& w, int layer, int64_t n,
                     std::span<const SeqRows> seqs) {
    auto& s = *ws.stream;
    backend::Tensor x = rows_of(ws.x, n), h = rows_of(ws.h, n), q = rows_of(ws.q, n), k = rows_of(ws.k, n),
                    v = rows_of(ws.v, n), a = rows_of(ws.attn, n);
    const bool local = hp.is_swa(layer);
    s.rms_norm(x, w.norm, hp.norm_eps, h);
    s.matmul(w.wq, h, q);
    s.matmul(w.wk, h, k);
    s.matmul(w.wv, h, v);
    add_lora(ws, seqs, layer, Proj::Q, h, q);
    add_lora(ws, seqs, layer, Proj::K, h, k);
    add_lora(ws, seqs, layer, Proj::V, h, v);
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
    const backend::RopeParams& rope = local ? hp.rope_swa : hp.rope;
    backend::AttentionParams p;
    p.n_head = hp.n_head;
    p.n_head_kv = hp.n_head_kv;
    p.head_dim = hp.head_dim;
    p.scale = 1.0f / std::sqrt(static_cast<float>(hp.head_dim));
    p.softcap = hp.attn_softcap;
    p.window = local ? hp.swa_window : 0;
    std::vector<backend::SequenceAttention> att;
    att.reserve(seqs.size());
    for (const SeqRows& seq : seqs) {
        backend::Tensor qs = row_slice(q, seq.first, seq.count), ks = row_slice(k, seq.first, seq.count),
                        vs = row_slice(v, seq.first, seq.count);
        backend::RopeParams r = rope;
        if (hp.long_rope && seq.cache->n_ctx > hp.long_rope_ctx) r.freq_factors = hp.rope_long_factors;
        s.rope(qs, hp.head_dim, seq.n_past, r);
        s.rope(ks, hp.head_dim, seq.n_past, r);
        s.kv_store(ks, vs, seq.cache->k_cache[layer], seq.cache->v_cache[layer], seq.n_past);
        att.push_back({seq.first, seq.count, seq.n_past, &seq.cache->k_cache[layer], &seq.cache->v_cache[layer]});
    }
    s.attention(q, att.data(), att.size(), p, a);
    s.matmul(w.wo, a, h);
    add_lora(ws, seqs, layer, Proj::O, a, h);
    add_residual(s, hp, w.post_norm, h, x);
}

void ffn_block(Workspace& ws, const HParams& hp, const FfnWeights& w, int layer, int64_t n, std::span<const SeqRows> seqs) {
    auto& s = *ws.stream;
    backend::Tensor x = rows_of(ws.x, n), h = rows_of(ws.h, n), g = rows_of(ws.gate, n), u = rows_of(ws.up, n);
    s.rms_norm(x, w.norm, hp.norm_eps, h);
    if (w.router.data) {
        moe(ws, hp, w, h, x, n);
        return;
    }
    g.ne[0] = u.ne[0] = hp.n_ff;
    s.matmul(w.gate, h, g);
    s.matmul(w.up, h, u);
    add_lora(ws, seqs, layer, Proj::Gate, h, g);
    add_lora(ws, seqs, layer, Proj::Up, h, u);
    gated(s, hp, g, u);
    s.matmul(w.down, g, h);
    add_lora(ws, seqs, layer, Proj::Down, g, h);
    add_residual(s, hp, w.post_norm, h, x);
}

void output_block(Workspace& ws, const HParams& hp, const backend::Tensor& norm, const backend::Tensor& output,
                  int64_t n, std::span<const int32_t> rows) {
    auto& s = *ws.stream;
    const int64_t m = static_cast<int64_t>(rows.size());
    backend::Tensor h = rows_of(ws.h, m);
    bool consecutive = true;
    for (int64_t i = 1; i < m; ++i) consecutive = consecutive && rows[i] == rows[0] + i;
    if (consecutive) {  // a view of rows[0] .. rows[0] + m - 1: the last token, every token, a decode batch
        backend::Tensor x = rows_of(ws.x, n);
        x.data = ws.x.row(rows[0]);
        x.ne[1] = m;
        s.rms_norm(x, norm, hp.norm_eps, h);
    } else {  // the last rows of sequences of several tokens: gathered (ws.h is free after the last layer)
        s.get_rows(rows_of(ws.x, n), rows.data(), m, h);
        s.rms_norm(h, norm, hp.norm_eps, h);
    }
    ws.ensure_logit_rows(m);
    backend::Tensor logits = rows_of(ws.logits, m);
    s.matmul(output, h, logits);
    if (hp.final_softcap > 0.f) s.softcap(logits, hp.final_softcap, logits);
}

}  // namespace ember::arch
