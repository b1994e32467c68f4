// Session state files: a session's tokens, KV cache rows and last logits, saved so that a killed program
// resumes without re-evaluating. The format is ember's own:
//   "EMBS" | u32 version | u64 model identity | u64 payload bytes | u64 FNV-1a of the payload | payload
// and a file is refused (ember::Error, BadFile) unless every one of those checks out: a truncated,
// corrupted, other-version or other-model file never half-loads.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ember::detail {

constexpr uint32_t kStateVersion = 1;

uint64_t fnv1a(std::span<const uint8_t> bytes, uint64_t h = 0xcbf29ce484222325ull) noexcept;

// Header + payload in one buffer.
std::vector<uint8_t> wrap_state(uint64_t model_identity, std::span<const uint8_t> payload);
// Checks the header against `model_identity` and returns the payload (a view into `file`).
std::span<const uint8_t> unwrap_state(std::span<const uint8_t> file, uint64_t model_identity);

// Writes atomically: a temporary file beside `path`, flushed to disk, then renamed over it.
void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes);

}  // namespace ember::detail
