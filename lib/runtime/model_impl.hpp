// What a Model holds. Immutable after load; sessions share it.
#pragma once

#include <memory>

#include "arch/arch.hpp"
#include "backend/backend.hpp"
#include "ember/model.hpp"
#include "gguf/reader.hpp"

namespace ember::detail {

class ModelImpl {
public:
    ModelImpl(gguf::File f) : file(std::move(f)) {}
    gguf::File file;  // owns the mapping the CPU weights point into
    ModelInfo info;
    std::unique_ptr<backend::Device> device;  // before arch: weights on the device die after the arch
    std::unique_ptr<arch::Architecture> arch;
    std::unique_ptr<Tokenizer> tokenizer;
    int n_threads = 0;
    uint64_t identity = 0;  // a hash of the architecture, the tensors' names, types and shapes, the vocabulary
};

}  // namespace ember::detail
