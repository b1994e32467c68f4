// GGUF v3 writer: metadata + tensors, laid out with the requested alignment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/value.hpp"
#include "tensor/types.hpp"

namespace ember::gguf {

// Writes one metadata value's body (what follows its type tag) to a sink with put<T>(v), raw(p, n) and
// str(s): the in-memory Writer below and the streaming writer (stream_writer.hpp) share the format this way.
template <typename Sink>
void put_value_body(Sink& o, const Value& v) {
    switch (v.type()) {
        case ValueType::String: o.str(v.as_string()); return;
        case ValueType::Array: {
            const ValueType elem = v.elem_type();
            o.template put<uint32_t>(static_cast<uint32_t>(elem));
            o.template put<uint64_t>(v.size());
            if (elem == ValueType::String) {
                for (const auto& s : v.as_strings()) o.str(s);
            } else if (elem == ValueType::Array) {
                for (const auto& a : v.as_arrays()) put_value_body(o, a);  // no tag: the outer type says it
            } else {
                const auto& p = v.packed();
                o.raw(p.data(), p.size());
            }
            return;
        }
        default: {
            const uint64_t b = v.bits();
            o.raw(&b, scalar_size(v.type()));
        }
    }
}

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
