#include "node-agent/server_client.h"

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
using testing::TestCa;

spiffe::TrustDomain Td() { return spiffe::TrustDomain::FromString("example.org").value(); }

// Answers the fake server's "test_challenge" attestation.
class ChallengeAttestor final : public attestors::node::AgentAttestor {
 public:
  ChallengeAttestor(std::string payload, std::string prefix) : payload_(std::move(payload)), prefix_(std::move(prefix)) {}
  const std::string& name() const override { return name_; }
  absl::StatusOr<std::string> Payload() override { return payload_; }
  absl::StatusOr<std::string> Answer(absl::string_view challenge) override {
    answered_++;
    return prefix_ + std::string(challenge);
  }
  int answered_ = 0;

 private:
  const std::string name_ = "test_challenge";
  const std::string payload_;
  const std::string prefix_;
};

class ServerClientTest : public ::testing::Test {
 protected:
  ServerClientTest() : server_(Options()) {}

  static FakeServerOptions Options() {
    FakeServerOptions o;
    o.clock = RealClock::Get();
    return o;
  }

  // A client whose bundle is `bundle_` (null until set).
  std::unique_ptr<ServerClient> Client(bool insecure = false) {
    ServerClientOptions o(Td());
    o.target = server_.target();
    o.clock = RealClock::Get();
    o.insecure_bootstrap = insecure;
    o.rpc_timeout = absl::Seconds(5);
    return ServerClient::Create(o, [this] {
             absl::MutexLock lock(&mu_);
             return bundle_;
           }).value();
  }
  void TrustServer() {
    absl::MutexLock lock(&mu_);
    bundle_ = std::make_shared<const spiffe::Bundle>(server_.Bundle());
  }

  // Presents an SVID for `id` signed by `ca` instead of the real one.
  void ImpersonateWith(const TestCa& ca, const std::string& id) {
    crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    absl::Time now = absl::Now();
    server_.SetServerIdentity(ca.IssueSvid(id, key.public_key().spki_der(), now - absl::Hours(1), now + absl::Hours(1)),
                              key);
  }

  spiffe::X509Svid AttestWithToken(ServerClient* client, const std::string& token) {
    server_.AddJoinToken(token);
    crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
    std::string csr = crypto::CreateCsrDer(key, {{crypto::NameAttribute::kCommonName, "agent"}}, {}).value();
    attestors::node::join_token::JoinTokenAgentAttestor attestor(token);
    auto result = client->AttestAgent(&attestor, csr);
    EXPECT_TRUE(result.ok()) << result.status();
    return spiffe::X509Svid{result->agent_id, result->chain, key, ""};
  }

  absl::Mutex mu_;
  std::shared_ptr<const spiffe::Bundle> bundle_ ABSL_GUARDED_BY(mu_);
  FakeServer server_;
};

TEST(VerifyServerChain, AcceptsOnlyTheServerIdChainedToTheBundle) {
  const absl::Time now = absl::Now();
  TestCa root = TestCa::Root("example.org", now - absl::Hours(1));
  TestCa intermediate = root.Intermediate("example.org", now - absl::Hours(1));
  spiffe::Bundle bundle(Td());
  bundle.AddX509Authority(root.cert);
  crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  auto pem = [&](const TestCa& ca, const std::string& id) {
    return crypto::ToPem(ca.IssueSvid(id, key.public_key().spki_der(), now - absl::Minutes(1), now + absl::Hours(1)));
  };
  EXPECT_TRUE(VerifyServerChain(pem(intermediate, "spiffe://example.org/spire/server"), &bundle, Td(), now).ok());
  EXPECT_STATUS(VerifyServerChain(pem(intermediate, "spiffe://example.org/spire/agent/x"), &bundle, Td(), now),
                absl::StatusCode::kUnauthenticated,
                "the server presented spiffe://example.org/spire/agent/x, expected spiffe://example.org/spire/server");
  TestCa rogue = TestCa::Root("example.org", now - absl::Hours(1), "rogue");
  EXPECT_STATUS(VerifyServerChain(pem(rogue, "spiffe://example.org/spire/server"), &bundle, Td(), now),
                absl::StatusCode::kUnauthenticated, "does not verify against the trust bundle of example.org");
  EXPECT_STATUS(VerifyServerChain(pem(intermediate, "spiffe://example.org/spire/server"), &bundle, Td(),
                                  now + absl::Hours(2)),
                absl::StatusCode::kUnauthenticated, "does not verify");
  EXPECT_STATUS(VerifyServerChain("", &bundle, Td(), now), absl::StatusCode::kUnauthenticated, "no certificate");
  EXPECT_STATUS(VerifyServerChain(pem(intermediate, "spiffe://example.org/spire/server"), nullptr, Td(), now),
                absl::StatusCode::kFailedPrecondition, "no trust bundle");
}

TEST_F(ServerClientTest, VerifiedServerIsAccepted) {
  ASSERT_OK(server_.Start());
  TrustServer();
  auto client = Client();
  ASSERT_OK_AND_ASSIGN(spiffe::Bundle bundle, client->GetBundle());
  EXPECT_EQ(bundle.x509_authorities().front().der(), server_.root().cert.der());
  EXPECT_GE(client->servers_verified(), 1);
  EXPECT_EQ(client->servers_refused(), 0);
}

// gRPC's own server check is off (verify_server_certs = false), so this
// passes only because the custom verifier runs on the handshake.
TEST_F(ServerClientTest, ServerWithTheWrongSpiffeIdIsRefusedByTheCustomVerifier) {
  ImpersonateWith(server_.root(), "spiffe://example.org/not-the-server");
  ASSERT_OK(server_.Start());
  TrustServer();
  auto client = Client();
  auto bundle = client->GetBundle();
  EXPECT_STATUS(bundle, absl::StatusCode::kUnavailable, "the server could not be verified");
  EXPECT_STATUS(bundle, absl::StatusCode::kUnavailable, "expected spiffe://example.org/spire/server");
  EXPECT_GE(client->servers_refused(), 1);
  EXPECT_EQ(client->servers_verified(), 0);
}

TEST_F(ServerClientTest, ServerWithAnUntrustedChainIsRefused) {
  TestCa rogue = TestCa::Root("example.org", absl::Now() - absl::Hours(1), "rogue");
  ImpersonateWith(rogue, "spiffe://example.org/spire/server");
  ASSERT_OK(server_.Start());
  TrustServer();
  auto client = Client();
  server_.AddJoinToken("tok");
  attestors::node::join_token::JoinTokenAgentAttestor attestor("tok");
  crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  auto result = client->AttestAgent(&attestor, crypto::CreateCsrDer(key, {{crypto::NameAttribute::kCommonName, "a"}}, {}).value());
  EXPECT_STATUS(result, absl::StatusCode::kUnavailable, "does not verify against the trust bundle");
  EXPECT_EQ(server_.attest_calls(), 0) << "the token must not reach an unverified server";
}

TEST_F(ServerClientTest, InsecureBootstrapAcceptsAnyServerOnlyUntilABundleIsKnown) {
  ImpersonateWith(server_.root(), "spiffe://example.org/not-the-server");
  ASSERT_OK(server_.Start());
  auto client = Client(/*insecure=*/true);
  ASSERT_OK(client->GetBundle().status());
  EXPECT_EQ(client->servers_refused(), 0);
  TrustServer();
  client->ClearIdentity();  // a new channel, hence a new handshake
  EXPECT_STATUS(client->GetBundle(), absl::StatusCode::kUnavailable, "expected spiffe://example.org/spire/server");
}

TEST_F(ServerClientTest, JoinTokenAttestationIssuesAnAgentSvidOnce) {
  ASSERT_OK(server_.Start());
  TrustServer();
  auto client = Client();
  spiffe::X509Svid svid = AttestWithToken(client.get(), "tok-1");
  EXPECT_EQ(svid.id.ToString(), "spiffe://example.org/spire/agent/join_token/tok-1");
  spiffe::BundleSet bundles;
  bundles.Add(server_.Bundle());
  EXPECT_TRUE(spiffe::Verify(svid.chain, bundles, absl::Now()).ok());
  attestors::node::join_token::JoinTokenAgentAttestor again("tok-1");
  crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  EXPECT_STATUS(client->AttestAgent(&again, crypto::CreateCsrDer(key, {{crypto::NameAttribute::kCommonName, "a"}}, {}).value()),
                absl::StatusCode::kPermissionDenied, "already been used");
}

TEST_F(ServerClientTest, AttestationAnswersTheServersChallenges) {
  ASSERT_OK(server_.Start());
  TrustServer();
  auto client = Client();
  crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  std::string csr = crypto::CreateCsrDer(key, {{crypto::NameAttribute::kCommonName, "a"}}, {}).value();
  ChallengeAttestor good("node7", "answer-");
  ASSERT_OK_AND_ASSIGN(AttestationResult result, client->AttestAgent(&good, csr));
  EXPECT_EQ(result.agent_id.ToString(), "spiffe://example.org/spire/agent/test_challenge/node7");
  EXPECT_EQ(good.answered_, 1);
  ChallengeAttestor bad("node8", "wrong-");
  EXPECT_STATUS(client->AttestAgent(&bad, csr), absl::StatusCode::kPermissionDenied, "wrong challenge response");
}

TEST_F(ServerClientTest, AuthenticatedCallsPresentTheAgentSvid) {
  ASSERT_OK(server_.Start());
  TrustServer();
  auto client = Client();
  spiffe::X509Svid svid = AttestWithToken(client.get(), "tok-2");
  client->SetIdentity(svid);
  server_.UpsertEntry(testing::MakeEntry("e1", "/web", {"unix:uid:1000"}));
  crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256).value();
  std::string csr = crypto::CreateCsrDer(key, {}, {"spiffe://example.org/web"}).value();
  ASSERT_OK_AND_ASSIGN(auto results, client->BatchNewX509Svid({{"e1", csr}, {"missing", csr}}));
  ASSERT_EQ(results.size(), 2u);
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_EQ((*results[0]).front().uri_sans(), (std::vector<std::string>{"spiffe://example.org/web"}));
  EXPECT_EQ((*results[0]).front().public_key(), key.public_key());
  EXPECT_STATUS(results[1], absl::StatusCode::kNotFound, "not authorized");
  EXPECT_EQ(server_.last_caller_serial(), svid.chain.front().serial_decimal());
  ASSERT_OK_AND_ASSIGN(MintedJwtSvid jwt, client->NewJwtSvid("e1", {"aud"}));
  EXPECT_EQ(jwt.spiffe_id.ToString(), "spiffe://example.org/web");
  EXPECT_GT(jwt.expires_at, jwt.issued_at);
}

TEST_F(ServerClientTest, RefusedIdentityIsReported) {
  ASSERT_OK(server_.Start());
  TrustServer();
  auto client = Client();
  spiffe::X509Svid svid = AttestWithToken(client.get(), "tok-3");
  client->SetIdentity(svid);
  std::atomic<int> refusals{0};
  absl::Mutex mu;
  std::string reason;
  client->SetOnIdentityRefused([&](const absl::Status& s) {
    refusals++;
    absl::MutexLock lock(&mu);
    reason = std::string(s.message());
  });
  ASSERT_OK(client->NewJwtSvid("none", {"a"}).status().code() == absl::StatusCode::kNotFound
                ? absl::OkStatus()
                : absl::InternalError("expected NotFound for an unknown entry"));
  EXPECT_EQ(refusals.load(), 0);
  server_.EvictAgent();
  EXPECT_STATUS(client->NewJwtSvid("none", {"a"}), absl::StatusCode::kPermissionDenied, "not attested");
  EXPECT_EQ(refusals.load(), 1);
  absl::MutexLock lock(&mu);
  EXPECT_NE(reason.find("NewJWTSVID: agent spiffe://example.org/spire/agent/join_token/tok-3 is not attested"),
            std::string::npos)
      << reason;
}

TEST_F(ServerClientTest, CancelAllEndsLaterCallsAtOnce) {
  ASSERT_OK(server_.Start());
  TrustServer();
  auto client = Client();
  ASSERT_OK(client->GetBundle().status());
  client->CancelAll();
  EXPECT_STATUS(client->GetBundle(), absl::StatusCode::kCancelled, "shutting down");
}

}  // namespace
}  // namespace sigil::agent
