#include "thread_pool.hpp"

#include <algorithm>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define EMBER_PAUSE() _mm_pause()
#else
#define EMBER_PAUSE() std::this_thread::yield()
#endif

namespace ember::cpu {

namespace {
constexpr int kSpinsBeforeSleep = 1 << 15;
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
    for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
        generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

void ThreadPool::worker(int index) {
    uint64_t seen = 0;
    for (;;) {
        int spins = 0;
        while (generation_.load(std::memory_order_acquire) == seen) {
            if (++spins < kSpinsBeforeSleep) {
                EMBER_PAUSE();
                continue;
            }
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        }
        seen = generation_.load(std::memory_order_acquire);
        if (stop_) return;
        (*job_)(index, n_threads_);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
    if (n_threads_ == 1) {
        fn(0, 1);
        return;
    }
    job_ = &fn;
    pending_.store(n_threads_ - 1, std::memory_order_release);
    {
        std::lock_guard lock(mutex_);  // pairs with the sleepers' wait
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    wake_.notify_all();
    fn(0, n_threads_);
    // Spin briefly, then yield: on a busy machine a worker may be waiting for this very core.
    for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
        if (spins < kSpinsBeforeSleep) EMBER_PAUSE();
        else std::this_thread::yield();
    }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    const int64_t max_chunks = (n + grain - 1) / grain;
    const int nt = static_cast<int>(std::min<int64_t>(n_threads_, max_chunks));
    if (nt == 1) {
        fn(0, n);
        return;
    }
    // A few chunks per thread, taken as threads come free: items of unequal cost (causal attention rows)
    // and a thread the OS delays no longer leave the others waiting. Which thread runs a chunk never
    // changes a result: chunks write disjoint outputs.
    const int64_t n_chunks = std::min<int64_t>(max_chunks, int64_t(nt) * 4);
    std::atomic<int64_t> next{0};
    run([&](int i, int) {
        if (i >= nt) return;
        for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < n_chunks;)
            fn(n * c / n_chunks, n * (c + 1) / n_chunks);
    });
}

}  // namespace ember::cpu
