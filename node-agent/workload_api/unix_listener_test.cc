#include "node-agent/workload_api/unix_listener.h"

#include <fcntl.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/util/files.h"
#include "tests/util/status_matchers.h"
#include "tests/util/wait.h"
#include "workload.grpc.pb.h"

namespace sigil::agent {
namespace {

using ::sigil::testing::ExpectStatus;
using ::sigil::testing::TempDir;
using ::sigil::testing::WaitFor;

int ConnectTo(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Records the fds the listener hands over and keeps them open.
class FdSink {
 public:
  ~FdSink() {
    for (int fd : Fds()) ::close(fd);
  }
  UnixListener::ConnectionHandler Handler() {
    return [this](int fd) {
      absl::MutexLock lock(&mu_);
      fds_.push_back(fd);
    };
  }
  std::vector<int> Fds() {
    absl::MutexLock lock(&mu_);
    return fds_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int> fds_;
};

std::unique_ptr<UnixListener> Listen(const std::string& path) {
  UnixListener::Options o;
  o.socket_path = path;
  absl::StatusOr<std::unique_ptr<UnixListener>> l = UnixListener::Create(o);
  EXPECT_TRUE(l.ok()) << l.status();
  return l.ok() ? std::move(*l) : nullptr;
}

TEST(UnixListener, CreatesDirectory0755AndSocket0777DespiteUmask) {
  TempDir dir;
  std::string path = dir.path() + "/agent/public/api.sock";
  mode_t old = ::umask(077);
  auto listener = Listen(path);
  ::umask(old);
  ASSERT_NE(listener, nullptr);
  struct stat st;
  ASSERT_EQ(::stat((dir.path() + "/agent").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((dir.path() + "/agent/public").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0777u);
}

TEST(UnixListener, ExistingDirectoryKeepsItsMode) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0711), 0);
  auto listener = Listen(dir.path() + "/api.sock");
  ASSERT_NE(listener, nullptr);
  struct stat st;
  ASSERT_EQ(::stat(dir.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
}

TEST(UnixListener, LiveSocketIsAlreadyInUse) {
  TempDir dir;
  std::string path = dir.path() + "/api.sock";
  auto first = Listen(path);
  ASSERT_NE(first, nullptr);
  UnixListener::Options o;
  o.socket_path = path;
  absl::StatusOr<std::unique_ptr<UnixListener>> second = UnixListener::Create(o);
  ExpectStatus(second.status(), absl::StatusCode::kAlreadyExists, "already in use");
  // The first listener's socket is untouched.
  int fd = ConnectTo(path);
  EXPECT_GE(fd, 0);
  if (fd >= 0) ::close(fd);
}

TEST(UnixListener, StaleSocketFileIsReplaced) {
  TempDir dir;
  std::string path = dir.path() + "/api.sock";
  {
    // Bound, then closed without unlinking: what a crashed agent leaves.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    std::memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    ASSERT_EQ(::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  auto listener = Listen(path);
  ASSERT_NE(listener, nullptr);
  FdSink sink;
  listener->Start(sink.Handler());
  int fd = ConnectTo(path);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(WaitFor([&] { return sink.Fds().size() == 1; }));
  ::close(fd);
}

TEST(UnixListener, PathThatIsNotASocketIsRefused) {
  TempDir dir;
  std::string path = dir.path() + "/api.sock";
  std::ofstream(path) << "x";
  UnixListener::Options o;
  o.socket_path = path;
  ExpectStatus(UnixListener::Create(o).status(), absl::StatusCode::kFailedPrecondition,
               "exists and is not a socket");
}

TEST(UnixListener, ParentThatIsNotADirectoryIsRefused) {
  TempDir dir;
  std::ofstream(dir.path() + "/file") << "x";
  UnixListener::Options o;
  o.socket_path = dir.path() + "/file/api.sock";
  ExpectStatus(UnixListener::Create(o).status(), absl::StatusCode::kFailedPrecondition, "is not a directory");
}

TEST(UnixListener, OverlongPathIsInvalid) {
  UnixListener::Options o;
  o.socket_path = "/tmp/" + std::string(200, 'a');
  ExpectStatus(UnixListener::Create(o).status(), absl::StatusCode::kInvalidArgument, "at most 107");
}

TEST(UnixListener, EmptyPathIsInvalid) {
  UnixListener::Options o;
  o.socket_path = "";
  ExpectStatus(UnixListener::Create(o).status(), absl::StatusCode::kInvalidArgument, "path is empty");
}

TEST(UnixListener, StopRemovesSocketFile) {
  TempDir dir;
  std::string path = dir.path() + "/api.sock";
  auto listener = Listen(path);
  ASSERT_NE(listener, nullptr);
  FdSink sink;
  listener->Start(sink.Handler());
  listener->Stop();
  struct stat st;
  EXPECT_NE(::lstat(path.c_str(), &st), 0);
  EXPECT_LT(ConnectTo(path), 0);
}

TEST(UnixListener, StopLeavesAReplacedSocketFileAlone) {
  TempDir dir;
  std::string path = dir.path() + "/api.sock";
  auto listener = Listen(path);
  ASSERT_NE(listener, nullptr);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  std::ofstream(path) << "someone else's";
  listener.reset();
  struct stat st;
  EXPECT_EQ(::lstat(path.c_str(), &st), 0);
}

TEST(UnixListener, RecordsCredentialsOfTheConnectingProcess) {
  TempDir dir;
  auto listener = Listen(dir.path() + "/api.sock");
  ASSERT_NE(listener, nullptr);
  FdSink sink;
  listener->Start(sink.Handler());
  int client = ConnectTo(listener->socket_path());
  ASSERT_GE(client, 0);
  ASSERT_TRUE(WaitFor([&] { return sink.Fds().size() == 1; }));
  int fd = sink.Fds()[0];
  EXPECT_EQ(listener->ConnectionFds(), std::vector<int>{fd});
  // Handed over non-blocking and close-on-exec.
  EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);

  absl::StatusOr<std::shared_ptr<const PeerCredentials>> creds = listener->Lookup(absl::StrCat("fd:", fd));
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ((*creds)->pid, ::getpid());
  EXPECT_EQ((*creds)->uid, ::getuid());
  EXPECT_EQ((*creds)->gid, ::getgid());
  EXPECT_GE((*creds)->pidfd, 0);
  absl::StatusOr<uint64_t> start = ReadProcessStartTime(::getpid());
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ((*creds)->start_time, *start);
  EXPECT_TRUE(StillRunning(**creds));
  ::close(client);
}

TEST(UnixListener, ForkedChildIsRecordedWithItsOwnPid) {
  TempDir dir;
  auto listener = Listen(dir.path() + "/api.sock");
  ASSERT_NE(listener, nullptr);
  FdSink sink;
  listener->Start(sink.Handler());
  int release[2];
  ASSERT_EQ(::pipe(release), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(release[1]);
    int fd = ConnectTo(listener->socket_path());
    char c;
    // Stay alive (and connected) until the parent is done looking.
    (void)!::read(release[0], &c, 1);
    ::_exit(fd >= 0 ? 0 : 1);
  }
  ::close(release[0]);
  ASSERT_TRUE(WaitFor([&] { return sink.Fds().size() == 1; }));
  absl::StatusOr<std::shared_ptr<const PeerCredentials>> creds =
      listener->Lookup(absl::StrCat("fd:", sink.Fds()[0]));
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ((*creds)->pid, child);
  EXPECT_NE((*creds)->pid, ::getpid());
  EXPECT_TRUE(StillRunning(**creds));

  // Once the child exits, its credentials no longer describe a live process:
  // first as a zombie (the pidfd signals), then reaped.
  ::kill(child, SIGKILL);
  EXPECT_TRUE(WaitFor([&] { return !StillRunning(**creds); }));
  int wstatus;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  EXPECT_FALSE(StillRunning(**creds));
  ::close(release[1]);
}

TEST(StillRunning, RefusesPidZeroAndUnknownStartTime) {
  PeerCredentials zero;
  EXPECT_FALSE(StillRunning(zero));
  PeerCredentials no_start;
  no_start.pid = ::getpid();
  EXPECT_FALSE(StillRunning(no_start));
}

TEST(StillRunning, RefusesADifferentStartTime) {
  // What a recycled pid looks like when no pidfd is available.
  PeerCredentials creds;
  creds.pid = ::getpid();
  creds.start_time = ReadProcessStartTime(::getpid()).value() + 1;
  EXPECT_FALSE(StillRunning(creds));
  creds.start_time -= 1;
  EXPECT_TRUE(StillRunning(creds));
}

TEST(StillRunning, WithoutPidfdAReapedProcessIsDetectedByItsStartTime) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  PeerCredentials creds;
  creds.pid = child;
  ASSERT_TRUE(WaitFor([&] { return ReadProcessStartTime(child).ok(); }));
  creds.start_time = ReadProcessStartTime(child).value();
  EXPECT_TRUE(StillRunning(creds));
  ::kill(child, SIGKILL);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  EXPECT_FALSE(StillRunning(creds));
}

TEST(ReadProcessStartTime, ParsesCommWithSpacesAndParentheses) {
  TempDir dir;
  ASSERT_EQ(::mkdir((dir.path() + "/7").c_str(), 0755), 0);
  // Fields after "(comm)": state(3) ... starttime(22).
  std::string rest;
  for (int field = 3; field <= 52; ++field) rest += " " + std::to_string(field == 22 ? 987654 : field);
  std::ofstream(dir.path() + "/7/stat") << "7 (a) b (c)" << rest << "\n";
  absl::StatusOr<uint64_t> start = ReadProcessStartTime(7, dir.path());
  ASSERT_TRUE(start.ok()) << start.status();
  EXPECT_EQ(*start, 987654u);
}

TEST(ReadProcessStartTime, MissingProcessIsNotFound) {
  TempDir dir;
  ExpectStatus(ReadProcessStartTime(7, dir.path()).status(), absl::StatusCode::kNotFound,
               "process 7 not found");
}

TEST(ReadProcessStartTime, TruncatedStatIsInternal) {
  TempDir dir;
  ASSERT_EQ(::mkdir((dir.path() + "/7").c_str(), 0755), 0);
  std::ofstream(dir.path() + "/7/stat") << "7 (a) S 1 2 3\n";
  ExpectStatus(ReadProcessStartTime(7, dir.path()).status(), absl::StatusCode::kInternal,
               "no starttime field");
}

TEST(UnixListener, LookupRejectsPeersThatAreNotAcceptedConnections) {
  TempDir dir;
  auto listener = Listen(dir.path() + "/api.sock");
  ASSERT_NE(listener, nullptr);
  ExpectStatus(listener->Lookup("unix:").status(), absl::StatusCode::kInvalidArgument, "want fd:<n>");
  ExpectStatus(listener->Lookup("fd:x").status(), absl::StatusCode::kInvalidArgument, "want fd:<n>");
  ExpectStatus(listener->Lookup("fd:0").status(), absl::StatusCode::kNotFound, "no open connection fd:0");
}

TEST(UnixListener, FdReusedByAnotherFileIsNotFoundAndSwept) {
  TempDir dir;
  auto listener = Listen(dir.path() + "/api.sock");
  ASSERT_NE(listener, nullptr);
  std::atomic<int> handed{-1};
  listener->Start([&](int fd) { handed = fd; });
  int client = ConnectTo(listener->socket_path());
  ASSERT_GE(client, 0);
  ASSERT_TRUE(WaitFor([&] { return handed.load() >= 0; }));
  int fd = handed.load();
  std::string peer = absl::StrCat("fd:", fd);
  ASSERT_TRUE(listener->Lookup(peer).ok());
  // The owner closes the connection and the number goes to another file.
  int other = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_EQ(::dup2(other, fd), fd);
  ::close(other);
  ExpectStatus(listener->Lookup(peer).status(), absl::StatusCode::kNotFound, "no open connection");
  listener->SweepClosedConnections();
  EXPECT_TRUE(listener->ConnectionFds().empty());
  ::close(fd);
  ::close(client);
}

TEST(UnixListener, SweepForgetsClosedConnectionsAndKeepsOpenOnes) {
  TempDir dir;
  auto listener = Listen(dir.path() + "/api.sock");
  ASSERT_NE(listener, nullptr);
  FdSink sink;
  listener->Start(sink.Handler());
  int a = ConnectTo(listener->socket_path());
  int b = ConnectTo(listener->socket_path());
  ASSERT_TRUE(WaitFor([&] { return sink.Fds().size() == 2; }));
  ::close(sink.Fds()[0]);
  listener->SweepClosedConnections();
  EXPECT_EQ(listener->ConnectionFds(), std::vector<int>{sink.Fds()[1]});
  ::close(a);
  ::close(b);
  ::close(sink.Fds()[1]);
}

// gRPC names a connection added with AddInsecureChannelFromFd "fd:<n>",
// which is what Lookup() relies on.
class PeerRecorder final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    {
      absl::MutexLock lock(&mu_);
      peers_.push_back(ctx->peer());
    }
    class Done final : public grpc::ServerGenericBidiReactor {
     public:
      Done() { Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "recorded")); }
      void OnDone() override { delete this; }
    };
    return new Done();
  }
  std::vector<std::string> peers() {
    absl::MutexLock lock(&mu_);
    return peers_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> peers_;
};

TEST(UnixListener, GrpcReportsTheHandedOverFdAsThePeer) {
  TempDir dir;
  auto listener = Listen(dir.path() + "/api.sock");
  ASSERT_NE(listener, nullptr);
  PeerRecorder recorder;
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(&recorder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  std::atomic<int> handed{-1};
  listener->Start([&](int fd) {
    handed = fd;
    grpc::AddInsecureChannelFromFd(server.get(), fd);
  });
  auto stub = SpiffeWorkloadAPI::NewStub(
      grpc::CreateChannel("unix:" + listener->socket_path(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  JWTSVIDResponse resp;
  grpc::Status s = stub->FetchJWTSVID(&ctx, JWTSVIDRequest(), &resp);
  EXPECT_EQ(s.error_message(), "recorded");
  ASSERT_EQ(recorder.peers().size(), 1u);
  EXPECT_EQ(recorder.peers()[0], absl::StrCat("fd:", handed.load()));
  EXPECT_TRUE(listener->Lookup(recorder.peers()[0]).ok());
  server->Shutdown();
}

}  // namespace
}  // namespace sigil::agent
