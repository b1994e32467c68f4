// GBNF grammars: the parser (every construct, errors with positions, hostile input), the recognizer
// (known-good and known-bad strings, split characters), JSON and JSON Schema grammars.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/error.hpp"
#include "ember/grammar.hpp"
#include "sampling/grammar.hpp"
#include "testdata.hpp"

using namespace ember;
namespace gr = ember::grammar;

namespace {

// Whether `text` is a whole sentence of the grammar (fed in the given byte pieces).
bool accepts(const gr::Grammar& g, const std::vector<std::string>& pieces) {
    gr::State s = gr::start(g);
    for (const std::string& p : pieces) {
        auto next = gr::advance(g, s, p);
        if (!next) return false;
        s = std::move(*next);
    }
    return gr::complete(s);
}
bool accepts(const gr::Grammar& g, const std::string& text) { return accepts(g, std::vector<std::string>{text}); }
// Whether `text` can still be continued into a sentence.
bool prefix_ok(const gr::Grammar& g, const std::string& text) { return gr::advance(g, gr::start(g), text).has_value(); }

bool accepts(const std::string& gbnf, const std::string& text) { return accepts(*gr::parse(gbnf), text); }

// The message of the InvalidArgument that parsing `gbnf` throws ("" when it parses).
std::string parse_error(const std::string& gbnf) {
    try {
        (void)gr::parse(gbnf);
    } catch (const Error& e) {
        CHECK(e.status() == Status::InvalidArgument);
        return e.what();
    }
    return "";
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

const char* const kArithmetic = R"G(
root  ::= (expr "=" ws term "\n")+
expr  ::= term ([-+*/] term)*
term  ::= ident | num | "(" ws expr ")" ws
ident ::= [a-z] [a-z0-9_]* ws
num   ::= [0-9]+ ws
ws    ::= [ \t\n]*
)G";

}  // namespace

TEST_CASE("grammar: literals, escapes, classes, any character") {
    CHECK(accepts(R"(root ::= "abc")", "abc"));
    CHECK_FALSE(accepts(R"(root ::= "abc")", "ab"));
    CHECK_FALSE(accepts(R"(root ::= "abc")", "abcd"));
    CHECK(accepts(R"(root ::= "a\nb\t\"\\")", "a\nb\t\"\\"));
    CHECK(accepts(R"(root ::= "\x41\u00e9\U0001F600")", "Aé😀"));
    CHECK(accepts(R"(root ::= "héllo 😀")", "héllo 😀"));
    CHECK(accepts(R"(root ::= [a-c] [xyz])", "by"));
    CHECK_FALSE(accepts(R"(root ::= [a-c] [xyz])", "dy"));
    CHECK(accepts(R"(root ::= [^a-c\n])", "d"));
    CHECK(accepts(R"(root ::= [^a-c\n])", "é"));
    CHECK_FALSE(accepts(R"(root ::= [^a-c\n])", "b"));
    CHECK_FALSE(accepts(R"(root ::= [^a-c\n])", "\n"));
    CHECK(accepts(R"(root ::= [\]\-] [-])", "]-"));
    CHECK(accepts(R"(root ::= [ぁ-ゟ]+)", "ひらがな"));
    CHECK_FALSE(accepts(R"(root ::= [ぁ-ゟ]+)", "カタカナ"));
    CHECK(accepts(R"(root ::= . . .)", "a😀\n"));
    CHECK_FALSE(accepts(R"(root ::= . . .)", "ab"));
}

TEST_CASE("grammar: sequences, alternatives, groups, rule references, comments, newlines") {
    const std::string g = R"(# a comment line
root ::= greeting " " ( name | "you" ) # trailing comment
greeting ::= "hi" | "hello" |
    "hey"
name ::= (
    "ann"   # inside parentheses newlines are fine
  | "bob"
)
)";
    CHECK(accepts(g, "hi ann"));
    CHECK(accepts(g, "hello you"));
    CHECK(accepts(g, "hey bob"));
    CHECK_FALSE(accepts(g, "hey carl"));
    CHECK_FALSE(accepts(g, "hi  ann"));
    CHECK(accepts("root ::= a-b_c2\na-b_c2 ::= \"x\"", "x"));
    CHECK(accepts("root ::= \"x\" | ", ""));  // an empty alternative
    CHECK(accepts("root ::= \"a\"\r\nx ::= \"b\"\r\n", "a"));
}

TEST_CASE("grammar: repetitions * + ? {m} {m,} {m,n}") {
    CHECK(accepts(R"(root ::= "a"*)", ""));
    CHECK(accepts(R"(root ::= "a"*)", "aaaa"));
    CHECK_FALSE(accepts(R"(root ::= "a"+)", ""));
    CHECK(accepts(R"(root ::= "a"+ "b")", "aaab"));
    CHECK(accepts(R"(root ::= "ab"? "c")", "abc"));
    CHECK(accepts(R"(root ::= "ab"? "c")", "c"));
    CHECK_FALSE(accepts(R"(root ::= "ab"? "c")", "ac"));
    CHECK(accepts(R"(root ::= [0-9]{3})", "123"));
    CHECK_FALSE(accepts(R"(root ::= [0-9]{3})", "12"));
    CHECK_FALSE(accepts(R"(root ::= [0-9]{3})", "1234"));
    CHECK(accepts(R"(root ::= "x"{2,})", "xxxxxx"));
    CHECK_FALSE(accepts(R"(root ::= "x"{2,})", "x"));
    for (int n = 0; n <= 5; ++n) CHECK(accepts(R"(root ::= ("ab" | "c"){1,4})", std::string(static_cast<size_t>(n), 'c')) == (n >= 1 && n <= 4));
    CHECK(accepts(R"(root ::= "x"{0,2} "y")", "y"));
    CHECK(accepts(R"(root ::= "x"{ 0 , 2 } "y")", "xxy"));
    CHECK(accepts(R"(root ::= "q"{0})", ""));
}

TEST_CASE("grammar: errors name the line and column") {
    CHECK(parse_error("root ::= \"abc\"\nfoo ::= bar\n").find("line 2, column 9: undefined rule 'bar'") != std::string::npos);
    CHECK(parse_error("root ::= \"a\"\n  x ::= [a-\n").find("line 2") != std::string::npos);
    CHECK(parse_error("root ::= \"abc").find("line 1, column 10: unterminated string literal") != std::string::npos);
    CHECK(parse_error("root ::= [abc").find("unterminated character class") != std::string::npos);
    CHECK(parse_error("root ::= \"\\q\"").find("unknown escape") != std::string::npos);
    CHECK(parse_error("root ::= \"\\xZ1\"").find("hex digits") != std::string::npos);
    CHECK(parse_error("root ::= \"\\U00110000\"").find("U+10FFFF") != std::string::npos);
    CHECK(parse_error("root ::= [z-a]").find("out of order") != std::string::npos);
    CHECK(parse_error("root = \"a\"").find("expecting ::=") != std::string::npos);
    CHECK(parse_error("root ::= ( \"a\"").find("expecting ')'") != std::string::npos);
    CHECK(parse_error("root ::= * \"a\"").find("needs something before it") != std::string::npos);
    CHECK(parse_error("root ::= \"a\"{3,2}").find("n < m") != std::string::npos);
    CHECK(parse_error("root ::= \"a\" )").find("expecting a newline") != std::string::npos);
    CHECK(parse_error("x ::= \"a\"").find("no rule named 'root'") != std::string::npos);
    CHECK(parse_error("").find("no rule named 'root'") != std::string::npos);
    CHECK(parse_error("root ::= \"a\"\nroot ::= \"b\"").find("line 2, column 1: rule 'root' is defined twice") != std::string::npos);
    CHECK(parse_error("root ::= <think>").find("not supported") != std::string::npos);
    CHECK(parse_error("root ::= \"\xC3\"").find("invalid UTF-8") != std::string::npos);
    CHECK(parse_error("root ::= \"\xFF\xFE\"").find("invalid UTF-8") != std::string::npos);
    CHECK(parse_error("root ::= \"é\" )").find("column 14") != std::string::npos);  // columns count characters
}

TEST_CASE("grammar: left recursion is refused, right recursion is fine") {
    CHECK(parse_error("root ::= root \"a\" | \"b\"").find("left recursion through rule 'root'") != std::string::npos);
    CHECK(parse_error("root ::= x\nx ::= y \"a\"\ny ::= \"\" | x").find("left recursion") != std::string::npos);
    CHECK(parse_error("root ::= opt root \"a\" | \"b\"\nopt ::= \"c\"?").find("left recursion") != std::string::npos);
    CHECK(parse_error("root ::= (\"a\"?)*").find("left recursion through rule 'root'") != std::string::npos);
    CHECK(parse_error("root ::= \"a\" root | \"b\"").empty());
    const auto g = gr::parse("root ::= \"(\" root \")\" | \"x\"");
    CHECK(accepts(*g, "((((x))))"));
    CHECK_FALSE(accepts(*g, "((((x)))"));
}

TEST_CASE("grammar: hostile input fails fast with InvalidArgument") {
    const auto t0 = std::chrono::steady_clock::now();
    // 100k nested parentheses: refused at the nesting limit, no stack overflow.
    CHECK(parse_error("root ::= " + std::string(100000, '(') + "\"a\"" + std::string(100000, ')')).find("nested deeper") != std::string::npos);
    // Repetition counts: over the limit, and within it but too many elements.
    CHECK(parse_error("root ::= \"a\"{99999999999999999999}").find("repetition count over") != std::string::npos);
    CHECK(parse_error("root ::= \"a\"{10001}").find("repetition count over") != std::string::npos);
    CHECK(parse_error("root ::= \"" + std::string(1000, 'a') + "\"{10000}").find("elements") != std::string::npos);
    CHECK(parse_error("root ::= (((((((\"ab\"{0,10000}){0,10000}){0,10000}){0,10000}){0,10000}){0,10000}){0,10000})").find("rules") != std::string::npos);
    // 10 MB of text.
    CHECK(parse_error("root ::= \"" + std::string(10u << 20, 'a') + "\"").find("over the limit") != std::string::npos);
    // Many rules.
    std::string many = "root ::= r0\n";
    for (int i = 0; i < 70000; ++i) many.append("r").append(std::to_string(i)).append(" ::= \"a\"\n");
    CHECK(many.size() < gr::kMaxTextBytes);
    CHECK(parse_error(many).find("rules") != std::string::npos);
    CHECK(parse_error(std::string("root ::= \"a\"\n\x80\x81")).find("line 2, column 1") != std::string::npos);
    CHECK(seconds_since(t0) < 5.0);
}

TEST_CASE("grammar: ambiguity is bounded, not exponential") {
    // x? repeated 200 times (llama.cpp's README warns of it): many stacks alive, still fast.
    std::string g = "root ::=";
    for (int i = 0; i < 200; ++i) g += " \"a\"?";
    const auto t0 = std::chrono::steady_clock::now();
    const auto gg = gr::parse(g);
    CHECK(accepts(*gg, std::string(100, 'a')));
    CHECK(accepts(*gg, std::string(200, 'a')));
    CHECK_FALSE(accepts(*gg, std::string(201, 'a')));
    // Ambiguity that doubles: at most kMaxStacks stacks, then advance refuses instead of growing.
    const auto amb = gr::parse("root ::= x*\nx ::= \"a\" | \"a\" \"a\" | y\ny ::= \"a\"");
    CHECK(accepts(*amb, std::string(200, 'a')));
    CHECK(seconds_since(t0) < 5.0);
}

TEST_CASE("grammar: arithmetic sample") {
    const auto g = gr::parse(kArithmetic);
    CHECK(accepts(*g, "1+2= 3\n"));
    CHECK(accepts(*g, "(x *3) -y2= 7\nz=z\n"));
    CHECK_FALSE(accepts(*g, "1+= 3\n"));
    CHECK_FALSE(accepts(*g, "1+2=3"));  // the newline is required
    CHECK(prefix_ok(*g, "(x *3"));
    CHECK_FALSE(prefix_ok(*g, "(x * 3"));  // no blank before a term
    CHECK_FALSE(prefix_ok(*g, "(x *3 !"));
}

TEST_CASE("grammar: split UTF-8 characters across pieces") {
    const auto g = gr::parse(R"(root ::= "é" [😀-😂] "x")");
    CHECK(accepts(*g, std::vector<std::string>{"\xC3", "\xA9\xF0\x9F", "\x98", "\x81x"}));
    CHECK_FALSE(accepts(*g, std::vector<std::string>{"\xC3", "\xA9\xF0\x9F", "\x98", "\x83x"}));  // 😃 is out of range
    // A piece ending inside a character that can never match is refused at once.
    gr::State s = gr::start(*g);
    CHECK_FALSE(gr::advance(*g, s, "\xC4").has_value());  // U+0100..U+013F, not é
    auto half = gr::advance(*g, s, "\xC3");
    REQUIRE(half.has_value());
    CHECK_FALSE(gr::complete(*half));
    CHECK_FALSE(gr::advance(*g, *half, "A").has_value());  // not a continuation byte
    // Negated sets and `.` take any split character that may still avoid them.
    const auto neg = gr::parse(R"(root ::= [^é]+)");
    CHECK(gr::advance(*neg, gr::start(*neg), "\xC3").has_value());
    CHECK_FALSE(accepts(*neg, std::vector<std::string>{"\xC3", "\xA9"}));
    CHECK(accepts(*neg, std::vector<std::string>{"\xC3", "\xA8"}));
    // A lead byte whose shortest characters are above ASCII never stands for an ASCII letter (E0: U+0800 on).
    CHECK_FALSE(prefix_ok(*gr::parse(R"(root ::= "y")"), "\xE0"));
    CHECK_FALSE(prefix_ok(*gr::parse(R"(root ::= [\x00-\xFF])"), "\xE0"));
    CHECK(prefix_ok(*gr::parse(R"(root ::= [\u0800-\u0810])"), "\xE0"));
    CHECK_FALSE(prefix_ok(*gr::parse("root ::= .*"), "\xC0\x80"));      // overlong NUL
    CHECK_FALSE(prefix_ok(*gr::parse("root ::= .*"), "\xED\xA0\x80"));  // a surrogate
    // Invalid UTF-8 never matches.
    CHECK_FALSE(prefix_ok(*gr::parse("root ::= .*"), "\xFF"));
    CHECK_FALSE(prefix_ok(*gr::parse("root ::= .*"), "\x80"));
}

TEST_CASE("grammar: complete and finished") {
    const auto g = gr::parse(R"(root ::= "yes" | "no" | [0-9]+)");
    gr::State s = gr::start(*g);
    CHECK_FALSE(gr::complete(s));
    auto yes = gr::advance(*g, s, "yes");
    REQUIRE(yes);
    CHECK(gr::complete(*yes));
    CHECK(gr::finished(*yes));
    auto num = gr::advance(*g, s, "12");
    REQUIRE(num);
    CHECK(gr::complete(*num));
    CHECK_FALSE(gr::finished(*num));  // more digits may follow
}

TEST_CASE("json grammar: known-good and known-bad documents") {
    const auto any = gr::parse(json_grammar());
    const auto obj = gr::parse(json_grammar(true));
    for (const char* good : {R"({"a": [1, 2.5, -3e10, true, false, null], "b": {"c": "d\n\u00e9 \"q\""}})", "[]", "{}",
                             R"("x")", "0", "-0.5", R"([ {"k":"v"} ,"é😀"])", "{\n  \"a\": 1\n}"}) {
        CAPTURE(good);
        CHECK(accepts(*any, good));
        CHECK(nlohmann::json::accept(good));
    }
    CHECK(accepts(*obj, R"({"a": 1})"));
    CHECK_FALSE(accepts(*obj, "[1]"));
    for (const char* bad : {R"({"a" 1})", "[1,]", "01", R"({'a': 1})", "tru", "[1 2]", R"("a\q")", "\"\x01\"", "{}}",
                            "1.", "--1"}) {
        CAPTURE(bad);
        CHECK_FALSE(accepts(*any, bad));
        CHECK_FALSE(nlohmann::json::accept(bad));
    }
}

TEST_CASE("json schema: the converter's grammar takes valid documents and refuses others") {
    const std::string schema = R"({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 8},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"enum": ["a", "b", 3]}, "minItems": 1, "maxItems": 2},
            "kind": {"const": "person"},
            "score": {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "ok": {"type": "boolean"}
        },
        "required": ["name", "kind"]
    })";
    const std::string gbnf = json_schema_to_grammar(schema);
    const auto g = gr::parse(gbnf);
    CAPTURE(gbnf);
    for (const char* good : {R"({"name": "ann", "kind": "person"})",
                             R"({"name":"bob","age":42,"tags":["a",3],"kind":"person","score":null,"ok":true})",
                             R"({"name": "c", "tags": ["b"], "kind": "person", "score": 1.5})",
                             R"({"name": "c", "kind": "person", "ok": false})"}) {
        CAPTURE(good);
        CHECK(accepts(*g, good));
    }
    for (const char* bad : {R"({"kind": "person"})",                                   // name is required
                            R"({"name": "ann"})",                                       // kind too
                            R"({"kind": "person", "name": "ann"})",                     // schema order
                            R"({"name": "ann", "kind": "robot"})",                      // const
                            R"({"name": "ann", "age": 1.5, "kind": "person"})",         // integer
                            R"({"name": "ann", "tags": [], "kind": "person"})",         // minItems
                            R"({"name": "ann", "tags": ["a","b","a"], "kind": "person"})",  // maxItems
                            R"({"name": "ann", "tags": ["c"], "kind": "person"})",      // enum
                            R"({"name": "anneliese!", "kind": "person"})",              // maxLength
                            R"({"name": "ann", "kind": "person", "x": 1})"}) {          // no additional properties
        CAPTURE(bad);
        CHECK_FALSE(accepts(*g, bad));
    }
    // Small schemas that finish in a few characters.
    CHECK(accepts(*gr::parse(json_schema_to_grammar(R"({"type":"boolean"})")), "true"));
    CHECK(gr::finished(*gr::advance(*gr::parse(json_schema_to_grammar(R"({"enum":["red","green"]})")),
                                    gr::start(*gr::parse(json_schema_to_grammar(R"({"enum":["red","green"]})"))), "\"red\"")));
    // Additional properties allowed, any object, any value.
    const auto extra = gr::parse(json_schema_to_grammar(R"({"properties":{"a":{"type":"integer"}},"additionalProperties":true})"));
    CHECK(accepts(*extra, R"({"b": [1], "c": null})"));
    CHECK(accepts(*extra, R"({"a": 1, "b": "x"})"));
    CHECK(accepts(*gr::parse(json_schema_to_grammar(R"({"type":"object"})")), R"({"z": {"y": []}})"));
    CHECK(accepts(*gr::parse(json_schema_to_grammar("{}")), "[1, {}]"));
    CHECK(accepts(*gr::parse(json_schema_to_grammar(R"({"type":["string","null"]})")), "null"));
}

TEST_CASE("json schema: bad schemas are InvalidArgument") {
    for (const char* bad : {"", "{", "[1]", R"({"type": "widget"})", R"({"$ref": "#/x"})", R"({"enum": []})",
                            R"({"type": "array", "minItems": 5000})", R"({"type": "array", "minItems": -1})",
                            R"({"type": "object", "properties": {"a": {}}, "required": ["b"]})", "false",
                            R"({"type": "string", "maxLength": 99999})"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(json_schema_to_grammar(bad), Error);
    }
    std::string deep;
    for (int i = 0; i < 1000; ++i) deep += R"({"items":)";
    deep += "{}" + std::string(1000, '}');
    CHECK_THROWS_AS(json_schema_to_grammar(deep), Error);
    CHECK_THROWS_AS(check_grammar("root ::= nope"), Error);
}
