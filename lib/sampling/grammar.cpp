#include "sampling/grammar.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "ember/error.hpp"

namespace ember::grammar {

// ----------------------------------------------------------------------------------------------------------
// Parsing
// ----------------------------------------------------------------------------------------------------------

namespace {

bool is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class Parser {
public:
    explicit Parser(std::string_view text) : s_(text) {}

    std::shared_ptr<const Grammar> run() {
        if (s_.size() > kMaxTextBytes)
            fail(0, "the grammar is " + std::to_string(s_.size()) + " bytes, over the limit of " +
                        std::to_string(kMaxTextBytes));
        size_t pos = space(0, true);
        while (pos < s_.size()) pos = rule(pos);
        const auto root = names_.find("root");
        if (root == names_.end()) fail(s_.size(), "no rule named 'root'");
        for (uint32_t r = 0; r < rules_.size(); ++r)
            if (!defined_[r]) fail(first_use_[r], "undefined rule '" + rule_names_[r] + "'");
        check_left_recursion();
        return flatten(root->second);
    }

private:
    std::string_view s_;
    std::vector<std::vector<Elem>> rules_;  // each: alternatives separated by Alt, ended by End
    std::vector<std::string> rule_names_;
    std::vector<size_t> first_use_, def_pos_;
    std::vector<uint32_t> n_helpers_;
    std::vector<bool> defined_;
    std::map<std::string, uint32_t, std::less<>> names_;
    std::vector<std::pair<uint32_t, uint32_t>> ranges_;
    size_t n_elems_ = 0;
    int depth_ = 0;

    [[noreturn]] void fail(size_t pos, const std::string& msg) const {
        pos = std::min(pos, s_.size());
        size_t line = 1, col = 1;
        for (size_t i = 0; i < pos; ++i) {
            if (s_[i] == '\n') {
                ++line;
                col = 1;
            } else if ((static_cast<unsigned char>(s_[i]) & 0xC0) != 0x80) {
                ++col;  // columns count characters, not bytes
            }
        }
        throw Error(Status::InvalidArgument,
                    "grammar: line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + msg);
    }

    char at(size_t pos) const { return pos < s_.size() ? s_[pos] : '\0'; }
    bool end(size_t pos) const { return pos >= s_.size(); }

    // Blanks and comments; newlines only where `newline_ok` (inside parentheses, after ::= and |).
    size_t space(size_t pos, bool newline_ok) const {
        while (!end(pos)) {
            const char c = s_[pos];
            if (c == ' ' || c == '\t') {
                ++pos;
            } else if (c == '#') {
                while (!end(pos) && s_[pos] != '\r' && s_[pos] != '\n') ++pos;
            } else if (newline_ok && (c == '\r' || c == '\n')) {
                ++pos;
            } else {
                break;
            }
        }
        return pos;
    }

    uint32_t rule_id(std::string_view name, size_t pos) {
        if (const auto it = names_.find(name); it != names_.end()) return it->second;
        return new_rule(std::string(name), pos);
    }
    uint32_t new_rule(std::string name, size_t pos) {
        if (rules_.size() >= kMaxRules) fail(pos, "more than " + std::to_string(kMaxRules) + " rules");
        const auto id = static_cast<uint32_t>(rules_.size());
        names_.emplace(name, id);
        rule_names_.push_back(std::move(name));
        rules_.emplace_back();
        first_use_.push_back(pos);
        n_helpers_.push_back(0);
        def_pos_.push_back(pos);
        defined_.push_back(false);
        return id;
    }
    // A rule for a group or a repetition inside rule `parent`: "parent#N", a name no user rule can have.
    uint32_t helper_rule(uint32_t parent, size_t pos) {
        const uint32_t id = new_rule(rule_names_[parent] + "#" + std::to_string(++n_helpers_[parent]), pos);
        defined_[id] = true;
        return id;
    }
    void define(uint32_t id, std::vector<Elem> body, size_t pos) {
        n_elems_ += body.size();
        if (n_elems_ > kMaxElements) fail(pos, "more than " + std::to_string(kMaxElements) + " grammar elements");
        rules_[id] = std::move(body);
    }

    size_t name_end(size_t pos) const {
        while (!end(pos) && is_word_char(s_[pos])) ++pos;
        return pos;
    }

    size_t rule(size_t pos) {
        const size_t ne = name_end(pos);
        if (ne == pos) fail(pos, "expecting a rule name");
        const std::string_view name = s_.substr(pos, ne - pos);
        const uint32_t id = rule_id(name, pos);
        if (defined_[id]) fail(pos, "rule '" + std::string(name) + "' is defined twice");
        defined_[id] = true;
        def_pos_[id] = pos;
        size_t p = space(ne, false);
        if (s_.substr(std::min(p, s_.size()), 3) != "::=") fail(p, "expecting ::=");
        std::vector<Elem> body;
        p = alternates(space(p + 3, true), id, body, false);
        define(id, std::move(body), pos);
        if (at(p) == '\r') ++p;
        if (at(p) == '\n') {
            ++p;
        } else if (!end(p)) {
            fail(p, std::string("expecting a newline or the end, found '") + at(p) + "'");
        }
        return space(p, true);
    }

    size_t alternates(size_t pos, uint32_t rule, std::vector<Elem>& out, bool nested) {
        if (++depth_ > kMaxNesting) fail(pos, "parentheses nested deeper than " + std::to_string(kMaxNesting));
        pos = sequence(pos, rule, out, nested);
        while (at(pos) == '|') {
            out.push_back({Op::Alt});
            pos = sequence(space(pos + 1, true), rule, out, nested);
        }
        out.push_back({Op::End});
        --depth_;
        return pos;
    }

    // One code point of a literal or character set, escapes included; pos moves past it.
    uint32_t character(size_t& pos) {
        const size_t start = pos;
        const auto c = static_cast<unsigned char>(at(pos));
        if (c == '\\') {
            const char e = at(pos + 1);
            pos += 2;
            int digits = 0;
            switch (e) {
                case 'x': digits = 2; break;
                case 'u': digits = 4; break;
                case 'U': digits = 8; break;
                case 'n': return '\n';
                case 'r': return '\r';
                case 't': return '\t';
                case '\\': case '"': case '[': case ']': case '-': case '^': return static_cast<uint32_t>(e);
                default: fail(start, "unknown escape");
            }
            uint32_t v = 0;
            for (int i = 0; i < digits; ++i, ++pos) {
                const int h = hex_value(at(pos));
                if (h < 0) fail(pos, "expecting " + std::to_string(digits) + " hex digits");
                v = v << 4 | static_cast<uint32_t>(h);
            }
            if (v > 0x10FFFF) fail(start, "code point over U+10FFFF");
            return v;
        }
        Utf8Partial partial;
        std::vector<uint32_t> cp;
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || pos + len > s_.size() || !decode_utf8(s_.substr(pos, len), partial, cp) || cp.size() != 1)
            fail(pos, "invalid UTF-8");
        pos += len;
        return cp[0];
    }

    uint32_t number(size_t& pos) {
        const size_t start = pos;
        uint64_t v = 0;
        while (at(pos) >= '0' && at(pos) <= '9') {
            v = v * 10 + static_cast<uint64_t>(at(pos) - '0');
            if (v > kMaxRepeat) fail(start, "repetition count over " + std::to_string(kMaxRepeat));
            ++pos;
        }
        if (pos == start) fail(pos, "expecting a number");
        return static_cast<uint32_t>(v);
    }

    // Replaces the last symbol of `out` (from `sym`) by itself repeated [lo, hi] times (hi = max: no bound).
    void repeat(std::vector<Elem>& out, size_t sym, uint32_t lo, uint32_t hi, uint32_t rule, size_t pos) {
        if (sym >= out.size()) fail(pos, "a repetition needs something before it");
        const std::vector<Elem> prev(out.begin() + static_cast<std::ptrdiff_t>(sym), out.end());
        out.resize(sym);
        const bool unbounded = hi == UINT32_MAX;
        const uint64_t copies = uint64_t{lo} + (unbounded ? 1 : hi - lo);
        if (copies * (prev.size() + 2) + n_elems_ + out.size() > kMaxElements)
            fail(pos, "the repetition makes more than " + std::to_string(kMaxElements) + " grammar elements");
        for (uint32_t i = 0; i < lo; ++i) out.insert(out.end(), prev.begin(), prev.end());
        if (unbounded) {  // r ::= prev r | (empty): right recursion, so stacks do not grow with the count
            const uint32_t r = helper_rule(rule, pos);
            std::vector<Elem> body = prev;
            body.push_back({Op::Ref, r});
            body.push_back({Op::Alt});
            body.push_back({Op::End});
            define(r, std::move(body), pos);
            out.push_back({Op::Ref, r});
            return;
        }
        // At most hi - lo more: (prev (prev (...)?)?)?, built from the inside out.
        uint32_t inner = 0;
        for (uint32_t i = 0; i < hi - lo; ++i) {
            const uint32_t r = helper_rule(rule, pos);
            std::vector<Elem> body = prev;
            if (i > 0) body.push_back({Op::Ref, inner});
            body.push_back({Op::Alt});
            body.push_back({Op::End});
            define(r, std::move(body), pos);
            inner = r;
        }
        if (hi > lo) out.push_back({Op::Ref, inner});
    }

    size_t sequence(size_t pos, uint32_t rule, std::vector<Elem>& out, bool nested) {
        size_t sym = out.size();  // where the last symbol starts, for repetitions
        bool have_sym = false;
        while (!end(pos)) {
            const char c = s_[pos];
            const size_t here = pos;
            if (c == '"') {
                sym = out.size();
                have_sym = true;
                ++pos;
                while (at(pos) != '"') {
                    if (end(pos) || at(pos) == '\n') fail(here, "unterminated string literal");
                    const uint32_t cp = character(pos);
                    out.push_back({Op::Char, add_range(cp, cp, here), 1});
                }
                pos = space(pos + 1, nested);
            } else if (c == '[') {
                sym = out.size();
                have_sym = true;
                ++pos;
                Op op = Op::Char;
                if (at(pos) == '^') {
                    op = Op::CharNot;
                    ++pos;
                }
                const auto first = static_cast<uint32_t>(ranges_.size());
                while (at(pos) != ']') {
                    if (end(pos)) fail(here, "unterminated character class");
                    const uint32_t lo = character(pos);
                    uint32_t hi = lo;
                    if (at(pos) == '-' && at(pos + 1) != ']' && !end(pos + 1)) {
                        ++pos;
                        hi = character(pos);
                        if (hi < lo) fail(here, "character range out of order");
                    }
                    add_range(lo, hi, here);
                }
                out.push_back({op, first, static_cast<uint32_t>(ranges_.size()) - first});
                pos = space(pos + 1, nested);
            } else if (c == '.') {
                sym = out.size();
                have_sym = true;
                out.push_back({Op::CharNot, 0, 0});
                pos = space(pos + 1, nested);
            } else if (is_word_char(c)) {
                const size_t ne = name_end(pos);
                const uint32_t id = rule_id(s_.substr(pos, ne - pos), pos);
                sym = out.size();
                have_sym = true;
                out.push_back({Op::Ref, id});
                pos = space(ne, nested);
            } else if (c == '(') {
                const uint32_t sub = helper_rule(rule, pos);
                std::vector<Elem> body;
                pos = alternates(space(pos + 1, true), rule, body, true);
                if (at(pos) != ')') fail(pos, "expecting ')'");
                define(sub, std::move(body), here);
                sym = out.size();
                have_sym = true;
                out.push_back({Op::Ref, sub});
                pos = space(pos + 1, nested);
            } else if (c == '*' || c == '+' || c == '?') {
                if (!have_sym) fail(pos, "a repetition needs something before it");
                repeat(out, sym, c == '+' ? 1 : 0, c == '?' ? 1 : UINT32_MAX, rule, pos);
                pos = space(pos + 1, nested);
            } else if (c == '{') {
                if (!have_sym) fail(pos, "a repetition needs something before it");
                size_t p = space(pos + 1, nested);
                const uint32_t lo = number(p);
                uint32_t hi = lo;
                p = space(p, nested);
                if (at(p) == ',') {
                    p = space(p + 1, nested);
                    hi = at(p) == '}' ? UINT32_MAX : number(p);
                    p = space(p, nested);
                    if (hi < lo) fail(pos, "repetition {m,n} with n < m");
                }
                if (at(p) != '}') fail(p, "expecting '}'");
                repeat(out, sym, lo, hi, rule, pos);
                pos = space(p + 1, nested);
            } else if (c == '<' || c == '!') {
                fail(pos, "token references (<...>) are not supported");
            } else {
                break;
            }
        }
        return pos;
    }

    uint32_t add_range(uint32_t lo, uint32_t hi, size_t pos) {
        if (ranges_.size() >= kMaxElements) fail(pos, "more than " + std::to_string(kMaxElements) + " character ranges");
        ranges_.emplace_back(lo, hi);
        return static_cast<uint32_t>(ranges_.size() - 1);
    }

    // Left recursion would make the recognizer expand forever: refused. A rule calls another "on its left"
    // when every element before the reference can match nothing.
    void check_left_recursion() const {
        const size_t n = rules_.size();
        std::vector<bool> nullable(n, false);
        for (bool changed = true; changed;) {
            changed = false;
            for (size_t r = 0; r < n; ++r) {
                if (nullable[r]) continue;
                bool alt_ok = true;
                for (const Elem& e : rules_[r]) {
                    if (e.op == Op::Alt || e.op == Op::End) {
                        if (alt_ok) {
                            nullable[r] = changed = true;
                            break;
                        }
                        alt_ok = true;
                    } else if (e.op != Op::Ref || !nullable[e.a]) {
                        alt_ok = false;
                    }
                }
            }
        }
        std::vector<std::vector<uint32_t>> left(n);
        for (size_t r = 0; r < n; ++r) {
            bool open = true;  // still at the left of the current alternative
            for (const Elem& e : rules_[r]) {
                if (e.op == Op::Alt || e.op == Op::End) {
                    open = true;
                } else if (open && e.op == Op::Ref) {
                    left[r].push_back(e.a);
                    open = nullable[e.a];
                } else {
                    open = false;
                }
            }
        }
        // Iterative depth-first search for a cycle (no recursion: rules may be many).
        std::vector<uint8_t> color(n, 0);  // 0 new, 1 on the path, 2 done
        std::vector<std::pair<uint32_t, size_t>> path;
        for (uint32_t s = 0; s < n; ++s) {
            if (color[s]) continue;
            path.push_back({s, 0});
            color[s] = 1;
            while (!path.empty()) {
                auto& [r, i] = path.back();
                if (i == left[r].size()) {
                    color[r] = 2;
                    path.pop_back();
                    continue;
                }
                const uint32_t next = left[r][i++];
                if (color[next] == 1) {
                    // Name a rule the user wrote (helpers are named "user-rule#N").
                    const std::string& nm = rule_names_[next];
                    fail(def_pos_[next], "left recursion through rule '" + nm.substr(0, nm.find('#')) +
                                             "' (it can reach itself without matching a character)");
                }
                if (color[next] == 0) {
                    color[next] = 1;
                    path.push_back({next, 0});
                }
            }
        }
    }

    std::shared_ptr<const Grammar> flatten(uint32_t root) {
        auto g = std::make_shared<Grammar>();
        g->root = root;
        g->ranges = std::move(ranges_);
        std::vector<uint32_t> start(rules_.size());
        g->elems.reserve(n_elems_);
        for (size_t r = 0; r < rules_.size(); ++r) {
            start[r] = static_cast<uint32_t>(g->elems.size());
            g->elems.insert(g->elems.end(), rules_[r].begin(), rules_[r].end());
        }
        for (size_t r = 0; r < rules_.size(); ++r) {
            g->rule_alts.push_back(static_cast<uint32_t>(g->alt_first.size()));
            uint32_t p = start[r];
            g->alt_first.push_back(p);
            for (; g->elems[p].op != Op::End; ++p)
                if (g->elems[p].op == Op::Alt) g->alt_first.push_back(p + 1);
        }
        g->rule_alts.push_back(static_cast<uint32_t>(g->alt_first.size()));
        return g;
    }
};

}  // namespace

std::shared_ptr<const Grammar> parse(std::string_view gbnf) { return Parser(gbnf).run(); }

// ----------------------------------------------------------------------------------------------------------
// Recognizing
// ----------------------------------------------------------------------------------------------------------

namespace {
// The smallest code point of each encoded length: anything below it is an overlong encoding.
constexpr uint32_t kMinOfLength[5] = {0, 0, 0x80, 0x800, 0x10000};
}  // namespace

bool decode_utf8(std::string_view bytes, Utf8Partial& partial, std::vector<uint32_t>& out) {
    for (const char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        if (partial.remain > 0) {
            if ((c & 0xC0) != 0x80) return false;
            partial.value = partial.value << 6 | (c & 0x3F);
            if (--partial.remain == 0) {
                const uint32_t v = partial.value;
                if (v > 0x10FFFF || v < kMinOfLength[partial.length] || (v >= 0xD800 && v <= 0xDFFF)) return false;
                out.push_back(v);
                partial = {};
            }
        } else if (c < 0x80) {
            out.push_back(c);
        } else if (c >= 0xC2 && c <= 0xDF) {
            partial = {c & 0x1Fu, 1, 2};
        } else if (c >= 0xE0 && c <= 0xEF) {
            partial = {c & 0x0Fu, 2, 3};
        } else if (c >= 0xF0 && c <= 0xF4) {
            partial = {c & 0x07u, 3, 4};
        } else {
            return false;  // a stray continuation byte, C0, C1, F5-FF
        }
    }
    return true;
}

namespace {

bool is_end(const Grammar& g, uint32_t p) { return g.elems[p].op == Op::End || g.elems[p].op == Op::Alt; }

bool match_char(const Grammar& g, const Elem& e, uint32_t cp) {
    bool in = false;
    for (uint32_t i = e.a; i < e.a + e.b && !in; ++i) in = cp >= g.ranges[i].first && cp <= g.ranges[i].second;
    return (e.op == Op::Char) == in;
}

// Whether a character the split bytes may still become can match `e`.
bool match_partial(const Grammar& g, const Elem& e, Utf8Partial p) {
    const auto shift = static_cast<uint32_t>(6 * p.remain);
    const uint32_t lo = std::max(p.value << shift, kMinOfLength[p.length]);
    const uint32_t hi = std::min((p.value << shift) | ((1u << shift) - 1), uint32_t{0x10FFFF});
    if (lo > hi) return false;
    const auto* r = g.ranges.data() + e.a;
    if (e.op == Op::Char) {
        for (uint32_t i = 0; i < e.b; ++i)
            if (r[i].first <= hi && r[i].second >= lo) return true;
        return false;
    }
    // CharNot: some code point of [lo, hi] outside every range.
    uint32_t cp = lo;
    for (bool moved = true; moved;) {
        moved = false;
        for (uint32_t i = 0; i < e.b; ++i)
            if (cp >= r[i].first && cp <= r[i].second) {
                if (r[i].second >= hi) return false;
                cp = r[i].second + 1;
                moved = true;
            }
    }
    return true;
}

struct StackHash {
    size_t operator()(const Stack& s) const noexcept {
        uint64_t h = 0xcbf29ce484222325ull;
        for (const uint32_t p : s) h = (h ^ p) * 0x100000001b3ull;
        return static_cast<size_t>(h);
    }
};
// Stacks met during one step: each is expanded once however many paths reach it (x? x? x? ... stays
// quadratic instead of exploding).
using Seen = std::unordered_set<Stack, StackHash>;

// Expands references at the top of `s` until every stack tops a character set (or is empty: the text may
// end), adding them to `out`. False when over the limits.
bool expand(const Grammar& g, Stack s, StackSet& out, size_t& work, Seen& seen) {
    std::vector<Stack> todo;
    todo.push_back(std::move(s));
    while (!todo.empty()) {
        Stack st = std::move(todo.back());
        todo.pop_back();
        if (++work > kMaxStepWork || out.size() > kMaxStacks) return false;
        if (!seen.insert(st).second) continue;
        if (st.empty() || g.elems[st.back()].op != Op::Ref) {
            out.push_back(std::move(st));
            continue;
        }
        const uint32_t p = st.back();
        st.pop_back();
        if (!is_end(g, p + 1)) st.push_back(p + 1);
        if (st.size() >= kMaxStackDepth) return false;
        const uint32_t rule = g.elems[p].a;
        for (uint32_t a = g.rule_alts[rule]; a < g.rule_alts[rule + 1]; ++a) {
            const uint32_t q = g.alt_first[a];
            Stack n = st;
            if (!is_end(g, q)) n.push_back(q);
            todo.push_back(std::move(n));
        }
    }
    return true;
}

void normalize(StackSet& set) {
    std::sort(set.begin(), set.end());
    set.erase(std::unique(set.begin(), set.end()), set.end());
}

// The stack after the character set at its top matched one code point.
Stack after_match(const Grammar& g, const Stack& s) {
    Stack n(s.begin(), s.end() - 1);
    if (!is_end(g, s.back() + 1)) n.push_back(s.back() + 1);
    return n;
}

// The stacks after code point `cp`; false when over the limits.
bool step(const Grammar& g, const StackSet& in, uint32_t cp, StackSet& out) {
    out.clear();
    size_t work = 0;
    Seen seen;
    for (const Stack& s : in)
        if (!s.empty() && match_char(g, g.elems[s.back()], cp) && !expand(g, after_match(g, s), out, work, seen))
            return false;
    normalize(out);
    return out.size() <= kMaxStacks;
}

}  // namespace

State start(const Grammar& g) {
    State s;
    size_t work = 0;
    Seen seen;
    for (uint32_t a = g.rule_alts[g.root]; a < g.rule_alts[g.root + 1]; ++a) {
        Stack st;
        if (!is_end(g, g.alt_first[a])) st.push_back(g.alt_first[a]);
        if (!expand(g, std::move(st), s.stacks, work, seen))
            throw Error(Status::InvalidArgument, "grammar: too ambiguous (its start alone is over the limits)");
    }
    normalize(s.stacks);
    return s;
}

std::optional<State> advance(const Grammar& g, const State& from, std::string_view bytes) {
    State s;
    s.partial = from.partial;
    std::vector<uint32_t> cps;
    if (!decode_utf8(bytes, s.partial, cps)) return std::nullopt;
    s.stacks = from.stacks;
    StackSet next;
    for (const uint32_t cp : cps) {
        if (!step(g, s.stacks, cp, next) || next.empty()) return std::nullopt;
        s.stacks.swap(next);
    }
    if (s.partial.remain > 0) {
        bool any = false;
        for (const Stack& st : s.stacks) any = any || (!st.empty() && match_partial(g, g.elems[st.back()], s.partial));
        if (!any) return std::nullopt;
    }
    return s;
}

bool complete(const State& s) {
    if (s.partial.remain > 0) return false;
    return std::any_of(s.stacks.begin(), s.stacks.end(), [](const Stack& st) { return st.empty(); });
}

bool finished(const State& s) {
    return s.partial.remain == 0 && !s.stacks.empty() &&
           std::all_of(s.stacks.begin(), s.stacks.end(), [](const Stack& st) { return st.empty(); });
}

// ----------------------------------------------------------------------------------------------------------
// Token texts and the vocabulary filter
// ----------------------------------------------------------------------------------------------------------

TokenTexts::TokenTexts(const Tokenizer& tok) : tokenizer(tok) {
    const auto n = static_cast<size_t>(tok.n_vocab());
    byte_off.reserve(n + 1);
    cp_off.reserve(n + 1);
    tail.resize(n);
    kind.resize(n, kText);
    byte_off.push_back(0);
    cp_off.push_back(0);
    for (size_t t = 0; t < n; ++t) {
        const auto id = static_cast<Token>(t);
        const std::string piece = tok.piece(id, false);  // control tokens render nothing: never text
        const size_t before = cps.size();
        if (tok.is_end_of_generation(id)) {
            kind[t] = kEog;
        } else if (piece.empty() || piece.size() > 4 * kMaxTokenCodePoints) {
            kind[t] = kNever;
        } else if (!decode_utf8(piece, tail[t], cps)) {
            kind[t] = kPartial;
            tail[t] = {};
            cps.resize(before);
        } else if (cps.size() - before > kMaxTokenCodePoints) {
            kind[t] = kNever;
            cps.resize(before);
        }
        bytes += piece;
        byte_off.push_back(static_cast<uint32_t>(bytes.size()));
        cp_off.push_back(static_cast<uint32_t>(cps.size()));
    }
}

std::shared_ptr<const TokenTexts> TokenTexts::of(const Tokenizer& tok) {
    // Keyed by the vocabulary; an entry holds its vocabulary alive, so its address cannot be reused meanwhile.
    static std::mutex mu;
    static std::unordered_map<const void*, std::weak_ptr<const TokenTexts>> cache;
    const void* key = &tok.vocab();
    {
        std::lock_guard lock(mu);
        if (auto hit = cache[key].lock()) return hit;
    }
    auto made = std::make_shared<const TokenTexts>(tok);  // outside the lock: a 262k vocabulary takes a while
    std::lock_guard lock(mu);
    if (auto hit = cache[key].lock()) return hit;
    for (auto it = cache.begin(); it != cache.end();) it = it->second.expired() ? cache.erase(it) : std::next(it);
    cache[key] = made;
    return made;
}

namespace {

struct Cand {
    Token token;
    const uint32_t* cp;  // the next code point to match
    const uint32_t* end;
    Utf8Partial tail;
};

void reject_candidates(const Grammar& g, const StackSet& stacks, const std::vector<Cand>& cands, std::vector<Cand>& out);

// Of `cands`, those that `stack` cannot take, into `out`. Every candidate that the top matches advances to
// the same stacks, computed once: the work is shared across the vocabulary (llama.cpp's approach).
void reject_for_stack(const Grammar& g, const Stack& stack, const std::vector<Cand>& cands, std::vector<Cand>& out) {
    if (stack.empty()) {  // the grammar is complete here: only a token already at its end fits
        for (const Cand& c : cands)
            if (c.cp != c.end || c.tail.remain > 0) out.push_back(c);
        return;
    }
    const Elem& top = g.elems[stack.back()];
    std::vector<Cand> next;
    for (const Cand& c : cands) {
        if (c.cp == c.end) {
            if (c.tail.remain > 0 && !match_partial(g, top, c.tail)) out.push_back(c);
        } else if (match_char(g, top, *c.cp)) {
            next.push_back({c.token, c.cp + 1, c.end, c.tail});
        } else {
            out.push_back(c);
        }
    }
    if (next.empty()) return;
    StackSet after;
    size_t work = 0;
    Seen seen;
    if (!expand(g, after_match(g, stack), after, work, seen)) after.clear();  // over the limits: reject them
    normalize(after);
    std::vector<Cand> rejected;
    reject_candidates(g, after, next, rejected);
    for (Cand& c : rejected) {
        --c.cp;
        out.push_back(c);
    }
}

void reject_candidates(const Grammar& g, const StackSet& stacks, const std::vector<Cand>& cands, std::vector<Cand>& out) {
    if (cands.empty()) return;
    if (stacks.empty()) {
        out.insert(out.end(), cands.begin(), cands.end());
        return;
    }
    std::vector<Cand> left = cands, still;
    for (const Stack& s : stacks) {
        still.clear();
        reject_for_stack(g, s, left, still);
        left.swap(still);
        if (left.empty()) return;
    }
    out.insert(out.end(), left.begin(), left.end());
}

}  // namespace

void reject(const Grammar& g, const State& s, const TokenTexts& texts, const std::vector<Token>& tokens,
            std::vector<Token>& rejected) {
    const bool done = complete(s);
    std::vector<Cand> cands;
    std::vector<std::vector<uint32_t>> own;  // code points decoded after a split character
    if (s.partial.remain > 0) own.reserve(tokens.size());
    for (const Token t : tokens) {
        const auto i = static_cast<size_t>(t);
        if (texts.kind[i] == TokenTexts::kEog) {
            if (!done) rejected.push_back(t);
            continue;
        }
        if (texts.kind[i] == TokenTexts::kNever || (texts.kind[i] == TokenTexts::kPartial && s.partial.remain == 0)) {
            rejected.push_back(t);
            continue;
        }
        if (s.partial.remain == 0) {
            cands.push_back({t, texts.cps.data() + texts.cp_off[i], texts.cps.data() + texts.cp_off[i + 1], texts.tail[i]});
            continue;
        }
        // The previous token ended inside a character: this one's bytes complete it first.
        Utf8Partial p = s.partial;
        std::vector<uint32_t>& cps = own.emplace_back();
        if (!decode_utf8(texts.text(i), p, cps) || cps.size() > kMaxTokenCodePoints) {
            rejected.push_back(t);
            continue;
        }
        cands.push_back({t, cps.data(), cps.data() + cps.size(), p});
    }
    std::vector<Cand> out;
    reject_candidates(g, s.stacks, cands, out);
    for (const Cand& c : out) rejected.push_back(c.token);
}

}  // namespace ember::grammar
