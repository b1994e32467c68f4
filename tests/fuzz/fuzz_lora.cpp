// libFuzzer target: arbitrary bytes as a LoRA adapter for the tiny llama folder — as a GGUF adapter file,
// and as the adapter_config.json of a PEFT folder beside a good adapter_model.safetensors — then, when one
// loads, a session evaluating a few tokens with it. Any outcome but ember::Error or success is a bug.
//   build-fuzz/tests/fuzz/fuzz_lora -max_total_time=600 fuzz-corpus/lora tests/data/hf/llama-lora
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "ember/ember.hpp"

namespace {

const std::string kHf = std::string(EMBER_TEST_DATA_DIR) + "/hf/";

const ember::Model& model() {
    static const ember::Model m = ember::Model::load(kHf + "llama");
    return m;
}

void write(const std::string& path, const uint8_t* data, size_t size) {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

void try_load(const std::string& path) {
    try {
        const ember::Adapter a = ember::Adapter::load(model(), path);
        ember::Session s(model(), {.n_ctx = 16});
        s.set_adapters({{a, 1.f}});
        s.prefill(std::vector<ember::Token>{0, 5, 9});
    } catch (const ember::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    namespace fs = std::filesystem;
    static const std::string dir = (fs::temp_directory_path() / ("ember-fuzz-lora-" + std::to_string(::getpid()))).string();
    static const bool made = [] {
        fs::create_directories(dir + "/peft");
        fs::copy_file(kHf + "llama-lora/adapter_model.safetensors", dir + "/peft/adapter_model.safetensors",
                      fs::copy_options::overwrite_existing);
        return true;
    }();
    (void)made;
    write(dir + "/adapter.gguf", data, size);
    try_load(dir + "/adapter.gguf");
    write(dir + "/peft/adapter_config.json", data, size);
    try_load(dir + "/peft");
    return 0;
}
