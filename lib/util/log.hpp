// Diagnostics for set_log_callback (include/ember/library.hpp). Cheap when no one listens.
#pragma once

#include <string_view>

#include "ember/library.hpp"

namespace ember::detail {

bool log_enabled() noexcept;
void log(LogLevel level, std::string_view message) noexcept;

}  // namespace ember::detail
