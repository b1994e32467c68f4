// The CPU worker pool under failure: exceptions in jobs, threads the system refuses, fork(), workers that
// come late (more threads than cores).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#include "child.hpp"
#include "cpu/thread_pool.hpp"
#include "ember/error.hpp"

using ember::cpu::ThreadPool;
using namespace std::chrono_literals;

TEST_CASE("thread counts are bounded") {
    const int hw = ThreadPool::clamp(0);
    CHECK(hw >= 1);
    CHECK(ThreadPool::max_threads() == 4 * hw);
    CHECK(ThreadPool::clamp(100000) == ThreadPool::max_threads());
    CHECK(ThreadPool::clamp(-5) == hw);
    CHECK(ThreadPool::clamp(1) == 1);
    ThreadPool pool;
    pool.reserve(1 << 30);
    CHECK(pool.size() == ThreadPool::max_threads());
}

TEST_CASE("an exception thrown by a job on a worker reaches the caller") {
    ThreadPool pool;
    pool.reserve(2);
    REQUIRE(pool.size() >= 2);
    CHECK_THROWS_AS(pool.run(2, [](int i, int) {
        if (i == 1) throw std::bad_alloc();
    }), std::bad_alloc);
    CHECK_THROWS_AS(pool.parallel_for(2, 1000, [](int64_t b, int64_t) {
        if (b > 0) throw ember::Error(ember::Status::Internal, "chunk failed");
    }), ember::Error);
    // The pool is still usable afterwards.
    std::atomic<int> ran{0};
    pool.run(2, [&](int, int) { ran.fetch_add(1); });
    CHECK(ran == 2);
}

TEST_CASE("parallel_for: every item once, whether workers come in time, late, or not at all") {
    // 4× the cores: most workers are descheduled when a job is posted. The caller takes what is left and
    // closes the job; a worker that arrives afterwards must not touch it (its frame is gone: under TSan or
    // ASan a late worker running the old job would show). Jobs alternate with run(), whose workers must
    // all take part, so the two protocols share the job word without mixing.
    ThreadPool pool;
    const int n_threads = ThreadPool::max_threads();
    pool.reserve(n_threads);
    std::vector<std::atomic<int>> hits(257);
    for (int job = 0; job < 400; ++job) {
        const int64_t n = 1 + job % 257;
        pool.parallel_for(n_threads, n, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1, std::memory_order_relaxed);
        });
        for (int64_t i = 0; i < n; ++i) REQUIRE(hits[static_cast<size_t>(i)].exchange(0) == 1);
        if (job % 50 == 0) {
            std::atomic<int> ran{0};
            pool.run(n_threads, [&](int, int) { ran.fetch_add(1); });
            REQUIRE(ran == pool.size());
        }
    }
}

TEST_CASE("the caller's own exception waits until every worker is done with its frame") {
    ThreadPool pool;
    pool.reserve(2);
    std::atomic<bool> worker_done{false};
    CHECK_THROWS_AS(pool.run(2, [&](int i, int) {
        if (i == 0) throw std::runtime_error("caller fails first");
        std::this_thread::sleep_for(50ms);
        worker_done = true;  // `worker_done` lives in the caller's frame
    }), std::runtime_error);
    CHECK(worker_done);
}

TEST_CASE("a thread the system refuses is ember::Error(OutOfMemory), never a hang" *
          doctest::skip(ember::test::kSanitized)) {  // needs an address-space limit (see child.hpp)
    // A little more address space than now: each worker's stack needs megabytes, so creation fails early.
    const size_t limit = ember::test::address_space_in_use() + (6u << 20);
    const auto r = ember::test::run_in_child([] {
        ThreadPool pool;
        try {
            pool.reserve(ThreadPool::max_threads());
            return 10;  // every thread fitted: the limit did not bite
        } catch (const ember::Error& e) {
            if (e.status() != ember::Status::OutOfMemory) return 11;
        }
        std::atomic<int> ran{0};
        pool.run(ThreadPool::max_threads(), [&](int, int) { ran.fetch_add(1); });  // with the threads it got
        return ran == pool.size() ? 0 : 12;
    }, 30, limit);
    CHECK_MESSAGE(r.ok(), r.describe());
}

TEST_CASE("after fork() the child's pool works (the parent's workers do not exist there)" *
          doctest::skip(ember::test::kThreadSanitized)) {
    ThreadPool pool;
    pool.reserve(2);
    std::atomic<int> ran{0};
    pool.run(2, [&](int, int) { ran.fetch_add(1); });
    REQUIRE(ran == 2);
    const auto r = ember::test::run_in_child([&] {
        std::atomic<int> in_child{0};
        pool.reserve(2);
        pool.run(2, [&](int, int) { in_child.fetch_add(1); });
        pool.run(2, [&](int, int) { in_child.fetch_add(1); });
        return in_child == 4 ? 0 : 1;
    }, 20);
    CHECK_MESSAGE(r.ok(), r.describe());
    ran = 0;
    pool.run(2, [&](int, int) { ran.fetch_add(1); });  // the parent's pool is untouched
    CHECK(ran == 2);
}
