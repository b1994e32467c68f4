// libFuzzer target: arbitrary bytes as a Hugging Face folder's tokenizer.model (SentencePiece's protobuf
// ModelProto); when it is read, the vocabulary built from it encodes a text. Any outcome but ember::Error or
// success is a bug.
//   build-fuzz/tests/fuzz/fuzz_sentencepiece -max_total_time=600 -max_len=300000 fuzz-corpus/spm tests/data/hf/spm/llama
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ember/error.hpp"
#include "ember/tokenizer.hpp"
#include "gguf/reader.hpp"
#include "hf/folder.hpp"
#include "tokenizer/vocab.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    size_t sink = 0;
    try {
        ember::hf::Keys keys;
        ember::hf::sentencepiece_keys(bytes, "", "", keys);
        const auto file = ember::gguf::File::assemble(std::move(keys), {}, nullptr);
        const ember::Tokenizer tok(ember::detail::load_vocab(file));
        sink += tok.encode("Hello <s> world 123 \xC3\xA9\xE6\x97\xA5 \n<|end|>", true, true).size();
    } catch (const ember::Error&) {
    }
    return static_cast<int>(sink & 0);
}
