#include "gguf/stream_writer.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unistd.h>

#include "ember/error.hpp"
#include "gguf/reader.hpp"
#include "gguf/writer.hpp"

namespace ember::gguf {

namespace fs = std::filesystem;

StreamWriter::StreamWriter(const std::string& dest) : dest_(dest) {
    std::error_code ec;
    if (dest.empty()) throw Error(Status::Io, "cannot create '': no file name");
    if (fs::is_directory(dest, ec)) throw Error(Status::Io, "cannot create '" + dest + "': it is a directory");
    // Beside the destination, so the final rename stays within one file system; "x": never an existing file.
    static std::atomic<unsigned> serial{0};
    path_ = dest + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(serial++);
    f_ = std::fopen(path_.c_str(), "wbx");
    if (!f_) throw Error(Status::Io, "cannot create '" + dest + "' (as '" + path_ + "'): " + std::strerror(errno));
}

StreamWriter::~StreamWriter() {
    if (f_) std::fclose(f_);
    if (!done_) std::remove(path_.c_str());
}

void StreamWriter::raw(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) throw Error(Status::Io, "cannot write '" + path_ + "': " + std::strerror(errno));
    written_ += n;
}

void StreamWriter::pad() {
    static const uint8_t zeros[256] = {};
    while (written_ % alignment_) raw(zeros, std::min<uint64_t>(sizeof zeros, alignment_ - written_ % alignment_));
}

void StreamWriter::header(const std::vector<std::pair<std::string, Value>>& kv, const std::vector<TensorHeader>& tensors,
                          uint32_t alignment) {
    if (written_ != 0) throw Error(Status::Internal, "gguf stream writer: header written twice");
    if (alignment == 0 || alignment > 256 || (alignment & (alignment - 1)) != 0)
        throw Error(Status::InvalidArgument, "gguf stream writer: alignment must be a power of two up to 256");
    alignment_ = alignment;
    put<uint32_t>(kMagic);
    put<uint32_t>(3);
    put<uint64_t>(tensors.size());
    put<uint64_t>(kv.size());
    for (const auto& [k, v] : kv) {
        str(k);
        put<uint32_t>(static_cast<uint32_t>(v.type()));
        put_value_body(*this, v);
    }
    uint64_t offset = 0;
    for (const TensorHeader& t : tensors) {
        if (t.shape.empty() || t.shape.size() > static_cast<size_t>(kMaxDims))
            throw Error(Status::InvalidArgument, "gguf stream writer: tensor '" + t.name + "' needs 1 to 4 dimensions");
        str(t.name);
        put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
        for (int64_t d : t.shape) put<uint64_t>(static_cast<uint64_t>(d));
        put<uint32_t>(static_cast<uint32_t>(t.type));
        put<uint64_t>(offset);
        offset += (t.n_bytes + alignment - 1) / alignment * alignment;
        sizes_.push_back(t.n_bytes);
    }
    pad();
}

void StreamWriter::data(const void* p, size_t n) {
    if (next_ >= sizes_.size() || n > sizes_[next_] - in_tensor_)
        throw Error(Status::Internal, "gguf stream writer: more bytes than the header declares");
    raw(p, n);
    in_tensor_ += n;
}

void StreamWriter::end_tensor() {
    if (next_ >= sizes_.size() || in_tensor_ != sizes_[next_])
        throw Error(Status::Internal, "gguf stream writer: a tensor's bytes differ from its declared size");
    pad();
    ++next_;
    in_tensor_ = 0;
}

void StreamWriter::commit() {
    if (next_ != sizes_.size()) throw Error(Status::Internal, "gguf stream writer: committed before every tensor was written");
    const bool ok = std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
    const int close_rc = std::fclose(f_);
    f_ = nullptr;
    if (!ok || close_rc != 0) throw Error(Status::Io, "cannot finish '" + path_ + "': " + std::strerror(errno));
    std::error_code ec;
    fs::rename(path_, dest_, ec);
    if (ec) throw Error(Status::Io, "cannot rename '" + path_ + "' to '" + dest_ + "': " + ec.message());
    done_ = true;
}

}  // namespace ember::gguf
