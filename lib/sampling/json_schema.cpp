// JSON grammars: any JSON value, and JSON Schema → GBNF (the approach of llama.cpp's json_schema_to_grammar:
// one rule per schema node over shared primitive rules; written anew).
#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/error.hpp"
#include "ember/grammar.hpp"
#include "sampling/grammar.hpp"

namespace ember {

namespace {

using Json = nlohmann::ordered_json;  // ordered: optional properties keep the schema's order

constexpr size_t kMaxSchemaBytes = size_t{1} << 20;
constexpr int kMaxSchemaDepth = 64;
constexpr uint64_t kMaxSchemaValues = uint64_t{1} << 20;
constexpr int64_t kMaxItems = 1000;  // minItems / maxItems beyond this: refused / unbounded

// Shared rules. Whitespace is bounded so a model cannot pad forever.
const char* const kPrimitives[][2] = {
    {"ws", R"(( " " | "\n" [ \t]{0,20} )?)"},
    {"value", R"(object | array | string | number | "true" | "false" | "null")"},
    {"object", R"("{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}")"},
    {"array", R"("[" ws ( value ws ( "," ws value ws )* )? "]")"},
    {"string", R"("\"" char* "\"")"},
    {"char", R"([^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ))"},
    {"integer", R"("-"? ( "0" | [1-9] [0-9]{0,15} ))"},
    {"number", R"(integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?)"},
    {"boolean", R"("true" | "false")"},
    {"null", R"("null")"},
};

std::string primitives() {
    std::string out;
    for (const auto& [name, body] : kPrimitives) out += std::string(name) + " ::= " + body + "\n";
    return out;
}

[[noreturn]] void refuse(const std::string& msg) { throw Error(Status::InvalidArgument, "json schema: " + msg); }

// A GBNF string literal matching exactly `s`.
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

Json parse(std::string_view text) {
    if (text.size() > kMaxSchemaBytes) refuse("over the size limit of " + std::to_string(kMaxSchemaBytes) + " bytes");
    if (text.find('\0') != std::string_view::npos) refuse("not valid JSON: a NUL byte");
    uint64_t values = 0;
    // Called for every event before the value is built: the limits hold before memory is spent.
    auto limit = [&](int depth, Json::parse_event_t, Json&) {
        if (depth > kMaxSchemaDepth) refuse("nested deeper than " + std::to_string(kMaxSchemaDepth));
        if (++values > kMaxSchemaValues) refuse("more than " + std::to_string(kMaxSchemaValues) + " keys and values");
        return true;
    };
    try {
        return Json::parse(text.begin(), text.end(), limit, true, false);
    } catch (const Json::exception& e) {
        refuse(std::string("not valid JSON: ") + e.what());
    }
}

class Converter {
public:
    std::string run(const Json& schema) {
        const std::string root = visit(schema, 0);
        return "root ::= " + root + "\n" + rules_ + primitives();
    }

private:
    std::string rules_;
    int n_ = 0;

    std::string rule(const std::string& body) {
        std::string name = "s";
        name += std::to_string(++n_);
        rules_.append(name).append(" ::= ").append(body).append("\n");
        return name;
    }

    static int64_t count(const Json& s, const char* key, int64_t def) {
        const auto it = s.find(key);
        if (it == s.end()) return def;
        if (!it->is_number_integer() && !it->is_number_unsigned()) refuse(std::string("'") + key + "' must be an integer");
        if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return INT64_MAX;
        const int64_t v = it->get<int64_t>();
        if (v < 0) refuse(std::string("'") + key + "' must not be negative");
        return v;
    }

    // `x` repeated [lo, hi] times (hi < 0: no bound).
    static std::string repeated(const std::string& x, int64_t lo, int64_t hi) {
        if (hi < 0) return lo == 0 ? "( " + x + " )*" : "( " + x + " ){" + std::to_string(lo) + ",}";
        return "( " + x + " ){" + std::to_string(lo) + "," + std::to_string(hi) + "}";
    }

    std::string alternatives(const Json& list, int depth, const char* key) {
        if (!list.is_array() || list.empty()) refuse(std::string("'") + key + "' must be a non-empty array");
        std::string out = "( ";
        for (size_t i = 0; i < list.size(); ++i) out += (i ? " | " : "") + visit(list[i], depth + 1);
        return out + " )";
    }

    std::string visit(const Json& s, int depth) {
        if (depth > kMaxSchemaDepth) refuse("nested deeper than " + std::to_string(kMaxSchemaDepth));
        if (s.is_boolean()) {
            if (!s.get<bool>()) refuse("the schema false matches nothing");
            return "value";
        }
        if (!s.is_object()) refuse("a schema must be an object or a boolean");
        for (const char* k : {"$ref", "allOf", "not", "if", "patternProperties"})
            if (s.contains(k)) refuse(std::string("'") + k + "' is not supported");
        if (const auto c = s.find("const"); c != s.end()) return literal(c->dump());
        if (const auto e = s.find("enum"); e != s.end()) {
            if (!e->is_array() || e->empty()) refuse("'enum' must be a non-empty array");
            std::string out = "( ";
            for (size_t i = 0; i < e->size(); ++i) out += (i ? " | " : "") + literal((*e)[i].dump());
            return out + " )";
        }
        if (const auto a = s.find("anyOf"); a != s.end()) return alternatives(*a, depth, "anyOf");
        if (const auto o = s.find("oneOf"); o != s.end()) return alternatives(*o, depth, "oneOf");
        const auto t = s.find("type");
        if (t == s.end()) {
            if (s.contains("properties") || s.contains("additionalProperties")) return object(s, depth);
            if (s.contains("items")) return array(s, depth);
            return "value";
        }
        if (t->is_array()) {
            if (t->empty()) refuse("'type' must not be an empty array");
            std::string out = "( ";
            for (size_t i = 0; i < t->size(); ++i) out += (i ? " | " : "") + typed(s, (*t)[i], depth);
            return out + " )";
        }
        return typed(s, *t, depth);
    }

    std::string typed(const Json& s, const Json& type, int depth) {
        if (!type.is_string()) refuse("'type' must be a string or an array of strings");
        const std::string& t = type.get_ref<const std::string&>();
        if (t == "object") return object(s, depth);
        if (t == "array") return array(s, depth);
        if (t == "string") return string(s);
        if (t == "number" || t == "integer" || t == "boolean" || t == "null") return t;
        refuse("unknown type '" + t + "'");
    }

    std::string string(const Json& s) {
        const int64_t lo = count(s, "minLength", 0), hi = count(s, "maxLength", -1);
        if (lo == 0 && hi < 0) return "string";
        if (lo > grammar::kMaxRepeat || hi > static_cast<int64_t>(grammar::kMaxRepeat))
            refuse("minLength/maxLength over " + std::to_string(grammar::kMaxRepeat));
        if (hi >= 0 && hi < lo) refuse("maxLength < minLength");
        return rule(R"("\"" )" + repeated("char", lo, hi) + R"( "\"")");
    }

    std::string array(const Json& s, int depth) {
        const auto it = s.find("items");
        const std::string item = it == s.end() ? "value" : visit(*it, depth + 1);
        const int64_t lo = count(s, "minItems", 0);
        int64_t hi = count(s, "maxItems", -1);
        if (lo > kMaxItems) refuse("minItems over " + std::to_string(kMaxItems));
        if (hi > kMaxItems) hi = -1;
        if (hi >= 0 && hi < lo) refuse("maxItems < minItems");
        if (hi == 0) return rule(R"("[" ws "]")");
        const std::string more = repeated(R"("," ws )" + item + " ws", lo == 0 ? 0 : lo - 1, hi < 0 ? -1 : hi - 1);
        const std::string body = item + " ws " + more;
        return rule(R"("[" ws )" + (lo == 0 ? "( " + body + " )?" : body) + R"( "]")");
    }

    // Members in the schema's order, the required ones always there. A[i]: members i.. with none written
    // before; B[i]: the same after one was written (so each starts with a comma). Linear in the members.
    std::string object(const Json& s, int depth) {
        const auto props = s.find("properties");
        if (props != s.end() && !props->is_object()) refuse("'properties' must be an object");
        std::set<std::string> required;
        if (const auto r = s.find("required"); r != s.end()) {
            if (!r->is_array()) refuse("'required' must be an array");
            for (const auto& k : *r) {
                if (!k.is_string()) refuse("'required' must hold strings");
                required.insert(k.get<std::string>());
            }
        }
        const bool has_props = props != s.end() && !props->empty();
        std::string extra;  // a member beyond the properties, or "" when none may be
        if (const auto a = s.find("additionalProperties"); a != s.end()) {
            if (!(a->is_boolean() && !a->get<bool>())) extra = R"(string ws ":" ws )" + visit(*a, depth + 1) + " ws";
        } else if (!has_props) {
            return "object";  // no properties and nothing said: any object
        }
        std::vector<std::string> kv, names;
        if (props != s.end())
            for (const auto& [key, sub] : props->items()) {
                kv.push_back(literal(Json(key).dump()) + R"( ws ":" ws )" + visit(sub, depth + 1) + " ws");
                names.push_back(key);
            }
        for (const auto& k : required)
            if (std::find(names.begin(), names.end(), k) == names.end())
                refuse("required property '" + k + "' is not among the properties");
        std::string a_next, b_next;  // A[n], B[n]
        if (!extra.empty()) {
            b_next = rule(repeated(R"("," ws )" + extra, 0, -1));
            a_next = rule("( " + extra + " " + b_next + " )?");
        }
        for (size_t i = kv.size(); i-- > 0;) {
            const bool req = required.count(names[i]) > 0;
            const std::string take_a = kv[i] + " " + b_next, take_b = R"("," ws )" + kv[i] + " " + b_next;
            auto either = [&](const std::string& take, const std::string& skip) {
                if (req) return take;
                return skip.empty() ? "( " + take + " )?" : "( " + take + " | " + skip + " )";
            };
            const std::string a = rule(either(take_a, a_next)), b = rule(either(take_b, b_next));
            a_next = a;
            b_next = b;
        }
        return rule(R"("{" ws )" + a_next + R"( "}")");
    }
};

}  // namespace

void check_grammar(std::string_view gbnf) { (void)grammar::parse(gbnf); }

std::string json_grammar(bool object_only) { return std::string("root ::= ") + (object_only ? "object" : "value") + "\n" + primitives(); }

std::string json_schema_to_grammar(std::string_view schema_json) {
    const Json schema = parse(schema_json);
    std::string gbnf = Converter().run(schema);
    check_grammar(gbnf);  // the limits of a grammar hold for the one made here too
    return gbnf;
}

}  // namespace ember
