// ember::GgufWriter (the public face of gguf::StreamWriter): checks what a caller passes, then streams.
#include "ember/gguf_writer.hpp"

#include <limits>
#include <unordered_set>

#include "ember/error.hpp"
#include "gguf/stream_writer.hpp"

namespace ember {

struct GgufWriter::Impl {
    explicit Impl(const std::string& path) : w(path) {}
    gguf::StreamWriter w;
    std::vector<uint64_t> sizes;
    size_t next = 0;
    uint64_t in_tensor = 0;
};

namespace {
gguf::Value to_value(const GgufValue& v) {
    struct Visit {
        gguf::Value operator()(uint32_t x) const { return gguf::Value::u32(x); }
        gguf::Value operator()(int32_t x) const { return gguf::Value::i32(x); }
        gguf::Value operator()(float x) const { return gguf::Value::f32(x); }
        gguf::Value operator()(bool x) const { return gguf::Value::boolean(x); }
        gguf::Value operator()(const std::string& x) const { return gguf::Value::string(x); }
        gguf::Value operator()(const std::vector<std::string>& x) const { return gguf::Value::strings(x); }
        gguf::Value operator()(const std::vector<int32_t>& x) const { return gguf::Value::i32s(x); }
        gguf::Value operator()(const std::vector<float>& x) const { return gguf::Value::f32s(x); }
    };
    return std::visit(Visit{}, v);
}

[[noreturn]] void invalid(const std::string& msg) { throw Error(Status::InvalidArgument, "gguf writer: " + msg); }
}  // namespace

GgufWriter::GgufWriter(const std::string& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
                       const std::vector<GgufTensor>& tensors, uint32_t alignment) {
    if (alignment == 0 || alignment > 256 || (alignment & (alignment - 1)) != 0)
        invalid("alignment must be a power of two up to 256");
    std::vector<std::pair<std::string, gguf::Value>> kv;
    std::unordered_set<std::string> keys;
    for (const auto& [k, v] : metadata) {
        if (!keys.insert(k).second) invalid("key '" + k + "' given twice");
        kv.emplace_back(k, to_value(v));
    }
    std::vector<gguf::TensorHeader> headers;
    std::vector<uint64_t> sizes;
    std::unordered_set<std::string> names;
    for (const GgufTensor& t : tensors) {
        const auto type = tensor::type_from_name(t.type);
        if (!type) invalid("tensor '" + t.name + "': unknown type '" + t.type + "'");
        if (!names.insert(t.name).second) invalid("tensor name '" + t.name + "' given twice");
        const tensor::TypeInfo& ti = tensor::info(*type);
        if (t.shape.empty() || t.shape.size() > 4) invalid("tensor '" + t.name + "' needs 1 to 4 dimensions");
        uint64_t n = 1;
        for (int64_t d : t.shape) {
            if (d <= 0 || static_cast<uint64_t>(d) > std::numeric_limits<uint64_t>::max() / 2 / n)
                invalid("tensor '" + t.name + "' has a dimension that is not positive or too large");
            n *= static_cast<uint64_t>(d);
        }
        if (t.shape[0] % ti.block_size != 0)
            invalid("tensor '" + t.name + "': a row of " + std::to_string(t.shape[0]) + " is not a whole number of " + t.type + " blocks");
        const uint64_t blocks = n / static_cast<uint64_t>(ti.block_size);
        if (blocks > std::numeric_limits<uint64_t>::max() / 2 / ti.block_bytes) invalid("tensor '" + t.name + "' is too large");
        sizes.push_back(blocks * ti.block_bytes);
        headers.push_back({t.name, *type, t.shape, sizes.back()});
    }
    impl_ = std::make_unique<Impl>(path);
    impl_->sizes = std::move(sizes);
    impl_->w.header(kv, headers, alignment);
}

GgufWriter::~GgufWriter() = default;

void GgufWriter::write(const void* data, size_t n_bytes) {
    Impl& m = *impl_;
    if (m.next >= m.sizes.size() || n_bytes > m.sizes[m.next] - m.in_tensor)
        invalid("more bytes than tensor " + std::to_string(m.next) + " holds");
    if (n_bytes && !data) invalid("data is null");
    m.w.data(data, n_bytes);
    m.in_tensor += n_bytes;
}

void GgufWriter::end_tensor() {
    Impl& m = *impl_;
    if (m.next >= m.sizes.size() || m.in_tensor != m.sizes[m.next])
        invalid("tensor " + std::to_string(m.next) + " got " + std::to_string(m.in_tensor) + " bytes, not its size");
    m.w.end_tensor();
    ++m.next;
    m.in_tensor = 0;
}

uint64_t GgufWriter::tensor_bytes(size_t i) const {
    if (i >= impl_->sizes.size()) invalid("no tensor " + std::to_string(i));
    return impl_->sizes[i];
}

void GgufWriter::commit() {
    if (impl_->next != impl_->sizes.size()) invalid("commit before every tensor was written");
    impl_->w.commit();
}

}  // namespace ember
