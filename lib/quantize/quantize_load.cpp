// ModelParams::quantize: a model quantized in memory as it loads, with the same per-tensor types, bytes,
// order and keys ember-quantize would write for it (plan.hpp), so it runs exactly as that file does.
#include <algorithm>
#include <memory>

#include "ember/error.hpp"
#include "quantize/plan.hpp"
#include "util/host_memory.hpp"

namespace ember::quantize {

namespace {
// What the quantized File points into: the converted tensors' buffers, and the source for the others.
struct Held {
    gguf::File source;
    std::vector<std::unique_ptr<uint8_t[]>> buffers;
};
}  // namespace

Plan plan_load(const gguf::File& f, const std::string& type, bool from_folder) {
    QuantizeParams qp;
    qp.type = type;
    qp.allow_requantize = true;  // refused below, in the words of a load
    Plan p = plan(f, qp, from_folder);
    for (size_t i = 0; i < p.order.size(); ++i)
        if (p.types[i] != p.order[i]->type && tensor::info(p.order[i]->type).quantized)
            throw Error(Status::InvalidArgument, "quantize at load: tensor '" + p.order[i]->name + "' is already " +
                                                     tensor::type_name(p.order[i]->type) + " (F32, F16 and BF16 weights are "
                                                     "quantized at load; ember-quantize --allow-requantize re-quantizes)");
    return p;
}

gguf::File quantize_in_memory(gguf::File f, const std::string& type, int n_threads, bool from_folder,
                              const std::function<bool(float)>& progress) {
    Plan p = plan_load(f, type, from_folder);
    const QuantizeResult& res = p.result;
    n_threads = resolve_threads(n_threads);

    // Refused before any work when the new tensors cannot fit beside what the process already holds.
    uint64_t new_bytes = 0;
    for (size_t i = 0; i < p.order.size(); ++i)
        if (p.types[i] != p.order[i]->type) new_bytes += res.tensors[i].bytes_out;
    const uint64_t available = host_memory_available();
    if (new_bytes > available)
        throw Error(Status::OutOfMemory, "quantize at load: the " + std::string(res.type) + " tensors need " +
                                             std::to_string(new_bytes >> 20) + " MiB but " + std::to_string(available >> 20) +
                                             " MiB are available");

    std::vector<std::unique_ptr<uint8_t[]>> buffers;
    std::vector<gguf::TensorInfo> tensors;
    tensors.reserve(p.order.size());
    const double total = std::max<double>(1.0, static_cast<double>(res.tensor_bytes_in));
    uint64_t done = 0;
    auto report = [&](uint64_t d) {
        if (progress && !progress(static_cast<float>(static_cast<double>(d) / total)))
            throw Error(Status::Cancelled, "model loading cancelled by the progress callback");
    };
    report(0);
    for (size_t i = 0; i < p.order.size(); ++i) {
        const gguf::TensorInfo& t = *p.order[i];
        const QuantizedTensor& q = res.tensors[i];
        gguf::TensorInfo o;
        o.name = t.name;
        o.type = p.types[i];
        o.n_dims = static_cast<int>(q.shape.size());
        o.ne = t.ne;
        o.data = t.data;
        if (o.type != t.type) {
            // One tensor at a time: an allocation that fails is OutOfMemory, never an abort.
            std::unique_ptr<uint8_t[]> buf;
            try {
                buf = std::make_unique_for_overwrite<uint8_t[]>(std::max<size_t>(q.bytes_out, 1));
            } catch (const std::bad_alloc&) {
                throw Error(Status::OutOfMemory, "quantize at load: no memory for tensor '" + t.name + "' (" +
                                                     std::to_string(q.bytes_out >> 20) + " MiB)");
            }
            uint8_t* dst = buf.get();
            const size_t in_row = tensor::row_bytes(t.type, t.ne[0]), out_row = tensor::row_bytes(o.type, t.ne[0]);
            convert_tensor(
                t, o.type, n_threads, [&](int64_t r0, int64_t) { return dst + static_cast<size_t>(r0) * out_row; },
                [&](int64_t, int64_t r1) { report(done + static_cast<uint64_t>(r1) * in_row); });
            o.data = dst;
            buffers.push_back(std::move(buf));
        }
        done += t.n_bytes;
        report(done);
        tensors.push_back(std::move(o));
    }
    auto kv = output_metadata(f, *p.mix);
    // The tensors kept as they were still point into f's storage, which moves with it.
    auto held = std::make_shared<Held>(Held{std::move(f), std::move(buffers)});
    return gguf::File::assemble(std::move(kv), std::move(tensors), std::move(held));
}

}  // namespace ember::quantize
