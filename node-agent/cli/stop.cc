#include "node-agent/cli/stop.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace sigil::agent::cli {

void StopToken::Stop() {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  stopped_ = true;
  for (auto& [id, fn] : callbacks_) fn();
  callbacks_.clear();
}

bool StopToken::stopped() const {
  absl::MutexLock lock(&mu_);
  return stopped_;
}

bool StopToken::WaitFor(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto is_stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopped_; };
  mu_.AwaitWithTimeout(absl::Condition(&is_stopped), timeout);
  return stopped_;
}

int StopToken::AddCallback(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  int id = next_id_++;
  if (stopped_) {
    fn();
  } else {
    callbacks_.emplace(id, std::move(fn));
  }
  return id;
}

void StopToken::RemoveCallback(int id) {
  absl::MutexLock lock(&mu_);
  callbacks_.erase(id);
}

namespace {

// The write end of the active SignalStopper's pipe, for the handler.
std::atomic<int> g_signal_pipe{-1};

constexpr char kSignalByte = 's';
constexpr char kQuitByte = 'q';

struct sigaction g_old_int;
struct sigaction g_old_term;

extern "C" void OnStopSignal(int) {
  int saved = errno;
  int fd = g_signal_pipe.load();
  if (fd >= 0) {
    ssize_t n = write(fd, &kSignalByte, 1);
    (void)n;  // A full pipe already holds a pending stop.
  }
  errno = saved;
}

void WriteByte(int fd, char c) {
  while (write(fd, &c, 1) < 0 && errno == EINTR) {
  }
}

}  // namespace

SignalStopper::SignalStopper(StopToken* token) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  int expected = -1;
  if (!g_signal_pipe.compare_exchange_strong(expected, write_fd_)) {
    // Another stopper is active; leave the signals to it.
    return;
  }
  reader_ = std::thread([this, token] {
    char c;
    for (;;) {
      ssize_t n = read(read_fd_, &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || c == kQuitByte) return;
      token->Stop();
    }
  });
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
  installed_ = true;
}

SignalStopper::~SignalStopper() {
  if (installed_) {
    sigaction(SIGINT, &g_old_int, nullptr);
    sigaction(SIGTERM, &g_old_term, nullptr);
    g_signal_pipe.store(-1);
  }
  if (reader_.joinable()) {
    WriteByte(write_fd_, kQuitByte);
    reader_.join();
  }
  if (read_fd_ >= 0) close(read_fd_);
  if (write_fd_ >= 0) close(write_fd_);
}

}  // namespace sigil::agent::cli
