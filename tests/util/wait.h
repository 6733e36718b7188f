#pragma once

// Bounded polling for tests that wait on another thread or process.
// Header-only and dependent on Abseil alone.

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sigil::testing {

// How often to poll a condition that runs a command (spawning a process
// every few milliseconds would starve what the test waits for).
inline constexpr absl::Duration kCommandPollInterval = absl::Milliseconds(50);

// Calls `cond` every `interval` until it returns true or `timeout` passes,
// then once more; returns the last answer. Never waits past the deadline by
// more than one interval plus one call.
inline bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(10),
                    absl::Duration interval = absl::Milliseconds(5)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(interval);
  }
  return cond();
}

}  // namespace sigil::testing
