#!/usr/bin/env python3
"""Writes the pre-tokenizer split goldens in this folder: <family>.json for each family below.

The splits come from the `regex` module (pip install regex), an engine independent of ember and of
llama.cpp, running each family's pattern list the way llama.cpp's unicode_regex_split does: each
pattern splits every piece the previous one produced, matches and the unmatched gaps between them
all become pieces. The patterns are the ones llama.cpp runs (src/llama-vocab.cpp), not always the
tokenizer.json originals; where they differ, the original's split is kept as "hf_pieces" for the
record (the test ignores it). Inputs are decoded the lenient way llama.cpp decodes them (a
malformed byte becomes U+FFFD and consumes one byte). When they were made, every case was also
checked against llama.cpp itself (unicode_regex_split from the llama-cpp-python 0.3.36 source
package, built on its own): all agree.

Corpus: the cases of llama.cpp's vocab tests (../vocab/*.inp) and the hard strings below. Every
codepoint in it must be assigned in this Python's Unicode database with a category the `regex`
module agrees on, so that a different Unicode version cannot move a split.

    python3 tests/data/pretokenize/make_goldens.py
"""
import glob
import json
import os
import unicodedata

import regex

HERE = os.path.dirname(os.path.abspath(__file__))

# Contractions as llama.cpp spells them ((?i:...) rewritten; also keeps 'ſ, whose case fold is 's', out).
C = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
CI = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
LLAMA3 = C + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# llama.cpp's std::regex cannot do \p{Lu} & co.: "upper" is a letter that is not a-z, "lower" one
# that is not A-Z (so every non-ASCII letter is both), and \p{M} is left out of the letter runs.
UP = r"((?=[\p{L}])([^a-z]))"
LO = r"((?=[\p{L}])([^A-Z]))"
HF_UP = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
HF_LO = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
# llama.cpp's unicode_cpt_is_han: fixed CJK ranges, not the Script=Han property.
HAN = (r"[\u4E00-\u9FFF\u3400-\u4DBF\U00020000-\U0002A6DF\U0002A700-\U0002B73F\U0002B740-\U0002B81F"
       r"\U0002B820-\U0002CEAF\U0002CEB0-\U0002EBEF\uF900-\uFAFF\U0002F800-\U0002FA1F]")
HF_HAN_NOT = r"&&[^\p{Han}]]"

FAMILIES = {
    # DeepSeek-V3's tokenizer.json split sequence, which llama.cpp runs as is.
    "deepseek-v3": {
        "pre": ["deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"],
        "patterns": [
            r"\p{N}{1,3}",
            r"[一-龥぀-ゟ゠-ヿ]+",
            r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
        ],
    },
    # GLM-4's pattern is Llama-3's.
    "chatglm4": {
        "pre": ["chatglm-bpe", "glm4", "glm5"],
        "patterns": [LLAMA3],
        "hf": [LLAMA3.replace(C, CI)],
    },
    "gpt-4o": {
        "pre": ["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"],
        "patterns": [
            rf"[^\r\n\p{{L}}\p{{N}}]?{UP}*{LO}+{C}?|[^\r\n\p{{L}}\p{{N}}]?{UP}+{LO}*{C}?"
            r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        ],
        "hf": [
            rf"[^\r\n\p{{L}}\p{{N}}]?{HF_UP}*{HF_LO}+{CI}?|[^\r\n\p{{L}}\p{{N}}]?{HF_UP}+{HF_LO}*{CI}?"
            r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        ],
    },
    # Mistral's Tekken: GPT-4o's without contractions, single digits.
    "tekken": {
        "pre": ["tekken"],
        "patterns": [
            rf"[^\r\n\p{{L}}\p{{N}}]?{UP}*{LO}+|[^\r\n\p{{L}}\p{{N}}]?{UP}+{LO}*"
            r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        ],
        "hf": [
            rf"[^\r\n\p{{L}}\p{{N}}]?{HF_UP}*{HF_LO}+|[^\r\n\p{{L}}\p{{N}}]?{HF_UP}+{HF_LO}*"
            r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        ],
    },
    # llama.cpp runs no regex for Kimi-K2 but a hand-written splitter (unicode.cpp,
    # unicode_regex_split_custom_kimi_k2); this is that splitter's behaviour as a pattern: Han runs,
    # then non-Han letter runs without case classes or \p{M}, with a contraction suffix.
    "kimi-k2": {
        "pre": ["kimi-k2"],
        "patterns": [
            rf"{HAN}+|[^\r\n\p{{L}}\p{{N}}]?(?:(?!{HAN})\p{{L}})+{C}?"
            r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        ],
        # tokenization_kimi.py
        "hf": [
            r"(?V1)[\p{Han}]+"
            rf"|[^\r\n\p{{L}}\p{{N}}]?[\p{{Lu}}\p{{Lt}}\p{{Lm}}\p{{Lo}}\p{{M}}{HF_HAN_NOT}*[\p{{Ll}}\p{{Lm}}\p{{Lo}}\p{{M}}{HF_HAN_NOT}+{CI}?"
            rf"|[^\r\n\p{{L}}\p{{N}}]?[\p{{Lu}}\p{{Lt}}\p{{Lm}}\p{{Lo}}\p{{M}}{HF_HAN_NOT}+[\p{{Ll}}\p{{Lm}}\p{{Lo}}\p{{M}}{HF_HAN_NOT}*{CI}?"
            r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
        ],
    },
}

OWN = [
    # contractions, case mixes
    "don't DON'T Don'T I'm I'M you're YOU'RE we've WE'VE he'll HE'LL she'd SHE'D it's IT'S",
    "'s 's 'S 'll 'LL' ''s x'sy 1's 'ſ a'ſ",
    "rock'n'roll O'Neil l'été HELLO'S Hello's café's ÉCOLE'S ÀB'S",
    "HelloWorld HELLOworld helloWORLD XMLHttpRequest iPhone McDonald",
    "ÉCOLE École ÀB aÀB ÀÉÎ àB ΑΒΓαβγ ПриветМир Σίσυφος İstanbul",
    "ǅemal ǈ ʰello ß ẞ ﬁne ǲ ÀǅB",
    # digits
    "1 12 123 1234 12345 123456 1234567",
    "a1b22c333d4444e55555 12abc abc12 3.14159 1,000,000 -42",
    "٣٤٥٦ ①②③ Ⅻ ½ ²³ 〇一二三 ١٢٣٤٥",
    # CJK, kana, Hangul
    "中文字符测试 日本語のテキストとカタカナ 漢字ひらがなカタカナ",
    "你好world Hello世界 中文abc123 中、文。",
    "㐀㐁 𠀀𠀁 龥龦鿕 豈更 ｶﾀｶﾅ ー゠ヿ ゟ",
    "안녕하세요 세계 한국어123 각 ㄱㄴ",
    # combining marks and scripts that use them
    "e\u0301t\u0301e\u0301 Cafe\u0301 A\u030A \u0301abc x\u0301\u0302\u0303y  \u0301",
    "नमस्ते दुनिया ภาษาไทย مَرْحَبًا שָׁלוֹם",
    # emoji
    "😀 😃😄 👍🏽 👨\u200d👩\u200d👧 🇫🇷 ❤️ 1️⃣ a😀b",
    # whitespace
    "  a  b\t\tc \n\n\n\r\n a\r\nb\r\r\n\n \r\n \t\n\t x \n y   x   ",
    "\u00a0x x\u3000y a\u2028b \u0085 \x0b\x0c \u200b \ufeffBOM \u2009\u2009x",
    " ", "\n", "\r\n", "\t", "   ", " \n \n", "a ", " a", "\n\nx",
    # punctuation, symbols, slashes
    "!!!\n ?\n/x a/b//c\n/ ...\r\n <|endoftext|>",
    "http://example.com/path?q=1&r=2 /usr/bin\n//",
    "```python\ndef f(x):\n    return x**2\n```\n",
    "~abc ~~x a~b $100 +5 ^_^ `code` |pipe| #tag @user",
    "«quoted» „Anführungszeichen“ —— 。、！？「」 ＠ＡＢＣ a.b,c;d:e 'q' \"d\"",
    ".abc .é -Été .abcé 'abc \"abc (abc) [x]{y}",
    # control characters
    "\x00 a\x01b \x1c\x1d\x1e\x1f \x7f x",
    # mixed
    "The quick brown fox's 2 jumps over 12345 lazy dogs!!! 🐶\n\nOK?",
]

# Invalid UTF-8 (decoded as llama.cpp does).
OWN_BYTES = [
    b"\xff", b"abc\x80def", b"\xe4\xbd", b"\xe4\xbdx", b"\xc0\x80A", b"caf\xc3", b"\xf0\x9f\x98 x",
    b"ab\xfe\xfecd 12\xff34",
]

# Unicode White_Space, which \s is in both engines.
WHITE_SPACE = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000} | set(range(0x2000, 0x200B))


def llama_decode(b: bytes) -> str:
    """llama.cpp's unicode_cpts_from_utf8: lead-byte lengths, continuation bytes checked, no other checks."""
    out, i = [], 0
    while i < len(b):
        c = b[i]
        n = 1 if c < 0x80 else 2 if c >> 5 == 6 else 3 if c >> 4 == 14 else 4 if c >> 3 == 30 else 0
        if n and i + n <= len(b) and all(b[i + k] >> 6 == 2 for k in range(1, n)):
            cpt = c if n == 1 else c & (0x3F >> (n - 1))
            for k in range(1, n):
                cpt = cpt << 6 | b[i + k] & 0x3F
            assert cpt <= 0x10FFFF and not 0xD800 <= cpt <= 0xDFFF, b
            out.append(chr(cpt))
            i += n
        else:
            out.append("\uFFFD")
            i += 1
    return "".join(out)


def check_codepoint(ch: str):
    cat = unicodedata.category(ch)
    assert cat != "Cn", f"U+{ord(ch):04X} is unassigned in Unicode {unicodedata.unidata_version}"
    for major in "LNPSM":
        assert bool(regex.match(rf"\p{{{major}}}", ch)) == (cat[0] == major), f"U+{ord(ch):04X}: \\p{{{major}}} disagrees"
    assert bool(regex.match(r"\s", ch)) == (ord(ch) in WHITE_SPACE), f"U+{ord(ch):04X}: \\s disagrees"


def split(text: str, patterns) -> list:
    pieces = [text]
    for pat in patterns:
        rx = regex.compile(pat)
        out = []
        for piece in pieces:
            at = 0
            for m in rx.finditer(piece):
                assert m.end() > m.start(), "empty match"
                if m.start() > at:
                    out.append(piece[at:m.start()])
                out.append(m.group())
                at = m.end()
            if at < len(piece):
                out.append(piece[at:])
        pieces = out
    return pieces


def corpus():
    seen, cases = set(), []
    for path in sorted(glob.glob(os.path.join(HERE, "..", "vocab", "*.inp"))):
        for case in open(path, "rb").read().split(b"\n__ggml_vocab_test__\n")[:-1]:
            if case not in seen:
                seen.add(case)
                cases.append(case)
    for case in [s.encode() for s in OWN] + OWN_BYTES:
        if case not in seen:
            seen.add(case)
            cases.append(case)
    return cases


def main():
    cases = corpus()
    for b in cases:
        for ch in llama_decode(b):
            check_codepoint(ch)
    for family, spec in FAMILIES.items():
        out_cases, n_hf = [], 0
        for b in cases:
            text = llama_decode(b)
            pieces = split(text, spec["patterns"])
            assert "".join(pieces) == text
            try:
                case = {"text": b.decode("utf-8")}
            except UnicodeDecodeError:
                case = {"hex": b.hex()}
            case["pieces"] = pieces
            hf = split(text, spec.get("hf", spec["patterns"]))
            if hf != pieces:
                case["hf_pieces"] = hf
                n_hf += 1
            out_cases.append(case)
        doc = {"family": family, "pre": spec["pre"], "patterns": spec["patterns"],
               "regex": regex.__version__, "unicode": unicodedata.unidata_version, "cases": out_cases}
        # One case a line, for readable diffs.
        head = json.dumps({k: v for k, v in doc.items() if k != "cases"}, ensure_ascii=False, indent=1)
        lines = ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in out_cases)
        with open(os.path.join(HERE, family + ".json"), "w", encoding="utf-8") as f:
            f.write(head[:-2] + ',\n "cases": [\n' + lines + "\n ]\n}\n")
        print(f"{family}: {len(out_cases)} cases, {n_hf} split differently by the tokenizer.json pattern")


if __name__ == "__main__":
    main()
