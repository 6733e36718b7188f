#include "node-agent/workload_api/executor.h"

#include <utility>

namespace sigil::agent {

Executor::Executor(int threads) {
  if (threads < 1) threads = 1;
  threads_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

Executor::~Executor() { Stop(); }

void Executor::Run(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  tasks_.emplace(absl::InfinitePast(), std::move(fn));
}

void Executor::RunAfter(absl::Duration delay, std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  tasks_.emplace(absl::Now() + delay, std::move(fn));
}

void Executor::Stop() {
  std::multimap<absl::Time, std::function<void()>> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(tasks_);
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Executor::Work() {
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        if (stopping_) return;
        if (!tasks_.empty()) {
          absl::Time due = tasks_.begin()->first;
          if (due <= absl::Now()) break;
          // Woken early by Stop() or a task due sooner; the loop re-checks.
          auto ready = [this, due]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            return stopping_ || (!tasks_.empty() && tasks_.begin()->first < due);
          };
          mu_.AwaitWithDeadline(absl::Condition(&ready), due);
          continue;
        }
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !tasks_.empty(); };
        mu_.Await(absl::Condition(&ready));
      }
      fn = std::move(tasks_.begin()->second);
      tasks_.erase(tasks_.begin());
    }
    fn();
  }
}

}  // namespace sigil::agent
