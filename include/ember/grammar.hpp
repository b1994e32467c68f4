// ember — grammars for constrained sampling (Sampler::set_grammar, SamplerParams::grammar): GBNF, the format
// of llama.cpp's grammars/README.md, and grammars made from JSON or a JSON Schema.
#pragma once

#include <string>
#include <string_view>

namespace ember {

// Checks GBNF text as set_grammar would: InvalidArgument "grammar: line L, column C: ..." when it is bad.
void check_grammar(std::string_view gbnf);

// GBNF for any JSON value (object_only: for a JSON object, OpenAI's "json_object" mode). Whitespace between
// tokens is bounded (a space, or a newline and up to 20 blanks) so a model cannot pad forever.
std::string json_grammar(bool object_only = false);

// GBNF for the JSON documents valid under a JSON Schema (a subset, README "Grammars and JSON"): type,
// properties with required (the others optional, in the schema's order), additionalProperties (false by
// default when properties are given; true or a schema allows more members after them), patternProperties,
// items, tuples (prefixItems, or drafts 4-7's items array with additionalItems), minItems/maxItems,
// minLength/maxLength, enum, const, anyOf/oneOf, nullable, $ref into the same
// document (recursion included: one rule per referenced schema), allOf (merged), pattern (a regex subset),
// format date/time/date-time/uuid, integer minimum/maximum (exclusive too), and {} or true for any value.
// Annotations and other keywords are ignored. InvalidArgument for JSON that does not parse or a schema it
// cannot take: remote $ref, a missing target, a $ref cycle that consumes nothing, contradicting allOf parts,
// minItems beyond a closed tuple, not/if, patterns with backreferences or lookarounds, anything over the limits.
std::string json_schema_to_grammar(std::string_view schema_json);

}  // namespace ember
