#!/usr/bin/env python3
"""LoRA adapters for the tiny folders of make_fixtures.py, and transformers+peft's logits with them (the golden).

For each entry of ADAPTERS: a PEFT LoRA (get_peft_model + save_pretrained: adapter_config.json and
adapter_model.safetensors) on the base folder, with random non-zero lora_B (PEFT starts B at zero, which
would make the adapter a no-op), saved as tests/data/hf/<name>/. Beside it, adapter.gguf: the same adapter
as llama.cpp's convert_lora_to_gguf.py writes it (f32), when that script can be run (it needs torch,
transformers and llama.cpp's gguf-py, found in the llama.cpp tree named by LLAMA_CPP, default
~/.cache/ember-anchor/src).

golden.json (the base folder's shape: prompt, prompt_ids, logits for every position, greedy) holds the
logits of the base model with the adapter merged (merge_and_unload) at scale 1.0. The llama adapter's
golden also holds "combined": llama-lora at scale 1.0 together with llama-lora2 at scale 0.5 (both
active in one PEFT model, the second's scaling set with set_scale), the sum of two deltas.

    /tmp/hfvenv/bin/pip install peft       # besides make_fixtures.py's packages
    /tmp/hfvenv/bin/python tests/data/hf/make_lora.py      # from the repository root

Made with torch 2.15.0, transformers 5.23.0, peft 0.21.2.
"""
import json
import os
import shutil
import subprocess
import sys

import torch
import transformers
import peft
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
LLAMA_CPP = os.environ.get("LLAMA_CPP", os.path.expanduser("~/.cache/ember-anchor/src"))
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# name: (base folder, rank, alpha, target modules, seed)
ADAPTERS = {
    "llama-lora": ("llama", 4, 8.0, ALL, 1),
    "llama-lora2": ("llama", 8, 4.0, ["q_proj", "v_proj", "down_proj"], 2),
    "qwen3-lora": ("qwen3", 4, 12.0, ALL, 3),
}


def base_model(base):
    return AutoModelForCausalLM.from_pretrained(os.path.join(HERE, base), dtype=torch.float32).eval()


def make(name):
    base, r, alpha, targets, seed = ADAPTERS[name]
    out = os.path.join(HERE, name)
    shutil.rmtree(out, ignore_errors=True)
    torch.manual_seed(seed)
    model = get_peft_model(base_model(base), LoraConfig(r=r, lora_alpha=alpha, target_modules=targets,
                                                        lora_dropout=0.0, bias="none", task_type="CAUSAL_LM"))
    with torch.no_grad():  # A keeps PEFT's init; B random and large enough that the adapter moves the logits
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.1)
    model.save_pretrained(out)
    cfg_path = os.path.join(out, "adapter_config.json")
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["base_model_name_or_path"] = base  # not the absolute path of the machine that made it
    cfg["target_modules"] = sorted(cfg["target_modules"])  # PEFT writes a set, in no fixed order
    with open(cfg_path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    for extra in ("README.md",):
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))
    gguf_note = to_gguf(base, out)

    # The golden reads the saved adapter back and merges it into the base weights.
    tok = AutoTokenizer.from_pretrained(os.path.join(HERE, base))
    with open(os.path.join(HERE, base, "golden.json"), encoding="utf-8") as f:
        base_golden = json.load(f)
    ids = base_golden["prompt_ids"]
    assert tok(base_golden["prompt"])["input_ids"] == ids
    merged = PeftModel.from_pretrained(base_model(base), out).merge_and_unload().eval()
    logits, gen = run(merged, ids)
    top2 = torch.topk(logits, 2, dim=-1).values
    golden = {
        "made_with": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "base": base,
        "scale": 1.0,
        "prompt": base_golden["prompt"],
        "prompt_ids": ids,
        "logits": rounded(logits),
        "min_top2_margin": float((top2[:, 0] - top2[:, 1]).min()),
        "greedy": gen,
        "max_diff_from_base": float((logits - torch.tensor(base_golden["logits"])).abs().max()),
        "gguf": gguf_note,
    }
    if name == "llama-lora":
        golden["combined"] = combined(base, out, os.path.join(HERE, "llama-lora2"), ids)
    with open(os.path.join(out, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))
    print(f"{name}: {size // 1024} KB, r {r}, alpha {alpha}, max |merged - base| {golden['max_diff_from_base']:.4f}, "
          f"greedy {gen}; gguf: {gguf_note}")


def run(model, ids):
    """Logits for every prompt position, and the greedy continuation by whole forward passes (argmax, lowest id
    on ties): generate() on a merged PEFT model gave a first step whose scores are not its forward pass's."""
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
        seq, gen = list(ids), []
        for _ in range(10):
            gen.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
            seq.append(gen[-1])
    return logits, gen


def rounded(logits):
    return [[round(float(x), 6) for x in row] for row in logits]


def combined(base, first, second, ids):
    """Both adapters active at once (first at 1.0, second at 0.5): PEFT sums their deltas."""
    model = PeftModel.from_pretrained(base_model(base), first, adapter_name="first")
    model.load_adapter(second, adapter_name="second")
    model.base_model.set_adapter(["first", "second"])
    from peft.tuners.lora import LoraLayer
    for m in model.modules():
        if isinstance(m, LoraLayer):
            m.set_scale("second", 0.5)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    return {"adapters": [[os.path.basename(first), 1.0], [os.path.basename(second), 0.5]], "logits": rounded(logits)}


def to_gguf(base, out):
    """llama.cpp's own converter, when it can run here: adapter.gguf beside the PEFT files."""
    script = os.path.join(LLAMA_CPP, "convert_lora_to_gguf.py")
    if not os.path.exists(script):
        return "not made: no " + script
    cmd = [sys.executable, script, "--base", os.path.join(HERE, base), "--outtype", "f32",
           "--outfile", os.path.join(out, "adapter.gguf"), out]
    env = dict(os.environ, PYTHONPATH=os.path.join(LLAMA_CPP, "gguf-py"))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit(f"convert_lora_to_gguf.py failed for {out}")
    return "convert_lora_to_gguf.py --outtype f32"


if __name__ == "__main__":
    names = sys.argv[1:] or ["llama-lora2", "llama-lora", "qwen3-lora"]  # lora2 first: llama-lora's golden uses it
    for n in names:
        make(n)
