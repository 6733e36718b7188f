#include "node-agent/agent.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "node-agent/fake_server.h"
#include "node-agent/test_util.h"

namespace sigil::agent {
namespace {

using testing::FakeServer;
using testing::FakeServerOptions;
using testing::MakeEntry;
using testing::ModeOf;
using testing::TempDir;
using testing::WaitFor;

const attestors::Selectors kWorkload = {{"unix", "uid:1000"}};

class AgentTest : public ::testing::Test {
 protected:
  explicit AgentTest(FakeServerOptions options = ServerOptions()) : server_(options) {}

  static FakeServerOptions ServerOptions() {
    FakeServerOptions o;
    o.clock = RealClock::Get();
    return o;
  }

  void SetUp() override {
    ASSERT_OK(server_.Start());
    ASSERT_OK(WriteFileAtomic(dir_.File("bootstrap.pem"), server_.BundlePem(), 0644));
  }

  AgentSettings Settings(const std::string& token = "") {
    AgentSettings s(spiffe::TrustDomain::FromString("example.org").value());
    s.server_address = "127.0.0.1";
    s.server_port = server_.port();
    s.data_dir = dir_.File("data");
    s.socket_path = dir_.File("api.sock");
    s.trust_bundle_path = dir_.File("bootstrap.pem");
    s.trust_bundle = server_.Bundle();
    s.join_token = token;
    if (!token.empty()) s.node_attestor = "join_token";
    return s;
  }

  static AgentOptions Options() {
    AgentOptions o;
    o.serve_workload_api = false;
    o.rpc_timeout = absl::Seconds(5);
    o.attest_initial_backoff = absl::Milliseconds(50);
    o.attest_max_backoff = absl::Milliseconds(200);
    o.sync.initial_backoff = absl::Milliseconds(50);
    o.sync.max_backoff = absl::Milliseconds(400);
    return o;
  }

  std::unique_ptr<Agent> StartAgent(const AgentSettings& s, AgentOptions o = Options()) {
    auto agent = Agent::Start(s, o);
    EXPECT_TRUE(agent.ok()) << agent.status();
    if (!agent.ok()) return nullptr;
    EXPECT_TRUE((*agent)->WaitUntilSynced(absl::Seconds(10)));
    return std::move(*agent);
  }

  // Serial of the X509-SVID the workload gets for entry `entry_id`; "" when none.
  std::string WorkloadSerial(Agent* agent, const std::string& entry_id = "web") {
    for (const auto& id : agent->cache()->View(kWorkload).identities) {
      if (id.entry_id == entry_id) return id.chain.front().serial_hex();
    }
    return "";
  }

  TempDir dir_;
  FakeServer server_;
};

TEST_F(AgentTest, FirstStartAttestsPersistsStateAndServesNewEntriesWithinASecond) {
  server_.AddJoinToken("tok");
  auto agent = StartAgent(Settings("tok"));
  ASSERT_NE(agent, nullptr);
  EXPECT_EQ(server_.attest_calls(), 1);
  EXPECT_EQ(ModeOf(dir_.File("data")), 0700);
  EXPECT_EQ(ModeOf(dir_.File("data/agent_svid.key")), 0600);
  EXPECT_EQ(ModeOf(dir_.File("data/agent_svid.pem")), 0644);
  EXPECT_EQ(ModeOf(dir_.File("data/bundle.pem")), 0644);
  ASSERT_TRUE(agent->identity()->current().has_value());
  EXPECT_EQ(agent->identity()->current()->id.ToString(), "spiffe://example.org/spire/agent/join_token/tok");

  const absl::Time t0 = absl::Now();
  server_.UpsertEntry(MakeEntry("web", "/web", {"unix:uid:1000"}, "/spire/agent/join_token/tok"));
  ASSERT_TRUE(WaitFor([&] { return !WorkloadSerial(agent.get()).empty(); }, absl::Seconds(1)))
      << "a new entry's SVID must reach the cache within a second";
  std::cout << "[ latency ] entry created -> X509-SVID in the cache: " << absl::FormatDuration(absl::Now() - t0) << "\n";
  WorkloadView v = agent->cache()->View(kWorkload);
  EXPECT_EQ(v.identities.front().spiffe_id.ToString(), "spiffe://example.org/web");

  ASSERT_OK_AND_ASSIGN(auto jwts, agent->cache()->FetchJwtSvids(kWorkload, "", {"db"}));
  EXPECT_EQ(jwts.size(), 1u);

  server_.RemoveEntry("web");
  ASSERT_TRUE(WaitFor([&] { return WorkloadSerial(agent.get()).empty(); }, absl::Seconds(1)));
  agent->Shutdown();
  EXPECT_TRUE(agent->Wait().ok());
}

TEST_F(AgentTest, RestartResumesWithTheStoredSvidWithoutAttesting) {
  server_.AddJoinToken("tok");
  std::string serial;
  {
    auto agent = StartAgent(Settings("tok"));
    ASSERT_NE(agent, nullptr);
    serial = agent->identity()->current()->chain.front().serial_decimal();
  }
  // The token is spent; the agent must not need it again.
  auto agent = StartAgent(Settings("tok"));
  ASSERT_NE(agent, nullptr);
  EXPECT_EQ(server_.attest_calls(), 1);
  EXPECT_EQ(agent->identity()->current()->chain.front().serial_decimal(), serial);
  EXPECT_EQ(server_.last_caller_serial(), serial);
  // Without -joinToken at all, too.
  agent.reset();
  AgentSettings no_token = Settings();
  auto again = StartAgent(no_token);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(server_.attest_calls(), 1);
}

TEST_F(AgentTest, EvictedAgentDeletesItsStateAndAttestsAgain) {
  server_.SetTokensReusable(true);
  server_.AddJoinToken("tok");
  server_.UpsertEntry(MakeEntry("web", "/web", {"unix:uid:1000"}));
  auto agent = StartAgent(Settings("tok"));
  ASSERT_NE(agent, nullptr);
  ASSERT_TRUE(WaitFor([&] { return !WorkloadSerial(agent.get()).empty(); }));
  std::string old_serial = agent->identity()->current()->chain.front().serial_decimal();
  server_.EvictAgent();
  ASSERT_TRUE(WaitFor([&] { return server_.attest_calls() == 2 && agent->identity()->current().has_value(); }));
  EXPECT_NE(agent->identity()->current()->chain.front().serial_decimal(), old_serial);
  // Workloads kept their SVID throughout, and the agent syncs again.
  EXPECT_FALSE(WorkloadSerial(agent.get()).empty());
  ASSERT_TRUE(WaitFor([&] { return server_.sync_streams() >= 2; }));
  ASSERT_OK_AND_ASSIGN(std::string stored, ReadFile(dir_.File("data/agent_svid.pem")));
  EXPECT_EQ(stored, crypto::ToPem(agent->identity()->current()->chain));
}

TEST_F(AgentTest, EvictedAgentWithASpentJoinTokenStopsNamingTheCause) {
  server_.AddJoinToken("tok");
  auto agent = StartAgent(Settings("tok"));
  ASSERT_NE(agent, nullptr);
  server_.EvictAgent();
  absl::Status s = agent->Wait();
  EXPECT_STATUS(s, absl::StatusCode::kPermissionDenied, "the server refused the agent's identity");
  EXPECT_STATUS(s, absl::StatusCode::kPermissionDenied, "re-attestation failed");
  EXPECT_STATUS(s, absl::StatusCode::kPermissionDenied, "already been used");
  EXPECT_STATUS(s, absl::StatusCode::kPermissionDenied, "join tokens are single-use");
  EXPECT_EQ(ModeOf(dir_.File("data/agent_svid.key")), 0) << "the refused SVID is deleted";
}

TEST_F(AgentTest, BannedAgentStops) {
  server_.AddJoinToken("tok");
  auto agent = StartAgent(Settings("tok"));
  ASSERT_NE(agent, nullptr);
  server_.BanAgent("spiffe://example.org/spire/agent/join_token/tok");
  EXPECT_STATUS(agent->Wait(), absl::StatusCode::kPermissionDenied, "re-attestation failed");
}

TEST_F(AgentTest, FirstStartWithAnUnknownJoinTokenStopsNamingTheCause) {
  auto agent = Agent::Start(Settings("never-issued"), Options());
  ASSERT_TRUE(agent.ok()) << agent.status();
  absl::Status s = (*agent)->Wait();
  EXPECT_STATUS(s, absl::StatusCode::kPermissionDenied, "node attestation failed");
  EXPECT_STATUS(s, absl::StatusCode::kPermissionDenied, "join token does not exist");
}

TEST_F(AgentTest, ShutdownDoesNotWaitForAServerThatNeverAnswers) {
  // A listening socket nobody accepts on: the TLS handshake never completes.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  AgentSettings s = Settings("tok");
  s.server_port = ntohs(addr.sin_port);
  AgentOptions o = Options();
  o.rpc_timeout = absl::Seconds(60);
  auto agent = Agent::Start(s, o);
  ASSERT_TRUE(agent.ok()) << agent.status();
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time t0 = absl::Now();
  (*agent)->Shutdown();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(3));
  EXPECT_TRUE((*agent)->Wait().ok());
  ::close(fd);
}

TEST_F(AgentTest, FirstStartWithoutTrustBundleOrInsecureBootstrapIsRefused) {
  AgentSettings s = Settings("tok");
  s.trust_bundle.reset();
  s.trust_bundle_path.clear();
  EXPECT_STATUS(Agent::Start(s, Options()), absl::StatusCode::kFailedPrecondition,
                "agent.trust_bundle_path: there is no agent state in " + dir_.File("data"));
  EXPECT_STATUS(Agent::Start(s, Options()), absl::StatusCode::kFailedPrecondition, "-insecureBootstrap");
  EXPECT_EQ(server_.attest_calls(), 0);
}

TEST_F(AgentTest, SecondAgentOnTheSameDataDirIsRefused) {
  server_.AddJoinToken("tok");
  auto agent = StartAgent(Settings("tok"));
  ASSERT_NE(agent, nullptr);
  AgentSettings s = Settings("tok");
  s.socket_path = dir_.File("other.sock");
  EXPECT_STATUS(Agent::Start(s, Options()), absl::StatusCode::kFailedPrecondition,
                "is in use by another sigil-agent");
}

TEST_F(AgentTest, FirstStartWithoutNodeAttestorIsRefused) {
  EXPECT_STATUS(Agent::Start(Settings(), Options()), absl::StatusCode::kFailedPrecondition,
                "no node attestor is configured: give a join token (-joinToken");
}

TEST_F(AgentTest, InsecureBootstrapAttestsAndKeepsTheServersBundle) {
  server_.AddJoinToken("tok");
  AgentSettings s = Settings("tok");
  s.trust_bundle.reset();
  s.trust_bundle_path.clear();
  s.insecure_bootstrap = true;
  auto agent = StartAgent(s);
  ASSERT_NE(agent, nullptr);
  ASSERT_OK_AND_ASSIGN(std::string pem, ReadFile(dir_.File("data/bundle.pem")));
  EXPECT_EQ(pem, server_.BundlePem());
  // Later starts verify the server with the stored bundle.
  agent.reset();
  s.insecure_bootstrap = false;
  auto again = StartAgent(s);
  ASSERT_NE(again, nullptr);
  EXPECT_GE(again->client()->servers_verified(), 1);
}

TEST_F(AgentTest, ServerOutageKeepsWorkloadsServedAndSyncResumes) {
  server_.AddJoinToken("tok");
  server_.UpsertEntry(MakeEntry("web", "/web", {"unix:uid:1000"}));
  auto agent = StartAgent(Settings("tok"));
  ASSERT_NE(agent, nullptr);
  ASSERT_TRUE(WaitFor([&] { return !WorkloadSerial(agent.get()).empty(); }));
  std::string serial = WorkloadSerial(agent.get());
  const int port = server_.port();
  server_.Stop();
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(WorkloadSerial(agent.get()), serial);
  EXPECT_STATUS(agent->cache()->FetchJwtSvids(kWorkload, "", {"x"}), absl::StatusCode::kUnavailable,
                "cannot mint a JWT-SVID for spiffe://example.org/web");
  server_.UpsertEntry(MakeEntry("db", "/db", {"unix:uid:1000"}));
  ASSERT_OK(server_.Start(port));
  ASSERT_TRUE(WaitFor([&] { return agent->cache()->View(kWorkload).identities.size() == 2; }));
  EXPECT_EQ(WorkloadSerial(agent.get()), serial);
}

class ShortLivedAgentTest : public AgentTest {
 protected:
  ShortLivedAgentTest() : AgentTest(ShortLived()) {}
  static FakeServerOptions ShortLived() {
    FakeServerOptions o = ServerOptions();
    o.agent_ttl = absl::Seconds(3);
    o.x509_ttl = absl::Seconds(3);
    o.backdate = absl::ZeroDuration();
    return o;
  }
};

TEST_F(ShortLivedAgentTest, AgentAndWorkloadSvidsAreRenewedAtAboutHalfLife) {
  server_.AddJoinToken("tok");
  server_.UpsertEntry(MakeEntry("web", "/web", {"unix:uid:1000"}));
  auto agent = StartAgent(Settings("tok"));
  ASSERT_NE(agent, nullptr);
  ASSERT_TRUE(WaitFor([&] { return !WorkloadSerial(agent.get()).empty(); }));
  const crypto::Certificate first = agent->identity()->current()->chain.front();
  std::string agent_serial = first.serial_decimal();
  std::string workload_serial = WorkloadSerial(agent.get());
  ASSERT_TRUE(WaitFor([&] { return server_.renew_calls() >= 1; }, absl::Seconds(3)));
  // Renewed between 45% and 55% of the lifetime (+ polling and RPC time).
  const absl::Duration life = first.not_after() - first.not_before();
  const absl::Duration renewed_after = absl::Now() - first.not_before();
  EXPECT_GE(renewed_after, life * 0.45);
  EXPECT_LE(renewed_after, life * 0.55 + absl::Milliseconds(500));
  ASSERT_TRUE(WaitFor([&] { return WorkloadSerial(agent.get()) != workload_serial; }, absl::Seconds(3)));
  // The renewed agent SVID is stored, presented and now the only valid one.
  // The server counts the renewal before the agent has swapped identities.
  EXPECT_TRUE(WaitFor([&] { return agent->identity()->current()->chain.front().serial_decimal() != agent_serial; }));
  ASSERT_TRUE(WaitFor([&] {
    return server_.active_serial("spiffe://example.org/spire/agent/join_token/tok") ==
           agent->identity()->current()->chain.front().serial_decimal();
  }));
  ASSERT_OK_AND_ASSIGN(std::string stored, ReadFile(dir_.File("data/agent_svid.pem")));
  EXPECT_EQ(stored, crypto::ToPem(agent->identity()->current()->chain));
  // Workloads never saw an expired SVID over several lifetimes.
  for (int i = 0; i < 40; ++i) {
    WorkloadView v = agent->cache()->View(kWorkload);
    ASSERT_EQ(v.identities.size(), 1u);
    EXPECT_GT(v.identities.front().chain.front().not_after(), absl::Now());
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_GE(server_.renew_calls(), 2);
}

TEST_F(AgentTest, ServesTheWorkloadApiSocketAndRemovesItOnShutdown) {
  server_.AddJoinToken("tok");
  AgentOptions o = Options();
  o.serve_workload_api = true;
  auto agent = StartAgent(Settings("tok"), o);
  ASSERT_NE(agent, nullptr);
  EXPECT_NE(ModeOf(dir_.File("api.sock")), 0);
  agent->Shutdown();
  EXPECT_EQ(ModeOf(dir_.File("api.sock")), 0);
}

}  // namespace
}  // namespace sigil::agent
