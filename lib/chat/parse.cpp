// Chat templates: the lexer (tags, whitespace control, trim_blocks/lstrip_blocks as HF sets them)
// and a recursive-descent parser for the Jinja2 subset, into the AST of template.hpp.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "chat/template.hpp"
#include "ember/error.hpp"

namespace ember::chat {

namespace {

constexpr int kMaxParseDepth = 200;  // nesting of expressions and blocks

[[noreturn]] void syntax(int line, const std::string& msg) {
    throw Error(Status::InvalidArgument, "template line " + std::to_string(line) + ": syntax error: " + msg);
}

// ---- segments -------------------------------------------------------------------------------

struct Segment {
    enum class T { Text, Expr, Stmt } t = T::Text;
    std::string s;
    int line = 1;
};

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string normalize_newlines(const std::string& in) {
    std::string out;
    out.reserve(in.size());
    for (size_t k = 0; k < in.size(); ++k) {
        if (in[k] == '\r') {
            out += '\n';
            if (k + 1 < in.size() && in[k + 1] == '\n') ++k;
        } else out += in[k];
    }
    if (!out.empty() && out.back() == '\n') out.pop_back();  // jinja2 drops one trailing newline
    return out;
}

class Lexer {
public:
    explicit Lexer(const std::string& src) : src_(normalize_newlines(src)) {}

    std::vector<Segment> run() {
        while (pos_ < src_.size()) step();
        return std::move(out_);
    }

private:
    std::string src_;
    size_t pos_ = 0;
    bool line_starting_ = true;
    std::vector<Segment> out_;

    size_t line_pos_ = 0;  // line_at counts forward from here: positions only grow
    int line_no_ = 1;

    int line_at(size_t p) {
        for (; line_pos_ < p && line_pos_ < src_.size(); ++line_pos_) line_no_ += src_[line_pos_] == '\n';
        return line_no_;
    }

    size_t next_open(size_t from) const {
        for (size_t k = src_.find('{', from); k != std::string::npos; k = src_.find('{', k + 1)) {
            if (k + 1 < src_.size() && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#')) return k;
        }
        return std::string::npos;
    }

    void emit_text(std::string text, int line) {
        if (!text.empty()) out_.push_back({Segment::T::Text, std::move(text), line});
    }

    // Applies the opening tag's control ('-', '+', or lstrip_blocks) to the text before it.
    void strip_before(std::string& text, char kind, char sign) const {
        if (sign == '-') {
            size_t e = text.size();
            while (e > 0 && is_ws(text[e - 1])) --e;
            text.resize(e);
            return;
        }
        if (sign == '+' || kind == '{') return;
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos == 0 && !line_starting_) return;
        for (size_t k = l_pos; k < text.size(); ++k)
            if (!is_ws(text[k])) return;
        text.resize(l_pos);
    }

    // Consumes after a tag end: '-' strips all whitespace, trim_blocks one newline after %} and #}.
    void after_end(char kind, char sign) {
        const size_t start = pos_;
        if (sign == '-') {
            while (pos_ < src_.size() && is_ws(src_[pos_])) ++pos_;
        } else if (sign != '+' && kind != '{' && pos_ < src_.size() && src_[pos_] == '\n') {
            ++pos_;
        }
        line_starting_ = pos_ > start ? src_[pos_ - 1] == '\n' : false;
    }

    // Finds the close of a tag opened at `from`, skipping string literals.
    size_t find_close(size_t from, char kind, int line) const {
        const char close = kind == '{' ? '}' : kind;
        char quote = 0;
        for (size_t k = from; k + 1 < src_.size(); ++k) {
            const char c = src_[k];
            if (quote) {
                if (c == '\\') ++k;
                else if (c == quote) quote = 0;
            } else if ((c == '\'' || c == '"') && kind != '#') {
                quote = c;
            } else if (c == close && src_[k + 1] == '}') {
                return k;
            }
        }
        syntax(line, std::string("unclosed tag '{") + kind + "'");
    }

    void step() {
        const size_t open = next_open(pos_);
        std::string text = src_.substr(pos_, open == std::string::npos ? std::string::npos : open - pos_);
        const int text_line = line_at(pos_);
        if (open == std::string::npos) {
            emit_text(std::move(text), text_line);
            pos_ = src_.size();
            return;
        }
        const char kind = src_[open + 1];
        const char sign = open + 2 < src_.size() && (src_[open + 2] == '-' || src_[open + 2] == '+') ? src_[open + 2] : 0;
        strip_before(text, kind, sign);
        emit_text(std::move(text), text_line);
        const int line = line_at(open);
        const size_t body = open + 2 + (sign ? 1 : 0);
        const size_t close = find_close(body, kind, line);
        const char end_sign = close > body && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : 0;
        std::string inner = src_.substr(body, close - body - (end_sign ? 1 : 0));
        pos_ = close + 2;
        after_end(kind, end_sign);
        if (kind == '#') return;
        if (kind == '{') {
            out_.push_back({Segment::T::Expr, std::move(inner), line});
            return;
        }
        if (is_raw(inner)) return raw_block(line, end_sign);
        out_.push_back({Segment::T::Stmt, std::move(inner), line});
    }

    static std::string trimmed(const std::string& s) {
        size_t a = 0, b = s.size();
        while (a < b && is_ws(s[a])) ++a;
        while (b > a && is_ws(s[b - 1])) --b;
        return s.substr(a, b - a);
    }
    static bool is_raw(const std::string& inner) { return trimmed(inner) == "raw"; }

    // The text up to {% endraw %} is output verbatim.
    void raw_block(int line, char) {
        for (size_t k = src_.find("{%", pos_); k != std::string::npos; k = src_.find("{%", k + 2)) {
            size_t b = k + 2;
            const char sign = b < src_.size() && (src_[b] == '-' || src_[b] == '+') ? src_[b] : 0;
            if (sign) ++b;
            const size_t close = src_.find("%}", b);
            if (close == std::string::npos) break;
            const char end_sign = close > b && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : 0;
            if (trimmed(src_.substr(b, close - b - (end_sign ? 1 : 0))) != "endraw") continue;
            std::string text = src_.substr(pos_, k - pos_);
            strip_before(text, '%', sign);
            emit_text(std::move(text), line);
            pos_ = close + 2;
            after_end('%', end_sign);
            return;
        }
        syntax(line, "missing endraw");
    }
};

// ---- expression tokens ----------------------------------------------------------------------

struct Tok {
    enum class T { Name, Str, Int, Float, Op, End } t = T::End;
    std::string s;
    int64_t i = 0;
    double f = 0;
    int line = 0;
};

class Tokenizer {
public:
    Tokenizer(const std::string& s, int line) : s_(s), line_(line) {}

    std::vector<Tok> run() {
        std::vector<Tok> out;
        while (true) {
            while (p_ < s_.size() && is_ws(s_[p_])) line_ += s_[p_++] == '\n';
            if (p_ >= s_.size()) break;
            out.push_back(next());
        }
        out.push_back({Tok::T::End, "", 0, 0, line_});
        return out;
    }

private:
    const std::string& s_;
    size_t p_ = 0;
    int line_;

    Tok next() {
        const char c = s_[p_];
        if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') return name();
        if (std::isdigit(static_cast<unsigned char>(c))) return number();
        if (c == '\'' || c == '"') return string(c);
        static const char* ops[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">",
                                    "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "="};
        for (const char* op : ops) {
            const std::string o(op);
            if (s_.compare(p_, o.size(), o) == 0) {
                p_ += o.size();
                return {Tok::T::Op, o, 0, 0, line_};
            }
        }
        syntax(line_, std::string("unexpected character '") + c + "'");
    }

    Tok name() {
        const size_t a = p_;
        while (p_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[p_])) || s_[p_] == '_')) ++p_;
        return {Tok::T::Name, s_.substr(a, p_ - a), 0, 0, line_};
    }

    Tok number() {
        const size_t a = p_;
        bool is_float = false;
        while (p_ < s_.size()) {
            const char c = s_[p_];
            if (std::isdigit(static_cast<unsigned char>(c)) || c == '_') ++p_;
            else if (c == '.' && !is_float && p_ + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_ + 1]))) {
                is_float = true;
                ++p_;
            } else if ((c == 'e' || c == 'E') && p_ + 1 < s_.size()) {
                is_float = true;
                ++p_;
                if (s_[p_] == '+' || s_[p_] == '-') ++p_;
            } else break;
        }
        std::string t;
        for (size_t k = a; k < p_; ++k)
            if (s_[k] != '_') t += s_[k];
        Tok tok{is_float ? Tok::T::Float : Tok::T::Int, t, 0, 0, line_};
        errno = 0;
        if (is_float) tok.f = std::strtod(t.c_str(), nullptr);
        else tok.i = std::strtoll(t.c_str(), nullptr, 10);
        if (errno) syntax(line_, "number out of range: " + t);
        return tok;
    }

    Tok string(char q) {
        const int line = line_;
        std::string out;
        ++p_;
        while (true) {
            if (p_ >= s_.size()) syntax(line, "unterminated string");
            const char c = s_[p_++];
            if (c == q) break;
            if (c == '\n') ++line_;
            if (c != '\\' || p_ >= s_.size()) { out += c; continue; }
            const char e = s_[p_++];
            switch (e) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case '0': out += '\0'; break;
                case '\\': case '\'': case '"': out += e; break;
                case '\n': ++line_; break;
                default: out += '\\'; out += e;
            }
        }
        return {Tok::T::Str, out, 0, 0, line};
    }
};

// ---- parser ---------------------------------------------------------------------------------

class Parser {
public:
    explicit Parser(std::vector<Segment> segs) : segs_(std::move(segs)) {}

    Body parse() {
        Body body;
        const std::string end = block({}, body);
        if (!end.empty()) syntax(line_, "unexpected '" + end + "'");
        return body;
    }

private:
    std::vector<Segment> segs_;
    size_t seg_ = 0;
    std::vector<Tok> toks_;
    size_t t_ = 0;
    int line_ = 1;
    int depth_ = 0;
    std::vector<std::string> open_blocks_;

    struct DepthGuard {
        Parser& p;
        explicit DepthGuard(Parser& parser) : p(parser) {
            if (++p.depth_ > kMaxParseDepth) syntax(p.line_, "nesting too deep");
        }
        ~DepthGuard() { --p.depth_; }
    };

    // -- token helpers
    const Tok& peek(size_t ahead = 0) const { return toks_[std::min(t_ + ahead, toks_.size() - 1)]; }
    bool is_op(const char* op, size_t ahead = 0) const { return peek(ahead).t == Tok::T::Op && peek(ahead).s == op; }
    bool is_name(const char* n, size_t ahead = 0) const { return peek(ahead).t == Tok::T::Name && peek(ahead).s == n; }
    bool at_end() const { return peek().t == Tok::T::End; }
    Tok take() {
        Tok t = peek();
        if (t_ < toks_.size() - 1) ++t_;
        return t;
    }
    bool accept_op(const char* op) {
        if (!is_op(op)) return false;
        take();
        return true;
    }
    bool accept_name(const char* n) {
        if (!is_name(n)) return false;
        take();
        return true;
    }
    void expect_op(const char* op) {
        if (!accept_op(op)) syntax(peek().line, std::string("expected '") + op + "', got '" + peek().s + "'");
    }
    std::string expect_name() {
        if (peek().t != Tok::T::Name) syntax(peek().line, "expected a name, got '" + peek().s + "'");
        return take().s;
    }
    void expect_end() {
        if (!at_end()) syntax(peek().line, "unexpected '" + peek().s + "'");
    }
    void load(const Segment& s) {
        toks_ = Tokenizer(s.s, s.line).run();
        t_ = 0;
        line_ = s.line;
    }

    ExprP node(Expr::K k) {
        auto e = std::make_unique<Expr>();
        e->k = k;
        e->line = peek().line;
        return e;
    }

    // -- blocks: parses statements into `body` until a tag in `ends`; returns that tag's name.
    std::string block(const std::vector<std::string>& ends, Body& body) {
        DepthGuard g(*this);
        while (seg_ < segs_.size()) {
            const Segment& s = segs_[seg_++];
            if (s.t == Segment::T::Text) {
                auto st = std::make_unique<Stmt>();
                st->k = Stmt::K::Text;
                st->text = s.s;
                st->line = s.line;
                body.push_back(std::move(st));
                continue;
            }
            load(s);
            if (s.t == Segment::T::Expr) {
                auto st = std::make_unique<Stmt>();
                st->k = Stmt::K::Output;
                st->line = s.line;
                st->e.push_back(expression());
                expect_end();
                body.push_back(std::move(st));
                continue;
            }
            const std::string tag = expect_name();
            for (const auto& e : ends)
                if (e == tag) return tag;
            body.push_back(statement(tag));
        }
        if (!ends.empty()) syntax(line_, "missing '" + ends.front() + "' (template ended inside a block)");
        return {};
    }

    StmtP stmt(Stmt::K k) {
        auto st = std::make_unique<Stmt>();
        st->k = k;
        st->line = line_;
        return st;
    }

    StmtP statement(const std::string& tag) {
        if (tag == "if") return if_stmt();
        if (tag == "for") return for_stmt();
        if (tag == "set") return set_stmt();
        if (tag == "macro") return macro_stmt();
        if (tag == "call") return call_stmt();
        if (tag == "filter") return filter_stmt();
        if (tag == "break" || tag == "continue") {
            bool in_loop = false;
            for (const auto& b : open_blocks_) in_loop |= b == "for";
            if (!in_loop) syntax(line_, "'" + tag + "' outside a loop");
            expect_end();
            return stmt(tag == "break" ? Stmt::K::Break : Stmt::K::Continue);
        }
        syntax(line_, "unknown tag '" + tag + "'");
    }

    std::string sub_block(const std::string& name, const std::vector<std::string>& ends, Body& body) {
        open_blocks_.push_back(name);
        std::string end = block(ends, body);
        open_blocks_.pop_back();
        return end;
    }

    StmtP if_stmt() {
        auto st = stmt(Stmt::K::If);
        st->e.push_back(expression());
        expect_end();
        while (true) {
            st->bodies.emplace_back();
            const std::string end = sub_block("if", {"elif", "else", "endif"}, st->bodies.back());
            if (end == "endif") break;
            if (end == "elif") {
                st->e.push_back(expression());
                expect_end();
                continue;
            }
            expect_end();
            st->has_else = true;
            st->bodies.emplace_back();
            sub_block("if", {"endif"}, st->bodies.back());
            break;
        }
        expect_end();
        return st;
    }

    StmtP for_stmt() {
        auto st = stmt(Stmt::K::For);
        do st->names.push_back(expect_name()); while (accept_op(","));
        if (!accept_name("in")) syntax(line_, "expected 'in' in for");
        st->e.push_back(no_cond_expression());
        if (accept_name("if")) st->e.push_back(no_cond_expression());
        if (accept_name("recursive")) syntax(line_, "recursive loops are not supported");
        expect_end();
        st->bodies.emplace_back();
        const std::string end = sub_block("for", {"else", "endfor"}, st->bodies.back());
        st->bodies.emplace_back();
        if (end == "else") {
            expect_end();
            st->has_else = true;
            sub_block("for-else", {"endfor"}, st->bodies.back());
        }
        expect_end();
        return st;
    }

    StmtP set_stmt() {
        auto st = stmt(Stmt::K::Set);
        st->names.push_back(expect_name());
        if (accept_op(".")) {
            st->attr_target = true;
            st->names.push_back(expect_name());
        } else {
            while (accept_op(",")) st->names.push_back(expect_name());
        }
        if (at_end() && !st->attr_target && st->names.size() == 1) {
            st->k = Stmt::K::SetBlock;
            st->bodies.emplace_back();
            sub_block("set", {"endset"}, st->bodies.back());
            expect_end();
            return st;
        }
        expect_op("=");
        st->e.push_back(tuple_or_expression());
        expect_end();
        return st;
    }

    void params(Stmt& st) {
        expect_op("(");
        while (!accept_op(")")) {
            st.names.push_back(expect_name());
            st.defaults.push_back(accept_op("=") ? expression() : nullptr);
            if (!is_op(")")) expect_op(",");
        }
    }

    StmtP macro_stmt() {
        auto st = stmt(Stmt::K::Macro);
        st->text = expect_name();
        params(*st);
        expect_end();
        st->bodies.emplace_back();
        sub_block("macro", {"endmacro"}, st->bodies.back());
        expect_end();
        return st;
    }

    StmtP call_stmt() {
        auto st = stmt(Stmt::K::CallBlock);
        if (is_op("(")) params(*st);
        st->e.push_back(expression());
        if (st->e[0]->k != Expr::K::Call) syntax(line_, "call block needs a macro call");
        expect_end();
        st->bodies.emplace_back();
        sub_block("call", {"endcall"}, st->bodies.back());
        expect_end();
        return st;
    }

    StmtP filter_stmt() {
        auto st = stmt(Stmt::K::FilterBlock);
        auto f = node(Expr::K::Filter);
        f->name = expect_name();
        f->a.push_back(nullptr);  // the block's text goes here
        if (accept_op("(")) call_args(*f);
        st->e.push_back(std::move(f));
        expect_end();
        st->bodies.emplace_back();
        sub_block("filter", {"endfilter"}, st->bodies.back());
        expect_end();
        return st;
    }

    // -- expressions
    ExprP tuple_or_expression() {
        ExprP first = expression();
        if (!is_op(",")) return first;
        auto t = node(Expr::K::ListLit);
        t->a.push_back(std::move(first));
        while (accept_op(",") && !at_end()) t->a.push_back(expression());
        return t;
    }

    ExprP expression() {
        DepthGuard g(*this);
        ExprP e = or_expr();
        while (is_name("if")) {
            auto c = node(Expr::K::Cond);
            take();
            ExprP cond = or_expr();
            ExprP other = accept_name("else") ? or_expr() : nullptr;
            c->a.push_back(std::move(cond));
            c->a.push_back(std::move(e));
            c->a.push_back(std::move(other));
            e = std::move(c);
        }
        return e;
    }

    ExprP no_cond_expression() { return or_expr(); }

    ExprP binary(Expr::K k, const std::string& op, ExprP l, ExprP r) {
        auto b = node(k);
        b->name = op;
        b->a.push_back(std::move(l));
        b->a.push_back(std::move(r));
        return b;
    }

    ExprP or_expr() {
        ExprP l = and_expr();
        while (accept_name("or")) l = binary(Expr::K::Or, "or", std::move(l), and_expr());
        return l;
    }
    ExprP and_expr() {
        ExprP l = not_expr();
        while (accept_name("and")) l = binary(Expr::K::And, "and", std::move(l), not_expr());
        return l;
    }
    ExprP not_expr() {
        if (!is_name("not")) return compare();
        DepthGuard g(*this);
        auto n = node(Expr::K::Not);
        take();
        n->a.push_back(not_expr());
        return n;
    }
    ExprP compare() {
        ExprP l = math1();
        while (true) {
            std::string op;
            if (is_op("==") || is_op("!=") || is_op("<") || is_op(">") || is_op("<=") || is_op(">=")) op = take().s;
            else if (is_name("in")) { take(); op = "in"; }
            else if (is_name("not") && is_name("in", 1)) { take(); take(); op = "not in"; }
            else return l;
            l = binary(Expr::K::Binary, op, std::move(l), math1());
        }
    }
    ExprP math1() {
        ExprP l = concat();
        while (is_op("+") || is_op("-")) {
            const std::string op = take().s;
            l = binary(Expr::K::Binary, op, std::move(l), concat());
        }
        return l;
    }
    ExprP concat() {
        ExprP l = math2();
        while (accept_op("~")) l = binary(Expr::K::Binary, "~", std::move(l), math2());
        return l;
    }
    ExprP math2() {
        ExprP l = power();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            const std::string op = take().s;
            l = binary(Expr::K::Binary, op, std::move(l), power());
        }
        return l;
    }
    ExprP power() {
        ExprP l = unary();
        while (accept_op("**")) l = binary(Expr::K::Binary, "**", std::move(l), unary());
        return l;
    }
    ExprP unary() {
        DepthGuard g(*this);
        if (is_op("-") || is_op("+")) {
            auto u = node(Expr::K::Unary);
            u->name = take().s;
            u->a.push_back(unary_no_filter());
            return filters(std::move(u));
        }
        return filters(postfix(primary()));
    }
    ExprP unary_no_filter() {
        if (is_op("-") || is_op("+")) {
            auto u = node(Expr::K::Unary);
            u->name = take().s;
            u->a.push_back(unary_no_filter());
            return u;
        }
        return postfix(primary());
    }

    ExprP primary() {
        const Tok& t = peek();
        if (t.t == Tok::T::Str) {
            auto e = node(Expr::K::Literal);
            std::string s;
            while (peek().t == Tok::T::Str) s += take().s;  // adjacent literals concatenate
            e->lit = Value::str(std::move(s));
            return e;
        }
        if (t.t == Tok::T::Int || t.t == Tok::T::Float) {
            auto e = node(Expr::K::Literal);
            const Tok n = take();
            e->lit = n.t == Tok::T::Int ? Value::integer(n.i) : Value::number(n.f);
            return e;
        }
        if (t.t == Tok::T::Name) return name_primary();
        if (accept_op("(")) return paren();
        if (accept_op("[")) return list_lit();
        if (accept_op("{")) return dict_lit();
        syntax(t.line, t.t == Tok::T::End ? "unexpected end of expression" : "unexpected '" + t.s + "'");
    }

    ExprP name_primary() {
        auto e = node(Expr::K::Literal);
        const std::string n = take().s;
        if (n == "true" || n == "True") e->lit = Value::boolean(true);
        else if (n == "false" || n == "False") e->lit = Value::boolean(false);
        else if (n == "none" || n == "None") e->lit = Value::none();
        else {
            e->k = Expr::K::Name;
            e->name = n;
        }
        return e;
    }

    ExprP paren() {
        if (accept_op(")")) {
            auto t = node(Expr::K::ListLit);
            return t;
        }
        ExprP first = expression();
        if (accept_op(")")) return first;
        auto t = node(Expr::K::ListLit);  // a tuple: a list in this sandbox
        t->a.push_back(std::move(first));
        while (accept_op(",")) {
            if (is_op(")")) break;
            t->a.push_back(expression());
        }
        expect_op(")");
        return t;
    }

    ExprP list_lit() {
        auto l = node(Expr::K::ListLit);
        while (!accept_op("]")) {
            l->a.push_back(expression());
            if (!is_op("]")) expect_op(",");
        }
        return l;
    }

    ExprP dict_lit() {
        auto d = node(Expr::K::DictLit);
        while (!accept_op("}")) {
            d->a.push_back(expression());
            expect_op(":");
            d->a.push_back(expression());
            if (!is_op("}")) expect_op(",");
        }
        return d;
    }

    ExprP postfix(ExprP e) {
        while (true) {
            if (accept_op(".")) {
                auto a = node(Expr::K::Attr);
                if (peek().t == Tok::T::Int) {  // x.0 is x[0]
                    a->k = Expr::K::Index;
                    auto idx = node(Expr::K::Literal);
                    idx->lit = Value::integer(take().i);
                    a->a.push_back(std::move(e));
                    a->a.push_back(std::move(idx));
                } else {
                    a->name = expect_name();
                    a->a.push_back(std::move(e));
                }
                e = std::move(a);
            } else if (accept_op("[")) {
                e = subscript(std::move(e));
            } else if (is_op("(")) {
                take();
                auto c = node(Expr::K::Call);
                c->a.push_back(std::move(e));
                call_args(*c);
                e = std::move(c);
            } else {
                return e;
            }
        }
    }

    ExprP subscript(ExprP target) {
        ExprP parts[3];
        int colons = 0;
        while (!accept_op("]")) {
            if (accept_op(":")) {
                if (++colons > 2) syntax(line_, "bad slice");
                continue;
            }
            if (parts[colons]) syntax(peek().line, "bad subscript");
            parts[colons] = expression();
        }
        auto s = node(colons ? Expr::K::Slice : Expr::K::Index);
        s->a.push_back(std::move(target));
        if (!colons) {
            if (!parts[0]) syntax(line_, "empty subscript");
            s->a.push_back(std::move(parts[0]));
            return s;
        }
        for (auto& p : parts) s->a.push_back(std::move(p));
        return s;
    }

    // After '(' : positional and name=value arguments up to ')'.
    void call_args(Expr& call) {
        while (!accept_op(")")) {
            if (peek().t == Tok::T::Name && is_op("=", 1)) {
                std::string k = take().s;
                take();
                call.kw.emplace_back(std::move(k), expression());
            } else {
                if (!call.kw.empty()) syntax(peek().line, "positional argument after keyword argument");
                call.a.push_back(expression());
            }
            if (!is_op(")")) expect_op(",");
        }
    }

    bool starts_test_arg() const {
        const Tok& t = peek();
        if (t.t == Tok::T::Str || t.t == Tok::T::Int || t.t == Tok::T::Float) return true;
        if (t.t == Tok::T::Op) return t.s == "[" || t.s == "{";
        if (t.t != Tok::T::Name) return false;
        static const char* kw[] = {"and", "or", "else", "if", "in", "is", "not"};
        for (const char* k : kw)
            if (t.s == k) return false;
        return true;
    }

    ExprP filters(ExprP e) {
        while (true) {
            if (accept_op("|")) {
                auto f = node(Expr::K::Filter);
                f->name = expect_name();
                f->a.push_back(std::move(e));
                if (accept_op("(")) call_args(*f);
                e = std::move(f);
            } else if (accept_name("is")) {
                auto t = node(Expr::K::Test);
                t->negate = accept_name("not");
                t->name = expect_name();
                t->a.push_back(std::move(e));
                if (accept_op("(")) call_args(*t);
                else if (starts_test_arg()) t->a.push_back(postfix(primary()));
                e = std::move(t);
            } else {
                return e;
            }
        }
    }
};

}  // namespace

std::shared_ptr<const Body> parse_template(const std::string& source, const Limits& limits) {
    if (source.size() > limits.max_source)
        throw Error(Status::InvalidArgument, "template line 1: template too large (" + std::to_string(source.size()) + " bytes)");
    Parser p(Lexer(source).run());
    return std::make_shared<const Body>(p.parse());
}

Template::Template(const std::string& source, Limits limits) : limits_(limits), body_(parse_template(source, limits_)) {}

std::string Template::render(const Dict& vars, const std::string& now) const {
    return render_body(*body_, vars, now, limits_);
}

}  // namespace ember::chat
