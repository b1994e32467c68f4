// The CUDA backend: weights copied once into device memory in their GGUF block layout, one cudaStream_t per
// Stream (session), ops as the kernels of ops.cu and matmul.cu. First slice, correctness first: every op
// checks its shapes as the CPU backend does and every CUDA call is checked; a CUDA error becomes
// ember::Error(Backend) with the CUDA error text (OutOfMemory for an allocation that fails).
// It uses device 0 (choose another with CUDA_VISIBLE_DEVICES).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "backend/backend.hpp"
#include "ember/error.hpp"
#include "kernels.hpp"
#include "tensor/types.hpp"
#include "util/host_memory.hpp"
#include "util/log.hpp"

namespace ember::cuda {

using backend::AttentionParams;
using backend::Buffer;
using backend::RopeMode;
using backend::RopeParams;
using backend::SequenceAttention;
using backend::Tensor;

namespace {

constexpr int kDevice = 0;

[[noreturn]] void fail(cudaError_t e, const std::string& what) {
    (void)cudaGetLastError();  // clear a non-sticky error so that the next call is not blamed for it
    throw Error(e == cudaErrorMemoryAllocation ? Status::OutOfMemory : Status::Backend,
                "cuda: " + what + ": " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")");
}
void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) fail(e, what);
}

[[noreturn]] void shape_error(const char* op) {
    throw Error(Status::Internal, std::string("cuda backend: ") + op + ": tensor shapes do not match");
}

float* f32(const Tensor& t) { return static_cast<float*>(t.data); }

class DeviceBuffer final : public Buffer {
public:
    explicit DeviceBuffer(size_t n) : size_(n) {
        const cudaError_t e = cudaMalloc(&data_, std::max<size_t>(n, 256));
        if (e != cudaSuccess) {
            data_ = nullptr;
            fail(e, "cannot allocate " + std::to_string(n) + " bytes of device memory");
        }
    }
    ~DeviceBuffer() override { cudaFree(data_); }  // waits for work still using it
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    void* data() noexcept override { return data_; }
    size_t size() const noexcept override { return size_; }

private:
    void* data_ = nullptr;
    size_t size_;
};

void check_f32(const Tensor& t, const char* op) {
    if (t.type != TensorType::F32) shape_error(op);
}

class CudaStream final : public backend::Stream {
public:
    using Stream::attention;  // the one-sequence form, over the batched one below

    CudaStream() {
        check(cudaSetDevice(kDevice), "cudaSetDevice");
        check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
        const cudaError_t e = cudaEventCreateWithFlags(&staged_, cudaEventDisableTiming);
        if (e != cudaSuccess) {
            cudaStreamDestroy(stream_);
            fail(e, "cudaEventCreate");
        }
    }
    ~CudaStream() override {
        cudaStreamSynchronize(stream_);
        cudaFreeHost(pinned_);
        cudaFree(scratch_);
        cudaEventDestroy(staged_);
        cudaStreamDestroy(stream_);
    }
    CudaStream(const CudaStream&) = delete;
    CudaStream& operator=(const CudaStream&) = delete;

    // Synchronous: the caller may reuse or free src as soon as write returns (a pinned staging buffer can
    // make this asynchronous later; nothing on the decode path writes).
    void write(const Tensor& dst, const void* src, size_t n, size_t offset) override {
        if (n == 0) return;
        check(cudaMemcpyAsync(static_cast<char*>(dst.data) + offset, src, n, cudaMemcpyHostToDevice, stream_), "write");
        check(cudaStreamSynchronize(stream_), "write");
    }
    void read(const Tensor& src, void* dst, size_t n, size_t offset) override {
        if (n > 0)
            check(cudaMemcpyAsync(dst, static_cast<const char*>(src.data) + offset, n, cudaMemcpyDeviceToHost, stream_),
                  "read");
        check(cudaStreamSynchronize(stream_), "read (or an op before it)");
    }
    void sync() override { check(cudaStreamSynchronize(stream_), "sync (or an op before it)"); }

    void get_rows(const Tensor& table, const int32_t* ids, int64_t n, Tensor& out) override {
        if (out.type != TensorType::F32 || out.ne[0] != table.ne[0] || out.n_rows() < n || n < 0) shape_error("get_rows");
        if (!kernel_supports(table.type)) unsupported(table.type, "get_rows");
        const int64_t rows = table.n_rows();
        for (int64_t i = 0; i < n; ++i)
            if (ids[i] < 0 || ids[i] >= rows)
                throw Error(Status::InvalidArgument, "token id " + std::to_string(ids[i]) + " is out of range");
        if (n == 0) return;
        const Staged st = stage(ids, nullptr, n);
        check(cuda::get_rows(table.type, table.data, table.row_bytes(), table.ne[0], st.ids, n, f32(out), stream_),
              "get_rows");
    }

    void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
        const int64_t n = x.ne[0];
        if (w.ne[0] != n || out.ne[0] != n || out.n_rows() != x.n_rows()) shape_error("rms_norm");
        check_f32(x, "rms_norm");
        check_f32(w, "rms_norm");
        check_f32(out, "rms_norm");
        check(cuda::rms_norm(f32(x), f32(w), eps, f32(out), n, x.n_rows(), stream_), "rms_norm");
    }

    void matmul(const Tensor& w, const Tensor& x, Tensor& out) override {
        const int64_t K = w.ne[0], N = w.n_rows(), T = x.n_rows();
        if (x.ne[0] != K || out.ne[0] != N || out.n_rows() != T) shape_error("matmul");
        check_f32(x, "matmul");
        check_f32(out, "matmul");
        if (!kernel_supports(w.type)) unsupported(w.type, "matmul");
        if (K % tensor::info(w.type).block_size) shape_error("matmul");
        check(cuda::matmul(w.type, w.data, w.row_bytes(), f32(x), f32(out), K, N, T, stream_), "matmul");
    }

    void rope(Tensor& x, int head_dim, int pos0, const RopeParams& p) override {
        if (head_dim <= 0 || x.ne[0] % head_dim != 0 || p.n_rot > head_dim || p.n_rot % 2 || p.n_rot < 0) shape_error("rope");
        check_f32(x, "rope");
        const float* factors = p.freq_factors.data ? f32(p.freq_factors) : nullptr;
        if (factors && p.freq_factors.n_elements() < p.n_rot / 2) shape_error("rope");
        if (p.ext_factor != 0.f && p.n_ctx_orig <= 0) shape_error("rope");
        RopeArgs a{};
        a.head_dim = head_dim;
        a.n_rot = p.n_rot;
        a.pos0 = pos0;
        a.n_heads = x.ne[0] / head_dim;
        a.n_tokens = x.n_rows();
        a.row_stride = x.ne[0];
        a.neox = p.mode == RopeMode::NeoX;
        // The float values of the CPU backend's rope (cpu_backend.cpp), computed the same way on the host.
        a.theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
        a.freq_scale = p.freq_scale;
        a.ext_factor = p.ext_factor;
        a.mscale = p.attn_factor;
        if (p.ext_factor != 0.f) {
            auto dim = [&](float beta) {
                const float turns = static_cast<float>(p.n_ctx_orig) / (beta * 2 * 3.14159265358979323846f);
                return static_cast<float>(p.n_rot) * std::log(turns) / (2 * std::log(p.freq_base));
            };
            a.corr_lo = std::max(0.f, std::floor(dim(p.beta_fast)));
            a.corr_hi = std::min(static_cast<float>(p.n_rot - 1), std::ceil(dim(p.beta_slow)));
            a.mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
        }
        a.freq_factors = factors;
        check(cuda::rope(f32(x), a, stream_), "rope");
    }

    void kv_store(const Tensor& k, const Tensor& v, Tensor& k_cache, Tensor& v_cache, int pos0) override {
        const int64_t T = k.n_rows();
        if (k_cache.ne[0] != k.ne[0] || v.ne[0] != v_cache.ne[0] || v.n_rows() < T || pos0 < 0 ||
            pos0 + T > k_cache.n_rows() || pos0 + T > v_cache.n_rows())
            shape_error("kv_store");
        if (k_cache.type != TensorType::F16 || v_cache.type != TensorType::F16) shape_error("kv_store");
        check_f32(k, "kv_store");
        check_f32(v, "kv_store");
        check(store_f16(f32(k), k.ne[0], T, static_cast<uint16_t*>(k_cache.data), k_cache.ne[0], pos0, stream_), "kv_store");
        check(store_f16(f32(v), v.ne[0], T, static_cast<uint16_t*>(v_cache.data), v_cache.ne[0], pos0, stream_), "kv_store");
    }

    void attention(const Tensor& q, const SequenceAttention* seqs, size_t n_seqs, const AttentionParams& p,
                   Tensor& out) override {
        if (!attention_shapes_ok(q, seqs, n_seqs, p, out)) shape_error("attention");
        const int64_t hd = p.head_dim;
        check_f32(q, "attention");
        check_f32(out, "attention");
        if (hd > kMaxHeadDim)
            throw Error(Status::Unsupported, "cuda backend: attention with heads of " + std::to_string(hd) +
                                                 " values (at most " + std::to_string(kMaxHeadDim) + ")");
        // One launch per sequence (each has its own cache and position); batched steps of many sequences
        // become one launch over a table of them once the kernels are measured.
        for (size_t i = 0; i < n_seqs; ++i) {
            const SequenceAttention& sq = seqs[i];
            if (sq.count == 0) continue;
            AttentionArgs a{};
            a.q = f32(q) + sq.first * q.ne[0];
            a.out = f32(out) + sq.first * out.ne[0];
            a.q_stride = q.ne[0];
            a.out_stride = out.ne[0];
            a.k = static_cast<const uint16_t*>(sq.k_cache->data);
            a.v = static_cast<const uint16_t*>(sq.v_cache->data);
            a.k_stride = sq.k_cache->ne[0];
            a.v_stride = sq.v_cache->ne[0];
            a.n_queries = sq.count;
            a.n_head = p.n_head;
            a.n_head_kv = p.n_head_kv;
            a.head_dim = p.head_dim;
            a.n_past = sq.n_past;
            a.window = p.window;
            a.scale = p.scale;
            a.softcap = p.softcap;
            check(cuda::attention(a, stream_), "attention");
        }
    }

    void add(const Tensor& a, const Tensor& b, Tensor& out) override {
        if (out.n_elements() != a.n_elements()) shape_error("add");
        check_f32(a, "add");
        check_f32(b, "add");
        check_f32(out, "add");
        int64_t period = 0;
        if (b.n_elements() == a.n_elements()) period = 0;
        else if (b.n_rows() == 1 && b.ne[0] == a.ne[0]) period = a.ne[0];  // one row: a bias added to every row
        else shape_error("add");
        check(cuda::add(f32(a), f32(b), f32(out), a.n_elements(), period, stream_), "add");
    }

    void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) override {
        if (gate.n_elements() != up.n_elements() || out.n_elements() != gate.n_elements()) shape_error("swiglu");
        check(cuda::swiglu(f32(gate), f32(up), f32(out), out.n_elements(), stream_), "swiglu");
    }
    void geglu(const Tensor& gate, const Tensor& up, Tensor& out) override {
        if (gate.n_elements() != up.n_elements() || out.n_elements() != gate.n_elements()) shape_error("geglu");
        check(cuda::geglu(f32(gate), f32(up), f32(out), out.n_elements(), stream_), "geglu");
    }
    void scale(const Tensor& x, float s, Tensor& out) override {
        if (out.n_elements() != x.n_elements()) shape_error("scale");
        check(cuda::scale(f32(x), s, f32(out), out.n_elements(), stream_), "scale");
    }
    void softcap(const Tensor& x, float cap, Tensor& out) override {
        if (out.n_elements() != x.n_elements() || !(cap > 0.f)) shape_error("softcap");
        check(cuda::softcap(f32(x), cap, f32(out), out.n_elements(), stream_), "softcap");
    }

    void add_rows_scaled(const Tensor& src, const int32_t* ids, const float* weights, int64_t n, Tensor& dst) override {
        const int64_t E = src.ne[0];
        if (dst.ne[0] != E || src.n_rows() < n || n < 0) shape_error("add_rows_scaled");
        for (int64_t i = 0; i < n; ++i)
            if (ids[i] < 0 || ids[i] >= dst.n_rows()) shape_error("add_rows_scaled");
        if (n == 0) return;
        const Staged st = stage(ids, weights, n);
        check(cuda::add_rows_scaled(f32(src), st.ids, st.weights, n, E, f32(dst), stream_), "add_rows_scaled");
    }

private:
    [[noreturn]] static void unsupported(TensorType t, const char* op) {
        throw Error(Status::Unsupported, std::string("cuda backend: ") + op + " of " + tensor::type_name(t) + " tensors");
    }

    struct Staged {
        const int32_t* ids;
        const float* weights;
    };
    // Host ids (and weights) for get_rows / add_rows_scaled, copied into this stream's device scratch in
    // stream order: first into a pinned staging buffer, from which the copy runs asynchronously, so the
    // caller's arrays may go as soon as the op returns. Before the staging buffer is written again, the
    // event recorded after the previous copy is waited for; the device scratch is reused in stream order
    // (the next copy into it runs after the kernels that read it).
    Staged stage(const int32_t* ids, const float* weights, int64_t n) {
        const size_t id_bytes = (static_cast<size_t>(n) * sizeof(int32_t) + 255) / 256 * 256;
        const size_t bytes = id_bytes + (weights ? static_cast<size_t>(n) * sizeof(float) : 0);
        check(cudaEventSynchronize(staged_), "staging host ids");
        if (bytes > capacity_) {
            check(cudaStreamSynchronize(stream_), "staging host ids");  // kernels may still read the old scratch
            const size_t want = std::max<size_t>(bytes, 2 * capacity_ + 4096);
            cudaFreeHost(pinned_);
            cudaFree(scratch_);
            pinned_ = nullptr;
            scratch_ = nullptr;
            capacity_ = 0;
            check(cudaMallocHost(&pinned_, want), "pinned staging buffer");
            check(cudaMalloc(&scratch_, want), "device scratch for host ids");
            capacity_ = want;
        }
        auto* host = static_cast<char*>(pinned_);
        std::memcpy(host, ids, static_cast<size_t>(n) * sizeof(int32_t));
        if (weights) std::memcpy(host + id_bytes, weights, static_cast<size_t>(n) * sizeof(float));
        check(cudaMemcpyAsync(scratch_, pinned_, bytes, cudaMemcpyHostToDevice, stream_), "staging host ids");
        check(cudaEventRecord(staged_, stream_), "staging host ids");
        auto* dev = static_cast<char*>(scratch_);
        return {reinterpret_cast<const int32_t*>(dev), reinterpret_cast<const float*>(dev + id_bytes)};
    }

    cudaStream_t stream_ = nullptr;
    cudaEvent_t staged_ = nullptr;
    void* pinned_ = nullptr;   // host, page-locked
    void* scratch_ = nullptr;  // device
    size_t capacity_ = 0;      // bytes of each
};

class CudaDevice final : public backend::Device {
public:
    CudaDevice() {
        check(cudaSetDevice(kDevice), "cudaSetDevice");
        check(cudaGetDeviceProperties(&prop_, kDevice), "cudaGetDeviceProperties");
    }
    std::string name() const override { return "cuda"; }
    std::string description() const override {
        return std::string("CUDA ") + prop_.name + ", " + std::to_string(prop_.totalGlobalMem >> 20) +
               " MiB, compute capability " + std::to_string(prop_.major) + "." + std::to_string(prop_.minor);
    }
    std::unique_ptr<Buffer> alloc(size_t n) override { return std::make_unique<DeviceBuffer>(n); }
    size_t available_memory() const override {
        size_t free = 0, total = 0;
        check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
        return free;
    }
    // The file's bytes, copied once (the GGUF block layout is what the kernels read in this slice).
    Tensor weight(const Tensor& host, bool file_mapping) override {
        if (!kernel_supports(host.type))
            throw Error(Status::Unsupported, std::string("cuda backend: weights of type ") + tensor::type_name(host.type));
        const size_t n = host.n_bytes();
        auto buf = std::make_unique<DeviceBuffer>(n);
        check(cudaMemcpy(buf->data(), host.data, n, cudaMemcpyHostToDevice), "uploading a weight");
        Tensor t = host;
        t.data = buf->data();
        {
            std::lock_guard lock(mutex_);
            weights_.push_back(std::move(buf));
        }
        if (file_mapping) drop_file_pages(host.data, n);  // the device holds its own copy
        return t;
    }
    bool supports(TensorType t) const override { return kernel_supports(t); }
    std::unique_ptr<backend::Stream> stream(const backend::StreamParams&) override { return std::make_unique<CudaStream>(); }

private:
    cudaDeviceProp prop_{};
    std::mutex mutex_;
    std::vector<std::unique_ptr<Buffer>> weights_;
};

// Whether a CUDA device is there and this build has kernels for it; asked once (the first call loads the
// driver, which may take a moment). Never throws: without a driver or a device the backend is unusable.
bool usable() {
    static const bool ok = [] {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        if (e != cudaSuccess || n <= 0) {
            (void)cudaGetLastError();
            detail::log(LogLevel::Info, std::string("cuda: no usable device (") +
                                            (e != cudaSuccess ? cudaGetErrorString(e) : "no devices") + ")");
            return false;
        }
        e = probe_kernels();
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            detail::log(LogLevel::Warn, std::string("cuda: device 0 cannot run this build's kernels (") + cudaGetErrorString(e) +
                                            "); rebuild with CMAKE_CUDA_ARCHITECTURES including its compute capability");
            return false;
        }
        return true;
    }();
    return ok;
}

}  // namespace

}  // namespace ember::cuda

namespace ember::backend {
// Called by the registry (see backends/CMakeLists.txt). Scored above the CPU, so "auto" picks a usable GPU.
void register_cuda_backend() {
    register_backend({kApiVersion, "cuda", [] { return cuda::usable() ? 2 : -1; },
                      [] { return std::make_unique<cuda::CudaDevice>(); }});
}
}  // namespace ember::backend
