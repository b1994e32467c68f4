// The chat-template evaluator (eval.cpp) and its built-ins (builtins.cpp): internal to lib/chat.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "chat/template.hpp"

namespace ember::chat {

using Frame = std::unordered_map<std::string, Value>;

class Evaluator {
public:
    Evaluator(const Limits& limits, std::string now);

    std::string run(const Body& body, const Dict& vars);

    // Failures name the template line being evaluated.
    [[noreturn]] void fail(const std::string& msg) const;
    [[noreturn]] void oom(const std::string& msg) const;
    [[noreturn]] void undefined_error(const Value& v) const;
    void step();
    // New strings and lists go through these: they are checked against the size limits.
    Value make_str(std::string s);
    Value make_list(List l, bool generator = false);
    void charge(size_t bytes);
    const Limits& limits() const { return limits_; }
    const std::string& now() const { return now_; }
    int line() const { return line_; }

    // Built-ins (builtins.cpp).
    Value filter(const std::string& name, const Value& v, CallArgs& args);
    bool test(const std::string& name, const Value& v, CallArgs& args);
    Value attribute(const Value& obj, const std::string& name);  // obj.name
    Value item(const Value& obj, const Value& key);              // obj[key]
    std::vector<Value> iterate(const Value& v);                  // for x in v
    int compare(const Value& a, const Value& b);                 // <0, 0, >0; TypeError on mixed types
    Value binary(const std::string& op, const Value& a, const Value& b);
    void add_globals(Frame& g);

private:
    enum class Flow { Normal, Break, Continue };

    Limits limits_;
    std::string now_;
    uint64_t steps_ = 0;
    size_t alloc_ = 0;
    int depth_ = 0;
    int line_ = 0;
    std::string* out_ = nullptr;
    std::vector<Frame*> scope_;
    Frame* root_ = nullptr;

    Value lookup(const std::string& name) const;
    void assign(const std::string& name, Value v);
    void write(const std::string& s);
    std::string capture(const Body& body);

    Flow exec(const Body& body);
    Flow exec(const Stmt& s);
    Flow exec_if(const Stmt& s);
    Flow exec_for(const Stmt& s);
    void exec_set(const Stmt& s);
    void exec_macro(const Stmt& s);
    void exec_call_block(const Stmt& s);
    Flow loop_body(const Stmt& s, const Value& item, Frame& frame);
    void bind_targets(const std::vector<std::string>& names, const Value& v, Frame& frame);
    Value call_macro(const Stmt& m, const std::vector<Frame*>& scope, CallArgs& args);

    Value eval(const Expr& e);
    Value eval_name(const Expr& e);
    Value eval_call(const Expr& e);
    Value eval_filter(const Expr& e);
    Value eval_test(const Expr& e);
    Value eval_slice(const Expr& e);
    Value eval_binary(const Expr& e);
    CallArgs eval_args(const Expr& e, size_t first);
};

}  // namespace ember::chat
