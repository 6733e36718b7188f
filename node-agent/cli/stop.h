#pragma once

// Stopping long-running commands (`api watch`): a one-shot StopToken that
// the command watches, and a SignalStopper that trips it on SIGINT/SIGTERM.

#include <functional>
#include <map>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sigil::agent::cli {

// A one-shot stop request. Thread-safe.
class StopToken {
 public:
  StopToken() = default;
  StopToken(const StopToken&) = delete;
  StopToken& operator=(const StopToken&) = delete;

  // Requests the stop (later calls do nothing) and runs every registered
  // callback on the calling thread.
  void Stop();
  bool stopped() const;
  // Blocks until Stop() or until `timeout` has elapsed; returns stopped().
  bool WaitFor(absl::Duration timeout) const;

  // Registers `fn` to run when Stop() runs, or runs it at once (on this
  // thread) when the token is already stopped. Callbacks run under the
  // token's lock: they must be quick and must not call into the token.
  // Returns an id for RemoveCallback.
  int AddCallback(std::function<void()> fn);
  // Once this returns, the callback is not running and will never run.
  void RemoveCallback(int id);

 private:
  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
};

// While alive, SIGINT and SIGTERM stop `token` instead of ending the
// process; the previous dispositions come back on destruction. The signal
// handler only writes to a pipe (async-signal-safe); a helper thread reads
// it and calls token->Stop(). Only one SignalStopper may exist at a time
// (the handler is process-wide). If the pipe or the handlers cannot be set
// up, the signals keep their previous behaviour.
class SignalStopper {
 public:
  explicit SignalStopper(StopToken* token);
  ~SignalStopper();
  SignalStopper(const SignalStopper&) = delete;
  SignalStopper& operator=(const SignalStopper&) = delete;

 private:
  bool installed_ = false;
  int read_fd_ = -1;
  int write_fd_ = -1;
  std::thread reader_;
};

}  // namespace sigil::agent::cli
