#pragma once

// A small fixed pool of worker threads with delayed tasks, for the Workload
// API's streams: gRPC callback reactors must not block gRPC's own threads,
// so attestation (which may hash a binary) and re-reading a workload's view
// after a change run here. One pool serves every stream; a stream costs no
// thread while it waits for its next change.

#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sigil::agent {

class Executor {
 public:
  // Starts `threads` workers (at least 1).
  explicit Executor(int threads);
  // Stop().
  ~Executor();

  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs `fn` on a worker as soon as one is free. Dropped after Stop().
  // Thread-safe.
  void Run(std::function<void()> fn);
  // Runs `fn` on a worker once `delay` has passed (real time). Dropped after
  // Stop(). Thread-safe.
  void RunAfter(absl::Duration delay, std::function<void()> fn);

  // Waits for running tasks, discards queued and delayed ones (destroying
  // them on the calling thread) and joins the workers. Idempotent; must not
  // be called from a task.
  void Stop();

 private:
  void Work();

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Keyed by due time; immediate tasks use InfinitePast so they run first,
  // in submission order (multimap keeps insertion order for equal keys).
  std::multimap<absl::Time, std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace sigil::agent
