// The chat-template evaluator: statements, expressions, scopes and the limits that keep an
// untrusted template bounded (steps, output, allocation, call depth).
#include "chat/eval.hpp"

#include <algorithm>
#include <cmath>

#include "ember/error.hpp"

namespace ember::chat {

Evaluator::Evaluator(const Limits& limits, std::string now) : limits_(limits), now_(std::move(now)) {}

void Evaluator::fail(const std::string& msg) const {
    throw Error(Status::InvalidArgument, "template line " + std::to_string(line_) + ": " + msg);
}

void Evaluator::oom(const std::string& msg) const {
    throw Error(Status::OutOfMemory, "template line " + std::to_string(line_) + ": " + msg);
}

void Evaluator::undefined_error(const Value& v) const {
    if (v.name && v.name->find(' ') != std::string::npos) fail("UndefinedError: " + *v.name);
    fail("UndefinedError: '" + (v.name ? *v.name : std::string("value")) + "' is undefined");
}

void Evaluator::step() {
    if (++steps_ > limits_.max_steps) fail("evaluation step limit reached (" + std::to_string(limits_.max_steps) + ")");
}

void Evaluator::charge(size_t bytes) {
    alloc_ += bytes;
    if (alloc_ > limits_.max_alloc) oom("allocation limit reached (" + std::to_string(limits_.max_alloc) + " bytes)");
}

Value Evaluator::make_str(std::string s) {
    if (s.size() > limits_.max_output) oom("string too large (" + std::to_string(s.size()) + " bytes)");
    charge(s.size());
    return Value::str(std::move(s));
}

Value Evaluator::make_list(List l, bool generator) {
    charge(l.size() * sizeof(Value));
    Value v = Value::array(std::move(l));
    v.generator = generator;
    return v;
}

void Evaluator::write(const std::string& s) {
    if (out_->size() + s.size() > limits_.max_output)
        oom("output too large (over " + std::to_string(limits_.max_output) + " bytes)");
    out_->append(s);
}

std::string Evaluator::capture(const Body& body) {
    std::string buf;
    std::string* saved = out_;
    out_ = &buf;
    try {
        exec(body);
    } catch (...) {
        out_ = saved;
        throw;
    }
    out_ = saved;
    charge(buf.size());
    return buf;
}

std::string Evaluator::run(const Body& body, const Dict& vars) {
    Frame globals;
    add_globals(globals);
    for (const auto& [k, v] : vars.items) globals[k] = v;
    Frame root;
    root_ = &root;
    scope_ = {&globals, &root};
    std::string out;
    out_ = &out;
    exec(body);
    return out;
}

// ---- scopes ---------------------------------------------------------------------------------

Value Evaluator::lookup(const std::string& name) const {
    for (auto it = scope_.rbegin(); it != scope_.rend(); ++it) {
        auto f = (*it)->find(name);
        if (f != (*it)->end()) return f->second;
    }
    return Value::undefined(name);
}

void Evaluator::assign(const std::string& name, Value v) { (*scope_.back())[name] = std::move(v); }

// ---- statements -----------------------------------------------------------------------------

Evaluator::Flow Evaluator::exec(const Body& body) {
    for (const auto& s : body) {
        const Flow f = exec(*s);
        if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
}

Evaluator::Flow Evaluator::exec(const Stmt& s) {
    step();
    line_ = s.line;
    switch (s.k) {
        case Stmt::K::Text: write(s.text); break;
        case Stmt::K::Output: {
            const Value v = eval(*s.e[0]);
            line_ = s.line;
            write(to_str(v));
            break;
        }
        case Stmt::K::If: return exec_if(s);
        case Stmt::K::For: return exec_for(s);
        case Stmt::K::Set:
        case Stmt::K::SetBlock: exec_set(s); break;
        case Stmt::K::Macro: exec_macro(s); break;
        case Stmt::K::CallBlock: exec_call_block(s); break;
        case Stmt::K::Break: return Flow::Break;
        case Stmt::K::Continue: return Flow::Continue;
        case Stmt::K::FilterBlock: {
            const Value text = make_str(capture(s.bodies[0]));
            const Expr& f = *s.e[0];
            CallArgs args = eval_args(f, 1);
            line_ = s.line;
            write(to_str(filter(f.name, text, args)));
            break;
        }
    }
    return Flow::Normal;
}

Evaluator::Flow Evaluator::exec_if(const Stmt& s) {
    for (size_t k = 0; k < s.e.size(); ++k)
        if (truthy(eval(*s.e[k]))) return exec(s.bodies[k]);
    if (s.has_else) return exec(s.bodies.back());
    return Flow::Normal;
}

void Evaluator::bind_targets(const std::vector<std::string>& names, const Value& v, Frame& frame) {
    if (names.size() == 1) {
        frame[names[0]] = v;
        return;
    }
    const std::vector<Value> parts = iterate(v);
    if (parts.size() != names.size())
        fail("ValueError: cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(names.size()));
    for (size_t k = 0; k < names.size(); ++k) frame[names[k]] = parts[k];
}

Evaluator::Flow Evaluator::loop_body(const Stmt& s, const Value& item, Frame& frame) {
    bind_targets(s.names, item, frame);
    return exec(s.bodies[0]);
}

Evaluator::Flow Evaluator::exec_for(const Stmt& s) {
    std::vector<Value> items = iterate(eval(*s.e[0]));
    Frame frame;
    scope_.push_back(&frame);
    struct Pop {
        std::vector<Frame*>& s;
        ~Pop() { s.pop_back(); }
    } pop{scope_};
    if (s.e.size() > 1) {  // for x in xs if cond: the filter runs before loop.* is known
        std::vector<Value> kept;
        for (const auto& it : items) {
            step();
            bind_targets(s.names, it, frame);
            if (truthy(eval(*s.e[1]))) kept.push_back(it);
        }
        items = std::move(kept);
    }
    Value loop;  // loop.* is computed on access (builtins.cpp) from the shared items and the index
    loop.kind = Value::Kind::Loop;
    loop.list = std::make_shared<const List>(std::move(items));
    const List& all = *loop.list;
    for (size_t i = 0; i < all.size(); ++i) {
        step();
        loop.i = int64_t(i);
        frame["loop"] = loop;
        if (loop_body(s, all[i], frame) == Flow::Break) break;
    }
    if (all.empty() && s.has_else) {
        frame.erase("loop");
        exec(s.bodies[1]);
    }
    return Flow::Normal;
}

void Evaluator::exec_set(const Stmt& s) {
    if (s.k == Stmt::K::SetBlock) {
        assign(s.names[0], make_str(capture(s.bodies[0])));
        return;
    }
    Value v = eval(*s.e[0]);
    line_ = s.line;
    if (s.attr_target) {
        const Value ns = lookup(s.names[0]);
        if (ns.kind != Value::Kind::Namespace) fail("cannot assign attribute on non-namespace object '" + s.names[0] + "'");
        ns_set(ns, s.names[1], std::move(v));
        return;
    }
    if (s.names.size() == 1) {
        assign(s.names[0], std::move(v));
        return;
    }
    bind_targets(s.names, v, *scope_.back());
}

Value Evaluator::call_macro(const Stmt& m, const std::vector<Frame*>& scope, CallArgs& args) {
    if (depth_ >= limits_.max_depth) fail("recursion too deep (over " + std::to_string(limits_.max_depth) + " nested calls)");
    if (args.pos.size() > m.names.size()) fail("TypeError: macro '" + m.text + "' takes not more than " + std::to_string(m.names.size()) + " argument(s)");
    Frame frame;
    const std::vector<Frame*> saved = scope_;
    scope_ = scope;
    scope_.push_back(&frame);
    ++depth_;
    struct Restore {
        Evaluator& ev;
        const std::vector<Frame*>& saved;
        ~Restore() { ev.scope_ = saved; --ev.depth_; }
    } restore{*this, saved};
    for (size_t k = 0; k < m.names.size(); ++k) {
        Value v = args.get(k, m.names[k], Value::undefined(m.names[k]));
        if (v.is_undefined() && k >= args.pos.size() && m.defaults[k]) v = eval(*m.defaults[k]);
        frame[m.names[k]] = std::move(v);
    }
    for (const auto& [k, v] : args.kw)
        if (k == "caller") frame["caller"] = v;
    return make_str(capture(m.bodies[0]));
}

void Evaluator::exec_macro(const Stmt& s) {
    // Macros see the template's globals and top-level names, as jinja2's do.
    const std::vector<Frame*> scope = {scope_[0], root_};
    const Stmt* m = &s;
    assign(s.text, Value::callable(s.text, [m, scope](Evaluator& ev, CallArgs& a) {
               return ev.call_macro(*m, scope, a);
           }));
}

void Evaluator::exec_call_block(const Stmt& s) {
    const Stmt* body = &s;
    const std::vector<Frame*> here = scope_;
    const Value caller = Value::callable("caller", [body, here](Evaluator& ev, CallArgs& a) {
        return ev.call_macro(*body, here, a);
    });
    const Expr& call = *s.e[0];
    const Value callee = eval(*call.a[0]);
    CallArgs args = eval_args(call, 1);
    line_ = s.line;
    if (callee.kind != Value::Kind::Callable) fail("call block needs a macro");
    // A macro's scope is fixed at definition: pass `caller` as a keyword it binds.
    args.kw.emplace_back("caller", caller);
    write(to_str((*callee.fn)(*this, args)));
}

// ---- expressions ----------------------------------------------------------------------------

CallArgs Evaluator::eval_args(const Expr& e, size_t first) {
    CallArgs args;
    for (size_t k = first; k < e.a.size(); ++k) args.pos.push_back(eval(*e.a[k]));
    for (const auto& [k, v] : e.kw) args.kw.emplace_back(k, eval(*v));
    args.line = e.line;
    line_ = e.line;
    return args;
}

Value Evaluator::eval(const Expr& e) {
    step();
    line_ = e.line;
    switch (e.k) {
        case Expr::K::Literal: return e.lit;
        case Expr::K::Name: return lookup(e.name);
        case Expr::K::Attr: {
            const Value obj = eval(*e.a[0]);
            line_ = e.line;
            return attribute(obj, e.name);
        }
        case Expr::K::Index: {
            const Value obj = eval(*e.a[0]);
            const Value key = eval(*e.a[1]);
            line_ = e.line;
            return item(obj, key);
        }
        case Expr::K::Slice: return eval_slice(e);
        case Expr::K::Call: return eval_call(e);
        case Expr::K::Filter: return eval_filter(e);
        case Expr::K::Test: return eval_test(e);
        case Expr::K::Unary: {
            const Value v = eval(*e.a[0]);
            line_ = e.line;
            if (v.is_undefined()) undefined_error(v);
            if (!v.is_number()) fail(std::string("TypeError: bad operand type for unary ") + e.name + ": '" + type_name(v) + "'");
            if (e.name == "+") return v.kind == Value::Kind::Bool ? Value::integer(v.b) : v;
            if (v.kind == Value::Kind::Float) return Value::number(-v.f);
            return binary("-", Value::integer(0), v);
        }
        case Expr::K::Binary: return eval_binary(e);
        case Expr::K::And: {
            Value l = eval(*e.a[0]);
            return truthy(l) ? eval(*e.a[1]) : l;
        }
        case Expr::K::Or: {
            Value l = eval(*e.a[0]);
            return truthy(l) ? l : eval(*e.a[1]);
        }
        case Expr::K::Not: return Value::boolean(!truthy(eval(*e.a[0])));
        case Expr::K::Cond:
            if (truthy(eval(*e.a[0]))) return eval(*e.a[1]);
            return e.a[2] ? eval(*e.a[2]) : Value::undefined("else");
        case Expr::K::ListLit: {
            List l;
            for (const auto& x : e.a) l.push_back(eval(*x));
            return make_list(std::move(l));
        }
        case Expr::K::DictLit: {
            Dict d;
            for (size_t k = 0; k + 1 < e.a.size(); k += 2) {
                const Value key = eval(*e.a[k]);
                d.set(dict_key(key), eval(*e.a[k + 1]));
            }
            charge(d.items.size() * sizeof(Value));
            return Value::object(std::move(d));
        }
    }
    return Value::undefined();
}

Value Evaluator::eval_binary(const Expr& e) {
    const Value a = eval(*e.a[0]);
    const Value b = eval(*e.a[1]);
    line_ = e.line;
    return binary(e.name, a, b);
}

Value Evaluator::eval_call(const Expr& e) {
    const Value callee = eval(*e.a[0]);
    CallArgs args = eval_args(e, 1);
    if (callee.is_undefined()) undefined_error(callee);
    if (callee.kind != Value::Kind::Callable) fail(std::string("TypeError: '") + type_name(callee) + "' object is not callable");
    Value r = (*callee.fn)(*this, args);
    line_ = e.line;
    return r;
}

Value Evaluator::eval_filter(const Expr& e) {
    const Value v = eval(*e.a[0]);
    CallArgs args = eval_args(e, 1);
    return filter(e.name, v, args);
}

Value Evaluator::eval_test(const Expr& e) {
    const Value v = eval(*e.a[0]);
    CallArgs args = eval_args(e, 1);
    return Value::boolean(test(e.name, v, args) != e.negate);
}

namespace {
// Python's slice.indices: clamps start/stop for a length and a step.
void slice_indices(int64_t n, const Value& a, const Value& b, int64_t step, int64_t& start, int64_t& stop) {
    auto clamp = [&](const Value& v, int64_t def) {
        if (v.is_undefined() || v.is_none()) return def;
        int64_t x = v.i;
        if (x < 0) x += n;
        if (step > 0) return std::clamp<int64_t>(x, 0, n);
        return std::clamp<int64_t>(x, -1, n - 1);
    };
    start = clamp(a, step > 0 ? 0 : n - 1);
    stop = clamp(b, step > 0 ? n : -1);
}
}  // namespace

Value Evaluator::eval_slice(const Expr& e) {
    const Value obj = eval(*e.a[0]);
    Value parts[3];
    for (int k = 0; k < 3; ++k)
        if (e.a[size_t(k) + 1]) parts[k] = eval(*e.a[size_t(k) + 1]);
    line_ = e.line;
    for (const auto& p : parts)
        if (!p.is_undefined() && !p.is_none() && p.kind != Value::Kind::Int) fail("TypeError: slice indices must be integers");
    const int64_t step = parts[2].kind == Value::Kind::Int ? parts[2].i : 1;
    if (step == 0) fail("ValueError: slice step cannot be zero");
    if (obj.is_undefined()) undefined_error(obj);
    std::vector<size_t> bounds;
    int64_t n = 0;
    if (obj.is_string()) {
        bounds = utf8_bounds(obj.sv());
        n = int64_t(bounds.size()) - 1;
    } else if (obj.is_list()) {
        n = int64_t(obj.list->size());
    } else {
        fail(std::string("TypeError: '") + type_name(obj) + "' object is not subscriptable");
    }
    int64_t start = 0, stop = 0;
    slice_indices(n, parts[0], parts[1], step, start, stop);
    std::string s;
    List l;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
        if (obj.is_string()) s.append(obj.sv(), bounds[size_t(k)], bounds[size_t(k) + 1] - bounds[size_t(k)]);
        else l.push_back((*obj.list)[size_t(k)]);
    }
    return obj.is_string() ? make_str(std::move(s)) : make_list(std::move(l));
}

std::string render_body(const Body& body, const Dict& vars, const std::string& now, const Limits& limits) {
    Evaluator ev(limits, now);
    try {
        return ev.run(body, vars);
    } catch (const Error& e) {
        // Errors from the value layer (nesting, JSON) learn the line here.
        if (std::string(e.what()).rfind("template line ", 0) == 0) throw;
        throw Error(e.status(), "template line " + std::to_string(ev.line()) + ": " + e.what());
    } catch (const std::bad_alloc&) {
        throw Error(Status::OutOfMemory, "template line " + std::to_string(ev.line()) + ": out of memory");
    }
}

}  // namespace ember::chat
