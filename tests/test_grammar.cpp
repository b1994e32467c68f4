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

namespace {

// The grammar a schema converts to, parsed; the text of each good document accepted, of each bad one refused.
void check_schema(const std::string& schema, const std::vector<std::string>& good, const std::vector<std::string>& bad) {
    CAPTURE(schema);
    const std::string gbnf = json_schema_to_grammar(schema);
    CAPTURE(gbnf);
    const auto g = gr::parse(gbnf);
    for (const std::string& text : good) {
        CAPTURE(text);
        CHECK(accepts(*g, text));
    }
    for (const std::string& text : bad) {
        CAPTURE(text);
        CHECK_FALSE(accepts(*g, text));
    }
}

// The message of the InvalidArgument that converting `schema` throws ("" when it converts).
std::string schema_error(const std::string& schema) {
    try {
        (void)json_schema_to_grammar(schema);
    } catch (const Error& e) {
        CHECK(e.status() == Status::InvalidArgument);
        return e.what();
    }
    return "";
}

std::string pattern_schema(const std::string& pattern) { return nlohmann::json{{"type", "string"}, {"pattern", pattern}}.dump(); }

}  // namespace

TEST_CASE("json schema: the parser's limits hold before anything is built") {
    CHECK(schema_error("{").find("not valid JSON") != std::string::npos);
    CHECK(schema_error(R"({"enum": [1,]})").find("not valid JSON") != std::string::npos);
    auto nested_enum = [](int depth) { return R"({"enum": [)" + std::string(depth, '[') + std::string(depth, ']') + "]}"; };
    CHECK(schema_error(nested_enum(62)).find("nested deeper") == std::string::npos);  // 64 levels with the two above
    CHECK(schema_error(nested_enum(63)).find("nested deeper than 64") != std::string::npos);
    // 200,000 objects in one array: refused (the grammar would be too big) at once. nlohmann's callback
    // parser, which this replaced, scanned the array again after each one: 11-16 s.
    std::string many = R"({"enum": [{})";
    for (int i = 1; i < 200000; ++i) many += ",{}";
    CHECK(schema_error(many + "]}").find("grammar") != std::string::npos);
}

TEST_CASE("json schema: $ref to $defs, definitions and JSON pointers") {
    check_schema(R"({"$defs": {"Color": {"enum": ["red", "blue"]}},
                     "type": "object", "properties": {"a": {"$ref": "#/$defs/Color"}, "b": {"$ref": "#/$defs/Color"}},
                     "required": ["a"]})",
                 {R"({"a": "red"})", R"({"a": "blue", "b": "red"})"}, {R"({"a": "green"})", R"({"b": "red"})"});
    check_schema(R"({"definitions": {"n": {"type": "integer"}}, "type": "array", "items": {"$ref": "#/definitions/n"}})",
                 {"[1, 2]", "[]"}, {R"(["1"])", "[1.5]"});
    // A pointer into the document, with ~1 (a slash) and %25 (a percent sign) escapes.
    check_schema(R"({"type": "object", "properties": {"x": {"type": "boolean"}, "y": {"$ref": "#/properties/x"},
                     "a/b%": {"type": "null"}, "z": {"$ref": "#/properties/a~1b%25"}}, "required": ["y", "z"]})",
                 {R"({"y": true, "z": null})", R"({"x": false, "y": false, "z": null})"}, {R"({"y": 1, "z": null})", R"({"y": true, "z": 0})"});
    // $ref beside other keywords: both apply.
    check_schema(R"({"$defs": {"P": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}},
                     "$ref": "#/$defs/P", "properties": {"b": {"type": "string"}}, "required": ["b"]})",
                 {R"({"a": 1, "b": "x"})"}, {R"({"a": 1})", R"({"b": "x"})"});
}

TEST_CASE("json schema: a recursive tree") {
    const std::string tree = R"({"$defs": {"Node": {"type": "object", "properties": {
                                   "value": {"type": "integer"},
                                   "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
                                 "required": ["value", "children"]}},
                                 "$ref": "#/$defs/Node"})";
    check_schema(tree, {R"({"value": 1, "children": []})", R"({"value": 1, "children": [{"value": 2, "children": [{"value": 3, "children": []}]}, {"value": 4, "children": []}]})"},
                 {R"({"value": 1, "children": [{"value": 2}]})", R"({"value": 1, "children": [{"value": "x", "children": []}]})"});
    // Recursion through the root itself, and a linked list through an anyOf with null.
    check_schema(R"({"type": "array", "items": {"anyOf": [{"type": "integer"}, {"$ref": "#"}]}})", {"[1, [2, [3]], []]"}, {"[1, [2, [\"x\"]]]"});
    check_schema(R"({"$defs": {"L": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#/$defs/L"}, {"type": "null"}]}}, "required": ["v", "next"]}},
                     "allOf": [{"$ref": "#/$defs/L"}]})",
                 {R"({"v": 1, "next": {"v": 2, "next": null}})"}, {R"({"v": 1, "next": {"v": 2}})"});
}

TEST_CASE("json schema: pydantic's nested models ($defs, allOf, Optional, enums, title/description/default)") {
    // As pydantic v1/v2's model_json_schema() writes a model with a nested model, an enum and Optional fields.
    const std::string schema = R"({
      "$defs": {
        "Address": {"properties": {"street": {"title": "Street", "type": "string"},
                                   "zip": {"title": "Zip", "type": "string", "pattern": "^[0-9]{5}$"}},
                    "required": ["street", "zip"], "title": "Address", "type": "object"},
        "Role": {"enum": ["admin", "user"], "title": "Role", "type": "string"}
      },
      "properties": {
        "id": {"title": "Id", "type": "integer", "minimum": 1, "description": "the key"},
        "email": {"format": "email", "title": "Email", "type": "string"},
        "address": {"allOf": [{"$ref": "#/$defs/Address"}], "description": "where"},
        "role": {"allOf": [{"$ref": "#/$defs/Role"}], "default": "user"},
        "nick": {"anyOf": [{"type": "string", "maxLength": 4}, {"type": "null"}], "default": null, "title": "Nick"},
        "born": {"type": "string", "format": "date", "examples": ["2000-01-31"]}
      },
      "required": ["id", "email", "address"],
      "title": "User", "type": "object"})";
    check_schema(schema,
                 {R"({"id": 7, "email": "a@b.c", "address": {"street": "Main", "zip": "12345"}})",
                  R"({"id": 12, "email": "x", "address": {"street": "", "zip": "00000"}, "role": "admin", "nick": null, "born": "1999-12-31"})",
                  R"({"id": 1, "email": "x", "address": {"street": "s", "zip": "11111"}, "nick": "abcd"})"},
                 {R"({"id": 0, "email": "x", "address": {"street": "s", "zip": "11111"}})",       // minimum 1
                  R"({"id": 1, "email": "x", "address": {"street": "s", "zip": "1111"}})",        // zip pattern
                  R"({"id": 1, "email": "x", "address": {"street": "s"}})",                       // zip required
                  R"({"id": 1, "email": "x", "address": {"street": "s", "zip": "11111"}, "role": "root"})",
                  R"({"id": 1, "email": "x", "address": {"street": "s", "zip": "11111"}, "nick": "abcde"})",
                  R"({"id": 1, "email": "x", "address": {"street": "s", "zip": "11111"}, "born": "1999-13-01"})"});
}

TEST_CASE("json schema: allOf merges objects, types, bounds and enums; contradictions are refused") {
    check_schema(R"({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                               {"properties": {"b": {"type": "string"}}, "required": ["b"]},
                               {"properties": {"a": {"minimum": 0}}}]})",
                 {R"({"a": 1, "b": "x"})"}, {R"({"a": 1})", R"({"b": "x"})", R"({"a": -1, "b": "x"})", R"({"a": 1, "b": 2})"});
    check_schema(R"({"allOf": [{"type": ["integer", "string"]}, {"type": "number"}]})", {"3"}, {"\"3\"", "3.5"});
    check_schema(R"({"allOf": [{"type": "string", "maxLength": 5}, {"maxLength": 2, "minLength": 1}]})", {"\"ab\""}, {"\"abc\"", "\"\""});
    check_schema(R"({"allOf": [{"enum": [1, 2, 3]}, {"enum": [2, 3, 4]}]})", {"2", "3"}, {"1", "4"});
    // anyOf inside an allOf: the other parts apply to each alternative.
    check_schema(R"({"allOf": [{"type": "object", "properties": {"k": {"type": "integer"}}, "required": ["k"]},
                               {"anyOf": [{"properties": {"x": {"const": 1}}, "required": ["x"]}, {"properties": {"y": {"const": 2}}, "required": ["y"]}]}]})",
                 {R"({"k": 0, "x": 1})", R"({"k": 0, "y": 2})"}, {R"({"k": 0})", R"({"x": 1})"});
    // Tuples merged position by position: each part's prefixItems schema (past its prefix, its items) applies.
    check_schema(R"({"allOf": [{"type": "array", "prefixItems": [{"type": "integer"}]}, {"prefixItems": [{"minimum": 0}, {"type": "string"}]}]})",
                 {"[]", "[1]", R"([1, "a"])", R"([1, "a", null])"}, {"[-1]", "[1, 2]", R"(["a"])"});
    check_schema(R"({"allOf": [{"prefixItems": [{"type": "integer"}, {"type": "integer"}]}, {"items": {"type": "integer", "minimum": 0}}]})",
                 {"[1, 2, 3]", "[]"}, {"[-1]", "[1, -2]", "[1, 2, -3]"});
    check_schema(R"({"allOf": [{"prefixItems": [{"type": "integer"}]}, {"items": [{"type": "integer"}, {"type": "string"}], "additionalItems": false}]})",
                 {R"([1, "a"])", "[1]"}, {R"([1, "a", 1])", R"(["a"])"});
    check_schema(R"({"allOf": [{"prefixItems": [{"type": "integer"}], "items": false}, {"prefixItems": [{"type": "integer"}, {"type": "string"}]}]})",
                 {"[]", "[1]"}, {R"([1, "a"])"});
    check_schema(R"({"allOf": [{"prefixItems": [{"type": "integer"}], "items": {"type": "string"}}, {"items": {"maxLength": 1}}]})",
                 {R"([1, "a", "b"])"}, {R"([1, "ab"])", R"(["a"])"});
    // Keywords beside anyOf apply to each alternative; an items: false with no prefix of its own closes the array.
    check_schema(R"({"prefixItems": [{"type": "integer"}], "anyOf": [{"items": false}, {"minItems": 2}]})",
                 {"[]", R"([1, "z"])"}, {"[1]", R"(["a", 1])"});
    CHECK(schema_error(R"({"allOf": [{"prefixItems": [{"type": "integer"}]}, {"items": {"type": "string"}}]})").find("contradict") != std::string::npos);
    CHECK(schema_error(R"({"allOf": [{"prefixItems": [{}, {}], "minItems": 2}, {"items": false}]})").find("at most 0") != std::string::npos);
    CHECK(schema_error(R"({"allOf": [{"prefixItems": [{}]}, {"prefixItems": [{}], "items": [{}]}]})").find("two tuples") != std::string::npos);
    CHECK(schema_error(R"({"allOf": [{"type": "string"}, {"type": "integer"}]})").find("contradict") != std::string::npos);
    CHECK(schema_error(R"({"allOf": [{"const": 1}, {"const": 2}]})").find("conflicting 'const'") != std::string::npos);
    CHECK(schema_error(R"({"allOf": [{"enum": [1]}, {"enum": [2]}]})").find("in common") != std::string::npos);
    CHECK(schema_error(R"({"allOf": [{"pattern": "a"}, {"pattern": "b"}]})").find("conflicting 'pattern'") != std::string::npos);
    CHECK(schema_error(R"({"allOf": [{"type": "string"}, {"not": {"const": "x"}}]})").find("'not' is not supported") != std::string::npos);
    CHECK(schema_error(R"({"allOf": []})").find("non-empty") != std::string::npos);
}

TEST_CASE("json schema: pattern") {
    // Anchored: the whole string.
    check_schema(pattern_schema("^[A-Z][a-z]+-\\d{2,3}$"), {R"("Ab-12")", R"("Xyz-123")"}, {R"("ab-12")", R"("Ab-1")", R"("Ab-1234")", R"("A-12")", R"("Ab-12x")"});
    // Unanchored: anywhere in the string.
    check_schema(pattern_schema("ab+c"), {R"("abc")", R"("xxabbbcyy")"}, {R"("ac")", R"("abx")"});
    check_schema(pattern_schema("^ab"), {R"("abc")"}, {R"("cab")"});
    check_schema(pattern_schema("x$"), {R"("abx")"}, {R"("xa")"});
    // Groups, alternation, ? * + {n} {n,}, non-capturing and named groups, lazy quantifiers.
    check_schema(pattern_schema("^(?:foo|ba(r|z))+(?<n>\\.x)?y*?z{2}w{1,}$"),
                 {R"("foozzw")", R"("barbazfoo.xyyyzzww")"}, {R"("zzw")", R"("foozw")", R"("foo.x.xzzw")", R"("foozz")"});
    check_schema(pattern_schema("^a|b$"), {R"("ax")", R"("xb")"}, {R"("xa")", R"("bx")"});
    // Classes: negation, escapes, \w \s \D, '-' first and last, '.' (not a newline).
    check_schema(pattern_schema("^[^0-9]\\w\\s\\D[-a][b-]\\.$"), {R"("x_ y-b.")", R"("é9\tza-.")"}, {R"("1_ y-b.")", R"("x_ 1-b.")", R"("x_ y-bx")"});
    check_schema(pattern_schema("^.$"), {R"("a")", R"("😀")", R"("\"")", R"("\\")"}, {R"("\n")", R"("ab")", R"("")"});
    // Characters JSON escapes: a quote, a backslash, a tab.
    check_schema(pattern_schema("^\"\\\\\\t[\"]$"), {R"("\"\\\t\"")"}, {R"("\"\\ \"")"});
    // Escapes: \x, \u, \u{...}, punctuation; '{' that is no quantifier is itself.
    check_schema(pattern_schema("^\\x41\\u00e9\\u{1F600}\\(\\)\\*x{$"), {R"("Aé😀()*x{")"}, {R"("Ae😀()*x{")"});
    check_schema(pattern_schema(""), {R"("")", R"("anything")"}, {"1"});
    check_schema(pattern_schema("^$"), {R"("")"}, {R"("a")"});
    // With patternProperties: keys that match.
    check_schema(R"({"type": "object", "patternProperties": {"^x-[a-z]+$": {"type": "integer"}}})",
                 {"{}", R"({"x-a": 1, "x-bc": 2})"}, {R"({"y": 1})", R"({"x-a": "1"})"});
    check_schema(R"({"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"],
                     "patternProperties": {"^s_": {"type": "string"}}, "additionalProperties": {"type": "boolean"}})",
                 {R"({"id": 1})", R"({"id": 1, "s_a": "x", "other": true})"}, {R"({"id": 1, "s_a": 1, "o": "x"})", R"({"id": 1, "z": 1})"});
}

TEST_CASE("json schema: bad patterns are InvalidArgument") {
    const std::pair<const char*, const char*> bad[] = {
        {"(a)\\1", "backreferences"}, {"(?<n>a)\\k<n>", "backreferences"}, {"a(?=b)", "lookahead"},
        {"a(?!b)", "lookahead"}, {"(?<=a)b", "lookahead"}, {"(?i)a", "flags"}, {"\\bword", "word boundaries"},
        {"\\p{L}", "Unicode property"}, {"a{3,2}", "m < n"}, {"a{99999}", "repetition count"}, {"(a", "unterminated group"},
        {"a)", "unmatched"}, {"[a", "unterminated character class"}, {"*a", "nothing before"}, {"a**", "after a quantifier"},
        {"a^b", "'^' only"}, {"a$b", "'$' only"}, {"[z-a]", "out of order"}, {"\\", "ending in a backslash"},
        {"\\q", "unknown escape"}, {"[]", "no JSON string character"}, {"a++", "possessive"}, {"\\u12", "hex digit"},
    };
    for (const auto& [pattern, why] : bad) {
        CAPTURE(pattern);
        const std::string msg = schema_error(pattern_schema(pattern));
        CAPTURE(msg);
        CHECK(msg.find("json schema: pattern: ") == 0);
        CHECK(msg.find(why) != std::string::npos);
    }
    // Deep nesting and huge repetitions end in an error, quickly.
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(schema_error(pattern_schema(std::string(5000, '(') + "a" + std::string(5000, ')'))).find("nested deeper") != std::string::npos);
    // Within the grammar's limits (50,000 rules; 20,000 elements): converted.
    CHECK(schema_error(pattern_schema("((((a{0,10000}){0,10000}){0,10000}){0,10000}){0,10000}")).empty());
    CHECK(schema_error(pattern_schema("(.{10000}){10000}")).empty());
    // Beyond them: 70,000 rules, 2.1 million elements, 2 MB of grammar.
    CHECK(schema_error(pattern_schema("((((((a{0,10000}){0,10000}){0,10000}){0,10000}){0,10000}){0,10000}){0,10000}")).find("more than 65536 rules") != std::string::npos);
    std::string copies;
    for (int i = 0; i < 210; ++i) copies += "a{10000}";
    CHECK(schema_error(pattern_schema(copies)).find("grammar elements") != std::string::npos);
    std::string many;
    for (int i = 0; i < 100000; ++i) many += "[^x]";
    CHECK(schema_error(pattern_schema(many)).find("would be over") != std::string::npos);
    CHECK(seconds_since(t0) < 10);
}

TEST_CASE("json schema: formats date, time, date-time, uuid; unknown ones are any string") {
    check_schema(R"({"type": "string", "format": "date"})", {R"("2024-02-29")", R"("1999-12-01")"},
                 {R"("2024-2-29")", R"("2024-13-01")", R"("2024-00-10")", R"("2024-01-32")", R"("2024-01-01T")"});
    check_schema(R"({"type": "string", "format": "time"})", {R"("23:59:59Z")", R"("00:00:00.123+05:30")"},
                 {R"("24:00:00Z")", R"("12:60:00Z")", R"("12:00:00")", R"("12:00Z")"});
    check_schema(R"({"type": "string", "format": "date-time"})", {R"("2024-01-31T08:15:00Z")", R"("2024-01-31t08:15:00.5-01:00")"},
                 {R"("2024-01-31 08:15:00Z")", R"("2024-01-31")"});
    check_schema(R"({"type": "string", "format": "uuid"})", {R"("123e4567-e89b-12d3-a456-426614174000")", R"("ABCDEF00-0000-0000-0000-000000000000")"},
                 {R"("123e4567e89b12d3a456426614174000")", R"("123e4567-e89b-12d3-a456-42661417400g")"});
    check_schema(R"({"type": "string", "format": "hostname"})", {R"("anything at all")"}, {"1"});
}

TEST_CASE("json schema: integer minimum/maximum and exclusive bounds") {
    auto range = [](int64_t lo, int64_t hi, const std::string& schema) {
        CAPTURE(schema);
        const auto g = gr::parse(json_schema_to_grammar(schema));
        // Every value near the ends, a sample of those between.
        std::vector<int64_t> values;
        for (int64_t v = lo - 30; v <= hi + 30; v += (v > lo + 30 && v < hi - 1030) ? 997 : 1) values.push_back(v);
        for (const int64_t v : values) {
            CAPTURE(v);
            CHECK(accepts(*g, std::to_string(v)) == (v >= lo && v <= hi));
        }
    };
    range(0, 100, R"({"type": "integer", "minimum": 0, "maximum": 100})");
    range(-57, 1234, R"({"type": "integer", "minimum": -57, "maximum": 1234})");
    range(-300, -12, R"({"type": "integer", "exclusiveMinimum": -301, "exclusiveMaximum": -11})");
    range(3, 19, R"({"type": "integer", "minimum": 2.5, "maximum": 19.9})");
    range(6, 9, R"({"type": "integer", "minimum": 5, "exclusiveMinimum": true, "maximum": 9})");  // draft 4
    range(7, 7, R"({"type": "integer", "minimum": 7, "maximum": 7})");
    range(9007199254740993, 9007199254740995, R"({"type": "integer", "minimum": 9007199254740993, "maximum": 9007199254740995})");  // past 2^53
    range(1000, 1000000, R"({"type": "integer", "minimum": 1000, "maximum": 1000000})");
    const auto lower = gr::parse(json_schema_to_grammar(R"({"type": "integer", "minimum": 10})"));
    for (const char* good : {"10", "99", "100", "123456789012345", "9999999999999999"}) CHECK(accepts(*lower, good));
    for (const char* bad : {"9", "0", "-10", "010", "1.0"}) CHECK_FALSE(accepts(*lower, bad));
    const auto upper = gr::parse(json_schema_to_grammar(R"({"type": "integer", "exclusiveMaximum": 0})"));
    for (const char* good : {"-1", "-1000000"}) CHECK(accepts(*upper, good));
    for (const char* bad : {"0", "-0", "5"}) CHECK_FALSE(accepts(*upper, bad));
    CHECK(schema_error(R"({"type": "integer", "minimum": 5, "maximum": 4})").find("no integer") != std::string::npos);
    CHECK(schema_error(R"({"type": "integer", "minimum": "5"})").find("must be a number") != std::string::npos);
    CHECK(!json_schema_to_grammar(R"({"type": "integer", "minimum": -1e300, "maximum": 1e300})").empty());
}

TEST_CASE("json schema: additionalProperties as a schema, nullable, annotations ignored") {
    check_schema(R"({"type": "object", "additionalProperties": {"type": "integer"}})", {"{}", R"({"a": 1, "b": 2})"}, {R"({"a": "x"})"});
    check_schema(R"({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "null"}})",
                 {R"({"a": "x", "b": null})", R"({"b": null})"}, {R"({"a": "x", "b": 1})"});
    check_schema(R"({"type": "integer", "nullable": true})", {"1", "null"}, {"\"1\""});
    check_schema(R"({"type": "boolean", "title": "T", "description": "d", "default": true, "examples": [false], "$comment": "c", "deprecated": true})",
                 {"true"}, {"1"});
}

TEST_CASE("json schema: tuples (prefixItems; drafts 4-7's items array and additionalItems) with minItems/maxItems") {
    // prefixItems: the first members in order, any of them may be left off at the end (minItems 0); the rest any value.
    check_schema(R"({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]})",
                 {"[]", "[1]", R"([1, "a"])", R"([1, "a", null, {"b": [2]}])", R"([ 1 , "a" ])"},
                 {R"(["a"])", "[1, 2]", R"([1, "a",])", "[,]", R"({"0": 1})"});
    // items: false closes the tuple; a schema governs the members after it.
    check_schema(R"({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false})",
                 {"[]", "[1]", R"([1, "a"])"}, {R"([1, "a", 3])", R"([1, "a", "b"])"});
    check_schema(R"({"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": {"type": "boolean"}, "minItems": 2})",
                 {R"([1, "a"])", R"([1, "a", true, false])"}, {"[]", "[1]", R"([1, "a", 3])", R"(["a", 1])"});
    // minItems below the prefix: the later members optional but in order.
    check_schema(R"({"prefixItems": [{"const": "a"}, {"const": "b"}, {"const": "c"}], "minItems": 1})",
                 {R"(["a"])", R"(["a", "b"])", R"(["a", "b", "c"])", R"(["a", "b", "c", 1, "z"])"},
                 {"[]", R"(["b"])", R"(["a", "c"])", R"(["a", "b", "d"])"});
    // An exact tuple.
    check_schema(R"({"prefixItems": [{"type": "integer"}, {"type": "integer"}], "items": false, "minItems": 2})",
                 {"[1, 2]"}, {"[]", "[1]", "[1, 2, 3]", "[1, \"2\"]"});
    // minItems beyond the prefix: the extra members from items (or any value), up to maxItems.
    check_schema(R"({"prefixItems": [{"type": "integer"}], "items": {"type": "string"}, "minItems": 3, "maxItems": 4})",
                 {R"([1, "x", "y"])", R"([1, "x", "y", "z"])"},
                 {R"([1, "x"])", R"([1, "x", "y", "z", "w"])", R"(["x", "y", "z"])", R"([1, "x", 2])"});
    check_schema(R"({"prefixItems": [{"type": "integer"}], "minItems": 2})", {"[1, null]", "[1, [], {}]"}, {"[1]", "[]"});
    // maxItems below the prefix cuts it; a false member ends the tuple before it.
    check_schema(R"({"prefixItems": [{"type": "integer"}, {"type": "string"}, {"type": "boolean"}], "maxItems": 2})",
                 {"[]", "[1]", R"([1, "a"])"}, {R"([1, "a", true])", R"([1, "a", null])"});
    check_schema(R"({"prefixItems": [{"type": "integer"}, false, {"type": "string"}]})", {"[]", "[7]"}, {"[7, 8]", R"([7, "a"])"});
    // items: false with no prefix: the empty array only; items: true: any members.
    check_schema(R"({"type": "array", "items": false})", {"[]", "[ ]"}, {"[1]"});
    check_schema(R"({"type": "array", "items": true, "maxItems": 1})", {"[]", "[{}]"}, {"[1, 2]"});
    // Drafts 4-7: items as an array, additionalItems for the rest (absent: any; ignored beside an items schema).
    check_schema(R"({"type": "array", "items": [{"type": "integer"}, {"type": "string"}], "additionalItems": false})",
                 {"[]", "[1]", R"([1, "a"])"}, {R"([1, "a", 2])", R"(["a"])"});
    check_schema(R"({"type": "array", "items": [{"type": "integer"}, {"type": "string"}], "additionalItems": {"type": "null"}, "minItems": 3})",
                 {R"([1, "a", null])", R"([1, "a", null, null])"}, {R"([1, "a"])", R"([1, "a", 1])"});
    check_schema(R"({"type": "array", "items": [{"type": "integer"}]})", {"[]", "[1]", R"([1, "x", {}])"}, {R"(["x"])"});
    check_schema(R"({"type": "array", "items": {"type": "integer"}, "additionalItems": false})", {"[1, 2, 3]"}, {R"([1, "x"])"});
    // Members by $ref, tuples in objects and in tuples.
    check_schema(R"({"$defs": {"P": {"prefixItems": [{"type": "number"}, {"type": "number"}], "items": false, "minItems": 2}},
                     "type": "object", "properties": {"line": {"type": "array", "prefixItems": [{"$ref": "#/$defs/P"}, {"$ref": "#/$defs/P"}],
                     "minItems": 2, "items": false}}, "required": ["line"]})",
                 {R"({"line": [[0, 0], [1.5, -2]]})"}, {R"({"line": [[0, 0]]})", R"({"line": [[0, 0], [1]]})", R"({"line": [[0, 0], [1, 2], [3, 4]]})"});
}

TEST_CASE("json schema: tuple contradictions and hostile tuples are InvalidArgument") {
    const auto t0 = std::chrono::steady_clock::now();
    const std::pair<const char*, const char*> bad[] = {
        {R"({"prefixItems": [{"type": "integer"}], "items": false, "minItems": 2})", "minItems 2 but the tuple allows at most 1"},
        {R"({"items": [{"type": "integer"}], "additionalItems": false, "minItems": 2})", "at most 1"},
        {R"({"prefixItems": [{}, false], "minItems": 2})", "at most 1"},
        {R"({"type": "array", "items": false, "minItems": 1})", "at most 0"},
        {R"({"prefixItems": [{}, {}, {}], "minItems": 3, "maxItems": 2})", "maxItems < minItems"},
        {R"({"type": "array", "prefixItems": {"type": "integer"}})", "'prefixItems' must be an array"},
        {R"({"prefixItems": [{}], "items": [{}]})", "two tuples"},
        {R"({"prefixItems": [{}], "additionalItems": false})", "'additionalItems' beside 'prefixItems'"},
        {R"({"prefixItems": [5]})", "must be an object or a boolean"},
        {R"({"prefixItems": [{}], "minItems": 1001})", "minItems over 1000"},
    };
    for (const auto& [schema, why] : bad) {
        const std::string msg = schema_error(schema);
        CAPTURE(schema);
        CAPTURE(msg);
        CHECK(msg.find(why) != std::string::npos);
    }
    // A long tuple: refused past kMaxItems schemas, however many are listed; a maxItems that cuts it first is fine.
    auto tuple = [](int n, const std::string& extra, const std::string& member = R"({"type": "integer"})") {
        std::string t = R"({"type": "array", "prefixItems": [)";
        for (int i = 0; i < n; ++i) t += (i ? ", " : "") + member;
        return t + "]" + extra + "}";
    };
    CHECK(schema_error(tuple(1001, "")).find("a tuple of more than 1000 schemas") != std::string::npos);
    CHECK(schema_error(tuple(20000, "", "{}")).find("a tuple of more than 1000 schemas") != std::string::npos);
    CHECK(schema_error(tuple(20000, R"(, "maxItems": 2)", "{}")).empty());
    const std::string two = R"({"allOf": [)" + tuple(20000, "", "{}") + "," + tuple(20000, "", "true") + "]}";
    CHECK(schema_error(two).find("a tuple of more than 1000 schemas") != std::string::npos);
    // A tuple of 1000, each member optional: a document of all of them (the grammar nests no deeper for it).
    std::string doc = "[";
    for (int i = 0; i < 1000; ++i) doc += (i ? ", " : "") + std::to_string(i);
    check_schema(tuple(1000, R"(, "items": false)"), {"[]", "[1]", doc + "]"}, {doc + ", 1000]", doc + ", \"x\"]"});
    CHECK(seconds_since(t0) < 10);
}

TEST_CASE("json schema: hostile $ref and allOf end in InvalidArgument, never a hang") {
    const auto t0 = std::chrono::steady_clock::now();
    const std::pair<const char*, const char*> bad[] = {
        {R"({"$ref": "#"})", "refers to itself"},
        {R"({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})", "left recursion"},
        {R"({"anyOf": [{"$ref": "#"}, {"type": "null"}]})", "left recursion"},
        {R"({"$defs": {"x": {}}, "type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}})", "no 'missing'"},
        {R"({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}})", "no '$defs'"},
        {R"({"$ref": "#/properties/x/0"})", "no 'properties'"},
        {R"({"$ref": "https://example.com/schema.json"})", "remote"},
        {R"({"$ref": "other.json#/a"})", "remote"},
        {R"({"$ref": "#foo"})", "not a JSON pointer"},
        {R"({"$ref": 5})", "must be a string"},
        {R"({"allOf": [{"$ref": "#"}]})", "refers to itself"},
        {R"({"allOf": [{"$ref": "#"}, {"type": "object"}]})", "a cycle?"},
        {R"({"$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}, {"type": "object"}]}, "b": {"allOf": [{"$ref": "#/$defs/a"}, {"type": "object"}]}}, "$ref": "#/$defs/a"})", "a cycle?"},
    };
    for (const auto& [schema, why] : bad) {
        const std::string msg = schema_error(schema);
        CAPTURE(schema);
        CAPTURE(msg);
        CHECK(msg.find(why) != std::string::npos);
    }
    // allOf of allOfs, each part twice: 2^20 merges unless bounded.
    std::string defs = R"({"$defs": {)";
    for (int i = 0; i < 20; ++i)
        defs += "\"d" + std::to_string(i) + R"(": {"allOf": [{"$ref": "#/$defs/d)" + std::to_string(i + 1) + R"("}, {"$ref": "#/$defs/d)" +
                std::to_string(i + 1) + R"("}, {"type": "object"}]},)";
    defs += R"("d20": {"type": "object"}}, "allOf": [{"$ref": "#/$defs/d0"}, {"type": "object"}]})";
    CHECK(schema_error(defs).find("schemas to merge") != std::string::npos);
    // One big schema merged with itself many times, or beside many alternatives: bounded copying.
    std::string big = R"({"type": "object", "properties": {)";
    for (int i = 0; i < 3000; ++i) big += (i ? ",\"p" : "\"p") + std::to_string(i) + R"(": {"type": "integer"})";
    big += "}}";
    std::string refs;
    for (int i = 0; i < 4000; ++i) refs += (i ? "," : "") + std::string(R"({"$ref": "#/$defs/B"})");
    CHECK(schema_error(R"({"$defs": {"B": )" + big + R"(}, "allOf": [)" + refs + "]}").find("merging would copy") != std::string::npos);
    std::string alts;
    for (int i = 0; i < 1000; ++i) alts += (i ? "," : "") + std::string(R"({"required": []})");
    CHECK(schema_error(big.substr(0, big.size() - 1) + R"(, "anyOf": [)" + alts + "]}").find("merging would copy") != std::string::npos);
    // Many distinct refs, each its own rule: fine until the grammar's limits.
    std::string chain = R"({"$defs": {)";
    for (int i = 0; i < 50; ++i) chain += "\"n" + std::to_string(i) + R"(": {"type": "array", "items": {"$ref": "#/$defs/n)" + std::to_string(i + 1) + "\"}},";
    chain += R"("n50": {"type": "integer"}}, "$ref": "#/$defs/n0"})";
    CHECK(schema_error(chain).find("nested deeper") != std::string::npos);  // 50 refs, each a level or more
    CHECK(seconds_since(t0) < 10);
}
