#include "safetensors/reader.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

#include "ember/error.hpp"
#include "util/mapped_file.hpp"

namespace ember::safetensors {

namespace {

[[noreturn]] void fail(const std::string& what) { throw Error(Status::BadFile, "safetensors: " + what); }

struct DtypeInfo {
    Dtype dtype;
    const char* name;
    uint8_t size;
};
constexpr std::array<DtypeInfo, 19> kDtypes = {{
    {Dtype::BOOL, "BOOL", 1},   {Dtype::U8, "U8", 1},     {Dtype::I8, "I8", 1},
    {Dtype::F8_E5M2, "F8_E5M2", 1}, {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::F8_E8M0, "F8_E8M0", 1},
    {Dtype::F8_E4M3FNUZ, "F8_E4M3FNUZ", 1}, {Dtype::F8_E5M2FNUZ, "F8_E5M2FNUZ", 1},
    {Dtype::I16, "I16", 2},     {Dtype::U16, "U16", 2},   {Dtype::F16, "F16", 2},
    {Dtype::BF16, "BF16", 2},   {Dtype::I32, "I32", 4},   {Dtype::U32, "U32", 4},
    {Dtype::F32, "F32", 4},     {Dtype::C64, "C64", 8},   {Dtype::F64, "F64", 8},
    {Dtype::I64, "I64", 8},     {Dtype::U64, "U64", 8},
}};

// Error messages quote text from the file: keep it printable ASCII and short.
std::string printable(std::string_view s) {
    std::string o;
    for (size_t i = 0; i < s.size() && i < 200; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        o += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
    }
    return s.size() > 200 ? o + "..." : o;
}
std::string in_quotes(std::string_view s) { return "'" + printable(s) + "'"; }

using json = nlohmann::json;

// The SAX events of nlohmann-json, with the parts every reader here shares: any parse error becomes
// BadFile; values under a key nobody reads are skipped (depth counted, nothing kept), so memory stays
// proportional to what is used and nesting costs nothing.
class Sax : public nlohmann::json_sax<json> {
public:
    explicit Sax(const char* what) : what_(what) {}

    // Runs the parser over text (errors throw). nlohmann-json takes a NUL byte for the end of the input,
    // which would let anything follow one; JSON has no place for a raw NUL, so one is an error here.
    void run(std::string_view text) {
        if (const auto nul = text.find('\0'); nul != std::string_view::npos)
            fail(std::string(what_) + " is not valid JSON (at byte " + std::to_string(nul) + "): a NUL byte");
        (void)json::sax_parse(text.data(), text.data() + text.size(), this, json::input_format_t::json, true);
    }

    bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& ex) override {
        // ex.what() is "[json.exception...] parse error at line L, column C: why; last read: ..."; keep the why
        // and what follows (the bytes it quotes made printable).
        std::string_view why = ex.what();
        if (const auto at = why.find(": ", why.find("parse error")); at != std::string_view::npos) why.remove_prefix(at + 2);
        fail(std::string(what_) + " is not valid JSON (at byte " + std::to_string(position > 0 ? position - 1 : 0) +
             "): " + printable(why));
    }
    bool binary(binary_t&) override { fail(std::string(what_) + ": unexpected binary value"); }

    bool null() override { return skip_ ? true : scalar(Kind::Null, 0, {}); }
    bool boolean(bool v) override { return skip_ ? true : scalar(Kind::Bool, v, {}); }
    bool number_integer(number_integer_t v) override {
        return skip_ ? true : scalar(v < 0 ? Kind::Negative : Kind::Unsigned, static_cast<uint64_t>(v), {});
    }
    bool number_unsigned(number_unsigned_t v) override { return skip_ ? true : scalar(Kind::Unsigned, v, {}); }
    bool number_float(number_float_t, const string_t& s) override { return skip_ ? true : scalar(Kind::Float, 0, s); }
    bool string(string_t& s) override { return skip_ ? true : scalar(Kind::String, 0, std::move(s)); }
    bool key(string_t& k) override { return skip_ ? true : on_key(std::move(k)); }
    bool start_object(size_t) override { return skip_ ? (++skip_, true) : open(Kind::Object); }
    bool start_array(size_t) override { return skip_ ? (++skip_, true) : open(Kind::Array); }
    bool end_object() override { return skip_ ? (--skip_, true) : close(); }
    bool end_array() override { return skip_ ? (--skip_, true) : close(); }

protected:
    enum class Kind { Null, Bool, Negative, Unsigned, Float, String, Object, Array };
    static const char* kind_name(Kind k) {
        static constexpr const char* names[] = {"null", "a boolean", "a negative number", "a number",
                                                "a non-integer number", "a string", "an object", "an array"};
        return names[static_cast<int>(k)];
    }
    // A scalar value (numbers: an integer's value; Float and String: the text).
    virtual bool scalar(Kind k, uint64_t n, std::string s) = 0;
    virtual bool on_key(std::string k) = 0;
    virtual bool open(Kind k) = 0;  // object or array; may call skip() to ignore what it holds
    virtual bool close() = 0;
    void skip() { skip_ = 1; }

    const char* what_;

private:
    uint64_t skip_ = 0;
};

// The header: {"__metadata__": {str: str}, name: {"dtype": str, "shape": [uint...], "data_offsets": [b, e]}}.
// Unknown fields in a tensor are ignored (as serde does); a field given twice is an error.
class HeaderSax final : public Sax {
public:
    HeaderSax() : Sax("header") {}
    std::vector<TensorInfo> tensors;
    std::vector<std::array<uint64_t, 2>> offsets;  // data_offsets, parallel to tensors
    std::vector<std::pair<std::string, std::string>> meta;

private:
    enum class In { Start, Top, Meta, Tensor, Shape, Offsets, Done };
    enum Field : unsigned { None = 0, DtypeF = 1, ShapeF = 2, OffsetsF = 4, Other = 8 };
    In in_ = In::Start;
    std::string key_;
    Field field_ = None;
    unsigned seen_ = 0;
    size_t n_offsets_ = 0;
    bool have_meta_ = false;

    std::string tensor() const { return "tensor " + in_quotes(tensors.back().name); }

    bool scalar(Kind k, uint64_t n, std::string s) override {
        switch (in_) {
            case In::Start: fail("header is not a JSON object");
            case In::Top:
                if (key_ == "__metadata__" && k == Kind::Null) return true;  // serde reads null as no metadata
                fail((key_ == "__metadata__" ? std::string("__metadata__") : "tensor " + in_quotes(key_)) +
                     " is not an object (found " + kind_name(k) + ")");
            case In::Meta:
                if (k != Kind::String)
                    fail("__metadata__ value for " + in_quotes(key_) + " is not a string (found " + kind_name(k) + ")");
                meta.emplace_back(std::move(key_), std::move(s));
                return true;
            case In::Tensor:
                if (field_ == Other) return true;
                if (field_ != DtypeF || k != Kind::String)
                    fail(tensor() + ": " + field_name() + " is " + kind_name(k));
                {
                    auto d = dtype_from_name(s);
                    if (!d) {
                        const bool known = s == "F4" || s == "F6_E2M3" || s == "F6_E3M2";
                        throw Error(known ? Status::Unsupported : Status::BadFile,
                                    "safetensors: " + tensor() + " has " + (known ? "unsupported" : "unknown") +
                                        " dtype " + in_quotes(s));
                    }
                    tensors.back().dtype = *d;
                }
                return true;
            case In::Shape:
                if (k != Kind::Unsigned)
                    fail(tensor() + ": shape holds " + kind_name(k) + " (dimensions are non-negative integers)");
                if (tensors.back().shape.size() >= kMaxDims)
                    fail(tensor() + " has more than " + std::to_string(kMaxDims) + " dimensions");
                if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                    fail(tensor() + " has dimension " + std::to_string(n) + ", too large");
                tensors.back().shape.push_back(static_cast<int64_t>(n));
                return true;
            case In::Offsets:
                if (k != Kind::Unsigned)
                    fail(tensor() + ": data_offsets holds " + kind_name(k) + " (offsets are non-negative integers)");
                if (n_offsets_ >= 2) fail(tensor() + ": data_offsets has more than two entries");
                offsets.back()[n_offsets_++] = n;
                return true;
            case In::Done: break;
        }
        fail("unexpected value");
    }

    const char* field_name() const {
        return field_ == DtypeF ? "dtype" : field_ == ShapeF ? "shape" : "data_offsets";
    }

    bool on_key(std::string k) override {
        if (in_ == In::Tensor) {
            field_ = k == "dtype" ? DtypeF : k == "shape" ? ShapeF : k == "data_offsets" ? OffsetsF : Other;
            if (field_ != Other && (seen_ & field_)) fail(tensor() + ": field " + field_name() + " given twice");
            seen_ |= field_;
        } else {
            key_ = std::move(k);
        }
        return true;
    }

    bool open(Kind k) override {
        switch (in_) {
            case In::Start:
                if (k != Kind::Object) fail("header is not a JSON object (found " + std::string(kind_name(k)) + ")");
                in_ = In::Top;
                return true;
            case In::Top:
                if (k != Kind::Object) return scalar(k, 0, {});  // the same message as a scalar there
                if (key_ == "__metadata__") {
                    if (have_meta_) fail("__metadata__ given twice");
                    have_meta_ = true;
                    in_ = In::Meta;
                } else {
                    tensors.emplace_back().name = std::move(key_);
                    offsets.push_back({0, 0});
                    in_ = In::Tensor;
                    seen_ = 0;
                    field_ = None;
                }
                return true;
            case In::Meta: return scalar(k, 0, {});
            case In::Tensor:
                if (field_ == Other) {
                    skip();
                    return true;
                }
                if (k == Kind::Object || field_ == DtypeF) fail(tensor() + ": " + field_name() + " is " + kind_name(k));
                if (field_ == ShapeF) in_ = In::Shape;
                else {
                    in_ = In::Offsets;
                    n_offsets_ = 0;
                }
                return true;
            case In::Shape:
            case In::Offsets: return scalar(k, 0, {});
            case In::Done: break;
        }
        fail("unexpected value");
    }

    bool close() override {
        switch (in_) {
            case In::Top: in_ = In::Done; return true;
            case In::Meta: in_ = In::Top; return true;
            case In::Tensor:
                for (Field f : {DtypeF, ShapeF, OffsetsF})
                    if (!(seen_ & f)) {
                        field_ = f;
                        fail(tensor() + " has no " + field_name());
                    }
                in_ = In::Top;
                return true;
            case In::Shape: in_ = In::Tensor; return true;
            case In::Offsets:
                if (n_offsets_ != 2) fail(tensor() + ": data_offsets has " + std::to_string(n_offsets_) + " entries, not 2");
                in_ = In::Tensor;
                return true;
            default: break;
        }
        fail("unexpected end of a container");
    }
};

// A shard name from the weight_map: a plain file name in the folder, nothing that could lead out of it.
void check_shard_name(const std::string& name) {
    if (name.empty() || name == "." || name == ".." || name.find_first_of(std::string_view("/\\\0:", 4)) != std::string::npos)
        fail("index: shard " + in_quotes(name) + " is not a plain file name in the folder");
}

// The index: {"metadata": {k: scalar}, "weight_map": {tensor: file}}; other top-level keys are ignored.
class IndexSax final : public Sax {
public:
    explicit IndexSax(Index& out) : Sax("index"), out_(out) {}

private:
    enum class In { Start, Top, Meta, Map, Done };
    In in_ = In::Start;
    std::string key_;
    bool have_meta_ = false, have_map_ = false;
    Index& out_;

    bool scalar(Kind k, uint64_t n, std::string s) override {
        switch (in_) {
            case In::Start: fail("index is not a JSON object");
            case In::Top:
                if (key_ == "weight_map" || (key_ == "metadata" && k != Kind::Null))
                    fail("index: " + key_ + " is not an object (found " + kind_name(k) + ")");
                return true;
            case In::Meta:
                if (k == Kind::Bool) s = n ? "true" : "false";
                else if (k == Kind::Unsigned) s = std::to_string(n);
                else if (k == Kind::Negative) s = std::to_string(static_cast<int64_t>(n));
                else if (k == Kind::Null) s = "null";
                out_.metadata.emplace_back(std::move(key_), std::move(s));
                return true;
            case In::Map:
                if (k != Kind::String)
                    fail("index: weight_map entry for " + in_quotes(key_) + " is not a file name (found " + kind_name(k) + ")");
                check_shard_name(s);
                out_.weight_map.emplace_back(std::move(key_), std::move(s));
                return true;
            case In::Done: break;
        }
        fail("unexpected value");
    }
    bool on_key(std::string k) override {
        key_ = std::move(k);
        return true;
    }
    bool open(Kind k) override {
        switch (in_) {
            case In::Start:
                if (k != Kind::Object) fail("index is not a JSON object (found " + std::string(kind_name(k)) + ")");
                in_ = In::Top;
                return true;
            case In::Top:
                if (key_ != "metadata" && key_ != "weight_map") break;  // skipped
                if (k != Kind::Object) return scalar(k, 0, {});
                if (key_ == "metadata") {
                    if (have_meta_) fail("index: metadata given twice");
                    have_meta_ = true;
                    in_ = In::Meta;
                } else {
                    if (have_map_) fail("index: weight_map given twice");
                    have_map_ = true;
                    in_ = In::Map;
                }
                return true;
            case In::Meta: break;  // nested metadata: left out
            case In::Map: return scalar(k, 0, {});
            case In::Done: fail("unexpected value");
        }
        skip();
        return true;
    }
    bool close() override {
        in_ = in_ == In::Top ? In::Done : In::Top;
        return true;
    }

public:
    void finish() const {
        if (!have_map_) fail("index has no weight_map");
    }
};

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

const char* dtype_name(Dtype d) noexcept { return kDtypes[static_cast<size_t>(d)].name; }
size_t dtype_size(Dtype d) noexcept { return kDtypes[static_cast<size_t>(d)].size; }

std::optional<Dtype> dtype_from_name(std::string_view name) noexcept {
    for (const auto& d : kDtypes)
        if (name == d.name) return d.dtype;
    return std::nullopt;
}

std::optional<tensor::TensorType> tensor_type(Dtype d) noexcept {
    switch (d) {
        case Dtype::F32: return tensor::TensorType::F32;
        case Dtype::F16: return tensor::TensorType::F16;
        case Dtype::BF16: return tensor::TensorType::BF16;
        default: return std::nullopt;
    }
}

File File::open(const std::string& path, bool use_mmap) {
    File f;
    f.map_ = std::make_shared<MappedFile>(path, use_mmap);
    f.bytes_ = f.map_->bytes();
    f.path_ = path;
    try {
        f.parse_all();
    } catch (const Error& e) {
        throw Error(e.status(), path + ": " + e.what());
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
    if (bytes_.size() < 8)
        fail("file too small to hold a header length (" + std::to_string(bytes_.size()) + " bytes)");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | bytes_[static_cast<size_t>(i)];  // little-endian on any host
    if (n > kMaxHeaderSize)
        fail("header length " + std::to_string(n) + " is over the limit of " + std::to_string(kMaxHeaderSize) + " bytes");
    if (n > bytes_.size() - 8)
        fail("header length " + std::to_string(n) + " runs past the end of the file (" +
             std::to_string(bytes_.size() - 8) + " bytes after the length)");
    if (n == 0) fail("header is empty");
    header_size_ = n;

    HeaderSax sax;
    sax.run({reinterpret_cast<const char*>(bytes_.data() + 8), n});
    tensors_ = std::move(sax.tensors);
    meta_ = std::move(sax.meta);

    // Shapes against offsets, before the order: a wrong size is the clearer message.
    for (size_t i = 0; i < tensors_.size(); ++i) {
        TensorInfo& t = tensors_[i];
        const auto [begin, end] = sax.offsets[i];
        // Zero dimensions leave no elements, but the others must still be sane.
        uint64_t el = 1, nonzero = 1;
        for (int64_t d : t.shape) {
            if (d != 0 && mul_overflows(nonzero, static_cast<uint64_t>(d), &nonzero))
                fail("tensor " + in_quotes(t.name) + " has a shape whose element count overflows");
            el *= static_cast<uint64_t>(d);
        }
        if (nonzero > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
            fail("tensor " + in_quotes(t.name) + " has a shape whose element count overflows");
        t.n_elements = el;
        if (mul_overflows(el, dtype_size(t.dtype), &t.n_bytes))
            fail("tensor " + in_quotes(t.name) + " byte size overflows");
        if (end < begin)
            fail("tensor " + in_quotes(t.name) + " data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                 "] end before they begin");
        if (end - begin != t.n_bytes)
            fail("tensor " + in_quotes(t.name) + " data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                 "] hold " + std::to_string(end - begin) + " bytes, but " + std::to_string(t.n_elements) + " " +
                 dtype_name(t.dtype) + " elements take " + std::to_string(t.n_bytes));
        t.offset = begin;
    }

    // File order; then the index (the vector no longer moves), which finds duplicate names.
    std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
        return a.offset != b.offset ? a.offset < b.offset : a.n_bytes != b.n_bytes ? a.n_bytes < b.n_bytes : a.name < b.name;
    });
    index_.reserve(tensors_.size());
    for (size_t i = 0; i < tensors_.size(); ++i)
        if (!index_.emplace(tensors_[i].name, i).second) fail("duplicate tensor name " + in_quotes(tensors_[i].name));

    // The tensors tile the data area exactly, as the safetensors crate demands: no overlap, no hole, nothing after.
    const uint64_t data_size = bytes_.size() - data_offset();
    uint64_t expected = 0;
    for (size_t i = 0; i < tensors_.size(); ++i) {
        TensorInfo& t = tensors_[i];
        if (t.offset > data_size || t.n_bytes > data_size - t.offset)
            fail("tensor " + in_quotes(t.name) + " data (offset " + std::to_string(t.offset) + ", " +
                 std::to_string(t.n_bytes) + " bytes) is outside the data area of " + std::to_string(data_size) + " bytes");
        if (t.offset < expected)
            fail("tensor " + in_quotes(t.name) + " data overlaps tensor " + in_quotes(tensors_[i - 1].name));
        if (t.offset > expected)
            fail("a hole of " + std::to_string(t.offset - expected) + " bytes before tensor " + in_quotes(t.name) +
                 " (tensors must cover the data area exactly)");
        t.data = bytes_.data() + data_offset() + t.offset;
        expected = t.offset + t.n_bytes;
    }
    if (expected != data_size)
        fail(std::to_string(data_size - expected) + " bytes after the last tensor's data (tensors must cover the data area exactly)");

    std::map<std::string_view, int> seen;
    for (const auto& [k, v] : meta_)
        if (++seen[k] > 1) fail("duplicate __metadata__ key " + in_quotes(k));
}

const TensorInfo* File::find(std::string_view name) const noexcept {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

const std::string* File::find_metadata(std::string_view key) const noexcept {
    for (const auto& [k, v] : meta_)
        if (k == key) return &v;
    return nullptr;
}

Index Index::parse(std::string_view text) {
    Index out;
    IndexSax sax(out);
    sax.run(text);
    sax.finish();
    std::unordered_map<std::string_view, int> seen;
    seen.reserve(out.weight_map.size());
    for (const auto& [tensor, file] : out.weight_map)
        if (++seen[tensor] > 1) fail("index: tensor " + in_quotes(tensor) + " listed twice in weight_map");
    return out;
}

std::vector<std::string> Index::shards() const {
    std::vector<std::string> s;
    for (const auto& [tensor, file] : weight_map) s.push_back(file);
    std::sort(s.begin(), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
    return s;
}

Folder Folder::open(const std::string& dir, bool use_mmap) {
    namespace fs = std::filesystem;
    const fs::path root(dir);
    const fs::path index_path = root / "model.safetensors.index.json";
    const fs::path single = root / "model.safetensors";
    std::error_code ec;
    Folder f;
    if (fs::exists(index_path, ec)) {
        Index index;
        {
            const MappedFile text(index_path.string(), use_mmap);
            if (text.bytes().size() > kMaxHeaderSize)
                throw Error(Status::BadFile, index_path.string() + ": index of " + std::to_string(text.bytes().size()) +
                                                 " bytes is over the limit of " + std::to_string(kMaxHeaderSize));
            try {
                index = Index::parse({reinterpret_cast<const char*>(text.bytes().data()), text.bytes().size()});
            } catch (const Error& e) {
                throw Error(e.status(), index_path.string() + ": " + e.what());
            }
        }
        if (index.weight_map.empty()) throw Error(Status::BadFile, index_path.string() + ": weight_map lists no tensors");
        const auto shards = index.shards();
        for (const auto& s : shards) f.files_.push_back(File::open((root / s).string(), use_mmap));
        for (size_t i = 0; i < f.files_.size(); ++i)
            for (const auto& t : f.files_[i].tensors())
                if (!f.index_.emplace(t.name, std::make_pair(i, &t)).second)
                    throw Error(Status::BadFile, index_path.string() + ": tensor " + in_quotes(t.name) + " is in two shards, " +
                                                     in_quotes(shards[f.index_[t.name].first]) + " and " + in_quotes(shards[i]));
        // The index and the shards must agree: each listed tensor in its shard, no tensor unlisted.
        for (const auto& [tensor, file] : index.weight_map) {
            auto it = f.index_.find(tensor);
            if (it == f.index_.end() || shards[it->second.first] != file)
                throw Error(Status::BadFile, index_path.string() + ": tensor " + in_quotes(tensor) + " is not in its shard " +
                                                 in_quotes(file));
        }
        if (f.index_.size() != index.weight_map.size())
            throw Error(Status::BadFile, index_path.string() + ": " + std::to_string(f.index_.size() - index.weight_map.size()) +
                                             " tensors in the shards are not in weight_map");
        f.meta_ = std::move(index.metadata);
    } else if (fs::exists(single, ec)) {
        f.files_.push_back(File::open(single.string(), use_mmap));
        for (const auto& t : f.files_[0].tensors()) f.index_.emplace(t.name, std::make_pair(size_t{0}, &t));
        f.meta_ = f.files_[0].metadata();
    } else {
        throw Error(Status::Io, "'" + dir + "' holds neither model.safetensors.index.json nor model.safetensors");
    }
    return f;
}

std::vector<const TensorInfo*> Folder::tensors() const {
    std::vector<const TensorInfo*> out;
    for (const auto& file : files_)
        for (const auto& t : file.tensors()) out.push_back(&t);
    return out;
}

const TensorInfo* Folder::find(std::string_view name) const noexcept {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : it->second.second;
}

const File* Folder::file_of(std::string_view name) const noexcept {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &files_[it->second.first];
}

}  // namespace ember::safetensors
