// The CPU backend's worker pool: one per device, shared by every session (stream) of it. A job runs on
// the calling thread plus up to n - 1 workers; jobs from several sessions take turns, so many sessions
// cost no more threads than one. Ops are short (tens of microseconds on small models), so workers spin
// briefly before sleeping: waking a sleeping thread costs more than most ops.
//
// Failure is an exception on the caller, never a hang or std::terminate: a thread the system refuses is
// ember::Error(OutOfMemory) from reserve(), and an exception thrown by a job on any thread reaches the
// caller of run() after every participant has finished. After fork() the child gets a fresh pool on first
// use (its parent's workers do not exist there); the parent's pool state is left behind, unfreed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

namespace ember::cpu {

class ThreadPool {
public:
    // Threads a job may use at most: 4 × the hardware threads (more only thrash, and an unbounded count
    // could exhaust the host's processes). 0 asks for the hardware threads.
    static int max_threads() noexcept;
    static int clamp(int n_threads) noexcept;

    ThreadPool();
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    // Starts workers until jobs can use clamp(n) threads. Throws ember::Error(OutOfMemory) when the system
    // refuses one; the workers already started stay usable.
    void reserve(int n_threads);
    int size() const noexcept;  // threads a job can use now (workers + the caller)

    // Runs fn(thread_index, n) on n = min(n_threads, size()) threads (the caller is thread 0) and waits for
    // all. Jobs from other threads wait their turn. Rethrows the first exception any participant threw.
    void run(int n_threads, const std::function<void(int, int)>& fn);
    // Splits [0, n) into chunks of at least `grain` items, a few per thread, taken as threads come free:
    // fn(begin, end). Small jobs run on the caller alone: waking workers costs more than they would save.
    // The caller never waits for a worker that has not started: on a busy machine a descheduled worker
    // would otherwise stall every op for a scheduler time slice.
    void parallel_for(int n_threads, int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

private:
    // run(), and with `shared` for a job any subset of its threads can finish (fn takes work from a shared
    // counter until none is left): the caller then waits only for workers already in it, so a worker the OS
    // has descheduled (another process holds its core) delays nothing; one that comes late finds it closed.
    void dispatch(int n_threads, const std::function<void(int, int)>& fn, bool shared);

    struct State;
    State& state();  // the current state, made anew in a child after fork()
    std::atomic<State*> state_;
};

}  // namespace ember::cpu
