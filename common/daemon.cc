#include "common/daemon.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace sigil {
namespace {

sigset_t ShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

}  // namespace

int RunDaemonMain(const std::vector<std::string>& args, const DaemonCommands& commands,
                  std::ostream& err) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    err << commands.usage;
    return args.empty() ? 1 : 0;
  }
  const std::string& command = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "run") return commands.run(rest);
  if (command == "validate") return commands.validate(rest);
  if (commands.is_client && commands.run_client && commands.is_client(command)) {
    return commands.run_client(args);
  }
  err << "Unknown command \"" << command << "\"\n\n" << commands.usage;
  return 1;
}

std::optional<int> ParseDaemonFlags(cli::FlagSet& flags, const std::vector<std::string>& args,
                                    std::ostream& err) {
  absl::Status parsed = flags.Parse(args);
  if (!parsed.ok() || flags.help_requested()) {
    err << (parsed.ok() ? "" : absl::StrCat(parsed.message(), "\n")) << flags.Usage();
    return parsed.ok() ? 0 : 1;
  }
  if (!flags.args().empty()) {
    err << "unexpected argument: " << flags.args().front() << "\n" << flags.Usage();
    return 1;
  }
  return std::nullopt;
}

void BlockShutdownSignals() {
  sigset_t signals = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

ShutdownSignalThread::ShutdownSignalThread(std::function<void()> shutdown)
    : shutdown_(std::move(shutdown)) {
  absl::MutexLock lock(&join_mu_);
  thread_ = std::thread([this] { Loop(); });
}

ShutdownSignalThread::~ShutdownSignalThread() { Stop(); }

void ShutdownSignalThread::Loop() {
  const sigset_t signals = ShutdownSignals();
  int sig = 0;
  sigwait(&signals, &sig);
  bool requested;
  {
    absl::MutexLock lock(&mu_);
    woken_ = true;
    requested = stop_requested_;
  }
  if (!requested) spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  shutdown_();
}

void ShutdownSignalThread::Stop() {
  absl::MutexLock join_lock(&join_mu_);
  if (!thread_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stop_requested_ = true;
    // Directed at the waiting thread, whose mask blocks it: it stays pending
    // there until sigwait takes it.
    if (!woken_) pthread_kill(thread_.native_handle(), SIGTERM);
  }
  thread_.join();
}

}  // namespace sigil
