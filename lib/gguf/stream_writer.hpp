// A GGUF v3 file written as it goes: the header first (every tensor's name, type, shape and size known
// up front), then each tensor's bytes in the same order. Nothing is held in memory, so a model of any size
// can be written (the in-memory Writer in writer.hpp suits small files and tests). The bytes go to a
// temporary file beside the destination, renamed into place by commit(): an error, a cancellation or a
// crash never leaves a partial file under the destination's name.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "gguf/value.hpp"
#include "tensor/types.hpp"

namespace ember::gguf {

struct TensorHeader {
    std::string name;
    tensor::TensorType type;
    std::vector<int64_t> shape;  // ne[0] (row length) first, 1 to 4 dimensions
    uint64_t n_bytes = 0;
};

class StreamWriter {
public:
    // Creates the temporary file. Throws ember::Error(Io) when `dest` is a directory or its folder is missing
    // or not writable.
    explicit StreamWriter(const std::string& dest);
    ~StreamWriter();  // removes the temporary file unless committed
    StreamWriter(const StreamWriter&) = delete;
    StreamWriter& operator=(const StreamWriter&) = delete;

    // Magic, version, the keys in order and the tensor infos, padded to `alignment` (a power of two; a value
    // other than 32 must also be in `kv` as general.alignment for readers to find the data).
    void header(const std::vector<std::pair<std::string, Value>>& kv, const std::vector<TensorHeader>& tensors,
                uint32_t alignment);
    // The next tensor's bytes, in one call or several; end_tensor() checks the size and pads.
    void data(const void* p, size_t n);
    void end_tensor();

    uint64_t written() const noexcept { return written_; }
    // Checks every tensor was written, flushes to disk and renames onto the destination.
    void commit();

    // The sink interface put_value_body (writer.hpp) writes through.
    void raw(const void* p, size_t n);
    template <typename T>
    void put(T v) { raw(&v, sizeof v); }
    void str(const std::string& s) {
        put<uint64_t>(s.size());
        raw(s.data(), s.size());
    }

private:
    void pad();

    std::string dest_, path_;
    FILE* f_ = nullptr;
    uint64_t written_ = 0;
    uint32_t alignment_ = 32;
    std::vector<uint64_t> sizes_;  // each tensor's byte size, in order
    size_t next_ = 0;              // the tensor being written
    uint64_t in_tensor_ = 0;       // its bytes so far
    bool done_ = false;
};

}  // namespace ember::gguf
