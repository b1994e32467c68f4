// ember — pieces of the JSON Schema → GBNF converter shared by json_schema.cpp and regex_to_gbnf.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ember::schema {

constexpr uint32_t kMaxRegexRepeat = 10000;  // n and m of {n,m} in a pattern (the grammar's own limit)
constexpr int kMaxRegexNesting = 32;         // groups inside one another

// Throws Error(InvalidArgument) "json schema: <msg>".
[[noreturn]] void refuse(const std::string& msg);

// A GBNF string literal matching exactly `s` (UTF-8).
std::string literal(std::string_view s);

// A GBNF expression for the contents (between the quotes, JSON-escaped) of the strings that an ECMA-262
// regular expression matches, search semantics as JSON Schema's "pattern" has them: a branch not anchored
// with ^ / $ may have anything before / after it (the primitive rule `char`). The subset: literals and
// escapes, ., classes with ranges and negation, \d \w \s and their negations, groups ((?:...) and named
// ones too), |, ? * + {n} {n,} {n,m} (lazy forms too), ^ and $ at the ends of a top-level branch. Anything
// else (backreferences, lookarounds, \b, \p{..}, flags) is refused with InvalidArgument.
std::string pattern_to_gbnf(std::string_view pattern);

}  // namespace ember::schema
