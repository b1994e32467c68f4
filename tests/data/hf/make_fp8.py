#!/usr/bin/env python3
"""Makes the FP8 fixtures llama-fp8/ and qwen3-fp8/ from the float32 fixtures beside them (make_fixtures.py):
every projection matrix stored as F8_E4M3 with float32 block scales in `<name>_scale_inv`, as the
"fine-grained FP8" checkpoints store them (W = q · scale_inv per block; quantization_config says so), with
16×16 blocks so that these small matrices hold several. Embeddings, lm_head and norms stay float32.

golden.json holds transformers' float32 logits and greedy tokens for the weights the FP8 file means (q ·
scale_inv, exactly), computed by the float32 model with those weights put in; the tokenizer cases are
the source fixture's.

    /tmp/hfvenv/bin/python tests/data/hf/make_fp8.py      # torch, transformers, safetensors
"""
import json
import os
import shutil

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCK = 16
FP8_MAX = 448.0  # the largest finite E4M3 value


def quantize(w):
    """Block-wise E4M3: each 16×16 block scaled so that its largest magnitude maps to 448."""
    rows, cols = w.shape
    br, bc = (rows + BLOCK - 1) // BLOCK, (cols + BLOCK - 1) // BLOCK
    scale = torch.empty(br, bc, dtype=torch.float32)
    q = torch.empty(rows, cols, dtype=torch.float8_e4m3fn)
    for i in range(br):
        for j in range(bc):
            blk = w[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK]
            s = max(float(blk.abs().max()), 1e-12) / FP8_MAX
            scale[i, j] = s
            q[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK] = (blk / s).to(torch.float8_e4m3fn)
    return q, scale


def dequantize(q, scale):
    full = scale.repeat_interleave(BLOCK, 0)[:q.shape[0]].repeat_interleave(BLOCK, 1)[:, :q.shape[1]]
    return q.to(torch.float32) * full


def make(src_name):
    src, out = os.path.join(HERE, src_name), os.path.join(HERE, src_name + "-fp8")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for f in os.listdir(src):
        if f not in ("model.safetensors", "config.json", "golden.json"):
            shutil.copy(os.path.join(src, f), out)
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                     "weight_block_size": [BLOCK, BLOCK]}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    weights = load_file(os.path.join(src, "model.safetensors"))
    stored, meant = {}, {}
    for name, w in weights.items():
        if w.dim() == 2 and name.endswith("proj.weight"):
            q, scale = quantize(w)
            stored[name], stored[name + "_scale_inv"] = q.contiguous(), scale.contiguous()
            meant[name] = dequantize(q, scale)
        else:
            stored[name] = w
            meant[name] = w
    save_file(stored, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})

    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    missing, unexpected = model.load_state_dict(meant, strict=False)
    assert not unexpected and all("lm_head" in m for m in missing), (missing, unexpected)
    with open(os.path.join(src, "golden.json")) as f:
        golden = json.load(f)
    ids = golden["prompt_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
        gen = model.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False, num_beams=1,
                             pad_token_id=config.get("pad_token_id") or 0, eos_token_id=None)[0][len(ids):].tolist()
    top2 = torch.topk(logits, 2, dim=-1).values
    golden.update({"logits": [[round(float(x), 6) for x in row] for row in logits],
                   "min_top2_margin": float((top2[:, 0] - top2[:, 1]).min()), "greedy": gen,
                   "fp8": {"block": BLOCK, "source": src_name}})
    with open(os.path.join(out, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))
    print(f"{src_name}-fp8: {size // 1024} KB, min top-2 margin {golden['min_top2_margin']:.4f}, greedy {gen}")


if __name__ == "__main__":
    for name in ("llama", "qwen3"):
        make(name)
