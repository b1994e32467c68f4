// libFuzzer target: arbitrary bytes into Tokenizer::encode and arbitrary token ids into decode/piece,
// over the vocabularies in tests/data/vocab.
//
// Which vocabulary: EMBER_FUZZ_VOCAB names one (the part of ggml-vocab-NAME.gguf, e.g. llama-spm,
// gpt-2, starcoder, deepseek-coder, bert-bge) so each vocabulary type gets its own run and corpus;
// unset, the input's first byte picks one of llama-spm, gpt-2, starcoder, bert-bge.
//
//   mkdir -p fuzz-corpus/tokenizer-gpt-2
//   EMBER_FUZZ_VOCAB=gpt-2 build-fuzz/tests/fuzz/fuzz_tokenizer -max_len=4096 -max_total_time=600 \
//       fuzz-corpus/tokenizer-gpt-2 fuzz-corpus/tokenizer-seed
//
// (fuzz-corpus/tokenizer-seed: the cases of the vocab .inp files, one per file, each behind a flags
// byte; the recipe is at the end of this file.)
//
// Input: byte 0 = flags (bit 0: parse_special, bit 1: add_special, bit 2: ids taken raw instead of
// folded into [-4, n_vocab + 4), bits 6-7: vocabulary when EMBER_FUZZ_VOCAB is unset); the rest is
// the text to encode and, read as little-endian int32s, the ids to decode.
//
// Checks (a violation traps, so libFuzzer reports it):
//   - encode/decode/piece never crash or trip a sanitizer; encode throws nothing on any bytes;
//   - every id encode returns is in range;
//   - decode and piece throw ember::Error (InvalidArgument) exactly when an id is out of range;
//   - byte-level BPE and SPM: decode(encode(x)) == x for valid UTF-8 x (SPM: for any x without a
//     literal U+2581 '▁', which SentencePiece cannot tell from an escaped space; byte fallback
//     makes the rest exact) with add_special=false, parse_special=false. Byte-level BPE only
//     when every byte of x has its byte token: some vocabularies lack those of bytes their
//     training text never had (starcoder: C0 C1 F1 F5-FF), and such a byte is dropped, as in
//     llama.cpp and in HF tokenizers without an unk token.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ember/error.hpp"
#include "ember/tokenizer.hpp"
#include "tokenizer/unicode.hpp"
#include "tokenizer/vocab.hpp"

namespace {

using ember::Token;
using ember::Tokenizer;

struct Loaded {
    std::vector<Tokenizer> toks;
    std::vector<std::vector<bool>> has_byte;  // per tokenizer: byte b has a byte-level token
};

std::string vocab_path(const std::string& name) {
    return std::string(EMBER_TEST_DATA_DIR) + "/vocab/ggml-vocab-" + name + ".gguf";
}

const Loaded& loaded() {
    static const Loaded l = [] {
        Loaded r;
        std::vector<std::string> names;
        if (const char* one = std::getenv("EMBER_FUZZ_VOCAB"); one && *one) {
            names.emplace_back(one);
        } else {
            names = {"llama-spm", "gpt-2", "starcoder", "bert-bge"};
        }
        for (const auto& n : names) {
            try {
                r.toks.push_back(Tokenizer::from_gguf(vocab_path(n)));
                std::vector<bool> has(256);
                for (int b = 0; b < 256; ++b) {
                    has[static_cast<size_t>(b)] =
                        r.toks.back().vocab().find(ember::detail::unicode::byte_to_utf8(static_cast<uint8_t>(b))) >= 0;
                }
                r.has_byte.push_back(std::move(has));
            } catch (const std::exception& e) {
                std::fprintf(stderr, "fuzz_tokenizer: cannot load %s: %s \n", vocab_path(n).c_str(),
                             e.what());
                std::abort();
            }
        }
        return r;
    }();
    return l;
}

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= s.size()) return false;  // truncated sequence
        for (size_t k = 1; k <= n; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_tokenizer: %s\n", what);
    __builtin_trap();
}

bool all_bytes_known(const std::vector<bool>& has, std::string_view s) {
    for (char c : s) {
        if (!has[static_cast<unsigned char>(c)]) return false;
    }
    return true;
}

void check_encode(const Tokenizer& tok, const std::vector<bool>& has_byte, std::string_view text, bool add_special,
                  bool parse_special) {
    std::vector<Token> ids;
    try {
        ids = tok.encode(text, add_special, parse_special);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "encode threw: %s\n", e.what());
        fail("encode threw on fuzz input");
    }
    for (Token t : ids) {
        if (t < 0 || t >= tok.n_vocab()) fail("encode returned an id out of range");
    }
    std::string back;
    try {
        back = tok.decode(ids, parse_special);
    } catch (const std::exception&) {
        fail("decode threw on encode's own output");
    }
    if (add_special || parse_special) return;
    const bool byte_bpe = tok.model_name() == "gpt2";
    const bool spm = tok.model_name() == "llama";
    if ((byte_bpe && valid_utf8(text) && all_bytes_known(has_byte, text)) ||
        (spm && text.find("\xE2\x96\x81") == std::string_view::npos)) {
        if (back != text) fail("decode(encode(x)) != x");
    }
}

void check_ids(const Tokenizer& tok, const uint8_t* p, size_t n, bool raw) {
    std::vector<Token> ids;
    bool any_bad = false;
    const int64_t nv = tok.n_vocab();
    for (size_t i = 0; i + 4 <= n && ids.size() < 256; i += 4) {
        uint32_t u;
        std::memcpy(&u, p + i, 4);
        Token t;
        if (raw) {
            t = static_cast<Token>(u);
        } else {
            t = static_cast<Token>(static_cast<int64_t>(u % static_cast<uint64_t>(nv + 8)) - 4);
        }
        any_bad |= t < 0 || t >= nv;
        ids.push_back(t);
    }
    for (bool render : {false, true}) {
        try {
            const std::string s = tok.decode(ids, render);
            if (any_bad) fail("decode accepted an out-of-range id");
        } catch (const ember::Error& e) {
            if (!any_bad) fail("decode threw on valid ids");
            if (e.status() != ember::Status::InvalidArgument) fail("decode threw the wrong status");
        }
    }
    for (Token t : ids) {
        const bool bad = t < 0 || t >= nv;
        try {
            const std::string s = tok.piece(t, (t & 1) != 0);
            if (bad) fail("piece accepted an out-of-range id");
        } catch (const ember::Error&) {
            if (!bad) fail("piece threw on a valid id");
        }
        (void)tok.is_control(t);
        (void)tok.is_end_of_generation(t);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const Loaded& l = loaded();
    const uint8_t flags = data[0];
    const size_t which = (flags >> 6) % l.toks.size();
    const Tokenizer& tok = l.toks[which];
    const std::vector<bool>& has_byte = l.has_byte[which];
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    const bool parse_special = flags & 1;
    const bool add_special = flags & 2;
    check_encode(tok, has_byte, text, add_special, parse_special);
    if (add_special || parse_special) check_encode(tok, has_byte, text, false, false);  // every input gets the round trip
    check_ids(tok, data + 1, size - 1, (flags & 4) != 0);
    return 0;
}

// Seed corpus: every case of the .inp files, each written as <flags byte><text>, e.g. with Python:
//   import glob, os; d = "fuzz-corpus/tokenizer-seed"; os.makedirs(d, exist_ok=True)
//   for f in glob.glob("tests/data/vocab/*.inp"):
//       for i, c in enumerate(open(f, "rb").read().split(b"\n__ggml_vocab_test__\n")):
//           for fl in (0, 1): open(f"{d}/{os.path.basename(f)}-{i}-{fl}", "wb").write(bytes([fl]) + c)
