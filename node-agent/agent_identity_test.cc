#include "node-agent/agent_identity.h"

#include <gtest/gtest.h>

#include "attestors/node/join_token/agent.h"
#include "common/file_util.h"
#include "node-agent/fake_server.h"
#include "node-agent/test_util.h"

namespace sigil::agent {
namespace {

using testing::FakeServer;
using testing::FakeServerOptions;
using testing::TempDir;

spiffe::TrustDomain Td() { return spiffe::TrustDomain::FromString("example.org").value(); }

class AgentIdentityTest : public ::testing::Test {
 protected:
  AgentIdentityTest()
      : server_(ServerOptions(&clock_)),
        store_(dir_.File("data"), Td()),
        cache_(Td(), CacheOptions(&clock_)),
        attestor_("tok") {}

  static FakeServerOptions ServerOptions(const Clock* clock) {
    FakeServerOptions o;
    o.clock = clock;
    o.agent_ttl = absl::Hours(1);
    return o;
  }
  static SvidCacheOptions CacheOptions(const Clock* clock) {
    SvidCacheOptions o;
    o.clock = clock;
    return o;
  }
  std::unique_ptr<ServerClient> NewClient() {
    ServerClientOptions o(Td());
    o.target = server_.target();
    o.clock = &clock_;
    o.rpc_timeout = absl::Seconds(5);
    SvidCache* cache = &cache_;
    return ServerClient::Create(o, [cache] { return cache->bundle(); }).value();
  }
  AgentIdentityOptions IdentityOptions() {
    AgentIdentityOptions o;
    o.clock = &clock_;
    return o;
  }

  void SetUp() override {
    ASSERT_OK(server_.Start());
    ASSERT_OK(store_.Prepare());
    cache_.SetBootstrapBundle(server_.Bundle());
    client_ = NewClient();
    identity_ = std::make_unique<AgentIdentity>(&store_, client_.get(), &cache_, &attestor_, IdentityOptions());
    server_.AddJoinToken("tok");
  }

  FakeClock clock_;
  TempDir dir_;
  FakeServer server_;
  AgentStateStore store_;
  SvidCache cache_;
  attestors::node::join_token::JoinTokenAgentAttestor attestor_;
  std::unique_ptr<ServerClient> client_;
  std::unique_ptr<AgentIdentity> identity_;
};

TEST_F(AgentIdentityTest, RenewsAtAboutHalfLifeAndTheNewSvidReplacesTheOld) {
  ASSERT_OK(identity_->Attest());
  spiffe::X509Svid first = *identity_->current();
  const absl::Time nb = first.chain.front().not_before();
  const absl::Duration life = first.chain.front().not_after() - nb;

  clock_.Set(nb + life * 0.44);
  ASSERT_OK(identity_->RenewIfDue());
  EXPECT_EQ(server_.renew_calls(), 0);
  EXPECT_GE(identity_->NextRenewal(), nb + life * 0.45);
  EXPECT_LE(identity_->NextRenewal(), nb + life * 0.55);

  clock_.Set(nb + life * 0.56);
  ASSERT_OK(identity_->RenewIfDue());
  EXPECT_EQ(server_.renew_calls(), 1);
  spiffe::X509Svid second = *identity_->current();
  EXPECT_NE(second.chain.front().serial_decimal(), first.chain.front().serial_decimal());
  EXPECT_NE(second.key.public_key(), first.key.public_key()) << "a renewal uses a fresh key";
  ASSERT_OK_AND_ASSIGN(std::string stored, ReadFile(store_.Path(kAgentSvidFile)));
  EXPECT_EQ(stored, crypto::ToPem(second.chain));
  ASSERT_OK_AND_ASSIGN(spiffe::X509Svid loaded, store_.LoadSvid());
  EXPECT_EQ(loaded.key.public_key(), second.key.public_key());

  // The client now presents the new SVID, which the server makes the only
  // active one on first use.
  EXPECT_STATUS(client_->NewJwtSvid("no-such-entry", {"a"}), absl::StatusCode::kNotFound, "entry not found");
  EXPECT_EQ(server_.last_caller_serial(), second.chain.front().serial_decimal());
  EXPECT_EQ(server_.active_serial(second.id.ToString()), second.chain.front().serial_decimal());
  auto old_client = NewClient();
  old_client->SetIdentity(first);
  EXPECT_STATUS(old_client->NewJwtSvid("no-such-entry", {"a"}), absl::StatusCode::kPermissionDenied,
                "not its active one");
}

TEST_F(AgentIdentityTest, FailedRenewalKeepsTheSvidAndBacksOff) {
  ASSERT_OK(identity_->Attest());
  spiffe::X509Svid first = *identity_->current();
  clock_.Set(first.chain.front().not_after() - absl::Minutes(20));
  server_.Stop();
  EXPECT_EQ(identity_->RenewIfDue().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(identity_->current()->chain.front().serial_decimal(), first.chain.front().serial_decimal());
  EXPECT_GT(identity_->NextRenewal(), clock_.Now());
  EXPECT_LE(identity_->NextRenewal(), clock_.Now() + absl::Seconds(1));
  ASSERT_OK_AND_ASSIGN(spiffe::X509Svid stored, store_.LoadSvid());
  EXPECT_EQ(stored.chain.front().serial_decimal(), first.chain.front().serial_decimal());
}

TEST_F(AgentIdentityTest, ResumeUsesOnlyAnUnexpiredStoredSvid) {
  ASSERT_OK_AND_ASSIGN(bool resumed, identity_->Resume());
  EXPECT_FALSE(resumed) << "nothing stored yet";
  ASSERT_OK(identity_->Attest());
  spiffe::X509Svid first = *identity_->current();

  AgentIdentity restarted(&store_, client_.get(), &cache_, &attestor_, IdentityOptions());
  ASSERT_OK_AND_ASSIGN(resumed, restarted.Resume());
  EXPECT_TRUE(resumed);
  EXPECT_EQ(restarted.current()->chain.front().serial_decimal(), first.chain.front().serial_decimal());

  clock_.Set(first.chain.front().not_after());
  AgentIdentity late(&store_, client_.get(), &cache_, &attestor_, IdentityOptions());
  ASSERT_OK_AND_ASSIGN(resumed, late.Resume());
  EXPECT_FALSE(resumed);
}

TEST_F(AgentIdentityTest, AttestWithoutAttestorIsFailedPrecondition) {
  AgentIdentity none(&store_, client_.get(), &cache_, nullptr, IdentityOptions());
  EXPECT_STATUS(none.Attest(), absl::StatusCode::kFailedPrecondition, "no node attestor is configured");
}

}  // namespace
}  // namespace sigil::agent
