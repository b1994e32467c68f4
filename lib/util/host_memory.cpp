#include "util/host_memory.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

namespace ember {

namespace {

constexpr size_t kUnknown = std::numeric_limits<size_t>::max();

// "MemAvailable:  123456 kB" from /proc/meminfo: the kernel's estimate of memory usable without swapping.
size_t meminfo_available() noexcept {
    FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return kUnknown;
    size_t kb = 0;
    bool found = false;
    char line[128];
    while (!found && std::fgets(line, sizeof line, f)) found = std::sscanf(line, "MemAvailable: %zu kB", &kb) == 1;
    std::fclose(f);
    if (found) return kb * 1024;
    const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : kUnknown;
}

size_t read_number(const char* path) noexcept {
    FILE* f = std::fopen(path, "r");
    if (!f) return kUnknown;
    unsigned long long v = 0;
    const bool ok = std::fscanf(f, "%llu", &v) == 1;  // "max" (no limit) does not parse
    std::fclose(f);
    return ok ? static_cast<size_t>(v) : kUnknown;
}

// cgroup v2: memory.max - memory.current of this process's group (read through /sys/fs/cgroup, where a
// container mounts its own group).
size_t cgroup_available() noexcept {
    const size_t max = read_number("/sys/fs/cgroup/memory.max");
    if (max == kUnknown) return kUnknown;
    const size_t cur = read_number("/sys/fs/cgroup/memory.current");
    return cur == kUnknown || cur >= max ? (cur == kUnknown ? max : 0) : max - cur;
}

size_t address_space_available() noexcept {
    rlimit lim{};
    if (getrlimit(RLIMIT_AS, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return kUnknown;
    size_t used = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        unsigned long pages = 0;
        if (std::fscanf(f, "%lu", &pages) == 1) used = pages * static_cast<size_t>(sysconf(_SC_PAGESIZE));
        std::fclose(f);
    }
    return lim.rlim_cur > used ? static_cast<size_t>(lim.rlim_cur) - used : 0;
}

}  // namespace

size_t host_memory_available() noexcept {
    return std::min({meminfo_available(), cgroup_available(), address_space_available()});
}

namespace {
// madvise(advice) over the whole `page`-byte pages inside [p, p + n).
void advise_whole_pages(const void* p, size_t n, uintptr_t page, int advice) noexcept {
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, advice);
}
}  // namespace

void drop_file_pages(const void* p, size_t n) noexcept {
    advise_whole_pages(p, n, static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)), MADV_DONTNEED);
}

void ask_huge_pages(void* p, size_t n) noexcept {
#ifdef MADV_HUGEPAGE
    advise_whole_pages(p, n, uintptr_t{2} << 20, MADV_HUGEPAGE);
#else
    (void)p, (void)n;
#endif
}

}  // namespace ember
