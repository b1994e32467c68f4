#!/usr/bin/env python3
"""Tiny random-weight Hugging Face folders and transformers' own outputs for them (the golden).

Each folder is what `save_pretrained` writes (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json, generation_config.json) for a small config of one architecture, with a real
tokenizer built here from a small vocabulary; golden.json beside it holds transformers' float32 logits
for every position of a fixed prompt, its greedy continuation, and the tokenizer's ids for a handful of
tricky strings. The C++ test (tests/test_hf_folder.cpp) needs none of these libraries.

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors tokenizers \
        sentencepiece protobuf
    /tmp/hfvenv/bin/python tests/data/hf/make_fixtures.py [NAME...]      # from the repository root

Made with torch 2.15.0, transformers 5.23.0, tokenizers 0.23.3, sentencepiece 0.2.3.
"""
import io
import json
import os
import shutil
import sys
import tempfile

import torch
import sentencepiece as spm
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import SentencePieceExtractor
from transformers.tokenization_utils_base import generate_merges

HERE = os.path.dirname(os.path.abspath(__file__))

CORPUS = """The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step.
Once upon a time there was a little robot who liked to count: 1, 2, 3, 10, 42, 100, 2024, 31415.
She said: "Don't stop!" and he replied, 'I won't, I'll keep going.' We're here, they've gone, you'd see.
Il était une fois un café très célèbre à Paris; naïve façade, crème brûlée. Über grüne Wiesen.
日本語の文章も少しだけ。東京は大きい。 Emoji: 🙂🚀 and symbols #$%&*+-=/<>[]{}()
def main():\n    return 0\n\n\tindented with a tab\nmultiple   spaces    here
The model reads tokens, and the tokens become text again. Hello world! hello World? HELLO.
""" * 4

PROMPT = "Once upon a time, the quick robot counted 12345 tokens."
TRICKY = [
    "Hello world",
    " Hello",
    "  two leading spaces",
    "multiple   spaces\tand\ttabs\n\nnew lines\n",
    "digits 1234567 and 3.14159 and 2024-01-01",
    "café naïve Über 日本語 🙂🚀",
    "Don't stop, I'll go, we're here",
    "",
    " ",
    "\n",
]

# Llama 3's and Qwen 2's pre-tokenizer patterns, as their tokenizer.json files spell them.
LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
             r"\s*[\r\n]+|\s+(?!\S)|\s+")

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def byte_level_tokenizer(pattern, specials, bos, eos, ignore_merges, vocab_size=420):
    """A byte-level BPE (GPT-2 bytes) split by `pattern`, trained on CORPUS; `bos` is added when not None."""
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if pattern is None:  # GPT-2: ByteLevel's own regex
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS], trainer=trainer)
    if bos is not None:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=eos)


def spm_tokenizer(kind, vocab_size=400):
    """A SentencePiece BPE model with byte fallback trained on CORPUS, exported as tokenizers does it.
    kind: 'llama' (Metaspace, prepend 'first': transformers 5's LlamaTokenizer), 'llama-legacy' (the
    Prepend + Replace normalizer that Llama 2 / Phi-3 hub files carry), 'gemma' (no dummy prefix)."""
    gemma = kind == "gemma"
    with tempfile.TemporaryDirectory() as d:
        prefix = os.path.join(d, "spm")
        user = ["<start_of_turn>", "<end_of_turn>"] if gemma else ["<|user|>", "<|assistant|>", "<|end|>"]
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(CORPUS.split("\n")), model_prefix=prefix, model_type="bpe",
            vocab_size=vocab_size, byte_fallback=True, character_coverage=1.0, add_dummy_prefix=not gemma,
            remove_extra_whitespaces=False, split_digits=True, user_defined_symbols=user,
            unk_id=3 if gemma else 0, bos_id=2 if gemma else 1, eos_id=1 if gemma else 2, pad_id=0 if gemma else -1,
            minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = generate_merges(vocab, {p: -i for p, i in vocab.items()})
    if gemma:
        t = transformers.GemmaTokenizer(vocab=vocab, merges=merges)
        t.add_special_tokens({"additional_special_tokens": user})
        return t
    t = transformers.LlamaTokenizer(vocab=vocab, merges=merges, legacy=kind == "llama-legacy")
    t.add_special_tokens({"additional_special_tokens": ["<|end|>"]})
    if kind == "llama-legacy":  # the normalizer form of Llama 2's tokenizer.json
        b = t.backend_tokenizer
        b.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        b.pre_tokenizer = None
    return t


def ids_of(tok, text, special):
    return tok(text, add_special_tokens=special)["input_ids"]


# name: (model_type, config overrides, tokenizer maker, chat template, dtype)
COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5)


def tok_llama3():
    return byte_level_tokenizer(LLAMA3_PAT, ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
                                "<|begin_of_text|>", "<|end_of_text|>", True)


def tok_qwen():
    return byte_level_tokenizer(QWEN2_PAT, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|im_end|>", False)


FIXTURES = {
    # Llama 3.1's frequency factors (original context 64: head_dim 16's eight frequencies fall in all three
    # bands), and merges in the older "a b" string form.
    "llama": ("llama", dict(rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                                             "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                             "original_max_position_embeddings": 64}), tok_llama3,
              "{{ bos_token }}{% for m in messages %}{{ m['content'] }}<|eot_id|>{% endfor %}", torch.float32),
    "qwen2": ("qwen2", dict(tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
              tok_qwen, CHATML, torch.float32),
    "qwen3": ("qwen3", dict(head_dim=32, rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
              tok_qwen, CHATML, torch.float32),
    "qwen3-bf16": ("qwen3", dict(head_dim=32, tie_word_embeddings=True), tok_qwen, CHATML, torch.bfloat16),
    "qwen3_moe": ("qwen3_moe", dict(head_dim=16, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                                    decoder_sparse_step=1, mlp_only_layers=[], norm_topk_prob=True),
                  tok_qwen, CHATML, torch.float32),
    "mixtral": ("mixtral", dict(num_local_experts=4, num_experts_per_tok=2, intermediate_size=48, sliding_window=None),
                lambda: spm_tokenizer("llama"), None, torch.float32),
    "phi3": ("phi3", dict(num_key_value_heads=4, sliding_window=None, pad_token_id=0),
             lambda: spm_tokenizer("llama-legacy"),
             "{% for m in messages %}<|user|>\n{{ m['content'] }}<|end|>\n{% endfor %}<|assistant|>\n", torch.float32),
    "gemma2": ("gemma2", dict(head_dim=16, query_pre_attn_scalar=16, sliding_window=4, attn_logit_softcapping=50.0,
                              final_logit_softcapping=30.0, pad_token_id=0, eos_token_id=1, bos_token_id=2),
               lambda: spm_tokenizer("gemma"), None, torch.float32),
    "gemma3": ("gemma3_text", dict(head_dim=16, query_pre_attn_scalar=16, sliding_window=4, sliding_window_pattern=2,
                                   pad_token_id=0, eos_token_id=1, bos_token_id=2,
                                   rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                                                    "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}}),
               lambda: spm_tokenizer("gemma"), None, torch.float32),
}


def make(name):
    model_type, overrides, make_tok, template, dtype = FIXTURES[name]
    tok = make_tok()
    if template:
        tok.chat_template = template
    kw = dict(COMMON)
    kw.update(overrides)
    kw["vocab_size"] = len(tok)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if key not in overrides and getattr(tok, key, None) is not None:
            kw[key] = getattr(tok, key)
    config = AutoConfig.for_model(model_type, **kw)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # larger weights than the init's 0.02: logits spread enough for a stable greedy path
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.08)
            else:  # norms (1, or Gemma's 0) and biases (0) moved off their init, so a wrong offset shows
                p.add_(torch.randn_like(p) * 0.1)
    model = model.to(dtype).eval()

    out = os.path.join(HERE, name)
    shutil.rmtree(out, ignore_errors=True)
    # qwen2 in two shards with model.safetensors.index.json, as large models come
    model.save_pretrained(out, safe_serialization=True, max_shard_size="300KB" if name == "qwen2" else "5GB")
    tok.save_pretrained(out)
    tj = os.path.join(out, "tokenizer.json")
    with open(tj, encoding="utf-8") as f:
        tok_json = json.load(f)
    if name == "llama":  # the "a b" form older tokenizers files use
        tok_json["model"]["merges"] = [" ".join(m) for m in tok_json["model"]["merges"]]
        with open(tj, "w", encoding="utf-8") as f:
            json.dump(tok_json, f, ensure_ascii=False, indent=2)
    # The golden reads the saved folder back: what is on disk is what is compared. The tokenizers library
    # alone (the file's own pipeline) and transformers' AutoTokenizer must agree on it.
    tok = AutoTokenizer.from_pretrained(out)
    raw = Tokenizer.from_file(tj)
    for t in TRICKY + special_cases(tok) + [PROMPT]:
        assert raw.encode(t, add_special_tokens=False).ids == ids_of(tok, t, False), (name, t)
        assert raw.encode(t).ids == ids_of(tok, t, True), (name, t)

    # The golden runs in float32 on exactly the saved weights (a bf16 folder upcast): it is the math of the
    # file, not of bf16 activations.
    ref = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = ids_of(tok, PROMPT, True)
    with torch.no_grad():
        logits = ref(torch.tensor([ids])).logits[0].float()
        gen = ref.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False, num_beams=1,
                           pad_token_id=config.pad_token_id if config.pad_token_id is not None else 0,
                           eos_token_id=None)[0][len(ids):].tolist()
    top2 = torch.topk(logits, 2, dim=-1).values
    golden = {
        "made_with": {"torch": torch.__version__, "transformers": transformers.__version__},
        "prompt": PROMPT,
        "prompt_ids": ids,
        "logits": [[round(float(x), 6) for x in row] for row in logits],
        "min_top2_margin": float((top2[:, 0] - top2[:, 1]).min()),
        "greedy": gen,
        "tokenizer": [{"text": t, "ids": ids_of(tok, t, False), "ids_special": ids_of(tok, t, True)}
                      for t in TRICKY + special_cases(tok)],
    }
    with open(os.path.join(out, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))
    print(f"{name}: {size // 1024} KB, vocab {len(tok)}, prompt {len(ids)} tokens, "
          f"min top-2 margin {golden['min_top2_margin']:.4f}, greedy {gen}")


def special_cases(tok):
    """Strings with the tokenizer's own special tokens inside (split off as HF does)."""
    sp = sorted(tok.get_added_vocab(), key=lambda t: tok.get_added_vocab()[t])[-3:]
    return [f"{sp[0]}Hello{sp[-1]} world", f"a {sp[-1]}  b", f"{sp[-1]}\n{sp[0]} x"] if sp else []


if __name__ == "__main__":
    names = sys.argv[1:] or list(FIXTURES)
    for n in names:
        make(n)
