#include <fcntl.h>
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "attestors/workload/unix/unix_attestor.h"
#include "attestors/workload/workload_attestor.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "node-agent/workload_api/identity_source.h"
#include "node-agent/workload_api/server.h"
#include "spiffe/bundle.h"
#include "spiffe/jwtsvid.h"
#include "spiffe/spiffe_test_util.h"
#include "spiffe/x509svid.h"
#include "tests/util/files.h"
#include "tests/util/grpc_status.h"
#include "tests/util/wait.h"
#include "workload.grpc.pb.h"

extern char** environ;

namespace sigil::agent {
namespace {

using attestors::Selector;
using attestors::Selectors;
using attestors::workload::UnixAttestor;
using attestors::workload::WorkloadAttestor;
using attestors::workload::WorkloadAttestorRegistry;
using attestors::workload::WorkloadProcess;
using crypto::KeyType;
using ::sigil::testing::ExpectGrpcStatus;
using ::sigil::testing::TempDir;
using ::sigil::testing::WaitFor;
using spiffe::testing::LeafTemplate;
using spiffe::testing::MakeRootCa;
using spiffe::testing::TestCa;
using spiffe::testing::TestKey;
using spiffe::testing::TestNow;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// The test binary re-executes itself as a workload (or, for the pid
// namespace test, as an agent); these variables tell the child what to do.
constexpr char kChildSocketEnv[] = "SIGIL_WLAPI_CHILD_SOCKET";
constexpr char kChildOutEnv[] = "SIGIL_WLAPI_CHILD_OUT";
constexpr char kChildModeEnv[] = "SIGIL_WLAPI_CHILD_MODE";

spiffe::SpiffeId Id(const std::string& s) { return spiffe::SpiffeId::FromString(s).value(); }
spiffe::TrustDomain Td(const std::string& s) { return spiffe::TrustDomain::FromString(s).value(); }

Selector PidSelector(pid_t pid) { return Selector{"test", absl::StrCat("pid:", pid)}; }

// Test trust domains: example.org (the agent's) and fed.org (federated).
class Pki {
 public:
  Pki()
      : root_(MakeRootCa("example.org", TestKey(KeyType::kEcP256, 40))),
        next_root_(MakeRootCa("example.org", TestKey(KeyType::kEcP256, 42))),
        fed_root_(MakeRootCa("fed.org", TestKey(KeyType::kEcP256, 41))) {}

  X509Identity Identity(const std::string& entry_id, const std::string& id, const std::string& hint = "",
                        int key_index = 50, std::vector<std::string> federates_with = {}) const {
    const crypto::PrivateKey& key = TestKey(KeyType::kEcP256, key_index);
    return X509Identity{entry_id, Id(id),
                        hint,     {root_.Issue(LeafTemplate(id), key.public_key())},
                        key,      std::move(federates_with)};
  }

  // `extra_root` adds a second X.509 authority (a rotation).
  std::shared_ptr<const spiffe::Bundle> OwnBundle(bool extra_root = false) const {
    auto b = std::make_shared<spiffe::Bundle>(Td("example.org"));
    b->AddX509Authority(root_.cert);
    if (extra_root) b->AddX509Authority(next_root_.cert);
    EXPECT_TRUE(b->AddJwtAuthority({"own-kid", jwt_key().public_key()}).ok());
    return b;
  }
  std::shared_ptr<const spiffe::Bundle> FedBundle() const {
    auto b = std::make_shared<spiffe::Bundle>(Td("fed.org"));
    b->AddX509Authority(fed_root_.cert);
    EXPECT_TRUE(b->AddJwtAuthority({"fed-kid", fed_jwt_key().public_key()}).ok());
    return b;
  }
  const crypto::PrivateKey& jwt_key() const { return TestKey(KeyType::kEcP256, 43); }
  const crypto::PrivateKey& fed_jwt_key() const { return TestKey(KeyType::kEcP256, 44); }

 private:
  TestCa root_;
  TestCa next_root_;
  TestCa fed_root_;
};

// An IdentitySource over a list of entries, each granting one identity to
// workloads holding all of its selectors.
class FakeIdentitySource final : public IdentitySource {
 public:
  explicit FakeIdentitySource(const Pki* pki) : pki_(pki) {}

  void SetEntry(const Selectors& required, X509Identity identity) {
    {
      absl::MutexLock lock(&mu_);
      std::string key = identity.entry_id;
      entries_.insert_or_assign(key, Entry{required, std::move(identity)});
    }
    Notify();
  }
  void RemoveEntry(const std::string& entry_id) {
    {
      absl::MutexLock lock(&mu_);
      entries_.erase(entry_id);
    }
    Notify();
  }
  void SetBundle(std::shared_ptr<const spiffe::Bundle> b) {
    {
      absl::MutexLock lock(&mu_);
      bundle_ = std::move(b);
    }
    Notify();
  }
  void SetFederatedBundle(std::shared_ptr<const spiffe::Bundle> b) {
    {
      absl::MutexLock lock(&mu_);
      federated_[b->trust_domain().name()] = std::move(b);
    }
    Notify();
  }
  void SetSynced(bool synced) {
    {
      absl::MutexLock lock(&mu_);
      synced_ = synced;
    }
    Notify();
  }
  // A change notification after which every view is as it was.
  void Notify() {
    absl::MutexLock notify_lock(&notify_mu_);
    std::vector<std::function<void()>> callbacks;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [id, sub] : subscribers_) callbacks.push_back(sub.second);
    }
    for (const auto& cb : callbacks) cb();
  }

  size_t subscribers() const {
    absl::MutexLock lock(&mu_);
    return subscribers_.size();
  }
  std::vector<Selectors> viewed_selectors() const {
    absl::MutexLock lock(&mu_);
    return viewed_;
  }

  // IdentitySource
  WorkloadView View(const Selectors& selectors) const override {
    absl::MutexLock lock(&mu_);
    viewed_.push_back(selectors);
    WorkloadView view;
    for (const auto& [id, e] : entries_) {
      bool match = std::all_of(e.required.begin(), e.required.end(), [&](const Selector& s) {
        return std::find(selectors.begin(), selectors.end(), s) != selectors.end();
      });
      if (!match) continue;
      view.identities.push_back(e.identity);
      for (const std::string& td : e.identity.federates_with) {
        auto it = federated_.find(td);
        if (it != federated_.end()) view.federated_bundles[td] = it->second;
      }
    }
    view.bundle = bundle_;
    view.synced = synced_;
    return view;
  }

  std::unique_ptr<Subscription> Subscribe(const Selectors& selectors,
                                          std::function<void()> on_change) override {
    absl::MutexLock lock(&mu_);
    int id = next_id_++;
    subscribers_[id] = {selectors, std::move(on_change)};
    return std::make_unique<Sub>(this, id);
  }

  absl::StatusOr<std::vector<JwtIdentity>> FetchJwtSvids(const Selectors& selectors,
                                                         const std::string& spiffe_id,
                                                         const std::vector<std::string>& audience) override {
    WorkloadView view = View(selectors);
    std::vector<JwtIdentity> out;
    for (const X509Identity& id : view.identities) {
      if (!spiffe_id.empty() && id.spiffe_id.ToString() != spiffe_id) continue;
      spiffe::JwtSvidClaims claims{id.spiffe_id, audience, TestNow() + absl::Hours(1), TestNow(), ""};
      absl::StatusOr<std::string> token = spiffe::SignJwtSvid(claims, pki_->jwt_key(), "own-kid");
      if (!token.ok()) return token.status();
      out.push_back(JwtIdentity{id.spiffe_id, *token, id.hint, claims.expiry});
    }
    if (!spiffe_id.empty() && out.empty()) {
      return absl::PermissionDeniedError(absl::StrCat("no identity ", spiffe_id, " for this workload"));
    }
    return out;
  }

  spiffe::BundleSet AllBundles() const override {
    absl::MutexLock lock(&mu_);
    spiffe::BundleSet set;
    if (bundle_ != nullptr) set.Add(*bundle_);
    for (const auto& [td, b] : federated_) set.Add(*b);
    return set;
  }

 private:
  struct Entry {
    Selectors required;
    X509Identity identity;
  };
  class Sub final : public Subscription {
   public:
    Sub(FakeIdentitySource* source, int id) : source_(source), id_(id) {}
    ~Sub() override {
      // Holding notify_mu_ guarantees no callback of ours is running.
      absl::MutexLock notify_lock(&source_->notify_mu_);
      absl::MutexLock lock(&source_->mu_);
      source_->subscribers_.erase(id_);
    }

   private:
    FakeIdentitySource* source_;
    int id_;
  };

  const Pki* pki_;
  absl::Mutex notify_mu_;
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(notify_mu_);
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const spiffe::Bundle> bundle_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<const spiffe::Bundle>> federated_ ABSL_GUARDED_BY(mu_);
  bool synced_ ABSL_GUARDED_BY(mu_) = true;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::pair<Selectors, std::function<void()>>> subscribers_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<Selectors> viewed_ ABSL_GUARDED_BY(mu_);
};

// Emits test:pid:<pid>, records every process it attests, and can hold the
// attestation of processes other than this one until released.
class TestAttestor final : public WorkloadAttestor {
 public:
  const std::string& name() const override {
    static const std::string kName = "test";
    return kName;
  }
  absl::StatusOr<Selectors> Attest(const WorkloadProcess& p) override {
    absl::MutexLock lock(&mu_);
    seen_.push_back(p);
    if (hold_ == Hold::kAll || (hold_ == Hold::kOthers && p.pid != ::getpid())) {
      held_.push_back(p.pid);
      mu_.Await(absl::Condition(&released_));
    }
    return Selectors{PidSelector(p.pid)};
  }

  enum class Hold { kNone, kOthers, kAll };
  void HoldAttestations(Hold hold) {
    absl::MutexLock lock(&mu_);
    hold_ = hold;
    released_ = false;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  std::vector<pid_t> held() const {
    absl::MutexLock lock(&mu_);
    return held_;
  }
  std::vector<WorkloadProcess> seen() const {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  mutable absl::Mutex mu_;
  Hold hold_ ABSL_GUARDED_BY(mu_) = Hold::kNone;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<pid_t> held_ ABSL_GUARDED_BY(mu_);
  std::vector<WorkloadProcess> seen_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<WorkloadAttestorRegistry> MakeRegistry(TestAttestor** test_attestor) {
  std::vector<std::unique_ptr<WorkloadAttestor>> list;
  auto test = std::make_unique<TestAttestor>();
  if (test_attestor != nullptr) *test_attestor = test.get();
  list.push_back(std::move(test));
  list.push_back(std::make_unique<UnixAttestor>());
  return WorkloadAttestorRegistry::Create(std::move(list)).value();
}

std::unique_ptr<grpc::ClientContext> Ctx(bool header = true) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (header) ctx->AddMetadata("workload.spiffe.io", "true");
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return ctx;
}

std::unique_ptr<SpiffeWorkloadAPI::Stub> NewStub(const std::string& socket_path) {
  return SpiffeWorkloadAPI::NewStub(
      grpc::CreateChannel("unix:" + socket_path, grpc::InsecureChannelCredentials()));
}

// Reads a stream's first message; returns its status instead when the stream
// ends without one.
template <typename Response>
grpc::Status FirstOrStatus(grpc::ClientReader<Response>* reader, Response* out) {
  if (reader->Read(out)) return grpc::Status::OK;
  return reader->Finish();
}

// Starts the test binary as a child process running WorkloadApiChild.Run
// with `mode`; its output goes to `out_path`.
pid_t SpawnChild(const std::string& mode, const std::string& socket_path, const std::string& out_path) {
  std::vector<std::string> env_strings = {absl::StrCat(kChildModeEnv, "=", mode),
                                          absl::StrCat(kChildSocketEnv, "=", socket_path),
                                          absl::StrCat(kChildOutEnv, "=", out_path)};
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string self = "/proc/self/exe";
  std::string arg0 = "workload_api_test";
  std::string filter = "--gtest_filter=WorkloadApiChild.Run";
  char* argv[] = {arg0.data(), filter.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Waits (bounded) for a child to exit; its exit code, or -1.
int WaitChild(pid_t pid, absl::Duration timeout = absl::Seconds(30)) {
  int status = 0;
  bool done = WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (!done) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadOut(const std::string& path) { return ReadFile(path).value_or(""); }

class WorkloadApiTest : public ::testing::Test {
 protected:
  WorkloadApiTest() : source_(&pki_) {
    registry_ = MakeRegistry(&attestor_);
    source_.SetBundle(pki_.OwnBundle());
    source_.SetFederatedBundle(pki_.FedBundle());
  }

  void StartServer(WorkloadApiServiceOptions service = {}) {
    WorkloadApiServer::Options o;
    o.socket_path = dir_.path() + "/public/api.sock";
    o.service = std::move(service);
    absl::StatusOr<std::unique_ptr<WorkloadApiServer>> server =
        WorkloadApiServer::Start(std::move(o), &source_, registry_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = NewStub(server_->socket_path());
  }

  void SetUp() override { StartServer(); }
  // A test that failed while attestations were held must not hang here.
  void TearDown() override {
    attestor_->Release();
    server_.reset();
  }

  // An entry granting `id` to this test process.
  X509Identity AddMine(const std::string& entry_id, const std::string& id, const std::string& hint = "",
                       int key_index = 50, std::vector<std::string> federates_with = {}) {
    X509Identity identity = pki_.Identity(entry_id, id, hint, key_index, std::move(federates_with));
    source_.SetEntry({PidSelector(::getpid())}, identity);
    return identity;
  }

  Pki pki_;
  FakeIdentitySource source_;
  TestAttestor* attestor_ = nullptr;
  std::unique_ptr<WorkloadAttestorRegistry> registry_;
  TempDir dir_;
  std::unique_ptr<WorkloadApiServer> server_;
  std::unique_ptr<SpiffeWorkloadAPI::Stub> stub_;
};

// --- FetchX509SVID --------------------------------------------------------

TEST_F(WorkloadApiTest, FetchX509SvidSendsChainKeyBundleHintAndFederatedBundles) {
  X509Identity web = AddMine("entry-a", "spiffe://example.org/web", "internal", 50, {"fed.org"});
  X509Identity db = AddMine("entry-b", "spiffe://example.org/db", "", 51);
  auto ctx = Ctx();
  auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
  X509SVIDResponse resp;
  ASSERT_TRUE(FirstOrStatus(reader.get(), &resp).ok());
  ASSERT_EQ(resp.svids_size(), 2);
  const X509SVID& a = resp.svids(0);
  EXPECT_EQ(a.spiffe_id(), "spiffe://example.org/web");
  EXPECT_EQ(a.x509_svid(), crypto::ConcatDer(web.chain));
  EXPECT_EQ(a.x509_svid_key(), web.key.ToPkcs8Der());
  EXPECT_EQ(a.bundle(), pki_.OwnBundle()->X509AuthoritiesDer());
  EXPECT_EQ(a.hint(), "internal");
  EXPECT_EQ(resp.svids(1).spiffe_id(), "spiffe://example.org/db");
  EXPECT_EQ(resp.svids(1).x509_svid_key(), db.key.ToPkcs8Der());
  ASSERT_EQ(resp.federated_bundles().size(), 1u);
  EXPECT_EQ(resp.federated_bundles().at("spiffe://fed.org"), pki_.FedBundle()->X509AuthoritiesDer());
  // What a client library does with it: the SVID parses and verifies.
  absl::StatusOr<spiffe::X509Svid> parsed = spiffe::X509Svid::Parse(a.x509_svid(), a.x509_svid_key());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->id.ToString(), "spiffe://example.org/web");
  ctx->TryCancel();
}

TEST_F(WorkloadApiTest, CallerIsAttestedAsThisProcess) {
  AddMine("entry-a", "spiffe://example.org/web");
  auto ctx = Ctx();
  auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
  X509SVIDResponse resp;
  ASSERT_TRUE(FirstOrStatus(reader.get(), &resp).ok());
  std::vector<WorkloadProcess> seen = attestor_->seen();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().pid, ::getpid());
  EXPECT_EQ(seen.back().uid, ::getuid());
  EXPECT_EQ(seen.back().gid, ::getgid());
  // The view was asked for with the union of both attestors' selectors.
  Selectors viewed = source_.viewed_selectors().back();
  EXPECT_NE(std::find(viewed.begin(), viewed.end(), PidSelector(::getpid())), viewed.end());
  EXPECT_NE(std::find(viewed.begin(), viewed.end(), Selector{"unix", absl::StrCat("uid:", ::geteuid())}),
            viewed.end());
  ctx->TryCancel();
}

TEST_F(WorkloadApiTest, MissingSecurityHeaderIsInvalidArgumentOnEveryMethod) {
  const std::string kMsg = "security header missing from request";
  {
    auto ctx = Ctx(false);
    X509SVIDResponse r;
    auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
    ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::INVALID_ARGUMENT, kMsg);
  }
  {
    auto ctx = Ctx(false);
    X509BundlesResponse r;
    auto reader = stub_->FetchX509Bundles(ctx.get(), X509BundlesRequest());
    ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::INVALID_ARGUMENT, kMsg);
  }
  {
    auto ctx = Ctx(false);
    JWTBundlesResponse r;
    auto reader = stub_->FetchJWTBundles(ctx.get(), JWTBundlesRequest());
    ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::INVALID_ARGUMENT, kMsg);
  }
  {
    auto ctx = Ctx(false);
    JWTSVIDRequest req;
    req.add_audience("aud");
    JWTSVIDResponse r;
    ExpectGrpcStatus(stub_->FetchJWTSVID(ctx.get(), req, &r), grpc::StatusCode::INVALID_ARGUMENT, kMsg);
  }
  {
    auto ctx = Ctx(false);
    ValidateJWTSVIDRequest req;
    req.set_audience("aud");
    req.set_svid("x.y.z");
    ValidateJWTSVIDResponse r;
    ExpectGrpcStatus(stub_->ValidateJWTSVID(ctx.get(), req, &r), grpc::StatusCode::INVALID_ARGUMENT, kMsg);
  }
}

TEST_F(WorkloadApiTest, SecurityHeaderMustBeExactlyTrue) {
  AddMine("entry-a", "spiffe://example.org/web");
  auto ctx = Ctx(false);
  ctx->AddMetadata("workload.spiffe.io", "yes");
  X509SVIDResponse r;
  auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
  ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::INVALID_ARGUMENT, "security header");
}

TEST_F(WorkloadApiTest, NoIdentityIsPermissionDenied) {
  {
    auto ctx = Ctx();
    X509SVIDResponse r;
    auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
    ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::PERMISSION_DENIED,
                     "no identity issued");
  }
  {
    auto ctx = Ctx();
    X509BundlesResponse r;
    auto reader = stub_->FetchX509Bundles(ctx.get(), X509BundlesRequest());
    ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::PERMISSION_DENIED,
                     "no identity issued");
  }
  {
    auto ctx = Ctx();
    JWTBundlesResponse r;
    auto reader = stub_->FetchJWTBundles(ctx.get(), JWTBundlesRequest());
    ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::PERMISSION_DENIED,
                     "no identity issued");
  }
  {
    auto ctx = Ctx();
    JWTSVIDRequest req;
    req.add_audience("aud");
    JWTSVIDResponse r;
    ExpectGrpcStatus(stub_->FetchJWTSVID(ctx.get(), req, &r), grpc::StatusCode::PERMISSION_DENIED,
                     "no identity issued");
  }
}

TEST_F(WorkloadApiTest, FetchX509SvidWaitsForTheFirstSync) {
  source_.SetSynced(false);
  auto ctx = Ctx();
  auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
  // The call is now waiting: it subscribed and saw nothing yet.
  ASSERT_TRUE(WaitFor([&] { return source_.subscribers() == 1; }));
  AddMine("entry-a", "spiffe://example.org/web");
  source_.SetSynced(true);
  X509SVIDResponse resp;
  ASSERT_TRUE(FirstOrStatus(reader.get(), &resp).ok());
  ASSERT_EQ(resp.svids_size(), 1);
  EXPECT_EQ(resp.svids(0).spiffe_id(), "spiffe://example.org/web");
  ctx->TryCancel();
}

TEST_F(WorkloadApiTest, FirstSyncThatBringsNoIdentityIsPermissionDenied) {
  source_.SetSynced(false);
  auto ctx = Ctx();
  auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
  ASSERT_TRUE(WaitFor([&] { return source_.subscribers() == 1; }));
  source_.SetSynced(true);
  X509SVIDResponse r;
  ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::PERMISSION_DENIED,
                   "no identity issued");
}

TEST_F(WorkloadApiTest, UnsyncedAgentAnswersUnavailableAfterTheTimeout) {
  server_.reset();
  WorkloadApiServiceOptions o;
  o.first_sync_timeout = absl::Milliseconds(200);
  StartServer(o);
  source_.SetSynced(false);
  {
    auto ctx = Ctx();
    X509SVIDResponse r;
    auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
    ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::UNAVAILABLE,
                     "agent has not synchronized with the server yet");
  }
  {
    auto ctx = Ctx();
    JWTSVIDRequest req;
    req.add_audience("aud");
    JWTSVIDResponse r;
    ExpectGrpcStatus(stub_->FetchJWTSVID(ctx.get(), req, &r), grpc::StatusCode::UNAVAILABLE,
                     "agent has not synchronized with the server yet");
  }
  EXPECT_TRUE(WaitFor([&] { return source_.subscribers() == 0; }));
}

TEST_F(WorkloadApiTest, IdentitiesKnownBeforeTheFirstSyncAreServed) {
  source_.SetSynced(false);
  AddMine("entry-a", "spiffe://example.org/web");
  auto ctx = Ctx();
  auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
  X509SVIDResponse resp;
  ASSERT_TRUE(FirstOrStatus(reader.get(), &resp).ok());
  EXPECT_EQ(resp.svids_size(), 1);
  ctx->TryCancel();
}

TEST_F(WorkloadApiTest, FetchX509SvidPushesEveryChangeAndNeverADuplicate) {
  AddMine("entry-a", "spiffe://example.org/web", "", 50);
  auto ctx = Ctx();
  auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
  X509SVIDResponse first;
  ASSERT_TRUE(reader->Read(&first));

  // Notifications that change nothing send nothing: had they, the next
  // message read would equal `first`.
  for (int i = 0; i < 5; ++i) source_.Notify();
  X509Identity rotated = AddMine("entry-a", "spiffe://example.org/web", "", 52);
  X509SVIDResponse second;
  ASSERT_TRUE(reader->Read(&second));
  ASSERT_EQ(second.svids_size(), 1);
  EXPECT_EQ(second.svids(0).x509_svid(), crypto::ConcatDer(rotated.chain));
  EXPECT_EQ(second.svids(0).x509_svid_key(), rotated.key.ToPkcs8Der());

  // A bundle rotation reaches the SVID stream too.
  for (int i = 0; i < 5; ++i) source_.Notify();
  source_.SetBundle(pki_.OwnBundle(/*extra_root=*/true));
  X509SVIDResponse third;
  ASSERT_TRUE(reader->Read(&third));
  EXPECT_EQ(third.svids(0).bundle(), pki_.OwnBundle(true)->X509AuthoritiesDer());
  EXPECT_EQ(third.svids(0).x509_svid(), second.svids(0).x509_svid());

  // A second identity appears.
  AddMine("entry-b", "spiffe://example.org/db", "", 51);
  X509SVIDResponse fourth;
  ASSERT_TRUE(reader->Read(&fourth));
  EXPECT_EQ(fourth.svids_size(), 2);
  ctx->TryCancel();
  EXPECT_FALSE(reader->Read(&fourth));
  ExpectGrpcStatus(reader->Finish(), grpc::StatusCode::CANCELLED, "");
  EXPECT_TRUE(WaitFor([&] { return source_.subscribers() == 0; }));
}

TEST_F(WorkloadApiTest, RemovingTheLastIdentityEndsTheStreamWithPermissionDenied) {
  AddMine("entry-a", "spiffe://example.org/web");
  auto ctx = Ctx();
  auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
  X509SVIDResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  source_.RemoveEntry("entry-a");
  EXPECT_FALSE(reader->Read(&resp));
  ExpectGrpcStatus(reader->Finish(), grpc::StatusCode::PERMISSION_DENIED, "no identity issued");
  EXPECT_TRUE(WaitFor([&] { return source_.subscribers() == 0; }));
}

TEST_F(WorkloadApiTest, ManyStreamsEachGetTheUpdateWithoutAThreadPerStream) {
  AddMine("entry-a", "spiffe://example.org/web");
  auto threads = [] {
    std::string status = ReadFile("/proc/self/status").value_or("");
    size_t at = status.find("Threads:");
    return at == std::string::npos ? -1 : std::atoi(status.c_str() + at + 8);
  };
  // Warm up gRPC's own pools first.
  {
    auto ctx = Ctx();
    auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
    X509SVIDResponse r;
    ASSERT_TRUE(reader->Read(&r));
    ctx->TryCancel();
  }
  const int before = threads();
  constexpr int kStreams = 200;
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReader<X509SVIDResponse>>> readers;
  for (int i = 0; i < kStreams; ++i) {
    ctxs.push_back(Ctx());
    readers.push_back(stub_->FetchX509SVID(ctxs.back().get(), X509SVIDRequest()));
  }
  for (auto& reader : readers) {
    X509SVIDResponse r;
    ASSERT_TRUE(reader->Read(&r));
    ASSERT_EQ(r.svids_size(), 1);
  }
  EXPECT_EQ(source_.subscribers(), static_cast<size_t>(kStreams));
  // gRPC's own pools may grow a little on a loaded machine; a thread per
  // stream would add 200.
  EXPECT_LT(threads() - before, kStreams / 4) << "threads before " << before << ", after " << threads();
  AddMine("entry-b", "spiffe://example.org/db", "", 51);
  for (auto& reader : readers) {
    X509SVIDResponse r;
    ASSERT_TRUE(reader->Read(&r));
    ASSERT_EQ(r.svids_size(), 2);
  }
  for (auto& ctx : ctxs) ctx->TryCancel();
  EXPECT_TRUE(WaitFor([&] { return source_.subscribers() == 0; }));
}

TEST_F(WorkloadApiTest, ShutdownEndsOpenStreams) {
  AddMine("entry-a", "spiffe://example.org/web");
  auto ctx = Ctx();
  auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
  X509SVIDResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  server_->Shutdown(absl::Milliseconds(100));
  EXPECT_FALSE(reader->Read(&resp));
  EXPECT_FALSE(reader->Finish().ok());
  EXPECT_EQ(source_.subscribers(), 0u);
  struct stat st;
  EXPECT_NE(::lstat(server_->socket_path().c_str(), &st), 0) << "socket file left behind";
}

// --- FetchX509Bundles / FetchJWTBundles ------------------------------------

TEST_F(WorkloadApiTest, FetchX509BundlesSendsOwnAndFederatedBundlesAndPushesRotation) {
  AddMine("entry-a", "spiffe://example.org/web", "", 50, {"fed.org"});
  auto ctx = Ctx();
  auto reader = stub_->FetchX509Bundles(ctx.get(), X509BundlesRequest());
  X509BundlesResponse first;
  ASSERT_TRUE(FirstOrStatus(reader.get(), &first).ok());
  EXPECT_EQ(first.bundles().size(), 2u);
  EXPECT_EQ(first.bundles().at("spiffe://example.org"), pki_.OwnBundle()->X509AuthoritiesDer());
  EXPECT_EQ(first.bundles().at("spiffe://fed.org"), pki_.FedBundle()->X509AuthoritiesDer());
  // An SVID rotation does not change the bundles: nothing is sent for it.
  AddMine("entry-a", "spiffe://example.org/web", "", 52, {"fed.org"});
  source_.SetBundle(pki_.OwnBundle(/*extra_root=*/true));
  X509BundlesResponse second;
  ASSERT_TRUE(reader->Read(&second));
  EXPECT_EQ(second.bundles().at("spiffe://example.org"), pki_.OwnBundle(true)->X509AuthoritiesDer());
  ctx->TryCancel();
}

TEST_F(WorkloadApiTest, FetchJwtBundlesSendsJwksPerTrustDomain) {
  AddMine("entry-a", "spiffe://example.org/web", "", 50, {"fed.org"});
  auto ctx = Ctx();
  auto reader = stub_->FetchJWTBundles(ctx.get(), JWTBundlesRequest());
  JWTBundlesResponse resp;
  ASSERT_TRUE(FirstOrStatus(reader.get(), &resp).ok());
  EXPECT_EQ(resp.bundles().size(), 2u);
  EXPECT_EQ(resp.bundles().at("spiffe://example.org"), pki_.OwnBundle()->ToJwtJwksJson());
  EXPECT_EQ(resp.bundles().at("spiffe://fed.org"), pki_.FedBundle()->ToJwtJwksJson());
  // The JWKS parses back to the same JWT authorities.
  absl::StatusOr<spiffe::Bundle> parsed =
      spiffe::Bundle::ParseSpiffeJson(Td("example.org"), resp.bundles().at("spiffe://example.org"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_NE(parsed->FindJwtAuthority("own-kid"), nullptr);
  ctx->TryCancel();
}

TEST_F(WorkloadApiTest, UnauthenticatedVerifiersMayStreamTheAgentsBundle) {
  server_.reset();
  WorkloadApiServiceOptions o;
  o.allow_unauthenticated_verifiers = true;
  StartServer(o);
  {
    auto ctx = Ctx();
    auto reader = stub_->FetchX509Bundles(ctx.get(), X509BundlesRequest());
    X509BundlesResponse resp;
    ASSERT_TRUE(FirstOrStatus(reader.get(), &resp).ok());
    // Own bundle only: federated bundles belong to identities.
    EXPECT_EQ(resp.bundles().size(), 1u);
    EXPECT_EQ(resp.bundles().at("spiffe://example.org"), pki_.OwnBundle()->X509AuthoritiesDer());
    ctx->TryCancel();
  }
  {
    auto ctx = Ctx();
    auto reader = stub_->FetchJWTBundles(ctx.get(), JWTBundlesRequest());
    JWTBundlesResponse resp;
    ASSERT_TRUE(FirstOrStatus(reader.get(), &resp).ok());
    EXPECT_EQ(resp.bundles().size(), 1u);
    ctx->TryCancel();
  }
  {
    // SVIDs still need an identity.
    auto ctx = Ctx();
    X509SVIDResponse r;
    auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
    ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::PERMISSION_DENIED,
                     "no identity issued");
  }
}

// --- FetchJWTSVID -----------------------------------------------------------

TEST_F(WorkloadApiTest, FetchJwtSvidReturnsOneTokenPerIdentity) {
  AddMine("entry-a", "spiffe://example.org/web", "internal");
  AddMine("entry-b", "spiffe://example.org/db", "", 51);
  auto ctx = Ctx();
  JWTSVIDRequest req;
  req.add_audience("spiffe://example.org/backend");
  req.add_audience("other");
  JWTSVIDResponse resp;
  grpc::Status s = stub_->FetchJWTSVID(ctx.get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.svids_size(), 2);
  EXPECT_EQ(resp.svids(0).spiffe_id(), "spiffe://example.org/web");
  EXPECT_EQ(resp.svids(0).hint(), "internal");
  EXPECT_EQ(resp.svids(1).spiffe_id(), "spiffe://example.org/db");
  absl::StatusOr<spiffe::JwtSvid> token = spiffe::ParseInsecure(resp.svids(0).svid());
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->id.ToString(), "spiffe://example.org/web");
  EXPECT_THAT(token->audience, ElementsAre("spiffe://example.org/backend", "other"));
}

TEST_F(WorkloadApiTest, FetchJwtSvidForOneRequestedId) {
  AddMine("entry-a", "spiffe://example.org/web");
  AddMine("entry-b", "spiffe://example.org/db", "", 51);
  auto ctx = Ctx();
  JWTSVIDRequest req;
  req.add_audience("aud");
  req.set_spiffe_id("spiffe://example.org/db");
  JWTSVIDResponse resp;
  ASSERT_TRUE(stub_->FetchJWTSVID(ctx.get(), req, &resp).ok());
  ASSERT_EQ(resp.svids_size(), 1);
  EXPECT_EQ(resp.svids(0).spiffe_id(), "spiffe://example.org/db");
}

TEST_F(WorkloadApiTest, FetchJwtSvidForAnIdTheWorkloadDoesNotHoldIsPermissionDenied) {
  AddMine("entry-a", "spiffe://example.org/web");
  auto ctx = Ctx();
  JWTSVIDRequest req;
  req.add_audience("aud");
  req.set_spiffe_id("spiffe://example.org/admin");
  JWTSVIDResponse resp;
  ExpectGrpcStatus(stub_->FetchJWTSVID(ctx.get(), req, &resp), grpc::StatusCode::PERMISSION_DENIED,
                   "spiffe://example.org/admin");
}

TEST_F(WorkloadApiTest, FetchJwtSvidValidatesItsRequest) {
  AddMine("entry-a", "spiffe://example.org/web");
  JWTSVIDResponse resp;
  {
    auto ctx = Ctx();
    ExpectGrpcStatus(stub_->FetchJWTSVID(ctx.get(), JWTSVIDRequest(), &resp),
                     grpc::StatusCode::INVALID_ARGUMENT, "audience must be specified");
  }
  {
    auto ctx = Ctx();
    JWTSVIDRequest req;
    req.add_audience("a");
    req.add_audience("");
    ExpectGrpcStatus(stub_->FetchJWTSVID(ctx.get(), req, &resp), grpc::StatusCode::INVALID_ARGUMENT,
                     "audience values must not be empty");
  }
  {
    auto ctx = Ctx();
    JWTSVIDRequest req;
    req.add_audience("a");
    req.set_spiffe_id("https://example.org/web");
    ExpectGrpcStatus(stub_->FetchJWTSVID(ctx.get(), req, &resp), grpc::StatusCode::INVALID_ARGUMENT,
                     "invalid requested SPIFFE ID");
  }
}

// --- ValidateJWTSVID --------------------------------------------------------

class ValidateJwtSvidTest : public WorkloadApiTest {
 protected:
  void SetUp() override {
    WorkloadApiServiceOptions o;
    o.clock = &clock_;
    o.trust_domain = "example.org";
    StartServer(o);
  }
  std::string Sign(const std::string& subject, const std::string& audience, const crypto::PrivateKey& key,
                   const std::string& kid, const std::string& issuer = "") {
    spiffe::JwtSvidClaims claims{Id(subject), {audience}, TestNow() + absl::Minutes(5), TestNow(), issuer};
    return spiffe::SignJwtSvid(claims, key, kid).value();
  }
  grpc::Status Validate(const std::string& token, const std::string& audience,
                        ValidateJWTSVIDResponse* resp) {
    auto ctx = Ctx();
    ValidateJWTSVIDRequest req;
    req.set_svid(token);
    req.set_audience(audience);
    return stub_->ValidateJWTSVID(ctx.get(), req, resp);
  }
  FakeClock clock_{TestNow()};
};

TEST_F(ValidateJwtSvidTest, ValidTokenGivesSubjectAndClaims) {
  std::string token =
      Sign("spiffe://example.org/web", "backend", pki_.jwt_key(), "own-kid", "https://issuer.example.org");
  ValidateJWTSVIDResponse resp;
  grpc::Status s = Validate(token, "backend", &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.spiffe_id(), "spiffe://example.org/web");
  const auto& fields = resp.claims().fields();
  EXPECT_EQ(fields.at("sub").string_value(), "spiffe://example.org/web");
  EXPECT_EQ(fields.at("aud").string_value(), "backend");
  EXPECT_EQ(fields.at("exp").number_value(), absl::ToUnixSeconds(TestNow() + absl::Minutes(5)));
  EXPECT_EQ(fields.at("iss").string_value(), "https://issuer.example.org");
  EXPECT_EQ(fields.count("iat"), 1u);
}

TEST_F(ValidateJwtSvidTest, ForeignTokensKeepOnlySubAudExp) {
  std::string token =
      Sign("spiffe://fed.org/api", "backend", pki_.fed_jwt_key(), "fed-kid", "https://fed.org");
  ValidateJWTSVIDResponse resp;
  grpc::Status s = Validate(token, "backend", &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.spiffe_id(), "spiffe://fed.org/api");
  std::vector<std::string> names;
  for (const auto& [name, _] : resp.claims().fields()) names.push_back(name);
  EXPECT_THAT(names, UnorderedElementsAre("sub", "aud", "exp"));
}

TEST_F(ValidateJwtSvidTest, WrongAudienceIsInvalidArgument) {
  std::string token = Sign("spiffe://example.org/web", "backend", pki_.jwt_key(), "own-kid");
  ValidateJWTSVIDResponse resp;
  ExpectGrpcStatus(Validate(token, "frontend", &resp), grpc::StatusCode::INVALID_ARGUMENT, "jwtsvid:");
}

TEST_F(ValidateJwtSvidTest, ExpiredTokenIsInvalidArgument) {
  std::string token = Sign("spiffe://example.org/web", "backend", pki_.jwt_key(), "own-kid");
  clock_.Advance(absl::Hours(1));
  ValidateJWTSVIDResponse resp;
  ExpectGrpcStatus(Validate(token, "backend", &resp), grpc::StatusCode::INVALID_ARGUMENT, "expired");
}

TEST_F(ValidateJwtSvidTest, UnknownSigningKeyIsInvalidArgument) {
  std::string token =
      Sign("spiffe://example.org/web", "backend", TestKey(KeyType::kEcP256, 45), "unknown-kid");
  ValidateJWTSVIDResponse resp;
  ExpectGrpcStatus(Validate(token, "backend", &resp), grpc::StatusCode::INVALID_ARGUMENT, "jwtsvid:");
}

TEST_F(ValidateJwtSvidTest, MalformedTokenAndMissingFieldsAreInvalidArgument) {
  ValidateJWTSVIDResponse resp;
  ExpectGrpcStatus(Validate("not-a-jwt", "backend", &resp), grpc::StatusCode::INVALID_ARGUMENT, "jwtsvid:");
  ExpectGrpcStatus(Validate("a.b.c", "", &resp), grpc::StatusCode::INVALID_ARGUMENT,
                   "audience must be specified");
  ExpectGrpcStatus(Validate("", "backend", &resp), grpc::StatusCode::INVALID_ARGUMENT,
                   "svid must be specified");
}

TEST_F(ValidateJwtSvidTest, TokenFromFetchJwtSvidValidates) {
  AddMine("entry-a", "spiffe://example.org/web");
  auto ctx = Ctx();
  JWTSVIDRequest req;
  req.add_audience("backend");
  JWTSVIDResponse fetched;
  ASSERT_TRUE(stub_->FetchJWTSVID(ctx.get(), req, &fetched).ok());
  ASSERT_EQ(fetched.svids_size(), 1);
  ValidateJWTSVIDResponse resp;
  grpc::Status s = Validate(fetched.svids(0).svid(), "backend", &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.spiffe_id(), "spiffe://example.org/web");
}

// --- Health -----------------------------------------------------------------

TEST_F(WorkloadApiTest, HealthServiceReportsServing) {
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel("unix:" + server_->socket_path(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status s = health->Check(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(WorkloadApiTest, SocketIsWorldConnectableInA0755Directory) {
  struct stat st;
  ASSERT_EQ(::stat(server_->socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0777u);
  ASSERT_EQ(::stat((dir_.path() + "/public").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_F(WorkloadApiTest, SecondServerOnTheSameSocketIsRefused) {
  WorkloadApiServer::Options o;
  o.socket_path = server_->socket_path();
  absl::StatusOr<std::unique_ptr<WorkloadApiServer>> second =
      WorkloadApiServer::Start(o, &source_, registry_.get());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(second.status().message(), HasSubstr("already in use"));
}

// --- Caller identity across processes ----------------------------------------

TEST_F(WorkloadApiTest, ForkedChildIsServedByItsOwnPid) {
  // Not synced yet, so the child's call waits until its entry exists.
  source_.SetSynced(false);
  std::string out = dir_.path() + "/child.out";
  pid_t child = SpawnChild("x509", server_->socket_path(), out);
  ASSERT_GT(child, 0);
  source_.SetEntry({PidSelector(child)}, pki_.Identity("entry-child", "spiffe://example.org/child"));
  source_.SetSynced(true);
  EXPECT_EQ(WaitChild(child), 0) << ReadOut(out);
  EXPECT_EQ(ReadOut(out), "OK spiffe://example.org/child");
  bool seen = false;
  for (const WorkloadProcess& p : attestor_->seen()) {
    if (p.pid == child) {
      seen = true;
      EXPECT_EQ(p.uid, ::getuid());
    }
  }
  EXPECT_TRUE(seen);
  // This process holds no entry: the child's identity is not ours.
  auto ctx = Ctx();
  X509SVIDResponse r;
  auto reader = stub_->FetchX509SVID(ctx.get(), X509SVIDRequest());
  ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::PERMISSION_DENIED,
                   "no identity issued");
}

TEST_F(WorkloadApiTest, CallerThatExitsDuringAttestationIsRefused) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  spdlog::default_logger()->sinks().push_back(sink);
  spdlog::level::level_enum old_level = spdlog::get_level();
  spdlog::set_level(spdlog::level::debug);

  attestor_->HoldAttestations(TestAttestor::Hold::kOthers);
  std::string out = dir_.path() + "/child.out";
  pid_t child = SpawnChild("jwt", server_->socket_path(), out);
  ASSERT_GT(child, 0);
  source_.SetEntry({PidSelector(child)}, pki_.Identity("entry-child", "spiffe://example.org/child"));
  ASSERT_TRUE(WaitFor([&] { return !attestor_->held().empty(); }));
  EXPECT_EQ(attestor_->held()[0], child);
  ::kill(child, SIGKILL);
  WaitChild(child);
  attestor_->Release();

  const std::string expected = absl::StrCat("FetchJWTSVID pid=", child);
  bool logged = WaitFor([&] {
    for (const std::string& line : sink->last_formatted()) {
      if (absl::StrContains(line, expected) &&
          absl::StrContains(line, "PERMISSION_DENIED: workload process exited during attestation")) {
        return true;
      }
    }
    return false;
  });
  spdlog::set_level(old_level);
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
  EXPECT_TRUE(logged);
  EXPECT_EQ(ReadOut(out), "");
}

// The claim UnixListener's header makes: gRPC keeps a connection's fd open
// for as long as a call on it runs, even after the client has gone.
TEST_F(WorkloadApiTest, ConnectionFdStaysOpenWhileItsCallRuns) {
  attestor_->HoldAttestations(TestAttestor::Hold::kAll);
  // A private connection, which closes when the channel goes (gRPC otherwise
  // shares connections between channels to the same target).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = SpiffeWorkloadAPI::NewStub(
      grpc::CreateCustomChannel("unix:" + server_->socket_path(), grpc::InsecureChannelCredentials(), args));
  auto ctx = Ctx();
  grpc::Status client_status;
  std::thread call([&] {
    JWTSVIDRequest req;
    req.add_audience("aud");
    JWTSVIDResponse resp;
    client_status = stub->FetchJWTSVID(ctx.get(), req, &resp);
  });
  ASSERT_TRUE(WaitFor([&] { return !attestor_->held().empty(); }));
  std::vector<int> fds = server_->listener()->ConnectionFds();
  ASSERT_EQ(fds.size(), 1u);
  const int fd = fds[0];
  struct stat accepted;
  ASSERT_EQ(::fstat(fd, &accepted), 0);

  // The client cancels and goes away entirely.
  ctx->TryCancel();
  call.join();
  EXPECT_EQ(client_status.error_code(), grpc::StatusCode::CANCELLED);
  ctx.reset();
  stub.reset();
  // Wait until the server side of the socket sees the disconnect...
  ASSERT_TRUE(WaitFor([&] {
    char c;
    return ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0 || errno == ECONNRESET || errno == EBADF;
  }));
  // ...and give gRPC ample time to act on it.
  absl::SleepFor(absl::Milliseconds(300));
  struct stat now;
  ASSERT_EQ(::fstat(fd, &now), 0) << "fd closed while its call was still running";
  EXPECT_EQ(now.st_ino, accepted.st_ino);
  EXPECT_TRUE(server_->listener()->Lookup(absl::StrCat("fd:", fd)).ok());

  // Once the call completes, gRPC closes the fd and the sweep forgets it.
  attestor_->Release();
  EXPECT_TRUE(WaitFor([&] {
    struct stat st;
    return ::fstat(fd, &st) != 0 || st.st_ino != accepted.st_ino;
  }));
  const_cast<UnixListener*>(server_->listener())->SweepClosedConnections();
  std::vector<int> left = server_->listener()->ConnectionFds();
  EXPECT_EQ(std::count(left.begin(), left.end(), fd), 0);
}

// An agent in a child pid namespace sees callers outside it as pid 0.
TEST_F(WorkloadApiTest, CallerInvisibleFromTheAgentsPidNamespaceIsRefused) {
  std::string socket = dir_.path() + "/ns/api.sock";
  std::string out = dir_.path() + "/ns.out";
  std::vector<std::string> env_strings = {absl::StrCat(kChildModeEnv, "=server"),
                                          absl::StrCat(kChildSocketEnv, "=", socket),
                                          absl::StrCat(kChildOutEnv, "=", out)};
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string arg0 = "workload_api_test", filter = "--gtest_filter=WorkloadApiChild.Run";
  char* argv[] = {arg0.data(), filter.data(), nullptr};
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);

  pid_t mid = ::fork();
  ASSERT_GE(mid, 0);
  if (mid == 0) {
    // Only async-signal-safe calls from here to exec.
    if (::unshare(CLONE_NEWPID) != 0) ::_exit(77);
    pid_t agent = ::fork();
    if (agent < 0) ::_exit(78);
    if (agent == 0) {
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execve("/proc/self/exe", argv, envp.data());
      ::_exit(79);
    }
    int st;
    ::waitpid(agent, &st, 0);
    ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 80);
  }
  ::close(devnull);
  bool ready = WaitFor([&] { return ReadOut(out) == "READY" || ::waitpid(mid, nullptr, WNOHANG) == mid; });
  if (ReadOut(out) != "READY") {
    GTEST_SKIP() << "cannot create a pid namespace here (needs CAP_SYS_ADMIN)";
  }
  ASSERT_TRUE(ready);
  auto stub = NewStub(socket);
  auto ctx = Ctx();
  X509SVIDResponse r;
  auto reader = stub->FetchX509SVID(ctx.get(), X509SVIDRequest());
  ExpectGrpcStatus(FirstOrStatus(reader.get(), &r), grpc::StatusCode::PERMISSION_DENIED,
                   "not visible from the agent's pid namespace");
  std::ofstream(out + ".stop") << "stop";
  EXPECT_EQ(WaitChild(mid), 0);
}

// Not a test on its own: the body of the child processes started above.
TEST(WorkloadApiChild, Run) {
  const char* mode = std::getenv(kChildModeEnv);
  const char* socket = std::getenv(kChildSocketEnv);
  const char* out = std::getenv(kChildOutEnv);
  if (mode == nullptr || socket == nullptr || out == nullptr) {
    GTEST_SKIP() << "runs only as a child process of the tests above";
  }
  std::string m = mode;
  if (m == "server") {
    // An agent with no entries, inside its own pid namespace.
    Pki pki;
    FakeIdentitySource source(&pki);
    source.SetBundle(pki.OwnBundle());
    auto registry = MakeRegistry(nullptr);
    WorkloadApiServer::Options o;
    o.socket_path = socket;
    absl::StatusOr<std::unique_ptr<WorkloadApiServer>> server =
        WorkloadApiServer::Start(o, &source, registry.get());
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE(WriteFileAtomic(out, "READY", 0644).ok());
    WaitFor([&] { return ::access((std::string(out) + ".stop").c_str(), F_OK) == 0; }, absl::Seconds(30));
    return;
  }
  auto stub = NewStub(socket);
  auto ctx = Ctx();
  std::string result;
  if (m == "x509") {
    auto reader = stub->FetchX509SVID(ctx.get(), X509SVIDRequest());
    X509SVIDResponse resp;
    grpc::Status s = FirstOrStatus(reader.get(), &resp);
    result = s.ok() && resp.svids_size() == 1 ? "OK " + resp.svids(0).spiffe_id()
                                              : absl::StrCat("ERR ", s.error_code(), " ", s.error_message());
    ctx->TryCancel();
  } else {
    JWTSVIDRequest req;
    req.add_audience("aud");
    JWTSVIDResponse resp;
    grpc::Status s = stub->FetchJWTSVID(ctx.get(), req, &resp);
    result = s.ok() && resp.svids_size() == 1 ? "OK " + resp.svids(0).spiffe_id()
                                              : absl::StrCat("ERR ", s.error_code(), " ", s.error_message());
  }
  ASSERT_TRUE(WriteFileAtomic(out, result, 0644).ok());
}

}  // namespace
}  // namespace sigil::agent
