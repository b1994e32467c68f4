// A read-only view of a whole file: memory-mapped (tensor data is never copied, pages load on demand and
// are shared between processes), or, with use_mmap = false, read into memory once (for file systems
// where mapping is slow or unavailable, and to keep weights resident).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ember {

class MappedFile {
public:
    // Throws ember::Error (Io, OutOfMemory) when the file cannot be read.
    explicit MappedFile(const std::string& path, bool use_mmap = true);
    // A copy of bytes already in memory, labelled `name`. Throws OutOfMemory.
    MappedFile(std::span<const uint8_t> bytes, std::string name);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    std::span<const uint8_t> bytes() const noexcept { return {data_, size_}; }
    const std::string& path() const noexcept { return path_; }
    // Whether the bytes are a read-only mapping of the file (not a copy in memory).
    bool is_mapping() const noexcept { return mapped_; }

private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    bool mapped_ = false;
};

}  // namespace ember
