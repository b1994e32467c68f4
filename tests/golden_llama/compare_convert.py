#!/usr/bin/env python3
"""ember-convert against llama.cpp's own convert_hf_to_gguf.py, key by key and tensor by tensor.

For each Hugging Face fixture folder (default: tests/data/hf/*) and each --outtype (default: f16 f32), runs
llama.cpp's converter and ember-convert on the same folder and compares the two GGUF files with gguf-py's
GGUFReader: every metadata key (name, type, value) and every tensor (name, type, shape, bytes). Differences
listed in EXPECTED below are printed as expected, with the reason; any other difference is unexpected and
makes the exit status 1. With --llama-bin, llama.cpp then runs ember's file and the converter's file
(llama-tokenize on a text, llama-completion greedy for a few tokens) and the outputs are compared.

Not a ctest: it needs torch (the converter imports it). Run with a Python that has torch, numpy,
safetensors, transformers/tokenizers and sentencepiece, and llama.cpp's gguf-py on PYTHONPATH, e.g.

  PYTHONPATH=~/.cache/ember-anchor/src/gguf-py /tmp/hfvenv/bin/python tests/golden_llama/compare_convert.py \
      --ember-convert build/examples/ember-convert --converter ~/.cache/ember-anchor/src/convert_hf_to_gguf.py \
      --llama-bin ~/.cache/ember-anchor/build/bin
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType

# Keys whose difference is understood, with why. A key listed here may be absent from one file or hold
# another value there.
EXPECTED = {
    # Provenance: the converter derives these from the folder's name, README and config ("Tiny Random ...",
    # a size label from the parameter count, the base model); ember writes general.name from config.json's
    # _name_or_path or the folder's name and leaves the rest out. They describe the file, not the model's
    # behaviour: no program reads them to run it.
    "general.name": "provenance",
    "general.basename": "provenance",
    "general.finetune": "provenance",
    "general.size_label": "provenance",
    "general.type": "provenance",
    "general.license": "provenance",
    "general.tags": "provenance",
    "general.languages": "provenance",
    "general.base_model.count": "provenance",
    # ember's own tokenizer keys: tokenizer.json behaviours llama.cpp's keys cannot say (ignore_merges as the
    # file gives it, Metaspace's prepend scheme, added tokens' lstrip/rstrip). ember needs them to tokenize
    # as the folder does; llama.cpp ignores keys it does not know.
    "tokenizer.ember.ignore_merges": "ember's tokenizer key",
    "tokenizer.ember.prepend_scheme": "ember's tokenizer key",
    "tokenizer.ember.lstrip": "ember's tokenizer key",
    "tokenizer.ember.rstrip": "ember's tokenizer key",
    # Written always by ember, from the post_processor template (false when there is none): llama.cpp's own
    # default for a "llama" (SentencePiece) vocabulary adds a BOS these tokenizer.json files do not add. The
    # converter writes them only where its parse of the template finds something; where both files have them
    # the values are equal.
    "tokenizer.ggml.add_bos_token": "explicit tokenizer flag",
    "tokenizer.ggml.add_eos_token": "explicit tokenizer flag",
    "tokenizer.ggml.add_sep_token": "explicit tokenizer flag",
    # SentencePiece-style tokenizer.json without tokenizer.model: the converter (LlamaHfVocab) writes the
    # placeholder score -1000 for every token, with which llama.cpp merges pieces in no particular order;
    # ember writes minus the rank of the first merge that makes each token (-1e9: none), so llama.cpp merges
    # in the order tokenizer.json's merges give (see the llama-tokenize counts).
    "tokenizer.ggml.scores": "merge ranks, not the converter's placeholder",
    # A layer pattern other than llama.cpp's default for the architecture (Gemma 3: one global layer in 6)
    # is written; llama.cpp reads it too. The converter writes none, so llama.cpp runs its file with 6.
    "gemma3.attention.sliding_window_pattern": "a pattern other than the default",
    "gemma2.attention.sliding_window_pattern": "a pattern other than the default",
}
EXPECTED_PREFIXES = ("general.base_model.",)


def value(field) -> tuple[list[str], object]:
    """A key's types and value; strings as bytes (token texts need not be UTF-8), arrays as lists."""
    types = [t.name for t in field.types]
    main = field.types[0]
    if main == GGUFValueType.STRING:
        return types, bytes(field.parts[field.data[0]])
    if main == GGUFValueType.ARRAY:
        if field.types[-1] == GGUFValueType.STRING:
            return types, [bytes(field.parts[i]) for i in field.data]
        if len(field.types) == 1:  # an empty array names no element type here
            return types, []
        if field.types[-1] == GGUFValueType.ARRAY:
            return types, "<nested array>"
        return types, [p.tolist()[0] if len(p) == 1 else p.tolist() for p in (field.parts[i] for i in field.data)]
    return types, field.parts[field.data[0]].tolist()[0]


def short(v, n: int = 80) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def describe_diff(a, b) -> str:
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"arrays of {len(a)} and {len(b)} elements"
        i = next(i for i in range(len(a)) if a[i] != b[i])
        n = sum(1 for x, y in zip(a, b) if x != y)
        return f"{n} of {len(a)} elements differ, first at [{i}]: {short(a[i], 40)} vs {short(b[i], 40)}"
    return f"{short(a)} vs {short(b)}"


def expected(key: str) -> str | None:
    if key in EXPECTED:
        return EXPECTED[key]
    return next(("provenance" for p in EXPECTED_PREFIXES if key.startswith(p)), None)


def compare(ref_path: Path, ember_path: Path) -> tuple[list[str], list[str], str]:
    """(unexpected differences, expected ones, a one-line summary)."""
    ref, emb = GGUFReader(ref_path), GGUFReader(ember_path)
    rk = {k: value(f) for k, f in ref.fields.items() if not k.startswith("GGUF.")}
    ek = {k: value(f) for k, f in emb.fields.items() if not k.startswith("GGUF.")}
    bad: list[str] = []
    ok: list[str] = []

    def note(key: str, text: str):
        why = expected(key)
        (ok if why else bad).append(f"key {key}: {text}" + (f"  [{why}]" if why else ""))

    for k in sorted(set(rk) | set(ek)):
        if k not in ek:
            note(k, f"only in the converter's file ({short(rk[k][1])})")
        elif k not in rk:
            note(k, f"only in ember's file ({short(ek[k][1])})")
        elif rk[k][0] != ek[k][0]:
            note(k, f"type {rk[k][0]} vs {ek[k][0]} ({short(rk[k][1])} vs {short(ek[k][1])})")
        elif rk[k][1] != ek[k][1]:
            note(k, describe_diff(rk[k][1], ek[k][1]))
    same_keys = sum(1 for k in rk if k in ek and rk[k] == ek[k])

    rt = {t.name: t for t in ref.tensors}
    et = {t.name: t for t in emb.tensors}
    same_tensors = 0
    for name in sorted(set(rt) | set(et)):
        if name not in et:
            bad.append(f"tensor {name}: only in the converter's file")
            continue
        if name not in rt:
            bad.append(f"tensor {name}: only in ember's file")
            continue
        a, b = rt[name], et[name]
        if a.tensor_type != b.tensor_type or list(a.shape) != list(b.shape):
            bad.append(f"tensor {name}: {a.tensor_type.name}{list(a.shape)} vs {b.tensor_type.name}{list(b.shape)}")
            continue
        ab, bb = np.asarray(a.data).tobytes(), np.asarray(b.data).tobytes()
        if ab != bb:
            text = f"tensor {name}: {a.tensor_type.name}{list(a.shape)} bytes differ"
            if a.tensor_type.name in ("F32", "F16"):
                x = np.asarray(a.data, dtype=np.float64).ravel()
                y = np.asarray(b.data, dtype=np.float64).ravel()
                text += f" ({int(np.sum(x != y))} of {x.size} values, max |diff| {np.max(np.abs(x - y)):.3g})"
            bad.append(text)
            continue
        same_tensors += 1
    order = "same order" if [t.name for t in ref.tensors] == [t.name for t in emb.tensors] else "other order"
    summary = (f"keys {same_keys} equal of {len(rk)} (ember {len(ek)}); tensors {same_tensors} equal of {len(rt)} "
               f"(ember {len(et)}, {order}); {len(bad)} unexpected, {len(ok)} expected differences")
    return bad, ok, summary


# Runs convert_hf_to_gguf.py (argv[1]) with its own arguments after it. Under COMPARE_CONVERT_ASSIST=1 it
# first patches the converter where it cannot read these tiny folders at all, each patch announcing itself
# on stderr when it acts:
#  - a byte-level BPE whose pre-tokenizer hash (chkhsh) is unknown to get_vocab_base_pre: the converter
#    raises NotImplementedError (a new model is registered with convert_hf_to_gguf_update.py); here the hash
#    is taken as the name in COMPARE_CONVERT_PRE, the one ember wrote, so the rest can be compared;
#  - Gemma 2 / Gemma 3 / Phi-3 without tokenizer.model (the fixtures have tokenizer.json only): the
#    converter wants the SentencePiece file; here it reads tokenizer.json as it does for Llama/Mistral
#    folders without one (_set_vocab_llama_hf).
BOOTSTRAP = r"""
import os, runpy, sys
from pathlib import Path
conv = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(conv)))
if os.environ.get("COMPARE_CONVERT_ASSIST") == "1":
    from conversion import base, gemma, phi
    pre = os.environ.get("COMPARE_CONVERT_PRE", "")
    get_pre = base.TextModel.get_vocab_base_pre
    def get_vocab_base_pre(self, tokenizer):
        try:
            return get_pre(self, tokenizer)
        except NotImplementedError:
            if not pre:
                raise
            print(f"ASSISTED: unknown BPE pre-tokenizer hash, registered as '{pre}'", file=sys.stderr)
            return pre
    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    def spm_from_json(self):
        print("ASSISTED: no tokenizer.model, tokenizer.json read as for Llama (_set_vocab_llama_hf)", file=sys.stderr)
        self._set_vocab_llama_hf()
    for cls in (gemma.Gemma2Model, gemma.Gemma3Model, phi.Phi3MiniModel):
        def set_vocab(self, _orig=cls.set_vocab, _gemma=cls is not phi.Phi3MiniModel):
            if (self.dir_model / "tokenizer.model").is_file():
                return _orig(self)
            spm_from_json(self)
            if _gemma:
                self.gguf_writer.add_add_space_prefix(False)
        cls.set_vocab = set_vocab
runpy.run_path(conv, run_name="__main__")
"""


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", **kw)


def renamed_copy(path: Path) -> Path:
    """A copy of a GGUF file whose general.name is overwritten by as many letters of "tinytiny..." (the same
    length, so nothing else moves)."""
    b = bytearray(path.read_bytes())
    key = len(b"general.name").to_bytes(8, "little") + b"general.name" + (8).to_bytes(4, "little")  # string type
    at = b.find(key)
    if at < 0:
        return path
    at += len(key)
    n = int.from_bytes(b[at:at + 8], "little")
    b[at + 8:at + 8 + n] = (b"tiny" * n)[:n]
    out = path.with_name(path.stem + "-renamed.gguf")
    out.write_bytes(b)
    return out


def server_greedy(bin_dir: Path, model: Path, prompt_ids: list[int], n: int, env: dict, extra: list[str]) -> list[int] | None:
    """llama.cpp's greedy continuation of `prompt_ids` (token ids, so no tokenizer is involved), as ids, from
    llama-server's /completion. (llama-completion prints through a log thread that may exit before the last
    tokens are out, so its text is not reliable here.)"""
    import socket
    import urllib.request
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = subprocess.Popen([str(bin_dir / "llama-server"), "-m", str(model), "--port", str(port), "--host", "127.0.0.1",
                            "-t", "2", "-c", "256", "-np", "1", "--no-warmup"] + extra,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            if srv.poll() is not None:
                return None
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        body = json.dumps({"prompt": prompt_ids, "n_predict": n, "temperature": 0, "top_k": 1, "seed": 1,
                           "ignore_eos": True, "return_tokens": True, "cache_prompt": False}).encode()
        req = urllib.request.Request(url + "/completion", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read()).get("tokens")
    except OSError:
        return None
    finally:
        srv.terminate()
        srv.wait(timeout=30)


def llama_checks(bin_dir: Path, files: dict[str, Path], golden: dict) -> tuple[list[str], dict]:
    """llama.cpp on each file: its token ids for the fixture's golden texts against transformers' (golden.json,
    no special tokens added), and its greedy tokens after the golden prompt's ids against transformers'
    greedy tokens. Returns (problems, results)."""
    env = dict(os.environ, LD_LIBRARY_PATH=str(bin_dir))
    problems, res = [], {}
    cases = [(c["text"], c["ids"]) for c in golden.get("tokenizer", []) if c["text"]]  # llama-tokenize refuses ""
    # phi3-longrope's golden (make_longrope.py) has a short and a long case: llama-server's context of 256 is
    # past the original 48, so the long one.
    run_case = golden if "prompt_ids" in golden else golden["long"]
    for label, path in files.items():
        good, failed, extra = 0, None, []
        # llama.cpp adjusts a vocabulary by general.name: a "phi3" model must have <|endoftext|> (it throws
        # unordered_map::at otherwise, whichever converter wrote the file; --override-kv does not reach that
        # code). The tiny Phi-3 has none: when a file does not load, a copy with general.name overwritten in
        # place is tried (llama.cpp's log thread may not print the message before it exits, so it is not read).
        def loads(p: Path) -> bool:
            return run([str(bin_dir / "llama-tokenize"), "-m", str(p), "-p", "a", "--ids"], env=env, timeout=120).returncode == 0
        if not loads(path) and loads(renamed := renamed_copy(path)):
            print(f"    llama.cpp loads the {label}'s file only under another general.name (a copy renamed 'tiny...' is run)")
            path = renamed
        for text, ids in cases:
            tok = run([str(bin_dir / "llama-tokenize"), "-m", str(path), "-p", text, "--ids", "--no-bos", "--log-disable"] + extra,
                      env=env, timeout=120)
            if tok.returncode != 0:
                failed = (tok.stderr.strip().splitlines() or ["?"])[-1]
                break
            got = tok.stdout.strip().splitlines()[-1] if tok.stdout.strip() else ""
            good += got.replace(" ", "") == str(ids).replace(" ", "")
        greedy = server_greedy(bin_dir, path, run_case["prompt_ids"], len(run_case["greedy"]), env, extra)
        if failed or greedy is None:
            problems.append(f"llama.cpp failed on the {label}'s file: {failed or 'llama-server gave no tokens'}")
            continue
        res[label] = (good, greedy)
        want = run_case["greedy"]
        print(f"    llama.cpp on the {label}'s file: {good} of {len(cases)} texts tokenized as transformers does; "
              f"greedy after the prompt ids: " + ("transformers' tokens" if greedy == want else f"{greedy}, transformers {want}"))
    # Some tokenizer.json behaviours have no llama.cpp key (Metaspace's prepend_scheme "first"; ember writes
    # its own tokenizer.ember.* keys for them): only a file that llama.cpp tokenizes worse than the
    # converter's is a problem.
    if "ember" in res and "converter" in res and res["ember"][0] < res["converter"][0]:
        problems.append("llama.cpp tokenizes fewer golden texts as transformers does from ember's file")
    if len(res) == 2 and res["ember"][1] != res["converter"][1]:
        problems.append("llama.cpp's greedy tokens differ between the converter's file and ember's")
    return problems, res


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ember-convert", default=str(root / "build/examples/ember-convert"))
    ap.add_argument("--converter", default=os.path.expanduser("~/.cache/ember-anchor/src/convert_hf_to_gguf.py"))
    ap.add_argument("--llama-bin", help="llama.cpp's bin folder (llama-tokenize, llama-completion): run both files")
    ap.add_argument("--outtype", nargs="+", default=["f16", "f32"])
    ap.add_argument("--no-assist", action="store_true", help="never patch the converter (see BOOTSTRAP)")
    ap.add_argument("--work", help="keep the files here (default: a temporary folder)")
    ap.add_argument("--verbose", action="store_true", help="also list the expected differences")
    ap.add_argument("fixtures", nargs="*", help="folders (default: tests/data/hf/*)")
    args = ap.parse_args()

    fixtures = [Path(f) for f in args.fixtures] or sorted(p for p in (root / "tests/data/hf").iterdir() if p.is_dir())
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="ember-compare-convert-"))
    work.mkdir(parents=True, exist_ok=True)
    failed = 0
    for fx in fixtures:
        golden = json.loads((fx / "golden.json").read_text()) if (fx / "golden.json").is_file() else {}
        for outtype in args.outtype:
            ref, emb = work / f"{fx.name}-{outtype}-converter.gguf", work / f"{fx.name}-{outtype}-ember.gguf"
            print(f"== {fx.name} --outtype {outtype}")
            ec = run([args.ember_convert, str(fx), str(emb), "--outtype", outtype, "-q"], timeout=600)
            if ec.returncode != 0:
                print("  ember-convert failed: " + ec.stderr.strip())
                failed += 1
                continue
            cmd = [sys.executable, "-c", BOOTSTRAP, args.converter, str(fx), "--outtype", outtype, "--outfile", str(ref)]
            conv = run(cmd, timeout=600)
            if conv.returncode != 0 and not args.no_assist:
                why = (conv.stderr.strip().splitlines() or ["?"])[-1]
                print(f"  convert_hf_to_gguf.py fails on this folder as it is: {short(why, 160)}")
                pre = GGUFReader(emb).fields.get("tokenizer.ggml.pre")
                env = dict(os.environ, COMPARE_CONVERT_ASSIST="1",
                           COMPARE_CONVERT_PRE=bytes(pre.parts[pre.data[0]]).decode() if pre else "")
                conv = run(cmd, timeout=600, env=env)
            if conv.returncode != 0:
                print("  convert_hf_to_gguf.py failed:\n    " + "\n    ".join(conv.stderr.strip().splitlines()[-8:]))
                failed += 1
                continue
            for line in conv.stderr.splitlines():  # what the converter says about the tokenizer, and the patches
                if line.startswith("ASSISTED") or "chkhsh:" in line or "tokenizer.ggml.pre" in line:
                    print("  converter: " + line.strip())
            bad, ok, summary = compare(ref, emb)
            print("  " + summary)
            for line in bad:
                print("    UNEXPECTED " + line)
            if args.verbose:
                for line in ok:
                    print("    expected   " + line)
            if args.llama_bin and golden:
                problems, _ = llama_checks(Path(args.llama_bin), {"converter": ref, "ember": emb}, golden)
                for p in problems:
                    print("    LLAMA.CPP " + p)
                bad += problems
            failed += bool(bad)
    print(f"{failed} of {len(fixtures) * len(args.outtype)} comparisons with unexpected differences; files in {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
