#pragma once

// The Workload API's Unix socket, with the caller's kernel credentials.
//
// gRPC C++ reports only "unix:" as the peer of a Unix socket connection, so
// the agent accepts connections itself: it reads SO_PEERCRED (pid, uid, gid
// at connect time), pins the process with a pidfd and its start time, and
// then hands the connected fd to gRPC (grpc::AddInsecureChannelFromFd). gRPC
// names such a connection "fd:<n>", which is what ServerContext::peer()
// returns for every call on it; Lookup() maps that back to the credentials.
//
// Why an fd number cannot alias a live call. gRPC owns the fd once it is
// handed over and closes it when the connection's transport is destroyed.
// Every call holds a reference on its transport (chttp2 streams ref the
// transport; the endpoint, which owns the fd, is destroyed with the
// transport), so while a call exists its fd stays open and the number cannot
// be given to a new connection. workload_api_test verifies this at runtime:
// with a call still running after its client disconnected, the fd is still
// the same socket (same inode); it is closed only once the call completes.
// Two cheaper guards back this up: Lookup() is done once, when a call
// starts, and checks that fd <n> is still the very socket accepted (device
// and inode recorded at accept), so a stale entry whose number now belongs
// to another file is refused; and a response always travels on the
// connection the request came from, so even a mistaken lookup could not
// deliver another caller's SVIDs to a client whose socket is gone.
//
// Pid reuse. SO_PEERCRED gives a pid, and attestation reads /proc/<pid>;
// if the caller exits and the pid is recycled, /proc would describe another
// process. StillRunning() therefore checks, before and after attestation,
// that the pidfd (SO_PEERPIDFD, which names the connecting process without a
// race; pidfd_open at accept on kernels before 6.5) has not signalled exit;
// without pidfds (before Linux 5.3), that /proc/<pid>/stat still shows the
// start time recorded at accept.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sigil::agent {

// SPIRE's agent uses /tmp/spire-agent/public/api.sock.
inline constexpr char kDefaultWorkloadSocketPath[] = "/tmp/sigil-agent/public/api.sock";

// The kernel's credentials of a connected caller, captured when the
// connection was accepted. Immutable; closes its pidfd when destroyed.
struct PeerCredentials {
  PeerCredentials() = default;
  PeerCredentials(const PeerCredentials&) = delete;
  PeerCredentials& operator=(const PeerCredentials&) = delete;
  ~PeerCredentials();

  // 0 when the caller lives in a pid namespace the agent cannot see.
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  // Field 22 of /proc/<pid>/stat (clock ticks after boot) at accept; 0 when
  // it could not be read (the caller had already exited, or pid is 0).
  uint64_t start_time = 0;
  // A pidfd for the caller (close-on-exec), or -1 when the kernel offers
  // none (before Linux 5.3).
  int pidfd = -1;
};

// True when the process that connected is still the one running as `pid`:
// its pidfd has not signalled exit (a pid is not reused while its process
// exists, zombie included, so that suffices), or, without a pidfd,
// /proc/<pid>/stat still shows the start time recorded at accept. False for
// pid 0, and without a pidfd when no start time was recorded. Thread-safe.
bool StillRunning(const PeerCredentials& creds);

// Field 22 (starttime) of <proc_root>/<pid>/stat. NotFound when the process
// does not exist; Internal when the file is malformed.
absl::StatusOr<uint64_t> ReadProcessStartTime(pid_t pid, const std::string& proc_root = "/proc");

class UnixListener {
 public:
  struct Options {
    // Where to listen. Default: kDefaultWorkloadSocketPath.
    std::string socket_path = kDefaultWorkloadSocketPath;
    // Mode of the socket file; 0777 lets every local user connect, since
    // authorization happens per call from the caller's credentials.
    // Default: 0777.
    mode_t socket_mode = 0777;
    // Mode given to parent directories the listener has to create (existing
    // ones are left as they are). Default: 0755.
    mode_t directory_mode = 0755;
    // listen(2) backlog. Default: 4096.
    int backlog = 4096;
    // How often connections closed by gRPC are forgotten. Default: 5 s.
    absl::Duration sweep_interval = absl::Seconds(5);
  };

  // Binds and listens; connections queue in the backlog until Start().
  // A stale socket file (nobody accepts on it) is replaced.
  // InvalidArgument when the path is empty or longer than sun_path allows;
  // AlreadyExists ("... already in use") when a live listener answers on the
  // path; FailedPrecondition when the path exists and is not a socket, or a
  // parent is not a directory; PermissionDenied / Internal for other system
  // call failures, naming the call and the path.
  static absl::StatusOr<std::unique_ptr<UnixListener>> Create(Options options);

  // Stop().
  ~UnixListener();

  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  // Receives each accepted connection (non-blocking, close-on-exec) after
  // its credentials are recorded, and takes ownership of the fd.
  using ConnectionHandler = std::function<void(int fd)>;

  // Starts the accept thread. Call at most once; the handler runs on that
  // thread.
  void Start(ConnectionHandler handler);

  // Stops the accept thread, closes the listening socket and removes the
  // socket file if it is still the one this listener bound. Connections
  // already handed to the handler belong to it and stay open, and Lookup()
  // keeps answering for them. Idempotent; not thread-safe with Start().
  void Stop();

  // The credentials of the connection a call arrived on, from the call's
  // peer string ("fd:<n>", as grpc::ServerContext::peer() reports it).
  // InvalidArgument when `peer` is not of that form; NotFound when this
  // listener accepted no connection that is still open as fd <n>.
  // Thread-safe.
  absl::StatusOr<std::shared_ptr<const PeerCredentials>> Lookup(absl::string_view peer) const;

  const std::string& socket_path() const { return options_.socket_path; }

  // Fds of the connections recorded and not yet found closed by a sweep,
  // ascending (diagnostics and tests).
  std::vector<int> ConnectionFds() const;
  // Forgets connections whose fd no longer refers to the accepted socket
  // (gRPC closed it). Runs every sweep_interval on the accept thread;
  // callable from any thread.
  void SweepClosedConnections();

 private:
  struct Connection {
    std::shared_ptr<const PeerCredentials> creds;
    dev_t dev = 0;
    ino_t ino = 0;
  };

  UnixListener(Options options, int listen_fd, int wake_fd, dev_t dev, ino_t ino);
  void AcceptLoop();
  // Accepts everything pending; false when accept failed for lack of fds
  // (the loop then backs off instead of spinning).
  bool AcceptPending();
  void Track(int fd);

  const Options options_;
  int listen_fd_;      // -1 once stopped
  const int wake_fd_;  // eventfd: written to stop the accept thread
  // Identity of the socket file this listener bound.
  const dev_t socket_dev_;
  const ino_t socket_ino_;
  ConnectionHandler handler_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::map<int, Connection> connections_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sigil::agent
