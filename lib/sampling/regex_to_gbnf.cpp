// JSON Schema "pattern" → GBNF: a recursive-descent parser over the pattern's code points that writes the
// grammar as it goes. The grammar matches the string's JSON text, so each character a pattern allows is
// written as JSON writes it (a quote as \", a newline as \n, ...).
#include "sampling/regex_to_gbnf.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "ember/error.hpp"
#include "sampling/grammar.hpp"

namespace ember::schema {

void refuse(const std::string& msg) { throw Error(Status::InvalidArgument, "json schema: " + msg); }

std::string literal(std::string_view s) {
    std::string o = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            o += '\\';
            o += ch;
        } else if (c == '\n') {
            o += "\\n";
        } else if (c == '\r') {
            o += "\\r";
        } else if (c == '\t') {
            o += "\\t";
        } else if (c < 0x20) {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02X", c);
            o += b;
        } else {
            o += ch;
        }
    }
    return o + "\"";
}

namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;  // inclusive code point ranges

void normalize(Ranges& r) {
    std::sort(r.begin(), r.end());
    Ranges out;
    for (const auto& [a, b] : r) {
        if (!out.empty() && a <= out.back().second + 1)
            out.back().second = std::max(out.back().second, b);
        else
            out.emplace_back(a, b);
    }
    r = std::move(out);
}

Ranges complement(Ranges r) {
    normalize(r);
    Ranges out;
    uint32_t next = 0;
    for (const auto& [a, b] : r) {
        if (a > next) out.emplace_back(next, a - 1);
        next = b + 1;
    }
    if (next <= kMaxCodePoint) out.emplace_back(next, kMaxCodePoint);
    return out;
}

bool contains(const Ranges& r, uint32_t c) {
    return std::any_of(r.begin(), r.end(), [c](const auto& p) { return p.first <= c && c <= p.second; });
}

std::string utf8(uint32_t c) {
    std::string o;
    if (c < 0x80) {
        o += static_cast<char>(c);
    } else if (c < 0x800) {
        o += static_cast<char>(0xC0 | (c >> 6));
        o += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        o += static_cast<char>(0xE0 | (c >> 12));
        o += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        o += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        o += static_cast<char>(0xF0 | (c >> 18));
        o += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        o += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        o += static_cast<char>(0x80 | (c & 0x3F));
    }
    return o;
}

// How JSON writes code point c inside a string ("" for a control character without a short escape).
std::string json_text(uint32_t c) {
    switch (c) {
        case '"': return "\\\"";
        case '\\': return "\\\\";
        case '\n': return "\\n";
        case '\r': return "\\r";
        case '\t': return "\\t";
        case '\b': return "\\b";
        case '\f': return "\\f";
        default: break;
    }
    if (c < 0x20) {
        char b[8];
        std::snprintf(b, sizeof b, "\\u%04x", c);
        return b;
    }
    return utf8(c);
}

// A set member as a GBNF class endpoint: letters and digits as they are, the rest as \x / \u / \U escapes.
std::string class_char(uint32_t c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return std::string(1, static_cast<char>(c));
    char b[16];
    if (c < 0x100)
        std::snprintf(b, sizeof b, "\\x%02X", c);
    else if (c < 0x10000)
        std::snprintf(b, sizeof b, "\\u%04X", c);
    else
        std::snprintf(b, sizeof b, "\\U%08X", c);
    return b;
}

std::string class_of(const Ranges& r, bool negated) {
    std::string o = negated ? "[^" : "[";
    for (const auto& [a, b] : r) {
        o += class_char(a);
        if (b != a) {
            o += '-';
            o += class_char(b);
        }
    }
    return o + "]";
}

// The GBNF for one character of `set`, as JSON text: the characters JSON writes as they are in a class,
// and the ones it escapes as literals. Large sets (. and negations) leave out the control characters
// without a short escape: \u0001 is no text a model should be steered to.
std::string encode_set(Ranges set) {
    normalize(set);
    uint64_t size = 0;
    for (const auto& [a, b] : set) size += b - a + 1;
    // Written as they are: not a control character, quote, backslash or surrogate.
    Ranges raw;
    const Ranges banned = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0xD800, 0xDFFF}};
    for (const auto& p : complement(banned)) raw.push_back(p);
    Ranges keep;
    for (const auto& [a, b] : set)
        for (const auto& [c, d] : raw)
            if (std::max(a, c) <= std::min(b, d)) keep.emplace_back(std::max(a, c), std::min(b, d));
    std::vector<std::string> alts;
    if (keep.size() == 1 && keep[0].first == keep[0].second) {
        alts.push_back(literal(utf8(keep[0].first)));
    } else if (!keep.empty()) {
        const Ranges outside = complement(keep);
        alts.push_back(outside.size() <= keep.size() ? class_of(outside, true) : class_of(keep, false));
    }
    for (uint32_t c = 0; c < 0x20; ++c)
        if (contains(set, c) && (json_text(c).size() == 2 || size < 1000)) alts.push_back(literal(json_text(c)));
    for (const uint32_t c : {uint32_t{'"'}, uint32_t{'\\'}})
        if (contains(set, c)) alts.push_back(literal(json_text(c)));
    if (alts.empty()) refuse("pattern: a character set that no JSON string character can match");
    if (alts.size() == 1) return alts[0];
    std::string o = "(";
    for (size_t i = 0; i < alts.size(); ++i) o += (i ? " | " : " ") + alts[i];
    return o + " )";
}

Ranges digits() { return {{'0', '9'}}; }
Ranges word() { return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; }
// ECMA-262's white space and line terminators.
Ranges space() {
    return {{'\t', '\r'}, {' ', ' '}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A}, {0x2028, 0x2029},
            {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
}

class RegexParser {
public:
    explicit RegexParser(std::vector<uint32_t> cps) : p_(std::move(cps)) {}

    std::string run() {
        std::string out = alternation(0, true);
        if (pos_ < p_.size()) fail("an unmatched ')'");
        return out;
    }

private:
    std::vector<uint32_t> p_;
    size_t pos_ = 0;

    [[noreturn]] void fail(const std::string& msg) const {
        refuse("pattern: " + msg + " at character " + std::to_string(pos_ + 1));
    }
    bool end() const { return pos_ >= p_.size(); }
    uint32_t peek(size_t ahead = 0) const { return pos_ + ahead < p_.size() ? p_[pos_ + ahead] : 0; }
    bool at(char c, size_t ahead = 0) const { return pos_ + ahead < p_.size() && p_[pos_ + ahead] == static_cast<uint32_t>(c); }

    // Branches separated by |. At the top, each branch may be anchored; an unanchored end matches anything.
    std::string alternation(int depth, bool top) {
        if (depth > kMaxRegexNesting) fail("groups nested deeper than " + std::to_string(kMaxRegexNesting));
        std::vector<std::string> branches;
        while (true) {
            branches.push_back(branch(depth, top));
            if (!at('|')) break;
            ++pos_;
        }
        if (branches.size() == 1) return branches[0];
        std::string o = "(";
        for (size_t i = 0; i < branches.size(); ++i) o += (i ? " | " : " ") + branches[i];
        return o + " )";
    }

    std::string branch(int depth, bool top) {
        std::vector<std::string> seq;
        std::string text;  // a run of single characters, written as one literal
        auto flush = [&] {
            if (!text.empty()) seq.push_back(literal(text));
            text.clear();
        };
        bool start_anchor = false, end_anchor = false;
        if (top && at('^')) {
            start_anchor = true;
            ++pos_;
        }
        while (!end() && !at('|') && !at(')')) {
            if (at('$')) {
                ++pos_;
                if (top && (end() || at('|'))) {
                    end_anchor = true;
                    break;
                }
                fail("'$' only at the end of the pattern");
            }
            if (at('^')) fail("'^' only at the start of the pattern");
            std::string chars;  // JSON text of a single character atom ("" for other atoms)
            std::string atom_gbnf = atom(depth, chars);
            uint32_t lo = 1, hi = 1;
            if (!quantifier(lo, hi)) {
                if (!chars.empty()) {
                    text += chars;
                    continue;
                }
                flush();
                seq.push_back(std::move(atom_gbnf));
                continue;
            }
            flush();
            const std::string& x = atom_gbnf;  // an atom is a literal, a class or in parentheses
            if (hi == UINT32_MAX)
                seq.push_back(lo == 0 ? x + "*" : lo == 1 ? x + "+" : x + "{" + std::to_string(lo) + ",}");
            else if (lo == 0 && hi == 1)
                seq.push_back(x + "?");
            else
                seq.push_back(x + "{" + std::to_string(lo) + "," + std::to_string(hi) + "}");
        }
        flush();
        if (top && !start_anchor) seq.insert(seq.begin(), "char*");
        if (top && !end_anchor) seq.push_back("char*");
        if (seq.empty()) return R"("")";
        std::string o;
        for (size_t i = 0; i < seq.size(); ++i) o += (i ? " " : "") + seq[i];
        return seq.size() == 1 ? o : "( " + o + " )";
    }

    // ? * + {n} {n,} {n,m} after an atom, and a lazy ? after that (the same strings match).
    bool quantifier(uint32_t& lo, uint32_t& hi) {
        if (at('?')) {
            lo = 0, hi = 1;
        } else if (at('*')) {
            lo = 0, hi = UINT32_MAX;
        } else if (at('+')) {
            lo = 1, hi = UINT32_MAX;
        } else if (at('{')) {
            size_t q = pos_ + 1;
            if (!braces(q, lo, hi)) return false;  // not a quantifier: a literal '{' (as ECMA-262's Annex B)
            pos_ = q - 1;
        } else {
            return false;
        }
        ++pos_;
        if (at('?')) ++pos_;
        if (at('+')) fail("possessive quantifiers are not supported");
        if (at('*') || at('{') || at('?')) fail("a quantifier after a quantifier");
        return true;
    }

    // {n}, {n,}, {n,m} from just after '{'; q ends just past '}'.
    bool braces(size_t& q, uint32_t& lo, uint32_t& hi) {
        auto num = [&](uint32_t& v) {
            const size_t start = q;
            uint64_t x = 0;
            while (q < p_.size() && p_[q] >= '0' && p_[q] <= '9') {
                x = std::min<uint64_t>(x * 10 + (p_[q] - '0'), uint64_t{1} << 40);
                ++q;
            }
            if (x > kMaxRegexRepeat) fail("a repetition count over " + std::to_string(kMaxRegexRepeat));
            v = static_cast<uint32_t>(x);
            return q > start;
        };
        if (!num(lo)) return false;
        hi = lo;
        if (q < p_.size() && p_[q] == ',') {
            ++q;
            if (!num(hi)) hi = UINT32_MAX;
        }
        if (q >= p_.size() || p_[q] != '}') return false;
        ++q;
        if (hi < lo) fail("{n,m} with m < n");
        return true;
    }

    std::string atom(int depth, std::string& chars) {
        const uint32_t c = peek();
        if (c == '(') {
            ++pos_;
            if (at('?')) {
                if (at(':', 1)) {
                    pos_ += 2;
                } else if ((at('<', 1) && !at('=', 2) && !at('!', 2)) || (at('P', 1) && at('<', 2))) {
                    while (!end() && !at('>')) ++pos_;  // a named group: the name does not matter here
                    if (end()) fail("an unterminated group name");
                    ++pos_;
                } else if (at('=', 1) || at('!', 1) || at('<', 1)) {
                    fail("lookahead and lookbehind are not supported");
                } else {
                    fail("'(?' flags and other group kinds are not supported");
                }
            }
            std::string inner = alternation(depth + 1, false);
            if (!at(')')) fail("an unterminated group");
            ++pos_;
            return "( " + inner + " )";
        }
        if (c == '[') return encode_set(set_class());
        if (c == '.') {
            ++pos_;
            return encode_set(complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
        }
        if (c == '*' || c == '+' || c == '?') fail("a quantifier with nothing before it");
        if (c == ')') fail("an unmatched ')'");
        if (c == '{') {
            size_t q = pos_ + 1;
            uint32_t lo = 0, hi = 0;
            if (braces(q, lo, hi)) fail("a quantifier with nothing before it");
        }
        Ranges set;
        if (c == '\\') {
            set = escape(false);
        } else {
            ++pos_;
            set = {{c, c}};
        }
        if (set.size() == 1 && set[0].first == set[0].second && set[0].first >= 0x20) {
            chars = json_text(set[0].first);
            return literal(chars);
        }
        return encode_set(set);
    }

    // After a backslash: a character or a class escape. In a class, \b is a backspace.
    Ranges escape(bool in_class) {
        ++pos_;  // the backslash
        if (end()) fail("a pattern ending in a backslash");
        const uint32_t e = peek();
        ++pos_;
        switch (e) {
            case 'd': return digits();
            case 'D': return complement(digits());
            case 'w': return word();
            case 'W': return complement(word());
            case 's': return space();
            case 'S': return complement(space());
            case 'n': return {{'\n', '\n'}};
            case 'r': return {{'\r', '\r'}};
            case 't': return {{'\t', '\t'}};
            case 'f': return {{'\f', '\f'}};
            case 'v': return {{'\v', '\v'}};
            case '0':
                if (peek() >= '0' && peek() <= '9') fail("octal escapes are not supported");
                return {{0, 0}};
            case 'x': {
                const uint32_t v = hex(2);
                return {{v, v}};
            }
            case 'u': {
                if (at('{')) {
                    ++pos_;
                    uint32_t v = 0;
                    int n = 0;
                    while (!end() && !at('}')) {
                        v = v << 4 | static_cast<uint32_t>(hex_digit());
                        if (++n > 6 || v > kMaxCodePoint) fail("a \\u{...} escape over U+10FFFF");
                    }
                    if (end() || n == 0) fail("a bad \\u{...} escape");
                    ++pos_;
                    return {{v, v}};
                }
                const uint32_t v = hex(4);
                return {{v, v}};
            }
            case 'b':
                if (in_class) return {{'\b', '\b'}};
                fail("word boundaries (\\b) are not supported");
            case 'B': fail("word boundaries (\\B) are not supported");
            case 'k': fail("backreferences are not supported");
            case 'p': case 'P': fail("Unicode property escapes are not supported");
            case 'c': fail("control escapes (\\c) are not supported");
            default: break;
        }
        if (e >= '1' && e <= '9') fail("backreferences are not supported");
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) fail("an unknown escape '\\" + utf8(e) + "'");
        return {{e, e}};
    }

    int hex_digit() {
        const uint32_t c = peek();
        const int v = c >= '0' && c <= '9' ? static_cast<int>(c - '0')
                      : c >= 'a' && c <= 'f' ? static_cast<int>(c - 'a' + 10)
                      : c >= 'A' && c <= 'F' ? static_cast<int>(c - 'A' + 10)
                                             : -1;
        if (v < 0) fail("expecting a hex digit");
        ++pos_;
        return v;
    }
    uint32_t hex(int n) {
        uint32_t v = 0;
        for (int i = 0; i < n; ++i) v = v << 4 | static_cast<uint32_t>(hex_digit());
        return v;
    }

    // [...] from its '['. As ECMA-262: [] matches nothing, [^] anything; '-' first or last is itself.
    Ranges set_class() {
        ++pos_;
        bool negated = false;
        if (at('^')) {
            negated = true;
            ++pos_;
        }
        Ranges set;
        while (!at(']')) {
            if (end()) fail("an unterminated character class");
            Ranges first = member();
            const bool single = first.size() == 1 && first[0].first == first[0].second;
            if (single && at('-') && !at(']', 1) && pos_ + 1 < p_.size()) {
                ++pos_;
                Ranges last = member();
                if (last.size() != 1 || last[0].first != last[0].second) fail("a range ending in a class escape");
                if (last[0].first < first[0].first) fail("a range out of order");
                set.emplace_back(first[0].first, last[0].first);
                continue;
            }
            set.insert(set.end(), first.begin(), first.end());
        }
        ++pos_;
        return negated ? complement(set) : set;
    }

    Ranges member() {
        if (at('\\')) return escape(true);
        const uint32_t c = peek();
        ++pos_;
        return {{c, c}};
    }
};

}  // namespace

std::string pattern_to_gbnf(std::string_view pattern) {
    grammar::Utf8Partial partial;
    std::vector<uint32_t> cps;
    if (!grammar::decode_utf8(pattern, partial, cps) || partial.remain != 0) refuse("pattern: invalid UTF-8");
    return RegexParser(std::move(cps)).run();
}

}  // namespace ember::schema
