#include "node-agent/workload_api/unix_listener.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "spdlog/spdlog.h"

// Linux 6.5; Debian 12's headers predate it.
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

namespace sigil::agent {
namespace {

absl::Status SysError(absl::string_view call, absl::string_view path, int err) {
  std::string msg = absl::StrCat(call, " ", path, ": ", std::strerror(err));
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  if (err == ENOTDIR) return absl::FailedPreconditionError(msg);
  return absl::InternalError(msg);
}

bool FillAddress(const std::string& path, struct sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr->sun_path)) return false;
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

// True when something accepts connections on `path`.
bool SocketIsLive(const struct sockaddr_un& addr) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool live = ::connect(fd, reinterpret_cast<const struct sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return live;
}

// Creates the missing directories of `dir` and gives each the exact `mode`
// (mkdir is subject to the umask, which must not make the socket
// unreachable for other users).
absl::Status MakeParentDirs(const std::string& dir, mode_t mode) {
  std::vector<std::string> missing;
  for (std::string d = dir; !d.empty() && d != "/" && d != "."; d = DirName(d)) {
    struct stat st;
    if (::stat(d.c_str(), &st) == 0) break;
    missing.push_back(d);
  }
  absl::Status s = MakeDirs(dir, mode);
  if (!s.ok()) return s;
  for (const std::string& d : missing) {
    if (::chmod(d.c_str(), mode) != 0) return SysError("chmod", d, errno);
  }
  return absl::OkStatus();
}

}  // namespace

PeerCredentials::~PeerCredentials() {
  if (pidfd >= 0) ::close(pidfd);
}

absl::StatusOr<uint64_t> ReadProcessStartTime(pid_t pid, const std::string& proc_root) {
  std::string path = absl::StrCat(proc_root, "/", pid, "/stat");
  absl::StatusOr<std::string> stat = ReadFile(path);
  if (!stat.ok()) {
    if (absl::IsNotFound(stat.status()))
      return absl::NotFoundError(absl::StrCat("process ", pid, " not found"));
    return stat.status();
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // fields are counted from the last ')'. starttime is field 22; field 3
  // (state) is the first after the ')'.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return absl::InternalError(absl::StrCat(path, ": malformed (no ')')"));
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(close + 1), ' ', absl::SkipEmpty());
  uint64_t start = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &start)) {
    return absl::InternalError(absl::StrCat(path, ": malformed (no starttime field)"));
  }
  return start;
}

bool StillRunning(const PeerCredentials& creds) {
  if (creds.pid <= 0) return false;
  if (creds.pidfd >= 0) {
    // The pidfd pins the process itself, and a pid is not reused while its
    // process exists (zombie included): not signalled means still running.
    struct pollfd p = {creds.pidfd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
  if (creds.start_time == 0) return false;
  absl::StatusOr<uint64_t> start = ReadProcessStartTime(creds.pid);
  return start.ok() && *start == creds.start_time;
}

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Create(Options options) {
  const std::string& path = options.socket_path;
  if (path.empty()) return absl::InvalidArgumentError("workload API socket path is empty");
  struct sockaddr_un addr;
  if (!FillAddress(path, &addr)) {
    return absl::InvalidArgumentError(absl::StrCat("workload API socket path ", path, " is ", path.size(),
                                                   " bytes; a Unix socket path holds at most ",
                                                   sizeof(addr.sun_path) - 1));
  }
  absl::Status s = MakeParentDirs(DirName(path), options.directory_mode);
  if (!s.ok()) return s;

  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a socket"));
    }
    if (SocketIsLive(addr)) {
      return absl::AlreadyExistsError(absl::StrCat("workload API socket ", path, " is already in use"));
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return SysError("unlink stale socket", path, errno);
  }

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysError("socket", path, errno);
  if (::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EADDRINUSE) {
      return absl::AlreadyExistsError(absl::StrCat("workload API socket ", path, " is already in use"));
    }
    return SysError("bind", path, err);
  }
  if (::chmod(path.c_str(), options.socket_mode) != 0 || ::listen(fd, options.backlog) != 0 ||
      ::stat(path.c_str(), &st) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return SysError("chmod/listen", path, err);
  }
  int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return SysError("eventfd for", path, err);
  }
  return std::unique_ptr<UnixListener>(new UnixListener(std::move(options), fd, wake, st.st_dev, st.st_ino));
}

UnixListener::UnixListener(Options options, int listen_fd, int wake_fd, dev_t dev, ino_t ino)
    : options_(std::move(options)),
      listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      socket_dev_(dev),
      socket_ino_(ino) {}

UnixListener::~UnixListener() {
  Stop();
  ::close(wake_fd_);
}

void UnixListener::Stop() {
  if (listen_fd_ < 0) return;
  if (thread_.joinable()) {
    uint64_t one = 1;
    while (::write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  ::close(listen_fd_);
  listen_fd_ = -1;
  struct stat st;
  if (::lstat(options_.socket_path.c_str(), &st) == 0 && st.st_dev == socket_dev_ &&
      st.st_ino == socket_ino_) {
    ::unlink(options_.socket_path.c_str());
  }
}

void UnixListener::Start(ConnectionHandler handler) {
  handler_ = std::move(handler);
  thread_ = std::thread([this] { AcceptLoop(); });
}

void UnixListener::AcceptLoop() {
  absl::Time last_sweep = absl::Now();
  bool backoff = false;
  while (true) {
    struct pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    // Out of fds, the listener stays readable: wait a little rather than spin.
    int timeout_ms = backoff ? 100 : static_cast<int>(absl::ToInt64Milliseconds(options_.sweep_interval));
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) {
      spdlog::error("workload api: poll on {} failed: {}", options_.socket_path, std::strerror(errno));
      return;
    }
    if (n > 0 && (fds[1].revents & POLLIN)) return;
    if (n > 0 && (fds[0].revents & POLLIN)) backoff = !AcceptPending();
    if (absl::Now() - last_sweep >= options_.sweep_interval) {
      SweepClosedConnections();
      last_sweep = absl::Now();
    }
  }
}

bool UnixListener::AcceptPending() {
  while (true) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      switch (errno) {
        case EAGAIN:
          return true;
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
          continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
          spdlog::warn("workload api: cannot accept on {}: {}", options_.socket_path, std::strerror(errno));
          return false;
        default:
          spdlog::error("workload api: accept on {} failed: {}", options_.socket_path, std::strerror(errno));
          return true;
      }
    }
    Track(fd);
  }
}

void UnixListener::Track(int fd) {
  auto creds = std::make_shared<PeerCredentials>();
  struct ucred uc;
  socklen_t len = sizeof(uc);
  struct stat st;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 || ::fstat(fd, &st) != 0) {
    spdlog::warn("workload api: dropping connection without credentials: {}", std::strerror(errno));
    ::close(fd);
    return;
  }
  creds->pid = uc.pid;
  creds->uid = uc.uid;
  creds->gid = uc.gid;
  if (uc.pid > 0) {
    // SO_PEERPIDFD names the process that connected, without a race. Older
    // kernels lack it: pidfd_open can then race with pid reuse between
    // connect and here, which the start time recorded below narrows.
    bool gone = false;
    int pidfd = -1;
    len = sizeof(pidfd);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) {
      creds->pidfd = pidfd;
    } else if (errno == ESRCH) {
      gone = true;
    } else {
      long r = ::syscall(SYS_pidfd_open, uc.pid, 0);
      if (r >= 0) {
        creds->pidfd = static_cast<int>(r);
      } else if (errno == ESRCH) {
        gone = true;
      }
    }
    // A caller that is already gone gets no start time, so StillRunning()
    // refuses its calls.
    if (!gone) {
      absl::StatusOr<uint64_t> start = ReadProcessStartTime(uc.pid);
      if (start.ok()) creds->start_time = *start;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    connections_[fd] = Connection{std::move(creds), st.st_dev, st.st_ino};
  }
  handler_(fd);
}

absl::StatusOr<std::shared_ptr<const PeerCredentials>> UnixListener::Lookup(absl::string_view peer) const {
  absl::string_view rest = peer;
  int fd = -1;
  if (!absl::ConsumePrefix(&rest, "fd:") || !absl::SimpleAtoi(rest, &fd) || fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("peer \"", peer, "\" is not a connection accepted by the agent (want fd:<n>)"));
  }
  absl::MutexLock lock(&mu_);
  auto it = connections_.find(fd);
  struct stat st;
  if (it == connections_.end() || ::fstat(fd, &st) != 0 || st.st_dev != it->second.dev ||
      st.st_ino != it->second.ino) {
    return absl::NotFoundError(absl::StrCat("no open connection ", peer));
  }
  return it->second.creds;
}

std::vector<int> UnixListener::ConnectionFds() const {
  absl::MutexLock lock(&mu_);
  std::vector<int> fds;
  for (const auto& [fd, _] : connections_) fds.push_back(fd);
  return fds;
}

void UnixListener::SweepClosedConnections() {
  std::vector<std::shared_ptr<const PeerCredentials>> dropped;
  absl::MutexLock lock(&mu_);
  for (auto it = connections_.begin(); it != connections_.end();) {
    struct stat st;
    if (::fstat(it->first, &st) != 0 || st.st_dev != it->second.dev || st.st_ino != it->second.ino) {
      dropped.push_back(std::move(it->second.creds));
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace sigil::agent
