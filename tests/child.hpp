// Runs a piece of a test in a forked child, so that a hang, a crash or an exhausted resource ends the
// child and not the test run (nor the machine): under an optional address-space limit and a timeout.
#pragma once

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ember::test {

// Sanitizers reserve terabytes of address space for their shadow memory: no RLIMIT_AS fits them. And
// ThreadSanitizer does not follow a multithreaded process through fork().
#if defined(__has_feature)  // clang
#define EMBER_TEST_HAS(feature) __has_feature(feature)
#else
#define EMBER_TEST_HAS(feature) 0
#endif
#if defined(__SANITIZE_THREAD__) || EMBER_TEST_HAS(thread_sanitizer)
constexpr bool kThreadSanitized = true;
#else
constexpr bool kThreadSanitized = false;
#endif
#if defined(__SANITIZE_ADDRESS__) || EMBER_TEST_HAS(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = kThreadSanitized;
#endif

struct ChildResult {
    int exit_code = -1;  // when the child exited
    int signal = 0;      // when a signal ended it (SIGALRM: it timed out)
    bool ok() const { return signal == 0 && exit_code == 0; }
    bool timed_out() const { return signal == SIGALRM; }
    std::string describe() const {
        if (timed_out()) return "timed out";
        if (signal) return "killed by signal " + std::to_string(signal);
        return "exit code " + std::to_string(exit_code);
    }
};

// fn returns the child's exit code. address_space_bytes = 0: no limit (nor under a sanitizer; see above).
inline ChildResult run_in_child(const std::function<int()>& fn, unsigned timeout_s, size_t address_space_bytes = 0) {
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return {};
    if (pid == 0) {
        if (address_space_bytes && !kSanitized) {
            const rlimit lim{address_space_bytes, address_space_bytes};
            if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(100);
        }
        std::signal(SIGALRM, SIG_DFL);
        alarm(timeout_s);
        int code = 101;
        try {
            code = fn();
        } catch (...) {
            code = 102;  // an exception escaped the test body
        }
        std::fflush(nullptr);
        _exit(code);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return {};
    ChildResult r;
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    return r;
}

// Bytes of address space this process uses now (from /proc/self/statm).
inline size_t address_space_in_use() {
    unsigned long pages = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%lu", &pages) != 1) pages = 0;
        std::fclose(f);
    }
    return pages * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Threads of this process now (from /proc/self/status).
inline int thread_count() {
    int n = 0;
    if (FILE* f = std::fopen("/proc/self/status", "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f))
            if (std::sscanf(line, "Threads: %d", &n) == 1) break;
        std::fclose(f);
    }
    return n;
}

}  // namespace ember::test
