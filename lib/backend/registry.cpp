#include <algorithm>
#include <mutex>

#include "backend/backend.hpp"
#include "ember/error.hpp"
#include "ember/library.hpp"
#include "util/log.hpp"

namespace ember::backend {

// Backends built into this library register themselves here (one line per plugin).
void register_builtin_backends();

namespace {
std::mutex g_mutex;
std::vector<BackendInfo>& registry() {
    static std::vector<BackendInfo> r;
    return r;
}
void ensure_builtin() {
    static std::once_flag once;
    std::call_once(once, [] { register_builtin_backends(); });
}
}  // namespace

void register_backend(BackendInfo info) {
    if (info.api_version != kApiVersion)
        throw Error(Status::Unsupported, "backend '" + info.name + "' was built for backend API " +
                                             std::to_string(info.api_version) + ", this library speaks " +
                                             std::to_string(kApiVersion));
    std::lock_guard lock(g_mutex);
    auto& r = registry();
    r.erase(std::remove_if(r.begin(), r.end(), [&](const BackendInfo& b) { return b.name == info.name; }), r.end());
    r.push_back(std::move(info));
}

std::vector<std::string> available_backends() {
    ensure_builtin();
    std::lock_guard lock(g_mutex);
    std::vector<std::pair<int, std::string>> usable;
    for (const auto& b : registry())
        if (int s = b.score(); s >= 0) usable.emplace_back(s, b.name);
    std::stable_sort(usable.begin(), usable.end(), [](auto& a, auto& b) { return a.first > b.first; });
    std::vector<std::string> names;
    for (auto& [_, n] : usable) names.push_back(n);
    return names;
}

std::unique_ptr<Device> create_device(const std::string& name) {
    const auto usable = available_backends();
    std::string want = name;
    if (want.empty() || want == "auto") {
        if (usable.empty()) throw Error(Status::Unsupported, "no usable backend on this machine");
        want = usable.front();
        detail::log(LogLevel::Info, "backend \"auto\" chose \"" + want + "\"");
    }
    std::function<std::unique_ptr<Device>()> create;
    {
        std::lock_guard lock(g_mutex);
        for (const auto& b : registry())
            if (b.name == want) create = b.create;
    }
    if (!create) throw Error(Status::Unsupported, "unknown backend '" + want + "'");
    if (std::find(usable.begin(), usable.end(), want) == usable.end())
        throw Error(Status::Unsupported, "backend '" + want + "' is not usable on this machine");
    return create();
}

}  // namespace ember::backend

namespace ember {

std::vector<std::string> backends() {
    backend::ensure_builtin();
    std::lock_guard lock(backend::g_mutex);
    std::vector<std::string> names;
    for (const auto& b : backend::registry()) names.push_back(b.name);
    std::stable_partition(names.begin(), names.end(), [](const std::string& n) { return n == "cpu"; });
    return names;
}

}  // namespace ember
