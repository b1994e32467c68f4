// A small persistent thread pool for the CPU backend. Ops are short (tens of microseconds on small
// models), so workers spin briefly before sleeping: waking a sleeping thread costs more than most ops.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ember::cpu {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const noexcept { return n_threads_; }
    // Runs fn(thread_index, n_threads) on every thread (the caller is thread 0) and waits for all.
    void run(const std::function<void(int, int)>& fn);
    // Splits [0, n) into contiguous chunks of at least `grain` items, a few per thread: fn(begin, end).
    // Small jobs run on the caller alone: waking workers costs more than they would save, and on a busy
    // machine a descheduled worker would stall every op.
    void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

private:
    void worker(int index);

    int n_threads_;
    std::vector<std::thread> threads_;
    const std::function<void(int, int)>* job_ = nullptr;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
};

}  // namespace ember::cpu
