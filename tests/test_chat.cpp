// ember::Chat: long conversations never overflow the context, the KV cache is reused across turns, and a
// saved conversation resumes exactly.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "ember/ember.hpp"
#include "models.hpp"
#include "testdata.hpp"

using namespace ember;
namespace fs = std::filesystem;

namespace {

const Model& stories() { return test::stories_model(); }

GenerateParams reply_of(int n) {
    GenerateParams g;
    g.max_tokens = n;
    g.stop_at_eog = false;
    return g;
}


}  // namespace

TEST_CASE("40 turns in a 512-token context: no ContextFull, the system message stays, prefill bounded") {
    struct Setup { bool history; ContextStrategy strategy; };
    for (Setup setup : {Setup{true, ContextStrategy::Window}, Setup{true, ContextStrategy::Budget},
                        Setup{true, ContextStrategy::Summary}, Setup{false, ContextStrategy::Window}}) {
        const bool history = setup.history;
        CAPTURE(history);
        CAPTURE(static_cast<int>(setup.strategy));
        SessionParams sp;
        sp.n_ctx = 512;
        ChatParams cp;
        cp.system = "You are a storyteller.";
        cp.history = history;
        cp.reserve = 64;
        cp.strategy = setup.strategy;
        Chat chat(stories(), sp, cp);
        Sampler greedy = Sampler::greedy();
        const std::vector<Token> system_prefix = stories().tokenizer().encode("<|im_start|>system\nYou are a storyteller.", true, true);
        int reused_total = 0;
        for (int turn = 0; turn < 40; ++turn) {
            CAPTURE(turn);
            const ChatTurn t = chat.say("Tell me about the park, part " + std::to_string(turn), greedy, reply_of(24));
            CHECK(t.prompt_tokens <= 512 - 64);
            CHECK(t.prefilled_tokens <= t.prompt_tokens);
            CHECK(chat.session().position() <= 512);
            const auto& cached = chat.session().tokens();
            REQUIRE(cached.size() >= system_prefix.size());
            CHECK(std::equal(system_prefix.begin(), system_prefix.end(), cached.begin()));  // the system message survives
            reused_total += t.reused_tokens;
        }
        CHECK(chat.messages().size() == 80);  // every turn is kept, even those left out of the prompt
        CHECK(reused_total > 0);              // later turns start from the cached prefix
        if (setup.strategy == ContextStrategy::Summary) CHECK_FALSE(chat.summary().empty());
    }
}

TEST_CASE("a saved conversation resumes exactly; a damaged one is refused") {
    const std::string path = ember::test::temp_path("chat.embc");
    Sampler g1 = Sampler::greedy(), g2 = Sampler::greedy();
    Chat a(stories(), {}, {.system = "Be brief."});
    a.say("Once upon a time", g1, reply_of(12));
    a.say("What happened next?", g1, reply_of(12));
    a.save(path);

    Chat b(stories());
    b.load(path);
    CHECK(b.messages().size() == a.messages().size());
    CHECK(b.session().tokens() == a.session().tokens());
    const ChatTurn next_a = a.say("And then?", g1, reply_of(12));
    const ChatTurn next_b = b.say("And then?", g2, reply_of(12));
    CHECK(next_b.reply.tokens == next_a.reply.tokens);
    CHECK(next_b.reused_tokens == next_a.reused_tokens);  // the resumed KV cache was used, not re-prefilled

    // Truncated and flipped copies: refused, the chat unchanged, the file untouched.
    const std::string good = test::read_file(path);
    const auto before = b.messages().size();
    for (size_t cut : {size_t(10), good.size() / 3, good.size() - 1}) {
        const std::string damaged = good.substr(0, cut);
        { std::FILE* f = std::fopen(path.c_str(), "wb"); std::fwrite(damaged.data(), 1, damaged.size(), f); std::fclose(f); }
        CHECK_THROWS_AS(b.load(path), Error);
        CHECK(b.messages().size() == before);
        CHECK(test::read_file(path) == damaged);
    }
    for (int k = 0; k < 97; ++k) {  // with the 3 truncations: 100 damaged files, one bit flipped at spread places
        std::string flipped = good;
        flipped[(static_cast<size_t>(k) * 7919u) % flipped.size()] ^= static_cast<char>(1 << (k % 8));
        { std::FILE* f = std::fopen(path.c_str(), "wb"); std::fwrite(flipped.data(), 1, flipped.size(), f); std::fclose(f); }
        CHECK_THROWS_AS(b.load(path), Error);
        CHECK(b.messages().size() == before);
        CHECK(test::read_file(path) == flipped);
    }
    fs::remove(path);
}

#ifdef EMBER_CHAT_BIN
#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>

TEST_CASE("ember-chat killed mid-reply resumes from its last completed turn") {
    const std::string session = ember::test::temp_path("killed.embc");
    const std::string model = test::testdata("models/stories260K.gguf");
    int in[2], out[2];
    REQUIRE(pipe(in) == 0);
    REQUIRE(pipe(out) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(EMBER_CHAT_BIN, EMBER_CHAT_BIN, "-m", model.c_str(), "--session", session.c_str(), "-n", "100000",
              "-c", "1024", "--temp", "0", static_cast<char*>(nullptr));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    auto send = [&](const std::string& line) { REQUIRE(write(in[1], line.data(), line.size()) == static_cast<ssize_t>(line.size())); };
    send("Once upon a time\n");
    // The first reply ends at the context (or EOS); wait until its turn has been saved.
    for (int i = 0; i < 600 && !fs::exists(session); ++i) usleep(50'000);
    REQUIRE(fs::exists(session));
    const std::string saved = test::read_file(session);
    char buf[4096];
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    while (read(out[0], buf, sizeof buf) > 0) {
    }  // the first reply, already printed
    fcntl(out[0], F_SETFL, 0);
    send("Tell me more\n");
    REQUIRE(read(out[0], buf, sizeof buf) > 0);  // the second reply is streaming now
    usleep(20'000);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    close(in[1]);
    close(out[0]);

    // The file holds the last completed turn, intact, and a restart of the program resumes from it.
    CHECK(test::read_file(session) == saved);
    const std::string log = session + ".log";
    const std::string restart = std::string("echo /quit | '") + EMBER_CHAT_BIN + "' -m '" + model + "' --session '" +
                                session + "' -c 1024 2> '" + log + "' > /dev/null";
    CHECK(std::system(restart.c_str()) == 0);
    CHECK(test::read_file(log).find("resumed 2 messages") != std::string::npos);
    fs::remove(log);
    Chat resumed(stories(), {.n_ctx = 1024});
    resumed.load(session);
    REQUIRE(resumed.messages().size() == 2);
    CHECK(resumed.messages()[0].content == "Once upon a time");
    CHECK(resumed.session().position() > 0);
    fs::remove(session);
}
#endif
