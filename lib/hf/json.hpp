// JSON of a model folder's text files (config.json, tokenizer.json, tokenizer_config.json), read with
// bounds: the file's size, nesting and value count are capped before anything is built, and every typed
// read checks the type and range of what it finds. Errors are ember::Error(BadFile) naming the file and key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ember::hf {

using Json = nlohmann::json;

constexpr uint64_t kMaxJsonBytes = 256ull << 20;  // Gemma 3's tokenizer.json is 33 MB
constexpr uint64_t kMaxJsonValues = 16ull << 20;  // keys, values and opening brackets: Gemma 3's file has under 2.6M
constexpr int kMaxJsonDepth = 64;

// The text of a file, or "" when `optional` and it is absent. Throws Io, BadFile (over kMaxJsonBytes).
std::string read_text(const std::string& path, bool optional);

// Parses `text`; `what` names it in errors.
Json parse_json(std::string_view text, const std::string& what);

// Reads of an object's member, with `def` when the member is absent or null. A present member of the
// wrong type, or a number outside [lo, hi], throws BadFile naming `what` and the key.
int64_t get_int(const Json& o, const char* key, int64_t def, int64_t lo, int64_t hi, const std::string& what);
double get_float(const Json& o, const char* key, double def, double lo, double hi, const std::string& what);
bool get_bool(const Json& o, const char* key, bool def, const std::string& what);
std::string get_string(const Json& o, const char* key, const std::string& def, const std::string& what);
// The member when it is an object (nullptr when absent or null; BadFile for another type).
const Json* get_object(const Json& o, const char* key, const std::string& what);
const Json* get_array(const Json& o, const char* key, const std::string& what);

[[noreturn]] void bad(const std::string& what, const std::string& msg);
[[noreturn]] void unsupported(const std::string& what, const std::string& msg);

}  // namespace ember::hf
