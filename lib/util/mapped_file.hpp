// A read-only view of a whole file: memory-mapped where the OS allows it, so tensor data is never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ember {

class MappedFile {
public:
    explicit MappedFile(const std::string& path);  // throws ember::Error (Io) when the file cannot be read
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    std::span<const uint8_t> bytes() const noexcept { return {data_, size_}; }
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace ember
