// safetensors reader (Hugging Face's weight format) and the model folders that hold it: one
// model.safetensors, or shards named by model.safetensors.index.json.
// A file is an 8-byte little-endian header length N, N bytes of JSON, then the data area; each tensor's
// data_offsets are relative to that area. Everything is validated before anyone sees it, as the safetensors
// crate does: a hostile file gets an ember::Error naming the problem, never a crash. Tensor data stays in
// the memory mapping; no copies.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tensor/types.hpp"

namespace ember {
class MappedFile;
}

namespace ember::safetensors {

constexpr uint64_t kMaxHeaderSize = 100'000'000;  // the safetensors crate's limit
constexpr size_t kMaxDims = 16;                    // no model comes near; keeps a hostile shape small

// The element types, by their names in the header. Sub-byte types (F4, F6_*) are refused as Unsupported.
enum class Dtype : uint8_t {
    BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
    I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64,
};
const char* dtype_name(Dtype d) noexcept;
size_t dtype_size(Dtype d) noexcept;  // bytes per element
std::optional<Dtype> dtype_from_name(std::string_view name) noexcept;
// ember's type for F32, F16 and BF16; the others are raw bytes to ember (nullopt).
std::optional<tensor::TensorType> tensor_type(Dtype d) noexcept;

struct TensorInfo {
    std::string name;
    Dtype dtype = Dtype::F32;
    // As Hugging Face writes it: row-major, outermost first (a [rows, cols] matrix). GGUF's ne is the
    // reverse: ne() gives that order. Empty for a scalar.
    std::vector<int64_t> shape;
    uint64_t n_elements = 0;
    uint64_t offset = 0;           // data_offsets[0], relative to the data area
    uint64_t n_bytes = 0;
    const uint8_t* data = nullptr;  // inside the mapping; the format does not align it to the dtype

    std::span<const uint8_t> bytes() const noexcept { return {data, n_bytes}; }
    std::vector<int64_t> ne() const { return {shape.rbegin(), shape.rend()}; }  // innermost first
};

class File {
public:
    // Maps (or, without use_mmap, reads) and parses a file. Throws ember::Error (Io, BadFile, Unsupported,
    // OutOfMemory).
    static File open(const std::string& path, bool use_mmap = true);
    // Parses bytes the caller keeps alive for the File's lifetime (tests, fuzzing).
    static File parse(std::span<const uint8_t> bytes);

    const std::string& path() const noexcept { return path_; }
    uint64_t header_size() const noexcept { return header_size_; }  // N: the JSON's bytes
    uint64_t data_offset() const noexcept { return 8 + header_size_; }
    uint64_t file_size() const noexcept { return bytes_.size(); }

    // Tensors in file order: by data offset (ties, zero-size tensors, by name).
    const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }
    const TensorInfo* find(std::string_view name) const noexcept;

    // "__metadata__": string to string, in header order.
    const std::vector<std::pair<std::string, std::string>>& metadata() const noexcept { return meta_; }
    const std::string* find_metadata(std::string_view key) const noexcept;

    File(File&&) noexcept = default;
    File& operator=(File&&) noexcept = default;
    File(const File&) = delete;  // the indexes point into the owned strings
    File& operator=(const File&) = delete;

private:
    File() = default;
    void parse_all();

    std::shared_ptr<MappedFile> map_;
    std::span<const uint8_t> bytes_;
    std::string path_;
    uint64_t header_size_ = 0;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string_view, size_t> index_;
    std::vector<std::pair<std::string, std::string>> meta_;
};

// model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: shard file name}}.
struct Index {
    // "metadata" values as text: strings as they are, numbers and booleans as JSON writes them
    // (total_size is a number); nested values are left out.
    std::vector<std::pair<std::string, std::string>> metadata;
    std::vector<std::pair<std::string, std::string>> weight_map;  // in the index's order
    // Throws BadFile on bad JSON, a duplicate tensor, or a shard name that is not a plain file name.
    static Index parse(std::string_view json);
    std::vector<std::string> shards() const;  // the distinct file names, sorted
};

// A Hugging Face model folder's weights: the shards of model.safetensors.index.json when it is there,
// else model.safetensors.
class Folder {
public:
    // Throws Io when neither file is there, BadFile when the index and the shards disagree (a listed
    // tensor missing from its shard, a shard tensor the index does not list).
    static Folder open(const std::string& dir, bool use_mmap = true);

    const std::vector<File>& files() const noexcept { return files_; }  // shards in name order
    std::vector<const TensorInfo*> tensors() const;                    // shard by shard, in file order
    const TensorInfo* find(std::string_view name) const noexcept;
    const File* file_of(std::string_view name) const noexcept;  // the shard holding a tensor
    const std::vector<std::pair<std::string, std::string>>& metadata() const noexcept { return meta_; }

    Folder(Folder&&) noexcept = default;
    Folder& operator=(Folder&&) noexcept = default;

private:
    Folder() = default;
    std::vector<File> files_;
    std::unordered_map<std::string_view, std::pair<size_t, const TensorInfo*>> index_;  // name -> (file, tensor)
    std::vector<std::pair<std::string, std::string>> meta_;  // the index's metadata, else the file's
};

}  // namespace ember::safetensors
