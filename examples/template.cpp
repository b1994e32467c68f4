// ember-template: renders one conversation through a chat template.
//   ember-template -t TEMPLATE.jinja -i CASE.json
//   ember-template -m MODEL.gguf -i CASE.json        # the model's own template and special tokens
// CASE.json: {"messages": [...], "add_generation_prompt": true, "tools": [...] or null,
//             "bos_token": "<s>", "eos_token": "</s>", "now": "2026-11-22T09:30:00", ...}
// Prints exactly the rendered text; on an error, the message on stderr and exit status 1.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "ember/ember.hpp"

namespace {

bool slurp(const char* path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

int usage() {
    std::fprintf(stderr, "usage: ember-template (-t TEMPLATE.jinja | -m MODEL.gguf) -i CASE.json\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    const char* tpath = nullptr;
    const char* mpath = nullptr;
    const char* ipath = nullptr;
    for (int k = 1; k + 1 < argc; k += 2) {
        if (std::strcmp(argv[k], "-t") == 0) tpath = argv[k + 1];
        else if (std::strcmp(argv[k], "-m") == 0) mpath = argv[k + 1];
        else if (std::strcmp(argv[k], "-i") == 0) ipath = argv[k + 1];
        else return usage();
    }
    if (!(tpath || mpath) || (tpath && mpath) || !ipath || argc != 5) return usage();
    std::string source, input;
    if (!slurp(ipath, input) || (tpath && !slurp(tpath, source))) {
        std::fprintf(stderr, "ember-template: cannot read %s\n", tpath && !slurp(tpath, source) ? tpath : ipath);
        return 1;
    }
    try {
        // -m: the model's own template and special tokens, read from its header and vocabulary only.
        std::map<std::string, std::string> tokens;
        if (mpath) {
            source = ember::inspect_model(mpath).chat_template;
            if (source.empty()) {
                std::fprintf(stderr, "ember-template: %s has no chat template; using ChatML\n", mpath);
                source = ember::ChatTemplate::chatml();
            }
            tokens = ember::chat_template_tokens(ember::Tokenizer::from_gguf(mpath));
        }
        const ember::ChatTemplate tmpl(source);
        const std::string out = tmpl.render(input, tokens);
        std::fwrite(out.data(), 1, out.size(), stdout);
        return 0;
    } catch (const ember::Error& e) {
        std::fprintf(stderr, "ember-template: %s\n", e.what());
        return 1;
    }
}
