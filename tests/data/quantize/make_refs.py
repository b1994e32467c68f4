#!/usr/bin/env python3
"""Makes references.json: llama-quantize's outputs on the test models, as sha256 + size (the files are not
kept) and, for the K mixes, the per-tensor types read back from them.

    LLAMA_QUANTIZE=~/.cache/ember-anchor/build/bin/llama-quantize python3 tests/data/quantize/make_refs.py

LD_LIBRARY_PATH is set to llama-quantize's folder. EMBER_TESTDATA (default ../shared/testdata) holds arch/.
"""
import hashlib, json, os, struct, subprocess, tempfile

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.abspath(os.path.join(here, "..", "..", ".."))
lq = os.path.expanduser(os.environ.get("LLAMA_QUANTIZE", "~/.cache/ember-anchor/build/bin/llama-quantize"))
TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 10: "Q2_K", 11: "Q3_K",
              12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 30: "BF16"}


def tensor_types(data):
    """name -> type name, from a GGUF v3 header (stdlib only)."""
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        pos += n
        return data[pos - n:pos].decode()

    sizes = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            string()
        elif t == 9:
            et, n = take("I"), take("Q")
            for _ in range(n):
                value(et)
        else:
            take(sizes[t])

    assert data[:4] == b"GGUF"
    pos = 8
    n_tensors, n_kv = take("Q"), take("Q")
    for _ in range(n_kv):
        string()
        value(take("I"))
    types = {}
    for _ in range(n_tensors):
        name = string()
        n_dims = take("I")
        pos += 8 * n_dims
        types[name] = TYPE_NAMES[take("I")]
        take("Q")
    return types


testdata = os.environ.get("EMBER_TESTDATA", os.path.join(repo, "..", "shared", "testdata"))
inputs = {
    "models/stories260K.gguf": os.path.join(repo, "tests", "data", "models", "stories260K.gguf"),
    "arch/llama-gqa-f16.gguf": os.path.join(testdata, "arch", "llama-gqa-f16.gguf"),
    "arch/qwen3-f32.gguf": os.path.join(testdata, "arch", "qwen3-f32.gguf"),
    "arch/phi3-f16.gguf": os.path.join(testdata, "arch", "phi3-f16.gguf"),
    "arch/qwen3moe-f16.gguf": os.path.join(testdata, "arch", "qwen3moe-f16.gguf"),
}
hashed = ["Q8_0", "Q4_0", "Q6_K", "Q4_K_M"]
typed = ["Q4_K_M"]

env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(lq))
out = {"made_by": "llama-quantize IN OUT TYPE 1, llama.cpp c299a92c (llama-cpp-python 0.3.36's vendor/llama.cpp)",
       "cases": []}
with tempfile.TemporaryDirectory() as tmp:
    for rel, path in inputs.items():
        for t in hashed:
            dst = os.path.join(tmp, "out.gguf")
            subprocess.run([lq, path, dst, t, "1"], env=env, check=True, capture_output=True)
            data = open(dst, "rb").read()
            case = {"input": rel, "type": t, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            if t in typed:
                case["tensor_types"] = tensor_types(data)
            out["cases"].append(case)
with open(os.path.join(here, "references.json"), "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
