// The agent's worker threads: connections admitted by the accept loop are
// queued to a pool instead of a new thread each.  Threads are started on
// demand and kept: up to kKeepIdle wait for the next connection forever,
// so a steady load starts no thread at all; threads beyond that (a burst,
// or requests waiting for a slow refresh) end after kIdleSeconds without
// work.  A connection never waits for a busy worker while the pool may
// still grow (max_threads, the agent's connection limit), so a slow refresh
// of one account cannot hold up the requests of another.
#ifndef MAILOAUTH_TOKENHELPER_AGENT_POOL_H
#define MAILOAUTH_TOKENHELPER_AGENT_POOL_H

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mailoauth::agent {

constexpr std::size_t kKeepIdle = 8;
constexpr long kIdleSeconds = 30;

class WorkerPool {
public:
    explicit WorkerPool(std::size_t max_threads, std::size_t keep_idle = kKeepIdle, long idle_seconds = kIdleSeconds);
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;
    // Waits for the queued and running jobs, then ends every thread.
    ~WorkerPool();
    // Queues job; false (job not queued) when no thread runs and none can
    // be started.  job must not throw.
    bool submit(std::function<void()> job);

    std::size_t threads() const;   // running threads (tests)
    std::size_t started() const;   // threads started so far (tests)

private:
    void work();

    const std::size_t max_threads_;
    const std::size_t keep_idle_;
    const long idle_seconds_;
    mutable std::mutex mu_;
    std::condition_variable cv_;       // work queued, or stopping
    std::condition_variable done_cv_;  // a thread ended
    std::deque<std::function<void()>> queue_;
    std::size_t threads_ = 0;
    std::size_t idle_ = 0;
    std::size_t started_ = 0;
    bool stopping_ = false;
};

}  // namespace mailoauth::agent

#endif
