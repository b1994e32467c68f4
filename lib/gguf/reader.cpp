#include "gguf/reader.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "ember/error.hpp"
#include "util/mapped_file.hpp"

namespace ember::gguf {

namespace {

// Nested arrays deeper than this are rejected: no model needs them, and recursion must stay bounded.
constexpr int kMaxArrayDepth = 8;

[[noreturn]] void fail(uint64_t offset, const std::string& what) {
    throw Error(Status::BadFile, "gguf: at byte " + std::to_string(offset) + ": " + what);
}

// A bounds-checked little-endian reader over the file bytes.
class Cursor {
public:
    explicit Cursor(std::span<const uint8_t> b) : b_(b) {}
    uint64_t pos() const { return pos_; }
    uint64_t remaining() const { return b_.size() - pos_; }

    template <typename T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, b_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    std::string read_string(const char* what) {
        const uint64_t at = pos_;
        const uint64_t len = read<uint64_t>(what);
        if (len > remaining())
            fail(at, std::string(what) + " length " + std::to_string(len) + " runs past the end of the file (" +
                         std::to_string(remaining()) + " bytes left)");
        std::string s(reinterpret_cast<const char*>(b_.data() + pos_), len);
        pos_ += len;
        return s;
    }

    std::vector<uint8_t> read_bytes(uint64_t n, const char* what) {
        need(n, what);
        std::vector<uint8_t> v(b_.data() + pos_, b_.data() + pos_ + n);
        pos_ += n;
        return v;
    }

    void need(uint64_t n, const char* what) const {
        if (n > remaining())
            fail(pos_, std::string("file truncated while reading ") + what + " (needs " + std::to_string(n) +
                           " bytes, " + std::to_string(remaining()) + " left)");
    }

private:
    std::span<const uint8_t> b_;
    uint64_t pos_ = 0;
};

// The fewest bytes one array element of this type can take in the file, to reject absurd counts up front.
uint64_t min_elem_bytes(ValueType t) {
    if (t == ValueType::String) return 8;
    if (t == ValueType::Array) return 12;
    return scalar_size(t);
}

ValueType read_type(Cursor& c, const char* what) {
    const uint64_t at = c.pos();
    const uint32_t raw = c.read<uint32_t>(what);
    if (!is_valid_value_type(raw)) fail(at, "unknown value type " + std::to_string(raw) + " for " + what);
    return static_cast<ValueType>(raw);
}

Value read_value(Cursor& c, ValueType type, int depth);

Value read_array(Cursor& c, int depth) {
    if (depth >= kMaxArrayDepth) fail(c.pos(), "arrays nested deeper than " + std::to_string(kMaxArrayDepth));
    const ValueType elem = read_type(c, "array element type");
    const uint64_t at = c.pos();
    const uint64_t n = c.read<uint64_t>("array length");
    if (n > c.remaining() / min_elem_bytes(elem))
        fail(at, "array of " + std::to_string(n) + " " + value_type_name(elem) + " elements cannot fit in the " +
                     std::to_string(c.remaining()) + " bytes left");
    if (elem == ValueType::String) {
        std::vector<std::string> v;
        v.reserve(n);
        for (uint64_t i = 0; i < n; ++i) v.push_back(c.read_string("array string"));
        return Value::strings(std::move(v));
    }
    if (elem == ValueType::Array) {
        std::vector<Value> v;
        v.reserve(n);
        for (uint64_t i = 0; i < n; ++i) v.push_back(read_array(c, depth + 1));
        return Value::arrays(std::move(v));
    }
    return Value::numbers(elem, c.read_bytes(n * scalar_size(elem), "array data"));
}

Value read_value(Cursor& c, ValueType type, int depth) {
    switch (type) {
        case ValueType::U8: return Value::u8(c.read<uint8_t>("uint8"));
        case ValueType::I8: return Value::i8(c.read<int8_t>("int8"));
        case ValueType::U16: return Value::u16(c.read<uint16_t>("uint16"));
        case ValueType::I16: return Value::i16(c.read<int16_t>("int16"));
        case ValueType::U32: return Value::u32(c.read<uint32_t>("uint32"));
        case ValueType::I32: return Value::i32(c.read<int32_t>("int32"));
        case ValueType::U64: return Value::u64(c.read<uint64_t>("uint64"));
        case ValueType::I64: return Value::i64(c.read<int64_t>("int64"));
        case ValueType::F32: return Value::f32(c.read<float>("float32"));
        case ValueType::F64: return Value::f64(c.read<double>("float64"));
        case ValueType::Bool: {
            const uint64_t at = c.pos();
            const uint8_t b = c.read<uint8_t>("bool");
            if (b > 1) fail(at, "bool value " + std::to_string(b) + " is neither 0 nor 1");
            return Value::boolean(b != 0);
        }
        case ValueType::String: return Value::string(c.read_string("string"));
        case ValueType::Array: return read_array(c, depth);
    }
    fail(c.pos(), "unknown value type");
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

File File::open(const std::string& path, bool use_mmap) {
    return from_map(std::make_shared<MappedFile>(path, use_mmap), path);
}

File File::copy_of(std::span<const uint8_t> bytes, const std::string& name) {
    return from_map(std::make_shared<MappedFile>(bytes, name), name);
}

File File::from_map(std::shared_ptr<MappedFile> map, const std::string& name) {
    File f;
    f.bytes_ = map->bytes();
    f.map_ = std::move(map);
    try {
        f.parse_all();
    } catch (const Error& e) {
        throw Error(e.status(), name + ": " + e.what());
    }
    return f;
}

File File::assemble(std::vector<std::pair<std::string, Value>> kv, std::vector<TensorInfo> tensors,
                    std::shared_ptr<const void> keep) {
    File f;
    f.keep_ = std::move(keep);
    f.kv_ = std::move(kv);
    for (size_t i = 0; i < f.kv_.size(); ++i)
        if (!f.kv_index_.emplace(f.kv_[i].first, i).second)
            throw Error(Status::BadFile, "duplicate metadata key '" + f.kv_[i].first + "'");
    f.tensors_ = std::move(tensors);
    for (size_t i = 0; i < f.tensors_.size(); ++i) {
        TensorInfo& t = f.tensors_[i];
        const tensor::TypeInfo& ti = tensor::info(t.type);
        uint64_t n = 1;
        bool ok = t.n_dims >= 1 && t.n_dims <= kMaxDims && t.ne[0] % ti.block_size == 0;
        for (int d = 0; ok && d < kMaxDims; ++d) ok = t.ne[d] > 0 && !mul_overflows(n, static_cast<uint64_t>(t.ne[d]), &n);
        if (!ok || mul_overflows(n / ti.block_size, ti.block_bytes, &t.n_bytes))
            throw Error(Status::BadFile, "tensor '" + t.name + "' has a shape its type cannot hold");
        t.n_elements = n;
        if (!f.tensor_index_.emplace(t.name, i).second)
            throw Error(Status::BadFile, "duplicate tensor name '" + t.name + "'");
    }
    return f;
}

File File::parse(std::span<const uint8_t> bytes) {
    File f;
    f.bytes_ = bytes;
    f.parse_all();
    return f;
}

void File::parse_all() {
    Cursor c(bytes_);
    if (bytes_.size() < 4) fail(0, "file too small to be GGUF (" + std::to_string(bytes_.size()) + " bytes)");
    const uint32_t magic = c.read<uint32_t>("magic");
    if (magic != kMagic) fail(0, "bad magic: not a GGUF file");
    version_ = c.read<uint32_t>("version");
    if (version_ == 1) fail(4, "GGUF version 1 is not supported (convert the file to version 3)");
    if (version_ != 2 && version_ != 3)
        fail(4, "unsupported GGUF version " + std::to_string(version_) +
                    ((version_ & 0xFFFF) == 0 ? " (a big-endian file?)" : ""));

    const uint64_t n_tensors = c.read<uint64_t>("tensor count");
    const uint64_t n_kv = c.read<uint64_t>("metadata count");
    // Each KV takes at least 13 bytes (key length, type, one byte); each tensor info at least 32.
    if (n_kv > c.remaining() / 13) fail(16, "metadata count " + std::to_string(n_kv) + " cannot fit in the file");
    if (n_tensors > c.remaining() / 32) fail(8, "tensor count " + std::to_string(n_tensors) + " cannot fit in the file");
    if (n_kv * 13 + n_tensors * 32 > c.remaining())
        fail(8, "tensor and metadata counts cannot fit in the file together");

    kv_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
        const uint64_t at = c.pos();
        std::string key = c.read_string("key");
        const ValueType t = read_type(c, "metadata value type");
        Value v = read_value(c, t, 0);
        if (kv_index_.count(key)) fail(at, "duplicate metadata key '" + key + "'");
        kv_.emplace_back(std::move(key), std::move(v));
        kv_index_.emplace(kv_.back().first, kv_.size() - 1);  // reserve() keeps keys in place
    }

    if (const Value* a = find("general.alignment")) {
        if (a->type() != ValueType::U32)
            throw Error(Status::BadFile, std::string("gguf: general.alignment must be uint32, found ") +
                                             value_type_name(a->type()));
        alignment_ = static_cast<uint32_t>(a->bits());
        if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0)
            throw Error(Status::BadFile, "gguf: general.alignment " + std::to_string(alignment_) + " is not a power of two");
    }

    tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        const uint64_t at = c.pos();
        TensorInfo ti;
        ti.name = c.read_string("tensor name");
        const uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
        if (n_dims == 0 || n_dims > kMaxDims)
            fail(at, "tensor '" + ti.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
        ti.n_dims = static_cast<int>(n_dims);
        uint64_t n_el = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t ne = c.read<uint64_t>("tensor dimension");
            if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || mul_overflows(n_el, ne, &n_el) ||
                n_el > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                fail(at, "tensor '" + ti.name + "' has a shape whose element count overflows");
            ti.ne[d] = static_cast<int64_t>(ne);
        }
        const uint64_t type_at = c.pos();
        const uint32_t raw_type = c.read<uint32_t>("tensor type");
        const auto tinfo = tensor::type_info(raw_type);
        if (!tinfo) fail(type_at, "tensor '" + ti.name + "' has unknown or unsupported type " + std::to_string(raw_type));
        ti.type = tinfo->type;
        if (ti.ne[0] % tinfo->block_size != 0)
            fail(at, "tensor '" + ti.name + "' row length " + std::to_string(ti.ne[0]) + " is not a multiple of the " +
                         tinfo->name + " block size " + std::to_string(tinfo->block_size));
        ti.n_elements = n_el;
        if (mul_overflows(n_el / tinfo->block_size, tinfo->block_bytes, &ti.n_bytes))
            fail(at, "tensor '" + ti.name + "' byte size overflows");
        const uint64_t off_at = c.pos();
        ti.offset = c.read<uint64_t>("tensor data offset");
        if (ti.offset % alignment_ != 0)
            fail(off_at, "tensor '" + ti.name + "' data offset " + std::to_string(ti.offset) +
                             " is not a multiple of the alignment " + std::to_string(alignment_));
        if (tensor_index_.count(ti.name)) fail(at, "duplicate tensor name '" + ti.name + "'");
        tensors_.push_back(std::move(ti));
        tensor_index_.emplace(tensors_.back().name, tensors_.size() - 1);  // reserve() keeps names in place
    }

    // The data section starts at the next multiple of the alignment after the header.
    const uint64_t header_end = c.pos();
    data_offset_ = (header_end + alignment_ - 1) / alignment_ * alignment_;
    if (tensors_.empty()) return;
    if (data_offset_ > bytes_.size()) fail(header_end, "file ends before its tensor data section");
    const uint64_t data_size = bytes_.size() - data_offset_;

    std::vector<const TensorInfo*> by_offset;
    by_offset.reserve(tensors_.size());
    for (auto& t : tensors_) {
        if (t.offset > data_size || t.n_bytes > data_size - t.offset)
            fail(data_offset_ + std::min(t.offset, data_size),
                 "tensor '" + t.name + "' data (offset " + std::to_string(t.offset) + ", " + std::to_string(t.n_bytes) +
                     " bytes) runs past the end of the file");
        t.data = bytes_.data() + data_offset_ + t.offset;
        by_offset.push_back(&t);
    }
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const TensorInfo* prev = by_offset[i - 1];
        if (by_offset[i]->offset < prev->offset + prev->n_bytes)
            fail(data_offset_ + by_offset[i]->offset,
                 "tensor '" + by_offset[i]->name + "' data overlaps tensor '" + prev->name + "'");
    }
}

const Value* File::find(std::string_view key) const noexcept {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const Value& File::get(std::string_view key) const {
    if (const Value* v = find(key)) return *v;
    throw Error(Status::BadFile, "gguf: missing key '" + std::string(key) + "'");
}

namespace {
template <typename F>
auto typed(std::string_view key, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const Error& e) {
        throw Error(e.status(), "gguf: key '" + std::string(key) + "': " + e.what());
    }
}
}  // namespace

uint64_t File::get_uint(std::string_view key) const { return typed(key, [&] { return get(key).as_uint(); }); }
int64_t File::get_int(std::string_view key) const { return typed(key, [&] { return get(key).as_int(); }); }
double File::get_float(std::string_view key) const { return typed(key, [&] { return get(key).as_float(); }); }
bool File::get_bool(std::string_view key) const { return typed(key, [&] { return get(key).as_bool(); }); }
const std::string& File::get_string(std::string_view key) const {
    const Value& v = get(key);
    return typed(key, [&]() -> const std::string& { return v.as_string(); });
}

uint64_t File::get_uint(std::string_view key, uint64_t def) const { return has(key) ? get_uint(key) : def; }
double File::get_float(std::string_view key, double def) const { return has(key) ? get_float(key) : def; }
bool File::get_bool(std::string_view key, bool def) const { return has(key) ? get_bool(key) : def; }
std::string File::get_string(std::string_view key, std::string_view def) const {
    return has(key) ? get_string(key) : std::string(def);
}

const TensorInfo* File::find_tensor(std::string_view name) const noexcept {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

bool File::is_mapping() const noexcept { return map_ && map_->is_mapping(); }

}  // namespace ember::gguf
