// A C++ program over ember's C++ API: loads the model named on the command line and greedily generates 8
// tokens after "Once upon a time". Built out of tree against an installed static ember (the C++ API is not
// exported by libember.so: C++ has no stable ABI across compilers). Prints the text, then "tokens: N".
#include <ember/ember.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) try {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    const std::string prompt = "Once upon a time";
    const ember::Model model = ember::Model::load(argv[1]);
    const ember::Tokenizer& tokenizer = model.tokenizer();
    ember::Session session(model);
    session.prefill(tokenizer.encode(prompt));

    std::vector<ember::Token> generated;
    while (generated.size() < 8 && session.position() < session.n_ctx()) {
        const auto logits = session.logits();
        const auto t = static_cast<ember::Token>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        if (tokenizer.is_end_of_generation(t)) break;
        generated.push_back(t);
        session.decode(t);
    }
    std::printf("%s%s\ntokens: %zu\n", prompt.c_str(), tokenizer.decode(generated).c_str(), generated.size());
    return 0;
} catch (const ember::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
}
