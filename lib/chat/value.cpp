// Values of the chat-template engine: construction, Python-like str/repr/equality, JSON in and out.
#include "chat/value.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "ember/error.hpp"

namespace ember::chat {

namespace {
[[noreturn]] void fail(const std::string& msg) { throw Error(Status::InvalidArgument, msg); }
}  // namespace

const Value* Dict::find(std::string_view key) const {
    for (const auto& [k, v] : items)
        if (k == key) return &v;
    return nullptr;
}

void Dict::set(const std::string& key, Value v) {
    for (auto& [k, old] : items)
        if (k == key) { old = std::move(v); return; }
    items.emplace_back(key, std::move(v));
}

namespace {
constexpr char kIntKey = '\x01';  // prefix of an encoded integer key
}  // namespace

std::string dict_key(const Value& key) {
    if (key.kind == Value::Kind::Int) return kIntKey + std::to_string(key.i);
    return key.is_string() ? key.sv() : to_str(key);
}

Value key_value(const std::string& key) {
    if (!key.empty() && key[0] == kIntKey) return Value::integer(std::strtoll(key.c_str() + 1, nullptr, 10));
    return Value::str(key);
}

std::string key_text(const std::string& key) { return !key.empty() && key[0] == kIntKey ? key.substr(1) : key; }

Value Value::undefined(std::string what) {
    Value v;
    if (!what.empty()) v.name = std::make_shared<const std::string>(std::move(what));
    return v;
}
Value Value::none() { Value v; v.kind = Kind::None; return v; }
Value Value::boolean(bool x) { Value v; v.kind = Kind::Bool; v.b = x; return v; }
Value Value::integer(int64_t x) { Value v; v.kind = Kind::Int; v.i = x; return v; }
Value Value::number(double x) { Value v; v.kind = Kind::Float; v.f = x; return v; }
Value Value::str(std::string x) {
    Value v;
    v.kind = Kind::String;
    v.s = std::make_shared<const std::string>(std::move(x));
    return v;
}
int nesting(const Value& v) {
    if (v.kind == Value::Kind::Namespace) return v.dict->depth;
    return v.depth;
}

namespace {
int check_nesting(int d) {
    if (d > kMaxNesting) fail("values nest too deeply (over " + std::to_string(kMaxNesting) + " levels)");
    return d;
}
}  // namespace

void ns_set(const Value& ns, const std::string& key, Value v) {
    ns.dict->depth = check_nesting(std::max(ns.dict->depth, nesting(v) + 1));
    ns.dict->set(key, std::move(v));
}

Value Value::array(List x) {
    Value v;
    for (const auto& e : x) v.depth = std::max(v.depth, nesting(e));
    v.depth = check_nesting(v.depth + 1);
    v.kind = Kind::List;
    v.list = std::make_shared<const List>(std::move(x));
    return v;
}
Value Value::object(Dict x) {
    Value v;
    for (const auto& kv : x.items) v.depth = std::max(v.depth, nesting(kv.second));
    v.depth = check_nesting(v.depth + 1);
    x.depth = v.depth;
    v.kind = Kind::Dict;
    v.dict = std::make_shared<Dict>(std::move(x));
    return v;
}
Value Value::ns(Dict x) {
    Value v = object(std::move(x));
    v.kind = Kind::Namespace;
    return v;
}
Value Value::callable(std::string n, Builtin f) {
    Value v;
    v.kind = Kind::Callable;
    v.fn = std::make_shared<const Builtin>(std::move(f));
    v.name = std::make_shared<const std::string>(std::move(n));
    return v;
}

Value CallArgs::get(size_t n, std::string_view key, Value def) const {
    if (n < pos.size()) return pos[n];
    for (const auto& [k, v] : kw)
        if (k == key) return v;
    return def;
}

bool truthy(const Value& v) {
    switch (v.kind) {
        case Value::Kind::Undefined:
        case Value::Kind::None: return false;
        case Value::Kind::Bool: return v.b;
        case Value::Kind::Int: return v.i != 0;
        case Value::Kind::Float: return v.f != 0;
        case Value::Kind::String: return !v.s->empty();
        case Value::Kind::List: return v.generator || !v.list->empty();
        case Value::Kind::Dict: return !v.dict->items.empty();
        default: return true;
    }
}

bool equals(const Value& a, const Value& b) {
    using K = Value::Kind;
    if (a.is_number() && b.is_number()) {
        if (a.kind == K::Float || b.kind == K::Float) return a.as_double() == b.as_double();
        return (a.kind == K::Bool ? a.b : a.i) == (b.kind == K::Bool ? b.b : b.i);
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
        case K::Undefined:
        case K::None: return true;
        case K::String: return *a.s == *b.s;
        case K::List:
            if (a.list->size() != b.list->size()) return false;
            for (size_t k = 0; k < a.list->size(); ++k)
                if (!equals((*a.list)[k], (*b.list)[k])) return false;
            return true;
        case K::Dict:
            if (a.dict->items.size() != b.dict->items.size()) return false;
            for (const auto& [k, v] : a.dict->items) {
                const Value* o = b.dict->find(k);
                if (!o || !equals(v, *o)) return false;
            }
            return true;
        default: return a.dict == b.dict && a.fn == b.fn && a.list == b.list && a.i == b.i;
    }
}

std::string float_repr(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    char buf[40];
    for (int prec = 1; prec <= 17; ++prec) {  // shortest digits that read back exactly
        std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (std::strtod(buf, nullptr) == d) break;
    }
    // buf is d.ddde±XX: rebuild it the way Python's repr lays it out.
    std::string m(buf);
    const size_t e = m.find('e');
    const int exp = std::atoi(m.c_str() + e + 1);
    std::string digits;
    for (size_t k = 0; k < e; ++k)
        if (std::isdigit(static_cast<unsigned char>(m[k]))) digits += m[k];
    std::string r = d < 0 ? "-" : "";
    if (exp < -4 || exp >= 16) {
        r += digits[0];
        if (digits.size() > 1) r.append(".").append(digits, 1, std::string::npos);
        char eb[16];
        std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp) % 1000);
        return r.append(eb);
    }
    if (exp < 0) return r.append("0.").append(size_t(-exp - 1), '0').append(digits);
    const size_t whole = size_t(exp) + 1;
    if (digits.size() <= whole) return r.append(digits).append(whole - digits.size(), '0').append(".0");
    return r.append(digits, 0, whole).append(".").append(digits, whole, std::string::npos);
}

namespace {
std::string repr_str(const std::string& s) {
    const char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    std::string r(1, q);
    for (unsigned char c : s) {
        if (c == '\\') r += "\\\\";
        else if (c == q) { r += '\\'; r += char(c); }
        else if (c == '\n') r += "\\n";
        else if (c == '\r') r += "\\r";
        else if (c == '\t') r += "\\t";
        else if (c < 0x20 || c == 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", c);
            r += b;
        } else r += char(c);
    }
    return r + q;
}
}  // namespace

std::string repr(const Value& v) {
    switch (v.kind) {
        case Value::Kind::String: return repr_str(*v.s);
        case Value::Kind::List: {
            std::string r = "[";
            for (size_t k = 0; k < v.list->size(); ++k) {
                r += (k ? ", " : "") + repr((*v.list)[k]);
                if (r.size() > kMaxText) throw Error(Status::OutOfMemory, "text of a list too large");
            }
            return r + "]";
        }
        case Value::Kind::Dict: {
            std::string r = "{";
            bool first = true;
            for (const auto& [k, x] : v.dict->items) {
                r += (first ? "" : ", ") + repr(key_value(k)) + ": " + repr(x);
                first = false;
                if (r.size() > kMaxText) throw Error(Status::OutOfMemory, "text of a dict too large");
            }
            return r + "}";
        }
        default: return to_str(v);
    }
}

std::string to_str(const Value& v) {
    switch (v.kind) {
        case Value::Kind::Undefined: return "";
        case Value::Kind::None: return "None";
        case Value::Kind::Bool: return v.b ? "True" : "False";
        case Value::Kind::Int: return std::to_string(v.i);
        case Value::Kind::Float: return float_repr(v.f);
        case Value::Kind::String: return *v.s;
        case Value::Kind::List:
            if (v.generator) return "<generator object>";
            return repr(v);
        case Value::Kind::Dict: return repr(v);
        case Value::Kind::Namespace: return "<Namespace>";
        case Value::Kind::Callable: return "<function " + *v.name + ">";
        case Value::Kind::Loop: return "<LoopContext>";
    }
    return "";
}

const char* type_name(const Value& v) {
    switch (v.kind) {
        case Value::Kind::Undefined: return "Undefined";
        case Value::Kind::None: return "NoneType";
        case Value::Kind::Bool: return "bool";
        case Value::Kind::Int: return "int";
        case Value::Kind::Float: return "float";
        case Value::Kind::String: return "str";
        case Value::Kind::List: return v.generator ? "generator" : "list";
        case Value::Kind::Dict: return "dict";
        case Value::Kind::Namespace: return "Namespace";
        case Value::Kind::Callable: return "function";
        case Value::Kind::Loop: return "LoopContext";
    }
    return "object";
}

// ---- JSON out -------------------------------------------------------------------------------

namespace {

struct JsonWriter {
    const JsonStyle& st;
    size_t budget;
    std::string out;

    void put(std::string_view s) {
        if (out.size() + s.size() > budget) throw Error(Status::OutOfMemory, "tojson: output too large");
        out.append(s);
    }
    void newline(int depth) {
        if (st.indent < 0) return;
        put("\n");
        put(std::string(size_t(st.indent) * size_t(depth), ' '));
    }
    void string(const std::string& s) {
        std::string r = "\"";
        for (unsigned char c : s) {
            switch (c) {
                case '"': r += "\\\""; break;
                case '\\': r += "\\\\"; break;
                case '\n': r += "\\n"; break;
                case '\r': r += "\\r"; break;
                case '\t': r += "\\t"; break;
                case '\b': r += "\\b"; break;
                case '\f': r += "\\f"; break;
                default:
                    if (c < 0x20 || c == 0x7f) {
                        char b[8];
                        std::snprintf(b, sizeof b, "\\u%04x", c);
                        r += b;
                    } else r += char(c);
            }
        }
        put(r + "\"");
    }
    void value(const Value& v, int depth) {
        if (depth > 256) fail("tojson: nesting too deep");
        switch (v.kind) {
            case Value::Kind::None: put("null"); return;
            case Value::Kind::Bool: put(v.b ? "true" : "false"); return;
            case Value::Kind::Int: put(std::to_string(v.i)); return;
            case Value::Kind::Float:
                put(std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f < 0 ? "-Infinity" : "Infinity") : float_repr(v.f));
                return;
            case Value::Kind::String: string(*v.s); return;
            case Value::Kind::List:
                if (!v.generator) { list(*v.list, depth); return; }
                break;
            case Value::Kind::Dict: dict(*v.dict, depth); return;
            default: break;
        }
        fail(std::string("TypeError: Object of type ") + type_name(v) + " is not JSON serializable");
    }
    void list(const List& l, int depth) {
        if (l.empty()) { put("[]"); return; }
        put("[");
        for (size_t k = 0; k < l.size(); ++k) {
            if (k) put(st.item_sep);
            newline(depth + 1);
            value(l[k], depth + 1);
        }
        newline(depth);
        put("]");
    }
    void dict(const Dict& d, int depth) {
        if (d.items.empty()) { put("{}"); return; }
        std::vector<const std::pair<std::string, Value>*> items;
        for (const auto& kv : d.items) items.push_back(&kv);
        if (st.sort_keys)
            std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
        put("{");
        for (size_t k = 0; k < items.size(); ++k) {
            if (k) put(st.item_sep);
            newline(depth + 1);
            string(key_text(items[k]->first));
            put(st.key_sep);
            value(items[k]->second, depth + 1);
        }
        newline(depth);
        put("}");
    }
};

}  // namespace

std::string to_json(const Value& v, const JsonStyle& style, size_t budget) {
    JsonWriter w{style, budget, {}};
    w.value(v, 0);
    return std::move(w.out);
}

// ---- JSON in --------------------------------------------------------------------------------

namespace {

struct JsonReader {
    std::string_view t;
    size_t p = 0;
    int max_depth;

    [[noreturn]] void bad(const char* what) { fail("JSON: " + std::string(what) + " at offset " + std::to_string(p)); }
    void ws() {
        while (p < t.size() && (t[p] == ' ' || t[p] == '\t' || t[p] == '\n' || t[p] == '\r')) ++p;
    }
    bool eat(char c) {
        ws();
        if (p < t.size() && t[p] == c) { ++p; return true; }
        return false;
    }
    bool word(std::string_view w) {
        if (t.substr(p, w.size()) != w) return false;
        p += w.size();
        return true;
    }
    static void utf8(std::string& o, uint32_t cp) {
        if (cp < 0x80) o += char(cp);
        else if (cp < 0x800) { o += char(0xC0 | (cp >> 6)); o += char(0x80 | (cp & 0x3F)); }
        else if (cp < 0x10000) {
            o += char(0xE0 | (cp >> 12)); o += char(0x80 | ((cp >> 6) & 0x3F)); o += char(0x80 | (cp & 0x3F));
        } else {
            o += char(0xF0 | (cp >> 18)); o += char(0x80 | ((cp >> 12) & 0x3F));
            o += char(0x80 | ((cp >> 6) & 0x3F)); o += char(0x80 | (cp & 0x3F));
        }
    }
    uint32_t hex4() {
        if (p + 4 > t.size()) bad("short \\u escape");
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = t[p++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
            else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
            else bad("bad \\u escape");
        }
        return v;
    }
    void escape(std::string& o) {
        if (p >= t.size()) bad("unterminated string");
        const char c = t[p++];
        switch (c) {
            case 'n': o += '\n'; return;
            case 't': o += '\t'; return;
            case 'r': o += '\r'; return;
            case 'b': o += '\b'; return;
            case 'f': o += '\f'; return;
            case '/': case '\\': case '"': o += c; return;
            case 'u': break;
            default: bad("bad escape");
        }
        uint32_t cp = hex4();
        if (cp >= 0xD800 && cp < 0xDC00 && t.substr(p, 2) == "\\u") {  // surrogate pair
            const size_t save = p;
            p += 2;
            const uint32_t lo = hex4();
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else p = save;
        }
        utf8(o, cp);
    }
    std::string string() {
        if (!eat('"')) bad("expected a string");
        std::string o;
        while (true) {
            if (p >= t.size()) bad("unterminated string");
            const char c = t[p++];
            if (c == '"') return o;
            if (c == '\\') escape(o);
            else o += c;
        }
    }
    Value number() {
        const size_t start = p;
        if (p < t.size() && t[p] == '-') ++p;
        bool is_float = false;
        while (p < t.size() && (std::isdigit(static_cast<unsigned char>(t[p])) || t[p] == '.' || t[p] == 'e' ||
                                t[p] == 'E' || t[p] == '+' || t[p] == '-')) {
            if (!std::isdigit(static_cast<unsigned char>(t[p]))) is_float = true;
            ++p;
        }
        const std::string num(t.substr(start, p - start));
        if (num.empty() || num == "-") bad("bad value");
        char* end = nullptr;
        if (!is_float) {
            errno = 0;
            const long long v = std::strtoll(num.c_str(), &end, 10);
            if (errno == 0 && *end == 0) return Value::integer(v);
        }
        const double d = std::strtod(num.c_str(), &end);
        if (*end != 0) bad("bad number");
        return Value::number(d);
    }
    Value value(int depth) {
        if (depth > max_depth) bad("nesting too deep");
        ws();
        if (p >= t.size()) bad("unexpected end");
        const char c = t[p];
        if (c == '"') return Value::str(string());
        if (c == '[') return array(depth);
        if (c == '{') return object(depth);
        if (word("true")) return Value::boolean(true);
        if (word("false")) return Value::boolean(false);
        if (word("null")) return Value::none();
        return number();
    }
    Value array(int depth) {
        ++p;
        List l;
        if (eat(']')) return Value::array(std::move(l));
        do l.push_back(value(depth + 1)); while (eat(','));
        if (!eat(']')) bad("expected ']'");
        return Value::array(std::move(l));
    }
    Value object(int depth) {
        ++p;
        Dict d;
        if (eat('}')) return Value::object(std::move(d));
        do {
            ws();
            std::string k = string();
            if (!eat(':')) bad("expected ':'");
            d.set(k, value(depth + 1));
        } while (eat(','));
        if (!eat('}')) bad("expected '}'");
        return Value::object(std::move(d));
    }
};

}  // namespace

Value parse_json(std::string_view text, int max_depth) {
    JsonReader r{text, 0, max_depth};
    Value v = r.value(0);
    r.ws();
    if (r.p != text.size()) r.bad("trailing characters");
    return v;
}

std::string html_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::vector<size_t> utf8_bounds(std::string_view s) {
    std::vector<size_t> b;
    b.reserve(s.size() + 1);
    for (size_t k = 0; k < s.size(); ++k)
        if ((static_cast<unsigned char>(s[k]) & 0xC0) != 0x80) b.push_back(k);
    b.push_back(s.size());
    return b;
}

}  // namespace ember::chat
