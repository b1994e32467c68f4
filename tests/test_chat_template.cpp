// Chat templates: 50 real templates rendered against Hugging Face's (jinja2) goldens, and hostile
// templates that must end in an ember::Error quickly instead of hanging or exhausting memory.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "chat/template.hpp"
#include "chat/value.hpp"
#include "ember/chat_template.hpp"
#include "ember/error.hpp"
#include "testdata.hpp"

using ember::chat::Dict;
using ember::chat::Value;

namespace {

// The golden cases rendered byte-identically (or failing as jinja2 does) when this was written.
constexpr int kMinMatching = 337;

// One golden case as the JSON object ChatTemplate::render takes.
std::string case_json(const Value& golden, const Value& c) {
    Dict d;
    for (const char* k : {"messages", "tools", "add_generation_prompt"})
        if (const Value* v = c.dict->find(k)) d.set(k, *v);
    if (const Value* specials = golden.dict->find("specials"))
        for (const auto& [k, v] : specials->dict->items) d.set(k, v);
    d.set("now", *golden.dict->find("now"));
    return ember::chat::to_json(Value::object(std::move(d)), {}, 1u << 30);
}

// Renders every case of one golden file; returns how many match.
int check_golden(const std::string& name, int& total) {
    const Value golden = ember::chat::parse_json(ember::test::read_file(ember::test::testdata("chat-templates/golden/" + name + ".json")));
    const std::string source = ember::test::read_file(ember::test::testdata("chat-templates/" + name + ".jinja"));
    const Value& cases = *golden.dict->find("cases");
    int matching = 0;
    for (const Value& c : *cases.list) {
        ++total;
        const Value* output = c.dict->find("output");
        const Value* error = c.dict->find("error");
        std::string got, err;
        try {
            got = ember::ChatTemplate(source).render(c.dict->find("messages") ? case_json(golden, c) : "{}");
        } catch (const ember::Error& e) {
            err = e.what();
        }
        const std::string label = name + " / " + c.dict->find("case")->sv();
        if (output && err.empty() && got == output->sv()) {
            ++matching;
        } else if (error && !err.empty()) {
            // raise_exception's message must come through; other jinja2 errors only need to happen.
            const std::string& want = error->sv();
            const bool raised = want.rfind("TemplateError: ", 0) == 0;
            if (!raised || err.find(want.substr(15)) != std::string::npos) ++matching;
            else MESSAGE(label << ": expected error '" << want << "', got '" << err << "'");
        } else if (output) {
            MESSAGE(label << ": " << (err.empty() ? "output differs" : "error: " + err));
        } else {
            MESSAGE(label << ": expected error '" << error->sv() << "', rendered instead");
        }
    }
    return matching;
}

}  // namespace

TEST_CASE("chat templates render as Hugging Face's jinja2 does") {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(ember::test::testdata("chat-templates")))
        if (e.path().extension() == ".jinja") names.push_back(e.path().stem().string());
    std::sort(names.begin(), names.end());
    REQUIRE(names.size() >= 49);
    int total = 0, matching = 0;
    for (const auto& name : names) {
        const int before = total;
        const int m = check_golden(name, total);
        MESSAGE(name << ": " << m << "/" << (total - before));
        matching += m;
    }
    MESSAGE("chat templates: " << matching << "/" << total << " golden cases match");
    CHECK(matching >= kMinMatching);
}

namespace {

// Renders `source` with no messages; requires an ember::Error. The engine's step, size and depth limits
// bound the work deterministically; the time is reported, not asserted (speed is a benchmark's job, and
// sanitizer builds run these several times slower).
ember::Error render_fails(const std::string& source, int line = 0) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string what;
    ember::Status status = ember::Status::Ok;
    try {
        ember::ChatTemplate(source).render(R"({"messages": []})");
    } catch (const ember::Error& e) {
        what = e.what();
        status = e.status();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO(source.substr(0, 80));
    CHECK(status != ember::Status::Ok);
    MESSAGE(secs << " s: " << what.substr(0, 100));
    if (line) CHECK_MESSAGE(what.find("line " + std::to_string(line)) != std::string::npos, what);
    return ember::Error(status, what);
}

}  // namespace

TEST_CASE("hostile chat templates end in an error") {
    SUBCASE("huge range") { render_fails("{% for i in range(10**9) %}x{% endfor %}", 1); }
    SUBCASE("nested loops") {
        render_fails("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", 1);
    }
    SUBCASE("nested loops with output") {
        const auto e = render_fails("\n{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxx{% endfor %}{% endfor %}");
        CHECK(e.status() == ember::Status::OutOfMemory);
    }
    SUBCASE("step limit") {
        render_fails("{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", 1);
    }
    SUBCASE("recursive macro") { render_fails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(0) }}", 1); }
    SUBCASE("huge string") {
        CHECK(render_fails("{{ 'x' * 10**9 }}", 1).status() == ember::Status::OutOfMemory);
    }
    SUBCASE("printing a huge list") {
        CHECK(render_fails("{% set s = 'x' * 10000000 %}{{ [s] * 100000 }}", 1).status() == ember::Status::OutOfMemory);
    }
    SUBCASE("huge batch") { render_fails("{{ [1] | batch(10**12, 0) | list }}", 1); }
    SUBCASE("doubling string") {
        render_fails("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}");
    }
    SUBCASE("doubling list") {
        render_fails("{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}");
    }
    SUBCASE("many big strings") {
        render_fails("{% set s = 'x' * 1000000 %}{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
                     "{% set ns.l = ns.l + [s ~ i] %}{% endfor %}");
    }
    SUBCASE("deep nesting") { render_fails("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", 1); }
    SUBCASE("deeply nested list") {
        render_fails("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}", 1);
    }
    SUBCASE("namespace chain") {
        render_fails("{% set ns = namespace(cur=none) %}{% for i in range(100000) %}{% set n = namespace() %}"
                     "{% set n.p = ns.cur %}{% set ns.cur = n %}{% endfor %}", 1);
    }
    SUBCASE("integer overflow") { render_fails("{{ 2 ** 200 }}", 1); }
    SUBCASE("raise_exception") {
        const auto e = render_fails("a\n{{ raise_exception('boom') }}", 2);
        CHECK(std::string(e.what()).find("boom") != std::string::npos);
    }
    SUBCASE("list mutation is blocked") { render_fails("{% set l = [] %}{% set _ = l.append(1) %}", 1); }
}

TEST_CASE("chat template syntax errors name the line") {
    const std::vector<std::pair<std::string, int>> bad = {
        {"a\nb\n{% if x %}", 3},
        {"{% for x in y %}\n{% endif %}", 2},
        {"\n\n{{ x + }}", 3},
        {"{{ 'unterminated }}", 1},
        {"\n{% frobnicate %}", 2},
        {"{% set x = [1, 2 %}", 1},
        {"\n\n\n{% break %}", 4},
        {"{{ x", 1},
    };
    for (const auto& [src, line] : bad) {
        std::string what;
        try {
            ember::ChatTemplate t(src);
        } catch (const ember::Error& e) {
            what = e.what();
            CHECK(e.status() == ember::Status::InvalidArgument);
        }
        INFO(src);
        CHECK_MESSAGE(what.find("line " + std::to_string(line)) != std::string::npos, what);
    }
}

TEST_CASE("chat template basics") {
    auto render = [](const std::string& src, const std::string& json = R"({"messages": []})") {
        return ember::ChatTemplate(src).render(json);
    };
    CHECK(render("{{ 'a' ~ 1 ~ none ~ true }}") == "a1NoneTrue");
    CHECK(render("{{ [1, 'b', {'c': 2.5}] }}") == "[1, 'b', {'c': 2.5}]");
    CHECK(render("{{ {'k': 'é', 'n': [1, none]} | tojson }}") == "{\"k\": \"é\", \"n\": [1, null]}");
    CHECK(render("{{ 'héllo'[1:3] }}|{{ 'abc'[::-1] }}|{{ [1,2,3][-1] }}") == "él|cba|3");
    CHECK(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }}{{ ',' if not loop.last }}{% endfor %}") == "a=1,b=2");
    CHECK(render("{% set ns = namespace(n=0) %}{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}"
                 "{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}") == "3");
    CHECK(render("  {% if true %}\n  x\n  {% endif %}\n") == "  x\n");
    CHECK(render("{{ undefined_thing }}|{{ undefined_thing is defined }}|{{ x | default('d') }}") == "|False|d");
    CHECK(render("{% macro m(a, b='B') %}{{ a }}{{ b }}{% endmacro %}{{ m('A') }}{{ m('A', b='c') }}") == "ABAc");
    CHECK(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 7 / 2 }} {{ 1.0 }} {{ 1e20 }}") == "3 -4 1 3.5 1.0 1e+20");
    CHECK(render("{{ '  a b  '.strip().split(' ') }}") == "['a', 'b']");
    CHECK(render("{%- set x -%}\n  inner  \n{%- endset -%}[{{ x }}]") == "[inner]");
}

TEST_CASE("a rendered prompt gets BOS once, whether or not the template wrote it") {
    const ember::Tokenizer tok = ember::Tokenizer::from_gguf(ember::test::testdata("models/stories260K.gguf"));
    REQUIRE(tok.bos() >= 0);
    const auto vars = ember::chat_template_tokens(tok);
    REQUIRE(vars.count("bos_token"));
    const std::string bos = vars.at("bos_token");
    const auto plain = ember::tokenize_chat_prompt(tok, "Hello there");
    const auto written = ember::tokenize_chat_prompt(tok, bos + "Hello there");
    CHECK(plain.front() == tok.bos());
    CHECK(written == plain);
    CHECK(std::count(written.begin(), written.end(), tok.bos()) == 1);
}
