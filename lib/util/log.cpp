#include "util/log.hpp"

#include <atomic>
#include <mutex>

namespace ember {

namespace {
std::mutex g_log_mutex;  // one call at a time, and no call racing a change of callback
std::function<void(LogLevel, std::string_view)> g_log;
std::atomic<bool> g_log_set{false};
}  // namespace

void set_log_callback(std::function<void(LogLevel, std::string_view)> callback) {
    std::lock_guard lock(g_log_mutex);
    g_log_set.store(static_cast<bool>(callback), std::memory_order_relaxed);
    g_log = std::move(callback);
}

namespace detail {

bool log_enabled() noexcept { return g_log_set.load(std::memory_order_relaxed); }

void log(LogLevel level, std::string_view message) noexcept {
    if (!log_enabled()) return;
    std::lock_guard lock(g_log_mutex);
    if (!g_log) return;
    try {
        g_log(level, message);
    } catch (...) {
        // A listener's failure is not the caller's.
    }
}

}  // namespace detail
}  // namespace ember
