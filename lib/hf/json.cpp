#include "hf/json.hpp"

#include <cmath>
#include <cstdint>
#include <filesystem>

#include "ember/error.hpp"
#include "util/json_limits.hpp"
#include "util/mapped_file.hpp"

namespace ember::hf {

void bad(const std::string& what, const std::string& msg) { throw Error(Status::BadFile, what + ": " + msg); }
void unsupported(const std::string& what, const std::string& msg) { throw Error(Status::Unsupported, what + ": " + msg); }

std::string read_text(const std::string& path, bool optional) {
    std::error_code ec;
    if (optional && !std::filesystem::exists(path, ec)) return {};
    const MappedFile f(path, false);  // regular files only; read once
    if (f.bytes().size() > kMaxJsonBytes)
        bad(path, std::to_string(f.bytes().size()) + " bytes is over the limit of " + std::to_string(kMaxJsonBytes));
    return {reinterpret_cast<const char*>(f.bytes().data()), f.bytes().size()};
}

Json parse_json(std::string_view text, const std::string& what) {
    return json_limits::parse<Json>(text, kMaxJsonBytes, kMaxJsonDepth, kMaxJsonValues,
                                    [&](const std::string& m) { bad(what, m); });
}

namespace {
std::string key_of(const std::string& what, const char* key) { return what + ": '" + key + "'"; }
const Json* member(const Json& o, const char* key) {
    if (!o.is_object()) return nullptr;
    auto it = o.find(key);
    return it == o.end() || it->is_null() ? nullptr : &*it;
}
}  // namespace

int64_t get_int(const Json& o, const char* key, int64_t def, int64_t lo, int64_t hi, const std::string& what) {
    const Json* v = member(o, key);
    if (!v) return def;
    int64_t x = 0;
    if (v->is_number_unsigned()) {
        const uint64_t u = v->get<uint64_t>();
        if (u > static_cast<uint64_t>(INT64_MAX)) bad(key_of(what, key), "out of range");
        x = static_cast<int64_t>(u);
    } else if (v->is_number_integer()) {
        x = v->get<int64_t>();
    } else {
        bad(key_of(what, key), "not an integer");
    }
    if (x < lo || x > hi)
        bad(key_of(what, key), std::to_string(x) + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
}

double get_float(const Json& o, const char* key, double def, double lo, double hi, const std::string& what) {
    const Json* v = member(o, key);
    if (!v) return def;
    if (!v->is_number()) bad(key_of(what, key), "not a number");
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi)
        bad(key_of(what, key), "outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
}

bool get_bool(const Json& o, const char* key, bool def, const std::string& what) {
    const Json* v = member(o, key);
    if (!v) return def;
    if (!v->is_boolean()) bad(key_of(what, key), "not a boolean");
    return v->get<bool>();
}

std::string get_string(const Json& o, const char* key, const std::string& def, const std::string& what) {
    const Json* v = member(o, key);
    if (!v) return def;
    if (!v->is_string()) bad(key_of(what, key), "not a string");
    return v->get<std::string>();
}

const Json* get_object(const Json& o, const char* key, const std::string& what) {
    const Json* v = member(o, key);
    if (v && !v->is_object()) bad(key_of(what, key), "not an object");
    return v;
}

const Json* get_array(const Json& o, const char* key, const std::string& what) {
    const Json* v = member(o, key);
    if (v && !v->is_array()) bad(key_of(what, key), "not an array");
    return v;
}

}  // namespace ember::hf
