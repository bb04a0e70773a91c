#include "tokenhelper/agent_pool.h"

#include <chrono>
#include <system_error>

namespace mailoauth::agent {

WorkerPool::WorkerPool(std::size_t max_threads, std::size_t keep_idle, long idle_seconds)
    : max_threads_(max_threads ? max_threads : 1), keep_idle_(keep_idle), idle_seconds_(idle_seconds) {}

WorkerPool::~WorkerPool() {
    std::unique_lock<std::mutex> lk(mu_);
    stopping_ = true;
    cv_.notify_all();
    // Threads are detached and say goodbye under the mutex: once threads_
    // is 0 none of them touches this object again.
    done_cv_.wait(lk, [&] { return threads_ == 0; });
}

bool WorkerPool::submit(std::function<void()> job) {
    std::unique_lock<std::mutex> lk(mu_);
    queue_.push_back(std::move(job));
    // Every queued job gets a thread of its own unless one is idle: a job
    // waits in the queue only for a worker that is about to take it.
    if (idle_ >= queue_.size() || threads_ >= max_threads_) {
        // Woken after the unlock, so the worker does not wake only to wait
        // for this mutex.
        lk.unlock();
        cv_.notify_one();
        return true;
    }
    try {
        std::thread(&WorkerPool::work, this).detach();
        ++threads_;
        ++started_;
        return true;
    } catch (const std::system_error&) {
        if (threads_ > 0) return true;  // a running worker will take it
        queue_.pop_back();
        return false;
    }
}

void WorkerPool::work() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        if (!queue_.empty()) {
            std::function<void()> job = std::move(queue_.front());
            queue_.pop_front();
            lk.unlock();
            job();
            job = nullptr;  // its captures (a connection) go now, not at the next job
            lk.lock();
            continue;
        }
        if (stopping_) break;
        ++idle_;
        bool woken;
        if (idle_ > keep_idle_)
            woken = cv_.wait_for(lk, std::chrono::seconds(idle_seconds_),
                                 [&] { return stopping_ || !queue_.empty(); });
        else {
            cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
            woken = true;
        }
        --idle_;
        if (!woken) break;  // idle too long, and more than kKeepIdle are
    }
    --threads_;
    done_cv_.notify_all();
}

std::size_t WorkerPool::threads() const {
    std::lock_guard<std::mutex> lk(mu_);
    return threads_;
}

std::size_t WorkerPool::started() const {
    std::lock_guard<std::mutex> lk(mu_);
    return started_;
}

}  // namespace mailoauth::agent
