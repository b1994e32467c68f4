#include "hf/folder.hpp"

#include <filesystem>

#include "ember/error.hpp"
#include "hf/hf.hpp"

namespace ember::hf {

namespace fs = std::filesystem;

namespace {
std::string folder_name(std::string dir) {
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return fs::path(dir).filename().string();
}
}  // namespace

bool is_folder(const std::string& path) {
    std::error_code ec;
    return fs::is_directory(path, ec);
}

gguf::File open_folder(const std::string& dir, bool use_mmap, Read what) {
    const fs::path root(dir);
    auto path = [&](const char* name) { return (root / name).string(); };
    try {
        const std::string config_text = read_text(path("config.json"), false);
        Config cfg;
        if (what != Read::Tokenizer) cfg = read_config(parse_json(config_text, "config.json"), "config.json");
        // tokenizer.json when there is one (transformers prefers it too), else SentencePiece's tokenizer.model.
        const bool json = fs::exists(path("tokenizer.json"));
        if (!json && !fs::exists(path("tokenizer.model")))
            throw Error(Status::Unsupported, "no tokenizer.json or tokenizer.model (ember reads the tokenizer from one)");
        Keys keys = std::move(cfg.keys);
        for (auto& [k, v] : keys)  // the folder's name when the config gives none
            if (k == "general.name" && v.as_string().empty()) v = gguf::Value::string(folder_name(dir));
        const std::string tokenizer_config = read_text(path("tokenizer_config.json"), true);
        if (json) tokenizer_keys(read_text(path("tokenizer.json"), false), tokenizer_config, config_text, keys);
        else sentencepiece_keys(read_text(path("tokenizer.model"), false), tokenizer_config, config_text, keys);
        // transformers ≥ 4.47 saves the chat template beside tokenizer_config.json, and prefers that file.
        if (const std::string jinja = read_text(path("chat_template.jinja"), true); !jinja.empty()) {
            std::erase_if(keys, [](const auto& kv) { return kv.first == "tokenizer.chat_template"; });
            keys.emplace_back("tokenizer.chat_template", gguf::Value::string(jinja));
        }
        if (what == Read::Tokenizer) return gguf::File::assemble(std::move(keys), {}, nullptr);
        auto st = std::make_shared<Storage>(Storage{safetensors::Folder::open(dir, use_mmap), what == Read::Everything, {}});
        std::vector<gguf::TensorInfo> tensors = map_tensors(cfg, *st);
        return gguf::File::assemble(std::move(keys), std::move(tensors), std::move(st));
    } catch (const Error& e) {
        throw Error(e.status(), dir + ": " + e.what());
    }
}

gguf::File open_model_file(const std::string& path, bool use_mmap, Read what) {
    return is_folder(path) ? open_folder(path, use_mmap, what) : gguf::File::open(path, use_mmap);
}

}  // namespace ember::hf
