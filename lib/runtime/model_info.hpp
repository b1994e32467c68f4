// ModelInfo from an already-open file.
#pragma once

#include "ember/model_info.hpp"
#include "gguf/reader.hpp"

namespace ember {
ModelInfo describe_model(const gguf::File& file, const std::string& path);
}
