#pragma once

// Test helpers for running the real binaries: spawn, capture, stop, wait,
// with bounded waits everywhere. Temporary directories and file helpers
// (files.h) and WaitFor (wait.h) come with it.

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/util/files.h"
#include "tests/util/wait.h"

namespace sigil::testing {

// The directory holding sigil-server / sigil-agent (SIGIL_BIN_DIR, set by
// ctest; falls back to ./build/bin).
std::string BinDir();
// A TCP port that was free on 127.0.0.1 a moment ago.
int FreePort();

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string out;
  std::string err;
};

// Runs `argv` to completion (stdin from /dev/null or `input`), capturing
// stdout and stderr; kills it after `timeout`.
RunResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout = absl::Seconds(60),
              const std::string& input = "");

// A long-running child process whose stdout+stderr go to `log_path`.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path, std::vector<std::string> extra_env = {});
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  // Sends `sig` and waits up to `timeout` for the exit; returns the exit
  // status as from waitpid, or -1 on timeout (the process is then killed).
  int Stop(int sig, absl::Duration timeout = absl::Seconds(20));
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  bool reaped_ = false;
  int status_ = 0;
};

}  // namespace sigil::testing
