// How much memory this process can still use: the least of what the kernel reports available, what its
// cgroup (container) allows, and what its address-space limit leaves.
#pragma once

#include <cstddef>

namespace ember {

size_t host_memory_available() noexcept;

// Hints about memory pages, each over the whole pages inside [p, p + n) only (the edges may belong to
// neighbouring data). Neither fails: the kernel may ignore them.
// The pages of a read-only file mapping are dropped from this process (read again from the file, or the
// page cache, if touched): for a backend that keeps its own copy of the weights.
void drop_file_pages(const void* p, size_t n) noexcept;
// Asks for 2 MiB pages (transparent huge pages in "madvise" mode, the default, give them to nothing else):
// for buffers streamed whole, such as weights, where every 4 KiB page would cost a TLB miss.
void ask_huge_pages(void* p, size_t n) noexcept;

}  // namespace ember
