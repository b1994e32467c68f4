// The chat-template engine's values: what a sandboxed Jinja2 template can see and build.
// Only none/bool/int/float/string/list/dict, namespaces and built-in callables exist; strings,
// lists and dicts are immutable and shared, so copying a Value is cheap whatever its size.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ember::chat {

struct Value;
using List = std::vector<Value>;

// Insertion-ordered string-keyed map (Python dicts keep order; tojson must too).
struct Dict {
    std::vector<std::pair<std::string, Value>> items;
    int depth = 1;  // nesting, kept for namespaces, which can be filled after they are made
    const Value* find(std::string_view key) const;
    void set(const std::string& key, Value v);
};

// Keys are strings; an integer key (jinja dict literals allow them) is stored encoded, so that
// it still sorts, prints and serializes as Python's int key does.
std::string dict_key(const Value& key);
Value key_value(const std::string& key);
std::string key_text(const std::string& key);  // the key as str() and json.dumps show it

struct CallArgs;
class Evaluator;
using Builtin = std::function<Value(Evaluator&, CallArgs&)>;

struct Value {
    enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable, Loop };
    Kind kind = Kind::Undefined;
    bool b = false;
    bool generator = false;  // a List made by map/select...: jinja2 gives a generator there
    bool markup = false;     // a String marked |safe: `+` escapes plain strings joined to it
    int depth = 0;           // List/Dict nesting: bounded, so that printing, comparing and freeing never recurse deeply
    int64_t i = 0;
    double f = 0;
    std::shared_ptr<const std::string> s;
    std::shared_ptr<const List> list;  // List; Loop: the loop's items (i is the index)
    std::shared_ptr<Dict> dict;  // Dict, or Namespace (the only mutable object)
    std::shared_ptr<const Builtin> fn;
    std::shared_ptr<const std::string> name;  // the undefined name or callable name, for messages

    static Value undefined(std::string what = {});
    static Value none();
    static Value boolean(bool v);
    static Value integer(int64_t v);
    static Value number(double v);
    static Value str(std::string v);
    static Value array(List v);
    static Value object(Dict v);
    static Value ns(Dict v);
    static Value callable(std::string name, Builtin f);

    bool is_undefined() const { return kind == Kind::Undefined; }
    bool is_none() const { return kind == Kind::None; }
    bool is_string() const { return kind == Kind::String; }
    bool is_list() const { return kind == Kind::List; }
    bool is_dict() const { return kind == Kind::Dict; }
    bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
    const std::string& sv() const { return *s; }
    double as_double() const { return kind == Kind::Float ? f : double(kind == Kind::Bool ? b : i); }
};

// str()/repr() of a list or dict longer than this is an ember::Error (OutOfMemory).
constexpr size_t kMaxText = 16u << 20;
// Values nest at most this deep; a deeper one is an ember::Error (InvalidArgument).
constexpr int kMaxNesting = 200;
int nesting(const Value& v);
// Namespace attribute assignment (ns.x = v), keeping the nesting bound.
void ns_set(const Value& ns, const std::string& key, Value v);

struct CallArgs {
    std::vector<Value> pos;
    std::vector<std::pair<std::string, Value>> kw;
    int line = 0;
    // Positional argument n, else keyword `key`, else `def`.
    Value get(size_t n, std::string_view key, Value def = Value::undefined()) const;
};

bool truthy(const Value& v);
bool equals(const Value& a, const Value& b);
// Python's str() and repr(); repr of a float is the shortest round-trip form.
std::string to_str(const Value& v);
std::string repr(const Value& v);
std::string float_repr(double d);
const char* type_name(const Value& v);

// Python's json.dumps(ensure_ascii=False): separators ", " / ": " or "," with indent.
struct JsonStyle {
    int indent = -1;  // <0: one line
    std::string item_sep = ", ";
    std::string key_sep = ": ";
    bool sort_keys = false;
};
// Throws ember::Error (InvalidArgument) on an unserializable value; `budget` bytes at most.
std::string to_json(const Value& v, const JsonStyle& style, size_t budget);
// Strict JSON with bounded nesting; throws ember::Error (InvalidArgument) on bad input.
Value parse_json(std::string_view text, int max_depth = 128);

// markupsafe's escape: & < > " ' as entities.
std::string html_escape(std::string_view s);

// UTF-8 helpers: code point boundaries of s (size n+1, last = s.size()).
std::vector<size_t> utf8_bounds(std::string_view s);

}  // namespace ember::chat
