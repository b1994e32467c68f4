// ember — library version.
#pragma once

namespace ember {
const char* version() noexcept;  // "MAJOR.MINOR.PATCH"
}
