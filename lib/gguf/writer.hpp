// GGUF v3 writer: metadata + tensors, laid out with the requested alignment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/value.hpp"
#include "tensor/types.hpp"

namespace ember::gguf {

class Writer {
public:
    explicit Writer(uint32_t alignment = 32);

    // Sets (or replaces) a key. "general.alignment" is written from the constructor's value.
    void set(const std::string& key, Value v);
    // Adds a tensor; `data` must hold exactly the tensor's byte size and is copied.
    void add_tensor(const std::string& name, tensor::TensorType type, const std::vector<int64_t>& shape,
                    const void* data, size_t n_bytes);

    std::vector<uint8_t> to_bytes() const;
    void write(const std::string& path) const;  // throws ember::Error(Io)

private:
    struct Tensor {
        std::string name;
        tensor::TensorType type;
        std::vector<int64_t> shape;
        std::vector<uint8_t> data;
    };
    uint32_t alignment_;
    std::vector<std::pair<std::string, Value>> kv_;
    std::vector<Tensor> tensors_;
};

}  // namespace ember::gguf
