#!/usr/bin/env python3
"""Tokenizer folders that ship only SentencePiece's tokenizer.model (no tokenizer.json), as many Llama 2,
Mistral and Gemma repositories do, with transformers' ids for a few hundred varied strings (golden.json).

spm/<kind>/ holds config.json, tokenizer.model and tokenizer_config.json, and llama.cpp-vocab.gguf, the
vocabulary llama.cpp's convert_hf_to_gguf.py --vocab-only writes for the folder ($LLAMA_CONVERTER). The models are trained exactly as
make_fixtures.py's spm_tokenizer() trains them, so each has the vocabulary of a fixture whose tokenizer.json
transformers exported from the same model: llama (legacy: false, Metaspace "first") ~ mixtral,
llama-legacy (legacy: true, "always") ~ phi3, gemma (no dummy prefix) ~ gemma2. golden.json records, per
string, transformers' ids from this folder (converted from tokenizer.model as AutoTokenizer does) with and
without special tokens, and sentencepiece's own ids. tests/test_sentencepiece.cpp needs none of these.

    /tmp/hfvenv/bin/python tests/data/hf/make_spm_fixtures.py      # from the repository root
Made with transformers 5.23.0, sentencepiece 0.2.3 and llama.cpp's converter from ~/.cache/ember-anchor.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

import sentencepiece as spm
import transformers
from transformers import AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_fixtures import CORPUS, PROMPT, TRICKY  # noqa: E402

CONVERTER = os.environ.get("LLAMA_CONVERTER", os.path.expanduser("~/.cache/ember-anchor/src/convert_hf_to_gguf.py"))

ALPHABET = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") + list(".,;:!?'\"-()[]{}#$%&*+=/<>@\\|~`^_") +
            [" ", " ", " ", "  ", "\t", "\n", "\r\n"] + list("éèàçüöñßøå") + list("日本語東京中文한국어") +
            ["🙂", "🚀", "👍🏽", "\u00a0", "\u2581", "\u200b", "Ω", "∑"])
WORDS = ["the", "The", " quick", "robot", "count", "Hello", "world", "tokens", "café", "naïve", "1234", "3.14",
         "don't", "we're", "Über", "日本語", "  ", "▁", "<s>", "</s>", "<unk>", "<0x41>"]


def strings(specials):
    rnd = random.Random(11)
    out = list(TRICKY) + [PROMPT] + [line for line in CORPUS.split("\n")[:7] if line]
    for _ in range(150):  # characters
        out.append("".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(1, 24))))
    for _ in range(150):  # words, spaces and the model's own symbols
        pool = WORDS + specials
        out.append("".join(rnd.choice(pool) + rnd.choice(["", " ", "", "\n"]) for _ in range(rnd.randint(1, 8))))
    return out


def make(kind):
    gemma = kind == "gemma"
    user = ["<start_of_turn>", "<end_of_turn>"] if gemma else ["<|user|>", "<|assistant|>", "<|end|>"]
    out = os.path.join(HERE, "spm", kind)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    with tempfile.TemporaryDirectory() as d:
        prefix = os.path.join(d, "spm")
        spm.SentencePieceTrainer.train(  # as make_fixtures.spm_tokenizer
            sentence_iterator=iter(CORPUS.split("\n")), model_prefix=prefix, model_type="bpe",
            vocab_size=400, byte_fallback=True, character_coverage=1.0, add_dummy_prefix=not gemma,
            remove_extra_whitespaces=False, split_digits=True, user_defined_symbols=user,
            unk_id=3 if gemma else 0, bos_id=2 if gemma else 1, eos_id=1 if gemma else 2, pad_id=0 if gemma else -1,
            minloglevel=2)
        shutil.copy(prefix + ".model", os.path.join(out, "tokenizer.model"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out, "tokenizer.model"))
    # tokenizer_config.json as a hub repository of that family carries it (no tokenizer.json beside).
    if gemma:
        tcfg = {"tokenizer_class": "GemmaTokenizer", "bos_token": sp.id_to_piece(sp.bos_id()),
                "eos_token": sp.id_to_piece(sp.eos_id()), "unk_token": sp.id_to_piece(sp.unk_id()),
                "pad_token": sp.id_to_piece(sp.pad_id()), "add_bos_token": True, "add_eos_token": False}
    else:
        tcfg = {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                "add_bos_token": True, "add_eos_token": False, "legacy": kind == "llama-legacy"}
    # The special token make_fixtures adds, recorded as transformers records added tokens.
    special = user if gemma else ["<|end|>"]
    tcfg["added_tokens_decoder"] = {
        str(sp.piece_to_id(t)): {"content": t, "lstrip": False, "rstrip": False, "normalized": False,
                                 "single_word": False, "special": True} for t in special}
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tcfg, f, ensure_ascii=False, indent=2)
    # The config of the fixture with this vocabulary (as a Llama for the llama kinds), which llama.cpp's
    # converter needs to pick its model class.
    with open(os.path.join(HERE, "gemma2" if gemma else "mixtral", "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    if not gemma:
        config.update(model_type="llama", architectures=["LlamaForCausalLM"])
        for k in ("num_local_experts", "num_experts_per_tok", "router_aux_loss_coef", "output_router_logits",
                  "router_jitter_noise"):
            config.pop(k, None)
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    # llama.cpp's own converter on this folder: the GGUF vocabulary it writes for it.
    subprocess.run([sys.executable, CONVERTER, out, "--vocab-only", "--outfile", os.path.join(out, "llama.cpp-vocab.gguf")],
                   check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(CONVERTER), "gguf-py")))

    tok = AutoTokenizer.from_pretrained(out)
    assert not os.path.exists(os.path.join(out, "tokenizer.json"))
    cases = []
    for s in strings(user):
        cases.append({"text": s, "ids": tok(s, add_special_tokens=False)["input_ids"],
                      "ids_special": tok(s)["input_ids"], "sentencepiece": sp.encode(s)})
    golden = {"made_with": {"transformers": transformers.__version__, "sentencepiece": spm.__version__},
              "tokenizer_class": type(tok).__name__, "cases": cases}
    with open(os.path.join(out, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    same = sum(c["ids"] == c["sentencepiece"] for c in cases)
    print(f"{kind}: vocab {sp.get_piece_size()}, {len(cases)} strings, sentencepiece's own ids equal in {same}")


if __name__ == "__main__":
    for k in sys.argv[1:] or ["llama", "llama-legacy", "gemma"]:
        make(k)
