// ember — writing a GGUF file, for programs that make models of their own (ember-make-model): the streamed
// writer ember-quantize and ember-convert write through. Nothing is held beyond what the caller passes at a
// time, so a model of any size can be written; the bytes go to a temporary file beside the destination,
// renamed into place by commit(), so an error never leaves a partial file under the destination's name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ember {

// A metadata value, as the GGUF types a model's keys use: uint32, int32, float32, bool, string, and arrays
// of strings, int32 and float32.
using GgufValue = std::variant<uint32_t, int32_t, float, bool, std::string, std::vector<std::string>, std::vector<int32_t>,
                               std::vector<float>>;

struct GgufTensor {
    std::string name;
    std::string type;             // a tensor type name as ModelInfo::tensor_types spells them: "F32", "Q8_0", ...
    std::vector<int64_t> shape;   // ne[0] (the row length) first; 1 to 4 dimensions
};

class GgufWriter {
public:
    // Creates the temporary file and writes the header: version 3, the keys in order, the tensors' infos.
    // Throws ember::Error: InvalidArgument (an unknown type, a shape the type cannot hold, a duplicate
    // name, an alignment that is not a power of two up to 256), Io (the destination unwritable).
    GgufWriter(const std::string& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
               const std::vector<GgufTensor>& tensors, uint32_t alignment = 32);
    ~GgufWriter();  // without commit(), the temporary file is removed
    GgufWriter(const GgufWriter&) = delete;
    GgufWriter& operator=(const GgufWriter&) = delete;

    // The bytes of the tensors in the header's order, in one call or several each, end_tensor() after each.
    // InvalidArgument when a tensor gets more or fewer bytes than its type and shape make.
    void write(const void* data, size_t n_bytes);
    void end_tensor();
    uint64_t tensor_bytes(size_t i) const;  // the byte size of tensor i (InvalidArgument past the end)
    // Flushes to disk and renames onto the destination (InvalidArgument before every tensor is written).
    void commit();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ember
