// ember-generate: a prompt in, streamed text out, with llama.cpp's flag habits.
//   ember-generate -m MODEL.gguf -p "Once upon a time" -n 64
//   ember-generate --chat -p "What is the capital of France?"     # the default model, with its chat template
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "common.hpp"
#include "ember/ember.hpp"

using namespace ember;
using namespace ember_examples;

namespace {

void usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s [-m MODEL] (-p PROMPT | -f FILE) [options]\n"
                 "  -m FILE            GGUF model (default: %s)\n"
                 "  -p TEXT | -f FILE  prompt; special tokens such as <|im_start|> are parsed\n"
                 "  -n N               tokens to generate (default 128, -1: until the context is full)\n"
                 "  -c N               context size (default: the model's, at most 4096)\n"
                 "  -t N               threads (default: all cores)\n"
                 "  --temp T --top-k K --top-p P --min-p P --repeat-penalty R --seed S\n"
                 "  --no-bos           do not add BOS even if the vocabulary asks for it\n"
                 "  --chat             wrap the prompt in the model's own chat template (ChatML when it has none)\n"
                 "  --system TEXT      system message for --chat\n"
                 "  --backend NAME     cpu, cuda or auto (default)\n"
                 "  --lora FILE        LoRA adapter (GGUF or PEFT folder) at scale 1; repeatable\n"
                 "  --lora-scaled FILE SCALE  LoRA adapter at SCALE; repeatable\n"
                 "  --quantize TYPE    %s\n"
                 "  --grammar GBNF     constrain the output to a GBNF grammar (llama.cpp's format)\n"
                 "  --grammar-file F   the grammar from a file\n"
                 "  -j, --json-schema JSON      constrain the output to JSON valid under a JSON Schema\n"
                 "  -jf, --json-schema-file F   the schema from a file\n"
                 "  --json             print one JSON object at the end instead of streaming\n",
                 argv0, default_model().c_str(), kQuantizeHelp);
}

std::string read_text_file(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(Status::Io, std::string("cannot read the ") + what + " file " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
    std::string model_path = default_model(), prompt, system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
    std::string backend = "auto", quantize;
    int n_predict = 128, n_ctx = 0, n_threads = 0;
    bool no_bos = false, json = false, chat = false;
    SamplerParams sp;
    std::vector<LoraArg> loras;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto next = [&]() -> std::string {
                if (i + 1 >= argc) throw Error(Status::InvalidArgument, "missing value after " + a);
                return argv[++i];
            };
            if (a == "-m" || a == "--model") model_path = next();
            else if (a == "-p" || a == "--prompt") prompt = next();
            else if (a == "-f" || a == "--file") prompt = read_text_file(next(), "prompt");
            else if (a == "--grammar") sp.grammar = next();
            else if (a == "--grammar-file") sp.grammar = read_text_file(next(), "grammar");
            else if (a == "-j" || a == "--json-schema") sp.grammar = json_schema_to_grammar(next());
            else if (a == "-jf" || a == "--json-schema-file") sp.grammar = json_schema_to_grammar(read_text_file(next(), "schema"));
            else if (a == "-n" || a == "--n-predict") n_predict = std::stoi(next());
            else if (a == "-c" || a == "--ctx-size") n_ctx = std::stoi(next());
            else if (a == "-t" || a == "--threads") n_threads = std::stoi(next());
            else if (a == "--temp") sp.temperature = std::stof(next());
            else if (a == "--top-k") sp.top_k = std::stoi(next());
            else if (a == "--top-p") sp.top_p = std::stof(next());
            else if (a == "--min-p") sp.min_p = std::stof(next());
            else if (a == "--repeat-penalty") sp.repeat_penalty = std::stof(next());
            else if (a == "--seed") sp.seed = std::stoull(next());
            else if (a == "--no-bos") no_bos = true;
            else if (a == "--json") json = true;
            else if (a == "--chat") chat = true;
            else if (a == "--system") system = next();
            else if (a == "--backend") backend = next();
            else if (a == "--lora") loras.push_back({next(), 1.f});
            else if (a == "--lora-scaled") {
                const std::string file = next();
                loras.push_back({file, lora_scale(next())});
            }
            else if (a == "--quantize") quantize = next();
            else if (a == "-h" || a == "--help") { usage(argv[0]); return 0; }
            else throw Error(Status::InvalidArgument, "unknown argument " + a);
        }
        if (prompt.empty()) {
            usage(argv[0]);
            return 2;
        }

        ModelParams mp;
        mp.backend = backend;
        mp.n_threads = n_threads;
        mp.quantize = quantize;
        Model model = Model::load(model_path, mp);
        const Tokenizer& tok = model.tokenizer();
        if (chat) {  // the model's own template, as Hugging Face's apply_chat_template renders it
            if (model.chat_template().empty())
                std::fprintf(stderr, "ember-generate: the model has no chat template; using ChatML\n");
            std::vector<ChatMessage> messages;
            if (!system.empty()) messages.push_back({"system", system});
            messages.push_back({"user", prompt});
            prompt = apply_chat_template(model, messages);
        }
        const std::vector<Token> prompt_ids =
            chat && !no_bos ? tokenize_chat_prompt(tok, prompt) : tok.encode(prompt, !no_bos, true);

        SessionParams sesp;
        sesp.n_ctx = n_ctx;
        Session session(model, sesp);
        if (!loras.empty()) session.set_adapters(load_adapters(model, loras));
        Sampler sampler(tok, sp);

        const double t0 = now_ms();
        session.prefill(prompt_ids);
        const double t1 = now_ms();
        GenerateParams gp;
        gp.max_tokens = n_predict;
        const GenerateResult r = session.generate(sampler, gp, [&](std::string_view text, Token) {
            if (!json) {
                std::fwrite(text.data(), 1, text.size(), stdout);
                std::fflush(stdout);
            }
            return true;
        });
        const double t2 = now_ms();
        // The last token sampled is not evaluated when it ends generation (or the run).
        const size_t n_decoded = r.tokens.size() - (r.stop == GenerateResult::Stop::EndOfGeneration ? 1 : 0);
        const double pp_tps = prompt_ids.size() / ((t1 - t0) / 1e3);
        const double tg_tps = n_decoded > 0 ? n_decoded / ((t2 - t1) / 1e3) : 0.0;
        if (json) {
            std::printf("{\"prompt_token_ids\":%s,\"generated_token_ids\":%s,\"text\":\"%s\",\"stop\":\"%s\","
                        "\"timings\":{\"prefill_tokens\":%zu,\"prefill_ms\":%.3f,\"prefill_tokens_per_s\":%.2f,"
                        "\"decode_tokens\":%zu,\"decode_ms\":%.3f,\"decode_tokens_per_s\":%.2f},"
                        "\"model\":\"%s\",\"backend\":\"%s\"}\n",
                        json_list(prompt_ids).c_str(), json_list(r.tokens).c_str(), json_escape(r.text).c_str(),
                        r.stop == GenerateResult::Stop::EndOfGeneration ? "eog" : "length", prompt_ids.size(), t1 - t0,
                        pp_tps, n_decoded, t2 - t1, tg_tps, json_escape(model_path).c_str(), model.backend().c_str());
        } else {
            std::fprintf(stderr, "\n\nprefill: %zu tokens, %.1f tokens/s | decode: %zu tokens, %.1f tokens/s | %s\n",
                         prompt_ids.size(), pp_tps, n_decoded, tg_tps, model.backend().c_str());
        }
    } catch (const std::exception& e) {
        return ember_examples::fail(e);
    }
    return 0;
}
