#include "runtime/state_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "ember/error.hpp"

namespace ember::detail {

namespace {
constexpr char kMagic[4] = {'E', 'M', 'B', 'S'};
constexpr size_t kHeader = 4 + 4 + 8 + 8 + 8;

void put(std::vector<uint8_t>& b, const void* p, size_t n) {
    const size_t at = b.size();
    b.resize(at + n);  // not insert(): GCC 12 warns falsely on it
    if (n) std::memcpy(b.data() + at, p, n);
}
template <typename T>
T get(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
[[noreturn]] void bad(const std::string& why) { throw Error(Status::BadFile, "session file: " + why); }
}  // namespace

uint64_t fnv1a(std::span<const uint8_t> bytes, uint64_t h) noexcept {
    for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
    return h;
}

std::vector<uint8_t> wrap_state(uint64_t model_identity, std::span<const uint8_t> payload) {
    std::vector<uint8_t> out;
    out.reserve(kHeader + payload.size());
    put(out, kMagic, 4);
    const uint32_t version = kStateVersion;
    const uint64_t size = payload.size(), sum = fnv1a(payload);
    put(out, &version, 4);
    put(out, &model_identity, 8);
    put(out, &size, 8);
    put(out, &sum, 8);
    put(out, payload.data(), payload.size());
    return out;
}

std::span<const uint8_t> unwrap_state(std::span<const uint8_t> file, uint64_t model_identity) {
    if (file.size() < kHeader || std::memcmp(file.data(), kMagic, 4) != 0) bad("not an ember session file");
    const uint32_t version = get<uint32_t>(file.data() + 4);
    if (version != kStateVersion)
        bad("format version " + std::to_string(version) + ", this library reads version " + std::to_string(kStateVersion));
    if (get<uint64_t>(file.data() + 8) != model_identity) bad("it was saved with another model");
    const uint64_t size = get<uint64_t>(file.data() + 16);
    if (size != file.size() - kHeader) bad("truncated or extended (" + std::to_string(file.size()) + " bytes)");
    const std::span<const uint8_t> payload = file.subspan(kHeader);
    if (fnv1a(payload) != get<uint64_t>(file.data() + 24)) bad("checksum mismatch (the file is corrupted)");
    return payload;
}

void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(Status::Io, "cannot write '" + tmp + "': " + std::strerror(errno));
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw Error(Status::Io, "cannot write '" + tmp + "': " + std::strerror(e));
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        throw Error(Status::Io, "cannot save '" + path + "': " + std::strerror(e));
    }
}

}  // namespace ember::detail
