// The public API promises ember::Error for every failure: an allocation failure becomes OutOfMemory.
#pragma once

#include <new>
#include <utility>

#include "ember/error.hpp"

namespace ember {

template <typename F>
decltype(auto) as_ember_error(const char* what, F&& f) {
    try {
        return std::forward<F>(f)();
    } catch (const std::bad_alloc&) {
        throw Error(Status::OutOfMemory, std::string(what) + ": out of memory");
    }
}

}  // namespace ember
