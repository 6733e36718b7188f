#pragma once

// Process plumbing shared by the sigil-server and sigil-agent binaries: the
// top-level command dispatch of main(), the flag handling of `run` and
// `validate`, and shutdown on SIGINT/SIGTERM taken by one dedicated thread.

#include <pthread.h>
#include <signal.h>

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/cli_flags.h"

namespace sigil {

// The commands of a daemon binary.
struct DaemonCommands {
  // Printed to stderr for no command, a help request or an unknown command.
  std::string usage;
  // `run <args>` and `validate <args>`; return the exit code.
  std::function<int(const std::vector<std::string>& args)> run;
  std::function<int(const std::vector<std::string>& args)> validate;
  // Whether `command` names a client command, which `run_client` then runs
  // with the whole command line (command words first). Either may be empty
  // for a binary without client commands.
  std::function<bool(const std::string& command)> is_client;
  std::function<int(const std::vector<std::string>& args)> run_client;
};

// main() of a daemon binary, given argv without the program name. No
// command: the usage, exit 1. "-h", "--help" or "help": the usage, exit 0.
// "run"/"validate": those, with the remaining arguments. A client command:
// run_client. Anything else: `Unknown command "<word>"` and the usage,
// exit 1. Usage and errors go to `err`.
int RunDaemonMain(const std::vector<std::string>& args, const DaemonCommands& commands,
                  std::ostream& err);

// Parses the flags of `run` or `validate` (`args` are the words after the
// command). When the command must not go on, prints to `err` and returns the
// exit code: on a help request the usage (0); on Go's flag error the error
// and the usage (1); for an argument left after the flags "unexpected
// argument: <arg>" and the usage (1). nullopt when the command should go on.
std::optional<int> ParseDaemonFlags(cli::FlagSet& flags, const std::vector<std::string>& args,
                                    std::ostream& err);

// ParseDaemonFlags, then the settings `resolve` returns (called only when
// the command should go on). When there are none to go on with, prints to
// `err` (for a `resolve` error "Error: <message>") and sets `*exit_code`
// (1 for a `resolve` error).
template <typename Settings, typename Resolve>
std::optional<Settings> ParseDaemonSettings(cli::FlagSet& flags,
                                            const std::vector<std::string>& args,
                                            const Resolve& resolve, std::ostream& err,
                                            int* exit_code) {
  if (std::optional<int> code = ParseDaemonFlags(flags, args, err)) {
    *exit_code = *code;
    return std::nullopt;
  }
  absl::StatusOr<Settings> settings = resolve();
  if (!settings.ok()) {
    err << "Error: " << settings.status().message() << "\n";
    *exit_code = 1;
    return std::nullopt;
  }
  return *std::move(settings);
}

// Blocks SIGINT and SIGTERM in the calling thread, so that every thread it
// starts afterwards inherits the mask and only a ShutdownSignalThread takes
// them, and ignores SIGPIPE, so that writing to a closed socket fails with
// EPIPE instead of killing the process. Call at the start of `run`, before
// any thread exists.
void BlockShutdownSignals();

// A thread that waits for SIGINT or SIGTERM, logs "received SIGTERM,
// shutting down" and calls `shutdown` once. BlockShutdownSignals() must
// have run in the creating thread (else the signals' default action, not
// this thread, would take them). `shutdown` runs on this thread and must
// stay valid until Stop() returns. Thread-safe.
class ShutdownSignalThread {
 public:
  explicit ShutdownSignalThread(std::function<void()> shutdown);
  // Stop().
  ~ShutdownSignalThread();
  ShutdownSignalThread(const ShutdownSignalThread&) = delete;
  ShutdownSignalThread& operator=(const ShutdownSignalThread&) = delete;

  // Finishes the thread: when no signal has arrived yet it is woken without
  // one (for a process that stops on its own) and calls `shutdown` without
  // logging a signal; then it is joined. Idempotent; not to be called from
  // `shutdown` itself.
  void Stop();

 private:
  void Loop();

  const std::function<void()> shutdown_;
  absl::Mutex mu_;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex join_mu_;
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace sigil
