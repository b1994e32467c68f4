// ember::Chat: a conversation over one Session, reusing the KV cache across turns.
#include "ember/chat.hpp"

#include <algorithm>
#include <cstring>

#include "ember/error.hpp"
#include "runtime/model_impl.hpp"
#include "runtime/state_file.hpp"
#include "util/mapped_file.hpp"

namespace ember {

namespace {

// Length-prefixed strings for the chat file's payload.
void put_string(std::vector<uint8_t>& b, const std::string& s) {
    const uint32_t n = static_cast<uint32_t>(s.size());
    const size_t at = b.size();
    b.resize(at + 4 + s.size());
    std::memcpy(b.data() + at, &n, 4);
    if (!s.empty()) std::memcpy(b.data() + at + 4, s.data(), s.size());
}
std::string get_string(std::span<const uint8_t>& p) {
    uint32_t n = 0;
    if (p.size() < 4) throw Error(Status::BadFile, "chat file: truncated");
    std::memcpy(&n, p.data(), 4);
    if (p.size() - 4 < n) throw Error(Status::BadFile, "chat file: truncated");
    std::string s(reinterpret_cast<const char*>(p.data() + 4), n);
    p = p.subspan(4 + n);
    return s;
}

}  // namespace

Chat::Chat(const Model& model, const SessionParams& session, ChatParams params)
    : model_(model), params_(std::move(params)), template_(ChatTemplate::for_model(model)), session_(model, session) {
    if (params_.reserve < 1 || params_.reserve >= session_.n_ctx())
        throw Error(Status::InvalidArgument, "chat: reserve must be in [1, n_ctx)");
}

const std::vector<ChatMessage>& Chat::messages() const noexcept { return messages_; }
void Chat::reset() {
    messages_.clear();
    dropped_ = 0;
    summary_.clear();
}
void Chat::set_history(bool on) noexcept { params_.history = on; }
bool Chat::history() const noexcept { return params_.history; }
void Chat::set_strategy(ContextStrategy s) noexcept { params_.strategy = s; }
const std::string& Chat::summary() const noexcept { return summary_; }
Session& Chat::session() noexcept { return session_; }

// The system message, then the conversation without its `drop` oldest messages (or, without history, only
// the last user message).
std::vector<ChatMessage> Chat::prompt_messages(size_t drop) const {
    std::vector<ChatMessage> out;
    std::string system = params_.system;
    if (!summary_.empty()) system += (system.empty() ? "" : "\n\n") + std::string("Earlier in this conversation: ") + summary_;
    if (!system.empty()) out.push_back({"system", system});
    const size_t first = params_.history ? drop : messages_.size() - 1;
    out.insert(out.end(), messages_.begin() + static_cast<std::ptrdiff_t>(first), messages_.end());
    return out;
}

std::vector<Token> Chat::render(size_t drop) const {
    const Tokenizer& tok = model_.tokenizer();
    return tokenize_chat_prompt(tok, template_.apply(prompt_messages(drop), true, chat_template_tokens(tok)));
}

// The model summarises messages [from, to) into the note (Summary strategy). Uses the session: the next
// prompt is re-prefilled anyway, since its start changed.
void Chat::summarize(size_t from, size_t to, Sampler& sampler) {
    std::string text = summary_.empty() ? "" : "Earlier: " + summary_ + "\n";
    for (size_t i = from; i < to; ++i) text += messages_[i].role + ": " + messages_[i].content + "\n";
    const std::vector<ChatMessage> ask = {
        {"user", "Summarise this conversation in at most two sentences, keeping names and facts:\n\n" + text}};
    const Tokenizer& tok = model_.tokenizer();
    std::vector<Token> prompt = tokenize_chat_prompt(tok, template_.apply(ask, true, chat_template_tokens(tok)));
    const int room = session_.n_ctx() - params_.reserve / 2;
    if (static_cast<int>(prompt.size()) > room) prompt.erase(prompt.begin() + 1, prompt.end() - (room - 1));
    session_.reset();
    session_.prefill(prompt);
    GenerateParams g;
    g.max_tokens = std::min(64, session_.n_ctx() - session_.position());
    summary_ = session_.generate(sampler, g).text;
}

ChatTurn Chat::say(const std::string& user, Sampler& sampler, const GenerateParams& gen,
                   const std::function<bool(std::string_view, Token)>& on_text) {
    messages_.push_back({"user", user});
    ChatTurn turn;
    try {
        // Leave out the oldest whole turns (user + assistant) so the prompt and the reply's reserve fit.
        const int budget = session_.n_ctx() - params_.reserve;
        const bool sliding = params_.strategy != ContextStrategy::Budget;
        size_t drop = sliding ? std::min(dropped_, messages_.size() - 1) : 0;
        std::vector<Token> prompt = render(drop);
        if (params_.history && static_cast<int>(prompt.size()) > budget) {
            // Budget: the fewest turns out that fit. Window/Summary: down to halfway between the smallest
            // prompt (the newest message alone) and the budget, so that the next turns keep this start
            // (and its KV cache) for a while.
            const int least = static_cast<int>(render(messages_.size() - 1).size());
            const int target = sliding ? least + std::max(0, budget - least) / 2 : budget;
            const size_t before = drop;
            while (static_cast<int>(prompt.size()) > target && drop + 2 < messages_.size()) {
                drop += 2;
                prompt = render(drop);
            }
            if (params_.strategy == ContextStrategy::Summary && drop > before) {
                summarize(before, drop, sampler);
                turn.summarized_messages = static_cast<int>(drop - before);
                prompt = render(drop);
            }
        }
        if (sliding) dropped_ = drop;
        turn.dropped_messages = params_.history ? static_cast<int>(drop) : static_cast<int>(messages_.size() - 1);
        if (static_cast<int>(prompt.size()) > budget)  // one message alone is too long: keep its end
            prompt.erase(prompt.begin(), prompt.end() - budget);
        if (prompt.empty()) throw Error(Status::InvalidArgument, "chat: the template rendered nothing");
        const size_t common = static_cast<size_t>(session_.prefill_reusing(prompt));
        turn.prompt_tokens = static_cast<int>(prompt.size());
        turn.reused_tokens = static_cast<int>(common);
        turn.prefilled_tokens = static_cast<int>(prompt.size() - common);
        GenerateParams g = gen;
        const int room = session_.n_ctx() - session_.position();
        if (g.max_tokens < 0 || g.max_tokens > room) g.max_tokens = room;
        turn.reply = session_.generate(sampler, g, on_text);
    } catch (...) {
        messages_.pop_back();  // a failed turn leaves the conversation as it was
        throw;
    }
    messages_.push_back({"assistant", turn.reply.text});
    return turn;
}

// Chat file payload: u32 message count, (role, content) pairs, u8 history, system, then the session state
// (itself a checked state file of the same model).
void Chat::save(const std::string& path) const {
    std::vector<uint8_t> p;
    const uint32_t n = static_cast<uint32_t>(messages_.size());
    p.resize(4);
    std::memcpy(p.data(), &n, 4);
    for (const auto& m : messages_) {
        put_string(p, m.role);
        put_string(p, m.content);
    }
    p.push_back(params_.history ? 1 : 0);
    put_string(p, params_.system);
    put_string(p, summary_);
    const uint64_t dropped = dropped_;
    const size_t d_at = p.size();
    p.resize(d_at + 8);
    std::memcpy(p.data() + d_at, &dropped, 8);
    const std::vector<uint8_t> state = session_.save_state();
    const size_t at = p.size();
    p.resize(at + state.size());
    std::memcpy(p.data() + at, state.data(), state.size());
    detail::write_file_atomic(path, detail::wrap_state(model_.impl()->identity, p));
}

void Chat::load(const std::string& path) {
    const MappedFile f(path, false);
    std::span<const uint8_t> p = detail::unwrap_state(f.bytes(), model_.impl()->identity);
    uint32_t n = 0;
    if (p.size() < 4) throw Error(Status::BadFile, "chat file: truncated");
    std::memcpy(&n, p.data(), 4);
    p = p.subspan(4);
    if (n > p.size() / 8) throw Error(Status::BadFile, "chat file: message count does not fit the file");
    std::vector<ChatMessage> msgs;
    for (uint32_t i = 0; i < n; ++i) {
        ChatMessage m;
        m.role = get_string(p);
        m.content = get_string(p);
        msgs.push_back(std::move(m));
    }
    if (p.empty()) throw Error(Status::BadFile, "chat file: truncated");
    const bool history = p[0] != 0;
    p = p.subspan(1);
    std::string system = get_string(p);
    std::string summary = get_string(p);
    uint64_t dropped = 0;
    if (p.size() < 8) throw Error(Status::BadFile, "chat file: truncated");
    std::memcpy(&dropped, p.data(), 8);
    p = p.subspan(8);
    if (dropped > msgs.size()) throw Error(Status::BadFile, "chat file: inconsistent");
    session_.load_state(p);  // checks its own header; throws before anything changes
    messages_ = std::move(msgs);
    params_.history = history;
    params_.system = std::move(system);
    summary_ = std::move(summary);
    dropped_ = static_cast<size_t>(dropped);
}

}  // namespace ember
