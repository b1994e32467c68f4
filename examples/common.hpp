// Small helpers shared by the example programs (public API only).
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ember/adapter.hpp"
#include "ember/error.hpp"
#include "ember/quantize.hpp"

namespace ember_examples {

// The examples' one error report: the status name when ember raised it, then the message. Returns 1.
inline int fail(const std::exception& e) {
    if (const auto* err = dynamic_cast<const ember::Error*>(&e))
        std::fprintf(stderr, "error (%s): %s\n", ember::status_name(err->status()), e.what());
    else
        std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
}

// --lora FILE (scale 1) and --lora-scaled FILE SCALE, as llama.cpp's programs take them, in command-line order.
struct LoraArg {
    std::string path;
    float scale = 1.f;
};

// SCALE of --lora-scaled: a finite number, else InvalidArgument.
inline float lora_scale(const std::string& text) {
    char* end = nullptr;
    const float v = std::strtof(text.c_str(), &end);
    if (text.empty() || *end || !std::isfinite(v))
        throw ember::Error(ember::Status::InvalidArgument, "--lora-scaled: '" + text + "' is not a number");
    return v;
}

// The adapters loaded once for `model`, with their scales, as Session::set_adapters takes them.
inline std::vector<ember::AdapterScale> load_adapters(const ember::Model& model, const std::vector<LoraArg>& args) {
    std::vector<ember::AdapterScale> out;
    for (const LoraArg& a : args) out.push_back({ember::Adapter::load(model, a.path), a.scale});
    return out;
}

// The help of --quantize TYPE (ember-generate, -chat, -bench, -eval, -server), which sets ModelParams::quantize.
inline constexpr const char* kQuantizeHelp =
    "quantize F32/F16/BF16 weights in memory at load: q8_0, q4_0, q4_k (= q4_k_m), q6_k, ... (ember-quantize's types)";

inline double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// The default model the setup script fetches: $EMBER_MODELS or ~/.cache/ember/models.
inline std::string default_model() {
    std::string dir;
    if (const char* d = std::getenv("EMBER_MODELS")) dir = d;
    else dir = std::string(std::getenv("HOME") ? std::getenv("HOME") : ".") + "/.cache/ember/models";
    return dir + "/SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline std::string json_escape(std::string_view s) {
    std::string o;
    for (unsigned char c : s) {
        switch (c) {
            case '"': o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\n': o += "\\n"; break;
            case '\r': o += "\\r"; break;
            case '\t': o += "\\t"; break;
            default:
                if (c < 0x20) {
                    char b[8];
                    std::snprintf(b, sizeof b, "\\u%04x", c);
                    o += b;
                } else {
                    o += static_cast<char>(c);
                }
        }
    }
    return o;
}

template <typename T>
std::string json_list(const std::vector<T>& v) {
    std::string o = "[";
    for (size_t i = 0; i < v.size(); ++i) {
        if (i) o += ',';
        o += std::to_string(v[i]);
    }
    return o + "]";
}

// A progress callback for quantize_model / convert_model: "\r<verb>: NN%" on stderr as the percent changes.
// `last` is the last percent shown (-1: none yet).
inline std::function<bool(float)> percent_progress(const char* verb, int& last) {
    return [verb, &last](float f) {
        const int pct = static_cast<int>(f * 100.0f);
        if (pct != last) {
            last = pct;
            std::fprintf(stderr, "\r%s: %3d%%", verb, pct);
            std::fflush(stderr);
        }
        return true;
    };
}

// "N: TYPE xK ..." for the tensors a quantize_model / convert_model result wrote.
inline std::string tensor_types(const ember::QuantizeResult& r) {
    std::map<std::string, int> counts;
    for (const auto& t : r.tensors) ++counts[t.type_out];
    std::string s = std::to_string(r.tensors.size()) + ":";
    for (const auto& [type, n] : counts) s += " " + type + " x" + std::to_string(n);
    return s;
}

}  // namespace ember_examples
