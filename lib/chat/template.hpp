// A sandboxed Jinja2-subset interpreter for chat templates, rendering as Hugging Face's
// apply_chat_template does (trim_blocks, lstrip_blocks, loop controls, an immutable sandbox).
// A template is untrusted: parsing and rendering are bounded in time, memory and depth, and every
// failure is an ember::Error (InvalidArgument, or OutOfMemory for a size limit) naming the line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/value.hpp"

namespace ember::chat {

struct Limits {
    size_t max_output = 16u << 20;      // bytes of rendered text, and of any one string
    size_t max_alloc = 256u << 20;      // bytes of strings/list slots made over a whole render
    uint64_t max_steps = 10'000'000;    // expression and statement evaluations
    int max_depth = 64;                 // nested macro calls
    int64_t max_range = 100'000;        // items in one range(), as jinja2's sandbox does
    size_t max_source = 1u << 20;       // template bytes
};

struct Expr;
struct Stmt;
using ExprP = std::unique_ptr<Expr>;
using StmtP = std::unique_ptr<Stmt>;
using Body = std::vector<StmtP>;

struct Expr {
    enum class K {
        Literal, Name, Attr, Index, Slice, Call, Filter, Test, Unary, Binary, And, Or, Not,
        Cond, ListLit, DictLit,
    };
    K k = K::Literal;
    int line = 0;
    Value lit;
    std::string name;  // Name, Attr, Filter, Test, operator
    bool negate = false;  // "is not"
    std::vector<ExprP> a;  // operands; Call/Filter/Test: a[0] is the target/callee, the rest args
    std::vector<std::pair<std::string, ExprP>> kw;
};

struct Stmt {
    enum class K { Text, Output, If, For, Set, SetBlock, Macro, CallBlock, Break, Continue, FilterBlock };
    K k = K::Text;
    int line = 0;
    std::string text;                 // Text
    std::vector<std::string> names;   // For targets; Set targets; Macro params; Set ns.attr = (names = {ns, attr})
    bool attr_target = false;
    std::vector<ExprP> e;             // Output: value; If: conditions; For: iterable, [filter]; Set: value
    std::vector<ExprP> defaults;      // Macro param defaults (null when none)
    std::vector<Body> bodies;         // If: one per condition + else; For: body, else; Macro/Call/Set block: body
    bool has_else = false;
};

class Template {
public:
    explicit Template(const std::string& source, Limits limits = {});
    // Renders with the given top-level variables; `now` is "YYYY-MM-DDTHH:MM:SS" for strftime_now.
    std::string render(const Dict& vars, const std::string& now) const;

private:
    Limits limits_;
    std::shared_ptr<const Body> body_;
};

// Lexes and parses the source (parse.cpp); throws ember::Error naming the line.
std::shared_ptr<const Body> parse_template(const std::string& source, const Limits& limits);
// Renders a parsed body (eval.cpp).
std::string render_body(const Body& body, const Dict& vars, const std::string& now, const Limits& limits);

}  // namespace ember::chat
