// How much memory this process can still use: the least of what the kernel reports available, what its
// cgroup (container) allows, and what its address-space limit leaves.
#pragma once

#include <cstddef>

namespace ember {

size_t host_memory_available() noexcept;

}  // namespace ember
