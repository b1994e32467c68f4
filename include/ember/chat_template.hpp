// ember — chat templates: renders a model's Jinja2 chat template (GGUF `tokenizer.chat_template`)
// the way Hugging Face's apply_chat_template does, in a sandboxed, bounded interpreter.
#pragma once

#include <memory>
#include <string>

namespace ember {

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
    std::string render(const std::string& json) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ember
