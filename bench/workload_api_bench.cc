// Workload API over its Unix socket, client and server in one run:
//   BM_FetchX509SvidFirstResponse  open FetchX509SVID on a connected channel
//                                  and read the first message (peer lookup,
//                                  pid checks, unix + sha256 attestation from
//                                  a warm digest cache, view, PKCS#8 key,
//                                  DER chain), then cancel;
//   BM_FetchJwtSvid                the unary call (token pre-minted by the
//                                  fake cache, as a warm agent cache would);
//   BM_BareUnaryEcho               the floor: a plain gRPC server listening
//                                  on "unix:" echoing a unary request;
//   BM_BareStreamFirstResponse     a plain gRPC callback stream sending one
//                                  canned X509SVIDResponse (what streaming
//                                  itself costs, before anything Sigil does).
// And the pieces of a call: BM_UnixAttestSelf, BM_StillRunningByPidfd /
// BM_StillRunningByStartTime, BM_Pkcs8Encode (what the service's key
// encoding cache saves).
// Goal: BM_FetchX509SvidFirstResponse within 2x BM_BareUnaryEcho.
//
// After the benchmarks, unless --streams=0: a separate agent process (this
// binary re-executed with --serve=<socket>) serves the API while this process
// opens --streams (default 1000) concurrent FetchX509SVID streams, each on
// its own connection like separate workloads (then all on one connection,
// to tell stream from connection cost); it prints the agent's RSS and
// thread count before and after, the RSS per stream, and how long a bundle
// rotation takes to reach every stream.

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "attestors/workload/unix/unix_attestor.h"
#include "attestors/workload/workload_attestor.h"
#include "common/file_util.h"
#include "node-agent/workload_api/identity_source.h"
#include "node-agent/workload_api/server.h"
#include "spiffe/jwtsvid.h"
#include "spiffe/spiffe_test_util.h"
#include "workload.grpc.pb.h"

extern char** environ;

namespace sigil::agent {
namespace {

using crypto::KeyType;
using spiffe::testing::LeafTemplate;
using spiffe::testing::MakeRootCa;
using spiffe::testing::TestKey;
using spiffe::testing::TestNow;

// A warm agent cache: one identity for every workload, one bundle; Rotate()
// replaces the bundle and notifies every subscriber.
class StaticSource final : public IdentitySource {
 public:
  StaticSource()
      : root_(MakeRootCa("example.org", TestKey(KeyType::kEcP256, 1))),
        identity_{"entry",
                  spiffe::SpiffeId::FromString("spiffe://example.org/bench").value(),
                  "",
                  {root_.Issue(LeafTemplate("spiffe://example.org/bench"),
                               TestKey(KeyType::kEcP256, 2).public_key())},
                  TestKey(KeyType::kEcP256, 2),
                  {}} {
    const crypto::PrivateKey& key = TestKey(KeyType::kEcP256, 2);
    auto bundle = std::make_shared<spiffe::Bundle>(spiffe::TrustDomain::FromString("example.org").value());
    bundle->AddX509Authority(root_.cert);
    bundle_ = bundle;
    spiffe::JwtSvidClaims claims{identity_.spiffe_id, {"bench"}, TestNow() + absl::Hours(1), TestNow(), ""};
    token_ = spiffe::SignJwtSvid(claims, key, "kid").value();
  }

  void Rotate() {
    auto bundle = std::make_shared<spiffe::Bundle>(*bundle_);
    bundle->AddX509Authority(MakeRootCa("example.org", TestKey(KeyType::kEcP256, 3 + rotations_++)).cert);
    std::vector<std::function<void()>> callbacks;
    {
      absl::MutexLock lock(&mu_);
      bundle_ = bundle;
      for (const auto& [id, cb] : subscribers_) callbacks.push_back(cb);
    }
    for (const auto& cb : callbacks) cb();
  }

  WorkloadView View(const attestors::Selectors&) const override {
    absl::MutexLock lock(&mu_);
    WorkloadView view;
    view.identities = {identity_};
    view.bundle = bundle_;
    view.synced = true;
    return view;
  }
  std::unique_ptr<Subscription> Subscribe(const attestors::Selectors&,
                                          std::function<void()> on_change) override {
    absl::MutexLock lock(&mu_);
    int id = next_++;
    subscribers_[id] = std::move(on_change);
    return std::make_unique<Sub>(this, id);
  }
  absl::StatusOr<std::vector<JwtIdentity>> FetchJwtSvids(const attestors::Selectors&, const std::string&,
                                                         const std::vector<std::string>&) override {
    return std::vector<JwtIdentity>{{identity_.spiffe_id, token_, "", TestNow() + absl::Hours(1)}};
  }
  spiffe::BundleSet AllBundles() const override {
    absl::MutexLock lock(&mu_);
    spiffe::BundleSet set;
    set.Add(*bundle_);
    return set;
  }

 private:
  class Sub final : public Subscription {
   public:
    Sub(StaticSource* s, int id) : s_(s), id_(id) {}
    ~Sub() override {
      absl::MutexLock lock(&s_->mu_);
      s_->subscribers_.erase(id_);
    }

   private:
    StaticSource* s_;
    int id_;
  };

  spiffe::testing::TestCa root_;
  X509Identity identity_;
  std::string token_;
  int rotations_ = 0;
  mutable absl::Mutex mu_;
  std::shared_ptr<const spiffe::Bundle> bundle_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::function<void()>> subscribers_ ABSL_GUARDED_BY(mu_);
  int next_ ABSL_GUARDED_BY(mu_) = 0;
};

std::unique_ptr<attestors::workload::WorkloadAttestorRegistry> UnixRegistry() {
  std::vector<std::unique_ptr<attestors::workload::WorkloadAttestor>> list;
  list.push_back(std::make_unique<attestors::workload::UnixAttestor>());
  return attestors::workload::WorkloadAttestorRegistry::Create(std::move(list)).value();
}

std::string TempSocketDir() {
  char tmpl[] = "/tmp/sigil-wlbench-XXXXXX";
  return ::mkdtemp(tmpl);
}

std::shared_ptr<grpc::Channel> PrivateChannel(const std::string& socket) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
}

// --- The Sigil Workload API, in process ---------------------------------------

struct AgentFixture {
  AgentFixture() {
    dir = TempSocketDir();
    WorkloadApiServer::Options o;
    o.socket_path = dir + "/api.sock";
    server = WorkloadApiServer::Start(o, &source, registry.get()).value();
    stub = SpiffeWorkloadAPI::NewStub(PrivateChannel(server->socket_path()));
  }
  ~AgentFixture() {
    stub.reset();
    server.reset();
    std::system(("rm -rf '" + dir + "'").c_str());
  }
  std::string dir;
  StaticSource source;
  std::unique_ptr<attestors::workload::WorkloadAttestorRegistry> registry = UnixRegistry();
  std::unique_ptr<WorkloadApiServer> server;
  std::unique_ptr<SpiffeWorkloadAPI::Stub> stub;
};

void BM_FetchX509SvidFirstResponse(benchmark::State& state) {
  AgentFixture f;
  size_t bytes = 0;
  for (auto _ : state) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("workload.spiffe.io", "true");
    auto reader = f.stub->FetchX509SVID(&ctx, X509SVIDRequest());
    X509SVIDResponse resp;
    if (!reader->Read(&resp)) {
      state.SkipWithError(reader->Finish().error_message().c_str());
      break;
    }
    bytes = resp.ByteSizeLong();
    ctx.TryCancel();
    reader->Finish();
  }
  state.counters["response_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_FetchX509SvidFirstResponse)->UseRealTime()->MinTime(2.0);

void BM_FetchJwtSvid(benchmark::State& state) {
  AgentFixture f;
  JWTSVIDRequest req;
  req.add_audience("bench");
  for (auto _ : state) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("workload.spiffe.io", "true");
    JWTSVIDResponse resp;
    grpc::Status s = f.stub->FetchJWTSVID(&ctx, req, &resp);
    if (!s.ok()) {
      state.SkipWithError(s.error_message().c_str());
      break;
    }
  }
}
BENCHMARK(BM_FetchJwtSvid)->UseRealTime()->MinTime(2.0);

// --- The pieces of a call, to explain the figures -------------------------------

void BM_UnixAttestSelf(benchmark::State& state) {
  attestors::workload::UnixAttestor attestor;
  attestors::workload::WorkloadProcess self{::getpid(), ::getuid(), ::getgid()};
  for (auto _ : state) benchmark::DoNotOptimize(attestor.Attest(self));
}
BENCHMARK(BM_UnixAttestSelf);

// The pid-reuse check as it runs with a pidfd (one poll), and the fallback
// for kernels without pidfds (re-reading /proc/<pid>/stat).
void BM_StillRunningByPidfd(benchmark::State& state) {
  PeerCredentials creds;
  creds.pid = ::getpid();
  creds.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
  for (auto _ : state) benchmark::DoNotOptimize(StillRunning(creds));
}
BENCHMARK(BM_StillRunningByPidfd);

void BM_StillRunningByStartTime(benchmark::State& state) {
  PeerCredentials creds;
  creds.pid = ::getpid();
  creds.start_time = ReadProcessStartTime(::getpid()).value();
  for (auto _ : state) benchmark::DoNotOptimize(StillRunning(creds));
}
BENCHMARK(BM_StillRunningByStartTime);

void BM_Pkcs8Encode(benchmark::State& state) {
  const crypto::PrivateKey& key = TestKey(KeyType::kEcP256, 2);
  for (auto _ : state) benchmark::DoNotOptimize(key.ToPkcs8Der());
}
BENCHMARK(BM_Pkcs8Encode);

// --- Plain gRPC over a Unix socket, for comparison ------------------------------

class Echo final : public SpiffeWorkloadAPI::WithCallbackMethod_FetchX509SVID<SpiffeWorkloadAPI::Service> {
 public:
  explicit Echo(X509SVIDResponse canned) : canned_(std::move(canned)) {}
  grpc::Status FetchJWTSVID(grpc::ServerContext*, const JWTSVIDRequest* req, JWTSVIDResponse* resp) override {
    resp->add_svids()->set_svid(req->audience(0));
    return grpc::Status::OK;
  }
  grpc::ServerWriteReactor<X509SVIDResponse>* FetchX509SVID(grpc::CallbackServerContext*,
                                                            const X509SVIDRequest*) override {
    class Once final : public grpc::ServerWriteReactor<X509SVIDResponse> {
     public:
      explicit Once(const X509SVIDResponse* msg) { StartWrite(msg); }
      void OnWriteDone(bool) override {}
      void OnCancel() override { Finish(grpc::Status::CANCELLED); }
      void OnDone() override { delete this; }
    };
    return new Once(&canned_);
  }

 private:
  const X509SVIDResponse canned_;
};

struct BareFixture {
  BareFixture() : echo(CannedResponse()) {
    dir = TempSocketDir();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + dir + "/echo.sock", grpc::InsecureServerCredentials());
    builder.RegisterService(&echo);
    server = builder.BuildAndStart();
    stub = SpiffeWorkloadAPI::NewStub(PrivateChannel(dir + "/echo.sock"));
  }
  ~BareFixture() {
    stub.reset();
    server->Shutdown();
    std::system(("rm -rf '" + dir + "'").c_str());
  }
  // The same message FetchX509SVID sends.
  static X509SVIDResponse CannedResponse() {
    StaticSource source;
    WorkloadView view = source.View({});
    X509SVIDResponse resp;
    X509SVID* svid = resp.add_svids();
    svid->set_spiffe_id(view.identities[0].spiffe_id.ToString());
    svid->set_x509_svid(crypto::ConcatDer(view.identities[0].chain));
    svid->set_x509_svid_key(view.identities[0].key.ToPkcs8Der());
    svid->set_bundle(view.bundle->X509AuthoritiesDer());
    return resp;
  }
  std::string dir;
  Echo echo;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<SpiffeWorkloadAPI::Stub> stub;
};

void BM_BareUnaryEcho(benchmark::State& state) {
  BareFixture f;
  JWTSVIDRequest req;
  req.add_audience("bench");
  for (auto _ : state) {
    grpc::ClientContext ctx;
    JWTSVIDResponse resp;
    grpc::Status s = f.stub->FetchJWTSVID(&ctx, req, &resp);
    if (!s.ok()) {
      state.SkipWithError(s.error_message().c_str());
      break;
    }
  }
}
BENCHMARK(BM_BareUnaryEcho)->UseRealTime()->MinTime(2.0);

void BM_BareStreamFirstResponse(benchmark::State& state) {
  BareFixture f;
  for (auto _ : state) {
    grpc::ClientContext ctx;
    auto reader = f.stub->FetchX509SVID(&ctx, X509SVIDRequest());
    X509SVIDResponse resp;
    if (!reader->Read(&resp)) {
      state.SkipWithError("stream ended without a message");
      break;
    }
    ctx.TryCancel();
    reader->Finish();
  }
}
BENCHMARK(BM_BareStreamFirstResponse)->UseRealTime()->MinTime(2.0);

// --- 1,000 concurrent streams -----------------------------------------------------

void RaiseFdLimit() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// VmRSS (kB) and Threads of a process.
std::pair<long, long> RssAndThreads(pid_t pid) {
  std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status")).value_or("");
  auto field = [&](const char* key) {
    size_t at = status.find(key);
    return at == std::string::npos ? -1L : std::atol(status.c_str() + at + std::strlen(key));
  };
  return {field("VmRSS:"), field("Threads:")};
}

// The agent process: serves until stdin closes; "rotate" lines rotate the
// bundle.
int Serve(const std::string& socket) {
  RaiseFdLimit();
  StaticSource source;
  auto registry = UnixRegistry();
  WorkloadApiServer::Options o;
  o.socket_path = socket;
  auto server = WorkloadApiServer::Start(o, &source, registry.get());
  if (!server.ok()) {
    std::fprintf(stderr, "agent: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("READY\n");
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "rotate") source.Rotate();
  }
  return 0;
}

void MeasureStreams(int streams, bool shared_connection) {
  RaiseFdLimit();
  std::string dir = TempSocketDir();
  std::string socket = dir + "/api.sock";
  int to_agent[2], from_agent[2];
  if (::pipe(to_agent) != 0 || ::pipe(from_agent) != 0) return;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_agent[0], 0);
  posix_spawn_file_actions_adddup2(&actions, from_agent[1], 1);
  posix_spawn_file_actions_addclose(&actions, to_agent[1]);
  posix_spawn_file_actions_addclose(&actions, from_agent[0]);
  std::string arg0 = "workload_api_bench", serve = "--serve=" + socket;
  char* argv[] = {arg0.data(), serve.data(), nullptr};
  pid_t agent = -1;
  if (posix_spawn(&agent, "/proc/self/exe", &actions, nullptr, argv, environ) != 0) return;
  posix_spawn_file_actions_destroy(&actions);
  ::close(to_agent[0]);
  ::close(from_agent[1]);
  char ready[16] = {0};
  if (::read(from_agent[0], ready, sizeof(ready) - 1) <= 0) {
    std::fprintf(stderr, "agent did not start\n");
    return;
  }

  struct Stream {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<SpiffeWorkloadAPI::Stub> stub;
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReader<X509SVIDResponse>> reader;
  };
  std::shared_ptr<grpc::Channel> shared = PrivateChannel(socket);
  auto open = [&](Stream* s) {
    s->channel = shared_connection ? shared : PrivateChannel(socket);
    s->stub = SpiffeWorkloadAPI::NewStub(s->channel);
    s->ctx = std::make_unique<grpc::ClientContext>();
    s->ctx->AddMetadata("workload.spiffe.io", "true");
    s->reader = s->stub->FetchX509SVID(s->ctx.get(), X509SVIDRequest());
  };
  // One stream first, so gRPC's and the agent's fixed costs are in the baseline.
  Stream warm;
  open(&warm);
  X509SVIDResponse resp;
  if (!warm.reader->Read(&resp)) {
    std::fprintf(stderr, "warm-up stream failed\n");
    return;
  }
  absl::SleepFor(absl::Milliseconds(200));
  auto [rss0, threads0] = RssAndThreads(agent);

  std::vector<Stream> all(static_cast<size_t>(streams));
  absl::Time t0 = absl::Now();
  for (Stream& s : all) open(&s);
  int ok = 0;
  for (Stream& s : all) ok += s.reader->Read(&resp) ? 1 : 0;
  absl::Duration open_all = absl::Now() - t0;
  absl::SleepFor(absl::Milliseconds(500));
  auto [rss1, threads1] = RssAndThreads(agent);

  t0 = absl::Now();
  if (::write(to_agent[1], "rotate\n", 7) != 7) return;
  int pushed = 0;
  for (Stream& s : all) pushed += s.reader->Read(&resp) ? 1 : 0;
  absl::Duration push_all = absl::Now() - t0;

  std::printf("\n%d concurrent FetchX509SVID streams, %s (agent pid %d):\n", streams,
              shared_connection ? "all on one connection" : "one connection each", agent);
  std::printf("  streams opened with first response: %d in %.0f ms\n", ok,
              absl::ToDoubleMilliseconds(open_all));
  std::printf("  agent RSS: %ld kB -> %ld kB = %.1f kB per stream\n", rss0, rss1,
              static_cast<double>(rss1 - rss0) / streams);
  std::printf("  agent threads: %ld -> %ld\n", threads0, threads1);
  std::printf("  bundle rotation pushed to %d streams in %.1f ms\n", pushed,
              absl::ToDoubleMilliseconds(push_all));

  for (Stream& s : all) s.ctx->TryCancel();
  warm.ctx->TryCancel();
  ::close(to_agent[1]);
  int st;
  ::waitpid(agent, &st, 0);
  all.clear();
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace sigil::agent

int main(int argc, char** argv) {
  int streams = 1000;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--serve=")) return sigil::agent::Serve(std::string(arg));
    if (absl::ConsumePrefix(&arg, "--streams=")) {
      if (!absl::SimpleAtoi(arg, &streams)) return 2;
      continue;
    }
    rest.push_back(argv[i]);
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (streams > 0) {
    sigil::agent::MeasureStreams(streams, /*shared_connection=*/false);
    sigil::agent::MeasureStreams(streams, /*shared_connection=*/true);
  }
  return 0;
}
