// ember — errors. Every failure the library can report reaches a C++ caller as ember::Error,
// carrying the same status code the C ABI returns.
#pragma once

#include <stdexcept>
#include <string>

namespace ember {

// Mirrors ember_status in capi/ember.h; the numbers are part of the ABI.
enum class Status : int {
    Ok = 0,
    InvalidArgument = 1,
    BadFile = 2,
    Unsupported = 3,
    OutOfMemory = 4,
    ContextFull = 5,
    Cancelled = 6,
    Backend = 7,
    Internal = 8,
    Io = 9,
    BufferTooSmall = 10,  // C ABI: the caller's buffer cannot hold the result (its size was reported)
    NotFound = 11,        // a metadata key, a token text... that is not there
    Callback = 12,        // a caller's callback reported an error (the C ABI's streaming callback)
};

const char* status_name(Status s) noexcept;

class Error : public std::runtime_error {
public:
    Error(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    Status status() const noexcept { return status_; }

private:
    Status status_;
};

}  // namespace ember
