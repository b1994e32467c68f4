// Chat-template filters, tests and globals (range, namespace, dict, raise_exception, strftime_now).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "chat/eval.hpp"
#include "ember/error.hpp"

namespace ember::chat {

namespace {

using K = Value::Kind;

char low(char c) { return c >= 'A' && c <= 'Z' ? char(c + 32) : c; }
char up(char c) { return c >= 'a' && c <= 'z' ? char(c - 32) : c; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

Value lowered(const Value& v) {
    if (!v.is_string()) return v;
    std::string s = v.sv();
    for (char& c : s) c = low(c);
    return Value::str(std::move(s));
}

// "a.b.0" looks up a, then b, then index 0, as jinja2's make_attrgetter does.
Value attr_path(Evaluator& ev, Value v, const std::string& path) {
    size_t k = 0;
    while (k <= path.size()) {
        const size_t dot = path.find('.', k);
        const std::string part = path.substr(k, dot == std::string::npos ? std::string::npos : dot - k);
        const bool num = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (v.is_undefined()) return v;
        v = ev.item(v, num ? Value::integer(std::atoll(part.c_str())) : Value::str(part));
        if (dot == std::string::npos) break;
        k = dot + 1;
    }
    return v;
}

std::string indent(const std::string& s, const Value& width, bool first, bool blank) {
    const std::string pad = width.is_string() ? width.sv() : std::string(size_t(std::clamp<int64_t>(width.i, 0, 256)), ' ');
    std::vector<std::string> lines;
    const std::string t = s + "\n";  // jinja2 appends a newline before splitlines
    size_t k = 0;
    while (k < t.size()) {
        const size_t e = t.find('\n', k);
        lines.push_back(t.substr(k, e - k));
        k = e + 1;
    }
    std::string out = lines.empty() ? std::string() : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) out += "\n" + ((blank || !lines[i].empty()) ? pad + lines[i] : lines[i]);
    return first ? pad + out : out;
}

Value to_int(const Value& v, const Value& def) {
    switch (v.kind) {
        case K::Int: return v;
        case K::Bool: return Value::integer(v.b);
        case K::Float: return std::isfinite(v.f) ? Value::integer(int64_t(v.f)) : def;
        case K::String: {
            const std::string s = v.sv();
            char* end = nullptr;
            errno = 0;
            const long long i = std::strtoll(s.c_str(), &end, 10);
            if (!s.empty() && errno == 0 && *end == 0) return Value::integer(i);
            const double d = std::strtod(s.c_str(), &end);
            if (!s.empty() && *end == 0 && std::isfinite(d)) return Value::integer(int64_t(d));
            return def;
        }
        default: return def;
    }
}

Value to_float(const Value& v, const Value& def) {
    if (v.is_number()) return Value::number(v.as_double());
    if (v.is_string()) {
        char* end = nullptr;
        const double d = std::strtod(v.sv().c_str(), &end);
        if (!v.sv().empty() && *end == 0) return Value::number(d);
    }
    return def;
}

}  // namespace

// ---- filters --------------------------------------------------------------------------------

namespace {

Value json_filter(Evaluator& ev, const Value& v, CallArgs& a) {
    JsonStyle st;
    const Value ind = a.get(0, "indent");
    if (ind.kind == K::Int) {
        st.indent = int(std::clamp<int64_t>(ind.i, 0, 64));
        st.item_sep = ",";
    }
    const Value seps = a.get(SIZE_MAX, "separators");
    if (seps.is_list() && seps.list->size() == 2 && (*seps.list)[0].is_string() && (*seps.list)[1].is_string()) {
        st.item_sep = (*seps.list)[0].sv();
        st.key_sep = (*seps.list)[1].sv();
    }
    st.sort_keys = truthy(a.get(SIZE_MAX, "sort_keys"));
    if (v.is_undefined()) ev.fail("TypeError: Object of type Undefined is not JSON serializable");
    try {
        return ev.make_str(to_json(v, st, ev.limits().max_output));
    } catch (const Error& e) {
        if (e.status() == Status::OutOfMemory) ev.oom(e.what());
        ev.fail(e.what());
    }
}

std::vector<Value> sorted(Evaluator& ev, std::vector<Value> items, bool reverse, bool case_sensitive,
                          const std::string& attribute) {
    std::vector<std::pair<Value, Value>> keyed;
    for (auto& x : items) {
        Value key = attribute.empty() ? x : attr_path(ev, x, attribute);
        keyed.emplace_back(case_sensitive ? key : lowered(key), std::move(x));
    }
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& p, const auto& q) {
        return reverse ? ev.compare(q.first, p.first) < 0 : ev.compare(p.first, q.first) < 0;
    });
    std::vector<Value> out;
    for (auto& kv : keyed) out.push_back(std::move(kv.second));
    return out;
}

// select/reject/selectattr/rejectattr: a test on each item (or on its attribute), kept if it passes.
Value select(Evaluator& ev, const Value& v, CallArgs& a, bool by_attr, bool keep) {
    size_t k = 0;
    std::string attr;
    if (by_attr) {
        const Value at = a.get(k++, "attribute");
        if (!at.is_string()) ev.fail("selectattr needs an attribute name");
        attr = at.sv();
    }
    const Value test = a.get(k++, "\x01");
    if (!truthy(v)) return ev.make_list({}, true);  // jinja2 selects from a falsy value (none) nothing
    CallArgs targs;
    targs.pos.assign(a.pos.begin() + std::min(a.pos.size(), k), a.pos.end());
    List out;
    for (const auto& x : ev.iterate(v)) {
        ev.step();
        const Value subject = by_attr ? attr_path(ev, x, attr) : x;
        const bool pass = test.is_string() ? ev.test(test.sv(), subject, targs) : truthy(subject);
        if (pass == keep) out.push_back(x);
    }
    return ev.make_list(std::move(out), true);
}

Value map_filter(Evaluator& ev, const Value& v, CallArgs& a) {
    const Value attr = a.get(SIZE_MAX, "attribute");
    List out;
    if (!truthy(v)) return ev.make_list({}, true);  // as jinja2: map over none gives nothing
    if (attr.is_string()) {
        const Value def = a.get(SIZE_MAX, "default");
        for (const auto& x : ev.iterate(v)) {
            Value r = attr_path(ev, x, attr.sv());
            out.push_back(r.is_undefined() && !def.is_undefined() ? def : r);
        }
        return ev.make_list(std::move(out), true);
    }
    const Value name = a.get(0, "\x01");
    if (!name.is_string()) ev.fail("map needs a filter name or attribute=");
    CallArgs fargs;
    fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
    fargs.kw = a.kw;
    for (const auto& x : ev.iterate(v)) {
        ev.step();
        CallArgs copy = fargs;
        out.push_back(ev.filter(name.sv(), x, copy));
    }
    return ev.make_list(std::move(out), true);
}

Value join_filter(Evaluator& ev, const Value& v, CallArgs& a) {
    const Value sep = a.get(0, "d", Value::str(""));
    const Value attr = a.get(1, "attribute");
    std::string out;
    bool first = true;
    for (const auto& x : ev.iterate(v)) {
        if (!first) out += to_str(sep);
        out += to_str(attr.is_string() ? attr_path(ev, x, attr.sv()) : x);
        first = false;
        if (out.size() > ev.limits().max_output) ev.oom("string too large");
    }
    return ev.make_str(std::move(out));
}

Value items_filter(Evaluator& ev, const Value& v) {
    if (v.is_undefined()) return ev.make_list({});
    if (!v.is_dict()) ev.fail("TypeError: can only get item pairs from a mapping");
    List l;
    for (const auto& [k, x] : v.dict->items) l.push_back(Value::array({key_value(k), x}));
    return ev.make_list(std::move(l));
}

Value dictsort(Evaluator& ev, const Value& v, CallArgs& a) {
    if (!v.is_dict()) ev.fail("TypeError: dictsort needs a mapping");
    const bool cs = truthy(a.get(0, "case_sensitive"));
    const Value by = a.get(1, "by", Value::str("key"));
    const bool reverse = truthy(a.get(2, "reverse"));
    List pairs;
    for (const auto& [k, x] : v.dict->items) pairs.push_back(Value::array({key_value(k), x}));
    const int pos = by.is_string() && by.sv() == "value" ? 1 : 0;
    std::vector<std::pair<Value, Value>> keyed;
    for (auto& p : pairs) keyed.emplace_back(cs ? (*p.list)[size_t(pos)] : lowered((*p.list)[size_t(pos)]), p);
    std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& p, const auto& q) {
        return reverse ? ev.compare(q.first, p.first) < 0 : ev.compare(p.first, q.first) < 0;
    });
    List out;
    for (auto& kv : keyed) out.push_back(kv.second);
    return ev.make_list(std::move(out));
}

Value unique(Evaluator& ev, const Value& v, CallArgs& a) {
    const bool cs = truthy(a.get(0, "case_sensitive"));
    const Value attr = a.get(1, "attribute");
    List out, seen;
    for (const auto& x : ev.iterate(v)) {
        ev.step();
        Value key = attr.is_string() ? attr_path(ev, x, attr.sv()) : x;
        if (!cs) key = lowered(key);
        if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) continue;
        seen.push_back(key);
        out.push_back(x);
    }
    return ev.make_list(std::move(out), true);
}

Value length(Evaluator& ev, const Value& v) {
    switch (v.kind) {
        case K::Undefined: return Value::integer(0);
        case K::String: return Value::integer(int64_t(utf8_bounds(v.sv()).size()) - 1);
        case K::List:
            if (v.generator) ev.fail("TypeError: object of type 'generator' has no len()");
            return Value::integer(int64_t(v.list->size()));
        case K::Dict: return Value::integer(int64_t(v.dict->items.size()));
        default: ev.fail(std::string("TypeError: object of type '") + type_name(v) + "' has no len()");
    }
}

Value first_last(Evaluator& ev, const Value& v, bool last) {
    const std::vector<Value> items = ev.iterate(v);
    if (items.empty()) return Value::undefined("No first item, sequence was empty.");
    return last ? items.back() : items.front();
}

Value batch(Evaluator& ev, const Value& v, CallArgs& a) {
    const Value n = a.get(0, "linecount");
    const Value fill = a.get(1, "fill_with");
    if (n.kind != K::Int || n.i <= 0 || n.i > ev.limits().max_range) ev.fail("batch needs a size from 1 to MAX_RANGE");
    List out, cur;
    for (const auto& x : ev.iterate(v)) {
        cur.push_back(x);
        if (int64_t(cur.size()) == n.i) out.push_back(ev.make_list(std::exchange(cur, {})));
    }
    if (!cur.empty()) {
        if (!fill.is_undefined())
            while (int64_t(cur.size()) < n.i) cur.push_back(fill);
        out.push_back(ev.make_list(std::move(cur)));
    }
    return ev.make_list(std::move(out), true);
}

Value round_filter(Evaluator& ev, const Value& v, CallArgs& a) {
    if (!v.is_number()) ev.fail("TypeError: round needs a number");
    const int64_t prec = std::clamp<int64_t>(a.get(0, "precision", Value::integer(0)).i, 0, 15);
    const Value method = a.get(1, "method", Value::str("common"));
    const double scale = std::pow(10.0, double(prec));
    const double x = v.as_double() * scale;
    const std::string m = method.is_string() ? method.sv() : "common";
    const double r = m == "floor" ? std::floor(x) : m == "ceil" ? std::ceil(x) : std::round(x);
    return Value::number(r / scale);
}

std::string title_filter(const std::string& s) {
    std::string out = s;
    bool start = true;  // jinja2 starts words after whitespace and -({[<
    for (char& c : out) {
        c = start ? up(c) : low(c);
        start = is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    }
    return out;
}

Value sum_min_max(Evaluator& ev, const Value& v, CallArgs& a, const std::string& which) {
    const std::vector<Value> items = ev.iterate(v);
    if (which == "sum") {
        Value total = a.get(1, "start", Value::integer(0));
        const Value attr = a.get(0, "attribute");
        for (const auto& x : items) total = ev.binary("+", total, attr.is_string() ? attr_path(ev, x, attr.sv()) : x);
        return total;
    }
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    Value best = items[0];
    for (const auto& x : items) {
        const int c = ev.compare(lowered(x), lowered(best));
        if (which == "min" ? c < 0 : c > 0) best = x;
    }
    return best;
}

}  // namespace

Value Evaluator::filter(const std::string& f, const Value& v, CallArgs& a) {
    step();
    if (f == "tojson") return json_filter(*this, v, a);
    if (f == "length" || f == "count") return length(*this, v);
    if (f == "default" || f == "d") {
        const bool boolean = truthy(a.get(1, "boolean"));
        if (v.is_undefined() || (boolean && !truthy(v))) return a.get(0, "default_value", Value::str(""));
        return v;
    }
    if (f == "safe") {
        Value r = v.is_string() ? v : make_str(to_str(v));
        r.markup = true;
        return r;
    }
    if (f == "string") return v.is_string() ? v : make_str(to_str(v));
    if (f == "trim") {
        const std::string t = to_str(v);
        const Value chars = a.get(0, "chars");
        auto strip_it = [&](char c) { return chars.is_string() ? chars.sv().find(c) != std::string::npos : is_space(c); };
        size_t x = 0, y = t.size();
        while (x < y && strip_it(t[x])) ++x;
        while (y > x && strip_it(t[y - 1])) --y;
        return make_str(t.substr(x, y - x));
    }
    if (f == "upper" || f == "lower") {
        std::string s = to_str(v);
        for (char& c : s) c = f == "upper" ? up(c) : low(c);
        return make_str(std::move(s));
    }
    if (f == "capitalize") {
        std::string s = to_str(v);
        for (char& c : s) c = low(c);
        if (!s.empty()) s[0] = up(s[0]);
        return make_str(std::move(s));
    }
    if (f == "title") return make_str(title_filter(to_str(v)));
    if (f == "join") return join_filter(*this, v, a);
    if (f == "items") return items_filter(*this, v);
    if (f == "dictsort") return dictsort(*this, v, a);
    if (f == "list") return make_list(iterate(v));
    if (f == "first" || f == "last") return first_last(*this, v, f == "last");
    if (f == "selectattr" || f == "rejectattr") return select(*this, v, a, true, f == "selectattr");
    if (f == "select" || f == "reject") return select(*this, v, a, false, f == "select");
    if (f == "map") return map_filter(*this, v, a);
    if (f == "unique") return unique(*this, v, a);
    if (f == "batch") return batch(*this, v, a);
    if (f == "reverse") {
        if (v.is_string()) {
            const auto b = utf8_bounds(v.sv());
            std::string s;
            for (size_t k = b.size() - 1; k > 0; --k) s.append(v.sv(), b[k - 1], b[k] - b[k - 1]);
            return make_str(std::move(s));
        }
        std::vector<Value> items = iterate(v);
        std::reverse(items.begin(), items.end());
        return make_list(std::move(items), true);
    }
    if (f == "sort") {
        const Value attr = a.get(2, "attribute");
        return make_list(sorted(*this, iterate(v), truthy(a.get(0, "reverse")), truthy(a.get(1, "case_sensitive")),
                                attr.is_string() ? attr.sv() : ""));
    }
    if (f == "int") return to_int(v, a.get(0, "default", Value::integer(0)));
    if (f == "float") return to_float(v, a.get(0, "default", Value::number(0)));
    if (f == "abs") {
        if (v.kind == K::Float) return Value::number(std::fabs(v.f));
        if (v.kind == K::Int) return binary("*", v, Value::integer(v.i < 0 ? -1 : 1));
        fail(std::string("TypeError: bad operand type for abs(): '") + type_name(v) + "'");
    }
    if (f == "round") return round_filter(*this, v, a);
    if (f == "sum" || f == "min" || f == "max") return sum_min_max(*this, v, a, f);
    if (f == "replace") {
        const Value from = a.get(0, "old"), to = a.get(1, "new"), n = a.get(2, "count", Value::none());
        CallArgs m;
        m.pos = {from, to, n.kind == K::Int ? n : Value::integer(-1)};
        return (*attribute(make_str(to_str(v)), "replace").fn)(*this, m);
    }
    if (f == "indent") {
        return make_str(indent(to_str(v), a.get(0, "width", Value::integer(4)), truthy(a.get(1, "first")),
                               truthy(a.get(2, "blank"))));
    }
    if (f == "escape" || f == "e") return make_str(html_escape(to_str(v)));
    if (f == "wordcount") {
        int64_t n = 0;
        bool in_word = false;
        for (char c : to_str(v)) {
            n += !is_space(c) && !in_word;
            in_word = !is_space(c);
        }
        return Value::integer(n);
    }
    fail("TemplateAssertionError: No filter named '" + f + "'.");
}

// ---- tests ----------------------------------------------------------------------------------

bool Evaluator::test(const std::string& t, const Value& v, CallArgs& a) {
    step();
    const Value arg = a.get(0, "\x01");
    if (t == "defined") return !v.is_undefined();
    if (t == "undefined") return v.is_undefined();
    if (t == "none") return v.is_none();
    if (t == "string") return v.is_string();
    if (t == "mapping") return v.is_dict();
    if (t == "iterable") return v.is_string() || v.is_list() || v.is_dict();
    if (t == "sequence") return v.is_string() || (v.is_list() && !v.generator) || v.is_dict();
    if (t == "number") return v.is_number();
    if (t == "integer") return v.kind == K::Int;
    if (t == "float") return v.kind == K::Float;
    if (t == "boolean") return v.kind == K::Bool;
    if (t == "true") return v.kind == K::Bool && v.b;
    if (t == "false") return v.kind == K::Bool && !v.b;
    if (t == "callable") return v.kind == K::Callable;
    if (t == "odd" || t == "even" || t == "divisibleby") {
        if (v.kind != K::Int) fail("TypeError: '" + t + "' test needs an integer");
        if (t == "odd") return v.i % 2 != 0;
        if (t == "even") return v.i % 2 == 0;
        if (arg.kind != K::Int || arg.i == 0) fail("divisibleby needs a non-zero integer");
        return v.i % arg.i == 0;
    }
    if (t == "lower" || t == "upper") {
        if (!v.is_string()) return false;
        for (char c : v.sv())
            if ((t == "lower" && c >= 'A' && c <= 'Z') || (t == "upper" && c >= 'a' && c <= 'z')) return false;
        return true;
    }
    if (t == "eq" || t == "equalto" || t == "==") return equals(v, arg);
    if (t == "ne" || t == "!=") return !equals(v, arg);
    if (t == "lt" || t == "lessthan" || t == "<") return compare(v, arg) < 0;
    if (t == "le" || t == "<=") return compare(v, arg) <= 0;
    if (t == "gt" || t == "greaterthan" || t == ">") return compare(v, arg) > 0;
    if (t == "ge" || t == ">=") return compare(v, arg) >= 0;
    if (t == "in") return truthy(binary("in", v, arg));
    if (t == "sameas") {
        if (v.kind != arg.kind) return false;
        if (v.kind == K::None || v.kind == K::Undefined) return true;
        if (v.kind == K::Bool) return v.b == arg.b;
        return equals(v, arg) && (v.is_number() || (v.list == arg.list && v.dict == arg.dict && v.s == arg.s));
    }
    fail("TemplateAssertionError: No test named '" + t + "'.");
}

// ---- globals --------------------------------------------------------------------------------

namespace {

const char* const kMonths[] = {"January", "February", "March", "April", "May", "June", "July",
                               "August", "September", "October", "November", "December"};
const char* const kDays[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};

// Days since 1970-01-01 (proleptic Gregorian).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

std::string strftime(const std::string& fmt, const std::string& now) {
    int y = 1970, mo = 1, d = 1, h = 0, mi = 0, s = 0;
    std::sscanf(now.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &s);
    mo = std::clamp(mo, 1, 12);
    const int64_t days = days_from_civil(y, mo, d);
    const int wd = int(((days % 7) + 7 + 3) % 7);  // 1970-01-01 was a Thursday (index 3)
    const int yday = int(days - days_from_civil(y, 1, 1)) + 1;
    std::string out;
    char b[32];
    for (size_t k = 0; k < fmt.size(); ++k) {
        if (fmt[k] != '%' || k + 1 >= fmt.size()) { out += fmt[k]; continue; }
        char c = fmt[++k];
        const bool no_pad = c == '-' && k + 1 < fmt.size();
        if (no_pad) c = fmt[++k];
        const char* num = no_pad ? "%d" : "%02d";
        switch (c) {
            case 'Y': std::snprintf(b, sizeof b, "%d", y); break;
            case 'y': std::snprintf(b, sizeof b, num, y % 100); break;
            case 'm': std::snprintf(b, sizeof b, num, mo); break;
            case 'd': std::snprintf(b, sizeof b, num, d); break;
            case 'e': std::snprintf(b, sizeof b, "%2d", d); break;
            case 'H': std::snprintf(b, sizeof b, num, h); break;
            case 'I': std::snprintf(b, sizeof b, num, h % 12 == 0 ? 12 : h % 12); break;
            case 'M': std::snprintf(b, sizeof b, num, mi); break;
            case 'S': std::snprintf(b, sizeof b, num, s); break;
            case 'j': std::snprintf(b, sizeof b, no_pad ? "%d" : "%03d", yday); break;
            case 'p': std::snprintf(b, sizeof b, "%s", h < 12 ? "AM" : "PM"); break;
            case 'B': std::snprintf(b, sizeof b, "%s", kMonths[mo - 1]); break;
            case 'b': std::snprintf(b, sizeof b, "%.3s", kMonths[mo - 1]); break;
            case 'A': std::snprintf(b, sizeof b, "%s", kDays[wd]); break;
            case 'a': std::snprintf(b, sizeof b, "%.3s", kDays[wd]); break;
            case '%': std::snprintf(b, sizeof b, "%%"); break;
            default: std::snprintf(b, sizeof b, "%%%c", c);
        }
        out += b;
    }
    return out;
}

Value range_fn(Evaluator& ev, CallArgs& a) {
    for (const auto& x : a.pos)
        if (x.kind != K::Int) ev.fail("TypeError: range() arguments must be integers");
    int64_t start = 0, stop = 0, step = 1;
    if (a.pos.size() == 1) stop = a.pos[0].i;
    else if (a.pos.size() >= 2) { start = a.pos[0].i; stop = a.pos[1].i; }
    if (a.pos.size() >= 3) step = a.pos[2].i;
    if (a.pos.empty() || a.pos.size() > 3) ev.fail("TypeError: range expects 1 to 3 arguments");
    if (step == 0) ev.fail("ValueError: range() arg 3 must not be zero");
    const double n = std::max(0.0, std::ceil((double(stop) - double(start)) / double(step)));
    if (n > double(ev.limits().max_range))
        ev.fail("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (" +
                std::to_string(ev.limits().max_range) + ").");
    List l;
    for (int64_t k = 0; k < int64_t(n); ++k) l.push_back(Value::integer(start + k * step));
    return ev.make_list(std::move(l));
}

Dict kwargs_dict(Evaluator& ev, CallArgs& a) {
    Dict d;
    for (const auto& p : a.pos) {
        if (!p.is_dict()) ev.fail("TypeError: expected a mapping");
        for (const auto& [k, v] : p.dict->items) d.set(k, v);
    }
    for (const auto& [k, v] : a.kw) d.set(k, v);
    return d;
}

}  // namespace

void Evaluator::add_globals(Frame& g) {
    g["range"] = Value::callable("range", range_fn);
    g["namespace"] = Value::callable("namespace", [](Evaluator& ev, CallArgs& a) { return Value::ns(kwargs_dict(ev, a)); });
    g["dict"] = Value::callable("dict", [](Evaluator& ev, CallArgs& a) { return Value::object(kwargs_dict(ev, a)); });
    g["raise_exception"] = Value::callable("raise_exception", [](Evaluator& ev, CallArgs& a) -> Value {
        ev.fail("TemplateError: " + to_str(a.get(0, "message")));
    });
    g["strftime_now"] = Value::callable("strftime_now", [](Evaluator& ev, CallArgs& a) {
        return ev.make_str(strftime(to_str(a.get(0, "format")), ev.now()));
    });
}

}  // namespace ember::chat
