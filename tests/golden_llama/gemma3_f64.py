#!/usr/bin/env python3
"""An independent float64 forward pass of a Gemma 3 GGUF over a golden's prompt, to say at each prompt position
how far llama.cpp (the golden) and ember each land from exact arithmetic on the same dequantized weights.

    python3 tests/golden_llama/gemma3_f64.py MODEL.gguf GOLDEN.json [OUT.json]

OUT.json, when given, keeps the float64 logits at llama.cpp's top-10 ids of every prompt position (the
golden's layout), for tests/test_golden.cpp to hold ember to exact arithmetic as well as to llama.cpp.

Needs numpy and llama.cpp's gguf-py (PYTHONPATH=~/.cache/ember-anchor/src/gguf-py) for reading and
dequantizing; ember's Python binding (PYTHONPATH=bindings/python/src, EMBER_LIBRARY=a shared libember.so.1) for
ember's column, which is left out when it cannot be imported. Written from the architecture's description
(llama.cpp's gemma3 graph), not from ember's code: weights dequantized to float64, activations never
rounded, attention exact.
"""
import json
import math
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main() -> None:
    model_path, golden_path = sys.argv[1:3]
    g = json.load(open(golden_path))
    r = GGUFReader(model_path)

    def kv(name, default=None):
        f = r.fields.get(name)
        if f is None:
            return default
        v = f.parts[f.data[0]]
        return v.item() if v.size == 1 else v

    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    assert arch == "gemma3", arch
    n_embd = kv("gemma3.embedding_length")
    n_layer = kv("gemma3.block_count")
    n_head = kv("gemma3.attention.head_count")
    n_kv = kv("gemma3.attention.head_count_kv")
    hd = kv("gemma3.attention.key_length")
    eps = kv("gemma3.attention.layer_norm_rms_epsilon")
    base_global = kv("gemma3.rope.freq_base", 1e6)
    base_local = kv("gemma3.rope.freq_base_swa", 10000.0)
    window = kv("gemma3.attention.sliding_window")
    pattern = kv("gemma3.attention.sliding_window_pattern", 6)
    assert kv("gemma3.rope.scaling.type") is None, "RoPE scaling is not modelled here"

    tensors = {t.name: t for t in r.tensors}

    def w(name):  # (rows, cols) as ggml sees them: rows = ne[1]
        t = tensors[name]
        return dequantize(t.data, t.tensor_type).astype(np.float64).reshape(
            int(np.prod(t.shape[1:])) if len(t.shape) > 1 else 1, int(t.shape[0])).squeeze()

    tokens = g["prompt_tokens"]
    n = len(tokens)
    emb = w("token_embd.weight")
    x = emb[tokens] * math.sqrt(n_embd)

    def rms(v, weight):
        return v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + eps) * weight

    def rope(v, base):  # NeoX pairing (i, i + hd/2); v: (n, heads, hd)
        half = hd // 2
        inv = base ** (-np.arange(half, dtype=np.float64) * 2 / hd)
        ang = np.arange(n, dtype=np.float64)[:, None] * inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = v[..., :half], v[..., half:]
        return np.concatenate([a * c - b * s, a * s + b * c], axis=-1)

    def gelu(v):
        return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))

    pos = np.arange(n)
    for il in range(n_layer):
        p = f"blk.{il}."
        local = (il + 1) % pattern != 0
        h = rms(x, w(p + "attn_norm.weight"))
        q = (h @ w(p + "attn_q.weight").T).reshape(n, n_head, hd)
        k = (h @ w(p + "attn_k.weight").T).reshape(n, n_kv, hd)
        v = (h @ w(p + "attn_v.weight").T).reshape(n, n_kv, hd)
        q = rope(rms(q, w(p + "attn_q_norm.weight")), base_local if local else base_global)
        k = rope(rms(k, w(p + "attn_k_norm.weight")), base_local if local else base_global)
        allowed = pos[None, :] <= pos[:, None]
        if local:
            allowed &= (pos[:, None] - pos[None, :]) < window
        out = np.empty((n, n_head, hd))
        for hh in range(n_head):
            kh = hh // (n_head // n_kv)
            s = q[:, hh, :] @ k[:, kh, :].T / math.sqrt(hd)
            s = np.where(allowed, s, -np.inf)
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            out[:, hh, :] = s @ v[:, kh, :]
        a = out.reshape(n, n_head * hd) @ w(p + "attn_output.weight").T
        x = x + rms(a, w(p + "post_attention_norm.weight"))
        h = rms(x, w(p + "ffn_norm.weight"))
        f = (gelu(h @ w(p + "ffn_gate.weight").T) * (h @ w(p + "ffn_up.weight").T)) @ w(p + "ffn_down.weight").T
        x = x + rms(f, w(p + "post_ffw_norm.weight"))
    out_w = w("output.weight") if "output.weight" in tensors else emb
    logits = rms(x, w("output_norm.weight")) @ out_w.T

    ember_logits = None
    try:
        import ember
        m = ember.Model(model_path)
        s = ember.Session(m)
        s.prefill(tokens, all_logits=True)
        ember_logits = [np.asarray(s.logits_at(i), dtype=np.float64) for i in range(n)]
    except ImportError as e:
        print(f"(no ember column: {e})")

    print("pos  token   max|f64-llama.cpp|" + ("  max|f64-ember|  max|ember-llama.cpp|" if ember_logits else "")
          + "   (over llama.cpp's top-10 ids)")
    worst = [0.0, 0.0, 0.0]
    for i in range(n):
        ids = [pr[0] for pr in g["prompt_logits_top"][i]]
        ref = np.array([pr[1] for pr in g["prompt_logits_top"][i]])
        d_l = np.abs(logits[i, ids] - ref).max()
        row = f"{i:3d} {tokens[i]:7d}   {d_l:10.3f}"
        worst[0] = max(worst[0], d_l)
        if ember_logits:
            d_e = np.abs(logits[i, ids] - ember_logits[i][ids]).max()
            d_el = np.abs(ember_logits[i][ids] - ref).max()
            worst[1], worst[2] = max(worst[1], d_e), max(worst[2], d_el)
            row += f"          {d_e:10.3f}          {d_el:10.3f}"
        print(row + f"      (top logit {ref[0]:.2f})")
    if "last_logits" in g:
        last = np.array(g["last_logits"])
        print(f"last position, all {len(last)} logits: max|f64-llama.cpp| {np.abs(logits[-1] - last).max():.3f}"
              + (f", max|f64-ember| {np.abs(logits[-1] - ember_logits[-1]).max():.3f}" if ember_logits else ""))
    print("worst over positions: f64-llama.cpp %.3f" % worst[0]
          + (", f64-ember %.3f, ember-llama.cpp %.3f" % (worst[1], worst[2]) if ember_logits else ""))
    if len(sys.argv) > 3:
        top = [[[pr[0], round(float(logits[i, pr[0]]), 4)] for pr in g["prompt_logits_top"][i]] for i in range(n)]
        json.dump({"model": g["model"], "prompt": g["prompt"], "prompt_tokens": tokens, "reference": "float64",
                   "prompt_logits_top": top}, open(sys.argv[3], "w"))
    greedy = int(np.argmax(logits[-1]))
    print(f"float64 greedy next token {greedy}, llama.cpp's {g['greedy_tokens'][0]}")


if __name__ == "__main__":
    main()
