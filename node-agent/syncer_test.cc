#include "node-agent/syncer.h"

#include <atomic>

#include <gtest/gtest.h>

#include "attestors/node/join_token/agent.h"
#include "node-agent/fake_server.h"
#include "node-agent/test_util.h"
#include "spiffe/crypto/csr.h"

namespace sigil::agent {
namespace {

using testing::FakeServer;
using testing::FakeServerOptions;
using testing::MakeEntry;
using testing::WaitFor;

spiffe::TrustDomain Td() { return spiffe::TrustDomain::FromString("example.org").value(); }

class SyncerTest : public ::testing::Test {
 protected:
  SyncerTest() : server_(ServerOptions()), cache_(Td(), CacheOptions()) {}

  static FakeServerOptions ServerOptions() {
    FakeServerOptions o;
    o.clock = RealClock::Get();
    return o;
  }
  static SvidCacheOptions CacheOptions() {
    SvidCacheOptions o;
    o.clock = RealClock::Get();
    return o;
  }

  void SetUp() override {
    ASSERT_OK(server_.Start());
    cache_.SetBootstrapBundle(server_.Bundle());
    ServerClientOptions o(Td());
    o.target = server_.target();
    o.clock = RealClock::Get();
    o.rpc_timeout = absl::Seconds(5);
    o.max_reconnect_backoff = absl::Milliseconds(200);
    SvidCache* cache = &cache_;
    client_ = ServerClient::Create(o, [cache] { return cache->bundle(); }).value();
    server_.AddJoinToken("tok");
    crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    attestors::node::join_token::JoinTokenAgentAttestor attestor("tok");
    ASSERT_OK_AND_ASSIGN(
        AttestationResult r,
        client_->AttestAgent(&attestor, crypto::CreateCsrDer(key, {{crypto::NameAttribute::kCommonName, "a"}}, {}).value()));
    client_->SetIdentity(spiffe::X509Svid{r.agent_id, r.chain, key, ""});
    SyncerOptions so;
    so.initial_backoff = absl::Milliseconds(50);
    so.max_backoff = absl::Milliseconds(400);
    syncer_ = std::make_unique<Syncer>(client_.get(), &cache_, so);
  }
  void TearDown() override {
    if (syncer_ != nullptr) syncer_->Stop();
  }

  FakeServer server_;
  SvidCache cache_;
  std::unique_ptr<ServerClient> client_;
  std::unique_ptr<Syncer> syncer_;
};

TEST_F(SyncerTest, ServerChangesReachTheCacheWithinASecond) {
  server_.UpsertEntry(MakeEntry("a", "/a", {"u:1"}));
  syncer_->Start();
  ASSERT_TRUE(WaitFor([&] { return cache_.synced(); }));
  EXPECT_EQ(cache_.entry_count(), 1u);

  absl::Time t0 = absl::Now();
  server_.UpsertEntry(MakeEntry("b", "/b", {"u:1"}));
  ASSERT_TRUE(WaitFor([&] { return cache_.entry_count() == 2; }, absl::Seconds(1)));
  absl::Duration created = absl::Now() - t0;

  t0 = absl::Now();
  auto changed = MakeEntry("b", "/b", {"u:1", "u:2"});
  server_.UpsertEntry(changed);
  ASSERT_TRUE(WaitFor([&] { return cache_.DueSvids(absl::Now(), 10).size() == 2 &&
                                   cache_.FetchJwtSvids({{"u", "1"}}, "spiffe://example.org/b", {"x"}).status().code() ==
                                       absl::StatusCode::kPermissionDenied; },
                      absl::Seconds(1)));
  absl::Duration updated = absl::Now() - t0;

  t0 = absl::Now();
  server_.RemoveEntry("a");
  ASSERT_TRUE(WaitFor([&] { return cache_.entry_count() == 1; }, absl::Seconds(1)));
  absl::Duration deleted = absl::Now() - t0;
  std::cout << "[ latency ] create " << absl::FormatDuration(created) << ", change " << absl::FormatDuration(updated)
            << ", delete " << absl::FormatDuration(deleted) << "\n";
  EXPECT_EQ(server_.sync_streams(), 1);
}

TEST_F(SyncerTest, ReconnectsAfterTheServerRestartsAndKeepsTheCacheMeanwhile) {
  server_.UpsertEntry(MakeEntry("a", "/a", {"u:1"}));
  syncer_->Start();
  ASSERT_TRUE(WaitFor([&] { return cache_.synced(); }));
  const int port = server_.port();
  server_.Stop();
  server_.UpsertEntry(MakeEntry("b", "/b", {"u:1"}));
  server_.RemoveEntry("a");
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(cache_.entry_count(), 1u) << "the cache keeps what it had while the server is away";
  ASSERT_OK(server_.Start(port));
  ASSERT_TRUE(WaitFor([&] { return cache_.entry_count() == 1 && cache_.DueSvids(absl::Now(), 10).at(0).entry_id == "b"; }));
  EXPECT_GE(syncer_->streams_opened(), 2);
  EXPECT_GE(server_.sync_streams(), 1);
}

TEST_F(SyncerTest, EvictionEndsTheStreamAndIsReported) {
  std::atomic<int> refusals{0};
  client_->SetOnIdentityRefused([&](const absl::Status& s) {
    if (absl::IsPermissionDenied(s)) refusals++;
  });
  syncer_->Start();
  ASSERT_TRUE(WaitFor([&] { return cache_.synced(); }));
  server_.EvictAgent();
  ASSERT_TRUE(WaitFor([&] { return refusals.load() >= 1; }));
}

TEST_F(SyncerTest, StopEndsAnOpenStreamPromptly) {
  syncer_->Start();
  ASSERT_TRUE(WaitFor([&] { return cache_.synced(); }));
  absl::Time t0 = absl::Now();
  syncer_->Stop();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(2));
}

}  // namespace
}  // namespace sigil::agent
