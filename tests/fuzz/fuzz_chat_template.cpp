// libFuzzer target: arbitrary template text rendered over a fixed conversation. Any outcome but
// ember::Error or a rendered string is a bug; the engine's limits must stop every input quickly.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ember/chat_template.hpp"
#include "ember/error.hpp"

namespace {
constexpr const char* kConversation =
    R"({"messages": [{"role": "system", "content": "You are brief."},
                     {"role": "user", "content": "Hi \u00e9 {{ x }}"},
                     {"role": "assistant", "content": "Hello!", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
                     {"role": "user", "content": "Bye"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "now": "2026-11-22T09:30:00"})";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const ember::ChatTemplate t(std::string(reinterpret_cast<const char*>(data), size));
        return static_cast<int>(t.render(kConversation).size() & 0);
    } catch (const ember::Error&) {
        return 0;
    }
}
