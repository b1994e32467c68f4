// libFuzzer target: arbitrary bytes as a Hugging Face folder's tokenizer.json (then, when it is read,
// the vocabulary built from it encodes a text with special tokens) and as its config.json. Any outcome but
// ember::Error or success is a bug.
//   build-fuzz/tests/fuzz/fuzz_hf -max_total_time=600 -max_len=65536 fuzz-corpus/hf (seeded with tests/data/hf/*/*.json)
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ember/error.hpp"
#include "ember/tokenizer.hpp"
#include "gguf/reader.hpp"
#include "hf/hf.hpp"
#include "tokenizer/vocab.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    size_t sink = 0;
    try {
        ember::hf::Keys keys;
        ember::hf::tokenizer_keys(text, "", "", keys);
        const auto file = ember::gguf::File::assemble(std::move(keys), {}, nullptr);
        const ember::Tokenizer tok(ember::detail::load_vocab(file));
        sink += tok.encode("Hello <s> world 123 \xC3\xA9\xE6\x97\xA5 \n<|im_end|>", true, true).size();
    } catch (const ember::Error&) {
    }
    try {
        const auto cfg = ember::hf::read_config(ember::hf::parse_json(text, "config.json"), "config.json");
        sink += cfg.keys.size() + cfg.rope_freqs.size();
    } catch (const ember::Error&) {
    }
    return static_cast<int>(sink & 0);
}
