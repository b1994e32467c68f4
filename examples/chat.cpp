// ember-chat: a chat agent over ember::Chat. Reads one user turn per line (a terminal or a pipe), streams
// the model's reply, keeps the conversation within the context, and with --session resumes after a kill.
//   ember-chat [-m MODEL] [--system TEXT] [-c N] [-n N] [--temp T --seed S] [--strategy window|budget|summary]
//              [--no-history] [--session FILE] [--verbose] [--lora FILE]... [--lora-scaled FILE SCALE]...
// Commands: /reset, /history on|off, /strategy NAME, /save FILE, /load FILE, /quit.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "common.hpp"
#include "ember/ember.hpp"

using namespace ember;

namespace {
ContextStrategy strategy_named(const std::string& name) {
    if (name == "window") return ContextStrategy::Window;
    if (name == "budget") return ContextStrategy::Budget;
    if (name == "summary") return ContextStrategy::Summary;
    throw Error(Status::InvalidArgument, "unknown strategy '" + name + "' (window, budget, summary)");
}
}  // namespace

int main(int argc, char** argv) {
    std::string model_path = ember_examples::default_model(), session_file;
    ModelParams mp;
    ChatParams cp;
    SessionParams sp;
    SamplerParams samp;
    GenerateParams gp;
    gp.max_tokens = 256;
    bool verbose = false;
    std::vector<ember_examples::LoraArg> loras;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto next = [&]() -> std::string {
                if (i + 1 >= argc) throw Error(Status::InvalidArgument, "missing value after " + a);
                return argv[++i];
            };
            if (a == "-m") model_path = next();
            else if (a == "--system") cp.system = next();
            else if (a == "-c" || a == "--context") sp.n_ctx = std::stoi(next());
            else if (a == "-n") gp.max_tokens = std::stoi(next());
            else if (a == "--temp") samp.temperature = std::stof(next());
            else if (a == "--seed") samp.seed = std::stoull(next());
            else if (a == "--no-history") cp.history = false;
            else if (a == "--strategy") cp.strategy = strategy_named(next());
            else if (a == "--session") session_file = next();
            else if (a == "--verbose") verbose = true;
            else if (a == "--lora") loras.push_back({next(), 1.f});
            else if (a == "--lora-scaled") {
                const std::string file = next();
                loras.push_back({file, ember_examples::lora_scale(next())});
            }
            else if (a == "--quantize") mp.quantize = next();
            else {
                std::fprintf(stderr, "usage: %s [-m MODEL] [--system TEXT] [-c N] [-n N] [--temp T] [--seed S] "
                                     "[--strategy window|budget|summary] [--no-history] [--session FILE] [--verbose] "
                                     "[--lora FILE]... [--lora-scaled FILE SCALE]...\n"
                                     "  [--quantize TYPE]  %s\n", argv[0], ember_examples::kQuantizeHelp);
                return a == "-h" || a == "--help" ? 0 : 2;
            }
        }
        const Model model = Model::load(model_path, mp);
        if (model.chat_template().empty()) std::fprintf(stderr, "ember-chat: the model has no chat template; using ChatML\n");
        if (sp.n_ctx > 0) cp.reserve = std::min(cp.reserve, sp.n_ctx / 2);
        Chat chat(model, sp, cp);
        if (!loras.empty()) chat.session().set_adapters(ember_examples::load_adapters(model, loras));
        if (!session_file.empty() && std::filesystem::exists(session_file)) {
            chat.load(session_file);  // a damaged file is refused (and left alone) with the reason
            std::fprintf(stderr, "ember-chat: resumed %zu messages from %s\n", chat.messages().size(), session_file.c_str());
        }
        Sampler sampler(samp);
        for (std::string line; std::getline(std::cin, line);) {
            if (line == "/quit") break;
            if (line == "/reset") { chat.reset(); continue; }
            if (line == "/history on" || line == "/history off") { chat.set_history(line == "/history on"); continue; }
            if (line.rfind("/strategy ", 0) == 0) { chat.set_strategy(strategy_named(line.substr(10))); continue; }
            if (line.rfind("/save ", 0) == 0) { chat.save(line.substr(6)); continue; }
            if (line.rfind("/load ", 0) == 0) { chat.load(line.substr(6)); continue; }
            if (line.empty()) continue;
            const double t0 = ember_examples::now_ms();
            const ChatTurn t = chat.say(line, sampler, gp, [](std::string_view text, Token) {
                std::fwrite(text.data(), 1, text.size(), stdout);
                std::fflush(stdout);
                return true;
            });
            std::printf("\n");
            std::fflush(stdout);
            if (verbose)
                std::fprintf(stderr, "[turn: %d prompt tokens, %d reused, %d prefilled, %d messages left out (%d summarised), "
                                     "%zu generated, %.0f ms]\n", t.prompt_tokens, t.reused_tokens, t.prefilled_tokens,
                             t.dropped_messages, t.summarized_messages, t.reply.tokens.size(), ember_examples::now_ms() - t0);
            if (!session_file.empty()) chat.save(session_file);  // after every completed turn, atomically
        }
    } catch (const std::exception& e) {
        return ember_examples::fail(e);
    }
    return 0;
}
