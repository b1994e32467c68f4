// Chat-template built-ins: operators, attribute and item access (the sandbox's whole surface),
// filters, tests, string/dict methods and the globals HF's renderer provides.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "chat/eval.hpp"
#include "ember/error.hpp"

namespace ember::chat {

namespace {

using K = Value::Kind;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
char up(char c) { return c >= 'a' && c <= 'z' ? char(c - 32) : c; }
char low(char c) { return c >= 'A' && c <= 'Z' ? char(c + 32) : c; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (static_cast<unsigned char>(c) >= 0x80); }

std::string to_upper(std::string s) {
    for (char& c : s) c = up(c);
    return s;
}
std::string to_lower(std::string s) {
    for (char& c : s) c = low(c);
    return s;
}

// Python's str.strip family: `chars` none means whitespace.
std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
    auto strip_it = [&](char c) {
        return chars.is_string() ? chars.sv().find(c) != std::string::npos : is_space(c);
    };
    size_t a = 0, b = s.size();
    if (left) while (a < b && strip_it(s[a])) ++a;
    if (right) while (b > a && strip_it(s[b - 1])) --b;
    return s.substr(a, b - a);
}

std::vector<std::string> split(const std::string& s, const Value& sep, int64_t maxsplit) {
    std::vector<std::string> out;
    if (!sep.is_string()) {  // runs of whitespace, no empty parts
        size_t k = 0;
        while (true) {
            while (k < s.size() && is_space(s[k])) ++k;
            if (k >= s.size()) break;
            if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) {
                size_t e = s.size();
                while (e > k && is_space(s[e - 1])) --e;
                out.push_back(s.substr(k, e - k));
                break;
            }
            size_t e = k;
            while (e < s.size() && !is_space(s[e])) ++e;
            out.push_back(s.substr(k, e - k));
            k = e;
        }
        return out;
    }
    const std::string& d = sep.sv();
    size_t k = 0;
    while (true) {
        const size_t f = (maxsplit >= 0 && int64_t(out.size()) >= maxsplit) ? std::string::npos : s.find(d, k);
        if (f == std::string::npos) break;
        out.push_back(s.substr(k, f - k));
        k = f + d.size();
    }
    out.push_back(s.substr(k));
    return out;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count, size_t cap) {
    std::string out;
    size_t k = 0;
    int64_t n = 0;
    if (from.empty()) {  // Python inserts `to` between every character
        const auto b = utf8_bounds(s);
        for (size_t i = 0; i + 1 < b.size(); ++i) {
            if (count < 0 || n++ < count) out += to;
            out.append(s, b[i], b[i + 1] - b[i]);
            if (out.size() > cap) break;
        }
        if (count < 0 || n < count) out += to;
        return out;
    }
    while (count < 0 || n < count) {
        const size_t f = s.find(from, k);
        if (f == std::string::npos) break;
        out.append(s, k, f - k);
        out += to;
        k = f + from.size();
        ++n;
        if (out.size() > cap) return out;
    }
    out.append(s, k);
    return out;
}

std::string title(const std::string& s) {
    std::string out = s;
    bool prev_alpha = false;
    for (char& c : out) {
        c = prev_alpha ? low(c) : up(c);
        prev_alpha = is_alpha(c);
    }
    return out;
}

std::string capitalize(const std::string& s) {
    std::string out = to_lower(s);
    if (!out.empty()) out[0] = up(out[0]);
    return out;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
    return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

int64_t floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
    return q;
}

}  // namespace

// ---- operators ------------------------------------------------------------------------------

int Evaluator::compare(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        if (a.kind != K::Float && b.kind != K::Float) {
            const int64_t x = a.kind == K::Bool ? a.b : a.i, y = b.kind == K::Bool ? b.b : b.i;
            return x < y ? -1 : x > y;
        }
        const double x = a.as_double(), y = b.as_double();
        return x < y ? -1 : x > y;
    }
    if (a.is_string() && b.is_string()) return a.sv().compare(b.sv()) < 0 ? -1 : a.sv() != b.sv();
    if (a.is_list() && b.is_list()) {
        const size_t n = std::min(a.list->size(), b.list->size());
        for (size_t k = 0; k < n; ++k)
            if (int c = compare((*a.list)[k], (*b.list)[k])) return c;
        return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size();
    }
    if (a.is_undefined()) undefined_error(a);
    if (b.is_undefined()) undefined_error(b);
    fail(std::string("TypeError: '<' not supported between instances of '") + type_name(a) + "' and '" + type_name(b) + "'");
}

namespace {
bool contains(Evaluator& ev, const Value& hay, const Value& needle) {
    if (hay.is_string()) {
        if (!needle.is_string()) ev.fail(std::string("TypeError: 'in <string>' requires string as left operand, not ") + type_name(needle));
        return hay.sv().find(needle.sv()) != std::string::npos;
    }
    if (hay.is_dict()) return hay.dict->find(dict_key(needle)) != nullptr;
    for (const auto& x : ev.iterate(hay))
        if (equals(x, needle)) return true;
    return false;
}

template <typename Op>
Value checked(Evaluator& ev, int64_t x, int64_t y, Op op) {
    int64_t r = 0;
    if (op(x, y, &r)) ev.fail("OverflowError: integer overflow");
    return Value::integer(r);
}

int64_t ival(const Value& v) { return v.kind == K::Bool ? int64_t(v.b) : v.i; }
}  // namespace

Value Evaluator::binary(const std::string& op, const Value& a, const Value& b) {
    if (op == "==") return Value::boolean(equals(a, b));
    if (op == "!=") return Value::boolean(!equals(a, b));
    if (op == "~") return make_str(to_str(a) + to_str(b));
    if (op == "in") return Value::boolean(contains(*this, b, a));
    if (op == "not in") return Value::boolean(!contains(*this, b, a));
    if (op == "<") return Value::boolean(compare(a, b) < 0);
    if (op == ">") return Value::boolean(compare(a, b) > 0);
    if (op == "<=") return Value::boolean(compare(a, b) <= 0);
    if (op == ">=") return Value::boolean(compare(a, b) >= 0);
    if (a.is_undefined()) undefined_error(a);
    if (b.is_undefined()) undefined_error(b);
    if (op == "+" && a.is_string() && b.is_string()) {
        if (a.markup != b.markup) {  // markupsafe: Markup + str escapes the str
            Value r = make_str(a.markup ? a.sv() + html_escape(b.sv()) : html_escape(a.sv()) + b.sv());
            r.markup = true;
            return r;
        }
        if (a.sv().size() + b.sv().size() > limits_.max_output) oom("string too large");
        Value r = make_str(a.sv() + b.sv());
        r.markup = a.markup;
        return r;
    }
    if (op == "+" && a.is_list() && b.is_list()) {
        List l = *a.list;
        l.insert(l.end(), b.list->begin(), b.list->end());
        return make_list(std::move(l));
    }
    if (op == "*" && (a.is_string() || a.is_list()) && (b.kind == K::Int || b.kind == K::Bool)) {
        const int64_t n = std::max<int64_t>(0, ival(b));
        const size_t unit = a.is_string() ? a.sv().size() : a.list->size() * sizeof(Value);
        if (unit && uint64_t(n) > limits_.max_output / unit) oom("repetition too large");
        if (a.is_string()) {
            std::string s;
            for (int64_t k = 0; k < n; ++k) s += a.sv();
            return make_str(std::move(s));
        }
        List l;
        for (int64_t k = 0; k < n; ++k) l.insert(l.end(), a.list->begin(), a.list->end());
        return make_list(std::move(l));
    }
    if (op == "*" && (b.is_string() || b.is_list()) && (a.kind == K::Int || a.kind == K::Bool)) return binary(op, b, a);
    if (!a.is_number() || !b.is_number()) {
        if (op == "+" && (a.is_string() || b.is_string()))
            fail(std::string("TypeError: can only concatenate str (not \"") + type_name(a.is_string() ? b : a) + "\") to str");
        fail(std::string("TypeError: unsupported operand type(s) for ") + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
    }
    const bool flt = a.kind == K::Float || b.kind == K::Float;
    if (op == "/") {
        if (b.as_double() == 0) fail("ZeroDivisionError: division by zero");
        return Value::number(a.as_double() / b.as_double());
    }
    if (flt) {
        const double x = a.as_double(), y = b.as_double();
        if (op == "+") return Value::number(x + y);
        if (op == "-") return Value::number(x - y);
        if (op == "*") return Value::number(x * y);
        if (op == "**") return Value::number(std::pow(x, y));
        if (y == 0) fail("ZeroDivisionError: float division by zero");
        if (op == "//") return Value::number(std::floor(x / y));
        if (op == "%") return Value::number(x - std::floor(x / y) * y);
    }
    const int64_t x = ival(a), y = ival(b);
    if (op == "+") return checked(*this, x, y, [](int64_t p, int64_t q, int64_t* o) { return __builtin_add_overflow(p, q, o); });
    if (op == "-") return checked(*this, x, y, [](int64_t p, int64_t q, int64_t* o) { return __builtin_sub_overflow(p, q, o); });
    if (op == "*") return checked(*this, x, y, [](int64_t p, int64_t q, int64_t* o) { return __builtin_mul_overflow(p, q, o); });
    if (op == "**") {
        if (y < 0) return Value::number(std::pow(double(x), double(y)));
        if (x == 0 || x == 1) return Value::integer(y == 0 ? 1 : x);
        if (x == -1) return Value::integer(y % 2 ? -1 : 1);
        int64_t r = 1;
        for (int64_t k = 0; k < y; ++k)  // |x| >= 2 overflows within 63 rounds
            if (__builtin_mul_overflow(r, x, &r)) fail("OverflowError: integer overflow");
        return Value::integer(r);
    }
    if (y == 0) fail("ZeroDivisionError: integer division or modulo by zero");
    if (op == "//") return Value::integer(floordiv(x, y));
    if (op == "%") return Value::integer(x - floordiv(x, y) * y);
    fail("unknown operator " + op);
}

// ---- access ---------------------------------------------------------------------------------

std::vector<Value> Evaluator::iterate(const Value& v) {
    switch (v.kind) {
        case K::Undefined: return {};
        case K::List: return *v.list;
        case K::Dict: {
            std::vector<Value> keys;
            for (const auto& kv : v.dict->items) keys.push_back(key_value(kv.first));
            return keys;
        }
        case K::String: {
            const auto b = utf8_bounds(v.sv());
            std::vector<Value> chars;
            for (size_t k = 0; k + 1 < b.size(); ++k) chars.push_back(Value::str(v.sv().substr(b[k], b[k + 1] - b[k])));
            charge(v.sv().size() * 2);
            return chars;
        }
        default: fail(std::string("TypeError: '") + type_name(v) + "' object is not iterable");
    }
}

Value Evaluator::item(const Value& obj, const Value& key) {
    if (obj.is_undefined()) undefined_error(obj);
    if (obj.is_dict() || obj.kind == K::Namespace) {
        if (const Value* v = obj.dict->find(dict_key(key))) return *v;
        if (key.is_string()) return attribute(obj, key.sv());
        return Value::undefined("'dict object' has no attribute " + repr(key));
    }
    if ((obj.is_list() || obj.is_string()) && (key.kind == K::Int || key.kind == K::Bool)) {
        int64_t k = ival(key);
        if (obj.is_list()) {
            const int64_t n = int64_t(obj.list->size());
            if (k < 0) k += n;
            if (k < 0 || k >= n) return Value::undefined(std::string("'list object' has no element ") + std::to_string(ival(key)));
            return (*obj.list)[size_t(k)];
        }
        const auto b = utf8_bounds(obj.sv());
        const int64_t n = int64_t(b.size()) - 1;
        if (k < 0) k += n;
        if (k < 0 || k >= n) return Value::undefined("'str object' has no element " + std::to_string(ival(key)));
        return Value::str(obj.sv().substr(b[size_t(k)], b[size_t(k) + 1] - b[size_t(k)]));
    }
    if (key.is_string()) return attribute(obj, key.sv());
    return Value::undefined(std::string("'") + type_name(obj) + " object' has no element " + repr(key));
}

namespace {
const char* const kStrMethods[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "upper",
                                   "lower", "replace", "title", "capitalize", "format", "find", "count", "join",
                                   "splitlines", "isdigit", "isalpha", "isspace", "isupper", "islower"};
const char* const kDictMethods[] = {"items", "keys", "values", "get"};
const char* const kUnsafe[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear",
                               "popitem", "setdefault", "update", "add", "discard"};

template <size_t N>
bool listed(const char* const (&names)[N], const std::string& n) {
    for (const char* x : names)
        if (n == x) return true;
    return false;
}

Value str_method(Evaluator& ev, const std::string& s, const std::string& m, CallArgs& a);
Value dict_method(Evaluator& ev, const Value& d, const std::string& m, CallArgs& a);
}  // namespace

namespace {
Value loop_attribute(const Value& loop, const std::string& name) {
    const int64_t i = loop.i, n = int64_t(loop.list->size());
    if (name == "index") return Value::integer(i + 1);
    if (name == "index0") return Value::integer(i);
    if (name == "revindex") return Value::integer(n - i);
    if (name == "revindex0") return Value::integer(n - i - 1);
    if (name == "first") return Value::boolean(i == 0);
    if (name == "last") return Value::boolean(i + 1 == n);
    if (name == "length") return Value::integer(n);
    if (name == "depth") return Value::integer(1);
    if (name == "depth0") return Value::integer(0);
    if (name == "previtem") return i > 0 ? (*loop.list)[size_t(i - 1)] : Value::undefined("there is no previous item");
    if (name == "nextitem") return i + 1 < n ? (*loop.list)[size_t(i + 1)] : Value::undefined("there is no next item");
    if (name == "cycle")
        return Value::callable("cycle", [i](Evaluator& ev, CallArgs& a) {
            if (a.pos.empty()) ev.fail("TypeError: no items for cycling given");
            return a.pos[size_t(i) % a.pos.size()];
        });
    return Value::undefined("'LoopContext object' has no attribute '" + name + "'");
}
}  // namespace

Value Evaluator::attribute(const Value& obj, const std::string& name) {
    if (obj.is_undefined()) undefined_error(obj);
    if (obj.kind == K::Loop) return loop_attribute(obj, name);
    if (obj.kind == K::Namespace) {
        if (const Value* v = obj.dict->find(name)) return *v;
        return Value::undefined("'Namespace object' has no attribute '" + name + "'");
    }
    if ((obj.is_list() || obj.is_dict()) && listed(kUnsafe, name))
        fail("SecurityError: access to attribute '" + name + "' of '" + type_name(obj) + "' object is unsafe.");
    if (obj.is_dict()) {
        if (listed(kDictMethods, name))
            return Value::callable(name, [obj, name](Evaluator& ev, CallArgs& a) { return dict_method(ev, obj, name, a); });
        if (const Value* v = obj.dict->find(name)) return *v;
        return Value::undefined("'dict object' has no attribute '" + name + "'");
    }
    if (obj.is_string() && listed(kStrMethods, name)) {
        const std::string s = obj.sv();
        return Value::callable(name, [s, name](Evaluator& ev, CallArgs& a) { return str_method(ev, s, name, a); });
    }
    return Value::undefined(std::string("'") + type_name(obj) + " object' has no attribute '" + name + "'");
}

// ---- methods --------------------------------------------------------------------------------

namespace {

std::string py_format(Evaluator& ev, const std::string& f, CallArgs& a) {
    std::string out;
    size_t auto_idx = 0;
    for (size_t k = 0; k < f.size(); ++k) {
        const char c = f[k];
        if (c == '{' && k + 1 < f.size() && f[k + 1] == '{') { out += '{'; ++k; continue; }
        if (c == '}' && k + 1 < f.size() && f[k + 1] == '}') { out += '}'; ++k; continue; }
        if (c != '{') { out += c; continue; }
        const size_t e = f.find('}', k);
        if (e == std::string::npos) ev.fail("ValueError: bad format string");
        std::string field = f.substr(k + 1, e - k - 1);
        field = field.substr(0, field.find(':'));
        Value v;
        if (field.empty()) v = a.get(auto_idx++, "\x01");
        else if (std::isdigit(static_cast<unsigned char>(field[0]))) v = a.get(size_t(std::atoi(field.c_str())), "\x01");
        else v = a.get(SIZE_MAX, field);
        if (v.is_undefined()) ev.fail("KeyError: format field '" + field + "'");
        out += to_str(v);
        k = e;
    }
    return out;
}

Value str_list(Evaluator& ev, const std::vector<std::string>& parts) {
    List l;
    for (const auto& p : parts) l.push_back(Value::str(p));
    return ev.make_list(std::move(l));
}

Value str_method(Evaluator& ev, const std::string& s, const std::string& m, CallArgs& a) {
    if (m == "strip") return ev.make_str(strip(s, a.get(0, "chars"), true, true));
    if (m == "lstrip") return ev.make_str(strip(s, a.get(0, "chars"), true, false));
    if (m == "rstrip") return ev.make_str(strip(s, a.get(0, "chars"), false, true));
    if (m == "upper") return ev.make_str(to_upper(s));
    if (m == "lower") return ev.make_str(to_lower(s));
    if (m == "title") return ev.make_str(title(s));
    if (m == "capitalize") return ev.make_str(capitalize(s));
    if (m == "split" || m == "rsplit") {
        const Value ms = a.get(1, "maxsplit", Value::integer(-1));
        if (m == "rsplit" && ms.i >= 0) ev.fail("rsplit with maxsplit is not supported");
        ev.charge(s.size() * 2);
        return str_list(ev, split(s, a.get(0, "sep"), ms.i));
    }
    if (m == "splitlines") return str_list(ev, split(replace_all(s, "\r\n", "\n", -1, SIZE_MAX), Value::str("\n"), -1));
    if (m == "startswith" || m == "endswith") {
        const Value p = a.get(0, "prefix");
        std::vector<Value> options = p.is_list() ? *p.list : std::vector<Value>{p};
        for (const auto& o : options) {
            if (!o.is_string()) ev.fail(std::string("TypeError: ") + m + " arg must be str");
            if (m == "startswith" ? starts_with(s, o.sv()) : ends_with(s, o.sv())) return Value::boolean(true);
        }
        return Value::boolean(false);
    }
    if (m == "replace") {
        const Value from = a.get(0, "old"), to = a.get(1, "new"), n = a.get(2, "count", Value::integer(-1));
        if (!from.is_string() || !to.is_string()) ev.fail("TypeError: replace() arguments must be str");
        return ev.make_str(replace_all(s, from.sv(), to.sv(), n.i, ev.limits().max_output));
    }
    if (m == "format") return ev.make_str(py_format(ev, s, a));
    if (m == "find") {
        const Value sub = a.get(0, "sub");
        if (!sub.is_string()) ev.fail("TypeError: find() argument must be str");
        const size_t f = s.find(sub.sv());
        return Value::integer(f == std::string::npos ? -1 : int64_t(utf8_bounds(s.substr(0, f)).size()) - 1);
    }
    if (m == "count") {
        const Value sub = a.get(0, "sub");
        if (!sub.is_string() || sub.sv().empty()) ev.fail("count() needs a non-empty string");
        int64_t n = 0;
        for (size_t k = s.find(sub.sv()); k != std::string::npos; k = s.find(sub.sv(), k + sub.sv().size())) ++n;
        return Value::integer(n);
    }
    if (m == "join") {
        std::string out;
        bool first = true;
        for (const auto& x : ev.iterate(a.get(0, "iterable"))) {
            if (!first) out += s;
            out += to_str(x);
            first = false;
            if (out.size() > ev.limits().max_output) ev.oom("string too large");
        }
        return ev.make_str(std::move(out));
    }
    auto all = [&](auto pred) {
        if (s.empty()) return Value::boolean(false);
        for (char c : s)
            if (!pred(c)) return Value::boolean(false);
        return Value::boolean(true);
    };
    if (m == "isdigit") return all([](char c) { return c >= '0' && c <= '9'; });
    if (m == "isalpha") return all([](char c) { return is_alpha(c); });
    if (m == "isspace") return all([](char c) { return is_space(c); });
    if (m == "isupper") return Value::boolean(to_upper(s) == s && to_lower(s) != s);
    if (m == "islower") return Value::boolean(to_lower(s) == s && to_upper(s) != s);
    ev.fail("unknown str method " + m);
}

Value dict_method(Evaluator& ev, const Value& d, const std::string& m, CallArgs& a) {
    if (m == "get") {
        const Value key = a.get(0, "key");
        if (const Value* v = d.dict->find(dict_key(key))) return *v;
        return a.get(1, "default", Value::none());
    }
    List l;
    for (const auto& [k, v] : d.dict->items) {
        if (m == "keys") l.push_back(key_value(k));
        else if (m == "values") l.push_back(v);
        else l.push_back(Value::array({key_value(k), v}));
    }
    return ev.make_list(std::move(l));
}

}  // namespace
}  // namespace ember::chat
