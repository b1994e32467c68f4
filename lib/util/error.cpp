#include "ember/error.hpp"

namespace ember {

const char* status_name(Status s) noexcept {
    switch (s) {
        case Status::Ok: return "ok";
        case Status::InvalidArgument: return "invalid argument";
        case Status::BadFile: return "bad file";
        case Status::Unsupported: return "unsupported";
        case Status::OutOfMemory: return "out of memory";
        case Status::ContextFull: return "context full";
        case Status::Cancelled: return "cancelled";
        case Status::Backend: return "backend error";
        case Status::Internal: return "internal error";
        case Status::Io: return "i/o error";
        case Status::BufferTooSmall: return "buffer too small";
        case Status::NotFound: return "not found";
        case Status::Callback: return "callback error";
    }
    return "unknown status";
}

}  // namespace ember
