// Real models fetched by scripts/ (not in the shared test data): where they are, or why a test skips.
#pragma once

#include <cstdlib>
#include <string>

#include "testdata.hpp"

namespace ember::test {

inline std::string models_dir() {
    if (const char* d = std::getenv("EMBER_MODELS")) return d;
    const char* home = std::getenv("HOME");
    return std::string(home ? home : ".") + "/.cache/ember/models";
}

// Path of SmolLM2-135M-Instruct Q4_1, or empty when it has not been fetched (scripts/setup.sh fetches it).
inline std::string smollm2_path() {
    const std::string p = models_dir() + "/SmolLM2-135M-Instruct.Q4_1.gguf";
    return exists(p) ? p : std::string();
}

}  // namespace ember::test
