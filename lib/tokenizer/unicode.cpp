#include "tokenizer/unicode.hpp"

#include <algorithm>
#include <array>
#include <memory>

namespace ember::detail::unicode {
namespace {

struct Run {
    uint32_t first;
    uint16_t flags;
};
struct Pair {
    uint32_t from;
    uint32_t to;
};

#include "tokenizer/unicode_tables.inc"

template <size_t N>
uint32_t lookup(const Pair (&table)[N], uint32_t cpt) {
    const Pair* it = std::lower_bound(table, table + N, cpt, [](const Pair& p, uint32_t c) { return p.from < c; });
    return (it != table + N && it->from == cpt) ? it->to : cpt;
}

// Expanded once: one uint16 per codepoint (2.2 MB), the same trade llama.cpp makes.
const uint16_t* flag_table() {
    static const std::unique_ptr<uint16_t[]> table = [] {
        auto t = std::make_unique<uint16_t[]>(kMaxCodepoint + 1);
        constexpr size_t n = sizeof(kRuns) / sizeof(kRuns[0]);
        for (size_t i = 0; i < n; ++i) {
            const uint32_t end = i + 1 < n ? kRuns[i + 1].first : kMaxCodepoint + 1;
            for (uint32_t c = kRuns[i].first; c < end; ++c) t[c] = kRuns[i].flags;
        }
        return t;
    }();
    return table.get();
}

struct ByteMap {
    std::array<std::string, 256> to_utf8;
    std::array<int16_t, 324> from_cpt;  // mapped codepoints are all < 256 + 68
    ByteMap() {
        from_cpt.fill(-1);
        int n = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            const uint32_t cpt = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
            append_utf8(to_utf8[b], cpt);
            from_cpt[cpt] = static_cast<int16_t>(b);
        }
    }
};

const ByteMap& byte_map() {
    static const ByteMap m;
    return m;
}

}  // namespace

uint16_t flags(uint32_t cpt) noexcept {
    if (cpt > kMaxCodepoint) return Undefined;
    return flag_table()[cpt];
}

std::vector<uint32_t> cpts_from_utf8(std::string_view s) {
    std::vector<uint32_t> out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    auto cont = [&](size_t k) { return i + k < n && (p[i + k] & 0xC0) == 0x80; };
    while (i < n) {
        const unsigned char c = p[i];
        if (c < 0x80) {
            out.push_back(c);
            i += 1;
        } else if ((c & 0xE0) == 0xC0 && cont(1)) {
            out.push_back((uint32_t(c & 0x1F) << 6) | (p[i + 1] & 0x3F));
            i += 2;
        } else if ((c & 0xF0) == 0xE0 && cont(1) && cont(2)) {
            out.push_back((uint32_t(c & 0x0F) << 12) | (uint32_t(p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F));
            i += 3;
        } else if ((c & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
            const uint32_t cpt = (uint32_t(c & 0x07) << 18) | (uint32_t(p[i + 1] & 0x3F) << 12) |
                                 (uint32_t(p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
            if (cpt > kMaxCodepoint) {
                out.push_back(kReplacement);
                i += 1;
            } else {
                out.push_back(cpt);
                i += 4;
            }
        } else {
            out.push_back(kReplacement);
            i += 1;
        }
    }
    return out;
}

void append_utf8(std::string& out, uint32_t cpt) {
    if (cpt <= 0x7F) {
        out.push_back(static_cast<char>(cpt));
    } else if (cpt <= 0x7FF) {
        out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else if (cpt <= 0xFFFF) {
        out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | ((cpt >> 18) & 0x07)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
    }
}

uint32_t to_lower(uint32_t cpt) noexcept { return lookup(kLower, cpt); }

uint32_t nfd_first(uint32_t cpt) noexcept {
    if (cpt >= 0xAC00 && cpt <= 0xD7A3) return 0x1100 + (cpt - 0xAC00) / 588;  // Hangul: leading consonant
    return lookup(kNfdFirst, cpt);
}

const std::string& byte_to_utf8(uint8_t b) noexcept { return byte_map().to_utf8[b]; }

int utf8_cpt_to_byte(uint32_t cpt) noexcept {
    if (cpt >= byte_map().from_cpt.size()) return -1;
    return byte_map().from_cpt[cpt];
}

}  // namespace ember::detail::unicode
