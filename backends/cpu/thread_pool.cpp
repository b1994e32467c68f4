#include "thread_pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <pthread.h>

#include "ember/error.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define EMBER_PAUSE() _mm_pause()
#else
#define EMBER_PAUSE() std::this_thread::yield()
#endif

namespace ember::cpu {

namespace {

constexpr int kSpinsBeforeSleep = 1 << 15;

// The job word: a job counter above, the job's thread count in the low bits. A worker learns both from one
// load, so a worker late to notice a job it takes no part in never reads the next job's parameters.
// One bit there marks a shared job (see dispatch).
constexpr int kThreadBits = 16;
constexpr uint64_t kThreadMask = (uint64_t(1) << (kThreadBits - 1)) - 1;
constexpr uint64_t kShared = uint64_t(1) << (kThreadBits - 1);
uint64_t next_job(uint64_t word, int n_threads, bool shared = false) {
    return ((word >> kThreadBits) + 1) << kThreadBits | (shared ? kShared : 0) | uint64_t(n_threads);
}

// Counts fork()s in this process: a pool made before the latest one belongs to the parent.
std::atomic<uint64_t> g_forks{0};
uint64_t forks_seen() {
    static const int registered = pthread_atfork(nullptr, nullptr, [] { g_forks.fetch_add(1); });
    (void)registered;
    return g_forks.load();
}

int hardware_threads() noexcept { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

}  // namespace

struct ThreadPool::State {
    const uint64_t forks = forks_seen();
    std::mutex turn;                    // one job at a time; also guards `workers`
    std::vector<std::thread> workers;   // worker i runs as thread index i + 1
    std::mutex mutex;                   // pairs with `wake` for sleeping workers
    std::condition_variable wake;
    const std::function<void(int, int)>* job = nullptr;  // written only while no participant runs
    std::atomic<uint64_t> job_word{0};                    // see next_job
    std::atomic<int> pending{0};
    // Shared jobs: the word of the job open to late workers (0: none), and how many workers are in one.
    // `inside` is never reset: a worker that came too late only passes through it.
    std::atomic<uint64_t> open{0};
    std::atomic<int> inside{0};
    std::atomic<bool> stop{false};
    std::mutex error_mutex;
    std::exception_ptr error;

    void record(std::exception_ptr e) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::move(e);
    }

    void worker(int index, uint64_t seen) {
        for (;;) {
            int spins = 0;
            uint64_t word;
            while ((word = job_word.load(std::memory_order_acquire)) == seen) {
                if (++spins < kSpinsBeforeSleep) {
                    EMBER_PAUSE();
                    continue;
                }
                std::unique_lock lock(mutex);
                wake.wait(lock, [&] { return job_word.load(std::memory_order_acquire) != seen; });
            }
            seen = word;
            if (stop.load(std::memory_order_acquire)) return;
            const int n = static_cast<int>(word & kThreadMask);
            if (index >= n) continue;  // this job uses fewer threads
            if (word & kShared) {
                // Enter, then check the job is still open; the caller closes it, then waits for `inside`
                // (both sequentially consistent: one of the two sees the other).
                inside.fetch_add(1, std::memory_order_seq_cst);
                if (open.load(std::memory_order_seq_cst) == word) {
                    try {
                        (*job)(index, n);
                    } catch (...) {
                        record(std::current_exception());
                    }
                }
                inside.fetch_sub(1, std::memory_order_release);
                continue;
            }
            try {
                (*job)(index, n);
            } catch (...) {
                record(std::current_exception());
            }
            pending.fetch_sub(1, std::memory_order_acq_rel);
        }
    }
};

int ThreadPool::max_threads() noexcept { return std::min(4 * hardware_threads(), 4096); }

int ThreadPool::clamp(int n) noexcept { return n <= 0 ? hardware_threads() : std::min(n, max_threads()); }

ThreadPool::ThreadPool() : state_(new State) {}

ThreadPool::~ThreadPool() {
    State* s = state_.load();
    if (s->forks != forks_seen()) return;  // the parent's workers: not ours to join in this child
    {
        std::lock_guard lock(s->mutex);
        s->stop = true;
        s->job_word.store(next_job(s->job_word.load(), 0));
    }
    s->wake.notify_all();
    for (auto& t : s->workers) t.join();
    delete s;
}

ThreadPool::State& ThreadPool::state() {
    State* s = state_.load(std::memory_order_acquire);
    if (s->forks == forks_seen()) return *s;
    // In a child after fork(): the workers, and any lock a parent thread held, stay behind with the old state.
    auto* fresh = new State;
    if (!state_.compare_exchange_strong(s, fresh)) {
        delete fresh;  // another thread of the child replaced it first
        return *state_.load();
    }
    return *fresh;
}

void ThreadPool::reserve(int n_threads) {
    const int want = clamp(n_threads) - 1;
    State& s = state();
    std::lock_guard turn(s.turn);
    while (static_cast<int>(s.workers.size()) < want) {
        const int index = static_cast<int>(s.workers.size()) + 1;
        try {
            s.workers.emplace_back([&s, index, seen = s.job_word.load()] { s.worker(index, seen); });
        } catch (const std::system_error& e) {
            throw Error(Status::OutOfMemory, "cpu backend: cannot start worker thread " + std::to_string(index) +
                                                 " of " + std::to_string(want + 1) + ": " + e.what());
        }
    }
}

int ThreadPool::size() const noexcept {
    State* s = state_.load();
    std::lock_guard turn(s->turn);
    return static_cast<int>(s->workers.size()) + 1;
}

void ThreadPool::run(int n_threads, const std::function<void(int, int)>& fn) {
    if (n_threads <= 1) {
        fn(0, 1);
        return;
    }
    dispatch(n_threads, fn, false);
}

// A job on the caller and up to n - 1 workers. Not shared: every worker takes part (`pending`). Shared:
// the job is open to workers until the caller is done with it, and the caller waits only for those inside.
void ThreadPool::dispatch(int n_threads, const std::function<void(int, int)>& fn, bool shared) {
    State& s = state();
    std::lock_guard turn(s.turn);
    const int n = std::min(n_threads, static_cast<int>(s.workers.size()) + 1);
    if (n == 1) {
        fn(0, 1);
        return;
    }
    s.job = &fn;
    s.error = nullptr;
    const uint64_t word = next_job(s.job_word.load(std::memory_order_relaxed), n, shared);
    if (shared) s.open.store(word, std::memory_order_seq_cst);
    else s.pending.store(n - 1, std::memory_order_release);
    {
        std::lock_guard lock(s.mutex);  // pairs with the sleepers' wait
        s.job_word.store(word, std::memory_order_release);
    }
    s.wake.notify_all();
    try {
        fn(0, n);
    } catch (...) {
        s.record(std::current_exception());
    }
    // Every participant finishes before this frame (which `fn` may refer to) can unwind. A shared job is
    // closed first: the caller has taken every chunk left, and a worker that comes now must not enter.
    // Spin briefly, then yield: on a busy machine a worker may be waiting for this very core.
    if (shared) s.open.store(0, std::memory_order_seq_cst);
    const auto busy = [&] {
        return shared ? s.inside.load(std::memory_order_seq_cst) != 0 : s.pending.load(std::memory_order_acquire) != 0;
    };
    for (int spins = 0; busy(); ++spins) {
        if (spins < kSpinsBeforeSleep) EMBER_PAUSE();
        else std::this_thread::yield();
    }
    s.job = nullptr;
    if (s.error) std::rethrow_exception(std::exchange(s.error, nullptr));
}

void ThreadPool::parallel_for(int n_threads, int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    const int64_t max_chunks = (n + grain - 1) / grain;
    const int nt = static_cast<int>(std::min<int64_t>(std::max(1, n_threads), max_chunks));
    if (nt == 1) {
        fn(0, n);
        return;
    }
    // A few chunks per thread, taken as threads come free: items of unequal cost (causal attention rows)
    // and a thread the OS delays no longer leave the others waiting. Which thread runs a chunk never
    // changes a result: chunks write disjoint outputs.
    const int64_t n_chunks = std::min<int64_t>(max_chunks, int64_t(nt) * 4);
    std::atomic<int64_t> next{0};
    dispatch(nt, [&](int, int) {
        for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < n_chunks;)
            fn(n * c / n_chunks, n * (c + 1) / n_chunks);
    }, true);
}

}  // namespace ember::cpu
