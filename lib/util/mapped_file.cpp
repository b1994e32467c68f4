#include "util/mapped_file.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ember/error.hpp"

namespace ember {

MappedFile::MappedFile(const std::string& path, bool use_mmap) : path_(path) {
    // O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever (regular files ignore the flag).
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw Error(Status::Io, "cannot open '" + path + "': " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error(Status::Io, "'" + path + "' is not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0 && use_mmap) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            throw Error(e == ENOMEM ? Status::OutOfMemory : Status::Io, "cannot map '" + path + "': " + std::strerror(e));
        }
        data_ = static_cast<const uint8_t*>(p);
        mapped_ = true;
    } else if (size_ > 0) {
        auto* buf = static_cast<uint8_t*>(std::malloc(size_));
        if (!buf) {
            ::close(fd);
            throw Error(Status::OutOfMemory, "cannot allocate " + std::to_string(size_) + " bytes to read '" + path + "'");
        }
        for (size_t done = 0; done < size_;) {
            const ssize_t n = ::read(fd, buf + done, size_ - done);
            if (n <= 0) {
                const int e = errno;
                std::free(buf);
                ::close(fd);
                throw Error(Status::Io, "cannot read '" + path + "': " + (n == 0 ? "file shrank" : std::strerror(e)));
            }
            done += static_cast<size_t>(n);
        }
        data_ = buf;
    }
    ::close(fd);  // the mapping keeps the file alive
}

MappedFile::MappedFile(std::span<const uint8_t> bytes, std::string name) : path_(std::move(name)), size_(bytes.size()) {
    if (size_ == 0) return;
    auto* buf = static_cast<uint8_t*>(std::malloc(size_));
    if (!buf) throw Error(Status::OutOfMemory, "cannot allocate " + std::to_string(size_) + " bytes for '" + path_ + "'");
    std::memcpy(buf, bytes.data(), size_);
    data_ = buf;
}

MappedFile::~MappedFile() {
    if (data_ && mapped_) ::munmap(const_cast<uint8_t*>(data_), size_);
    else std::free(const_cast<uint8_t*>(data_));
}

}  // namespace ember
