// JSON grammars: any JSON value, and JSON Schema → GBNF (the approach of llama.cpp's json_schema_to_grammar:
// one rule per schema node over shared primitive rules; written anew). Patterns: regex_to_gbnf.cpp.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/error.hpp"
#include "ember/grammar.hpp"
#include "sampling/grammar.hpp"
#include "sampling/regex_to_gbnf.hpp"
#include "util/json_limits.hpp"

namespace ember {

namespace {

using schema::literal;
using schema::refuse;
using Json = nlohmann::ordered_json;  // ordered: optional properties keep the schema's order

constexpr size_t kMaxSchemaBytes = size_t{1} << 20;
constexpr int kMaxSchemaDepth = 64;
constexpr uint64_t kMaxSchemaValues = uint64_t{1} << 20;
constexpr int64_t kMaxItems = 1000;  // minItems / maxItems beyond this: refused / unbounded
constexpr uint64_t kMaxMerges = uint64_t{1} << 14;  // schemas folded into allOf merges (nested ones blow up)
constexpr size_t kMaxAlternatives = 1024;           // anyOf alternatives made by distributing an allOf
constexpr uint64_t kMaxMergeWork = uint64_t{1} << 22;  // schema values copied or compared by merges
constexpr int64_t kMaxIntMagnitude = 9999999999999999;  // 16 digits, as the integer rule

// Keywords that say nothing about what is valid: skipped, and never a conflict in an allOf.
const std::set<std::string, std::less<>> kAnnotations = {
    "title", "description", "default", "examples", "example", "$comment", "$schema", "$id", "$anchor",
    "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "discriminator", "contentMediaType",
    "contentEncoding"};
// Keywords the converter reads; the others are ignored (and so dropped from allOf merges).
const std::set<std::string, std::less<>> kUsed = {
    "type", "properties", "required", "additionalProperties", "patternProperties", "items", "prefixItems",
    "additionalItems", "minItems", "maxItems", "minLength", "maxLength", "pattern", "format", "enum", "const",
    "anyOf", "oneOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "nullable", "not", "if",
    "then", "else"};

// String formats (RFC 3339 dates and times, RFC 4122 UUIDs), emitted only when a schema uses them.
const char* const kFormats[][2] = {
    {"format-date", R"([0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ))"},
    {"format-time", R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" ( [0-5] [0-9] | "60" ) ( "." [0-9]{1,9} )? )"
                    R"(( [zZ] | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))"},
    {"format-date-time", R"(format-date [tT] format-time)"},
    {"format-uuid", R"([0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12})"},
};

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

Json parse(std::string_view text) {
    return json_limits::parse<Json>(text, kMaxSchemaBytes, kMaxSchemaDepth, kMaxSchemaValues,
                                    [](const std::string& m) { refuse(m); });
}

std::string join_alternatives(const std::vector<std::string>& alts) {
    if (alts.size() == 1) return alts[0];
    std::string o = "(";
    for (size_t i = 0; i < alts.size(); ++i) o += (i ? " | " : " ") + alts[i];
    return o + " )";
}

// Integer ranges as decimal text. The digit strings of one length n from lo to hi (lo <= hi, both n digits):
// the first digits fixed where they agree, else split into lo's first digit, the digits between (any
// rest), and hi's first digit. Linear in n: only the split's ends recurse, each against 0...0 or 9...9.
std::string digit_range(const std::string& lo, const std::string& hi) {
    auto digit = [](char a, char b) { return a == b ? literal(std::string(1, a)) : std::string("[") + a + "-" + b + "]"; };
    const size_t n = lo.size();
    if (n == 1) return digit(lo[0], hi[0]);
    const std::string lo_rest = lo.substr(1), hi_rest = hi.substr(1);
    if (lo[0] == hi[0]) return literal(lo.substr(0, 1)) + " " + digit_range(lo_rest, hi_rest);
    const bool lo_zeros = lo_rest.find_first_not_of('0') == std::string::npos;
    const bool hi_nines = hi_rest.find_first_not_of('9') == std::string::npos;
    std::vector<std::string> alts;
    if (!lo_zeros) alts.push_back(literal(lo.substr(0, 1)) + " " + digit_range(lo_rest, std::string(n - 1, '9')));
    const char a = static_cast<char>(lo_zeros ? lo[0] : lo[0] + 1), b = static_cast<char>(hi_nines ? hi[0] : hi[0] - 1);
    if (a <= b) alts.push_back(digit(a, b) + " [0-9]{" + std::to_string(n - 1) + "}");
    if (!hi_nines) alts.push_back(literal(hi.substr(0, 1)) + " " + digit_range(std::string(n - 1, '0'), hi_rest));
    return join_alternatives(alts);
}

// The naturals from a to hi (none: up to 16 digits), without leading zeros: one digit_range per length.
std::string naturals(int64_t a, std::optional<int64_t> hi) {
    std::vector<std::string> alts;
    int64_t first = 0, last = 9;  // the smallest and largest numbers of `len` digits
    for (int len = 1; len <= 16; ++len, first = last + 1, last = last * 10 + 9) {
        const int64_t x = std::max(a, first), y = hi ? std::min(*hi, last) : last;
        if (x > y) continue;
        if (!hi && x == first && len > 1) {  // every longer number too
            alts.push_back("[1-9] [0-9]{" + std::to_string(len - 1) + ",15}");
            break;
        }
        alts.push_back(digit_range(std::to_string(x), std::to_string(y)));
    }
    return join_alternatives(alts);
}

// The integers in [lo, hi] (none: unbounded), as the integer rule writes them.
std::string integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi) {
    std::vector<std::string> alts;
    if (!lo || *lo < 0)
        alts.push_back(R"("-" )" + naturals(hi && *hi < 0 ? -*hi : 1, lo ? std::optional<int64_t>(-*lo) : std::nullopt));
    if (!hi || *hi >= 0) alts.push_back(naturals(lo ? std::max<int64_t>(*lo, 0) : 0, hi));
    return join_alternatives(alts);
}

// The values in j (objects and arrays count their members), stopping past `cap`.
uint64_t values_in(const Json& j, uint64_t cap) {
    uint64_t n = 0;
    std::vector<const Json*> todo{&j};
    while (!todo.empty() && n <= cap) {
        const Json* x = todo.back();
        todo.pop_back();
        ++n;
        if (x->is_structured())
            for (const auto& c : *x) todo.push_back(&c);
    }
    return n;
}

bool is_false(const Json& s) { return s.is_boolean() && !s.get<bool>(); }

// Both schemas apply.
Json all_of(const Json& a, const Json& b) { return Json{{"allOf", Json::array({a, b})}}; }

// An array schema in draft 2020-12's terms: the schemas of the first members in order (prefixItems, or drafts
// 4-7's items array), and the schema of the members after them (items, or additionalItems beside an items
// array). nullptr: no prefix; no schema for the rest (any value).
struct ArrayForm {
    const Json* prefix = nullptr;
    const Json* rest = nullptr;
};

ArrayForm array_form(const Json& s) {
    ArrayForm f;
    const auto p = s.find("prefixItems"), i = s.find("items"), a = s.find("additionalItems");
    if (p != s.end()) {
        if (!p->is_array()) refuse("'prefixItems' must be an array");
        if (i != s.end() && i->is_array()) refuse("'prefixItems' beside an 'items' array: two tuples in one schema");
        if (a != s.end()) refuse("'additionalItems' beside 'prefixItems' (draft 2020-12 names the rest 'items')");
        f.prefix = &*p;
        if (i != s.end()) f.rest = &*i;
    } else if (i != s.end() && i->is_array()) {
        f.prefix = &*i;
        if (a != s.end()) f.rest = &*a;
    } else if (i != s.end()) {
        f.rest = &*i;  // additionalItems beside an items schema (not an array) says nothing
    }
    return f;
}

bool annotations_only(const Json& s, std::string_view except = {}) {
    if (!s.is_object()) return false;
    for (const auto& [k, v] : s.items())
        if (k != except && !kAnnotations.count(k)) return false;
    return true;
}

class Converter {
public:
    explicit Converter(const Json& doc) : doc_(doc) {}

    std::string run() {
        const std::string root = visit(doc_, 0);
        std::string out = "root ::= " + root + "\n" + rules_;
        for (const auto& [name, body] : kFormats)
            if (formats_.count(name)) out += std::string(name) + " ::= " + body + "\n";
        return out + primitives();
    }

private:
    const Json& doc_;
    std::string rules_;
    int n_ = 0;
    std::map<std::string, std::string> refs_;  // $ref → its rule, named before its body is made (recursion ends)
    std::set<std::string> ref_names_;
    std::set<std::string, std::less<>> formats_;
    uint64_t merges_ = 0, merge_work_ = 0;

    // Merges copy and compare schemas: bounded, so a small schema cannot make them take minutes or gigabytes.
    void charge(uint64_t copies, const Json& j) {
        merge_work_ += copies * values_in(j, kMaxMergeWork);
        if (merge_work_ > kMaxMergeWork)
            refuse("allOf/anyOf: merging would copy more than " + std::to_string(kMaxMergeWork) + " schema values");
    }

    std::string rule(const std::string& body) {
        std::string name = "s";
        name += std::to_string(++n_);
        add_rule(name, body);
        return name;
    }
    void add_rule(const std::string& name, const std::string& body) {
        rules_.append(name).append(" ::= ").append(body).append("\n");
        // The grammar could not take more; stop before memory goes on it.
        if (rules_.size() > grammar::kMaxTextBytes)
            refuse("the grammar would be over " + std::to_string(grammar::kMaxTextBytes) + " bytes");
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

    // ---------------------------------------------------------------------------------------------------
    // $ref: JSON pointers into this document only
    // ---------------------------------------------------------------------------------------------------

    const Json& target(const Json& ref) const {
        if (!ref.is_string()) refuse("'$ref' must be a string");
        const std::string& r = ref.get_ref<const std::string&>();
        if (r.empty() || r[0] != '#')
            refuse("$ref '" + r + "': only references into this schema (\"#/$defs/Name\") are supported, not remote ones");
        const Json* at = &doc_;
        size_t i = 1;
        if (i < r.size() && r[i] != '/') refuse("$ref '" + r + "': not a JSON pointer (\"#/...\")");
        while (i < r.size()) {
            std::string token;  // one step, its ~1 ~0 and URI %XX escapes undone
            for (++i; i < r.size() && r[i] != '/'; ++i) {
                char c = r[i];
                if (c == '~' && i + 1 < r.size() && (r[i + 1] == '0' || r[i + 1] == '1')) {
                    c = r[++i] == '0' ? '~' : '/';
                } else if (c == '%' && i + 2 < r.size() && std::isxdigit(static_cast<unsigned char>(r[i + 1])) &&
                           std::isxdigit(static_cast<unsigned char>(r[i + 2]))) {
                    c = static_cast<char>(std::stoi(r.substr(i + 1, 2), nullptr, 16));
                    i += 2;
                }
                token += c;
            }
            if (at->is_object()) {
                const auto it = at->find(token);
                if (it == at->end()) refuse("$ref '" + r + "': no '" + token + "' in the schema");
                at = &*it;
            } else if (at->is_array() && !token.empty() && token.size() < 10 &&
                       token.find_first_not_of("0123456789") == std::string::npos && std::stoul(token) < at->size()) {
                at = &(*at)[std::stoul(token)];
            } else {
                refuse("$ref '" + r + "': no '" + token + "' in the schema");
            }
        }
        return *at;
    }

    // One rule per referenced schema, named before its body is made so that a recursive schema refers to it.
    std::string ref_rule(const Json& ref, int depth) {
        const Json& t = target(ref);
        const std::string& r = ref.get_ref<const std::string&>();
        if (const auto it = refs_.find(r); it != refs_.end()) return it->second;
        std::string base = "ref";  // ref-<last step>, in the characters a GBNF name may have
        const std::string last = r.substr(r.find_last_of('/') == std::string::npos ? 1 : r.find_last_of('/') + 1);
        if (!last.empty()) base += "-";
        for (const char c : last.substr(0, 40))
            base += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '-';
        std::string name = base;
        for (int k = 2; ref_names_.count(name); ++k) name = base + "-" + std::to_string(k);
        ref_names_.insert(name);
        refs_.emplace(r, name);
        const std::string body = visit(t, depth + 1);
        if (body == name) refuse("$ref '" + r + "' refers to itself");
        add_rule(name, body);
        return name;
    }

    // ---------------------------------------------------------------------------------------------------
    // allOf: the parts folded into one schema
    // ---------------------------------------------------------------------------------------------------

    // Adds what `s` asks (its $ref and allOf followed) to `into`.
    void absorb(Json& into, const Json& s, int depth) {
        if (depth > kMaxSchemaDepth) refuse("$ref/allOf nested deeper than " + std::to_string(kMaxSchemaDepth) + " (a cycle?)");
        if (++merges_ > kMaxMerges) refuse("allOf: more than " + std::to_string(kMaxMerges) + " schemas to merge");
        if (s.is_boolean()) {
            if (!s.get<bool>()) refuse("the schema false matches nothing");
            return;
        }
        if (!s.is_object()) refuse("a schema must be an object or a boolean");
        for (const auto& [k, v] : s.items()) {
            if (k == "$ref") {
                absorb(into, target(v), depth + 1);
            } else if (k == "allOf") {
                if (!v.is_array() || v.empty()) refuse("'allOf' must be a non-empty array");
                for (const auto& part : v) absorb(into, part, depth + 1);
            } else if (kUsed.count(k)) {
                charge(1, v);
                if (k != "prefixItems" && k != "items" && k != "additionalItems") merge_key(into, k, v);
            }
        }
        if (s.contains("prefixItems") || s.contains("items")) merge_tuple(into, s);
    }

    // The array keywords of `s` merged into those of `into` (kept as prefixItems and items) position by
    // position: member i follows into's prefix schema i (past its prefix: into's items) and s's likewise.
    // A position that both make false ends the array there.
    void merge_tuple(Json& into, const Json& s) {
        const ArrayForm a = array_form(into), b = array_form(s);
        static const Json kNone = Json::array();
        const Json& x = a.prefix ? *a.prefix : kNone;
        const Json& y = b.prefix ? *b.prefix : kNone;
        // The rest schemas are copied into the other's prefix positions.
        if (a.rest && y.size() > x.size()) charge(y.size() - x.size(), *a.rest);
        if (b.rest && x.size() > y.size()) charge(x.size() - y.size(), *b.rest);
        charge(1, x);
        auto conj = [](const Json* p, const Json* q) -> std::optional<Json> {  // nullopt: any value
            if (!p || !q) return p ? std::optional<Json>(*p) : q ? std::optional<Json>(*q) : std::nullopt;
            if (*p == *q || is_false(*p) || (q->is_boolean() && q->get<bool>())) return *p;
            if (is_false(*q) || (p->is_boolean() && p->get<bool>())) return *q;
            return all_of(*p, *q);
        };
        Json prefix = Json::array();
        bool closed = false;
        for (size_t i = 0; i < std::max(x.size(), y.size()); ++i) {
            std::optional<Json> m = conj(i < x.size() ? &x[i] : a.rest, i < y.size() ? &y[i] : b.rest);
            if (is_false(*m)) {
                closed = true;
                break;
            }
            prefix.push_back(std::move(*m));
        }
        std::optional<Json> rest = closed ? std::optional<Json>(false) : conj(a.rest, b.rest);
        into.erase("prefixItems");
        into.erase("items");
        if (!prefix.empty()) into["prefixItems"] = std::move(prefix);
        if (rest) into["items"] = std::move(*rest);
    }

    static std::set<std::string> type_set(const Json& t) {
        std::set<std::string> out;
        if (t.is_string()) out.insert(t.get<std::string>());
        else if (t.is_array())
            for (const auto& x : t) {
                if (!x.is_string()) refuse("'type' must be a string or an array of strings");
                out.insert(x.get<std::string>());
            }
        else refuse("'type' must be a string or an array of strings");
        return out;
    }

    void merge_key(Json& into, const std::string& k, const Json& v) {
        const auto it = into.find(k);
        if (it == into.end()) {
            into[k] = v;
            return;
        }
        Json& old = *it;
        if (old == v) return;
        if (k == "properties" || k == "patternProperties") {
            if (!old.is_object() || !v.is_object()) refuse("'" + k + "' must be an object");
            for (const auto& [name, sub] : v.items()) {
                const auto o = old.find(name);
                if (o == old.end()) old[name] = sub;
                else if (*o != sub) *o = all_of(*o, sub);
            }
        } else if (k == "required") {
            if (!old.is_array() || !v.is_array()) refuse("'required' must be an array");
            for (const auto& name : v)
                if (std::find(old.begin(), old.end(), name) == old.end()) old.push_back(name);
        } else if (k == "type") {
            const std::set<std::string> a = type_set(old), b = type_set(v);
            Json common = Json::array();
            for (const auto& t : a) {
                if (b.count(t)) common.push_back(t);
                else if (t == "integer" && b.count("number")) common.push_back(t);
                else if (t == "number" && b.count("integer")) common.push_back("integer");
            }
            if (common.empty()) refuse("allOf: the types " + old.dump() + " and " + v.dump() + " contradict");
            old = common.size() == 1 ? common[0] : common;
        } else if (k == "additionalProperties") {
            if (old.is_boolean() && !old.get<bool>()) return;
            old = v.is_boolean() && !v.get<bool>() ? v : all_of(old, v);
        } else if (k == "minItems" || k == "minLength" || k == "minimum" || k == "exclusiveMinimum") {
            if (!old.is_number() || !v.is_number()) refuse("allOf: '" + k + "' must be a number");
            if (v.get<double>() > old.get<double>()) old = v;
        } else if (k == "maxItems" || k == "maxLength" || k == "maximum" || k == "exclusiveMaximum") {
            if (!old.is_number() || !v.is_number()) refuse("allOf: '" + k + "' must be a number");
            if (v.get<double>() < old.get<double>()) old = v;
        } else if (k == "enum") {
            if (!old.is_array() || !v.is_array()) refuse("'enum' must be a non-empty array");
            Json common = Json::array();
            for (const auto& x : old)
                if (std::find(v.begin(), v.end(), x) != v.end()) common.push_back(x);
            if (common.empty()) refuse("allOf: the enums have no value in common");
            old = common;
        } else if (k == "anyOf" || k == "oneOf") {
            // (a | b) and (c | d): (a and c) | (a and d) | ...
            if (!old.is_array() || !v.is_array() || old.empty() || v.empty()) refuse("'" + k + "' must be a non-empty array");
            if (old.size() * v.size() > kMaxAlternatives) refuse("allOf: more than " + std::to_string(kMaxAlternatives) + " alternatives");
            charge(v.size(), old);
            charge(old.size(), v);
            Json product = Json::array();
            for (const auto& a : old)
                for (const auto& b : v) product.push_back(all_of(a, b));
            old = product;
        } else if (k == "not" || k == "if" || k == "then" || k == "else") {
            return;  // refused when the merged schema is visited
        } else {
            refuse("allOf: conflicting '" + k + "': " + old.dump() + " and " + v.dump());
        }
    }

    // ---------------------------------------------------------------------------------------------------
    // Schemas
    // ---------------------------------------------------------------------------------------------------

    std::string visit(const Json& s, int depth) {
        if (depth > kMaxSchemaDepth) refuse("nested deeper than " + std::to_string(kMaxSchemaDepth));
        if (s.is_boolean()) {
            if (!s.get<bool>()) refuse("the schema false matches nothing");
            return "value";
        }
        if (!s.is_object()) refuse("a schema must be an object or a boolean");
        for (const char* k : {"not", "if", "then", "else", "dependentSchemas", "dependentRequired", "unevaluatedProperties"})
            if (s.contains(k)) refuse(std::string("'") + k + "' is not supported");
        if (const auto n = s.find("nullable"); n != s.end() && n->is_boolean() && n->get<bool>()) {  // OpenAPI 3.0
            Json rest = s;
            rest.erase("nullable");
            return "( " + visit(rest, depth + 1) + " | null )";
        }
        if (const auto r = s.find("$ref"); r != s.end()) {
            if (annotations_only(s, "$ref")) return ref_rule(*r, depth);
            return merged(s, depth);  // $ref beside other keywords: both apply
        }
        if (const auto a = s.find("allOf"); a != s.end()) {
            if (!a->is_array() || a->empty()) refuse("'allOf' must be a non-empty array");
            // allOf: [{"$ref": ...}] (pydantic's form) keeps the referenced rule, recursion and all.
            if (a->size() == 1 && annotations_only(s, "allOf")) return visit((*a)[0], depth + 1);
            return merged(s, depth);
        }
        if (const auto c = s.find("const"); c != s.end()) return literal(c->dump());
        if (const auto e = s.find("enum"); e != s.end()) {
            if (!e->is_array() || e->empty()) refuse("'enum' must be a non-empty array");
            std::string out = "( ";
            for (size_t i = 0; i < e->size(); ++i) out += (i ? " | " : "") + literal((*e)[i].dump());
            return out + " )";
        }
        for (const char* k : {"anyOf", "oneOf"}) {
            const auto a = s.find(k);
            if (a == s.end()) continue;
            if (!a->is_array() || a->empty()) refuse(std::string("'") + k + "' must be a non-empty array");
            if (annotations_only(s, k)) return alternatives(*a, depth, k);
            // Keywords beside the alternatives apply to each of them (theirs first: members keep that order).
            if (a->size() > kMaxAlternatives) refuse(std::string("'") + k + "' with more than " + std::to_string(kMaxAlternatives) + " alternatives");
            Json rest = Json::object();  // what a merge reads of the rest
            for (const auto& [key, v] : s.items())
                if (key != k && kUsed.count(key)) rest[key] = v;
            charge(a->size(), rest);
            Json each = Json::array();
            for (const auto& alt : *a) each.push_back(Json{{"allOf", Json::array({rest, alt})}});
            return alternatives(each, depth, k);
        }
        const auto t = s.find("type");
        if (t == s.end()) {
            if (s.contains("properties") || s.contains("additionalProperties") || s.contains("patternProperties")) return object(s, depth);
            if (s.contains("items") || s.contains("prefixItems")) return array(s, depth);
            if (s.contains("pattern") || s.contains("format")) return string(s);
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

    std::string merged(const Json& s, int depth) {
        Json into = Json::object();
        absorb(into, s, depth + 1);
        return visit(into, depth + 1);
    }

    std::string typed(const Json& s, const Json& type, int depth) {
        if (!type.is_string()) refuse("'type' must be a string or an array of strings");
        const std::string& t = type.get_ref<const std::string&>();
        if (t == "object") return object(s, depth);
        if (t == "array") return array(s, depth);
        if (t == "string") return string(s);
        if (t == "integer") return integer(s);
        if (t == "number" || t == "boolean" || t == "null") return t;
        refuse("unknown type '" + t + "'");
    }

    // minimum / maximum and their exclusive forms (numbers, or draft 4's booleans) as a range of integers.
    // long double: exact for every int64 (a double is not past 2^53, within the 16 digits taken).
    static std::string integer(const Json& s) {
        auto bound = [&](const char* inclusive, const char* exclusive, bool lower) -> std::optional<long double> {
            std::optional<long double> b;
            auto tighter = [&](long double x) { b = !b ? x : lower ? std::max(*b, x) : std::min(*b, x); };
            const auto i = s.find(inclusive), e = s.find(exclusive);
            if (i != s.end()) {
                if (!i->is_number()) refuse(std::string("'") + inclusive + "' must be a number");
                const long double x = i->get<long double>();
                const bool strict = e != s.end() && e->is_boolean() && e->get<bool>();
                tighter(lower ? (strict ? std::floor(x) + 1 : std::ceil(x)) : (strict ? std::ceil(x) - 1 : std::floor(x)));
            }
            if (e != s.end() && !e->is_boolean()) {
                if (!e->is_number()) refuse(std::string("'") + exclusive + "' must be a number");
                const long double x = e->get<long double>();
                tighter(lower ? std::floor(x) + 1 : std::ceil(x) - 1);
            }
            return b;
        };
        const std::optional<long double> lo = bound("minimum", "exclusiveMinimum", true);
        const std::optional<long double> hi = bound("maximum", "exclusiveMaximum", false);
        if (!lo && !hi) return "integer";
        const auto kMax = static_cast<long double>(kMaxIntMagnitude);
        if ((lo && hi && *lo > *hi) || (lo && *lo > kMax) || (hi && *hi < -kMax))
            refuse("no integer of at most 16 digits is within minimum/maximum");
        std::optional<int64_t> a, b;  // beyond 16 digits: no bound, as the integer rule has none there
        if (lo && *lo >= -kMax) a = static_cast<int64_t>(*lo);
        if (hi && *hi <= kMax) b = static_cast<int64_t>(*hi);
        return integer_range(a, b);
    }

    // A pattern or a known format (either way minLength/maxLength are not enforced), else length bounds.
    std::string string(const Json& s) {
        if (const auto p = s.find("pattern"); p != s.end()) {
            if (!p->is_string()) refuse("'pattern' must be a string");
            return rule(R"("\"" )" + schema::pattern_to_gbnf(p->get<std::string>()) + R"( "\"")");
        }
        if (const auto f = s.find("format"); f != s.end() && f->is_string()) {
            const std::string name = "format-" + f->get<std::string>();
            for (const auto& [known, body] : kFormats)
                if (name == known) {
                    formats_.insert(name);
                    if (name == "format-date-time") formats_.insert({"format-date", "format-time"});
                    return rule(R"("\"" )" + name + R"( "\"")");
                }
        }
        const int64_t lo = count(s, "minLength", 0), hi = count(s, "maxLength", -1);
        if (lo == 0 && hi < 0) return "string";
        if (lo > grammar::kMaxRepeat || hi > static_cast<int64_t>(grammar::kMaxRepeat))
            refuse("minLength/maxLength over " + std::to_string(grammar::kMaxRepeat));
        if (hi >= 0 && hi < lo) refuse("maxLength < minLength");
        return rule(R"("\"" )" + repeated("char", lo, hi) + R"( "\"")");
    }

    // Members one schema each up to the tuple's length n (prefixItems or an items array, cut by maxItems or a
    // false schema), then the rest's (items, or additionalItems beside an items array). Members i >= minItems
    // are optional, in order: T[i] (the members from i on, each after a comma) is its own rule, so the grammar
    // is linear in n and nests no deeper.
    std::string array(const Json& s, int depth) {
        const ArrayForm f = array_form(s);
        const int64_t lo = count(s, "minItems", 0);
        int64_t hi = count(s, "maxItems", -1);
        if (lo > kMaxItems) refuse("minItems over " + std::to_string(kMaxItems));
        if (hi > kMaxItems) hi = -1;
        if (hi >= 0 && hi < lo) refuse("maxItems < minItems");
        size_t n = f.prefix ? f.prefix->size() : 0;
        if (hi >= 0) n = std::min(n, static_cast<size_t>(hi));
        if (n > static_cast<size_t>(kMaxItems))
            refuse("prefixItems/items: a tuple of more than " + std::to_string(kMaxItems) + " schemas");
        bool closed = (hi >= 0 && n == static_cast<size_t>(hi)) || (f.rest && is_false(*f.rest));  // none after n
        for (size_t i = 0; i < n; ++i)
            if (is_false((*f.prefix)[i])) {
                n = i;
                closed = true;
                break;
            }
        if (closed && static_cast<size_t>(lo) > n)  // (maxItems < minItems is refused above)
            refuse("minItems " + std::to_string(lo) + " but the tuple allows at most " + std::to_string(n) +
                   " members (a false schema in prefixItems, or items/additionalItems false)");
        if (n == 0 && closed) return rule(R"("[" ws "]")");
        std::vector<std::string> members;
        for (size_t i = 0; i < n; ++i) members.push_back(visit((*f.prefix)[i], depth + 1));
        std::string next;  // T[n]: the members after the tuple
        if (!closed) {
            const std::string item = f.rest ? visit(*f.rest, depth + 1) : "value";
            const int64_t at = static_cast<int64_t>(n);
            if (n == 0) {
                const std::string more = repeated(R"("," ws )" + item + " ws", lo == 0 ? 0 : lo - 1, hi < 0 ? -1 : hi - 1);
                const std::string body = item + " ws " + more;
                return rule(R"("[" ws )" + (lo == 0 ? "( " + body + " )?" : body) + R"( "]")");
            }
            next = repeated(R"("," ws )" + item + " ws", std::max<int64_t>(lo - at, 0), hi < 0 ? -1 : hi - at);
        }
        for (size_t i = n; i-- > 1;) {  // T[i] from T[i + 1]
            std::string take = R"("," ws )" + members[i] + " ws" + (next.empty() ? "" : " " + next);
            next = static_cast<int64_t>(i) < lo ? take : rule("( " + take + " )?");
        }
        const std::string body = members[0] + " ws" + (next.empty() ? "" : " " + next);
        return rule(R"("[" ws )" + (lo == 0 ? "( " + body + " )?" : body) + R"( "]")");
    }

    // Members in the schema's order, the required ones always there. A[i]: members i.. with none written
    // before; B[i]: the same after one was written (so each starts with a comma). Linear in the members.
    // Members beyond the properties (patternProperties, additionalProperties) come after them.
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
        std::vector<std::string> extras;  // the kinds of member beyond the properties
        const auto pp = s.find("patternProperties");
        if (pp != s.end()) {
            if (!pp->is_object()) refuse("'patternProperties' must be an object");
            for (const auto& [pattern, sub] : pp->items())
                extras.push_back(rule(R"("\"" )" + schema::pattern_to_gbnf(pattern) + R"( "\"")") + R"( ws ":" ws )" +
                                 visit(sub, depth + 1) + " ws");
        }
        if (const auto a = s.find("additionalProperties"); a != s.end()) {
            if (!(a->is_boolean() && !a->get<bool>())) extras.push_back(R"(string ws ":" ws )" + visit(*a, depth + 1) + " ws");
        } else if (!has_props && pp == s.end()) {
            return "object";  // no properties and nothing said: any object
        }
        const std::string extra = extras.empty() ? "" : join_alternatives(extras);
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
    std::string gbnf = Converter(schema).run();
    try {
        check_grammar(gbnf);  // the limits of a grammar hold for the one made here too
    } catch (const Error& e) {
        // Over a limit, or a $ref cycle that writes nothing before coming back (left recursion).
        throw Error(Status::InvalidArgument, std::string("json schema: the grammar made from it is refused: ") + e.what());
    }
    return gbnf;
}

}  // namespace ember
