// libFuzzer target: arbitrary bytes into the GGUF reader. Any outcome but ember::Error or success is a bug;
// on success, every value and tensor is read back to exercise what a loader would touch.
#include <cstddef>
#include <cstdint>

#include "ember/error.hpp"
#include "gguf/reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const auto f = ember::gguf::File::parse({data, size});
        size_t sink = 0;
        for (const auto& [k, v] : f.metadata()) {
            sink += k.size() + v.describe().size();
            if (v.is_array() && v.elem_type() == ember::gguf::ValueType::String) sink += v.as_strings().size();
        }
        for (const auto& t : f.tensors()) {
            const uint8_t* p = t.data;
            if (t.n_bytes) sink += p[0] + p[t.n_bytes - 1];  // first and last byte must be inside the buffer
            sink += f.find_tensor(t.name) == &t;
        }
        (void)f.get_uint("general.alignment", 0);
        return static_cast<int>(sink & 0);
    } catch (const ember::Error&) {
        return 0;
    }
}
