#include "tokenizer/pretokenize.hpp"

#include <utility>

#include "tokenizer/unicode.hpp"

namespace ember::detail {
namespace {

namespace uc = unicode;

// A segmentation of the codepoint array: consecutive lengths that sum to its size.
using Offsets = std::vector<size_t>;

// The categories as llama.cpp's std::regex fallback sees them: it "collapses" every non-ASCII
// codepoint to one byte per category (whitespace wins over the category) and spells the ASCII
// part of each class by hand, exactly. No White_Space codepoint is in L, N, P, S or M, so these
// are the Unicode classes; \s is the Unicode White_Space set either way.
inline bool rx_ws(uint32_t c) { return uc::is_whitespace(c); }
inline bool rx_cat(uint32_t c, uint16_t cat) { return (uc::flags(c) & cat) && !(c >= 128 && uc::is_whitespace(c)); }
inline bool rx_L(uint32_t c) { return rx_cat(c, uc::Letter); }
inline bool rx_N(uint32_t c) { return rx_cat(c, uc::Number); }
inline bool rx_P(uint32_t c) { return rx_cat(c, uc::Punctuation); }
inline bool rx_S(uint32_t c) { return rx_cat(c, uc::Symbol); }
inline bool rx_M(uint32_t c) { return rx_cat(c, uc::Mark); }

// Runs the hand-written splitters over every current segment. `split_one(begin, end, out)`
// appends the lengths of the pieces of [begin, end).
template <class F>
Offsets refine(const Offsets& offsets, F&& split_one) {
    Offsets out;
    out.reserve(offsets.size() * 2);
    size_t start = 0;
    for (size_t len : offsets) {
        split_one(start, start + len, out);
        start += len;
    }
    return out;
}

// regex_iterator semantics for a pattern that never matches empty: scan left to right, take
// the match at the first position where `match(pos, end)` returns a non-zero length, keep the
// unmatched gaps as pieces of their own.
template <class M>
Offsets split_matches(const Offsets& offsets, M&& match) {
    return refine(offsets, [&](size_t b, size_t e, Offsets& out) {
        size_t gap = b;
        size_t pos = b;
        while (pos < e) {
            const size_t m = match(pos, e);
            if (m == 0) {
                ++pos;
                continue;
            }
            if (pos > gap) out.push_back(pos - gap);
            out.push_back(m);
            pos += m;
            gap = pos;
        }
        if (e > gap) out.push_back(e - gap);
    });
}

// DeepSeek-LLM's letter class: the cased letters of its pre-tokenizer pattern, as codepoint ranges.
constexpr std::pair<uint32_t, uint32_t> kDeepseekLetters[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA}, {0x1BC, 0x1BF},
    {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377}, {0x37B, 0x37D}, {0x37F, 0x37F},
    {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481},
    {0x48A, 0x52F}, {0x531, 0x556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D},
    {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D},
    {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC},
    {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102},
    {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
    {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3},
    {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF},
    {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F},
    {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF},
    {0x1E900, 0x1E943}
};
bool deepseek_letter(uint32_t c) {
    for (const auto& [lo, hi] : kDeepseekLetters)
        if (c >= lo && c <= hi) return true;
    return false;
}
// \s as std::wregex sees it in the C locale: ASCII whitespace only.
bool wregex_space(uint32_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// llama.cpp's unicode_cpt_is_han (Kimi-K2): fixed CJK ideograph blocks, not the Script=Han
// property, so U+3007 (〇) and the CJK radicals are not Han here.
bool kimi_han(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2EBEF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// How the Llama-3 family of patterns (Splitter::words) forms its letter words.
enum class Words {
    Plain,   // <letters>+; contractions are an alternative of their own (Llama-3, Qwen2, Qwen3.5, GLM-4)
    Cased,   // an "upper" run then a "lower" run, contraction attached (GPT-4o, Tekken)
    NonHan,  // Han runs first, then runs of the other letters, contraction attached (Kimi-K2)
};
struct WordRule {
    Words words = Words::Plain;
    uint16_t letters = uc::Letter;  // Plain only: Qwen3.5 adds \p{M}
    size_t max_digits = 3;
    bool contractions = true;
    bool slash = false;             // punctuation runs also take the '/' after them: [\r\n/]*
};

struct Splitter {
    const std::vector<uint32_t>& cpts;

    // Out of the segment: no codepoint, no flags (as llama.cpp's OUT_OF_RANGE).
    static constexpr uint32_t kNone = 0xFFFFFFFF;

    // GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    Offsets gpt2(const Offsets& offsets) const {
        return refine(offsets, [&](size_t b, size_t e, Offsets& out) {
            auto cpt = [&](size_t p) { return p < e ? cpts[p] : kNone; };
            auto fl = [&](size_t p) -> uint16_t { return p < e ? uc::flags(cpts[p]) : 0; };
            auto is_other = [](uint16_t f) {
                return f != 0 && !(f & (uc::Whitespace | uc::Letter | uc::Number));
            };
            size_t prev = b;
            auto emit = [&](size_t end) {
                if (end > prev) out.push_back(end - prev);
                prev = end;
            };
            size_t pos = b;
            while (pos < e) {
                const uint32_t c = cpts[pos];
                if (c == '\'' && pos + 1 < e) {
                    const uint32_t n1 = cpt(pos + 1);
                    if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
                        pos += 2;
                        emit(pos);
                        continue;
                    }
                    if (pos + 2 < e) {
                        const uint32_t n2 = cpt(pos + 2);
                        if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) {
                            pos += 3;
                            emit(pos);
                            continue;
                        }
                    }
                }
                const uint16_t f2 = c == ' ' ? fl(pos + 1) : fl(pos);
                if (f2 & uc::Letter) {
                    pos += (c == ' ');
                    while (fl(pos) & uc::Letter) ++pos;
                    emit(pos);
                    continue;
                }
                if (f2 & uc::Number) {
                    pos += (c == ' ');
                    while (fl(pos) & uc::Number) ++pos;
                    emit(pos);
                    continue;
                }
                if (is_other(f2)) {
                    pos += (c == ' ');
                    while (is_other(fl(pos))) ++pos;
                    emit(pos);
                    continue;
                }
                size_t n_ws = 0;
                while (fl(pos + n_ws) & uc::Whitespace) ++n_ws;
                if (n_ws > 1 && pos + n_ws < e) {  // \s+(?!\S): leave the last one for the next word
                    pos += n_ws - 1;
                    emit(pos);
                    continue;
                }
                if (n_ws > 0) {
                    pos += n_ws;
                    emit(pos);
                    continue;
                }
                emit(++pos);
            }
        });
    }

    // \s*[\r\n]+|\s+(?!\S)|\s+ at p: the match length, 0 when cpts[p] is not whitespace.
    size_t spaces(size_t p, size_t e) const {
        size_t q = p;
        size_t last_nl = 0;
        while (q < e && rx_ws(cpts[q])) {
            if (cpts[q] == '\r' || cpts[q] == '\n') last_nl = q + 1;
            ++q;
        }
        if (last_nl > 0) return last_nl - p;         // \s*[\r\n]+
        if (q - p > 1 && q < e) return q - 1 - p;    // \s+(?!\S): the last one goes with the next word
        return q - p;                                // \s+
    }

    // (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]) at p: the match length or 0.
    size_t contraction(size_t p, size_t e) const {
        if (p + 1 >= e || cpts[p] != '\'') return 0;
        // Only ASCII letters lower-case to one of "stmdrevl" (checked against the UCD when the
        // tables were generated: U+0130 -> i and U+212A -> k are the only non-ASCII codepoints with
        // an ASCII lower case), so ASCII folding is exact for llama.cpp's case-insensitive forms.
        auto lower = [](uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; };
        const uint32_t n1 = lower(cpts[p + 1]);
        if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') return 2;
        if (p + 2 >= e) return 0;
        const uint32_t n2 = lower(cpts[p + 2]);
        return ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) ? 3 : 0;
    }

    // The Llama-3 family of patterns:
    //   [contraction |] <letter word> | \p{N}{1,digits} | ' ?'[^\s<letters>\p{N}]+[\r\n(/)]*
    //   | \s*[\r\n]+ | \s+(?!\S) | \s+
    // where the letter word, after an optional [^\r\n\p{L}\p{N}], is as `Words` says.
    Offsets words(const Offsets& offsets, const WordRule& r) const {
        const uint16_t letters = r.words == Words::Plain ? r.letters : uint16_t{uc::Letter};
        auto letter = [&](uint32_t c) {
            return (uc::flags(c) & letters) && !(r.words == Words::NonHan && kimi_han(c));
        };
        auto other = [&](uint32_t c) { return !(uc::flags(c) & (uc::Whitespace | letters | uc::Number)); };
        auto lower_ascii = [](uint32_t c) { return c >= 'a' && c <= 'z'; };
        auto upper_ascii = [](uint32_t c) { return c >= 'A' && c <= 'Z'; };
        return split_matches(offsets, [&](size_t p, size_t e) -> size_t {
            const uint32_t c = cpts[p];
            const uint16_t f = uc::flags(c);
            if (r.words == Words::Plain && r.contractions) {
                if (const size_t n = contraction(p, e)) return n;
            }
            if (r.words == Words::NonHan && kimi_han(c)) {
                size_t q = p;
                while (q < e && kimi_han(cpts[q])) ++q;
                return q - p;
            }
            const bool lead = c != '\r' && c != '\n' && !(f & (uc::Letter | uc::Number));
            const size_t s = lead && p + 1 < e && letter(cpts[p + 1]) ? p + 1 : p;
            if (letter(cpts[s])) {
                size_t q = s;
                if (r.words == Words::Cased) {
                    // llama.cpp's stand-ins for [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+ and
                    // its mirror: "upper" is a letter that is not a-z, "lower" one that is not A-Z, so
                    // every non-ASCII letter is both, and marks are not letters at all.
                    while (q < e && letter(cpts[q]) && !lower_ascii(cpts[q])) ++q;  // upper*
                    if (q < e && lower_ascii(cpts[q])) {
                        while (q < e && letter(cpts[q]) && !upper_ascii(cpts[q])) ++q;  // lower+
                    } else {
                        // All upper: upper*lower+ backtracks to the word's last non-ASCII letter
                        // ("ÉCOLE" -> "É", "COLE"); without one, upper+ takes the whole run.
                        size_t j = q;
                        while (j > s && upper_ascii(cpts[j - 1])) --j;
                        if (j > s) q = j;
                    }
                } else {
                    while (q < e && letter(cpts[q])) ++q;
                }
                if (r.words != Words::Plain && r.contractions) q += contraction(q, e);
                return q - p;
            }
            if (f & uc::Number) {
                size_t q = p;
                while (q < e && q - p < r.max_digits && (uc::flags(cpts[q]) & uc::Number)) ++q;
                return q - p;
            }
            const size_t s2 = c == ' ' && p + 1 < e && other(cpts[p + 1]) ? p + 1 : p;
            if (other(cpts[s2])) {
                size_t q = s2;
                while (q < e && other(cpts[q])) ++q;
                while (q < e && (cpts[q] == '\r' || cpts[q] == '\n' || (r.slash && cpts[q] == '/'))) ++q;
                return q - p;
            }
            return spaces(p, e);
        });
    }

    // DeepSeek-V3's word pattern (after its digit and CJK passes):
    //   [<ASCII P or S>][A-Za-z]+ | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ | ' ?'[\p{P}\p{S}]+[\r\n]*
    //   | \s*[\r\n]+ | \s+(?!\S) | \s+
    Offsets deepseek_v3_words(const Offsets& offsets) const {
        auto ascii_alpha = [](uint32_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
        auto lm = [](uint32_t c) { return rx_L(c) || rx_M(c); };
        auto ps = [](uint32_t c) { return rx_P(c) || rx_S(c); };
        return split_matches(offsets, [&](size_t p, size_t e) -> size_t {
            const uint32_t c = cpts[p];
            if (c < 128 && ps(c) && p + 1 < e && ascii_alpha(cpts[p + 1])) {
                size_t q = p + 1;
                while (q < e && ascii_alpha(cpts[q])) ++q;
                return q - p;
            }
            const bool lead = c != '\r' && c != '\n' && !rx_L(c) && !ps(c);
            size_t q = lead && p + 1 < e && lm(cpts[p + 1]) ? p + 1 : p;
            if (lm(cpts[q])) {
                while (q < e && lm(cpts[q])) ++q;
                return q - p;
            }
            q = c == ' ' && p + 1 < e && ps(cpts[p + 1]) ? p + 1 : p;
            if (ps(cpts[q])) {
                while (q < e && ps(cpts[q])) ++q;
                while (q < e && (cpts[q] == '\r' || cpts[q] == '\n')) ++q;
                return q - p;
            }
            return spaces(p, e);
        });
    }

    template <class P>
    Offsets single(const Offsets& o, P pred) const {
        return split_matches(o, [&](size_t p, size_t) -> size_t { return pred(cpts[p]) ? 1 : 0; });
    }
    template <class P>
    Offsets run(const Offsets& o, P pred) const {
        return split_matches(o, [&](size_t p, size_t e) -> size_t {
            size_t q = p;
            while (q < e && pred(cpts[q])) ++q;
            return q - p;
        });
    }
    // \s?C+ (ECMAScript: the optional space is tried first, then dropped)
    template <class P, class S = bool (*)(uint32_t)>
    Offsets space_run(const Offsets& o, P pred, S space = rx_ws) const {
        return split_matches(o, [&](size_t p, size_t e) -> size_t {
            size_t q = p;
            if (space(cpts[q]) && q + 1 < e && pred(cpts[q + 1])) ++q;
            const size_t s = q;
            while (q < e && pred(cpts[q])) ++q;
            return q == s ? 0 : q - p;
        });
    }
};

std::vector<std::string> to_words(const std::vector<uint32_t>& cpts, const Offsets& offsets) {
    std::vector<std::string> words;
    words.reserve(offsets.size());
    std::string utf8;
    size_t start = 0;
    for (size_t len : offsets) {
        utf8.clear();
        for (size_t i = start; i < start + len; ++i) uc::append_utf8(utf8, cpts[i]);
        std::string w;
        w.reserve(utf8.size() * 2);
        for (unsigned char ch : utf8) w += uc::byte_to_utf8(ch);
        words.push_back(std::move(w));
        start += len;
    }
    return words;
}

}  // namespace

std::vector<std::string> pretokenize(std::string_view text, PreType pre) {
    if (pre == PreType::Gemma4) {  // [^\n]+|[\n]+ over the raw bytes
        std::vector<std::string> words;
        for (size_t i = 0; i < text.size();) {
            const bool nl = text[i] == '\n';
            size_t j = i;
            while (j < text.size() && (text[j] == '\n') == nl) ++j;
            words.emplace_back(text.substr(i, j - i));
            i = j;
        }
        return words;
    }
    const std::vector<uint32_t> cpts = uc::cpts_from_utf8(text);
    if (cpts.empty()) return {};
    const Splitter sp{cpts};
    Offsets o{cpts.size()};
    switch (pre) {
        case PreType::Gpt2:
            o = sp.gpt2(o);
            break;
        case PreType::Llama3:
            o = sp.words(o, {});
            break;
        case PreType::Qwen2:
            o = sp.words(o, {.max_digits = 1});
            break;
        case PreType::Qwen35:
            o = sp.words(o, {.letters = uc::Letter | uc::Mark, .max_digits = 1});
            break;
        case PreType::Gpt4o:
            o = sp.words(o, {.words = Words::Cased, .slash = true});
            break;
        case PreType::Tekken:
            o = sp.words(o, {.words = Words::Cased, .max_digits = 1, .contractions = false, .slash = true});
            break;
        case PreType::KimiK2:
            o = sp.words(o, {.words = Words::NonHan});
            break;
        case PreType::DeepseekV3:
            // \p{N}{1,3}, then [一-龥぀-ゟ゠-ヿ]+ (std::wregex on the codepoints), then the word pattern.
            o = split_matches(o, [&](size_t p, size_t e) -> size_t {
                size_t q = p;
                while (q < e && q - p < 3 && rx_N(cpts[q])) ++q;
                return q - p;
            });
            o = sp.run(o, [](uint32_t c) {
                return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x3040 && c <= 0x30FF);
            });
            o = sp.deepseek_v3_words(o);
            break;
        case PreType::Starcoder:
            o = sp.single(o, rx_N);
            o = sp.gpt2(o);
            break;
        case PreType::DeepseekCoder:
            o = sp.single(o, [](uint32_t c) { return c == '\r' || c == '\n'; });
            o = sp.space_run(o, rx_L);
            o = sp.space_run(o, rx_P);
            // [一-龥ࠀ-一가-퟿]+ runs through std::wregex, which sees non-ASCII whitespace as \v.
            o = sp.run(o, [](uint32_t c) {
                const bool in = (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x0800 && c <= 0x4E00) ||
                                (c >= 0xAC00 && c <= 0xD7FF);
                return in && !uc::is_whitespace(c);
            });
            o = sp.single(o, rx_N);
            break;
        case PreType::Gemma4:
            break;  // handled above
        case PreType::DeepseekLlm:
            // [\r\n], \s?<cased letters>+, \s?<ASCII and full-width punctuation>+, \s+$, CJK runs, \p{N}+.
            // All but the last run through std::wregex on the codepoints themselves.
            o = sp.single(o, [](uint32_t c) { return c == '\r' || c == '\n'; });
            o = sp.space_run(o, deepseek_letter, wregex_space);
            o = sp.space_run(o, [](uint32_t c) {
                return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x7E) || (c >= 0xFF01 && c <= 0xFF0F) ||
                       (c >= 0xFF1A && c <= 0xFF5E) || (c >= 0x2018 && c <= 0x201F) || (c >= 0x3000 && c <= 0x3002);
            }, wregex_space);
            o = split_matches(o, [&](size_t p, size_t e) -> size_t {  // \s+$: the segment's trailing spaces
                for (size_t q = p; q < e; ++q)
                    if (!wregex_space(cpts[q])) return 0;
                return e - p;
            });
            o = sp.run(o, [](uint32_t c) { return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x0800 && c <= 0xD7FF && (c <= 0x4E00 || c >= 0xAC00)); });
            o = sp.run(o, rx_N);
            break;
        case PreType::Default:
        case PreType::Falcon: {
            // Default and Falcon differ only in the backtick and in Default's \p{N}+ pass.
            const bool falcon = pre == PreType::Falcon;
            o = sp.run(o, [falcon](uint32_t c) {
                return rx_P(c) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' ||
                       c == '~' || c == '|' || (falcon && c == '`');
            });
            o = sp.gpt2(o);
            if (!falcon) o = sp.run(o, rx_N);
            o = split_matches(o, [&](size_t p, size_t e) -> size_t {
                auto d = [&](size_t q) { return q < e && cpts[q] >= '0' && cpts[q] <= '9'; };
                return d(p) && d(p + 1) && d(p + 2) ? 3 : 0;
            });
            break;
        }
    }
    return to_words(cpts, o);
}

}  // namespace ember::detail
