// The agent and server halves together, through an in-memory challenger
// standing in for the AttestAgent stream, over a PKI built with spiffe/crypto
// (root -> intermediate -> node) and over OpenSSL-made fixtures.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "attestors/node/x509pop/agent.h"
#include "attestors/node/x509pop/server.h"
#include "attestors/node/x509pop/test_util.h"
#include "spiffe/crypto/encoding.h"

namespace sigil::attestors::node::x509pop {
namespace {

using ::sigil::attestors::node::x509pop::testing::AgentChallenger;
using ::sigil::attestors::node::x509pop::testing::CaTemplate;
using ::sigil::attestors::node::x509pop::testing::FakeChallenger;
using ::sigil::attestors::node::x509pop::testing::FixtureCert;
using ::sigil::attestors::node::x509pop::testing::FixturePath;
using ::sigil::attestors::node::x509pop::testing::Issued;
using ::sigil::attestors::node::x509pop::testing::IssueFrom;
using ::sigil::attestors::node::x509pop::testing::NewKey;
using ::sigil::attestors::node::x509pop::testing::NodeTemplate;
using ::sigil::attestors::node::x509pop::testing::SelfSigned;
using ::sigil::attestors::node::x509pop::testing::TempDir;
using ::sigil::attestors::node::x509pop::testing::TestNow;

constexpr absl::StatusCode kDenied = absl::StatusCode::kPermissionDenied;
constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

spiffe::TrustDomain Td() { return *spiffe::TrustDomain::FromString("example.org"); }

class X509PopRoundTrip : public ::testing::Test {
 protected:
  X509PopRoundTrip()
      : clock_(TestNow()),
        root_(SelfSigned(CaTemplate("Node Root CA"))),
        intermediate_(IssueFrom(root_, IntermediateTemplate())) {}

  static crypto::CertificateTemplate IntermediateTemplate() {
    crypto::CertificateTemplate t = CaTemplate("Node Intermediate CA");
    t.path_len = 0;
    return t;
  }

  // The node certificate SPIRE's server test uses: CN, serial 0a1b2c3d4e5f,
  // x509pop URI SANs.
  static crypto::CertificateTemplate SpireLikeNode() {
    crypto::CertificateTemplate t = NodeTemplate("node-01");
    t.serial = std::string("\x0a\x1b\x2c\x3d\x4e\x5f", 6);
    t.uri_sans = {"x509pop://example.org/datacenter/us-east-1", "x509pop://example.org/environment/production",
                  "spiffe://example.org/not/a/selector"};
    return t;
  }

  Issued Node(const crypto::CertificateTemplate& tmpl, crypto::KeyType type = crypto::KeyType::kEcP256) {
    return IssueFrom(intermediate_, tmpl, type);
  }

  // Writes the node's files (leaf in certificate_path, the intermediate in
  // intermediates_path) and makes the agent attestor.
  std::unique_ptr<X509PopAgentAttestor> Agent(const Issued& node) {
    AgentConfig config;
    config.certificate_path = dir_.Write("node.pem", node.cert.ToPem());
    config.private_key_path = dir_.Write("node.key", node.key.ToPkcs8Pem());
    config.intermediates_path = dir_.Write("intermediates.pem", intermediate_.cert.ToPem());
    absl::StatusOr<std::unique_ptr<X509PopAgentAttestor>> agent = X509PopAgentAttestor::Create(config);
    EXPECT_TRUE(agent.ok()) << agent.status();
    return agent.ok() ? *std::move(agent) : nullptr;
  }

  std::unique_ptr<X509PopServerAttestor> Server(const std::vector<crypto::Certificate>& cas,
                                                const std::string& agent_path_template = "") {
    std::string pem;
    for (const auto& c : cas) pem += c.ToPem();
    ServerConfig config;
    config.ca_bundle_path = dir_.Write("cas.pem", pem);
    config.agent_path_template = agent_path_template;
    absl::StatusOr<std::unique_ptr<X509PopServerAttestor>> server =
        X509PopServerAttestor::Create(Td(), config, &clock_);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  // One attestation of `agent` against `server`.
  absl::StatusOr<AttestResult> Attest(X509PopServerAttestor* server, X509PopAgentAttestor* agent) {
    absl::StatusOr<std::string> payload = agent->Payload();
    if (!payload.ok()) return payload.status();
    AgentChallenger challenger(agent);
    absl::StatusOr<AttestResult> result = server->Attest(*payload, &challenger);
    challenges_ = challenger.challenges();
    return result;
  }

  // The payload an agent with `node` would send.
  std::string PayloadFor(const Issued& node) {
    absl::StatusOr<std::string> payload = Agent(node)->Payload();
    EXPECT_TRUE(payload.ok()) << payload.status();
    return payload.ok() ? *payload : "";
  }

  static std::string AgentIdFor(const crypto::Certificate& leaf) {
    return "spiffe://example.org/spire/agent/x509pop/" + Fingerprint(leaf);
  }

  FakeClock clock_;
  TempDir dir_;
  Issued root_;
  Issued intermediate_;
  std::vector<std::string> challenges_;
};

TEST_F(X509PopRoundTrip, EcP256NodeAttestsWithSpireAgentIdAndSelectors) {
  Issued node = Node(SpireLikeNode());
  auto agent = Agent(node);
  auto server = Server({root_.cert});
  ASSERT_OK_AND_ASSIGN(AttestResult result, Attest(server.get(), agent.get()));

  EXPECT_EQ(result.agent_id.ToString(), AgentIdFor(node.cert));
  EXPECT_EQ(Fingerprint(node.cert), crypto::HexEncode(crypto::Sha1(node.cert.der())));
  Selectors want = {{"x509pop", "subject:cn:node-01"},
                    {"x509pop", "ca:fingerprint:" + Fingerprint(intermediate_.cert)},
                    {"x509pop", "ca:fingerprint:" + Fingerprint(root_.cert)},
                    {"x509pop", "serialnumber:0a1b2c3d4e5f"},
                    {"x509pop", "san:datacenter:us-east-1"},
                    {"x509pop", "san:environment:production"}};
  EXPECT_EQ(result.selectors, want);
  EXPECT_TRUE(result.can_reattest);

  ASSERT_EQ(challenges_.size(), 1u);
  ASSERT_OK_AND_ASSIGN(Challenge challenge, UnmarshalChallenge(challenges_[0]));
  EXPECT_FALSE(challenge.rsa_signature.has_value());
  ASSERT_TRUE(challenge.ecdsa_signature.has_value());
  EXPECT_EQ(challenge.ecdsa_signature->nonce.size(), kNonceSize);
}

TEST_F(X509PopRoundTrip, RsaNodeAttests) {
  Issued node = Node(SpireLikeNode(), crypto::KeyType::kRsa2048);
  auto agent = Agent(node);
  auto server = Server({root_.cert});
  ASSERT_OK_AND_ASSIGN(AttestResult result, Attest(server.get(), agent.get()));
  EXPECT_EQ(result.agent_id.ToString(), AgentIdFor(node.cert));
  EXPECT_EQ(result.selectors.size(), 6u);
  ASSERT_EQ(challenges_.size(), 1u);
  ASSERT_OK_AND_ASSIGN(Challenge challenge, UnmarshalChallenge(challenges_[0]));
  EXPECT_TRUE(challenge.rsa_signature.has_value());
  EXPECT_FALSE(challenge.ecdsa_signature.has_value());
}

TEST_F(X509PopRoundTrip, EcP384NodeAttests) {
  Issued node = Node(NodeTemplate("node-384"), crypto::KeyType::kEcP384);
  auto agent = Agent(node);
  auto server = Server({root_.cert});
  ASSERT_OK_AND_ASSIGN(AttestResult result, Attest(server.get(), agent.get()));
  EXPECT_EQ(result.agent_id.ToString(), AgentIdFor(node.cert));
}

TEST_F(X509PopRoundTrip, EvidenceIsReusable) {
  Issued node = Node(SpireLikeNode());
  auto agent = Agent(node);
  auto server = Server({root_.cert});
  ASSERT_OK_AND_ASSIGN(AttestResult first, Attest(server.get(), agent.get()));
  clock_.Advance(absl::Hours(24));
  ASSERT_OK_AND_ASSIGN(AttestResult second, Attest(server.get(), agent.get()));
  EXPECT_EQ(first.agent_id, second.agent_id);
}

TEST_F(X509PopRoundTrip, OpenSslMadeEcAndRsaNodesAttest) {
  ServerConfig config;
  config.ca_bundle_path = FixturePath("ca.pem");
  ASSERT_OK_AND_ASSIGN(auto server, X509PopServerAttestor::Create(Td(), config, &clock_));
  for (const char* kind : {"ec", "rsa"}) {
    AgentConfig agent_config;
    agent_config.certificate_path = FixturePath(absl::StrCat(kind, "_leaf.pem"));
    agent_config.private_key_path = FixturePath(absl::StrCat(kind, "_leaf_key.pem"));
    ASSERT_OK_AND_ASSIGN(auto agent, X509PopAgentAttestor::Create(agent_config));
    ASSERT_OK_AND_ASSIGN(AttestResult result, Attest(server.get(), agent.get()));
    const crypto::Certificate leaf = FixtureCert(absl::StrCat(kind, "_leaf.pem"));
    EXPECT_EQ(result.agent_id.ToString(), AgentIdFor(leaf)) << kind;
    EXPECT_EQ(result.selectors.front(), (Selector{"x509pop", absl::StrCat("subject:cn:openssl-", kind, "-node")}));
  }
}

TEST_F(X509PopRoundTrip, CaBundlePathsTrustsTheUnion) {
  auto other = SelfSigned(CaTemplate("Other CA"));
  ServerConfig config;
  config.ca_bundle_paths = {dir_.Write("other.pem", other.cert.ToPem()), dir_.Write("root.pem", root_.cert.ToPem())};
  ASSERT_OK_AND_ASSIGN(auto server, X509PopServerAttestor::Create(Td(), config, &clock_));
  Issued node = Node(SpireLikeNode());
  auto agent = Agent(node);
  ASSERT_OK_AND_ASSIGN(AttestResult result, Attest(server.get(), agent.get()));
  EXPECT_EQ(result.agent_id.ToString(), AgentIdFor(node.cert));
}

TEST_F(X509PopRoundTrip, IntermediateAsTrustAnchorEndsThePath) {
  Issued node = Node(SpireLikeNode());
  auto agent = Agent(node);
  auto server = Server({intermediate_.cert});
  ASSERT_OK_AND_ASSIGN(AttestResult result, Attest(server.get(), agent.get()));
  EXPECT_EQ(result.selectors[1], (Selector{"x509pop", "ca:fingerprint:" + Fingerprint(intermediate_.cert)}));
  EXPECT_EQ(result.selectors[2], (Selector{"x509pop", "serialnumber:0a1b2c3d4e5f"}));
}

// ---- refusals of the chain (no challenge is sent) ----

TEST_F(X509PopRoundTrip, CertificateFromUntrustedCaIsRefused) {
  auto other = SelfSigned(CaTemplate("Other CA"));
  Issued node = Node(SpireLikeNode());
  auto agent = Agent(node);
  auto server = Server({other.cert});
  EXPECT_STATUS(Attest(server.get(), agent.get()), kDenied,
                "nodeattestor(x509pop): certificate verification failed: x509: certificate verification failed: "
                "unable to get local issuer certificate");
  EXPECT_TRUE(challenges_.empty());
}

TEST_F(X509PopRoundTrip, ExpiredCertificateIsRefused) {
  Issued node = Node(SpireLikeNode());
  auto agent = Agent(node);
  auto server = Server({root_.cert});
  clock_.Set(node.cert.not_after() + absl::Seconds(1));
  EXPECT_STATUS(Attest(server.get(), agent.get()), kDenied, "certificate has expired (depth 0)");
  EXPECT_TRUE(challenges_.empty());
}

TEST_F(X509PopRoundTrip, NotYetValidCertificateIsRefused) {
  Issued node = Node(SpireLikeNode());
  auto agent = Agent(node);
  auto server = Server({root_.cert});
  clock_.Set(node.cert.not_before() - absl::Seconds(1));
  EXPECT_STATUS(Attest(server.get(), agent.get()), kDenied, "certificate is not yet valid (depth 0)");
}

TEST_F(X509PopRoundTrip, MissingIntermediateIsRefused) {
  Issued node = Node(SpireLikeNode());
  auto server = Server({root_.cert});
  AttestationData data{{node.cert.der()}};
  FakeChallenger challenger([](const std::string&) { return absl::InternalError("not expected"); });
  EXPECT_STATUS(server->Attest(MarshalAttestationData(data), &challenger), kDenied, "certificate verification failed");
  EXPECT_TRUE(challenger.challenges().empty());
}

TEST_F(X509PopRoundTrip, LeafThatCannotSignIsRefused) {
  crypto::CertificateTemplate t = SpireLikeNode();
  t.key_usage = crypto::kKeyUsageKeyEncipherment;
  Issued node = Node(t);
  auto agent = Agent(node);
  auto server = Server({root_.cert});
  EXPECT_STATUS(Attest(server.get(), agent.get()), kDenied,
                "nodeattestor(x509pop): unable to generate challenge: certificate not intended for digital "
                "signature use");
  EXPECT_TRUE(challenges_.empty());
}

TEST_F(X509PopRoundTrip, Ed25519LeafIsRefused) {
  ServerConfig config;
  config.ca_bundle_path = FixturePath("ca.pem");
  ASSERT_OK_AND_ASSIGN(auto server, X509PopServerAttestor::Create(Td(), config, &clock_));
  AttestationData data{{FixtureCert("ed25519_leaf.pem").der()}};
  FakeChallenger challenger([](const std::string&) { return absl::InternalError("not expected"); });
  EXPECT_STATUS(server->Attest(MarshalAttestationData(data), &challenger), kDenied, "unsupported public key type");
}

// ---- malformed payloads ----

TEST_F(X509PopRoundTrip, MalformedPayloadsAreRefused) {
  auto server = Server({root_.cert});
  Issued node = Node(SpireLikeNode());
  FakeChallenger challenger([](const std::string&) { return absl::InternalError("not expected"); });
  struct Case {
    std::string payload;
    std::string message;
  } cases[] = {
      {"", "nodeattestor(x509pop): failed to unmarshal data: "},
      {"not json", "nodeattestor(x509pop): failed to unmarshal data: "},
      {R"({"certificates":"x"})", "failed to unmarshal data: \"certificates\" must be an array"},
      {R"({"certificates":["!!"]})", "failed to unmarshal data: \"certificates\"[0]: base64"},
      {"{}", "nodeattestor(x509pop): no certificate to attest"},
      {R"({"certificates":[]})", "nodeattestor(x509pop): no certificate to attest"},
      {MarshalAttestationData({{"\x30\x03\x02\x01\x01"}}), "nodeattestor(x509pop): unable to parse leaf certificate"},
      {MarshalAttestationData({{node.cert.der(), "garbage"}}),
       "nodeattestor(x509pop): unable to parse intermediate certificate 0"},
      {MarshalAttestationData({{node.cert.der(), intermediate_.cert.der(), ""}}),
       "unable to parse intermediate certificate 1"},
      {MarshalAttestationData({{node.cert.der() + "x"}}), "unable to parse leaf certificate"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.payload);
    EXPECT_STATUS(server->Attest(c.payload, &challenger), kInvalid, c.message);
  }
  AttestationData many{{node.cert.der()}};
  for (size_t i = 0; i <= kMaxIntermediates; ++i) many.certificates.push_back(intermediate_.cert.der());
  EXPECT_STATUS(server->Attest(MarshalAttestationData(many), &challenger), kInvalid,
                "too many intermediate certificates (17); at most 16 are accepted");
  EXPECT_TRUE(challenger.challenges().empty());
}

// ---- refusals of the answer ----

TEST_F(X509PopRoundTrip, AnswerSignedWithAnotherKeyIsRefused) {
  Issued node = Node(SpireLikeNode());
  auto server = Server({root_.cert});
  crypto::PrivateKey impostor = NewKey(crypto::KeyType::kEcP256);
  FakeChallenger challenger([&](const std::string& c) -> absl::StatusOr<std::string> {
    absl::StatusOr<Challenge> challenge = UnmarshalChallenge(c);
    if (!challenge.ok()) return challenge.status();
    absl::StatusOr<Response> response = CalculateResponse(impostor, *challenge);
    if (!response.ok()) return response.status();
    return MarshalResponse(*response);
  });
  EXPECT_STATUS(server->Attest(PayloadFor(node), &challenger), kDenied,
                "nodeattestor(x509pop): challenge response verification failed: ECDSA signature verify failed");
  EXPECT_EQ(challenger.challenges().size(), 1u);
}

TEST_F(X509PopRoundTrip, AgentWhoseKeyIsNotTheCertificatesCannotStart) {
  Issued node = Node(SpireLikeNode());
  AgentConfig config;
  config.certificate_path = dir_.Write("node.pem", node.cert.ToPem());
  config.private_key_path = dir_.Write("other.key", NewKey(crypto::KeyType::kEcP256).ToPkcs8Pem());
  EXPECT_STATUS(X509PopAgentAttestor::Create(config), kInvalid,
                "unable to load keypair: the private key does not match the public key of the first certificate");
}

TEST_F(X509PopRoundTrip, RsaCertificateAnsweredWithEcKeyIsRefused) {
  Issued node = Node(SpireLikeNode(), crypto::KeyType::kRsa2048);
  auto server = Server({root_.cert});
  crypto::PrivateKey ec = NewKey(crypto::KeyType::kEcP256);
  FakeChallenger challenger([&](const std::string& c) -> absl::StatusOr<std::string> {
    // An EC answer to the server's RSA challenge.
    Challenge as_ec;
    as_ec.ecdsa_signature = EcdsaSignatureChallenge{UnmarshalChallenge(c)->rsa_signature->nonce};
    return MarshalResponse(*CalculateResponse(ec, as_ec));
  });
  EXPECT_STATUS(server->Attest(PayloadFor(node), &challenger), kDenied,
                "challenge response verification failed: expecting RSA response");
}

TEST_F(X509PopRoundTrip, AnswerToADifferentNonceIsRefused) {
  for (crypto::KeyType type : {crypto::KeyType::kEcP256, crypto::KeyType::kRsa2048}) {
    Issued node = Node(SpireLikeNode(), type);
    auto agent = Agent(node);
    auto server = Server({root_.cert});
    // The agent answers a challenge whose nonce is not the server's.
    FakeChallenger challenger([&](const std::string& c) -> absl::StatusOr<std::string> {
      Challenge other = *UnmarshalChallenge(c);
      if (other.rsa_signature) other.rsa_signature->nonce = crypto::RandomBytes(kNonceSize);
      if (other.ecdsa_signature) other.ecdsa_signature->nonce = crypto::RandomBytes(kNonceSize);
      return agent->Answer(MarshalChallenge(other));
    });
    EXPECT_STATUS(server->Attest(*agent->Payload(), &challenger), kDenied,
                  type == crypto::KeyType::kRsa2048 ? "RSA signature verify failed" : "ECDSA signature verify failed");
  }
}

TEST_F(X509PopRoundTrip, ReplayedAnswerIsRefused) {
  Issued node = Node(SpireLikeNode());
  auto agent = Agent(node);
  auto server = Server({root_.cert});
  std::string recorded;
  FakeChallenger recorder([&](const std::string& c) -> absl::StatusOr<std::string> {
    absl::StatusOr<std::string> answer = agent->Answer(c);
    if (answer.ok()) recorded = *answer;
    return answer;
  });
  ASSERT_OK(server->Attest(*agent->Payload(), &recorder).status());
  FakeChallenger replayer([&](const std::string&) -> absl::StatusOr<std::string> { return recorded; });
  EXPECT_STATUS(server->Attest(*agent->Payload(), &replayer), kDenied, "ECDSA signature verify failed");
}

TEST_F(X509PopRoundTrip, MalformedAnswersAreRefused) {
  Issued node = Node(SpireLikeNode());
  auto server = Server({root_.cert});
  const std::string payload = PayloadFor(node);
  auto answering = [&](const std::string& answer) {
    FakeChallenger challenger([answer](const std::string&) -> absl::StatusOr<std::string> { return answer; });
    return server->Attest(payload, &challenger);
  };
  EXPECT_STATUS(answering(""), kInvalid, "nodeattestor(x509pop): unable to unmarshal challenge response: ");
  EXPECT_STATUS(answering("garbage"), kInvalid, "unable to unmarshal challenge response: ");
  EXPECT_STATUS(answering(R"({"ecdsa_signature":{"nonce":"%%"}})"), kInvalid,
                "unable to unmarshal challenge response: ecdsa_signature: \"nonce\": base64");
  EXPECT_STATUS(answering("{}"), kDenied,
                "nodeattestor(x509pop): challenge response verification failed: expecting ECDSA response");
  EXPECT_STATUS(answering(R"({"ecdsa_signature":{"nonce":"AQ==","r":"AQ==","s":"AQ=="}})"), kDenied,
                "challenge response verification failed: invalid response nonce");
  const std::string nonce = crypto::Base64Encode(std::string(kNonceSize, 'n'));
  EXPECT_STATUS(answering(absl::StrCat(R"({"ecdsa_signature":{"nonce":")", nonce, R"(","r":"AQ==","s":"AQ=="}})")),
                kDenied, "ECDSA signature verify failed");
}

TEST_F(X509PopRoundTrip, ChallengerFailureKeepsItsCode) {
  Issued node = Node(SpireLikeNode());
  auto server = Server({root_.cert});
  FakeChallenger gone([](const std::string&) { return absl::UnavailableError("agent went away"); });
  EXPECT_STATUS(server->Attest(PayloadFor(node), &gone), absl::StatusCode::kUnavailable,
                "nodeattestor(x509pop): challenge failed: agent went away");
}

// ---- agent_path_template end to end ----

TEST_F(X509PopRoundTrip, TemplatePlaceholdersNameTheAgent) {
  Issued node = Node(SpireLikeNode());
  auto agent = Agent(node);
  struct Case {
    std::string tmpl;
    std::string id;
  } cases[] = {
      {"", AgentIdFor(node.cert)},
      {kDefaultAgentPathTemplate, AgentIdFor(node.cert)},
      {"/cn/{{ .Subject.CommonName }}", "spiffe://example.org/spire/agent/cn/node-01"},
      {"{{ .PluginName }}/{{ .TrustDomain }}/{{ .Fingerprint }}",
       "spiffe://example.org/spire/agent/x509pop/example.org/" + Fingerprint(node.cert)},
      {"/serialnumber/{{ .SerialNumberHex }}", "spiffe://example.org/spire/agent/serialnumber/0a1b2c3d4e5f"},
      {"/{{ .URISanSelectors.datacenter }}/{{ .URISanSelectors.environment }}/{{ .Subject.CommonName }}",
       "spiffe://example.org/spire/agent/us-east-1/production/node-01"},
  };
  for (const Case& c : cases) {
    auto server = Server({root_.cert}, c.tmpl);
    ASSERT_OK_AND_ASSIGN(AttestResult result, Attest(server.get(), agent.get()));
    EXPECT_EQ(result.agent_id.ToString(), c.id) << c.tmpl;
  }
}

TEST_F(X509PopRoundTrip, TemplateThatCannotNameThisNodeIsRefused) {
  auto server = Server({root_.cert}, "/cn/{{ .Subject.CommonName }}");
  Issued spaced = Node(NodeTemplate("node 01"));
  auto agent = Agent(spaced);
  EXPECT_STATUS(Attest(server.get(), agent.get()), kInvalid,
                "nodeattestor(x509pop): cannot form an agent ID: agent path \"/spire/agent/cn/node 01\" is not a "
                "valid SPIFFE ID path");
  auto by_rack = Server({root_.cert}, "/{{ .URISanSelectors.rack }}");
  Issued node = Node(SpireLikeNode());
  auto node_agent = Agent(node);
  EXPECT_STATUS(Attest(by_rack.get(), node_agent.get()), kInvalid,
                "cannot form an agent ID: agent_path_template refers to .URISanSelectors.rack");
}

}  // namespace
}  // namespace sigil::attestors::node::x509pop
