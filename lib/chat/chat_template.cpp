// ember::ChatTemplate: the public face of the chat-template engine.
#include "ember/chat_template.hpp"

#include <ctime>

#include "chat/template.hpp"
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

std::string ChatTemplate::render(const std::string& json) const {
    const chat::Value input = chat::parse_json(json);
    if (!input.is_dict()) throw Error(Status::InvalidArgument, "chat template input: expected a JSON object");
    chat::Dict vars;
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

}  // namespace ember
