#!/usr/bin/env python3
"""phi3-longrope: a tiny Phi-3 folder with LongRoPE (short/long frequency factors) and transformers' outputs.

config.json is written in the hub's Phi-3 form (transformers 4's "rope_scaling": {"type": "longrope",
"short_factor", "long_factor"}, original_max_position_embeddings at the top level), as Phi-3 mini 128k and
Phi-3.5 ship it; the golden is what transformers makes of that file after reading it back. transformers
turns by the long factors when a forward pass reaches past original_max_position_embeddings (48 here),
by the short ones otherwise, and multiplies cos/sin by sqrt(1 + ln(192/48) / ln(48)) either way. golden.json
holds two cases: "short" (the prompt and its 10 greedy tokens fit in 48 positions) and "long" (a prompt of
more than 48 tokens); ember reaches the same factors with a context of 48 and of 192. Logits are kept for
every 4th position and the last, to keep the file small. Run as make_fixtures.py says (same venv):

    /tmp/hfvenv/bin/python tests/data/hf/make_longrope.py       # from the repository root
"""
import json
import math
import os
import shutil

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from make_fixtures import HERE, PROMPT, ids_of, spm_tokenizer

NAME = "phi3-longrope"
ORIG, MAX_POS = 48, 192
HEAD_DIM = 16
LONG_PROMPT = PROMPT + " The model reads tokens, and the tokens become text again. Hello world!"
SEED = int(os.environ.get("SEED", 1))  # weights; one whose greedy steps are far from ties (see the margins printed)


def factors(seed, lo, hi):
    """n_rot/2 increasing factors in [lo, hi] (the low frequencies stretched most, as trained ones are)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.sort(torch.rand(HEAD_DIM // 2, generator=g)).values
    return [round(lo + (hi - lo) * float(v), 4) for v in x]


def run(ref, ids, n_greedy, pad):
    with torch.no_grad():
        logits = ref(torch.tensor([ids])).logits[0].float()
        out = ref.generate(torch.tensor([ids]), max_new_tokens=n_greedy, do_sample=False, num_beams=1,
                           pad_token_id=pad, eos_token_id=None, output_scores=True, return_dict_in_generate=True)
    gen = out.sequences[0][len(ids):].tolist()
    steps = torch.stack([s[0] for s in out.scores])
    top2 = torch.topk(steps, 2, dim=-1).values  # the greedy steps: what a tie would flip
    positions = list(range(0, len(ids) - 1, 4)) + [len(ids) - 1]
    return logits, {
        "prompt_ids": ids,
        "positions": positions,
        "logits": [[round(float(x), 5) for x in logits[p]] for p in positions],
        "min_greedy_margin": float((top2[:, 0] - top2[:, 1]).min()),
        "greedy": gen,
    }


def main():
    tok = spm_tokenizer("llama-legacy")
    kw = dict(hidden_size=2 * HEAD_DIM, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
              num_key_value_heads=2, max_position_embeddings=MAX_POS, rms_norm_eps=1e-5, sliding_window=None,
              vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=0,
              original_max_position_embeddings=ORIG,
              rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                               "short_factor": factors(1, 1.0, 1.6), "long_factor": factors(2, 1.0, 12.0)})
    config = AutoConfig.for_model("phi3", **kw)
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # as make_fixtures.py: weights spread enough for a stable greedy path
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.08)
            else:
                p.add_(torch.randn_like(p) * 0.1)
    model = model.eval()

    out = os.path.join(HERE, NAME)
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    # The hub's form of the same settings (what Phi-3 mini 128k's config.json says).
    cfg_path = os.path.join(out, "config.json")
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp["rope_theta"]
    cfg["original_max_position_embeddings"] = ORIG
    cfg["rope_scaling"] = {"type": "longrope", "short_factor": rp["short_factor"], "long_factor": rp["long_factor"]}
    with open(cfg_path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    for junk in ("chat_template.jinja",):
        if os.path.exists(os.path.join(out, junk)):
            os.remove(os.path.join(out, junk))

    tok = AutoTokenizer.from_pretrained(out)
    ref = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    rp = ref.config.rope_parameters
    assert rp["rope_type"] == "longrope" and rp["original_max_position_embeddings"] == ORIG, rp
    short_ids, long_ids = ids_of(tok, PROMPT, True), ids_of(tok, LONG_PROMPT, True)
    assert len(short_ids) + 10 <= ORIG < len(long_ids), (len(short_ids), len(long_ids))
    # Fresh models per case: transformers keeps whichever factors it last switched to.
    short_logits, short = run(ref, short_ids, 10, 0)
    ref = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    long_logits, long = run(ref, long_ids, 10, 0)
    # The two factor sets must matter: the long run's logits for the short prompt's positions differ.
    n = len(short_ids)
    moved = float((long_logits[:n] - short_logits).abs().max()) if long_ids[:n] == short_ids else float("nan")
    golden = {
        "made_with": {"torch": torch.__version__, "transformers": transformers.__version__},
        "original_max_position_embeddings": ORIG,
        "attn_factor": math.sqrt(1 + math.log(MAX_POS / ORIG) / math.log(ORIG)),
        "short": dict(short, n_ctx=ORIG),
        "long": dict(long, n_ctx=MAX_POS),
    }
    with open(os.path.join(out, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))
    print(f"{NAME}: {size // 1024} KB, prompts {len(short_ids)} / {len(long_ids)} tokens, margins "
          f"{short['min_greedy_margin']:.4f} / {long['min_greedy_margin']:.4f}, long vs short factors move the "
          f"shared positions' logits by {moved:.3f}, greedy {short['greedy']} / {long['greedy']}")


if __name__ == "__main__":
    main()
