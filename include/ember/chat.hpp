// ember — a conversation: messages, the model's chat template, one Session whose KV cache is reused across
// turns (only what changed since the last turn is evaluated), a context policy so a conversation of any
// length never fails with ContextFull, and files that let a killed program resume.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ember/chat_template.hpp"
#include "ember/model.hpp"
#include "ember/sampler.hpp"
#include "ember/session.hpp"

namespace ember {

// What to do when the conversation no longer fits the context (the system message always stays):
//   Window:  leave out the oldest whole turns until the prompt fills at most half the context, then keep
//            that start while turns accumulate — few re-prefills, less history.
//   Budget:  keep as many recent turns as fit — most history, but once full every turn re-prefills.
//   Summary: as Window, and the turns left out are summarised by the model itself into a note kept after
//            the system message.
enum class ContextStrategy { Window, Budget, Summary };

struct ChatParams {
    std::string system;       // system message ("" for none); always kept
    bool history = true;      // false: each turn is answered alone (system message + that turn)
    int reserve = 256;        // context positions kept free for the reply
    ContextStrategy strategy = ContextStrategy::Window;
};

struct ChatTurn {
    GenerateResult reply;
    int prompt_tokens = 0;    // the whole rendered conversation
    int reused_tokens = 0;    // already in the KV cache from earlier turns
    int prefilled_tokens = 0; // evaluated for this turn's prompt
    int dropped_messages = 0; // oldest messages left out so the conversation fits the context
    int summarized_messages = 0;  // Summary: messages summarised into the note during this turn
};

class Chat {
public:
    explicit Chat(const Model& model, const SessionParams& session = {}, ChatParams params = {});

    // Adds the user's message, renders the conversation with the model's template, evaluates only what
    // the KV cache does not hold yet, generates and streams the reply, and adds it to the conversation.
    // When the conversation outgrows the context, its oldest whole turns are left out of the prompt
    // (the system message stays); the messages themselves are kept.
    ChatTurn say(const std::string& user, Sampler& sampler, const GenerateParams& gen = {},
                 const std::function<bool(std::string_view, Token)>& on_text = {});

    const std::vector<ChatMessage>& messages() const noexcept;
    void reset();                       // forget the conversation (the system message stays)
    void set_history(bool on) noexcept;
    bool history() const noexcept;
    void set_strategy(ContextStrategy s) noexcept;
    const std::string& summary() const noexcept;  // Summary: the note on the turns left out
    Session& session() noexcept;

    // The conversation and the KV cache, saved atomically, checked on load as Session files are; a
    // refused file leaves the chat as it was.
    void save(const std::string& path) const;
    void load(const std::string& path);

private:
    std::vector<ChatMessage> prompt_messages(size_t drop) const;
    std::vector<Token> render(size_t drop) const;
    void summarize(size_t from, size_t to, Sampler& sampler);

    Model model_;
    ChatParams params_;
    ChatTemplate template_;
    Session session_;
    std::vector<ChatMessage> messages_;  // user and assistant turns, in order (the system message apart)
    size_t dropped_ = 0;                 // Window/Summary: messages left out of the prompt so far
    std::string summary_;
};

}  // namespace ember
