#include "gguf/writer.hpp"

#include <cstdio>
#include <cstring>
#include <memory>

#include "ember/error.hpp"
#include "gguf/reader.hpp"

namespace ember::gguf {

namespace {

class Out {
public:
    std::vector<uint8_t> bytes;
    // resize + memcpy rather than insert: GCC 12 warns falsely on vector::insert of raw bytes.
    void raw(const void* p, size_t n) {
        if (n == 0) return;
        const size_t at = bytes.size();
        bytes.resize(at + n);
        std::memcpy(bytes.data() + at, p, n);
    }
    template <typename T>
    void put(T v) { raw(&v, sizeof(T)); }
    void str(const std::string& s) {
        put<uint64_t>(s.size());
        raw(s.data(), s.size());
    }
    void pad_to(uint64_t alignment) {
        while (bytes.size() % alignment) bytes.push_back(0);
    }
};

}  // namespace

Writer::Writer(uint32_t alignment) : alignment_(alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        throw Error(Status::InvalidArgument, "gguf writer: alignment must be a power of two");
    if (alignment != kDefaultAlignment) kv_.emplace_back("general.alignment", Value::u32(alignment));
}

void Writer::set(const std::string& key, Value v) {
    if (key == "general.alignment") throw Error(Status::InvalidArgument, "gguf writer: set the alignment in the constructor");
    for (auto& [k, old] : kv_)
        if (k == key) {
            old = std::move(v);
            return;
        }
    kv_.emplace_back(key, std::move(v));
}

void Writer::add_tensor(const std::string& name, tensor::TensorType type, const std::vector<int64_t>& shape,
                        const void* data, size_t n_bytes) {
    if (shape.empty() || shape.size() > static_cast<size_t>(kMaxDims))
        throw Error(Status::InvalidArgument, "gguf writer: tensor '" + name + "' needs 1 to 4 dimensions");
    const auto& ti = tensor::info(type);
    uint64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) throw Error(Status::InvalidArgument, "gguf writer: negative dimension in '" + name + "'");
        n *= static_cast<uint64_t>(d);
    }
    if (shape[0] % ti.block_size != 0)
        throw Error(Status::InvalidArgument, "gguf writer: '" + name + "' row length is not a multiple of the block size");
    if (n / ti.block_size * ti.block_bytes != n_bytes)
        throw Error(Status::InvalidArgument, "gguf writer: '" + name + "' data size does not match its shape and type");
    for (const auto& t : tensors_)
        if (t.name == name) throw Error(Status::InvalidArgument, "gguf writer: duplicate tensor '" + name + "'");
    const auto* p = static_cast<const uint8_t*>(data);
    tensors_.push_back({name, type, shape, std::vector<uint8_t>(p, p + n_bytes)});
}

std::vector<uint8_t> Writer::to_bytes() const {
    Out o;
    o.put<uint32_t>(kMagic);
    o.put<uint32_t>(3);
    o.put<uint64_t>(tensors_.size());
    o.put<uint64_t>(kv_.size());
    for (const auto& [k, v] : kv_) {
        o.str(k);
        o.put<uint32_t>(static_cast<uint32_t>(v.type()));
        put_value_body(o, v);
    }
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
        o.str(t.name);
        o.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
        for (int64_t d : t.shape) o.put<uint64_t>(static_cast<uint64_t>(d));
        o.put<uint32_t>(static_cast<uint32_t>(t.type));
        o.put<uint64_t>(offset);
        offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
    }
    o.pad_to(alignment_);
    for (const auto& t : tensors_) {
        o.raw(t.data.data(), t.data.size());
        o.pad_to(alignment_);
    }
    return o.bytes;
}

void Writer::write(const std::string& path) const {
    const std::vector<uint8_t> b = to_bytes();
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
    if (!f) throw Error(Status::Io, "cannot create '" + path + "': " + std::strerror(errno));
    if (std::fwrite(b.data(), 1, b.size(), f.get()) != b.size())
        throw Error(Status::Io, "cannot write '" + path + "': " + std::strerror(errno));
    if (std::fclose(f.release()) != 0) throw Error(Status::Io, "cannot finish '" + path + "'");
}

}  // namespace ember::gguf
