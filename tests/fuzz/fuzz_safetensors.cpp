// libFuzzer target: arbitrary bytes into the safetensors reader, and the same bytes as an index
// (model.safetensors.index.json). Any outcome but ember::Error or success is a bug; on success every
// tensor's first and last byte is read, to prove the data lies inside the buffer.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ember/error.hpp"
#include "safetensors/reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    size_t sink = 0;
    try {
        const auto f = ember::safetensors::File::parse({data, size});
        for (const auto& t : f.tensors()) {
            if (t.n_bytes) sink += t.data[0] + t.data[t.n_bytes - 1];
            sink += f.find(t.name) == &t;
            sink += t.ne().size() + ember::safetensors::dtype_size(t.dtype);
        }
        for (const auto& [k, v] : f.metadata()) sink += k.size() + v.size();
    } catch (const ember::Error&) {
    }
    try {
        const auto index = ember::safetensors::Index::parse({reinterpret_cast<const char*>(data), size});
        sink += index.shards().size() + index.metadata.size();
    } catch (const ember::Error&) {
    }
    return static_cast<int>(sink & 0);
}
