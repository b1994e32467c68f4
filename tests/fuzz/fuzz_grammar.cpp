// libFuzzer target: bytes as GBNF into the grammar parser and as a JSON Schema into the converter; what
// parses is then matched against the rest of the input.
//
//   mkdir -p fuzz-corpus/grammar
//   build-fuzz/tests/fuzz/fuzz_grammar -max_len=8192 -max_total_time=600 fuzz-corpus/grammar
//
// Input: byte 0 picks the mode (bit 0: GBNF or JSON Schema); the rest up to the first NUL is the grammar or
// schema, and what follows the NUL is text fed to the recognizer in pieces of byte 0's high bits + 1 bytes.
//
// Checks (a violation traps, so libFuzzer reports it):
//   - parsing and converting never crash, hang or throw anything but ember::Error(InvalidArgument);
//   - a converted schema always parses as GBNF;
//   - the recognizer never crashes; fed whole or in pieces, a text is accepted the same way.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ember/error.hpp"
#include "ember/grammar.hpp"
#include "sampling/grammar.hpp"

namespace {

[[noreturn]] void violation() { __builtin_trap(); }

bool matches(const ember::grammar::Grammar& g, std::string_view text, size_t piece) {
    namespace gr = ember::grammar;
    gr::State s = gr::start(g);
    for (size_t at = 0; at < text.size(); at += piece) {
        auto next = gr::advance(g, s, text.substr(at, piece));
        if (!next) return false;
        s = std::move(*next);
    }
    return gr::complete(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const uint8_t mode = data[0];
    const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    const size_t nul = rest.find('\0');
    const std::string_view source = rest.substr(0, nul);
    const std::string_view text = nul == std::string_view::npos ? std::string_view{} : rest.substr(nul + 1);
    std::string gbnf;
    try {
        gbnf = (mode & 1) ? ember::json_schema_to_grammar(source) : std::string(source);
    } catch (const ember::Error& e) {
        if (e.status() != ember::Status::InvalidArgument) violation();
        return 0;
    }
    std::shared_ptr<const ember::grammar::Grammar> g;
    try {
        g = ember::grammar::parse(gbnf);
    } catch (const ember::Error& e) {
        if (e.status() != ember::Status::InvalidArgument || (mode & 1)) violation();  // converted: must parse
        return 0;
    }
    try {
        const size_t piece = (mode >> 1) + 1u;
        const bool whole = matches(*g, text, text.size() + 1), split = matches(*g, text, piece);
        if (whole != split && text.size() < 64) violation();  // long texts may hit the stack limits differently
    } catch (const ember::Error& e) {
        if (e.status() != ember::Status::InvalidArgument) violation();  // start() over the limits
    }
    return 0;
}
