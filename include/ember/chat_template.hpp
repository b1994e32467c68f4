// ember — chat templates: renders a model's Jinja2 chat template (GGUF `tokenizer.chat_template`)
// the way Hugging Face's apply_chat_template does, in a sandboxed, bounded interpreter.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ember/tokenizer.hpp"

namespace ember {

class Model;

struct ChatMessage {
    std::string role;     // "system", "user", "assistant", "tool"
    std::string content;
};

class ChatTemplate {
public:
    // Parses the template; throws ember::Error (InvalidArgument) naming the line of a syntax error.
    explicit ChatTemplate(const std::string& source);
    ~ChatTemplate();
    ChatTemplate(ChatTemplate&&) noexcept;
    ChatTemplate& operator=(ChatTemplate&&) noexcept;

    // Renders one conversation given as a JSON object: "messages" (required), and optionally "tools",
    // "add_generation_prompt" (default false), "bos_token", "eos_token", "unk_token", "pad_token", and
    // "now" ("YYYY-MM-DDTHH:MM:SS", what strftime_now sees; default the current UTC time). Other keys
    // become template variables too. Throws ember::Error: InvalidArgument for bad JSON, a template
    // error or raise_exception(); OutOfMemory when a size limit is reached.
    // `defaults` are string variables (bos_token, eos_token, ...) the JSON does not set itself.
    std::string render(const std::string& json, const std::map<std::string, std::string>& defaults = {}) const;

    // Renders messages with `variables` (bos_token, eos_token, ...) as template variables.
    std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                      const std::map<std::string, std::string>& variables = {}) const;

    // The model's own template (tokenizer.chat_template), or ChatML when its file has none: then
    // model.chat_template() is empty, and a program should tell its user.
    static ChatTemplate for_model(const Model& model);
    static const char* chatml();  // the fallback, as Jinja

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// messages through the model's template (ChatTemplate::for_model) with its BOS and EOS tokens as
// bos_token and eos_token: the prompt text, to tokenize with special tokens parsed and no extra BOS
// when the template writes one itself.
std::string apply_chat_template(const Model& model, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt = true);

// The vocabulary's BOS and EOS pieces as the template variables bos_token and eos_token.
std::map<std::string, std::string> chat_template_tokens(const Tokenizer& tok);

// A rendered chat prompt as tokens: special tokens parsed, BOS added unless the template wrote it itself
// (Gemma, Llama 3 do), so it is never doubled.
std::vector<Token> tokenize_chat_prompt(const Tokenizer& tok, const std::string& text);

}  // namespace ember
