// ember — the Unicode facts the tokenizers need: UTF-8 <-> codepoints (lenient, as llama.cpp),
// codepoint categories from the generated UCD table, and GPT-2's byte <-> printable-char map.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember::detail::unicode {

// Category flags, the same layout as llama.cpp's unicode_cpt_flags (Cn -> Undefined, which is
// non-zero: only "no codepoint at all" has flags 0).
enum CptFlag : uint16_t {
    Undefined = 0x0001,
    Number = 0x0002,       // \p{N}
    Letter = 0x0004,       // \p{L}
    Separator = 0x0008,    // \p{Z}
    Mark = 0x0010,         // \p{M}
    Punctuation = 0x0020,  // \p{P}
    Symbol = 0x0040,       // \p{S}
    Control = 0x0080,      // \p{C}
    CategoryMask = 0x00FF,
    Whitespace = 0x0100,   // White_Space property (PropList.txt)
};

constexpr uint32_t kReplacement = 0xFFFD;
constexpr uint32_t kMaxCodepoint = 0x10FFFF;

uint16_t flags(uint32_t cpt) noexcept;  // 0x10FFFF < cpt -> Undefined
inline bool is_whitespace(uint32_t c) noexcept { return flags(c) & Whitespace; }
inline bool is_letter(uint32_t c) noexcept { return flags(c) & Letter; }
inline bool is_number(uint32_t c) noexcept { return flags(c) & Number; }

// Length of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes).
inline size_t utf8_len(unsigned char lead) noexcept {
    static constexpr uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[lead >> 4];
}

// Length of the character at s[off]: what its lead byte announces when that many bytes follow
// and all are continuation bytes, else 1. A malformed sequence thus never swallows the start of
// the next character (llama.cpp's lead-byte-only split lets "\xFF" take the following "▁", which
// SentencePiece byte fallback then hands back as a literal ▁ instead of a space).
inline size_t utf8_seq_len(std::string_view s, size_t off) noexcept {
    const size_t n = utf8_len(static_cast<unsigned char>(s[off]));
    if (n == 1 || off + n > s.size()) return 1;
    for (size_t k = 1; k < n; ++k) {
        if ((static_cast<unsigned char>(s[off + k]) & 0xC0) != 0x80) return 1;
    }
    return n;
}

// Decodes like llama.cpp's unicode_cpts_from_utf8: a malformed or truncated sequence yields
// U+FFFD and consumes one byte. (Additionally, sequences decoding above U+10FFFF yield U+FFFD
// where llama.cpp would later throw.)
std::vector<uint32_t> cpts_from_utf8(std::string_view s);
void append_utf8(std::string& out, uint32_t cpt);  // cpt must be <= 0x10FFFF

uint32_t to_lower(uint32_t cpt) noexcept;   // simple (1:1) lowercase mapping
uint32_t nfd_first(uint32_t cpt) noexcept;  // first codepoint of the canonical decomposition

// GPT-2 byte-level mapping: every byte gets a printable codepoint (as UTF-8).
const std::string& byte_to_utf8(uint8_t b) noexcept;
// Inverse: returns -1 when the codepoint is not one of the 256 mapped ones.
int utf8_cpt_to_byte(uint32_t cpt) noexcept;

}  // namespace ember::detail::unicode
