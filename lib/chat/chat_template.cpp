// ember::ChatTemplate: the public face of the chat-template engine.
#include "ember/chat_template.hpp"

#include <ctime>

#include "chat/template.hpp"
#include "ember/model.hpp"
#include "ember/error.hpp"

namespace ember {

struct ChatTemplate::Impl {
    chat::Template tmpl;
};

ChatTemplate::ChatTemplate(const std::string& source) : impl_(std::make_unique<Impl>(Impl{chat::Template(source)})) {}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

namespace {
std::string utc_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return buf;
}
}  // namespace

std::string ChatTemplate::render(const std::string& json, const std::map<std::string, std::string>& defaults) const {
    const chat::Value input = chat::parse_json(json);
    if (!input.is_dict()) throw Error(Status::InvalidArgument, "chat template input: expected a JSON object");
    chat::Dict vars;
    for (const auto& [k, v] : defaults) vars.set(k, chat::Value::str(v));
    vars.set("add_generation_prompt", chat::Value::boolean(false));
    std::string now;
    for (const auto& [k, v] : input.dict->items) {
        if (k == "now") now = v.is_string() ? v.sv() : "";
        else if (k == "tools" && v.is_none()) continue;  // no tools: `tools` is undefined, as in HF's goldens
        else vars.set(k, v);
    }
    if (!vars.find("messages")) throw Error(Status::InvalidArgument, "chat template input: no \"messages\"");
    return impl_->tmpl.render(vars, now.empty() ? utc_now() : now);
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                const std::map<std::string, std::string>& variables) const {
    chat::List list;
    for (const ChatMessage& m : messages) {
        chat::Dict d;
        d.set("role", chat::Value::str(m.role));
        d.set("content", chat::Value::str(m.content));
        list.push_back(chat::Value::object(std::move(d)));
    }
    chat::Dict vars;
    for (const auto& [k, v] : variables) vars.set(k, chat::Value::str(v));
    vars.set("messages", chat::Value::array(std::move(list)));
    vars.set("add_generation_prompt", chat::Value::boolean(add_generation_prompt));
    return impl_->tmpl.render(vars, utc_now());
}

const char* ChatTemplate::chatml() {
    return "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
           "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}

ChatTemplate ChatTemplate::for_model(const Model& model) {
    const std::string source = model.chat_template();
    return ChatTemplate(source.empty() ? std::string(chatml()) : source);
}

std::string apply_chat_template(const Model& model, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
    return ChatTemplate::for_model(model).apply(messages, add_generation_prompt, chat_template_tokens(model.tokenizer()));
}

std::map<std::string, std::string> chat_template_tokens(const Tokenizer& tok) {
    std::map<std::string, std::string> vars;
    if (tok.bos() >= 0) vars["bos_token"] = tok.piece(tok.bos(), true);
    if (tok.eos() >= 0) vars["eos_token"] = tok.piece(tok.eos(), true);
    return vars;
}

std::vector<Token> tokenize_chat_prompt(const Tokenizer& tok, const std::string& text) {
    const bool template_bos = tok.bos() >= 0 && text.rfind(tok.piece(tok.bos(), true), 0) == 0;
    return tok.encode(text, !template_bos, true);
}

}  // namespace ember
