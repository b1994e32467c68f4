// What an Adapter holds: its tensors on the model's device, per layer and projection. Immutable after load.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "arch/lora.hpp"
#include "backend/backend.hpp"
#include "ember/model.hpp"

namespace ember::detail {

class AdapterImpl {
public:
    explicit AdapterImpl(Model m) : model(std::move(m)) {}
    Model model;  // first: the device outlives the buffers below
    std::string path;
    float alpha = 0.f;
    int n_targets = 0;
    std::vector<std::unique_ptr<backend::Buffer>> buffers;
    arch::LoraWeights weights;
};

}  // namespace ember::detail
