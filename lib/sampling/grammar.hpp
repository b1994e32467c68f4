// ember — GBNF grammars (llama.cpp's format, see README "Grammars"): parsed into flat rules, matched by a
// pushdown recognizer over Unicode code points. A recognizer state is a set of stacks of positions in the
// rules (llama.cpp's idea); every size is capped so hostile grammars fail with an Error instead of running
// out of memory or time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ember/tokenizer.hpp"

namespace ember::grammar {

constexpr size_t kMaxTextBytes = size_t{1} << 20;  // GBNF text
constexpr size_t kMaxRules = size_t{1} << 16;      // rules, those made for groups and repetitions included
constexpr size_t kMaxElements = size_t{1} << 21;   // elements of all rules
constexpr int kMaxNesting = 256;                    // parentheses inside one another
constexpr uint32_t kMaxRepeat = 10000;              // m and n of {m,n}
constexpr size_t kMaxStacks = 4096;                 // parse stacks alive at once
constexpr size_t kMaxStackDepth = 4096;             // positions in one stack
constexpr size_t kMaxStepWork = size_t{1} << 18;    // expansions for one code point over all stacks
constexpr size_t kMaxTokenCodePoints = 1024;        // a longer token never matches (bounds the filter's recursion)

enum class Op : uint8_t { End, Alt, Ref, Char, CharNot };

// Ref: a = rule id. Char/CharNot: the code point ranges [a, a + b) of Grammar::ranges (CharNot with none is `.`).
struct Elem {
    Op op;
    uint32_t a = 0, b = 0;
};

struct Grammar {
    std::vector<Elem> elems;                            // every rule: alternative, Alt, alternative, ..., End
    std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive code point ranges of the character sets
    std::vector<uint32_t> alt_first;                    // first element of each alternative
    std::vector<uint32_t> rule_alts;                    // rule r's alternatives: alt_first[rule_alts[r] .. rule_alts[r + 1])
    uint32_t root = 0;
};

// Parses GBNF. Throws Error(InvalidArgument) "grammar: line L, column C: ..." for bad syntax, an undefined
// rule, left recursion, no `root`, or anything over the limits above.
std::shared_ptr<const Grammar> parse(std::string_view gbnf);

// UTF-8 decoding that may stop inside a character: `remain` continuation bytes are still expected and
// `value` holds the bits read so far.
struct Utf8Partial {
    uint32_t value = 0;
    int remain = 0;
    int length = 0;  // bytes of the whole character
};
// Appends the code points of `bytes`, continuing `partial` (updated). False on invalid UTF-8.
bool decode_utf8(std::string_view bytes, Utf8Partial& partial, std::vector<uint32_t>& out);

using Stack = std::vector<uint32_t>;  // positions in Grammar::elems; the top is a character set
using StackSet = std::vector<Stack>;  // sorted, without duplicates

// Where a text stands in the grammar: the stacks that can continue it and a split character at its end.
struct State {
    StackSet stacks;
    Utf8Partial partial;
};

State start(const Grammar& g);  // throws InvalidArgument when the start alone is over the limits
// The state after `bytes`, or nullopt when they cannot continue `from` (or would go over the limits).
std::optional<State> advance(const Grammar& g, const State& from, std::string_view bytes);
bool complete(const State& s);  // the text so far is a whole sentence of the grammar
bool finished(const State& s);  // complete, and no character may follow

// A token's text, decoded once per vocabulary: its code points from a clean start and the split character
// left at its end. Shared between samplers of one vocabulary (cached while any sampler holds it).
struct TokenTexts {
    Tokenizer tokenizer;  // keeps the vocabulary, and so the cache's key, alive
    std::vector<uint32_t> byte_off, cp_off;
    std::string bytes;
    std::vector<uint32_t> cps;
    std::vector<Utf8Partial> tail;
    std::vector<uint8_t> kind;  // what the token is to a grammar:
    static constexpr uint8_t kText = 0;     // text; cps and tail hold it decoded from a clean start
    static constexpr uint8_t kEog = 1;      // end of generation
    static constexpr uint8_t kNever = 2;    // nothing (a control token) or over kMaxTokenCodePoints
    static constexpr uint8_t kPartial = 3;  // invalid from a clean start: may only end a split character

    explicit TokenTexts(const Tokenizer& tok);
    static std::shared_ptr<const TokenTexts> of(const Tokenizer& tok);
    std::string_view text(size_t t) const { return {bytes.data() + byte_off[t], byte_off[t + 1] - byte_off[t]}; }
};

// The tokens among `tokens` whose text cannot continue `s` (an end-of-generation token: unless s is
// complete). Appends them to `rejected`.
void reject(const Grammar& g, const State& s, const TokenTexts& texts, const std::vector<Token>& tokens,
            std::vector<Token>& rejected);

}  // namespace ember::grammar
