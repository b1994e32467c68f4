// ember — library-wide facts and hooks: the backends built in, and where diagnostics go.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ember {

// The backends this library was built with, "cpu" first.
std::vector<std::string> backends();

enum class LogLevel { Error = 0, Warn = 1, Info = 2 };

// Receives the library's diagnostics (a thread count clamped, a context size chosen, the backend picked).
// Nothing is printed by default. Called from any thread, one call at a time; it must not call into ember
// (that would deadlock) and must not throw (an exception is swallowed). An empty function removes it.
void set_log_callback(std::function<void(LogLevel, std::string_view)> callback);

}  // namespace ember
