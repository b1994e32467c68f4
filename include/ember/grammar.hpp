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

// GBNF for the JSON documents valid under a JSON Schema (a subset): type (object, array, string, number,
// integer, boolean, null, or a list of them), properties with required (the others optional, in the
// schema's order), additionalProperties (false by default when properties are given; true or a schema
// allows more members after them), items, minItems/maxItems, minLength/maxLength, enum, const, anyOf/oneOf,
// and {} or true for any value. Other keywords (description, format, pattern, minimum...) are ignored;
// $ref, allOf and not are refused. InvalidArgument for JSON that does not parse or a schema it cannot take.
std::string json_schema_to_grammar(std::string_view schema_json);

}  // namespace ember
