// GGUF v2/v3 reader. Validates everything before anyone sees it: a hostile file gets an
// ember::Error(BadFile) naming the problem (and the byte offset where it helps), never a crash.
// Tensor data stays in the memory mapping; no copies.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gguf/value.hpp"
#include "tensor/types.hpp"

namespace ember {
class MappedFile;
}

namespace ember::gguf {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;

struct TensorInfo {
    std::string name;
    tensor::TensorType type;
    int n_dims = 0;
    std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};  // ne[0] is the row length (fastest-varying)
    uint64_t offset = 0;                            // relative to the data section
    uint64_t n_elements = 0;
    uint64_t n_bytes = 0;
    const uint8_t* data = nullptr;                  // inside the mapping
};

class File {
public:
    // Maps (or, without use_mmap, reads) and parses a file. Throws ember::Error (Io, BadFile, OutOfMemory).
    static File open(const std::string& path, bool use_mmap = true);
    // Parses bytes the caller keeps alive for the File's lifetime (tests, fuzzing, embedded models).
    static File parse(std::span<const uint8_t> bytes);
    // Copies bytes into memory the File owns, then parses them; `name` labels errors.
    static File copy_of(std::span<const uint8_t> bytes, const std::string& name);
    // A File put together in memory rather than parsed: a Hugging Face folder read as GGUF's keys and
    // tensors (lib/hf). Each tensor's name, type, n_dims, ne and data are given (n_elements and n_bytes are
    // computed); its bytes live in `keep` for the File's lifetime. Throws BadFile on a duplicate key or
    // tensor name, or a shape the type cannot hold. version() is 0: no GGUF file was read.
    static File assemble(std::vector<std::pair<std::string, Value>> kv, std::vector<TensorInfo> tensors,
                         std::shared_ptr<const void> keep);

    uint32_t version() const noexcept { return version_; }
    uint32_t alignment() const noexcept { return alignment_; }
    uint64_t data_offset() const noexcept { return data_offset_; }
    uint64_t file_size() const noexcept { return bytes_.size(); }
    // Whether the bytes are a read-only mapping of the file (pages may be dropped and read again).
    bool is_mapping() const noexcept;

    // Metadata, in file order.
    const std::vector<std::pair<std::string, Value>>& metadata() const noexcept { return kv_; }
    const Value* find(std::string_view key) const noexcept;
    const Value& get(std::string_view key) const;  // throws BadFile "missing key"
    bool has(std::string_view key) const noexcept { return find(key) != nullptr; }

    // Typed getters: throw BadFile naming the key and both types when the stored type does not fit.
    uint64_t get_uint(std::string_view key) const;
    int64_t get_int(std::string_view key) const;
    double get_float(std::string_view key) const;
    bool get_bool(std::string_view key) const;
    const std::string& get_string(std::string_view key) const;
    // With a default when the key is absent (a present key of the wrong type still throws).
    uint64_t get_uint(std::string_view key, uint64_t def) const;
    double get_float(std::string_view key, double def) const;
    bool get_bool(std::string_view key, bool def) const;
    std::string get_string(std::string_view key, std::string_view def) const;

    // Tensors, in file order.
    const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const noexcept;

    File(File&&) noexcept = default;
    File& operator=(File&&) noexcept = default;
    File(const File&) = delete;  // the indexes point into the owned strings
    File& operator=(const File&) = delete;

private:
    File() = default;
    // Parses what `map` holds and keeps it alive; `name` labels errors.
    static File from_map(std::shared_ptr<MappedFile> map, const std::string& name);
    void parse_all();

    std::shared_ptr<MappedFile> map_;
    std::shared_ptr<const void> keep_;  // an assembled File's tensor bytes
    std::span<const uint8_t> bytes_;
    uint32_t version_ = 0;
    uint32_t alignment_ = kDefaultAlignment;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, Value>> kv_;
    std::unordered_map<std::string_view, size_t> kv_index_;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace ember::gguf
